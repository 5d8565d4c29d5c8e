/**
 * The Dispatcher: per-stream ordering, the routing table, and fan-out.
 *
 * `dispatch` takes ownership of an event and:
 * 1. orders it within its stream (provider, symbol, kind): see `internal/ordering.ts`;
 * 2. looks up its subscribers by (symbol, kind), merged and raw streams apart;
 * 3. fans out: 0 subscribers, the event goes to the Recycler; 1 subscriber,
 *    the original is delivered as it is; N > 1, the event is shared read-only
 *    among the N subscribers (one object, N holders, each recycling its own
 *    hold; the last one returns it to the pool: `internal/sharing.ts`), handed
 *    over starting at a rotating position, so no subscriber is always first.
 *    With `shareFanout` off, each gets a clone from the pool instead and the
 *    original goes to the Recycler once every clone is made (`bench:fanout`
 *    measures both).
 *
 * A hand-over that can complete without suspending (an in-memory mailbox, a
 * fire-and-forget publish) is done in place: every subscriber has its event
 * before any consumer runs, and no fiber is forked for it. Hand-overs that can
 * suspend (a remote bus, a lossless lane with flow control) go through
 * `Effect.forEach` at the configured bounded concurrency, and every failure
 * among them is collected and reported together. `bench/fanout.ts` measures
 * both shapes side by side.
 *
 * Critical events (ExecReport, ControlAck, ControlResult) are not ordered or
 * routed by subscription: they go to the consumer named in their payload.
 */
import { Cause, Context, Effect, Effectable, type Exit, FiberSet, Layer } from "effect"
import type { EventKind, MarketKind } from "../schema/Event.js"
import { isCritical } from "../schema/Event.js"
import { DataBus, type Endpoint } from "./DataBus.js"
import { type DeliveryError, type DeliveryFailure, FanoutFailed, UnknownConsumer } from "./Errors.js"
import type { AnyEvent } from "./Event.js"
import { Histogram, nowUs } from "./internal/histogram.js"
import { makeDeadlineTimer } from "./internal/deadlineTimer.js"
import { LatencySampler } from "./internal/latencySampler.js"
import { type OrderingNotice, StreamOrdering } from "./internal/ordering.js"
import { Pool } from "./Pool.js"
import { type Generation, generationOf, Holdings, Recycler } from "./Recycler.js"

export interface DispatcherSettings {
  /** How long a sequence gap may hold later events of its stream back. */
  readonly latenessMs: number
  /** Events buffered per stream behind a gap. */
  readonly reorderBuffer: number
  /**
   * A sequence farther than this from the next expected one of its stream is
   * suspect: dropped and counted, never the new truth (`internal/ordering.ts`).
   */
  readonly jumpWindow: number
  /** Suspect sequences in a row, consistent among themselves, that resynchronise a stream at their numbering. */
  readonly resyncAfter: number
  /** Hand-overs of one fan-out in flight at once (matters only where a hand-over can suspend). */
  readonly fanoutConcurrency: number
  /**
   * At least one event in this many carries a dispatch timestamp, from which
   * the consumers measure dispatch-to-lambda latency and their processing time
   * (1: every event, while `latencySamplesPerSecond` allows). Critical events
   * are always timed.
   */
  readonly latencySampleEvery: number
  /**
   * Timed events wanted per second: every 100 ms the share of timed events is
   * set from the event rate so that about this many are timed
   * (`internal/latencySampler.ts`); 0 keeps one in `latencySampleEvery`.
   */
  readonly latencySamplesPerSecond: number
  /**
   * A fan-out to N > 1 subscribers shares one read-only event among them
   * (true, the default) rather than handing each a clone.
   */
  readonly shareFanout: boolean
}

const defaultDispatcherSettings: DispatcherSettings = {
  latenessMs: 50,
  reorderBuffer: 1_024,
  jumpWindow: 100_000,
  resyncAfter: 4,
  fanoutConcurrency: 1,
  latencySampleEvery: 1,
  latencySamplesPerSecond: 2_000,
  shareFanout: true
}

