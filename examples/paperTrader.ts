/**
 * Example strategy: places and cancels small paper orders and tracks their
 * execution reports.
 *
 * It subscribes to the raw tickers of one symbol (every venue's) to know the
 * market. Every `intervalMs`: when it has an order resting, it cancels it;
 * otherwise every third round it sends a small market order (alternately buy
 * and sell, so it stays flat), and the other rounds a limit buy half a percent
 * below the best bid, which rests until the next round cancels it.
 *
 * Execution reports arrive on its critical lane, never dropped, in order per
 * order: it checks that each order's `reportSeq` goes 1, 2, 3, ... and counts
 * every status it sees.
 */
import DecimalJs from "decimal.js"
import { Effect } from "effect"
import { CancelOrder, Subscribe, SubmitOrder } from "../schema/Control.js"
import { decimal, type OrderStatus } from "../schema/Event.js"
import { execReportOf, type Strategy } from "../src/Gateway.js"

export interface PaperTraderOptions {
  readonly symbol: string
  readonly quantity: string
  readonly intervalMs: number
}

export interface PaperTraderState {
  readonly rounds: number
  readonly submitted: number
  readonly cancelRequests: number
  readonly reports: number
  /** Reports seen per status. */
  readonly byStatus: Readonly<Record<OrderStatus, number>>
  /** Reports that did not follow their order's previous one (should stay 0). */
  readonly outOfOrder: number
  /** Orders whose last report was final (filled, canceled, rejected). */
  readonly closedOrders: number
  readonly rejections: ReadonlyArray<string>
  readonly lastBid: string | undefined
}

const decimalsOf = (s: string) => (s.includes(".") ? s.length - s.indexOf(".") - 1 : 0)
const isFinal = (s: OrderStatus) => s === "filled" || s === "canceled" || s === "rejected"

export const makePaperTrader = (id: string, options: PaperTraderOptions) => {
  const lastSeq = new Map<string, number>()
  const status = new Map<string, OrderStatus>()
  let resting: string | undefined
  let nextOrder = 0
  let bid: string | undefined
  let s: PaperTraderState = {
    rounds: 0,
    submitted: 0,
    cancelRequests: 0,
    reports: 0,
    byStatus: { new: 0, partially_filled: 0, filled: 0, canceled: 0, rejected: 0 },
    outOfOrder: 0,
    closedOrders: 0,
    rejections: [],
    lastBid: undefined
  }

  const round = (ctx: Parameters<Strategy["start"]>[0]): Effect.Effect<void> =>
    Effect.suspend(() => {
      s = { ...s, rounds: s.rounds + 1 }
      if (resting !== undefined) {
        const current = status.get(resting)
        if (current === undefined) return Effect.void // its first report is still on the way
        const clientOrderId = resting
        resting = undefined
        if (!isFinal(current)) {
          s = { ...s, cancelRequests: s.cancelRequests + 1 }
          return ctx.submit(CancelOrder.make({ ...ctx.ids(), clientOrderId }))
        }
      }
      if (bid === undefined) return Effect.void
      const clientOrderId = ctx.newId("order")
      nextOrder++
      s = { ...s, submitted: s.submitted + 1 }
      if (s.rounds % 3 === 0) {
        return ctx.submit(SubmitOrder.make({
          ...ctx.ids(),
          clientOrderId,
          symbol: options.symbol,
          side: nextOrder % 2 === 0 ? "sell" : "buy",
          orderType: "market",
          quantity: decimal(options.quantity)
        }))
      }
      const price = new DecimalJs(bid).mul("0.995").toDecimalPlaces(decimalsOf(bid), DecimalJs.ROUND_DOWN).toFixed()
      resting = clientOrderId
      return ctx.submit(SubmitOrder.make({
        ...ctx.ids(),
        clientOrderId,
        symbol: options.symbol,
        side: "buy",
        orderType: "limit",
        quantity: decimal(options.quantity),
        price: decimal(price)
      }))
    })

  const strategy: Strategy = {
    id,
    start: (ctx) =>
      ctx.submit(Subscribe.make({ ...ctx.ids(), symbol: options.symbol, kinds: ["ticker"] })).pipe(
        Effect.zipRight(
          round(ctx).pipe(Effect.delay(options.intervalMs), Effect.forever, Effect.forkScoped)
        ),
        Effect.asVoid
      ),
    handle: (event, ctx) => {
      if (event.kind === "ticker" && event._pool === "Event" && event.payload?._tag === "ticker") {
        bid = event.payload.bidPrice
        s = { ...s, lastBid: bid }
        return Effect.void
      }
      const report = execReportOf(event)
      if (report !== undefined) {
        const expected = (lastSeq.get(report.clientOrderId) ?? 0) + 1
        lastSeq.set(report.clientOrderId, report.reportSeq)
        status.set(report.clientOrderId, report.status)
        s = {
          ...s,
          reports: s.reports + 1,
          byStatus: { ...s.byStatus, [report.status]: s.byStatus[report.status] + 1 },
          outOfOrder: s.outOfOrder + (report.reportSeq === expected ? 0 : 1),
          closedOrders: s.closedOrders + (isFinal(report.status) ? 1 : 0)
        }
        return isFinal(report.status)
          ? ctx.log(event, "order closed", {
            client_order_id: report.clientOrderId,
            status: report.status,
            filled: report.filledQty,
            reason: report.reason
          })
          : Effect.void
      }
      if (event.kind === "control_result" && event._pool === "Event" && event.payload?._tag === "control_result") {
        const result = event.payload
        if (result.outcome === "rejected") {
          s = { ...s, rejections: [...s.rejections, `${result.command}: ${result.rejection?._tag ?? "rejected"}`] }
          return ctx.log(event, "command rejected", { command: result.command, rejection: result.rejection?.message })
        }
      }
      return Effect.void
    }
  }

  return { strategy, state: (): PaperTraderState => s } as const
}
