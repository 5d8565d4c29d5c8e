/**
 * The risk checks in front of the venue (`src/execution/Risk.ts`): each limit
 * refuses with its typed rejection, counted, before the order reaches the
 * venue; a strategy's own limits win over the defaults; the kill switch
 * cancels every open order in its scope and refuses new orders and amends of
 * it until released.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, TestClock } from "effect"
import { KillSwitchEngaged, RiskLimit } from "../../schema/Rejection.js"
import { decimal } from "../../schema/Event.js"
import { checkLimits, type Exposure, makeRisk, Risk, type RiskSettings } from "../../src/execution/Risk.js"
import { applyStrategyRisk, riskSettings } from "../../layers/Application.js"
import { layerTest, testConfig } from "../../layers/Test.js"
import { OrdersStrategyConfig, RiskLimitsConfig, StrategiesSection, StrategyModuleConfig } from "../../schema/Config.js"
import { ExecutionVenue } from "../../src/ExecutionVenue.js"
import type { PaperVenueOptions } from "../../src/execution/Paper.js"
import { Pool } from "../../src/Pool.js"
import { Recycler } from "../../src/Recycler.js"
import { amend, book, cancel, limit, market, paperLayer, query, Received, roomy, type Services, SYM } from "./paperHarness.js"

const venues = { venues: { "sim-a": roomy, "sim-b": roomy } }

/** A paper venue with the risk checks in front: orders go through `risk.venue`, market data to the venue. */
const withRisk = <A, E>(
  settings: RiskSettings,
  f: (s: Services, risk: Risk["Type"]) => Effect.Effect<A, E>,
  options: PaperVenueOptions = venues
) =>
  Effect.gen(function*() {
    const risk = yield* Risk
    const s = { venue: yield* ExecutionVenue, pool: yield* Pool, recycler: yield* Recycler, received: yield* Received }
    const a = yield* f(s, risk)
    assert.strictEqual(s.pool.stats().ExecReport.outstanding, 0, "every report recycled")
    return a
  }).pipe(Effect.provide(Risk.layer(settings).pipe(Layer.provideMerge(paperLayer(options)))))

/** The failure of an effect that must fail. */
const refusal = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.either(effect), (r) => (Either.isLeft(r) ? Effect.succeed(r.left) : Effect.dieMessage("expected a refusal")))

const exposure = (over: Partial<Exposure>): Exposure => ({
  clientOrderId: "o-1",
  side: "buy",
  quantity: "1",
  remaining: "1",
  price: "100",
  position: "0",
  openOrders: 0,
  ...over
})

describe("risk checks (pure)", () => {
  it("each limit: at the limit passes, above it refuses with the figures; absent limits never refuse", () => {
    const table: ReadonlyArray<readonly [string, Parameters<typeof checkLimits>[0], Partial<Exposure>, string | undefined]> = [
      ["no limits", {}, { quantity: "1000000", remaining: "1000000", openOrders: 999 }, undefined],
      ["notional at the limit", { maxOrderNotional: "200" }, { quantity: "2", price: "100" }, undefined],
      ["notional above", { maxOrderNotional: "200" }, { quantity: "2.01", price: "100" }, "max_order_notional 201 200"],
      ["notional of an unknown price is the venue's", { maxOrderNotional: "1" }, { price: undefined }, undefined],
      ["position from flat", { maxPosition: "1" }, { remaining: "1" }, undefined],
      ["position above", { maxPosition: "1" }, { remaining: "0.5", position: "0.75" }, "max_position 1.25 1"],
      ["a sell reduces a long", { maxPosition: "1" }, { side: "sell", remaining: "2", position: "1.5" }, undefined],
      ["a sell that flips beyond the limit", { maxPosition: "1" }, { side: "sell", remaining: "3", position: "1.5" }, "max_position 1.5 1"],
      ["short side counted by magnitude", { maxPosition: "1" }, { side: "sell", remaining: "0.5", position: "-0.75" }, "max_position 1.25 1"],
      ["open orders below", { maxOpenOrders: 2 }, { openOrders: 1 }, undefined],
      ["open orders at the limit", { maxOpenOrders: 2 }, { openOrders: 2 }, "max_open_orders 3 2"],
      ["zero open orders refuses everything", { maxOpenOrders: 0 }, { openOrders: 0 }, "max_open_orders 1 0"],
      ["an amend adds no order", { maxOpenOrders: 0 }, { openOrders: undefined }, undefined],
      ["open orders checked first", { maxOpenOrders: 0, maxOrderNotional: "1" }, {}, "max_open_orders 1 0"]
    ]
    for (const [name, limits, over, expected] of table) {
      const r = checkLimits(limits, exposure(over))
      assert.strictEqual(r === undefined ? undefined : `${r.limit} ${r.value} ${r.maximum}`, expected, name)
      if (r !== undefined) assert.instanceOf(r, RiskLimit, name)
    }
  })
})

