/**
 * The gateway application: providers feeding the Orchestrator, strategies on
 * the consumer runtime, the initial routing table, the status line, and the
 * order in which it all stops.
 *
 * ## Strategies
 * A strategy is a lambda over pooled events plus what it asks for on the
 * Control Bus. `runStrategy` opens its mailbox (a consumer), then runs its
 * `start`, which sends its subscriptions (`Subscribe`, `SubscribeMerged`) and
 * may fork its own timers into the scope it is given. Every command's
 * `ControlAck` and `ControlResult` and every `ExecReport` of its orders come
 * back to `handle`, on the critical lane. The event is lent for the duration of
 * the returned effect only: copy what you keep.
 *
 * ## Processes
 * `run` is the whole gateway in one process (`bus: memory`), and the feed
 * process over NATS (`bus: nats`, `role: feed`, with no strategies: they run
 * elsewhere). `runStrategies` is a NATS strategy process (`role: strategy`):
 * the strategies and the status line, with no providers and no routing of its
 * own (the feed stages and flips the routing table). `layerOn`,
 * `layerNatsFeedOn` and `layerNatsStrategyOn` are their application layers.
 *
 * ## Shutdown
 * Finalizers run in reverse order of acquisition, so closing the scope of
 * `run`: stops the status line, interrupts the providers, stops the strategies'
 * timers, then waits (bounded) until every critical lane is drained and the
 * venue has handed over every report. The application layer's scope closes
 * after that (consumers, mailboxes, orchestrator, pools), and `main.ts`
 * prints the leak report.
 */
import { Clock, Data, Deferred, Effect, FiberSet, Layer, Random, Schedule, type Scope } from "effect"
import type { GatewayConfig } from "../schema/Config.js"
import { type ControlCommand, FlipRouting, MergeSpec, StageRouting, SymbolRoute } from "../schema/Control.js"
import type { ExecReportPayload } from "../schema/Event.js"
import { type ConsumerHandle, Consumers } from "./Consumer.js"
import { ControlBus } from "./ControlBus.js"
import { DataBus, type MailboxOptions } from "./DataBus.js"
import type { UnknownConsumer } from "./Errors.js"
import type { AnyEvent } from "./Event.js"
import { ExecutionVenue } from "./ExecutionVenue.js"
import { Prometheus } from "./Prometheus.js"
import { type NatsStatusView, Status, type StatusSnapshot } from "./Status.js"
import { Orchestrator } from "./Orchestrator.js"
import { Providers } from "./Provider.js"
import type { layerMemory, MemoryOptions } from "../layers/Memory.js"
import { layerFeedHeartbeats, layerNatsFeed, layerNatsStrategy, type NatsOptions } from "../layers/Nats.js"

// ---------------------------------------------------------------------------
// Strategy API
// ---------------------------------------------------------------------------

/** What a strategy can do besides handling events. */
export interface StrategyContext {
  /** The strategy's consumer id: commands name it, reports and replies come back to it. */
  readonly consumerId: string
  /** A fresh `{ commandId, consumerId }` for the next command. */
  readonly ids: () => { readonly commandId: string; readonly consumerId: string }
  /**
   * A fresh id for anything the strategy names (a client order id), unique
   * across restarts: a bus that drops duplicates by id (NATS JetStream) never
   * mistakes a restarted strategy's first order for one it already has.
   */
  readonly newId: (label: string) => string
  /** Sends a command on the Control Bus; its ControlAck and ControlResult arrive in `handle`. */
  readonly submit: (command: ControlCommand) => Effect.Effect<void>
  /** Logs about an event, annotated with its trace_id and this consumer_id. */
  readonly log: (event: AnyEvent, message: string, fields?: Readonly<Record<string, unknown>>) => Effect.Effect<void>
}

export interface Strategy<E = never> {
  readonly id: string
  /** Subscriptions and timers; runs once the mailbox is open, in the gateway's scope. */
  readonly start: (ctx: StrategyContext) => Effect.Effect<void, never, Scope.Scope>
  /** Every delivered event: market data it subscribed to, its acks, results and execution reports. */
  readonly handle: (event: AnyEvent, ctx: StrategyContext) => Effect.Effect<unknown, E>
  /** Mailbox bounds, when not the gateway's. */
  readonly mailbox?: Partial<MailboxOptions>
}

export interface StrategyHandle {
  readonly id: string
  readonly consumer: ConsumerHandle
}

