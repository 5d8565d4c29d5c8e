import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, LogLevel, Scheduler } from "effect"
import { layerCore } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { gatewayScheduler } from "../src/internal/scheduler.js"
import { Pool } from "../src/Pool.js"
import { market } from "./support/events.js"

/**
 * A producer that never waits (bursts of 64 events, yielding between them)
 * and one consumer: the most events ever queued in the consumer's mailbox.
 */
const floodLag = (scheduler: Scheduler.Scheduler) =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const consumers = yield* Consumers
    let processed = 0
    const handle = yield* consumers.start({
      id: "busy",
      handle: () => Effect.sync(() => processed++),
      subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
      mailbox: { marketCapacity: 1 << 20 }
    })
    const BURSTS = 2_200 // past the bound of 2,048 drains
    let maxLag = 0
    let seq = 0
    for (let b = 0; b < BURSTS; b++) {
      for (let i = 0; i < 64; i++) yield* dispatcher.dispatch(market(pool, { seq: ++seq }))
      maxLag = Math.max(maxLag, handle.stats().lag)
      yield* Effect.yieldNow()
    }
    while (processed < seq) yield* Effect.yieldNow()
    return { maxLag, outstanding: pool.stats().Event.outstanding }
  }).pipe(
    Effect.scoped,
    Effect.provide(layerCore({ pool: { capacity: { Event: 1 << 12, MergedEvent: 16, ExecReport: 16 } } })),
    Effect.provide(Logger.minimumLogLevel(LogLevel.None)),
    Effect.withScheduler(scheduler)
  )

/**
 * Two fibers that only yield, the second started 1,000 yields after the first,
 * until they have yielded 9,000 times together: the most yields one of them
 * made in a row while the other made none.
 */
const longestRunAlone = (scheduler: Scheduler.Scheduler) =>
  Effect.gen(function*() {
    const STEPS = 9_000 // both fibers together
    let steps = 0
    let last = -1
    let run = 0
    let longest = 0
    const step = (who: number) => {
      run = who === last ? run + 1 : 1
      last = who
      if (run > longest) longest = run
    }
    const loop = (who: number) =>
      Effect.gen(function*() {
        while (steps++ < STEPS) {
          step(who)
          yield* Effect.yieldNow()
        }
      })
    const first = yield* Effect.fork(loop(0))
    for (let i = 0; i < 1_000; i++) yield* Effect.yieldNow()
    longest = 0 // counted from when both run
    run = 0
    const second = yield* Effect.fork(loop(1))
    yield* Fiber.join(first)
    yield* Fiber.join(second)
    return longest
  }).pipe(Effect.withScheduler(scheduler))

describe("the gateway's scheduler", () => {
  it.effect("a busy consumer keeps up with a producer that never waits, past Effect's 2,048-drain bound", () =>
    Effect.gen(function*() {
      const shipped = yield* floodLag(gatewayScheduler)
      assert.isAtMost(shipped.maxLag, 2 * 64, "at most the burst in flight behind the one being processed")
      assert.strictEqual(shipped.outstanding, 0)
    }))

  it.effect("two busy fibers out of step take turns at every drain, never one parked while the other runs on", () =>
    Effect.gen(function*() {
      const shipped = yield* longestRunAlone(gatewayScheduler)
      assert.isAtMost(shipped, 2)
      // Effect 3.22's own scheduler counts drains per fiber and parks the first
      // fiber past the bound on a timer while the other runs on alone for up to
      // a thousand drains (in bench:fanout, a consumer fell 65,000 events behind)
      const effects = yield* longestRunAlone(Scheduler.defaultScheduler)
      assert.isAbove(effects, 500)
    }))

  it.effect("a fiber that keeps yielding lets the event loop in after the bound, without a timer", () =>
    Effect.gen(function*() {
      let immediateRan = false
      setImmediate(() => (immediateRan = true))
      let yields = 0
      while (!immediateRan) {
        yields++
        yield* Effect.yieldNow()
      }
      assert.isAtMost(yields, 2_049 + 1)
      assert.isAtLeast(yields, 2_000, "microtask drains until the bound")
    }).pipe(Effect.withScheduler(gatewayScheduler)))
})
