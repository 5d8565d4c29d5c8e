/**
 * Example strategy: places and cancels small paper orders and tracks their
 * execution reports.
 *
 * It subscribes to the raw tickers of one symbol (every venue's) to know the
 * market, and trades on the venue of the latest ticker (orders name their
 * venue: several venues quote the symbol). Every `intervalMs`: when it has an
 * order resting, it cancels it;
 * otherwise every third round it sends a small market order (alternately buy
 * and sell, so it stays flat), and the other rounds a limit buy half a percent
 * below the best bid, which rests until the next round cancels it.
 *
 * Each command's outcome comes back typed: `submit` gives the accepted order,
 * `cancel` the canceled one, and a refusal is a tagged rejection
 * (`VenueRejected`, `OrderNotCancelable`, ...) counted by its tag.
 *
 * Execution reports arrive on its critical lane, never dropped, in order per
 * order: it checks that each order's `reportSeq` goes 1, 2, 3, ... and counts
 * every status it sees.
 */
import DecimalJs from "decimal.js"
import { Effect, Schema } from "effect"
import type { OrderStatus } from "../schema/Event.js"
import * as Strategy from "../src/strategy/index.js"

export const PaperTraderOptions = Schema.Struct({
  symbol: Schema.optionalWith(Schema.String, { default: () => "BTC-USDT" }),
  quantity: Schema.optionalWith(Schema.String, { default: () => "0.001" }),
  intervalMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 3_600_000)), { default: () => 1_000 })
})

export interface PaperTraderState {
  rounds: number
  submitted: number
  accepted: number
  cancelRequests: number
  canceled: number
  reports: number
  /** Reports seen per status. */
  byStatus: Record<OrderStatus, number>
  /** Reports that did not follow their order's previous one (should stay 0). */
  outOfOrder: number
  /** Orders whose last report was final (filled, canceled, rejected). */
  closedOrders: number
  /** Refusals by rejection tag. */
  rejections: Record<string, number>
  lastBid: string | undefined
  /** The venue that quoted `lastBid`: the next order trades there. */
  lastVenue: string | undefined
  /** The limit order resting since the last round, if any. */
  resting: string | undefined
  lastSeq: Map<string, number>
}

const decimalsOf = (s: string) => (s.includes(".") ? s.length - s.indexOf(".") - 1 : 0)
const isFinal = (s: OrderStatus) => s === "filled" || s === "canceled" || s === "rejected"

export default Strategy.define({
  id: "paper-trader",
  description: "places and cancels small paper orders and checks their execution reports",
  options: PaperTraderOptions,
  init: (): PaperTraderState => ({
    rounds: 0,
    submitted: 0,
    accepted: 0,
    cancelRequests: 0,
    canceled: 0,
    reports: 0,
    byStatus: { new: 0, partially_filled: 0, filled: 0, canceled: 0, rejected: 0 },
    outOfOrder: 0,
    closedOrders: 0,
    rejections: {},
    lastBid: undefined,
    lastVenue: undefined,
    resting: undefined,
    lastSeq: new Map()
  }),
  start: (ctx) => {
    const s = ctx.state
    const { symbol, quantity, intervalMs } = ctx.options
    const refused = (e: Strategy.CommandError) =>
      Effect.zipRight(
        Effect.sync(() => (s.rejections[e._tag] = (s.rejections[e._tag] ?? 0) + 1)),
        ctx.log("command refused", { reason: e.message, rejection: e._tag })
      )

    const round = Effect.gen(function*() {
      s.rounds++
      if (s.resting !== undefined) {
        const clientOrderId = s.resting
        s.resting = undefined
        s.cancelRequests++
        yield* ctx.cancel(clientOrderId).pipe(Effect.tap(() => Effect.sync(() => s.canceled++)))
        return
      }
      const bid = s.lastBid
      const venue = s.lastVenue
      if (bid === undefined || venue === undefined) return
      s.submitted++
      if (s.rounds % 3 === 0) {
        yield* ctx.submit({ symbol, venue, side: s.submitted % 2 === 0 ? "sell" : "buy", type: "market", quantity })
      } else {
        const price = new DecimalJs(bid).mul("0.995").toDecimalPlaces(decimalsOf(bid), DecimalJs.ROUND_DOWN).toFixed()
        const accepted = yield* ctx.submit({ symbol, venue, side: "buy", type: "limit", quantity, price })
        if (!isFinal(accepted.status)) s.resting = accepted.clientOrderId
      }
      s.accepted++
    }).pipe(Effect.catchAll(refused))

    return ctx.subscribe(symbol, ["ticker"]).pipe(
      Effect.zipRight(round.pipe(Effect.delay(intervalMs), Effect.forever, Effect.forkScoped))
    )
  },
  on: {
    ticker: (event, ctx) =>
      Effect.sync(() => {
        ctx.state.lastBid = event.payload.bidPrice
        ctx.state.lastVenue = event.provider
      }),
    exec_report: (event, ctx) => {
      const s = ctx.state
      const report = event.payload
      const expected = (s.lastSeq.get(report.clientOrderId) ?? 0) + 1
      s.lastSeq.set(report.clientOrderId, report.reportSeq)
      s.reports++
      s.byStatus[report.status]++
      if (report.reportSeq !== expected) s.outOfOrder++
      if (!isFinal(report.status)) return Effect.void
      s.closedOrders++
      s.lastSeq.delete(report.clientOrderId)
      return ctx.log("order closed", {
        client_order_id: report.clientOrderId,
        status: report.status,
        filled: report.filledQty,
        reason: report.reason
      }, event)
    }
  }
})
