/**
 * The live venue interface: what one exchange's adapter does for the live
 * execution engine (`LiveVenue.ts`), which turns it into an `ExecutionVenue`.
 *
 * The split: an adapter speaks the venue's protocol (signing, endpoints,
 * response shapes, error codes, the private stream) and nothing else; the
 * engine owns the orders (idempotency by `clientOrderId`, report sequence,
 * de-duplication of fills by venue trade id, reconciliation after a
 * (re)connect, the query after a timeout), so every venue behaves the same
 * towards strategies.
 *
 * Rules an adapter follows:
 * - Our `clientOrderId` goes into the venue's client order id field
 *   (Binance `newClientOrderId`, OKX `clOrdId`, Kraken `cl_ord_id`, Coinbase
 *   `client_order_id`), so the venue itself refuses a second order with it;
 *   `clientOrderIdProblem` says before sending when the venue would not take it.
 * - Every request goes through the venue's `RateLimiter` (`RateLimiter.ts`)
 *   and `RestTransport` (`Transport.ts`): timeouts, dry-run, usage headers,
 *   429/418 back-off are handled there.
 * - A venue error code maps to a typed outcome: a refusal of the order is an
 *   `OrderRefused` carrying one of our `OrderRejection`s (`schema/Rejection.ts`);
 *   "no such order" is `VenueOrderUnknown`; "the client id is in use" is
 *   `VenueDuplicate`; a request that may have reached the venue without an
 *   answer (timeout, connection reset after sending) is `OutcomeUnknown`, and
 *   the engine queries it, never resends it.
 * - Figures are decimal strings as the venue wrote them, normalised (no
 *   exponent, no trailing zeros needed); timestamps are epoch milliseconds.
 * - Secrets are `Redacted` (`Secrets.ts`) and never appear in an error, a log
 *   line or a stats figure.
 */
import { Data, type Effect, type Scope } from "effect"
import type { Decimal, OrderType, Side } from "../../../schema/Event.js"
import type { OrderRejection } from "../../../schema/Rejection.js"

export type TimeInForce = "GTC" | "IOC" | "FOK"

/** An order as the engine sends it to the venue. */
export interface PlaceOrder {
  /** Goes into the venue's client order id field. */
  readonly clientOrderId: string
  /** Our symbol ("BTC-USDT"); the adapter maps it to the venue's. */
  readonly symbol: string
  readonly side: Side
  readonly type: OrderType
  readonly quantity: Decimal
  /** Limit orders only. */
  readonly price?: Decimal | undefined
  /** Limit orders; a market order is IOC by nature. */
  readonly timeInForce: TimeInForce
  /** Limit GTC only: the venue refuses it rather than let it take liquidity. */
  readonly postOnly: boolean
}

export type VenueOrderStatus = "new" | "partially_filled" | "filled" | "canceled" | "rejected"

/** The venue's view of one order: a REST answer or a private-stream push. */
export interface VenueOrder {
  readonly clientOrderId: string
  readonly venueOrderId: string
  /** Our symbol. */
  readonly symbol: string
  readonly status: VenueOrderStatus
  /** The current limit price (after an amend). */
  readonly price?: Decimal | undefined
  /** The current total quantity (after an amend). */
  readonly quantity: Decimal
  /** Cumulative filled quantity, as the venue says now. */
  readonly filledQty: Decimal
  /** The venue's words for a rejection, cancellation or expiry. */
  readonly reason?: string | undefined
  readonly updatedMs: number
  /**
   * On a private-stream push: true when this push reports an amendment
   * (Binance `x: "REPLACED"`, OKX `amendResult`). Only such a push changes
   * the order's price or quantity: an older push that arrives after an amend
   * answer must not undo it. Answers and queries are current and always apply.
   */
  readonly amended?: boolean | undefined
}

/** One execution (a trade) of one of our orders. */
export interface VenueFill {
  /** Unique per venue and symbol: fills are de-duplicated by it. */
  readonly tradeId: string
  readonly venueOrderId: string
  /** When the venue says it (stream pushes do; some REST trade lists do not). */
  readonly clientOrderId?: string | undefined
  readonly symbol: string
  readonly price: Decimal
  readonly quantity: Decimal
  readonly fee?: Decimal | undefined
  readonly feeAsset?: string | undefined
  readonly liquidity?: "maker" | "taker" | undefined
  readonly tsMs: number
}