/** Opens the strategy's mailbox, then runs its `start`. */
export const runStrategy = <E>(
  strategy: Strategy<E>,
  mailbox: Partial<MailboxOptions> = {}
): Effect.Effect<StrategyHandle, UnknownConsumer, Scope.Scope | Consumers | ControlBus> =>
  Effect.gen(function*() {
    const consumers = yield* Consumers
    const control = yield* ControlBus
    // one token per run, so ids never repeat those of an earlier run
    const run = `${(yield* Clock.currentTimeMillis).toString(36)}${(yield* Random.nextIntBetween(0, 36 ** 4)).toString(36)}`
    let next = 0
    const newId = (label: string) => `${strategy.id}-${run}-${label}-${++next}`
    const ctx: StrategyContext = {
      consumerId: strategy.id,
      ids: () => ({ commandId: newId("cmd"), consumerId: strategy.id }),
      newId,
      submit: control.submit,
      log: (event, message, fields = {}) =>
        Effect.logInfo(message).pipe(
          Effect.annotateLogs({ ...fields, trace_id: event.traceId, consumer_id: strategy.id, kind: event.kind })
        )
    }
    const consumer = yield* consumers.start({
      id: strategy.id,
      handle: (event) => strategy.handle(event, ctx),
      mailbox: { ...mailbox, ...strategy.mailbox }
    })
    yield* strategy.start(ctx)
    return { id: strategy.id, consumer }
  })

/** The payload of an execution report, or undefined for any other event. */
export const execReportOf = (event: AnyEvent): ExecReportPayload | undefined =>
  event._pool === "ExecReport" ? event.payload : undefined

// ---------------------------------------------------------------------------
// Routing from the configuration
// ---------------------------------------------------------------------------

export class RoutingRejected extends Data.TaggedError("RoutingRejected")<{
  readonly command: string
  readonly reason: string
}> {
  override get message(): string {
    return `initial routing rejected (${this.command}): ${this.reason}`
  }
}

/** The routing table the configuration describes: each symbol from every venue that quotes it, with its merges. */
type NonEmpty<A> = readonly [A, ...Array<A>]
/** Built only from non-empty lists (a venue quotes at least one symbol; a merge names at least two venues). */
const nonEmpty = <A>(xs: ReadonlyArray<A>): NonEmpty<A> => xs as NonEmpty<A>

export const routesOf = (config: GatewayConfig): NonEmpty<SymbolRoute> => {
  const bySymbol = new Map<string, Array<string>>()
  for (const v of config.venues) {
    for (const s of v.symbols) {
      const list = bySymbol.get(s) ?? []
      list.push(v.name ?? v._tag)
      bySymbol.set(s, list)
    }
  }
  return nonEmpty([...bySymbol].map(([symbol, providers]) =>
    SymbolRoute.make({
      symbol,
      providers: nonEmpty(providers),
      merges: config.merges.filter((m) => m.symbol === symbol).map((m) =>
        MergeSpec.make({
          kind: m.kind,
          providers: nonEmpty(m.providers),
          windowMs: m.windowMs,
          maxFragments: m.maxFragments,
          policy: m.policy,
          ...(m.quorum === undefined ? {} : { quorum: m.quorum })
        })
      )
    })
  ))
}

export const GATEWAY_CONSUMER = "gateway"

/**
 * Stages and flips the configured routing table as the `gateway` consumer,
 * waiting for both results: a rejection stops the start.
 */
const applyRouting = (config: GatewayConfig) =>
  Effect.gen(function*() {
    const consumers = yield* Consumers
    const control = yield* ControlBus
    const flipped = yield* Deferred.make<number, RoutingRejected>()
    yield* consumers.start({
      id: GATEWAY_CONSUMER,
      handle: (e) => {
        if (e.kind !== "control_result" || e._pool !== "Event") return Effect.void
        const result = e.payload as {
          readonly command: string
          readonly outcome: "ok" | "rejected"
          readonly rejection?: { readonly message: string }
          readonly detail?: unknown
        }
        if (result.outcome === "rejected") {
          return Deferred.fail(flipped, new RoutingRejected({ command: result.command, reason: result.rejection?.message ?? "rejected" }))
        }
        if (result.command === "FlipRouting") {
          const detail = result.detail as { readonly routingVersion?: number } | undefined
          return Deferred.succeed(flipped, detail?.routingVersion ?? 0)
        }
        return Effect.void
      }
    })
    yield* control.submit(StageRouting.make({ commandId: "gateway-stage-1", consumerId: GATEWAY_CONSUMER, routes: routesOf(config) }))
    yield* control.submit(FlipRouting.make({ commandId: "gateway-flip-1", consumerId: GATEWAY_CONSUMER, expectedStagedId: "gateway-stage-1" }))
    const version = yield* Deferred.await(flipped)
    yield* Effect.logInfo("routing table flipped in").pipe(Effect.annotateLogs({ routing_version: version }))
  })

