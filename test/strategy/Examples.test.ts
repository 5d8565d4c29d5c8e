/** The cross-venue example under the test layer and the TestClock. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import crossVenue from "../../examples/crossVenue.js"
import { layerMemory } from "../../layers/Memory.js"
import { layerTest, testConfig } from "../../layers/Test.js"
import * as Gateway from "../../src/Gateway.js"
import * as Strategy from "../../src/strategy/index.js"
import { run } from "../../src/strategy/Strategy.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { advance } from "../support/clock.js"

describe("example: cross venue", () => {
  it.effect("follows two venues' quotes and trades round trips on the paper venue, each outcome typed", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const observed = Strategy.observe(crossVenue)
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, {
            strategies: [{
              strategy: observed.strategy,
              // any quote is an opportunity here, so that it trades within the test
              options: { venues: ["sim-a", "sim-c"], minEdgeBps: -10_000, cooldownMs: 300 }
            }]
          }).pipe(Effect.scoped, Effect.fork)
          yield* advance(2_000)
          const s = observed.state()
          const state = { ...s, quotes: { ...s.quotes }, rejections: { ...s.rejections } }
          yield* Fiber.interrupt(fiber)
          return state
        })
      )
      assert.deepStrictEqual(result.venues, ["sim-a", "sim-c"])
      assert.isAbove(result.quotes["sim-a"]!, 5)
      assert.isAbove(result.quotes["sim-c"]!, 5)
      assert.isUndefined(result.quotes["sim-b"], "a venue not followed is ignored")
      assert.isAbove(result.crossings, 0)
      // one round trip per cooldown at most: 2 s / 300 ms
      assert.isAtLeast(result.trades, 3)
      assert.isAtMost(result.trades, 7)
      assert.deepStrictEqual(result.rejections, {})
      assert.isAtLeast(result.accepted, 2 * result.trades - 2, "both legs of each finished round trip accepted")
      assert.isAbove(result.fills, 0)
      assert.strictEqual(left, 0)
    }))

  it.effect("without two venues to follow it does not start, and says why", () =>
    Effect.gen(function*() {
      const failure = yield* run(crossVenue, {
        topology: { symbols: ["BTC-USDT"], providers: ["sim-a"], merges: [] }
      }).pipe(Effect.flip, Effect.scoped, Effect.provide(layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a"] })))
      assert.strictEqual(failure._tag, "StrategyStartFailed")
      assert.include(failure.message, "TwoVenuesNeeded")
      assert.include(failure.message, "follows two venues of BTC-USDT")
    }))
})