describe("risk checks in front of the paper venue", () => {
  it.effect("max_order_notional: a limit order at its price, a market order at the venue's mid; nothing reaches the venue", () =>
    withRisk({ defaults: { maxOrderNotional: "150" } }, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        yield* book(s, "sim-b", [["199", "10"]], [["201", "10"]])
        const before = s.venue.stats().orders
        const a = yield* refusal(risk.venue.submit(limit("n-1", "buy", "2", "100", { venue: "sim-a" })))
        assert.deepStrictEqual(a, new RiskLimit({ clientOrderId: "n-1", limit: "max_order_notional", value: "200", maximum: "150" }))
        // mid of sim-a is 100: 1.6 x 100 = 160
        const b = yield* refusal(risk.venue.submit(market("n-2", "buy", "1.6", { venue: "sim-a" })))
        assert.deepStrictEqual(b, new RiskLimit({ clientOrderId: "n-2", limit: "max_order_notional", value: "160", maximum: "150" }))
        // the same quantity is within the limit on no venue but a cheaper one: sim-b's mid is 200
        const c = yield* refusal(risk.venue.submit(market("n-3", "buy", "0.8", { venue: "sim-b" })))
        assert.strictEqual((c as RiskLimit).value, "160")
        assert.strictEqual(s.venue.stats().orders, before, "no refused order reached the venue")
        const ok = yield* risk.venue.submit(market("n-4", "buy", "1.4", { venue: "sim-a" }))
        assert.strictEqual(ok.status, "filled")
        assert.strictEqual(risk.stats().refused.max_order_notional, 3)
        assert.strictEqual(risk.stats().checked, 4)
      })))

  it.effect("max_position per (venue, symbol): the position after the order, long or short; other venues apart", () =>
    withRisk({ defaults: { maxPosition: "1.5" } }, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        yield* book(s, "sim-b", [["99", "10"]], [["101", "10"]])
        assert.strictEqual((yield* risk.venue.submit(market("p-1", "buy", "1", { venue: "sim-a" }))).status, "filled")
        const over = yield* refusal(risk.venue.submit(market("p-2", "buy", "0.6", { venue: "sim-a" })))
        assert.deepStrictEqual(over, new RiskLimit({ clientOrderId: "p-2", limit: "max_position", value: "1.6", maximum: "1.5" }))
        // a resting limit counts as if it filled
        const resting = yield* refusal(risk.venue.submit(limit("p-3", "buy", "0.6", "90", { venue: "sim-a" })))
        assert.strictEqual((resting as RiskLimit).limit, "max_position")
        // sim-b is another position
        assert.strictEqual((yield* risk.venue.submit(market("p-4", "buy", "1.5", { venue: "sim-b" }))).status, "filled")
        // selling 2.5 on sim-a leaves -1.5: allowed; 2.6 would leave -1.6
        yield* refusal(risk.venue.submit(market("p-5", "sell", "2.6", { venue: "sim-a" })))
        assert.strictEqual((yield* risk.venue.submit(market("p-6", "sell", "2.5", { venue: "sim-a" }))).status, "filled")
        assert.strictEqual(risk.stats().refused.max_position, 3)
      })))

  it.effect("max_open_orders: working orders count, a cancel frees a place, a resubmission is answered by the venue", () =>
    withRisk({ defaults: { maxOpenOrders: 2 } }, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        yield* risk.venue.submit(limit("m-1", "buy", "0.1", "90", { venue: "sim-a" }))
        const second = limit("m-2", "buy", "0.1", "91", { venue: "sim-a" })
        yield* risk.venue.submit(second)
        const third = yield* refusal(risk.venue.submit(limit("m-3", "buy", "0.1", "92", { venue: "sim-a" })))
        assert.deepStrictEqual(third, new RiskLimit({ clientOrderId: "m-3", limit: "max_open_orders", value: "3", maximum: "2" }))
        // the same order again is not a new one: the venue answers it with the existing order
        const again = yield* risk.venue.submit(second)
        assert.strictEqual(again.clientOrderId, "m-2")
        yield* risk.venue.cancel(cancel("m-1"))
        assert.strictEqual((yield* risk.venue.submit(limit("m-3", "buy", "0.1", "92", { venue: "sim-a" }))).status, "new")
        assert.strictEqual(risk.stats().refused.max_open_orders, 1)
      })))

  it.effect("an amend is checked at its new price and quantity; a strategy's own limits win over the defaults", () =>
    withRisk({ defaults: { maxOrderNotional: "1000" }, byConsumer: { "strat-b": { maxOrderNotional: "50" } } }, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        yield* risk.venue.submit(limit("a-1", "buy", "5", "90", { venue: "sim-a" }))
        const up = yield* refusal(risk.venue.amend(amend("a-1", { quantity: "12" })))
        assert.deepStrictEqual(up, new RiskLimit({ clientOrderId: "a-1", limit: "max_order_notional", value: "1080", maximum: "1000" }))
        assert.strictEqual((yield* risk.venue.query(query("a-1"))).quantity, "5", "the refused amend changed nothing")
        assert.strictEqual((yield* risk.venue.amend(amend("a-1", { price: "95", quantity: "10" }))).price, "95")
        // strat-b trades under its own, tighter limit; strat-a under the default
        const b = yield* refusal(risk.venue.submit(limit("b-1", "buy", "1", "90", { venue: "sim-a", consumerId: "strat-b" })))
        assert.strictEqual((b as RiskLimit).maximum, "50")
        risk.setLimits("strat-b", { maxOrderNotional: "100" })
        assert.strictEqual(
          (yield* risk.venue.submit(limit("b-1", "buy", "1", "90", { venue: "sim-a", consumerId: "strat-b" }))).status,
          "new"
        )
        assert.deepStrictEqual(risk.limitsOf("strat-a"), { maxOrderNotional: "1000", maxPosition: undefined, maxOpenOrders: undefined })
      })))

  it.effect("kill switch: a consumer's scope cancels its orders only; the gateway's cancels all; each release frees its own scope", () =>
    withRisk({}, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        yield* risk.venue.submit(limit("k-a1", "buy", "0.1", "90", { venue: "sim-a" }))
        yield* risk.venue.submit(limit("k-a2", "sell", "0.1", "110", { venue: "sim-a" }))
        yield* risk.venue.submit(limit("k-b1", "buy", "0.1", "90", { venue: "sim-a", consumerId: "strat-b" }))

        const own = yield* risk.killSwitch(true, "strat-a", "test")
        assert.deepStrictEqual(own, { engaged: true, target: "strat-a", canceled: 2, state: { global: false, consumers: ["strat-a"] } })
        assert.strictEqual((yield* risk.venue.query(query("k-a1"))).status, "canceled")
        assert.strictEqual((yield* risk.venue.query(query("k-b1", "strat-b"))).status, "new")
        const refused = yield* refusal(risk.venue.submit(market("k-a3", "buy", "0.1", { venue: "sim-a" })))
        assert.deepStrictEqual(refused, new KillSwitchEngaged({ clientOrderId: "k-a3", consumerId: "strat-a", scope: "strat-a" }))
        // strat-b trades on
        yield* risk.venue.submit(limit("k-b2", "buy", "0.1", "91", { venue: "sim-a", consumerId: "strat-b" }))

        const all = yield* risk.killSwitch(true, "*", "test")
        assert.strictEqual(all.canceled, 2, "strat-b's two orders")
        const b = yield* refusal(risk.venue.submit(limit("k-b3", "buy", "0.1", "90", { venue: "sim-a", consumerId: "strat-b" })))
        assert.deepStrictEqual(b, new KillSwitchEngaged({ clientOrderId: "k-b3", consumerId: "strat-b", scope: "*" }))
        // an amend is refused too; a cancel or a query is not
        assert.instanceOf(yield* refusal(risk.venue.amend(amend("k-b2", { price: "92" }, "strat-b"))), KillSwitchEngaged)
        assert.strictEqual((yield* risk.venue.query(query("k-b2", "strat-b"))).status, "canceled")

        // releasing the gateway's switch leaves strat-a's own engaged
        assert.deepStrictEqual((yield* risk.killSwitch(false, "*", "test")).state, { global: false, consumers: ["strat-a"] })
        assert.strictEqual(
          (yield* risk.venue.submit(limit("k-b3", "buy", "0.1", "90", { venue: "sim-a", consumerId: "strat-b" }))).status,
          "new"
        )
        assert.instanceOf(yield* refusal(risk.venue.submit(limit("k-a4", "buy", "0.1", "90", { venue: "sim-a" }))), KillSwitchEngaged)
        yield* risk.killSwitch(false, "strat-a", "test")
        assert.strictEqual((yield* risk.venue.submit(limit("k-a4", "buy", "0.1", "90", { venue: "sim-a" }))).status, "new")
        const stats = risk.stats()
        assert.strictEqual(stats.refused.kill_switch, 4)
        assert.strictEqual(stats.engagements, 2)
        assert.strictEqual(stats.canceledByKillSwitch, 4)
        assert.deepStrictEqual(stats.killSwitch, { global: false, consumers: [] })
      })))
})