// ---------------------------------------------------------------------------
// Status line
// ---------------------------------------------------------------------------

/** One decimal, or "-" when there is no figure (no rate yet, nothing sampled in the latency window): never a made-up 0.0. */
const n1 = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x.toFixed(1))

/**
 * One compact line: flow (rates over the last ~10 s), latency, pools,
 * consumers and their lag, losses.
 */
export const statusLine = (s: StatusSnapshot): string => {
  const pools = s.pools.map((p) => `${p.pool} ${(p.utilization * 100).toFixed(1)}%`).join(" ")
  const consumers = s.consumers.map((c) => `${c.id}:${c.lag}`).join(" ")
  return `in ${n1(s.rates?.eventsIn)}/s out ${n1(s.rates?.eventsOut)}/s deliveries ${n1(s.rates?.deliveries)}/s` +
    ` | p99 ${n1(s.p99DispatchToLambdaUs)}us | pool ${pools} | lag ${consumers}` +
    ` | dropped ${s.totals.dropped} coalesced ${s.totals.coalesced} skipped ${s.totals.skipped}` +
    ` | merged ${s.totals.merged} orders ${s.totals.orders} reports ${s.totals.execReports}` +
    (s.nats === undefined ? "" : ` | ${natsPart(s.nats)}`) +
    (s.readiness.ready ? "" : ` | not ready: ${s.readiness.reasons.length} reason(s)`)
}

/** `nats up md out 1200 in 0 critical out 14 in 0`: what crossed the process boundary. */
const natsPart = (n: NatsStatusView): string => {
  const delivered = Object.values(n.critical.delivered).reduce((a, b) => a + b, 0)
  return `nats ${n.connected ? "up" : "down"} md out ${n.market.published} in ${n.market.received}` +
    ` critical out ${n.critical.published} in ${delivered}`
}

// ---------------------------------------------------------------------------
// The program
// ---------------------------------------------------------------------------

export interface RunOptions {
  readonly strategies: ReadonlyArray<Strategy<unknown>>
  /** How long shutdown waits for critical lanes to drain. */
  readonly drainTimeoutMs?: number
}

/** Waits until no critical event is queued or unsent, up to `timeoutMs`. */
const drainCritical = (timeoutMs: number) =>
  Effect.gen(function*() {
    const bus = yield* DataBus
    const venue = yield* Effect.serviceOption(ExecutionVenue)
    const pending = () =>
      bus.mailboxes().reduce((n, m) => n + m.criticalDepth, 0) +
      (venue._tag === "Some" ? venue.value.stats().reportsPending : 0)
    const start = yield* Clock.currentTimeMillis
    // Consumers drain their lanes as soon as they get the CPU: yield first,
    // and wait on the clock only for lambdas that take time.
    let left = pending()
    for (let i = 0; i < 10_000 && left > 0; i++) {
      yield* Effect.yieldNow()
      left = pending()
    }
    if (left > 0) {
      left = yield* Effect.sync(pending).pipe(
        Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (n) => n === 0 }),
        Effect.timeoutTo({ duration: timeoutMs, onSuccess: (n) => n, onTimeout: pending })
      )
    }
    const took = (yield* Clock.currentTimeMillis) - start
    yield* Effect.logInfo("critical lanes drained").pipe(Effect.annotateLogs({ left, took_ms: took }))
  })

/**
 * Runs the gateway until interrupted: routing, strategies, providers into the
 * Orchestrator, the status line. Everything it starts belongs to the scope.
 */
export const run = (config: GatewayConfig, options: RunOptions) =>
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator
    const providers = yield* Providers
    const metrics = yield* Status
    const mailbox = mailboxOf(config)

    // added first, so it runs last: after providers and timers have stopped
    yield* Effect.addFinalizer(() => drainCritical(options.drainTimeoutMs ?? 2_000))

    yield* applyRouting(config)
    yield* startStrategies(options.strategies, mailbox)

    const feeds = yield* FiberSet.make<never>()
    for (const p of providers) {
      yield* FiberSet.run(feeds, p.run(orchestrator.ingest).pipe(Effect.scoped))
    }
    yield* Effect.addFinalizer(() => Effect.logInfo("stopping providers"))
    yield* Effect.logInfo("gateway running").pipe(
      Effect.annotateLogs({ providers: providers.map((p) => p.name).join(","), strategies: options.strategies.length })
    )

    yield* logStatus(metrics, config.statusIntervalMs)
    return yield* Effect.never
  })

