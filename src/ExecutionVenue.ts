/**
 * The execution venue port: what the Control Plane asks of a venue, and where
 * the venue's execution reports go. The paper venue (`execution/Paper.ts`) is
 * the embedded default; a live adapter per venue implements the same port.
 *
 * Orders come in as `SubmitOrder` / `CancelOrder` / `QueryOrder` commands;
 * execution reports go out, one pooled `ExecReport` at a time, through the
 * `ExecReportSink` port (ownership passes to the sink). Reports are critical:
 * none is ever dropped, and the reports of one order reach the sink in order
 * (`reportSeq` 1, 2, 3, ...).
 *
 * A refusal is one of the typed rejections of `schema/Rejection.ts`, which the
 * Control Plane sends back as it is in the command's `ControlResult`.
 */
import { Context, type Effect, Layer } from "effect"
import type { AmendOrder, CancelOrder, QueryOrder, SubmitOrder, TimeInForce } from "../schema/Control.js"
import type { Decimal, OrderStatus, OrderType, Side } from "../schema/Event.js"
import type { OrderNotCancelable, OrderNotFound, OrderRejection } from "../schema/Rejection.js"
import type { AnyEvent, ExecReport } from "./Event.js"

/** An immutable snapshot of an order. */
export interface OrderView {
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  /** The venue (provider) whose market the order trades on. */
  readonly venue: string
  readonly side: Side
  readonly type: OrderType
  readonly timeInForce: TimeInForce
  readonly postOnly: boolean
  readonly reduceOnly: boolean
  readonly status: OrderStatus
  /** Limit price (limit orders only). */
  readonly price?: Decimal
  readonly quantity: Decimal
  readonly filledQty: Decimal
  readonly leavesQty: Decimal
  /** Mean fill price, once something filled. */
  readonly avgPrice?: Decimal
  /** Execution reports emitted for the order so far. */
  readonly reports: number
  /** Why it was rejected or canceled by the venue. */
  readonly reason?: string
  /** Epoch microseconds. */
  readonly submittedTs: number
  /** Epoch microseconds. */
  readonly updatedTs: number
}

/** One asset of a venue's account: `total` = `available` + `reserved` (reserved for working orders). */
export interface Balance {
  readonly venue: string
  readonly asset: string
  readonly total: Decimal
  readonly available: Decimal
  readonly reserved: Decimal
}

/**
 * A position on (venue, symbol), by the average-cost method. Every money
 * figure is in the symbol's quote asset (`quote`: "BTC-USDT" -> USDT).
 * `realizedPnl` is gross of fees (the fees are in `fees`): the net result is
 * `realizedPnl + unrealizedPnl - fees`.
 */
export interface Position {
  readonly venue: string
  readonly symbol: string
  readonly base: string
  readonly quote: string
  /** Signed base quantity: bought minus sold since start. */
  readonly quantity: Decimal
  /** The average entry price of the open quantity (none when flat). */
  readonly avgEntry?: Decimal
  /** The venue's mid now (none without market data). */
  readonly mark?: Decimal
  /** Profit of the fills that reduced the position: (exit - average entry) x quantity closed, signed by side. */
  readonly realizedPnl: Decimal
  /** (mark - average entry) x quantity; zero without a mark. */
  readonly unrealizedPnl: Decimal
  /** Fees paid on the fills. */
  readonly fees: Decimal
  /** |quantity| x mark. */
  readonly notional?: Decimal
}

/** P&L summed over the positions of one quote asset. */
export interface QuoteTotals {
  readonly quote: string
  readonly realizedPnl: Decimal
  readonly unrealizedPnl: Decimal
  readonly fees: Decimal
}

/**
 * One consumer's (strategy's) share of the account: the positions its own
 * fills made, per (venue, symbol). The totals add the positions' figures; they
 * are one amount only when every position has the same quote asset (the usual
 * case, USDT): `byQuote` gives the sums per quote asset, to read when there
 * are several.
 */
export interface ConsumerPortfolio {
  readonly consumerId: string
  readonly positions: ReadonlyArray<Position>
  readonly realizedPnl: Decimal
  readonly unrealizedPnl: Decimal
  readonly fees: Decimal
  readonly byQuote: ReadonlyArray<QuoteTotals>
  /** Orders working now. */
  readonly openOrders: number
}

/**
 * What the pre-trade checks read of one consumer (`ExecutionVenueShape.exposure`):
 * no P&L, so that it costs O(1) (or the consumer's own orders), whatever the
 * venue holds.
 */
export interface ConsumerExposure {
  /**
   * The venue of the order: the one named, else the only venue with a mark
   * for the symbol; undefined when that cannot be told (several venues, or
   * none with market data).
   */
  readonly venue: string | undefined
  /** The consumer's signed position on (venue, symbol); over every venue of the symbol when `venue` is undefined. */
  readonly position: Decimal
  /** The consumer's working orders now, on every venue and symbol. */
  readonly openOrders: number
}

/** The venue's accounts: balances per (venue, asset), positions per (venue, symbol), and per consumer. */
export interface PortfolioSnapshot {
  readonly balances: ReadonlyArray<Balance>
  /** The account's, per (venue, symbol): every consumer's fills together. */
  readonly positions: ReadonlyArray<Position>
  readonly byConsumer: ReadonlyArray<ConsumerPortfolio>
}

/** Which open orders `cancelAll` cancels: every one, a consumer's, a venue's, or a consumer's on a venue. */
export interface CancelScope {
  readonly consumerId?: string
  readonly venue?: string
}

