/**
 * The replay provider: a recording fed into the same pipeline as live
 * providers (Orchestrator, Dispatcher, mailboxes, consumers, paper venue), on
 * a virtual clock driven by the recorded timestamps.
 *
 * One provider per recorded venue (named as it was recorded, so routes and
 * merges configured for the live venues apply unchanged), and one driver:
 * the merged stream of every selected file, in `ingest_ts` order. For each
 * event the driver fires the timers due before it (merge windows, lateness,
 * timeouts, strategy timers, the paper venue's latency), sets the clock to
 * its timestamp, and hands a pooled event stamped with the recorded
 * `ingestTs`, `seqProvider` and `epoch` to that venue's sink. Every
 * `yieldEvery` events it lets the other fibers run; at `speed` > 0 it also
 * waits real time (recorded gap / speed) before each event.
 *
 * The driver starts once every provider's `run` has been called and `start`
 * has been opened (the backtest opens it once the strategies run), and
 * completes `done` when the selection is exhausted and the pipeline has
 * settled. The clock stays virtual until someone calls `clock.release()`.
 */
import type { Scope } from "effect"
import { Deferred, Effect, Random } from "effect"
import type { MarketKind } from "../../schema/Event.js"
import type { Event } from "../Event.js"
import type { ProviderShape } from "../Provider.js"
import type { FeedServices, ProviderStats } from "../providers/internal/feed.js"
import { runPrefix } from "../internal/inlineEffect.js"
import { Counters } from "../providers/internal/feed.js"
import type { CorruptRecording } from "../record/Format.js"
import { listRecording, type RecordingListing, RecordingReader, type ReplaySelection } from "./Reader.js"
import { deterministicScheduler, settle, VirtualClock } from "./VirtualClock.js"

export interface ReplayOptions extends ReplaySelection {
  readonly dir: string
  /** 0 or absent: as fast as possible; otherwise a multiple of recorded time (1 = real time). */
  readonly speed?: number | undefined
  /** Events handed over between two turns of the other fibers (default 16). */
  readonly yieldEvery?: number | undefined
  /** Start the driver without waiting for `start` (default false). */
  readonly autoStart?: boolean | undefined
  /** The clock to drive (default: a new one at `replayStart`). */
  readonly clock?: VirtualClock | undefined
}

/** Where a replay's clock starts: the first selected file's first event, or `from` if later. */
export const replayStart = (listing: RecordingListing, from?: number): number => {
  const first = listing.files.reduce((m, f) => Math.min(m, f.firstTs), Number.POSITIVE_INFINITY)
  return Number.isFinite(first) ? Math.max(first, from ?? first) : (from ?? 0)
}

export interface ReplayStats {
  readonly events: number
  readonly eventsByKind: Readonly<Record<MarketKind, number>>
  readonly filesRead: number
  readonly bytesRead: number
  readonly skipped: ReadonlyArray<{ readonly file: string; readonly reason: string }>
  readonly timersFired: number
  /** Events of a venue whose provider was not run (none when every replay provider runs). */
  readonly unrouted: number
  /** Epoch microseconds of the first and last events replayed (undefined when none). */
  readonly firstTs: number | undefined
  readonly lastTs: number | undefined
}

export interface Replay {
  readonly clock: VirtualClock
  readonly providers: ReadonlyArray<ProviderShape>
  /** Lets the driver go (idempotent). */
  readonly start: Effect.Effect<void>
  /** Completed when every selected event has been handed over and the pipeline has settled. */
  readonly done: Deferred.Deferred<ReplayStats>
  readonly stats: () => ReplayStats
  /** Files skipped at listing (a `.tmp` left by a crash, a foreign name); more may be skipped at reading. */
  readonly skippedAtListing: ReadonlyArray<CorruptRecording>
  /** Every file skipped so far (at listing and at reading). */
  readonly skippedNow: () => ReadonlyArray<CorruptRecording>
}

/**
 * A replay of `options.dir`. Run the gateway with `replay.clock` as its Clock
 * and on `deterministicScheduler` (`runOnReplay`), and `replay.providers` as
 * its providers.
 */