export class DispatcherConfig extends Context.Tag("meltica/DispatcherConfig")<DispatcherConfig, DispatcherSettings>() {
  static readonly layer = (settings: Partial<DispatcherSettings> = {}): Layer.Layer<DispatcherConfig> =>
    Layer.succeed(DispatcherConfig, { ...defaultDispatcherSettings, ...settings })
  static readonly Default = DispatcherConfig.layer()
}

export interface RouteKey {
  readonly symbol: string
  readonly kind: MarketKind
  /** The Orchestrator's merged stream rather than each venue's own. */
  readonly merged: boolean
}

export interface DispatcherStats {
  readonly dispatched: number
  readonly deliveries: number
  readonly noSubscriber: number
  readonly fanouts: number
  readonly deliveryFailures: number
  readonly gapsSkipped: number
  readonly gapEvents: number
  readonly duplicates: number
  readonly late: number
  readonly buffered: number
  /** Events dropped because their sequence jumped beyond `jumpWindow`. */
  readonly suspectJumps: number
  /** Streams resynchronised at a new numbering after a run of suspect sequences. */
  readonly resyncs: number
  /** Streams started over because their feed epoch changed. */
  readonly epochResets: number
  /** Wall time of one fan-out (clone + hand-over to every subscriber), microseconds. */
  readonly fanoutDuration: ReturnType<Histogram["summary"]>
  /** Hand-overs of one fan-out, by degree: the largest seen. */
  readonly maxParallelism: number
}

interface Delivery {
  readonly endpoint: Endpoint
  readonly dup: AnyEvent
}

/** How often the share of timed events follows the event rate. */
const SAMPLER_PERIOD_MS = 100

const deliverOne = (d: Delivery): Effect.Effect<Exit.Exit<void, DeliveryError>> => Effect.exit(d.endpoint.deliver(d.dup))

const criticalOwner = (e: AnyEvent): string | undefined => {
  const p = e.payload as { readonly consumerId?: string } | undefined
  return p?.consumerId
}

type Routes = Map<string, Map<EventKind, ReadonlyArray<Endpoint>>>

