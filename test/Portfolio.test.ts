/**
 * The portfolio on every surface: the cross-venue example trades on two
 * venues with orders addressed to each; its positions, P&L and fees are in
 * `ctx.portfolio()`, in the status snapshot (`/status.json`), and in
 * `/metrics` with the accounts' balances, the risk refusals and the kill
 * switch's state.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import crossVenue from "../examples/crossVenue.js"
import { layerTest, testConfig } from "../layers/Test.js"
import { Risk } from "../src/execution/Risk.js"
import * as Gateway from "../src/Gateway.js"
import { Prometheus } from "../src/Prometheus.js"
import { Status } from "../src/Status.js"
import * as Strategy from "../src/strategy/index.js"
import { runAndCountLeftFibers } from "./support/leaks.js"
import { advance } from "./support/clock.js"

/** The value of one Prometheus series: the metric with every given label, whatever their order. */
const series = (text: string, name: string, labels: Readonly<Record<string, string>>): number | undefined => {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue
    const close = line.lastIndexOf("}")
    const got = Object.fromEntries([...line.slice(name.length + 1, close).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(close + 1).trim().split(" ")[0])
  }
  return undefined
}

describe("portfolio surfaces", () => {
  it.effect("cross-venue buys on the cheap venue and sells on the rich one; its positions and P&L reach ctx, /status.json and /metrics", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const observed = Strategy.observe(crossVenue)
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, {
            strategies: [{
              strategy: observed.strategy,
              options: { venues: ["sim-a", "sim-c"], minEdgeBps: -10_000, cooldownMs: 300 }
            }]
          }).pipe(Effect.scoped, Effect.fork)
          yield* advance(2_000)
          // the last round trip finishes (its orders reach the venue on the clock)
          for (let i = 0; i < 200 && observed.state().busy; i++) yield* TestClock.adjust("10 millis")
          const state = observed.state()
          const snapshot = yield* Effect.flatMap(Status, (s) => s.snapshot)
          const risk = yield* Risk
          // the strategy's own limit refuses its next orders, counted; then the kill switch
          risk.setLimits("cross-venue", { maxOrderNotional: "1" })
          yield* advance(600)
          yield* risk.killSwitch(true, "*", "test")
          const metrics = yield* Effect.flatMap(Prometheus, (p) => p.scrape)
          const after = yield* Effect.flatMap(Status, (s) => s.snapshot)
          yield* Fiber.interrupt(fiber)
          return { state: { ...state, legs: { ...state.legs } }, rejections: { ...observed.state().rejections }, snapshot, metrics, after }
        })
      )
      const { after, metrics, rejections, snapshot, state } = result
      assert.isAtLeast(state.trades, 3)
      assert.deepStrictEqual(Object.keys(state.legs).sort(), ["sim-a", "sim-c"])
      const legs = Object.values(state.legs)
      assert.strictEqual(legs.reduce((n, l) => n + l.buys, 0), state.trades, "one buy per round trip")
      assert.strictEqual(legs.reduce((n, l) => n + l.sells, 0), state.trades, "one sell per round trip")

      // the snapshot: the strategy's positions per venue, flat over both, fees paid
      const pf = snapshot.portfolio
      assert.isDefined(pf)
      const mine = pf!.byConsumer.find((c) => c.consumerId === "cross-venue")
      assert.isDefined(mine, "the strategy's share")
      const venues = mine!.positions.map((p) => p.venue).sort()
      assert.deepStrictEqual(venues, ["sim-a", "sim-c"])
      const total = mine!.positions.reduce((n, p) => n + Number(p.quantity), 0)
      assert.approximately(total, 0, 1e-12, "bought on one venue what it sold on the other")
      assert.isAbove(Number(mine!.fees), 0, "taker fees on every fill")
      assert.deepStrictEqual(mine!.byQuote.map((q) => q.quote), ["USDT"])
      for (const p of mine!.positions) assert.isDefined(p.mark, `${p.venue} marked to its mid`)
      // the account: both venues' balances and positions
      const usdt = pf!.balances.filter((b) => b.asset === "USDT").map((b) => b.venue).sort()
      assert.includeMembers(usdt, ["sim-a", "sim-c"])
      assert.deepStrictEqual(pf!.positions.map((p) => p.venue).sort(), ["sim-a", "sim-c"])
      assert.deepStrictEqual(pf!.killSwitch, { global: false, consumers: [] })
      // the snapshot is what /status.json serves: plain JSON, decimals as strings
      const json = JSON.parse(JSON.stringify(snapshot)) as typeof snapshot
      assert.strictEqual(json.portfolio!.byConsumer.find((c) => c.consumerId === "cross-venue")!.fees, mine!.fees)

      // ctx.portfolio() after the last round trip: the same share
      assert.isDefined(state.portfolio)
      assert.deepStrictEqual(state.portfolio!.positions.map((p) => p.venue).sort(), ["sim-a", "sim-c"])
      assert.isAbove(state.portfolio!.balances.length, 0)

      // the strategy's own limit refused its orders, counted per limit
      assert.isAbove(rejections["RiskLimit"] ?? 0, 0)
      assert.isAbove(after.portfolio!.riskRefused!.max_order_notional, 0)
      assert.deepStrictEqual(after.portfolio!.killSwitch, { global: true, consumers: [] })

      // /metrics
      assert.isAbove(series(metrics, "meltica_balance", { venue: "sim-a", asset: "USDT", part: "total" }) ?? 0, 0)
      assert.isDefined(series(metrics, "meltica_position_quantity", { venue: "sim-c", symbol: "BTC-USDT" }))
      assert.isAbove(series(metrics, "meltica_strategy_pnl", { consumer: "cross-venue", quote: "USDT", kind: "fees" }) ?? 0, 0)
      assert.isAbove(series(metrics, "meltica_risk_refusals_total", { limit: "max_order_notional" }) ?? 0, 0)
      assert.strictEqual(series(metrics, "meltica_risk_refusals_total", { limit: "max_position" }), 0, "exported at 0 from the start")
      assert.strictEqual(series(metrics, "meltica_kill_switch_engaged", { target: "*" }), 1)
      assert.isAbove(series(metrics, "meltica_control_rejections_total", { reason: "RiskLimit" }) ?? 0, 0)
      assert.strictEqual(left, 0)
    }))
})
