import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { layerTest, testConfig } from "../../layers/Test.js"
import { MailboxSection } from "../../schema/Config.js"
import { Consumers } from "../../src/Consumer.js"
import * as Gateway from "../../src/Gateway.js"
import * as Strategy from "../../src/strategy/index.js"

/** A strategy whose first ticker handler call never returns; it counts the tickers it handles. */
const stuckOnce = (eventTimeoutMs?: number) => {
  let calls = 0
  const strategy = Strategy.define({
    id: "stuck-once",
    ...(eventTimeoutMs === undefined ? {} : { eventTimeoutMs }),
    start: (ctx) => ctx.subscribe("BTC-USDT", ["ticker"]),
    on: { ticker: () => ++calls === 1 ? Effect.never : Effect.void }
  })
  return { strategy, calls: () => calls }
}

/** Runs the gateway with `strategy` for `ms` of TestClock time; the consumer's stats at the end. */
const runFor = (ms: number, strategy: Strategy.Strategy, mailbox: Partial<ConstructorParameters<typeof MailboxSection>[0]> = {}) =>
  Effect.gen(function*() {
    const config = testConfig({ mailbox: MailboxSection.make(mailbox) })
    return yield* Effect.gen(function*() {
      const gateway = yield* Effect.fork(Gateway.run(config, { strategies: [{ strategy }] }))
      for (let t = 0; t < ms; t += 10) yield* TestClock.adjust("10 millis")
      const stats = (yield* Consumers).list().find((h) => h.stats().id === "stuck-once")!.stats()
      yield* Fiber.interrupt(gateway)
      return stats
    }).pipe(Effect.scoped, Effect.provide(layerTest(config)))
  })

describe("a strategy handler's time limit", () => {
  it.effect("from the configuration (mailbox.eventTimeoutMs): a handler that never returns is interrupted, counted, and the strategy goes on", () =>
    Effect.gen(function*() {
      const s = stuckOnce()
      const stats = yield* runFor(2_000, s.strategy, { eventTimeoutMs: 200 })
      assert.strictEqual(stats.timeouts, 1)
      assert.isAbove(s.calls(), 1, "later tickers are handled")
    }))

  it.effect("the strategy's own eventTimeoutMs wins over the configuration's", () =>
    Effect.gen(function*() {
      const s = stuckOnce(100)
      const stats = yield* runFor(2_000, s.strategy, { eventTimeoutMs: 3_600_000 })
      assert.strictEqual(stats.timeouts, 1)
      assert.isAbove(s.calls(), 1)
    }))

  it.effect("without a limit, a handler that never returns holds its strategy", () =>
    Effect.gen(function*() {
      const s = stuckOnce()
      const stats = yield* runFor(2_000, s.strategy)
      assert.strictEqual(stats.timeouts, 0)
      assert.strictEqual(s.calls(), 1)
    }))
})
