/**
 * Canonical, versioned wire contract for events.
 *
 * Every event that crosses a process boundary (a bus, a file, a socket) is
 * encoded with these schemas. Inside a process, events live in pooled mutable
 * objects (`src/Event.ts`) that mirror these shapes field for field.
 */
import { Schema } from "effect"

/** The version of the event contract. Bumped on any incompatible change. */
export const EVENT_SCHEMA_VERSION = 1 as const

/**
 * An exact decimal, kept as the exchange's own string: prices and quantities
 * are never floats (order-book checksums are computed over these strings).
 */
export const Decimal = Schema.String.pipe(
  Schema.pattern(/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/),
  Schema.brand("Decimal")
)
export type Decimal = typeof Decimal.Type
export const decimal = (s: string): Decimal => Decimal.make(s)

// ---------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------

export const MarketKind = Schema.Literal("trade", "ticker", "book_snapshot", "book_delta")
export type MarketKind = typeof MarketKind.Type

export const CriticalKind = Schema.Literal("exec_report", "control_ack", "control_result")
export type CriticalKind = typeof CriticalKind.Type

export const EventKind = Schema.Literal(...MarketKind.literals, ...CriticalKind.literals)
export type EventKind = typeof EventKind.Type

/**
 * The one answer to "is this kind critical?". Critical kinds are never
 * filtered, coalesced or dropped, by infrastructure or by the consumer wrapper.
 * (Asked on every hand-over and delivery: plain comparisons of interned
 * strings, no lookup.)
 */
export const isCritical = (kind: EventKind): kind is CriticalKind =>
  kind === "exec_report" || kind === "control_ack" || kind === "control_result"

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

export const Side = Schema.Literal("buy", "sell")
export type Side = typeof Side.Type

/** One price level: [price, quantity]. A quantity of "0" removes the level in a delta. */
export const Level = Schema.Tuple(Decimal, Decimal)
export type Level = typeof Level.Type

export const BookState = Schema.Literal("consistent", "stale")
export type BookState = typeof BookState.Type

export class Trade extends Schema.TaggedClass<Trade>()("trade", {
  tradeId: Schema.String,
  price: Decimal,
  quantity: Decimal,
  side: Side,
  /** Exchange timestamp, epoch milliseconds. */
  exchangeTs: Schema.Number
}) {}

export class Ticker extends Schema.TaggedClass<Ticker>()("ticker", {
  bidPrice: Decimal,
  bidQty: Decimal,
  askPrice: Decimal,
  askQty: Decimal,
  exchangeTs: Schema.Number
}) {}

export class BookSnapshot extends Schema.TaggedClass<BookSnapshot>()("book_snapshot", {
  bids: Schema.Array(Level),
  asks: Schema.Array(Level),
  /** A consumer sees a book that is consistent or explicitly stale, never a silently wrong one. */
  state: BookState,
  /** Why the book is stale, when it is. */
  staleReason: Schema.optional(Schema.String),
  checksum: Schema.optional(Schema.Number)
}) {}

export class BookDelta extends Schema.TaggedClass<BookDelta>()("book_delta", {
  bids: Schema.Array(Level),
  asks: Schema.Array(Level),
  firstSeq: Schema.optional(Schema.Number),
  lastSeq: Schema.optional(Schema.Number),
  checksum: Schema.optional(Schema.Number)
}) {}

export const OrderStatus = Schema.Literal("new", "partially_filled", "filled", "canceled", "rejected")
export type OrderStatus = typeof OrderStatus.Type

export const OrderType = Schema.Literal("market", "limit")
export type OrderType = typeof OrderType.Type

export class ExecReportPayload extends Schema.TaggedClass<ExecReportPayload>()("exec_report", {
  orderId: Schema.String,
  clientOrderId: Schema.String,
  consumerId: Schema.String,
  side: Side,
  orderType: OrderType,
  status: OrderStatus,
  price: Schema.optional(Decimal),
  quantity: Decimal,
  filledQty: Decimal,
  lastFillPrice: Schema.optional(Decimal),
  lastFillQty: Schema.optional(Decimal),
  /** Per-order report sequence: reports of one order are delivered in this order. */
  reportSeq: Schema.Number,
  reason: Schema.optional(Schema.String)
}) {}

