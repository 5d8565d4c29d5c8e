// test/tutorial.test.ts
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import spreadWatcher from "../examples/tutorial/spreadWatcher.js"
import { layerTest, testConfig } from "../layers/Test.js"
import * as Gateway from "../src/Gateway.js"
import * as Strategy from "../src/strategy/index.js"

// runs the gateway with the strategy on the test venues for `ms` of TestClock time, and returns its state
const runFor = (ms: number, options: object) =>
  Effect.gen(function*() {
    const config = testConfig()
    const observed = Strategy.observe(spreadWatcher)
    const gateway = yield* Gateway.run(config, { strategies: [{ strategy: observed.strategy, options }] }).pipe(
      Effect.scoped,
      Effect.provide(layerTest(config)),
      Effect.fork
    )
    // nothing moves until the clock does: 10 ms at a time, as the simulated venues tick
    for (let t = 0; t < ms; t += 10) yield* TestClock.adjust("10 millis")
    const state = observed.state()
    yield* Fiber.interrupt(gateway)
    return state
  })

describe("tutorial: spread watcher", () => {
  it.effect("follows both venues, and its one order is accepted and filled", () =>
    Effect.gen(function*() {
      const state = yield* runFor(1_000, { venues: ["sim-a", "sim-c"], thresholdBps: 0 })
      assert.deepStrictEqual([...state.mids.keys()].sort(), ["sim-a", "sim-c"])
      assert.isDefined(state.spreadBps)
      assert.deepStrictEqual(state.order, { accepted: "filled" })
    }))

  it.effect("a quantity the venue refuses comes back as a typed rejection", () =>
    Effect.gen(function*() {
      const state = yield* runFor(1_000, { thresholdBps: 0, quantity: "0" })
      assert.deepStrictEqual(state.order, { rejected: "InvalidQuantity" })
    }))

  it.effect("below the threshold it only watches", () =>
    Effect.gen(function*() {
      const state = yield* runFor(1_000, { thresholdBps: 10_000 })
      assert.isDefined(state.spreadBps)
      assert.strictEqual(state.order, "none")
    }))
})