/** What an order request answered: the order now, and any fills it reported with it. */
export interface VenueAnswer {
  readonly order: VenueOrder
  readonly fills: ReadonlyArray<VenueFill>
}

/** Instrument rules as the venue publishes them (loaded at start and refreshed). */
export interface Instrument {
  /** Our symbol. */
  readonly symbol: string
  readonly tickSize?: Decimal | undefined
  readonly lotSize?: Decimal | undefined
  readonly minQty?: Decimal | undefined
  readonly minNotional?: Decimal | undefined
  /** False when the venue does not trade it now (halted, delisted). */
  readonly trading: boolean
}

/** What the private stream tells the engine, in the order the venue sent it. */
export type StreamUpdate =
  | { readonly _tag: "Order"; readonly order: VenueOrder; readonly fill?: VenueFill | undefined }
  /** Logged in and subscribed (first time and after every reconnect): the engine reconciles now. */
  | { readonly _tag: "Connected" }
  | { readonly _tag: "Disconnected"; readonly reason: string }

// ---------------------------------------------------------------------------
// Errors (inside the process: `Data.TaggedError`; none carries a secret)
// ---------------------------------------------------------------------------

/** The venue refused the order: `rejection` is the typed reason the strategy gets. */
export class OrderRefused extends Data.TaggedError("OrderRefused")<{
  readonly venue: string
  readonly rejection: OrderRejection
}> {
  override get message(): string {
    return `${this.venue} refused the order: ${this.rejection.message}`
  }
}

/** The venue knows no order with this client id (cancel, amend, query). */
export class VenueOrderUnknown extends Data.TaggedError("VenueOrderUnknown")<{
  readonly venue: string
  readonly clientOrderId: string
  readonly code: string
}> {
  override get message(): string {
    return `${this.venue} knows no order ${this.clientOrderId} (${this.code})`
  }
}

/** The order is closed at the venue (filled, canceled): it cannot be canceled or amended. */
export class VenueOrderClosed extends Data.TaggedError("VenueOrderClosed")<{
  readonly venue: string
  readonly clientOrderId: string
  readonly code: string
  readonly text: string
}> {
  override get message(): string {
    return `${this.venue}: order ${this.clientOrderId} is closed (${this.code}: ${this.text})`
  }
}

/** The venue says the client order id is in use: the order exists, the engine queries it. */
export class VenueDuplicate extends Data.TaggedError("VenueDuplicate")<{
  readonly venue: string
  readonly clientOrderId: string
  readonly code: string
}> {
  override get message(): string {
    return `${this.venue}: client order id ${this.clientOrderId} already used (${this.code})`
  }
}

/** The request may have reached the venue but no answer came (timeout, reset): query, never resend. */
export class OutcomeUnknown extends Data.TaggedError("OutcomeUnknown")<{
  readonly venue: string
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.venue} ${this.operation}: outcome unknown (${this.reason})`
  }
}

/** The request was not sent (refused locally, connection refused, dry-run): nothing happened at the venue. */
export class RequestNotSent extends Data.TaggedError("RequestNotSent")<{
  readonly venue: string
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.venue} ${this.operation}: not sent (${this.reason})`
  }
}

/** The venue refused our credentials or signature (a bad key, a bad signature, an IP not allowed). */
export class AuthenticationFailed extends Data.TaggedError("AuthenticationFailed")<{
  readonly venue: string
  readonly code: string
  readonly text: string
}> {
  override get message(): string {
    return `${this.venue} refused our credentials (${this.code}): ${this.text}`
  }
}

/** Our clock differs from the venue's by more than its receive window: signed requests would be refused. */
export class ClockSkewTooLarge extends Data.TaggedError("ClockSkewTooLarge")<{
  readonly venue: string
  /** Venue time minus ours, in milliseconds. */
  readonly skewMs: number
  readonly recvWindowMs: number
}> {
  override get message(): string {
    return `${this.venue}: clock skew ${this.skewMs} ms exceeds the receive window of ${this.recvWindowMs} ms`
  }
}

