/**
 * The gateway program: the routing table from the configuration, the
 * strategies, the providers feeding the Orchestrator, the status line, and the
 * order in which it all stops. The application layer it runs on is assembled
 * in `layers/` (the composition root).
 *
 * ## Processes
 * `run` is the whole gateway in one process (`bus: memory`), and the feed
 * process over NATS (`bus: nats`, `role: feed`, with no strategies: they run
 * elsewhere). `runStrategies` is a NATS strategy process (`role: strategy`):
 * the strategies and the status line, with no providers and no routing of its
 * own (the feed stages and flips the routing table).
 *
 * ## Strategies
 * Each strategy (`src/strategy/`) starts on its own: one whose module does not
 * load, whose options do not decode or whose `start` fails is reported and
 * stopped alone (`StrategyRegistry`), and the gateway goes on.
 *
 * ## Shutdown
 * Finalizers run in reverse order of acquisition, so closing the scope of
 * `run`: stops the status line, stops the strategies' timers, interrupts the
 * providers, then waits (bounded) until every critical lane is drained and the
 * venue has handed over every report. The application layer's scope closes
 * after that (consumers and their mailboxes, orchestrator, pools), and the
 * runner prints the leak report.
 */
import { Clock, Data, Deferred, Effect, FiberSet, Schedule } from "effect"
import type { GatewayConfig } from "../schema/Config.js"
import { FlipRouting, MergeSpec, StageRouting, SymbolRoute } from "../schema/Control.js"
import { Consumers } from "./Consumer.js"
import { ControlBus } from "./ControlBus.js"
import { DataBus, type MailboxOptions } from "./DataBus.js"
import { ExecutionVenue } from "./ExecutionVenue.js"
import { Orchestrator } from "./Orchestrator.js"
import { Providers } from "./Provider.js"
import { type NatsStatusView, Status, type StatusSnapshot } from "./Status.js"
import { type StrategySpec, startStrategies } from "./strategy/Runner.js"
import type { Topology } from "./strategy/Strategy.js"
import { isWorkerSpec, startIsolatedStrategies } from "./worker/Isolation.js"

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
  /** The strategies to run here: values, or files whose default export is one. */
  readonly strategies: ReadonlyArray<StrategySpec>
  /** The directory strategy files are relative to (default: the working directory). */
  readonly base?: string
  /** How long shutdown waits for critical lanes to drain. */
  readonly drainTimeoutMs?: number
  /** Runs once the strategies have started (a replay starts its feed here, so no strategy misses its start). */
  readonly onRunning?: Effect.Effect<void>
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
 * Runs the gateway until interrupted: routing, providers into the
 * Orchestrator, strategies, the status line. Everything it starts belongs to
 * the scope.
 */
export const run = (config: GatewayConfig, options: RunOptions) =>
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator
    const providers = yield* Providers
    const metrics = yield* Status

    // added first, so it runs last: after providers and timers have stopped
    yield* Effect.addFinalizer(() => drainCritical(options.drainTimeoutMs ?? 2_000))

    yield* applyRouting(config)

    // providers first: a strategy's start may wait for market data
    const feeds = yield* FiberSet.make<never>()
    for (const p of providers) {
      yield* FiberSet.run(feeds, p.run(orchestrator.ingest).pipe(Effect.scoped))
    }
    yield* Effect.addFinalizer(() => Effect.logInfo("stopping providers"))

    // each strategy reads its share of the venue's accounts (`ctx.portfolio`)
    const venue = yield* Effect.serviceOption(ExecutionVenue)
    // strategies declared `isolation: worker` run on worker threads of their own
    yield* startStrategies(options.strategies.filter((s) => !isWorkerSpec(s)), {
      ...settingsOf(config, options),
      ...(venue._tag === "Some" ? { portfolio: venue.value.portfolio } : {})
    })
    yield* startIsolatedStrategies(options.strategies.filter(isWorkerSpec), settingsOf(config, options))
    yield* Effect.logInfo("gateway running").pipe(
      Effect.annotateLogs({ providers: providers.map((p) => p.name).join(","), strategies: options.strategies.length })
    )
    if (options.onRunning !== undefined) yield* options.onRunning

    yield* logStatus(metrics, config.statusIntervalMs)
    return yield* Effect.never
  })

const mailboxOf = (config: GatewayConfig): Partial<MailboxOptions> => ({
  marketCapacity: config.mailbox.marketCapacity,
  criticalHighWater: config.mailbox.criticalHighWater,
  criticalCapacity: config.mailbox.criticalCapacity
})

/** What a strategy sees of the gateway: its symbols, venues and configured merges. */
export const topologyOf = (config: GatewayConfig): Topology => ({
  symbols: [...new Set(config.venues.flatMap((v) => v.symbols))],
  providers: config.venues.map((v) => v.name ?? v._tag),
  merges: config.merges.map((m) => ({
    symbol: m.symbol,
    kind: m.kind,
    providers: m.providers,
    windowMs: m.windowMs,
    maxFragments: m.maxFragments
  }))
})

const settingsOf = (config: GatewayConfig, options: RunOptions) => ({
  mailbox: mailboxOf(config),
  topology: topologyOf(config),
  ...(config.mailbox.eventTimeoutMs === undefined ? {} : { eventTimeoutMs: config.mailbox.eventTimeoutMs }),
  ...(options.base === undefined ? {} : { base: options.base })
})

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
    // over NATS a strategy's kill switch reaches its own orders only: the rest is the operator's
    yield* startStrategies(options.strategies.filter((s) => !isWorkerSpec(s)), { ...settingsOf(config, options), ownKillSwitchOnly: true })
    // strategies declared `isolation: worker` run on worker threads of their own, fed by this process's buses
    yield* startIsolatedStrategies(options.strategies.filter(isWorkerSpec), { ...settingsOf(config, options), ownKillSwitchOnly: true })
    yield* Effect.logInfo("strategy process running").pipe(
      Effect.annotateLogs({ strategies: options.strategies.length })
    )
    yield* logStatus(metrics, config.statusIntervalMs)
    return yield* Effect.never
  })
