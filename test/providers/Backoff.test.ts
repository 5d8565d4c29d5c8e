import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Schedule, TestClock } from "effect"
import { Backoff } from "../../schema/ProviderConfig.js"
import { backoffSchedule } from "../../src/providers/internal/connection.js"

const delays = (b: Backoff, n: number) =>
  Schedule.run(backoffSchedule(b), 0, Array.from({ length: n }, () => undefined)).pipe(
    Effect.map((c) => Chunk.toReadonlyArray(c).map(Duration.toMillis))
  )

describe("reconnect backoff", () => {
  it.effect("is exponential from initialMs by factor and capped at maxMs", () =>
    Effect.gen(function*() {
      const d = yield* delays(Backoff.make({ initialMs: 100, factor: 2, maxMs: 1_000, jitter: 0 }), 7)
      assert.deepStrictEqual(d, [100, 200, 400, 800, 1_000, 1_000, 1_000])
    }))

  it.effect("jitters each delay within ±jitter, never above the cap", () =>
    Effect.gen(function*() {
      const d = yield* delays(Backoff.make({ initialMs: 100, factor: 2, maxMs: 1_000, jitter: 0.2 }), 8)
      const base = [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]
      d.forEach((ms, i) => {
        assert.isAtLeast(ms, Math.min(base[i] * 0.8, 1_000) - 1e-9, `delay ${i}`)
        assert.isAtMost(ms, Math.min(base[i] * 1.2, 1_000) + 1e-9, `delay ${i}`)
      })
      assert.isTrue(d.slice(0, 3).some((ms, i) => ms !== base[i]), "jitter moved at least one delay")
    }))

  it.effect("a retry driven by it waits exactly those delays on the Clock", () =>
    Effect.gen(function*() {
      const attempts: Array<number> = []
      const fiber = yield* Effect.suspend(() => Effect.flatMap(Effect.clock, (c) => Effect.sync(() => attempts.push(c.unsafeCurrentTimeMillis())))).pipe(
        Effect.zipRight(Effect.fail("refused")),
        Effect.retry(backoffSchedule(Backoff.make({ initialMs: 500, factor: 2, maxMs: 3_000, jitter: 0 }))),
        Effect.fork
      )
      yield* TestClock.adjust(0)
      assert.deepStrictEqual(attempts, [0])
      yield* TestClock.adjust(499)
      assert.deepStrictEqual(attempts, [0])
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(attempts, [0, 500])
      yield* TestClock.adjust(1_000)
      assert.deepStrictEqual(attempts, [0, 500, 1_500])
      yield* TestClock.adjust(2_000 + 3_000 + 3_000)
      assert.deepStrictEqual(attempts, [0, 500, 1_500, 3_500, 6_500, 9_500])
      yield* Fiber.interrupt(fiber)
    }))
})
