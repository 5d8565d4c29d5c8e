/**
 * `isolation: worker` on a `strategies.modules` entry: the value is checked
 * at the configuration's boundary, and a gateway started from such a
 * configuration runs the strategy on a worker thread, subscribed through the
 * real Control Plane to the simulated venues, and stops with nothing left.
 */
import { resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Logger, Schema, TestClock } from "effect"
import { runGateway } from "../../layers/Application.js"
import { testConfig } from "../../layers/Test.js"
import { HttpSection, OrdersStrategyConfig, StrategiesSection, StrategyModuleConfig } from "../../schema/Config.js"
import { books, changeOf } from "./support.js"

const decode = Schema.decodeUnknownEither(StrategyModuleConfig)

describe("isolation: worker", () => {
  it("the configuration takes process or worker, and refuses anything else with a clear message", () => {
    assert.strictEqual(Either.getOrThrow(decode({ module: "s.ts", isolation: "worker" })).isolation, "worker")
    assert.strictEqual(Either.getOrThrow(decode({ module: "s.ts", isolation: "process" })).isolation, "process")
    assert.isUndefined(Either.getOrThrow(decode({ module: "s.ts" })).isolation)
    const hostile: ReadonlyArray<unknown> = ["thread", "WORKER", "", 1, null, true, ["worker"], { worker: true }]
    for (const isolation of hostile) {
      const result = decode({ module: "s.ts", isolation })
      assert.isTrue(Either.isLeft(result), `refused: ${JSON.stringify(isolation)}`)
      if (Either.isLeft(result)) assert.include(String(result.left), "isolation must be process or worker")
    }
  })

  it.effect("a gateway runs a configured worker strategy on the simulated venues and stops with nothing left", () =>
    Effect.gen(function*() {
      const b = books()
      const messages: Array<string> = []
      const collect = Logger.make(({ message }) => {
        messages.push(Array.isArray(message) ? String(message[0]) : String(message))
      })
      const config = testConfig({
        http: HttpSection.make({ enabled: false }),
        strategies: StrategiesSection.make({
          orders: OrdersStrategyConfig.make({ enabled: false }),
          modules: [
            StrategyModuleConfig.make({
              module: resolve("test/worker/fixtures/recorder.ts"),
              options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "BTC-USDT" },
              isolation: "worker"
            })
          ]
        })
      })
      const fiber = yield* runGateway({ config, strategies: [] }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, collect)),
        Effect.fork
      )
      // the worker starts in real time; the venues move with the test clock
      for (let i = 0; i < 2_000 && Atomics.load(b.seen, 0) < 5; i++) {
        yield* TestClock.adjust("10 millis")
        yield* changeOf(b.seen, 0, 10)
      }
      assert.isAtLeast(Atomics.load(b.seen, 0), 5, "tickers reached the worker's handler")
      assert.include(messages, "strategy started on a worker thread")
      yield* Fiber.interrupt(fiber)
      assert.include(messages, "leak report: 0 outstanding pooled object(s) (Event 0, MergedEvent 0, ExecReport 0)")
      assert.include(messages, "fibers left: 0")
    }), { timeout: 120_000 })
})
