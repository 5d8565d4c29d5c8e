/**
 * Canonical, versioned wire contract for events.
 *
 * Every event that crosses a process boundary (a bus, a file, a socket) is
 * encoded with these schemas. Inside a process, events live in pooled mutable
 * objects (`src/Event.ts`) that mirror these shapes field for field.
 */
import { Schema } from "effect"
import {
  boundedArray,
  boundedString,
  MAX_BOOK_LEVELS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_PROVIDERS,
  MAX_REASON_LENGTH,
  MAX_TRACE_ID_LENGTH,
  MAX_TRADES
} from "./Bounds.js"
import { MAX_ALSO, RejectedAsText, Rejection } from "./Rejection.js"

/**
 * The version of the event contract. Bumped on any incompatible change.
 * 2: a ControlResult carries its rejection as a tagged value (`rejection`,
 * `schema/Rejection.ts`) instead of a free-text `reason`.
 */
export const EVENT_SCHEMA_VERSION = 2 as const
/** Every version still decoded: a version 1 frame's text reason becomes a `RejectedAsText`. */
export const DECODED_EVENT_SCHEMA_VERSIONS = [1, 2] as const

/**
 * An exact decimal, kept as the exchange's own string: prices and quantities
 * are never floats (order-book checksums are computed over these strings).
 *
 * Plain notation only, non-negative, bounded: at most 20 integer digits (no
 * leading zero) and at most 18 fraction digits ("0.10000000" keeps its
 * trailing zeros). No sign, no exponent, no NaN or Infinity: a value such as
 * "1e3000000" is refused, never expanded. Where zero is not allowed (a trade,
 * a snapshot level, a price) the boundary says so (`src/internal/decimal.ts`).
 */
export const DECIMAL_PATTERN = /^(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,18})?$/
export const Decimal = Schema.String.pipe(
  Schema.pattern(DECIMAL_PATTERN, {
    message: () => "a decimal in plain notation: up to 20 integer and 18 fraction digits, no sign or exponent"
  }),
  Schema.brand("Decimal")
)
export type Decimal = typeof Decimal.Type
export const decimal = (s: string): Decimal => Decimal.make(s)

// ---------------------------------------------------------------------------
// Bounds: every string and array on the wire has a documented maximum
// ---------------------------------------------------------------------------

export {
  boundedArray,
  boundedString,
  MAX_BOOK_LEVELS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_PROVIDERS,
  MAX_REASON_LENGTH,
  MAX_TRACE_ID_LENGTH,
  MAX_TRADES
} from "./Bounds.js"

const Id = (name: string) => boundedString(name, MAX_ID_LENGTH)
const Name = (name: string) => boundedString(name, MAX_NAME_LENGTH)
const Reason = (name: string) => boundedString(name, MAX_REASON_LENGTH)
const Levels = (name: string) => boundedArray(Level, name, MAX_BOOK_LEVELS)

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
  tradeId: Id("tradeId"),
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
  bids: Levels("bids"),
  asks: Levels("asks"),
  /** A consumer sees a book that is consistent or explicitly stale, never a silently wrong one. */
  state: BookState,
  /** Why the book is stale, when it is. */
  staleReason: Schema.optional(Reason("staleReason")),
  checksum: Schema.optional(Schema.Number)
}) {}

export class BookDelta extends Schema.TaggedClass<BookDelta>()("book_delta", {
  bids: Levels("bids"),
  asks: Levels("asks"),
  firstSeq: Schema.optional(Schema.Number),
  lastSeq: Schema.optional(Schema.Number),
  checksum: Schema.optional(Schema.Number)
}) {}

export const OrderStatus = Schema.Literal("new", "partially_filled", "filled", "canceled", "rejected")
export type OrderStatus = typeof OrderStatus.Type

export const OrderType = Schema.Literal("market", "limit")
export type OrderType = typeof OrderType.Type

export class ExecReportPayload extends Schema.TaggedClass<ExecReportPayload>()("exec_report", {
  orderId: Id("orderId"),
  clientOrderId: Id("clientOrderId"),
  consumerId: Id("consumerId"),
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
  reason: Schema.optional(Reason("reason"))
}) {}

export class ControlAckPayload extends Schema.TaggedClass<ControlAckPayload>()("control_ack", {
  commandId: Id("commandId"),
  command: Name("command"),
  consumerId: Id("consumerId"),
  /** The routing version the command applies to; consumers move their minimum accepted version to it. */
  appliesToVersion: Schema.Number
}) {}

/**
 * A command's outcome. `ok`, with an optional `detail` (the order, the new
 * routing version); or `rejected`, with the `rejection` as a tagged value
 * (one check on its `_tag` narrows it) and, when the command had several
 * problems, the others in `also`. A rejected result always carries its
 * rejection; an ok one never does.
 */
export class ControlResultPayload extends Schema.TaggedClass<ControlResultPayload>()(
  "control_result",
  Schema.Struct({
    commandId: Id("commandId"),
    command: Name("command"),
    consumerId: Id("consumerId"),
    outcome: Schema.Literal("ok", "rejected"),
    rejection: Schema.optional(Rejection),
    also: Schema.optional(boundedArray(Rejection, "also", MAX_ALSO)),
    detail: Schema.optional(Schema.Unknown)
  }).pipe(
    Schema.filter((r) =>
      r.outcome === "rejected"
        ? r.rejection !== undefined || "a rejected result carries its rejection"
        : (r.rejection === undefined && r.also === undefined) || "an ok result carries no rejection"
    )
  )
) {}