export class Dispatcher extends Effect.Service<Dispatcher>()("meltica/Dispatcher", {
  scoped: Effect.gen(function*() {
    const settings = yield* DispatcherConfig
    const pool = yield* Pool
    const recycler = yield* Recycler
    const bus = yield* DataBus
    const clock = yield* Effect.clock
    const timers = yield* FiberSet.make<void>()
    const recycle = recycler.unsafeRecycle
    const share = settings.shareFanout
    // debug mode: each holder of a shared event takes a read-only view of its own
    const views = recycler.debugViews
    // Events the ordering engine holds behind gaps, with the generation each was
    // received with; `dispatching` is the one being accepted right now (held
    // only if the engine buffers it, so the in-order fast path costs nothing).
    const held = new Holdings()
    let dispatching: AnyEvent | undefined
    let dispatchingGen = 0 as Generation
    let dispatchingDropped = false
    const drop = (x: AnyEvent): void => {
      if (x === dispatching) {
        dispatchingDropped = true
        recycle(x, dispatchingGen)
      } else recycle(x, held.letGo(x))
    }

    // suspect jumps, resyncs and epoch resets are counted; one in a second at most is logged
    let notice: OrderingNotice | undefined
    let noticesSince = 0
    let lastNoticeLog = -Infinity
    const ordering = new StreamOrdering(
      {
        latenessMs: settings.latenessMs,
        bufferSize: settings.reorderBuffer,
        jumpWindow: settings.jumpWindow,
        resyncAfter: settings.resyncAfter
      },
      drop,
      (n) => {
        notice = n
        noticesSince++
      }
    )
    const logNotice = (): Effect.Effect<void> => {
      const n = notice!
      notice = undefined
      const now = clock.unsafeCurrentTimeMillis()
      if (now - lastNoticeLog < 1_000) return Effect.void
      lastNoticeLog = now
      const since = noticesSince
      noticesSince = 0
      const message = n.what === "suspect_jump"
        ? "sequence jump beyond the window dropped as suspect"
        : n.what === "resync"
        ? "stream resynchronised at a new sequence numbering"
        : "feed epoch changed: stream ordering started over"
      const log = n.what === "epoch_reset" ? Effect.logInfo(message) : Effect.logWarning(message)
      return log.pipe(Effect.annotateLogs({
        provider: n.provider,
        symbol: n.symbol,
        kind: n.kind,
        seq: n.seq ?? -1,
        expected: n.expected,
        ordering_notices: since
      }))
    }
    const scratch: Array<AnyEvent> = []
    const nowMs = () => clock.unsafeCurrentTimeMillis()
    const raw: Routes = new Map()
    const merged: Routes = new Map()
    const subscriptions = new Map<string, Set<string>>() // consumer -> route ids, for removal
    let rotation = 0
    const sampler = new LatencySampler(settings.latencySampleEvery, settings.latencySamplesPerSecond, 1 << 20, SAMPLER_PERIOD_MS)
    // The share of timed events follows the event rate in real time, like the
    // latencies it times: the timed events' own clock reads, and a Node timer
    // rather than the Effect clock, which a test or a replay moves in leaps (a
    // day of recorded time would be 864,000 periods). Unreferenced: it never
    // keeps the process alive.
    if (settings.latencySamplesPerSecond > 0) {
      sampler.periodEnded(performance.now())
      yield* Effect.acquireRelease(
        Effect.sync(() => setInterval(() => sampler.periodEnded(performance.now()), SAMPLER_PERIOD_MS).unref()),
        (timer) => Effect.sync(() => clearInterval(timer))
      )
    }
    let dispatched = 0
    let deliveries = 0
    let noSubscriber = 0
    let fanouts = 0
    let deliveryFailures = 0
    let maxParallelism = 0
    const fanoutDuration = new Histogram()

    // the route of the last event: a run of one stream's events skips the two
    // lookups; any change of the routing table forgets it
    let lastMerged = false
    let lastSymbol = ""
    let lastKind = ""
    let lastRoutes: ReadonlyArray<Endpoint> | undefined
    let lastKnown = false
    const routesChanged = (): void => {
      lastKnown = false
      lastRoutes = undefined
    }
    const routesOf = (e: AnyEvent): ReadonlyArray<Endpoint> | undefined => {
      const isMerged = e._pool === "MergedEvent"
      if (lastKnown && e.kind === lastKind && e.symbol === lastSymbol && isMerged === lastMerged) return lastRoutes
      lastRoutes = (isMerged ? merged : raw).get(e.symbol)?.get(e.kind)
      lastMerged = isMerged
      lastSymbol = e.symbol
      lastKind = e.kind
      lastKnown = true
      return lastRoutes
    }

    const reportFailures = (failures: ReadonlyArray<DeliveryFailure>) =>
      Effect.logError("fan-out deliveries failed", new FanoutFailed({ failures })).pipe(
        Effect.annotateLogs({
          failed: failures.length,
          trace_id: failures[0]!.traceId,
          consumers: failures.map((f) => f.consumerId).join(",")
        })
      )

    /** Hands one released event (held in period `gen`) to its subscribers. Ownership of `e` ends here. */
    const fanOut = (e: AnyEvent, gen: Generation): Effect.Effect<void> => {
      const subs = routesOf(e)
      const n = subs === undefined ? 0 : subs.length
      if (n === 0) {
        noSubscriber++
        recycle(e, gen)
        return Effect.void
      }
      const t0 = sampler.take() ? nowUs() : 0
      if (t0 > 0) sampler.timedAt(t0 / 1000)
      e._dispatchTs = t0
      // once per event rather than once per subscriber: ingest-to-lambda is this plus dispatch-to-lambda
      if (t0 > 0 && e.ingestTs > 0) e._ingestLagUs = Number(clock.unsafeCurrentTimeNanos() / 1000n) - e.ingestTs
      deliveries += n
      if (n === 1) {
        const sub = subs![0]!
        return sub.offer(e) ? Effect.void : handOver(new Fanout(e.traceId, e.kind, t0, [{ endpoint: sub, dup: e }]))
      }
      fanouts++
      if (n > maxParallelism) maxParallelism = n
      // Every subscriber gets its hold (or clone) before any consumer runs;
      // the start rotates so that no subscriber is always first.
      const start = rotation++ % n
      if (rotation === 0x40000000) rotation = 0
      const traceId = e.traceId
      const kind = e.kind
      let pending: Array<Delivery> | undefined
      // subscriber k, from `start` round to it (no division per hand-over)
      let k = start
      if (share) {
        const shared = recycler.unsafeShare(e, gen, n)
        if (shared === undefined) return Effect.void // refused and reported: not ours to deliver
        for (let i = 0; i < n; i++) {
          const sub = subs![k]!
          if (++k === n) k = 0
          const dup = views ? recycler.holderOf(shared) : shared
          if (!sub.offer(dup)) (pending ??= []).push({ endpoint: sub, dup })
        }
      } else {
        for (let i = 0; i < n; i++) {
          const sub = subs![k]!
          if (++k === n) k = 0
          const dup = pool.clone(e)
          if (!sub.offer(dup)) (pending ??= []).push({ endpoint: sub, dup })
        }
        recycle(e, gen)
      }
      if (pending === undefined) {
        if (t0 > 0) fanoutDuration.record(nowUs() - t0)
        return Effect.void
      }
      return handOver(new Fanout(traceId, kind, t0, pending))
    }

    /**
     * The hand-overs that can suspend (a remote bus), at bounded concurrency;
     * every failure is collected and reported together.
     */
    const handOver = (fan: Fanout): Effect.Effect<void> =>
      Effect.flatMap(
        Effect.forEach(fan.deliveries, deliverOne, { concurrency: settings.fanoutConcurrency }),
        fan.finish
      )

    /** One fan-out in flight: its hand-overs, and the failures collected across all of them. */
    class Fanout {
      constructor(
        readonly traceId: string,
        readonly kind: EventKind,
        readonly t0: number,
        readonly deliveries: ReadonlyArray<Delivery>
      ) {}
      readonly finish = (exits: ReadonlyArray<Exit.Exit<void, DeliveryError>>): Effect.Effect<void> => {
        if (this.t0 > 0) fanoutDuration.record(nowUs() - this.t0)
        let failures: Array<DeliveryFailure> | undefined
        for (let i = 0; i < exits.length; i++) {
          const exit = exits[i]!
          if (exit._tag === "Failure") {
            ;(failures ??= []).push({
              consumerId: this.deliveries[i]!.endpoint.consumerId,
              traceId: this.traceId,
              kind: this.kind,
              cause: Cause.squash(exit.cause)
            })
          }
        }
        if (failures === undefined) return Effect.void
        deliveryFailures += failures.length
        return reportFailures(failures)
      }
    }

    const fanOutAll = (events: ReadonlyArray<AnyEvent>, gens: ReadonlyArray<Generation>): Effect.Effect<void> =>
      events.length === 1
        ? fanOut(events[0]!, gens[0]!)
        : Effect.forEach(events, (e, i) => fanOut(e, gens[i]!), { discard: true })

    /** The generations of events the ordering engine released, taking them out of `held`. */
    const releasedGens = (events: ReadonlyArray<AnyEvent>): Array<Generation> =>
      events.map((x) => x === dispatching ? dispatchingGen : held.letGo(x))

    /** Skips gaps whose lateness ran out and releases what waited behind them. */
    const gapTimer = makeDeadlineTimer({
      fibers: timers,
      nowMs,
      nextDeadline: () => ordering.nextDeadline(),
      expire: (now) =>
        Effect.suspend(() => {
          const out: Array<AnyEvent> = []
          ordering.expire(now, out)
          return fanOutAll(out, releasedGens(out))
        })
    })

    const dispatchNow = (e: AnyEvent): Effect.Effect<void> => {
      dispatched++
      const gen = generationOf(e)
      if (isCritical(e.kind)) {
        const owner = criticalOwner(e)
        if (owner === undefined) {
          recycle(e, gen)
          return Effect.logError("critical event without an owner").pipe(
            Effect.annotateLogs({ trace_id: e.traceId, kind: e.kind })
          )
        }
        e._dispatchTs = nowUs()
        deliveries++
        return bus.publish(owner, e)
      }
      dispatching = e
      dispatchingGen = gen
      dispatchingDropped = false
      if (ordering.accept(e, nowMs, scratch)) {
        dispatching = undefined
        return notice === undefined ? fanOut(e, gen) : Effect.zipRight(logNotice(), fanOut(e, gen))
      }
      // neither dropped nor released: the engine buffers it behind a gap
      if (!dispatchingDropped && scratch.indexOf(e) < 0) held.hold(e, gen)
      let released: Effect.Effect<void> = Effect.void
      if (scratch.length > 0) {
        const events = scratch.splice(0, scratch.length)
        released = fanOutAll(events, releasedGens(events))
      }
      dispatching = undefined
      const armed = Effect.zipRight(released, gapTimer.arm())
      return notice === undefined ? armed : Effect.zipRight(logNotice(), armed)
    }

    /**
     * The effect `dispatch` answers: one object per event (where
     * `Effect.suspend` would make a closure and a primitive), whose step runs
     * `dispatchNow` as the runtime reaches it.
     */
    class Dispatch extends Effectable.Class<void> {
      constructor(readonly event: AnyEvent) {
        super()
      }
      commit(): Effect.Effect<void> {
        return dispatchNow(this.event)
      }
    }

    /** Takes ownership of `e` when the returned effect runs. */
    const dispatch = (e: AnyEvent): Effect.Effect<void> => new Dispatch(e)

    /**
     * Takes ownership of `e` at the call and does what can be done at once
     * (ordering, hand-over to every mailbox); answers what is left to run
     * (`Effect.void` when nothing is), which the caller must run. For a
     * caller on the hot path that would otherwise build `dispatch`'s effect.
     */
    const unsafeDispatch = (e: AnyEvent): Effect.Effect<void> => dispatchNow(e)

    const routeId = (k: RouteKey) => `${k.merged ? "merged" : "raw"}|${k.symbol}|${k.kind}`

    const subscribe = (consumerId: string, key: RouteKey): Effect.Effect<void, UnknownConsumer> =>
      Effect.suspend(() => {
        const endpoint = bus.endpoint(consumerId)
        if (endpoint === undefined) return Effect.fail(new UnknownConsumer({ consumerId }))
        const table = key.merged ? merged : raw
        let byKind = table.get(key.symbol)
        if (byKind === undefined) table.set(key.symbol, byKind = new Map())
        const current = byKind.get(key.kind) ?? []
        if (!current.some((s) => s.consumerId === consumerId)) byKind.set(key.kind, [...current, endpoint])
        routesChanged()
        let mine = subscriptions.get(consumerId)
        if (mine === undefined) subscriptions.set(consumerId, mine = new Set())
        mine.add(routeId(key))
        return Effect.void
      })

    const unsubscribe = (consumerId: string, key: RouteKey): Effect.Effect<void> =>
      Effect.sync(() => {
        const byKind = (key.merged ? merged : raw).get(key.symbol)
        const current = byKind?.get(key.kind)
        if (byKind !== undefined && current !== undefined) {
          byKind.set(key.kind, current.filter((s) => s.consumerId !== consumerId))
        }
        routesChanged()
        subscriptions.get(consumerId)?.delete(routeId(key))
      })

    const removeConsumer = (consumerId: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        const mine = subscriptions.get(consumerId)
        subscriptions.delete(consumerId)
        if (mine === undefined) return Effect.void
        return Effect.forEach(mine, (id) => {
          const [m, symbol, kind] = id.split("|") as [string, string, MarketKind]
          return unsubscribe(consumerId, { merged: m === "merged", symbol, kind })
        }, { discard: true })
      })

    const subscribersOf = (key: RouteKey): ReadonlyArray<string> =>
      ((key.merged ? merged : raw).get(key.symbol)?.get(key.kind) ?? []).map((s) => s.consumerId)

    const stats = (): DispatcherStats => ({
      dispatched,
      deliveries,
      noSubscriber,
      fanouts,
      deliveryFailures,
      ...ordering.stats,
      fanoutDuration: fanoutDuration.summary(),
      maxParallelism
    })

    // Events held behind gaps at shutdown go back to the pool.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        const left: Array<AnyEvent> = []
        ordering.drain(left)
        recycler.unsafeRecycleMany(left, releasedGens(left))
      })
    )

    return { dispatch, unsafeDispatch, subscribe, unsubscribe, removeConsumer, subscribersOf, stats } as const
  }),
  dependencies: [DispatcherConfig.Default]
}) {}