export const makeReplay = (options: ReplayOptions, services: FeedServices): Effect.Effect<Replay> =>
  Effect.gen(function*() {
    const listing = listRecording(options.dir, options)
    const reader = new RecordingReader(listing, options)
    const clock = options.clock ?? new VirtualClock(replayStart(listing, options.from))
    const gate = yield* Deferred.make<void>()
    if (options.autoStart === true) yield* Deferred.succeed(gate, undefined)
    const done = yield* Deferred.make<ReplayStats>()

    const venues = new Map<string, Set<string>>()
    for (const f of listing.files) {
      const s = venues.get(f.provider) ?? new Set<string>()
      s.add(f.symbol)
      venues.set(f.provider, s)
    }
    const names = [...venues.keys()].sort()
    const counters = new Map(names.map((n) => [n, new Counters()]))
    let running = 0
    let events = 0
    const byKind: Record<MarketKind, number> = { trade: 0, ticker: 0, book_snapshot: 0, book_delta: 0 }
    let firstTs: number | undefined
    let lastTs: number | undefined
    let finished = false
    let unrouted = 0

    const stats = (): ReplayStats => ({
      events,
      eventsByKind: { ...byKind },
      filesRead: reader.filesRead,
      bytesRead: reader.bytesRead,
      skipped: reader.skipped.map((e) => ({ file: e.file, reason: e.reason })),
      timersFired: clock.fired,
      unrouted,
      firstTs,
      lastTs
    })

    const { pool } = services
    const yieldEvery = Math.max(1, options.yieldEvery ?? 16)
    const speed = options.speed ?? 0

    const realWait = (ms: number): Effect.Effect<void> =>
      ms <= 0 ? Effect.void : Effect.async<void>((resume) => {
        const h = setTimeout(() => resume(Effect.void), ms)
        return Effect.sync(() => clearTimeout(h))
      })

    /** Per venue: its sink (once its provider runs) and its counters, found once per event. */
    const routes = new Map(names.map((n) => [n, { sink: undefined as ((e: Event) => Effect.Effect<void>) | undefined, counters: counters.get(n)! }]))

    /**
     * Takes the reader's next event (its time `ts`) and hands it to its
     * venue's sink, counted: the hand-over's synchronous steps run here and
     * what suspends is answered for the caller to run (undefined when nothing
     * does, or when the venue's provider is not run).
     */
    const handOver = (ts: number): Effect.Effect<void> | undefined => {
      const route = routes.get(reader.peekProvider())!
      if (route.sink === undefined) {
        unrouted++
        reader.next()
        return undefined
      }
      const ev = pool.acquireEvent()
      reader.takeInto(ev)
      firstTs ??= ts
      lastTs = ts
      events++
      byKind[ev.kind as MarketKind]++
      const c = route.counters
      c.frames++
      c.events++
      c.eventsByKind[ev.kind as MarketKind]++
      ev.traceId = `${ev.provider}-r${++trace}`
      return runPrefix(route.sink(ev)) as Effect.Effect<void> | undefined
    }
    let trace = 0

    /**
     * Up to `yieldEvery` events handed over in one uninterruptible step: an
     * event taken from the reader is always handed to its sink (which owns it
     * from then on), and interruption is seen between steps. The first event
     * is handed over at once (the driver has set the clock to its time); the
     * step ends early when the next event needs a file opened, a timer due
     * before it (then time moves through `advanceTo`, which lets the woken
     * fibers run), or a real wait (`speed` > 0).
     */
    const batch: Effect.Effect<"end" | "more"> = Effect.gen(function*() {
      for (let n = 0; n < yieldEvery; n++) {
        if (reader.needsLoad()) return "more"
        const ts = reader.peekTs()
        if (ts === undefined) return "end"
        if (n > 0 && ((speed > 0 && firstTs !== undefined) || !clock.advanceIfNoTimerDue(ts))) return "more"
        const rest = handOver(ts)
        if (rest !== undefined) yield* rest
      }
      return "more"
    }).pipe(Effect.uninterruptible)

    const driver: Effect.Effect<void> = Effect.gen(function*() {
      yield* Deferred.await(gate)
      for (const e of reader.skipped) yield* Effect.logWarning(e.message)
      let reported = reader.skipped.length
      const wallStart = performance.now()
      for (;;) {
        if (reader.needsLoad()) {
          yield* Effect.promise(() => reader.load())
          for (; reported < reader.skipped.length; reported++) yield* Effect.logWarning(reader.skipped[reported].message)
          continue
        }
        const ts = reader.peekTs()
        if (ts === undefined) break
        // the next event's moment: wait real time (speed > 0), fire the timers due before it
        if (speed > 0 && firstTs !== undefined) {
          const due = wallStart + (ts - firstTs) / 1000 / speed
          yield* realWait(due - performance.now())
        }
        yield* clock.advanceTo(ts)
        const next = yield* batch
        if (next === "end") break
        yield* Effect.yieldNow()
      }
      yield* settle
      finished = true
      yield* Deferred.succeed(done, stats())
    })

    const providers: ReadonlyArray<ProviderShape> = names.map((name) => {
      const symbols = [...venues.get(name)!].sort()
      const provider: ProviderShape = {
        name,
        symbols,
        run: (sink) =>
          Effect.gen(function*() {
            routes.get(name)!.sink = sink
            if (++running === names.length) yield* driver
            return yield* Effect.never
          }) as Effect.Effect<never, never, Scope.Scope>,
        status: Effect.sync(() => ({
          provider: name,
          connected: !finished,
          books: symbols.map((symbol) => ({ symbol, state: "consistent" as const })),
          stats: counters.get(name)!.snapshot()
        })),
        stats: (): ProviderStats => counters.get(name)!.snapshot()
      }
      return provider
    })

    return {
      clock,
      providers,
      start: Deferred.succeed(gate, undefined).pipe(Effect.asVoid),
      done,
      stats,
      skippedAtListing: listing.skipped,
      skippedNow: () => reader.skipped
    }
  })

/**
 * Runs `effect` on the replay's virtual clock, the deterministic scheduler and
 * a seeded `Random` (ids, jitter), which every fiber it forks inherits.
 */
export const runOnReplay = <A, E, R>(clock: VirtualClock, effect: Effect.Effect<A, E, R>, seed = "meltica-replay"): Effect.Effect<A, E, R> =>
  effect.pipe(Effect.withClock(clock), Effect.withRandom(Random.make(seed)), Effect.withScheduler(deterministicScheduler))
