/**
 * The programmatic entry point: `runGateway({ config, strategies })` runs the
 * configured and the given strategies on the application layer the
 * configuration describes, and on interruption closes it and logs the leak
 * report and the fibers left, as `npm start` does.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, TestClock } from "effect"
import crossVenue from "../../examples/crossVenue.js"
import { runGateway } from "../../layers/Application.js"
import { testConfig } from "../../layers/Test.js"
import { HttpSection, OrdersStrategyConfig, StrategiesSection } from "../../schema/Config.js"
import * as Strategy from "../../src/strategy/index.js"

describe("runGateway", () => {
  it.effect("runs the configured and the given strategies, then logs the leak report and the fibers left", () =>
    Effect.gen(function*() {
      const messages: Array<string> = []
      const collect = Logger.make(({ message }) => {
        messages.push(Array.isArray(message) ? String(message[0]) : String(message))
      })
      const config = testConfig({
        http: HttpSection.make({ enabled: false }),
        strategies: StrategiesSection.make({ orders: OrdersStrategyConfig.make({ enabled: false }) })
      })
      const observed = Strategy.observe(crossVenue)
      const fiber = yield* runGateway({
        config,
        strategies: [{ strategy: observed.strategy, options: { minEdgeBps: -10_000, cooldownMs: 250 } }]
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)), Effect.fork)
      for (let t = 0; t < 150; t++) yield* TestClock.adjust("10 millis")
      const trades = observed.state().trades
      yield* Fiber.interrupt(fiber)
      assert.isAbove(trades, 0, "the given strategy ran")
      const started = messages.filter((m) => m === "strategy started").length
      assert.strictEqual(started, 2, "the configured example and the given strategy")
      assert.include(messages, "leak report: 0 outstanding pooled object(s) (Event 0, MergedEvent 0, ExecReport 0)")
      assert.include(messages, "fibers left: 0")
    }))
})