const configured = testConfig({
  risk: RiskLimitsConfig.make({ maxOrderNotional: "50000", maxOpenOrders: 20 }),
  strategies: StrategiesSection.make({
    orders: OrdersStrategyConfig.make({ risk: RiskLimitsConfig.make({ maxOpenOrders: 2 }) }),
    modules: [
      StrategyModuleConfig.make({ module: "examples/crossVenue.ts", risk: RiskLimitsConfig.make({ maxPosition: "0.1" }) }),
      StrategyModuleConfig.make({ module: "test/strategy/fixtures/missing.ts", risk: RiskLimitsConfig.make({ maxPosition: "9" }) })
    ]
  })
})

describe("kill switch and the venue's latency", () => {
  it.effect("an order on its way to the venue when the switch is engaged is canceled before it arrives", () =>
    withRisk({}, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        const travelling = yield* Effect.fork(risk.venue.submit(market("l-1", "buy", "1", { venue: "sim-a" })))
        yield* TestClock.adjust("10 millis")
        const engaged = yield* risk.killSwitch(true, "*", "test")
        assert.strictEqual(engaged.canceled, 1, "the order in flight is one of the open orders")
        yield* TestClock.adjust("100 millis")
        const arrived = yield* Fiber.join(travelling)
        assert.deepStrictEqual([arrived.status, arrived.filledQty], ["canceled", "0"])
        assert.isUndefined(s.venue.portfolio().byConsumer.find((c) => c.positions.some((p) => p.quantity !== "0")))
      }), { venues: { "sim-a": { ...roomy, latencyMs: 50 } } }))
})