/** One live venue's link and request budget, for `/metrics` and the status page (no credential in it). */
export interface LiveVenueStatus {
  readonly venue: string
  /** 1 while its private stream is subscribed. */
  readonly connected: boolean
  readonly reconciliations: number
  /** Fills seen twice (stream and catch-up) and reported once. */
  readonly duplicateFills: number
  /** Requests the venue refused as too many (429/418 or a rate-limit code). */
  readonly rateLimited: number
  /** Requests the client-side limiter held back. */
  readonly requestsDelayed: number
  /** Venue time minus ours, last measured (ms). */
  readonly clockSkewMs: number
  /** Per documented limit: units used in the current window, and the limit. */
  readonly budget: ReadonlyArray<{ readonly bucket: string; readonly used: number; readonly limit: number }>
}

export interface ExecutionVenueStats {
  /** Orders taken since start. */
  readonly orders: number
  /** Orders the venue still knows (every open one, and the newest closed ones it keeps for idempotency). */
  readonly retained: number
  readonly resting: number
  readonly filled: number
  readonly canceled: number
  readonly rejected: number
  readonly fills: number
  /** Amends applied. */
  readonly amended?: number
  /**
   * Payments the account could not cover in full (capped at the available
   * balance, so no balance goes negative). Reservations make this 0: anything
   * else is a defect of the venue.
   */
  readonly balanceShortfalls?: number
  /** Resubmissions answered with the existing order. */
  readonly duplicates: number
  /** Submissions refused because another consumer uses the clientOrderId. */
  readonly conflicts: number
  readonly reportsEmitted: number
  /** Reports produced but not yet handed to the sink. */
  readonly reportsPending: number
  /** Books (one per venue and symbol) with a market view. */
  readonly symbols: number
  /** Market data events that changed a view. */
  readonly marketUpdates: number
  /** Open orders restored from the store at start. */
  readonly restored: number
  /** Loads and saves of the store that failed (logged; the reports still went out). */
  readonly storeFailures: number
  /** Per consumer (strategy), in order of its first order. */
  readonly byConsumer: ReadonlyArray<ConsumerOrderStats>
  /** The live venues behind the execution router (`execution/live/`), when some venue trades live. */
  readonly live?: ReadonlyArray<LiveVenueStatus>
}

/** One consumer's orders on the venue (the status page's strategy table). */
export interface ConsumerOrderStats {
  readonly consumerId: string
  /** Orders taken (restored ones included), rejected ones included. */
  readonly orders: number
  readonly fills: number
  readonly rejected: number
  /** Orders working now. */
  readonly resting: number
}

export interface ExecutionVenueShape {
  /**
   * Idempotent by `clientOrderId`: a resubmission with the same terms answers
   * with the existing order; with other terms it is a `DuplicateClientOrderId`.
   */
  readonly submit: (order: SubmitOrder) => Effect.Effect<OrderView, OrderRejection>
  readonly cancel: (cmd: CancelOrder) => Effect.Effect<OrderView, OrderNotFound | OrderNotCancelable>
  /**
   * Amends a resting limit order of the consumer (see `AmendOrder`): answers
   * with the updated order. An order that is not open is `OrderNotCancelable`;
   * a new quantity at or below what filled is `InvalidQuantity`; the
   * instrument rules and the account apply as on submission.
   */
  readonly amend: (cmd: AmendOrder) => Effect.Effect<OrderView, OrderNotFound | OrderNotCancelable | OrderRejection>
  /** Cancels every open order in scope (`reason` goes in their reports); answers with the orders it canceled. */
  readonly cancelAll: (scope: CancelScope, reason: string) => Effect.Effect<ReadonlyArray<OrderView>>
  /** Balances, positions and P&L now. */
  readonly portfolio: () => PortfolioSnapshot
  /**
   * One consumer's position on (venue, symbol) and its working orders, for
   * the risk checks: cheap, unlike `portfolio()` (see `ConsumerExposure`).
   */
  readonly exposure: (consumerId: string, symbol: string, venue: string | undefined) => ConsumerExposure
  /** The mid of that venue's book (or ticker) for the symbol; none without market data. */
  readonly markPrice: (venue: string, symbol: string) => Decimal | undefined
  readonly query: (cmd: QueryOrder) => Effect.Effect<OrderView, OrderNotFound>
  /** Feeds the venue's view of the book. Does not take ownership: the caller recycles the event. */
  readonly onMarketData: (event: AnyEvent) => Effect.Effect<void>
  /**
   * `onMarketData` applied at the call: answers what is left to run (the
   * reports the event produced, handed over; `Effect.void` when none), which
   * the caller must run before anything else of that event. Optional: the
   * Orchestrator uses it where a venue has it, to skip building an effect per
   * event on the hot path.
   */
  readonly unsafeOnMarketData?: (event: AnyEvent) => Effect.Effect<void>
  /**
   * Where the current routing version is read: every report is stamped with
   * the version current when it was created (FR-014). The Orchestrator, which
   * owns the version, connects itself here; until then reports carry 0.
   */
  readonly followRoutingVersion: (current: () => number) => void
  readonly stats: () => ExecutionVenueStats
}

/** Where execution reports go. Ownership of each pooled report passes to the sink. */
export class ExecReportSink extends Context.Tag("meltica/ExecReportSink")<
  ExecReportSink,
  (report: ExecReport) => Effect.Effect<void>
>() {
  static readonly layer = (sink: (report: ExecReport) => Effect.Effect<void>): Layer.Layer<ExecReportSink> =>
    Layer.succeed(ExecReportSink, sink)
}

export class ExecutionVenue extends Context.Tag("meltica/ExecutionVenue")<ExecutionVenue, ExecutionVenueShape>() {}
