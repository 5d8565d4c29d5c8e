// examples/tutorial/spreadWatcher.ts
import DecimalJs from "decimal.js"
import { Effect, Schedule, Schema } from "effect"
import * as Strategy from "../../src/strategy/index.js"

export interface SpreadState {
  /** The latest mid price of each venue followed. */
  mids: Map<string, DecimalJs>
  /** The latest gap between the two venues' mids, in basis points of the second's. */
  spreadBps: number | undefined
  /** The one order: not sent yet, sent, then accepted (its status) or refused (its rejection's tag). */
  order: "none" | "sent" | { accepted: string } | { rejected: string }
}

export default Strategy.define({
  id: "spread-watcher",
  description: "logs the gap between two venues' mids; past a threshold, sends one paper order",
  options: Schema.Struct({
    symbol: Schema.optionalWith(Schema.String, { default: () => "BTC-USDT" }),
    venues: Schema.optionalWith(Schema.Tuple(Schema.String, Schema.String), { default: () => ["sim-a", "sim-b"] as const }),
    thresholdBps: Schema.optionalWith(Schema.Number, { default: () => 2 }),
    quantity: Schema.optionalWith(Schema.String, { default: () => "0.001" })
  }),
  init: (): SpreadState => ({ mids: new Map(), spreadBps: undefined, order: "none" }),
  start: (ctx) =>
    Effect.gen(function*() {
      yield* ctx.subscribe(ctx.options.symbol, ["ticker"])
      // a timer in the strategy's scope: it stops with the strategy
      yield* Effect.suspend(() => ctx.log("spread", { bps: ctx.state.spreadBps?.toFixed(2) ?? "n/a" })).pipe(
        Effect.repeat(Schedule.spaced("5 seconds")),
        Effect.forkScoped
      )
    }),
  on: {
    ticker: (event, ctx) => {
      const s = ctx.state
      const [a, b] = ctx.options.venues
      if (event.provider !== a && event.provider !== b) return Effect.void
      // one check narrowed the event: its payload is a Ticker
      s.mids.set(event.provider, new DecimalJs(event.payload.bidPrice).plus(event.payload.askPrice).div(2))
      const midA = s.mids.get(a)
      const midB = s.mids.get(b)
      if (midA === undefined || midB === undefined) return Effect.void
      s.spreadBps = midA.minus(midB).div(midB).mul(10_000).toNumber()
      if (Math.abs(s.spreadBps) < ctx.options.thresholdBps || s.order !== "none") return Effect.void
      s.order = "sent"
      // an order names its venue: buy where it is cheaper
      const venue = midA.lt(midB) ? a : b
      const order = ctx.submit({ symbol: ctx.options.symbol, venue, side: "buy", type: "market", quantity: ctx.options.quantity })
      // a handler never waits for an outcome (outcomes arrive through the handlers): fork it
      return ctx.fork(order.pipe(
        Effect.tap((accepted) => {
          s.order = { accepted: accepted.status }
          return ctx.log("order accepted", { order_id: accepted.orderId, status: accepted.status })
        }),
        Effect.catchTag("InvalidQuantity", (refused) => {
          s.order = { rejected: refused._tag }
          return ctx.log("order refused", { quantity: refused.quantity, rule: refused.rule })
        }),
        Effect.catchAll((refused) => {
          s.order = { rejected: refused._tag }
          return ctx.log("order refused", { reason: refused.message })
        })
      ))
    },
    exec_report: (event, ctx) => ctx.log("report", { status: event.payload.status, filled: event.payload.filledQty }, event)
  }
})