describe("risk limits from the configuration", () => {
  it.effect("the gateway's defaults, the examples' own by their ids, a strategy file's own by the id its strategy has", () =>
    Effect.gen(function*() {
      const settings = riskSettings(configured)
      assert.deepStrictEqual(settings.byConsumer, { "paper-trader": RiskLimitsConfig.make({ maxOpenOrders: 2 }) })
      const risk = yield* Risk
      // a file that does not load is skipped here (the runner reports it)
      yield* applyStrategyRisk(configured, process.cwd())
      assert.deepStrictEqual(risk.limitsOf("paper-trader"), { maxOrderNotional: "50000", maxPosition: undefined, maxOpenOrders: 2 })
      assert.deepStrictEqual(risk.limitsOf("cross-venue"), { maxOrderNotional: "50000", maxPosition: "0.1", maxOpenOrders: 20 })
      assert.deepStrictEqual(risk.limitsOf("anyone-else"), { maxOrderNotional: "50000", maxPosition: undefined, maxOpenOrders: 20 })
    }).pipe(Effect.provide(layerTest(configured))))
})

describe("what the checks read of the venue", () => {
  it.effect("position and open-orders limits read the consumer's exposure, never the venue's whole portfolio()", () =>
    Effect.gen(function*() {
      const venue = yield* ExecutionVenue
      const s = { venue, pool: yield* Pool, recycler: yield* Recycler, received: yield* Received }
      let portfolioReads = 0
      // the venue as the checks see it: its portfolio (every strategy's P&L) is counted
      const counted = {
        ...venue,
        portfolio: () => {
          portfolioReads++
          return venue.portfolio()
        }
      }
      const risk = yield* makeRisk(counted, { defaults: { maxPosition: "1.5", maxOpenOrders: 2, maxOrderNotional: "1000" } })
      yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
      yield* book(s, "sim-b", [["199", "10"]], [["201", "10"]])
      yield* risk.venue.submit(market("e-1", "buy", "1", { venue: "sim-a" }))
      yield* risk.venue.submit(limit("e-2", "buy", "0.1", "90", { venue: "sim-a" }))
      const over = yield* refusal(risk.venue.submit(market("e-4", "buy", "0.6", { venue: "sim-a" })))
      assert.strictEqual(`${(over as RiskLimit).limit} ${(over as RiskLimit).value}`, "max_position 1.6")
      yield* risk.venue.submit(limit("e-3", "sell", "0.2", "210", { venue: "sim-b" }))
      const full = yield* refusal(risk.venue.submit(limit("e-5", "buy", "0.1", "91", { venue: "sim-a" })))
      assert.strictEqual(`${(full as RiskLimit).limit} ${(full as RiskLimit).value}`, "max_open_orders 3")
      const amendOver = yield* refusal(risk.venue.amend(amend("e-2", { quantity: "0.6" })))
      assert.strictEqual(`${(amendOver as RiskLimit).limit} ${(amendOver as RiskLimit).value}`, "max_position 1.6")
      assert.strictEqual(portfolioReads, 0, "no check read the venue's portfolio")

      // the exposure agrees with the portfolio, venue by venue and over every venue
      const mine = venue.portfolio().byConsumer.find((c) => c.consumerId === "strat-a")!
      assert.deepStrictEqual(venue.exposure("strat-a", SYM, "sim-a"), { venue: "sim-a", position: decimal("1"), openOrders: mine.openOrders })
      assert.deepStrictEqual(venue.exposure("strat-a", SYM, "sim-b"), { venue: "sim-b", position: decimal("0"), openOrders: 2 })
      assert.deepStrictEqual(venue.exposure("strat-a", SYM, undefined), { venue: undefined, position: decimal("1"), openOrders: 2 })
      assert.deepStrictEqual(venue.exposure("nobody", SYM, "sim-a"), { venue: "sim-a", position: decimal("0"), openOrders: 0 })
      yield* risk.venue.cancel(cancel("e-2"))
      assert.strictEqual(venue.exposure("strat-a", SYM, "sim-a").openOrders, 1, "a cancel frees a place")
    }).pipe(Effect.provide(paperLayer(venues))))

  it.effect("an order that names no venue: the only venue with a mark is its venue, for its position and its notional", () =>
    withRisk({ defaults: { maxPosition: "1", maxOrderNotional: "150" } }, (s, risk) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        assert.strictEqual(s.venue.exposure("strat-a", SYM, undefined).venue, "sim-a")
        assert.strictEqual((yield* risk.venue.submit(market("u-1", "buy", "1"))).status, "filled")
        const over = yield* refusal(risk.venue.submit(market("u-2", "buy", "0.1")))
        assert.strictEqual(`${(over as RiskLimit).limit} ${(over as RiskLimit).value}`, "max_position 1.1")
        const notional = yield* refusal(risk.venue.submit(market("u-3", "sell", "1.6")))
        assert.strictEqual(`${(notional as RiskLimit).limit} ${(notional as RiskLimit).value}`, "max_order_notional 160")
      }), { venues: { "sim-a": roomy } }))
})