export class ControlAckPayload extends Schema.TaggedClass<ControlAckPayload>()("control_ack", {
  commandId: Schema.String,
  command: Schema.String,
  consumerId: Schema.String,
  /** The routing version the command applies to; consumers move their minimum accepted version to it. */
  appliesToVersion: Schema.Number
}) {}

export class ControlResultPayload extends Schema.TaggedClass<ControlResultPayload>()("control_result", {
  commandId: Schema.String,
  command: Schema.String,
  consumerId: Schema.String,
  outcome: Schema.Literal("ok", "rejected"),
  reason: Schema.optional(Schema.String),
  detail: Schema.optional(Schema.Unknown)
}) {}

export const MarketPayload = Schema.Union(Trade, Ticker, BookSnapshot, BookDelta)
export type MarketPayload = typeof MarketPayload.Type

export const EventPayload = Schema.Union(
  Trade,
  Ticker,
  BookSnapshot,
  BookDelta,
  ControlAckPayload,
  ControlResultPayload
)
export type EventPayload = typeof EventPayload.Type

// ---------------------------------------------------------------------------
// Merged payloads
// ---------------------------------------------------------------------------

export class VenueQuote extends Schema.Class<VenueQuote>("VenueQuote")({
  provider: Schema.String,
  bidPrice: Decimal,
  bidQty: Decimal,
  askPrice: Decimal,
  askQty: Decimal
}) {}

/** Consolidated best bid/offer across venues, each venue's quote attached. */
export class MergedTicker extends Schema.TaggedClass<MergedTicker>()("merged_ticker", {
  bestBid: Decimal,
  bestBidProvider: Schema.String,
  bestAsk: Decimal,
  bestAskProvider: Schema.String,
  quotes: Schema.Array(VenueQuote)
}) {}

export class MergedLevel extends Schema.Class<MergedLevel>("MergedLevel")({
  price: Decimal,
  totalQty: Decimal,
  venues: Schema.Array(Schema.Struct({ provider: Schema.String, quantity: Decimal }))
}) {}

/** Levels aggregated across venues with per-venue quantities. */
export class MergedBook extends Schema.TaggedClass<MergedBook>()("merged_book", {
  bids: Schema.Array(MergedLevel),
  asks: Schema.Array(MergedLevel)
}) {}

export class VenueTrade extends Schema.Class<VenueTrade>("VenueTrade")({
  provider: Schema.String,
  trade: Trade
}) {}

/** The trades of one window, in exchange-time order. */
export class MergedTrades extends Schema.TaggedClass<MergedTrades>()("merged_trades", {
  trades: Schema.Array(VenueTrade)
}) {}

export const MergedPayload = Schema.Union(MergedTicker, MergedBook, MergedTrades)
export type MergedPayload = typeof MergedPayload.Type

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

const envelope = {
  schemaVersion: Schema.Literal(EVENT_SCHEMA_VERSION),
  traceId: Schema.String,
  provider: Schema.String,
  symbol: Schema.String,
  seqProvider: Schema.optional(Schema.Number),
  /** Ingest time, epoch microseconds. */
  ingestTs: Schema.Number,
  routingVersion: Schema.Number
}

export const WireEvent = Schema.TaggedStruct("Event", {
  ...envelope,
  kind: EventKind,
  payload: EventPayload
}).pipe(Schema.filter((e) => e.kind === e.payload._tag || `kind ${e.kind} does not match payload ${e.payload._tag}`))
export type WireEvent = typeof WireEvent.Type

export const WireExecReport = Schema.TaggedStruct("ExecReport", {
  ...envelope,
  kind: Schema.Literal("exec_report"),
  payload: ExecReportPayload
})
export type WireExecReport = typeof WireExecReport.Type

export const WireMergedEvent = Schema.TaggedStruct("MergedEvent", {
  ...envelope,
  kind: MarketKind,
  mergeId: Schema.String,
  sourceProviders: Schema.Array(Schema.String),
  payload: MergedPayload
})
export type WireMergedEvent = typeof WireMergedEvent.Type

/** Anything that crosses the wire as an event. */
export const WireAny = Schema.Union(WireEvent, WireExecReport, WireMergedEvent)
export type WireAny = typeof WireAny.Type

/** Compiled once: JSON text <-> wire event. */
export const decodeWireJson = Schema.decodeUnknownEither(Schema.parseJson(WireAny))
export const encodeWireJson = Schema.encodeSync(Schema.parseJson(WireAny))
export const decodeWire = Schema.decodeUnknownEither(WireAny)