/**
 * A ControlResult of version 1 of the contract (its reason as text), decoded
 * into the current one: the text becomes a `RejectedAsText`. Decode only: the
 * gateway writes version 2.
 */
export const ControlResultV1 = Schema.transform(
  Schema.Struct({
    _tag: Schema.Literal("control_result"),
    commandId: Id("commandId"),
    command: Name("command"),
    consumerId: Id("consumerId"),
    outcome: Schema.Literal("ok", "rejected"),
    reason: Schema.optional(Reason("reason")),
    detail: Schema.optional(Schema.Unknown)
  }),
  Schema.typeSchema(ControlResultPayload),
  {
    strict: true,
    decode: ({ reason, ...v1 }) =>
      ControlResultPayload.make({
        ...v1,
        ...(v1.outcome === "rejected" ? { rejection: new RejectedAsText({ text: reason ?? "rejected" }) } : {})
      }),
    encode: ({ also: _also, rejection, ...v2 }) => ({
      ...v2,
      ...(rejection === undefined ? {} : { reason: rejection.message.slice(0, MAX_REASON_LENGTH) })
    })
  }
)


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

/** The payloads of a version 1 event: the same, but a ControlResult's reason is text. */
const EventPayloadV1 = Schema.Union(Trade, Ticker, BookSnapshot, BookDelta, ControlAckPayload, ControlResultV1)

// ---------------------------------------------------------------------------
// Merged payloads
// ---------------------------------------------------------------------------

/**
 * The merge's venues that are not in this merged event (none, or only a stale
 * book, in its window), in configuration order: a merge whose policy is
 * `quorum` or `any` emits without them. Absent in frames from before it
 * existed; empty when every venue contributed.
 */
const Missing = Schema.optionalWith(boundedArray(Name("provider"), "missing", MAX_PROVIDERS), { exact: true })

export class VenueQuote extends Schema.Class<VenueQuote>("VenueQuote")({
  provider: Name("provider"),
  bidPrice: Decimal,
  bidQty: Decimal,
  askPrice: Decimal,
  askQty: Decimal
}) {}

/** Consolidated best bid/offer across venues, each venue's quote attached. */
export class MergedTicker extends Schema.TaggedClass<MergedTicker>()("merged_ticker", {
  bestBid: Decimal,
  bestBidProvider: Name("bestBidProvider"),
  bestAsk: Decimal,
  bestAskProvider: Name("bestAskProvider"),
  quotes: boundedArray(VenueQuote, "quotes", MAX_PROVIDERS),
  missing: Missing
}) {}

export class MergedLevel extends Schema.Class<MergedLevel>("MergedLevel")({
  price: Decimal,
  totalQty: Decimal,
  venues: boundedArray(Schema.Struct({ provider: Name("provider"), quantity: Decimal }), "venues", MAX_PROVIDERS)
}) {}

/** Levels aggregated across venues with per-venue quantities. */
export class MergedBook extends Schema.TaggedClass<MergedBook>()("merged_book", {
  bids: boundedArray(MergedLevel, "bids", MAX_BOOK_LEVELS),
  asks: boundedArray(MergedLevel, "asks", MAX_BOOK_LEVELS),
  missing: Missing
}) {}

export class VenueTrade extends Schema.Class<VenueTrade>("VenueTrade")({
  provider: Name("provider"),
  trade: Trade
}) {}

/** The trades of one window, in exchange-time order. */
export class MergedTrades extends Schema.TaggedClass<MergedTrades>()("merged_trades", {
  trades: boundedArray(VenueTrade, "trades", MAX_TRADES),
  missing: Missing
}) {}

export const MergedPayload = Schema.Union(MergedTicker, MergedBook, MergedTrades)
export type MergedPayload = typeof MergedPayload.Type

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

const envelope = {
  schemaVersion: Schema.Literal(...DECODED_EVENT_SCHEMA_VERSIONS),
  traceId: boundedString("traceId", MAX_TRACE_ID_LENGTH),
  provider: Name("provider"),
  symbol: Name("symbol"),
  seqProvider: Schema.optional(Schema.NonNegativeInt),
  /**
   * The run of the feed that numbered `seqProvider` (absent in frames from
   * before it existed): a new epoch restarts the stream's ordering.
   */
  epoch: Schema.optional(Id("epoch")),
  /** Ingest time, epoch microseconds (finite: JSON's 1e999 is Infinity). */
  ingestTs: Schema.Finite,
  routingVersion: Schema.NonNegativeInt
}

const kindMatchesPayload = (e: { readonly kind: EventKind; readonly payload: { readonly _tag: string } }) =>
  e.kind === e.payload._tag || `kind ${e.kind} does not match payload ${e.payload._tag}`

/**
 * An event, current or of version 1: the version says how its payload reads
 * (a version 2 ControlResult must carry its rejection as a tagged value; a
 * version 1 one has a text reason, decoded into a `RejectedAsText`).
 */
export const WireEvent = Schema.Union(
  Schema.TaggedStruct("Event", {
    ...envelope,
    schemaVersion: Schema.Literal(EVENT_SCHEMA_VERSION),
    kind: EventKind,
    payload: EventPayload
  }).pipe(Schema.filter(kindMatchesPayload)),
  Schema.TaggedStruct("Event", {
    ...envelope,
    schemaVersion: Schema.Literal(1),
    kind: EventKind,
    payload: EventPayloadV1
  }).pipe(Schema.filter(kindMatchesPayload))
)
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
  mergeId: Id("mergeId"),
  sourceProviders: boundedArray(Name("provider"), "sourceProviders", MAX_PROVIDERS),
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