const mailboxOf = (config: GatewayConfig): Partial<MailboxOptions> => ({
  marketCapacity: config.mailbox.marketCapacity,
  criticalHighWater: config.mailbox.criticalHighWater
})

const startStrategies = (strategies: ReadonlyArray<Strategy<unknown>>, mailbox: Partial<MailboxOptions>) =>
  Effect.forEach(strategies, (strategy) =>
    runStrategy(strategy, mailbox).pipe(
      Effect.zipRight(Effect.logInfo("strategy started").pipe(Effect.annotateLogs({ consumer_id: strategy.id })))
    ), { discard: true })

/** The status line every `intervalMs`, for the life of the scope. */
const logStatus = (metrics: Status, intervalMs: number) =>
  metrics.snapshot.pipe(
    Effect.flatMap((s) => Effect.logInfo(statusLine(s))),
    Effect.delay(intervalMs),
    Effect.forever,
    Effect.forkScoped
  )

/**
 * A NATS strategy process until interrupted: the strategies, fed by a feed
 * process over NATS, and the status line. Its commands go to the feed's
 * Control Plane; their acks and results and its execution reports come back
 * on each strategy's critical lane.
 */
export const runStrategies = (config: GatewayConfig, options: RunOptions) =>
  Effect.gen(function*() {
    const metrics = yield* Status
    // added first, so it runs last: once the strategies' timers have stopped
    yield* Effect.addFinalizer(() => drainCritical(options.drainTimeoutMs ?? 2_000))
    yield* startStrategies(options.strategies, mailboxOf(config))
    yield* Effect.logInfo("strategy process running").pipe(
      Effect.annotateLogs({ strategies: options.strategies.map((s) => s.id).join(",") })
    )
    yield* logStatus(metrics, config.statusIntervalMs)
    return yield* Effect.never
  })

/** What the configuration asks of the application layer. */
export const memoryOptions = (config: GatewayConfig): MemoryOptions => ({
  symbols: [...new Set(config.venues.flatMap((v) => v.symbols))],
  providers: config.venues.map((v) => v.name ?? v._tag),
  pool: { capacity: config.pool.capacity, prewarm: config.pool.prewarm, debug: config.debug },
  dispatcher: {
    latenessMs: config.dispatcher.latenessMs,
    reorderBuffer: config.dispatcher.reorderBuffer,
    fanoutConcurrency: config.dispatcher.fanoutConcurrency
  },
  paperStateFile: config.paper.stateFile
})

/** An application layer (`layers/Memory.ts`, `layers/Debug.ts`, ...) with the providers and metrics on top. */
export const layerOn = <E>(config: GatewayConfig, base: Layer.Layer<Layer.Layer.Success<ReturnType<typeof layerMemory>>, E>) =>
  Prometheus.Default.pipe(
    Layer.provideMerge(Status.Default),
    Layer.provideMerge(Providers.layerNode(config.venues)),
    Layer.provideMerge(base)
  )

/** The NATS settings of a `bus: nats` configuration. */
const natsOptions = (config: GatewayConfig): NatsOptions => ({
  pool: { capacity: config.pool.capacity, prewarm: config.pool.prewarm, debug: config.debug },
  dispatcher: {
    latenessMs: config.dispatcher.latenessMs,
    reorderBuffer: config.dispatcher.reorderBuffer,
    fanoutConcurrency: config.dispatcher.fanoutConcurrency
  },
  ...(config.bus._tag === "nats"
    ? {
      nats: {
        servers: [config.bus.url],
        name: `meltica-${config.bus.role}`,
        auth: config.bus.auth,
        // the feed creates and updates the streams; a strategy process waits for them
        manageStreams: config.bus.role === "feed"
      }
    }
    : {})
})

/** The NATS feed process (`role: feed`): providers, Orchestrator, Control Plane, paper venue, metrics. */
export const layerNatsFeedOn = (config: GatewayConfig) => {
  const { symbols, providers } = memoryOptions(config)
  return Prometheus.Default.pipe(
    Layer.provideMerge(Status.Default),
    Layer.provideMerge(layerFeedHeartbeats),
    Layer.provideMerge(Providers.layerNode(config.venues)),
    Layer.provideMerge(layerNatsFeed({ ...natsOptions(config), symbols, providers }))
  )
}

/** A NATS strategy process (`role: strategy`): no providers of its own, metrics. */
export const layerNatsStrategyOn = (config: GatewayConfig) =>
  Prometheus.Default.pipe(
    Layer.provideMerge(Status.Default),
    Layer.provideMerge(Layer.succeed(Providers, [])),
    Layer.provideMerge(layerNatsStrategy(natsOptions(config)))
  )
