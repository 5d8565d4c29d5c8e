import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { makeBboFollower } from "../examples/bboFollower.js"
import { makePaperTrader } from "../examples/paperTrader.js"
import { layerTest, TEST_VENUES, testConfig } from "../layers/Test.js"
import * as Gateway from "../src/Gateway.js"
import { Metrics } from "../src/Metrics.js"
import { Pool } from "../src/Pool.js"
import { Recycler } from "../src/Recycler.js"
import { runAndCountLeftFibers } from "./support/leaks.js"

/** Advances the TestClock in 10 ms steps (each step lets every fiber due run). */
const advance = (ms: number) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += 10) yield* TestClock.adjust("10 millis")
  })

describe("Gateway", () => {
  it.effect("example: the BBO follower receives merged quotes from every venue", () =>
    Effect.gen(function*() {
      const bbo = makeBboFollower("bbo", { symbol: "BTC-USDT", providers: [...TEST_VENUES], windowMs: 100, maxFragments: 3 })
      const config = testConfig()
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [bbo.strategy] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(2_000)
          const state = bbo.state()
          yield* Fiber.interrupt(fiber)
          return state
        })
      )
      assert.isTrue(result.subscribed, "SubscribeMerged accepted")
      assert.deepStrictEqual(result.rejections, [])
      assert.isAbove(result.updates, 10, `merged quotes: ${result.updates}`)
      assert.deepStrictEqual([...result.venues].sort(), [...TEST_VENUES])
      assert.isTrue(TEST_VENUES.includes(result.bestBidProvider as never))
      assert.isBelow(Number(result.bestBid), Number(result.bestAsk) * 1.01)
      assert.strictEqual(left, 0, "fibers left after the scope closed")
    }))

  it.effect("example: the paper trader places and cancels orders and gets every report, in order", () =>
    Effect.gen(function*() {
      const trader = makePaperTrader("trader", { symbol: "BTC-USDT", quantity: "0.001", intervalMs: 100 })
      const config = testConfig()
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [trader.strategy] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(3_000)
          const state = trader.state()
          yield* Fiber.interrupt(fiber)
          return { state, recycler: yield* Recycler }
        })
      )
      const s = result.state
      assert.isAbove(s.submitted, 5, `submitted ${s.submitted}`)
      assert.isAbove(s.byStatus.new, 0)
      assert.isAbove(s.byStatus.canceled, 0, "resting limit orders were canceled")
      assert.isAbove(s.byStatus.filled, 0, "market orders filled")
      assert.strictEqual(s.outOfOrder, 0, "reports of each order arrive 1, 2, 3, ...")
      assert.deepStrictEqual(s.rejections, [])
      assert.isAbove(s.closedOrders, 3)
      assert.strictEqual(left, 0, "fibers left after the scope closed")
      assert.strictEqual(result.recycler.leakReport().total, 0, "outstanding pooled objects after the scope closed")
    }))

  it.effect("status: metrics move, /ready's readiness follows the books, the status line is compact", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const bbo = makeBboFollower("bbo", { symbol: "BTC-USDT", providers: [...TEST_VENUES], windowMs: 100, maxFragments: 3 })
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const metrics = yield* Metrics
          const pool = yield* Pool
          const before = yield* metrics.snapshot
          const fiber = yield* Gateway.run(config, { strategies: [bbo.strategy] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(1_000)
          const first = yield* metrics.snapshot
          yield* advance(1_000)
          const second = yield* metrics.snapshot
          const text = yield* metrics.scrape
          yield* Fiber.interrupt(fiber)
          return { before, first, second, text, outstanding: pool.stats().Event.outstanding }
        })
      )
      const { before, first, second, text } = result
      assert.isFalse(before.readiness.ready, "not ready before the providers run")
      assert.isTrue(second.readiness.ready, second.readiness.reasons.join("; "))
      assert.isAbove(second.totals.eventsIn, first.totals.eventsIn)
      assert.isAbove(second.totals.deliveries, first.totals.deliveries)
      assert.isAbove(second.rates.eventsIn, 0)
      assert.deepStrictEqual(second.consumers.map((c) => c.id).sort(), ["bbo", "gateway"])
      assert.match(text, /meltica_dispatcher_deliveries_total\{[^}]*\} \d+/)
      assert.match(text, /meltica_pool_utilization\{pool="Event"/)
      const line = Gateway.statusLine(second)
      assert.match(line, /^in [\d.]+\/s out [\d.]+\/s deliveries [\d.]+\/s \| p99 [\d.]+us \| pool Event [\d.]+% /)
      assert.include(line, "lag gateway:0 bbo:")
      assert.strictEqual(left, 0)
    }))

  it.effect("status line over NATS: the link's state and what crossed it; readiness reasons counted", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const snapshot = yield* Effect.flatMap(Metrics, (m) => m.snapshot).pipe(Effect.provide(layerTest(config)), Effect.scoped)
      assert.isUndefined(snapshot.nats, "no NATS section in memory")
      assert.notInclude(Gateway.statusLine(snapshot), "nats")
      const line = Gateway.statusLine({
        ...snapshot,
        nats: {
          connected: false,
          reconnects: 2,
          market: { published: 0, received: 1200, dropped: 0, subjects: 2 },
          critical: { published: 0, delivered: { exec_report: 9, control_ack: 3, control_result: 3 } },
          commands: { submitted: 3, handled: 0 },
          malformed: 0
        },
        readiness: { ready: false, reasons: ["nats: not connected", "nats: no consumer attached yet"] }
      })
      assert.isTrue(
        line.endsWith(" | nats down md out 0 in 1200 critical out 0 in 15 | not ready: 2 reason(s)"),
        line
      )
    }))

  it("routesOf: each symbol from every venue that quotes it, with its merges", () => {
    const routes = Gateway.routesOf(testConfig())
    assert.deepStrictEqual(routes.map((r) => [r.symbol, r.providers, r.merges.map((m) => m.kind)]), [
      ["BTC-USDT", ["sim-a", "sim-b", "sim-c"], ["ticker"]],
      ["ETH-USDT", ["sim-a", "sim-b", "sim-c"], []]
    ])
  })
})