/** The venue rate-limited us (HTTP 429/418 or a rate-limit code): nothing goes out for `retryAfterMs`. */
export class VenueRateLimited extends Data.TaggedError("VenueRateLimited")<{
  readonly venue: string
  readonly status: number
  readonly retryAfterMs: number
}> {
  override get message(): string {
    return `${this.venue} rate-limited us (HTTP ${this.status}): waiting ${this.retryAfterMs} ms`
  }
}

/** Any other failure answered by the venue (5xx, an unexpected shape, an unmapped code). */
export class VenueFailure extends Data.TaggedError("VenueFailure")<{
  readonly venue: string
  readonly operation: string
  readonly status: number
  readonly code: string
  readonly text: string
}> {
  override get message(): string {
    return `${this.venue} ${this.operation} failed (HTTP ${this.status}, ${this.code}): ${this.text}`
  }
}

export type LiveError =
  | OrderRefused
  | VenueOrderUnknown
  | VenueOrderClosed
  | VenueDuplicate
  | OutcomeUnknown
  | RequestNotSent
  | AuthenticationFailed
  | ClockSkewTooLarge
  | VenueRateLimited
  | VenueFailure

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export interface LiveAdapterStats {
  readonly requests: number
  readonly requestFailures: number
  readonly rateLimited: number
  /** Requests held back by the limiter (its budget or a venue-imposed cool-down). */
  readonly requestsDelayed: number
  /** Requests logged and not sent (dry-run). */
  readonly dryRun: number
  readonly streamConnects: number
  readonly streamDisconnects: number
  /** Private-stream frames that did not decode (dead-lettered). */
  readonly streamMalformed: number
  /** Venue time minus ours, last measured (ms). */
  readonly clockSkewMs: number
  /** Per limiter bucket: how much of it is left now. */
  readonly budget: ReadonlyArray<{ readonly bucket: string; readonly used: number; readonly limit: number }>
}

/**
 * One venue's protocol. Every effect's requirements are `never`: an adapter
 * reads its dependencies (HTTP client, WebSocket constructor, secrets) once
 * when it is made.
 */
export interface LiveAdapter {
  /** The venue's name, as a `SubmitOrder.venue` names it ("binance", "okx"). */
  readonly venue: string
  /** Why the venue would not take this client order id (its documented format), or undefined. */
  readonly clientOrderIdProblem: (clientOrderId: string) => string | undefined
  /** Whether `amend` is supported, and what it can change. */
  readonly amendable: { readonly price: boolean; readonly quantityUp: boolean; readonly quantityDown: boolean }
  /** Measures the clock skew against the venue's server time (fails when past the receive window). */
  readonly syncClock: Effect.Effect<number, ClockSkewTooLarge | LiveError>
  readonly instruments: Effect.Effect<ReadonlyArray<Instrument>, LiveError>
  readonly place: (order: PlaceOrder) => Effect.Effect<VenueAnswer, LiveError>
  readonly cancel: (symbol: string, clientOrderId: string) => Effect.Effect<VenueAnswer, LiveError>
  /** New price and/or new total quantity of a resting limit order. */
  readonly amend: (
    symbol: string,
    clientOrderId: string,
    change: { readonly price?: Decimal | undefined; readonly quantity?: Decimal | undefined }
  ) => Effect.Effect<VenueAnswer, LiveError>
  /** The order by client id; `VenueOrderUnknown` when the venue has none. */
  readonly query: (symbol: string, clientOrderId: string) => Effect.Effect<VenueOrder, LiveError>
  /** Every fill of one order, oldest first. */
  readonly orderFills: (symbol: string, venueOrderId: string) => Effect.Effect<ReadonlyArray<VenueFill>, LiveError>
  /** Our open orders at the venue (all symbols when `symbols` is empty). */
  readonly openOrders: (symbols: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<VenueOrder>, LiveError>
  /** Our fills of `symbol` since `sinceMs` (inclusive), oldest first. */
  readonly fillsSince: (symbol: string, sinceMs: number) => Effect.Effect<ReadonlyArray<VenueFill>, LiveError>
  /**
   * Runs the private stream until interrupted: connects, authenticates,
   * subscribes to order updates, reconnects with backoff; hands every update
   * to `onUpdate` in order (synchronously: it must not block), and a
   * `Connected` after each successful subscription.
   */
  readonly privateStream: (onUpdate: (update: StreamUpdate) => void) => Effect.Effect<never, never, Scope.Scope>
  readonly stats: () => LiveAdapterStats
}
