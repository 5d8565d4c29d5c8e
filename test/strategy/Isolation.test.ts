/**
 * A strategy that cannot run (its module does not load, its options do not
 * decode, its `start` fails or dies, its id is taken) is reported with its id
 * (or its file) and the cause, stopped alone, and the others go on; readiness
 * and the status snapshot say so.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger } from "effect"
import bboFollower from "../../examples/bboFollower.js"
import paperTrader from "../../examples/paperTrader.js"
import { layerTest, testConfig } from "../../layers/Test.js"
import { Consumers } from "../../src/Consumer.js"
import * as Gateway from "../../src/Gateway.js"
import { Status } from "../../src/Status.js"
import * as Strategy from "../../src/strategy/index.js"
import { StrategyRegistry } from "../../src/strategy/Registry.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { advance } from "../support/clock.js"

const fixture = (name: string) => `test/strategy/fixtures/${name}`

describe("strategy isolation", () => {
  it.effect("each way a strategy can fail to start is reported by id or file, and the others run", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const follower = Strategy.observe(bboFollower)
      const logs: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
      const collect = Logger.make(({ annotations, message }) => {
        const m = Array.isArray(message) ? String(message[0]) : String(message)
        if (m === "strategy not started") logs.push({ message: m, annotations: Object.fromEntries(annotations) })
      })
      const failing = Strategy.define({
        id: "fails-typed",
        start: () => Effect.fail({ _tag: "ModelMissing", message: "no model file" })
      })
      const dying = Strategy.define({ id: "dies", start: () => Effect.die(new Error("division by zero")) })
      const timersStopped: Array<string> = []
      const partial = Strategy.define({
        id: "fails-after-a-timer",
        start: () =>
          Effect.gen(function*() {
            // a timer forked before the failure stops with the strategy
            yield* Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => timersStopped.push("timer"))), Effect.forkScoped)
            return yield* Effect.fail("gave up")
          })
      })
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, {
            strategies: [
              { strategy: follower.strategy, options: { symbol: "BTC-USDT" } },
              { strategy: paperTrader, options: { intervalMs: "fast" } },
              { strategy: failing },
              { strategy: dying },
              { strategy: partial },
              { strategy: Strategy.define({ id: "bbo-follower" }) },
              { module: fixture("failingStart.ts") },
              { module: fixture("throwsAtImport.ts") },
              { module: fixture("notAStrategy.ts") },
              { module: fixture("missing.ts") },
              { module: fixture("unnamed.ts") }
            ]
          }).pipe(Effect.scoped, Effect.fork)
          yield* advance(2_000)
          const snapshot = yield* Effect.flatMap(Status, (s) => s.snapshot)
          const consumers = (yield* Consumers).list().map((c) => c.id).sort()
          const registry = (yield* StrategyRegistry).list()
          const updates = follower.state().updates
          yield* Fiber.interrupt(fiber)
          return { snapshot, consumers, registry, updates }
        }).pipe(Effect.provide(Logger.add(collect)))
      )
      const { consumers, registry, snapshot, updates } = result
      assert.isAbove(updates, 5, "the healthy strategy runs on")
      assert.deepStrictEqual(consumers, ["bbo-follower", "gateway"], "nothing left of the failed ones")
      assert.deepStrictEqual(timersStopped, ["timer"])
      const failed = Object.fromEntries(registry.filter((s) => s.state === "failed").map((s) => [s.id, s.reason ?? ""]))
      assert.deepStrictEqual(Object.keys(failed).sort(), [
        "dies",
        "fails-after-a-timer",
        "bbo-follower (second)",
        "fails-typed",
        "failing-start",
        "paper-trader",
        fixture("missing.ts"),
        fixture("notAStrategy.ts"),
        fixture("throwsAtImport.ts"),
        "unnamed"
      ].sort())
      assert.include(failed["paper-trader"], "invalid options")
      assert.include(failed["paper-trader"], "intervalMs")
      assert.include(failed["fails-typed"], "ModelMissing")
      assert.include(failed["dies"], "division by zero")
      assert.include(failed["failing-start"], "the strategy could not read its model")
      assert.include(failed[fixture("throwsAtImport.ts")], "broken at import")
      assert.include(failed[fixture("notAStrategy.ts")], "not a strategy")
      assert.include(failed[fixture("missing.ts")], "did not load")
      assert.include(failed["unnamed"], "no venue to trade on", "a strategy without an id is named after its file")
      assert.strictEqual(registry.find((s) => s.id === "unnamed")?.module, fixture("unnamed.ts"))
      assert.deepStrictEqual(registry.find((s) => s.id === "bbo-follower")?.state, "running", "the first of two with one id runs")

      // readiness names each, and the status snapshot lists every strategy by id
      assert.isFalse(snapshot.readiness.ready)
      for (const id of Object.keys(failed)) {
        assert.isTrue(snapshot.readiness.reasons.some((r) => r.startsWith(`strategy ${id}: `)), id)
      }
      for (const r of snapshot.readiness.reasons) assert.notMatch(r, /^strategy ([^:]+): strategy \1: /, "the id is named once")
      assert.deepStrictEqual(
        snapshot.strategies?.map((s) => [s.id, s.state]).sort(),
        registry.map((s) => [s.id, s.state]).sort()
      )
      assert.include(failed["bbo-follower (second)"], "another strategy already runs with this id")
      // and the log names each: by id, or by file when there is none
      const named = logs.map((l) => String(l.annotations.strategy_id)).sort()
      assert.deepStrictEqual(named, Object.keys(failed).sort())
      assert.isTrue(logs.every((l) => typeof l.annotations.reason === "string" && !String(l.annotations.reason).includes("\n    at ")))
      assert.strictEqual(left, 0)
    }))
})

describe("strategy start", () => {
  it.effect("a start may wait for market data (the providers run first); one that never finishes is reported at its timeout", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const waits = Strategy.define({
        id: "waits-for-a-quote",
        init: () => ({ firstBid: undefined as string | undefined, quote: undefined as Deferred.Deferred<string> | undefined }),
        start: (ctx) =>
          Effect.gen(function*() {
            const quote = yield* Deferred.make<string>()
            ctx.state.quote = quote
            yield* ctx.subscribe("BTC-USDT", ["ticker"])
            ctx.state.firstBid = yield* Deferred.await(quote)
          }),
        on: {
          ticker: (event, ctx) => ctx.state.quote === undefined ? Effect.void : Deferred.succeed(ctx.state.quote, event.payload.bidPrice)
        }
      })
      const observed = Strategy.observe(waits)
      const stuck = Strategy.define({ id: "stuck", startTimeoutMs: 2_000, start: () => Effect.never })
      const { result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [{ strategy: observed.strategy }, { strategy: stuck }] }).pipe(
            Effect.scoped,
            Effect.fork
          )
          yield* advance(1_000)
          const early = (yield* StrategyRegistry).list().map((s) => [s.id, s.state])
          yield* advance(1_500)
          const late = (yield* StrategyRegistry).list().map((s) => [s.id, s.state, s.reason ?? ""])
          yield* Fiber.interrupt(fiber)
          return { early, late, firstBid: observed.state().firstBid }
        })
      )
      assert.deepStrictEqual(result.early.sort(), [["stuck", "starting"], ["waits-for-a-quote", "running"]])
      assert.isString(result.firstBid)
      const stuckNow = result.late.find((s) => s[0] === "stuck")!
      assert.strictEqual(stuckNow[1], "failed")
      assert.include(stuckNow[2], "start did not finish within 2000 ms")
    }))
})
