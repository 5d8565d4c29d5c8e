/**
 * The SC-005 scenario, shared by its test (small) and `bench/sc005.ts` (full
 * size): `events` market events fanned out to `subscribers` consumers whose
 * lambdas die on a fixed share of calls (the seeds' panics), from a seeded
 * generator so that a run can be replayed.
 *
 * It returns what the checks need: how many deliveries completed, how many
 * lambdas died, how many failures the runtime counted and reported (with
 * their log annotations), what was still outstanding in the pool at the end,
 * and how many fibers were left once the scope closed.
 */
import { Effect, Exit, Layer, Logger, Scope, Supervisor } from "effect"
import type { Context } from "effect"
import { layerCore } from "../../layers/Core.js"
import { Consumers } from "../../src/Consumer.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import { Pool } from "../../src/Pool.js"
import { benchTicker } from "./report.js"

export interface Sc005Options {
  readonly events: number
  readonly subscribers: number
  /** Share of lambda calls that die (0.1 in the seeds). */
  readonly deathRate: number
  readonly seed?: number
}

export interface Sc005Result {
  readonly deliveries: number
  readonly deaths: number
  /** Failures the runtime counted, over every consumer. */
  readonly failuresCounted: number
  /** The annotations of every "consumer lambda failed" log line. */
  readonly reported: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly outstandingAtEnd: number
  /** Fibers alive before the scope closed, and left after. */
  readonly aliveBefore: number
  readonly fibersLeft: number
  readonly elapsedMs: number
}

/** A small deterministic generator in [0, 1). */
const lcg = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
  return seed / 0x7fffffff
}

const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const

/** Yields until `done()` holds; dies after `maxYields` (a delivery that never comes is a failure, not a hang). */
const until = (done: () => boolean, what: string, maxYields = 10_000_000) =>
  Effect.gen(function*() {
    for (let i = 0; i < maxYields; i++) {
      if (done()) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })

export const runSc005 = (options: Sc005Options): Effect.Effect<Sc005Result> =>
  Effect.gen(function*() {
    const { events, subscribers, deathRate } = options
    const reported: Array<Record<string, unknown>> = []
    const capture = Logger.make(({ annotations, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (!text.includes("consumer lambda failed")) return
      const a: Record<string, unknown> = {}
      for (const [k, v] of annotations) a[k] = v
      reported.push(a)
    })
    const random = lcg(options.seed ?? 42)
    let deaths = 0
    let completed = 0
    const supervisor = yield* Supervisor.track
    const scope = yield* Scope.make()
    const t0 = performance.now()
    const context: Context.Context<Pool | Dispatcher | Consumers> = yield* Layer.buildWithScope(layerCore(), scope).pipe(
      Effect.supervised(supervisor)
    )
    const inside = yield* Effect.gen(function*() {
      const pool = yield* Pool
      const dispatcher = yield* Dispatcher
      const consumers = yield* Consumers
      for (let i = 0; i < subscribers; i++) {
        yield* consumers.start({
          id: `strategy-${i}`,
          subscriptions: [btc],
          mailbox: { marketCapacity: events },
          handle: () =>
            Effect.suspend(() => {
              completed++
              if (random() < deathRate) {
                deaths++
                return Effect.die(new Error("strategy panicked"))
              }
              return Effect.void
            })
        }).pipe(Effect.orDie)
      }
      for (let seq = 1; seq <= events; seq++) {
        const e = pool.acquireEvent()
        e.provider = "sim-a"
        e.symbol = "BTC-USDT"
        e.kind = "ticker"
        e.payload = benchTicker
        e.seqProvider = seq
        e.traceId = `trace-${seq}`
        yield* dispatcher.dispatch(e)
        if (seq % 1_000 === 0) yield* Effect.yieldNow()
      }
      yield* until(() => completed === events * subscribers, "every delivery")
      return {
        failuresCounted: consumers.list().reduce((n, h) => n + h.stats().failures, 0),
        outstandingAtEnd: pool.stats().Event.outstanding
      }
    }).pipe(
      Effect.provide(context),
      Effect.supervised(supervisor),
      Effect.provide(Logger.replace(Logger.defaultLogger, capture))
    )
    const aliveBefore = (yield* supervisor.value).length
    yield* Scope.close(scope, Exit.void)
    const fibersLeft = (yield* supervisor.value).length
    return {
      deliveries: completed,
      deaths,
      reported,
      aliveBefore,
      fibersLeft,
      elapsedMs: performance.now() - t0,
      ...inside
    }
  })
