/**
 * The execution router: one `ExecutionVenue` in front of the paper venue and
 * the live venues. An order goes live only when its `venue` names a venue that
 * runs live (config `mode: live` for that venue AND the `--live` flag, decided
 * where the live venues are made: `LiveExecution.ts`); every other order,
 * including every order of a venue left in `mode: paper`, goes to the paper
 * venue. So the same strategy runs on paper and live, switched by
 * configuration only.
 *
 * Cancel, amend and query go where the order is: the live venue that holds
 * the consumer's client order id, else the paper venue. `cancelAll` (the kill
 * switch) reaches every venue; portfolios and stats are merged.
 */
import { Effect } from "effect"
import type { AmendOrder, CancelOrder, QueryOrder, SubmitOrder } from "../../../schema/Control.js"
import type {
  CancelScope,
  ConsumerPortfolio,
  ExecutionVenueShape,
  ExecutionVenueStats,
  OrderView,
  PortfolioSnapshot,
  QuoteTotals
} from "../../ExecutionVenue.js"
import { dec, toDecimal, ZERO } from "../../internal/decimal.js"
import type { LiveVenueShape } from "./LiveVenue.js"

const sumDecimals = (xs: ReadonlyArray<string>) => toDecimal(xs.reduce((a, x) => a.add(dec(x)), ZERO))

/** Portfolios of several venues as one: balances and positions side by side, consumers' shares added. */
export const mergePortfolios = (parts: ReadonlyArray<PortfolioSnapshot>): PortfolioSnapshot => {
  if (parts.length === 1) return parts[0]!
  const consumers = new Map<string, Array<ConsumerPortfolio>>()
  for (const p of parts) {
    for (const c of p.byConsumer) {
      const list = consumers.get(c.consumerId) ?? []
      list.push(c)
      consumers.set(c.consumerId, list)
    }
  }
  const byConsumer = [...consumers].map(([consumerId, list]): ConsumerPortfolio => {
    const quotes = new Map<string, Array<QuoteTotals>>()
    for (const c of list) for (const q of c.byQuote) quotes.set(q.quote, [...(quotes.get(q.quote) ?? []), q])
    return {
      consumerId,
      positions: list.flatMap((c) => c.positions),
      realizedPnl: sumDecimals(list.map((c) => c.realizedPnl)),
      unrealizedPnl: sumDecimals(list.map((c) => c.unrealizedPnl)),
      fees: sumDecimals(list.map((c) => c.fees)),
      byQuote: [...quotes].map(([quote, qs]) => ({
        quote,
        realizedPnl: sumDecimals(qs.map((q) => q.realizedPnl)),
        unrealizedPnl: sumDecimals(qs.map((q) => q.unrealizedPnl)),
        fees: sumDecimals(qs.map((q) => q.fees))
      })),
      openOrders: list.reduce((n, c) => n + c.openOrders, 0)
    }
  })
  return { balances: parts.flatMap((p) => p.balances), positions: parts.flatMap((p) => p.positions), byConsumer }
}

/** Stats of several venues as one: counts added, consumers' rows added. */
export const mergeStats = (parts: ReadonlyArray<ExecutionVenueStats>): ExecutionVenueStats => {
  if (parts.length === 1) return parts[0]!
  const add = (k: keyof ExecutionVenueStats) =>
    parts.reduce((n, p) => n + (typeof p[k] === "number" ? (p[k] as number) : 0), 0)
  const rows = new Map<string, { orders: number; fills: number; rejected: number; resting: number }>()
  for (const p of parts) {
    for (const c of p.byConsumer) {
      const r = rows.get(c.consumerId) ?? { orders: 0, fills: 0, rejected: 0, resting: 0 }
      rows.set(c.consumerId, { orders: r.orders + c.orders, fills: r.fills + c.fills, rejected: r.rejected + c.rejected, resting: r.resting + c.resting })
    }
  }
  return {
    orders: add("orders"),
    retained: add("retained"),
    resting: add("resting"),
    filled: add("filled"),
    canceled: add("canceled"),
    rejected: add("rejected"),
    fills: add("fills"),
    amended: add("amended"),
    balanceShortfalls: add("balanceShortfalls"),
    duplicates: add("duplicates"),
    conflicts: add("conflicts"),
    reportsEmitted: add("reportsEmitted"),
    reportsPending: add("reportsPending"),
    symbols: add("symbols"),
    marketUpdates: add("marketUpdates"),
    restored: add("restored"),
    storeFailures: add("storeFailures"),
    byConsumer: [...rows].map(([consumerId, r]) => ({ consumerId, ...r }))
  }
}

export interface ExecutionRouter extends ExecutionVenueShape {
  /** The venues that trade live, by name. */
  readonly live: ReadonlyMap<string, LiveVenueShape>
}

export const makeRouter = (paper: ExecutionVenueShape, live: ReadonlyArray<LiveVenueShape>): ExecutionRouter => {
  const venues = new Map(live.map((v) => [v.venue, v]))
  const holder = (consumerId: string, clientOrderId: string): ExecutionVenueShape => {
    for (const v of live) if (v.owns(consumerId, clientOrderId)) return v
    return paper
  }
  const all: ReadonlyArray<ExecutionVenueShape> = [paper, ...live]
  return {
    live: venues,
    submit: (order: SubmitOrder) => {
      const target = order.venue === undefined ? undefined : venues.get(order.venue)
      return (target ?? paper).submit(order)
    },
    cancel: (cmd: CancelOrder) => holder(cmd.consumerId, cmd.clientOrderId).cancel(cmd),
    amend: (cmd: AmendOrder) => holder(cmd.consumerId, cmd.clientOrderId).amend(cmd),
    query: (cmd: QueryOrder) => holder(cmd.consumerId, cmd.clientOrderId).query(cmd),
    cancelAll: (scope: CancelScope, reason: string): Effect.Effect<ReadonlyArray<OrderView>> =>
      Effect.map(
        Effect.forEach(all, (v) => v.cancelAll(scope, reason), { concurrency: "unbounded" }),
        (lists) => lists.flat()
      ),
    portfolio: () => mergePortfolios(all.map((v) => v.portfolio())),
    // the position is where the order goes (`submit`: a live venue it names, else paper); working orders are counted on every venue
    exposure: (consumerId, symbol, venue) => {
      const target = venue === undefined ? paper : venues.get(venue) ?? paper
      const own = target.exposure(consumerId, symbol, venue)
      let openOrders = own.openOrders
      for (const v of all) if (v !== target) openOrders += v.exposure(consumerId, symbol, venue).openOrders
      return { ...own, openOrders }
    },
    markPrice: (venue, symbol) => venues.get(venue)?.markPrice(venue, symbol) ?? paper.markPrice(venue, symbol),
    onMarketData: (event) =>
      live.length === 0
        ? paper.onMarketData(event)
        : Effect.zipRight(paper.onMarketData(event), Effect.forEach(live, (v) => v.onMarketData(event), { discard: true })),
    followRoutingVersion: (current) => {
      for (const v of all) v.followRoutingVersion(current)
    },
    stats: () => ({
      ...mergeStats(all.map((v) => v.stats())),
      live: live.map((v) => {
        const s = v.liveStats()
        return {
          venue: s.venue,
          connected: s.connected,
          reconciliations: s.reconciliations,
          duplicateFills: s.duplicateFills,
          rateLimited: s.adapter.rateLimited,
          requestsDelayed: s.adapter.requestsDelayed,
          clockSkewMs: s.adapter.clockSkewMs,
          budget: s.adapter.budget
        }
      })
    })
  }
}
