/**
 * Kraken spot: authenticated order entry (REST and WebSocket v2), the
 * `executions` private channel, and the mapping of Kraken's orders, fills and
 * errors to our order views, execution reports and typed rejections.
 *
 * Documentation followed (spot, current API):
 * - REST authentication: https://docs.kraken.com/api/docs/guides/spot-rest-auth
 *   API-Sign = base64(HMAC-SHA512(base64-decoded secret, path + SHA-256(nonce + POST body))),
 *   the nonce strictly increasing per key.
 * - REST trading: AddOrder, AmendOrder, CancelOrder, QueryOrders, OpenOrders,
 *   TradesHistory, GetWebSocketsToken (https://docs.kraken.com/api/docs/rest-api/add-order ...).
 *   Bodies are form-encoded; answers are `{ error: string[], result }`, HTTP 200
 *   even for most refusals (the error strings carry the reason: "EOrder:Insufficient funds").
 * - WebSocket v2 (wss://ws-auth.kraken.com/v2): `add_order`, `cancel_order`,
 *   `amend_order` with the token from GetWebSocketsToken; the `executions`
 *   channel pushes order updates and fills (https://docs.kraken.com/api/docs/websocket-v2/executions).
 *
 * Our `clientOrderId` travels in Kraken's `cl_ord_id`, so a resubmission after
 * a timeout or a reconnect is recognised by the venue and by the reconciliation
 * (the order is looked up by `cl_ord_id` before anything is sent again).
 *
 * Kraken writes prices and quantities as JSON numbers on the WebSocket;
 * frames are parsed with `lossless-json` so "0.10000000" stays that text.
 */
import { createHash, createHmac } from "node:crypto"
import { Data, Deferred, Duration, Effect, Either, Exit, Redacted, Schema } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import { WebSocketConstructor } from "@effect/platform/Socket"
import DecimalJs from "decimal.js"
import { LosslessNumber, stringify as stringifyLossless } from "lossless-json"
import type { Decimal, OrderStatus, OrderType, Side } from "../../schema/Event.js"
import type { OrderRejection } from "../../schema/Rejection.js"
import { jsonNestedDeeperThan } from "../../schema/Bounds.js"
import { parseKraken } from "../providers/Kraken.js"
import {
  BelowMinimum,
  InvalidPrice,
  InvalidQuantity,
  PostOnlyWouldTake,
  UnknownSymbol,
  VenueRejected
} from "../../schema/Rejection.js"
import { makeVenueClock } from "./live/ClockSkew.js"
import type { Instrument, LiveAdapter, LiveError, PlaceOrder, StreamUpdate, VenueAnswer, VenueFill, VenueOrder } from "./live/LiveAdapter.js"
import {
  AuthenticationFailed,
  OrderRefused,
  OutcomeUnknown,
  RequestNotSent,
  VenueDuplicate,
  VenueFailure,
  VenueOrderClosed,
  VenueOrderUnknown,
  VenueRateLimited
} from "./live/LiveAdapter.js"
import { adapterStats } from "./live/AdapterStats.js"
import { decimalText as plainDecimalText, insufficientBalance, type RefusedOrder } from "./live/Refusals.js"
import { makePrivateStream, type ReconnectBackoff } from "./live/PrivateStream.js"
import { makeRateLimiter } from "./live/RateLimiter.js"
import { makeRestTransport, REDACTED } from "./live/Transport.js"
import { readSecret, type SecretUnavailable } from "./live/Secrets.js"
import type { LiveVenueSection } from "../../schema/Config.js"

export const KRAKEN_REST_URL = "https://api.kraken.com"
export const KRAKEN_WS_AUTH_URL = "wss://ws-auth.kraken.com/v2"

// ---------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------

/**
 * The API-Sign header of a private REST call: `path` is the URI path from
 * "/0/private" on, `body` the form-encoded POST body (which carries the same
 * nonce), `secret` the base64 private key as Kraken issues it.
 */
export const krakenSign = (
  path: string,
  nonce: string,
  body: string,
  secret: Redacted.Redacted<string>
): string => {
  const digest = createHash("sha256").update(nonce + body).digest()
  return createHmac("sha512", Buffer.from(Redacted.value(secret), "base64"))
    .update(Buffer.concat([Buffer.from(path), digest]))
    .digest("base64")
}

/**
 * Strictly increasing nonces per API key: the clock in microseconds, or one
 * more than the last nonce when the clock has not moved (or went back), so two
 * requests in the same microsecond, or after a clock step back, never share
 * or reuse a nonce ("EAPI:Invalid nonce").
 */
export const makeNonces = (nowMillis: () => number): () => string => {
  let last = 0n
  return () => {
    const now = BigInt(Math.floor(nowMillis() * 1000))
    last = now > last ? now : last + 1n
    return last.toString()
  }
}

/** Form encoding of a REST body (the order of `params` is kept: it is the signed text). */
export const formBody = (params: ReadonlyArray<readonly [string, string]>): string =>
  new URLSearchParams(params as Array<[string, string]>).toString()

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A Kraken error string, e.g. "EOrder:Insufficient funds", split into its category and text. */
export interface KrakenError {
  readonly severity: "E" | "W"
  readonly category: string
  readonly text: string
  readonly raw: string
}

export const parseKrakenError = (raw: string): KrakenError => {
  const m = /^([EW])([A-Za-z]+):(.*)$/s.exec(raw)
  return m === null
    ? { severity: "E", category: "General", text: raw, raw }
    : { severity: m[1] as "E" | "W", category: m[2]!, text: m[3]!, raw }
}

/** The error strings that mean "too many requests" (REST counter, matching engine counter). */
export const isKrakenRateLimit = (e: KrakenError): boolean =>
  /rate limit exceeded|too many requests|throttled/i.test(e.text)

// ---------------------------------------------------------------------------
// Decimals
// ---------------------------------------------------------------------------

/** A decimal as Kraken may write it ("37500.0", 1.25, "0.00000000") to our canonical text. */
export const decimalText = plainDecimalText

// ---------------------------------------------------------------------------
// REST answers (documented shapes; unknown fields are ignored)
// ---------------------------------------------------------------------------

const Num = Schema.Union(Schema.String, Schema.Number)

/** Every REST answer: errors (possibly warnings only) and, on success, a result. */
const Envelope = Schema.Struct({
  error: Schema.Array(Schema.String),
  result: Schema.optional(Schema.Unknown)
})

export const AddOrderResult = Schema.Struct({
  descr: Schema.optional(Schema.Struct({ order: Schema.optional(Schema.String) })),
  txid: Schema.Array(Schema.String)
})

export const CancelOrderResult = Schema.Struct({
  count: Schema.Number,
  pending: Schema.optional(Schema.Boolean)
})

export const AmendOrderResult = Schema.Struct({ amend_id: Schema.String })

/** One order as QueryOrders / OpenOrders describe it. */
export const KrakenOrderInfo = Schema.Struct({
  cl_ord_id: Schema.optional(Schema.NullOr(Schema.String)),
  userref: Schema.optional(Schema.NullOr(Num)),
  status: Schema.Literal("pending", "open", "closed", "canceled", "expired"),
  opentm: Schema.optional(Schema.Number),
  closetm: Schema.optional(Schema.Number),
  descr: Schema.Struct({
    pair: Schema.String,
    type: Schema.Literal("buy", "sell"),
    ordertype: Schema.String,
    price: Schema.optional(Num)
  }),
  vol: Num,
  vol_exec: Num,
  cost: Schema.optional(Num),
  fee: Schema.optional(Num),
  /** Mean fill price. */
  price: Schema.optional(Num),
  limitprice: Schema.optional(Num),
  oflags: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.NullOr(Schema.String)),
  trades: Schema.optional(Schema.Array(Schema.String))
})
export type KrakenOrderInfo = typeof KrakenOrderInfo.Type

export const QueryOrdersResult = Schema.Record({ key: Schema.String, value: KrakenOrderInfo })
export const OpenOrdersResult = Schema.Struct({ open: Schema.Record({ key: Schema.String, value: KrakenOrderInfo }) })

/** One fill as TradesHistory describes it. */
export const KrakenTradeInfo = Schema.Struct({
  ordertxid: Schema.String,
  pair: Schema.String,
  time: Schema.Number,
  type: Schema.Literal("buy", "sell"),
  ordertype: Schema.optional(Schema.String),
  price: Num,
  cost: Schema.optional(Num),
  fee: Schema.optional(Num),
  vol: Num,
  maker: Schema.optional(Schema.Boolean)
})
export type KrakenTradeInfo = typeof KrakenTradeInfo.Type

export const TradesHistoryResult = Schema.Struct({
  trades: Schema.Record({ key: Schema.String, value: KrakenTradeInfo }),
  count: Schema.optional(Schema.Number)
})

export const WebSocketsTokenResult = Schema.Struct({ token: Schema.String, expires: Schema.Number })

// ---------------------------------------------------------------------------
// Our vocabulary
// ---------------------------------------------------------------------------

/** A Kraken order in our terms. */
export interface KrakenOrderState {
  readonly venueOrderId: string
  readonly clientOrderId: string | undefined
  readonly side: Side
  readonly type: OrderType
  readonly status: OrderStatus
  readonly price: string | undefined
  readonly quantity: string
  readonly filledQty: string
  readonly avgPrice: string | undefined
  readonly reason: string | undefined
  readonly postOnly: boolean
}

/** A Kraken fill in our terms; `tradeId` is Kraken's trade id (the idempotency key of a fill). */
export interface KrakenFill {
  readonly tradeId: string
  readonly venueOrderId: string
  readonly clientOrderId: string | undefined
  readonly side: Side
  readonly price: string
  readonly quantity: string
  readonly fee: string
  readonly maker: boolean
  /** Epoch milliseconds. */
  readonly timeMs: number
}

const zero = "0"

/**
 * Kraken's order status in ours: `pending`/`open` are working (partially
 * filled once something executed); `closed` is filled, unless less than the
 * whole quantity executed (an IOC remainder, a market order stopped short):
 * then the rest was canceled; `expired` is a cancel by the venue.
 */
export const orderStatusOf = (status: KrakenOrderInfo["status"], quantity: string, filled: string): OrderStatus => {
  const some = new DecimalJs(filled).gt(0)
  switch (status) {
    case "pending":
    case "open":
      return some ? "partially_filled" : "new"
    case "closed":
      return new DecimalJs(filled).gte(quantity) ? "filled" : "canceled"
    case "canceled":
    case "expired":
      return "canceled"
  }
}

export const orderStateOf = (txid: string, o: KrakenOrderInfo): KrakenOrderState => {
  const quantity = decimalText(o.vol) ?? zero
  const filledQty = decimalText(o.vol_exec) ?? zero
  const status = orderStatusOf(o.status, quantity, filledQty)
  const avg = decimalText(o.price)
  const limit = o.descr.ordertype === "limit" ? decimalText(o.descr.price) : undefined
  return {
    venueOrderId: txid,
    clientOrderId: o.cl_ord_id ?? undefined,
    side: o.descr.type,
    type: o.descr.ordertype === "market" ? "market" : "limit",
    status,
    price: limit,
    quantity,
    filledQty,
    avgPrice: avg !== undefined && new DecimalJs(filledQty).gt(0) ? avg : undefined,
    reason: o.reason ?? (o.status === "expired" ? "expired" : undefined) ?? undefined,
    postOnly: (o.oflags ?? "").split(",").includes("post")
  }
}

export const fillOf = (tradeId: string, t: KrakenTradeInfo, clientOrderId?: string): KrakenFill => ({
  tradeId,
  venueOrderId: t.ordertxid,
  clientOrderId,
  side: t.type,
  price: decimalText(t.price) ?? zero,
  quantity: decimalText(t.vol) ?? zero,
  fee: decimalText(t.fee) ?? zero,
  maker: t.maker === true,
  timeMs: Math.round(t.time * 1000)
})

// ---------------------------------------------------------------------------
// REST client
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Orders in Kraken's terms
// ---------------------------------------------------------------------------

/** What an order asks of Kraken (our terms; the client writes Kraken's). */
export interface KrakenOrderRequest {
  readonly clientOrderId: string
  /** Kraken's pair name for REST, e.g. "XBTUSD" (see `krakenRestPair`). */
  readonly pair: string
  readonly side: Side
  readonly type: OrderType
  readonly quantity: string
  readonly price?: string | undefined
  readonly timeInForce?: "GTC" | "IOC" | undefined
  readonly postOnly?: boolean | undefined
}

export interface KrakenAmendRequest {
  readonly clientOrderId: string
  /** The new total quantity. */
  readonly quantity?: string | undefined
  readonly price?: string | undefined
}

/**
 * Kraken's REST pair for one of our symbols written the WebSocket v2 way
 * ("BTC/USD" -> "XBTUSD"): Kraken's altnames keep XBT and XDG for bitcoin
 * and dogecoin.
 */
export const krakenRestPair = (wsSymbol: string): string =>
  wsSymbol.split("/").map((a) => a === "BTC" ? "XBT" : a === "DOGE" ? "XDG" : a).join("")

/** The REST parameters of a new order, in the order they are signed. */
export const addOrderParams = (o: KrakenOrderRequest): Array<readonly [string, string]> => {
  const params: Array<readonly [string, string]> = [
    ["ordertype", o.type],
    ["type", o.side],
    ["volume", o.quantity],
    ["pair", o.pair]
  ]
  if (o.type === "limit" && o.price !== undefined) params.push(["price", o.price])
  if (o.timeInForce !== undefined && o.timeInForce !== "GTC") params.push(["timeinforce", o.timeInForce])
  if (o.postOnly === true) params.push(["oflags", "post"])
  params.push(["cl_ord_id", o.clientOrderId])
  return params
}

// ---------------------------------------------------------------------------
// Refusals in our terms
// ---------------------------------------------------------------------------

/**
 * Kraken's documented order errors as our typed rejections; any other error
 * is a `VenueRejected` carrying Kraken's words (its code is the error's
 * category and text, e.g. "EOrder:Orders limit exceeded").
 */
export const krakenRejection = (errors: ReadonlyArray<string>, o: RefusedOrder): OrderRejection => {
  const first = parseKrakenError(errors[0] ?? "EGeneral:Unknown error")
  const text = `${first.category}:${first.text}`
  if (/insufficient funds/i.test(first.text)) return insufficientBalance(o)
  if (/order minimum not met/i.test(first.text)) {
    return new BelowMinimum({ clientOrderId: o.clientOrderId, symbol: o.symbol, measure: "quantity", value: o.quantity, minimum: "venue minimum" })
  }
  if (/cost minimum not met/i.test(first.text)) {
    return new BelowMinimum({
      clientOrderId: o.clientOrderId,
      symbol: o.symbol,
      measure: "notional",
      value: o.price === undefined ? "market" : new DecimalJs(o.price).mul(o.quantity).toFixed(),
      minimum: "venue minimum"
    })
  }
  if (/invalid arguments:volume|invalid volume|volume/i.test(first.text) && first.category !== "Order") {
    return new InvalidQuantity({ clientOrderId: o.clientOrderId, symbol: o.symbol, quantity: o.quantity, rule: `kraken: ${text}`.slice(0, 200) })
  }
  if (/price/i.test(first.text) && !/post only/i.test(first.text)) {
    return new InvalidPrice({ clientOrderId: o.clientOrderId, symbol: o.symbol, price: o.price, rule: `kraken: ${text}`.slice(0, 200) })
  }
  if (/unknown asset pair/i.test(first.text)) return new UnknownSymbol({ symbol: o.symbol, venue: o.venue })
  return new VenueRejected({
    venue: o.venue,
    clientOrderId: o.clientOrderId,
    symbol: o.symbol,
    code: first.raw.slice(0, 64),
    text: errors.join("; ").slice(0, 500)
  })
}

// ---------------------------------------------------------------------------
// WebSocket v2: the executions channel and order entry
// ---------------------------------------------------------------------------

const Text = Schema.String
const optText = Schema.optional(Schema.NullOr(Schema.String))

/** One entry of an `executions` message (numbers arrive as the text Kraken wrote, see `parseKraken`). */
export const ExecutionData = Schema.Struct({
  order_id: Text,
  cl_ord_id: optText,
  exec_id: optText,
  exec_type: Text,
  order_status: optText,
  symbol: optText,
  side: Schema.optional(Schema.Literal("buy", "sell")),
  order_type: optText,
  order_qty: optText,
  limit_price: optText,
  cum_qty: optText,
  avg_price: optText,
  last_qty: optText,
  last_price: optText,
  trade_id: optText,
  liquidity_ind: optText,
  fees: Schema.optional(Schema.Array(Schema.Struct({ asset: Text, qty: Text }))),
  post_only: Schema.optional(Schema.Union(Schema.Boolean, Schema.String)),
  timestamp: optText,
  reason: optText
})
export type ExecutionData = typeof ExecutionData.Type

export const ExecutionsMessage = Schema.Struct({
  channel: Schema.Literal("executions"),
  type: Schema.Literal("snapshot", "update"),
  data: Schema.Array(ExecutionData),
  sequence: optText
})

/** An answer to one of our requests (`subscribe`, `add_order`, ...), matched by `req_id`. */
export const MethodAnswer = Schema.Struct({
  method: Text,
  req_id: Schema.optional(Text),
  success: Schema.optional(Schema.Union(Schema.Boolean, Schema.Literal("true", "false"))),
  error: optText,
  result: Schema.optional(Schema.Unknown)
})

/** One order transition as the executions channel reports it, in our terms. */
export interface KrakenExecution {
  readonly venueOrderId: string
  readonly clientOrderId: string | undefined
  /** Kraken's exec_type: pending_new, new, trade, filled, canceled, expired, amended, restated, status. */
  readonly execType: string
  readonly status: OrderStatus | undefined
  /** Kraken's symbol ("BTC/USD"). */
  readonly symbol: string | undefined
  readonly side: Side | undefined
  readonly type: OrderType | undefined
  readonly price: string | undefined
  readonly quantity: string | undefined
  readonly filledQty: string | undefined
  readonly avgPrice: string | undefined
  readonly reason: string | undefined
  /** On a `trade`: the fill, keyed by Kraken's trade id. */
  readonly fill: KrakenFill | undefined
}

const statusOfText = (s: string | null | undefined): OrderStatus | undefined => {
  switch (s) {
    case "pending_new":
    case "new":
      return "new"
    case "partially_filled":
      return "partially_filled"
    case "filled":
      return "filled"
    case "canceled":
    case "expired":
      return "canceled"
    default:
      return undefined
  }
}

export const executionOf = (d: ExecutionData, nowMs: number): KrakenExecution => {
  const ts = d.timestamp == null ? Number.NaN : Date.parse(d.timestamp)
  const timeMs = Number.isNaN(ts) ? nowMs : ts
  // a trade's exec_id is its trade txid, the key TradesHistory and QueryTrades list it under (trade_id is a
  // per-pair number that REST answers do not key by): fills seen on both paths are matched by it
  const tradeKey = d.exec_id ?? d.trade_id
  const fill: KrakenFill | undefined = d.exec_type === "trade" && tradeKey != null && d.last_qty != null
    ? {
      tradeId: tradeKey,
      venueOrderId: d.order_id,
      clientOrderId: d.cl_ord_id ?? undefined,
      side: d.side ?? "buy",
      price: decimalText(d.last_price) ?? "0",
      quantity: decimalText(d.last_qty) ?? "0",
      fee: (d.fees ?? []).reduce((acc, f) => acc.add(decimalText(f.qty) ?? "0"), new DecimalJs(0)).toFixed(),
      maker: d.liquidity_ind === "m",
      timeMs
    }
    : undefined
  const quantity = decimalText(d.order_qty)
  const filled = decimalText(d.cum_qty)
  return {
    venueOrderId: d.order_id,
    clientOrderId: d.cl_ord_id ?? undefined,
    execType: d.exec_type,
    status: statusOfText(d.order_status) ?? statusOfText(d.exec_type),
    symbol: d.symbol ?? undefined,
    side: d.side,
    type: d.order_type == null ? undefined : d.order_type === "market" ? "market" : "limit",
    price: decimalText(d.limit_price),
    quantity,
    filledQty: filled,
    avgPrice: decimalText(d.avg_price),
    reason: d.reason ?? (d.exec_type === "expired" ? "expired" : undefined),
    fill
  }
}

/** What one frame of the private WebSocket said. */
export type KrakenPrivateFrame =
  | { readonly _tag: "Executions"; readonly snapshot: boolean; readonly executions: ReadonlyArray<KrakenExecution> }
  | { readonly _tag: "Answer"; readonly method: string; readonly reqId: string | undefined; readonly ok: boolean; readonly error: string | undefined; readonly result: unknown }
  | { readonly _tag: "Heartbeat" }
  | { readonly _tag: "Malformed"; readonly reason: string }

const decodeExecutions = Schema.decodeUnknownEither(ExecutionsMessage)
const decodeAnswer = Schema.decodeUnknownEither(MethodAnswer)

const isPositive = (u: string | null | undefined): boolean => {
  const t = decimalText(u)
  return t !== undefined && new DecimalJs(t).gt(0)
}

/** The largest private frame read (a snapshot of many open orders fits). */
export const MAX_PRIVATE_FRAME = 1 << 20

export const parsePrivateFrame = (text: string, nowMs: number): KrakenPrivateFrame => {
  if (text.length > MAX_PRIVATE_FRAME) return { _tag: "Malformed", reason: `frame of ${text.length} characters` }
  if (jsonNestedDeeperThan(text, 16)) return { _tag: "Malformed", reason: "nested too deep" }
  const parsed = parseKraken(text)
  if (!parsed.ok) return { _tag: "Malformed", reason: "not JSON" }
  const v = parsed.value as Record<string, unknown> | null
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { _tag: "Malformed", reason: "not an object" }
  if (v.channel === "heartbeat" || v.channel === "status" || v.method === "pong") return { _tag: "Heartbeat" }
  if (v.channel === "executions") {
    const m = decodeExecutions(v)
    if (Either.isLeft(m)) return { _tag: "Malformed", reason: "executions message does not decode" }
    // a trade whose quantity or price is not a positive decimal is refused whole: the fill comes from REST instead
    const badTrade = m.right.data.some((d) =>
      d.exec_type === "trade" && !(isPositive(d.last_qty) && isPositive(d.last_price) && (d.exec_id ?? d.trade_id) != null)
    )
    if (badTrade) return { _tag: "Malformed", reason: "a trade without a positive quantity, price or id" }
    return { _tag: "Executions", snapshot: m.right.type === "snapshot", executions: m.right.data.map((d) => executionOf(d, nowMs)) }
  }
  if (typeof v.method === "string") {
    const a = decodeAnswer(v)
    if (Either.isLeft(a)) return { _tag: "Malformed", reason: "answer does not decode" }
    return {
      _tag: "Answer",
      method: a.right.method,
      reqId: a.right.req_id,
      ok: a.right.success === true || a.right.success === "true",
      error: a.right.error ?? undefined,
      result: a.right.result
    }
  }
  return { _tag: "Malformed", reason: "unknown message" }
}

/** The subscription to the executions channel (order snapshot on connect; fills come from TradesHistory). */
export const subscribeExecutions = (token: string, reqId: number): string =>
  JSON.stringify({ method: "subscribe", params: { channel: "executions", token, snap_orders: true, snap_trades: false }, req_id: reqId })

/** A decimal written as a JSON number with exactly its digits (v2 takes numbers; `Number` would round 18 decimals). */
const exact = (d: string) => new LosslessNumber(d)
const toJson = (value: unknown): string => stringifyLossless(value) ?? ""

/** `add_order` on the WebSocket (our terms in Kraken's v2 fields; `symbol` as v2 writes it, "BTC/USD"). */
export const wsAddOrder = (o: Omit<KrakenOrderRequest, "pair"> & { readonly symbol: string }, token: string, reqId: number): string =>
  toJson({
    method: "add_order",
    params: {
      order_type: o.type,
      side: o.side,
      order_qty: exact(o.quantity),
      symbol: o.symbol,
      ...(o.type === "limit" && o.price !== undefined ? { limit_price: exact(o.price) } : {}),
      ...(o.timeInForce !== undefined && o.timeInForce !== "GTC" ? { time_in_force: o.timeInForce.toLowerCase() } : {}),
      ...(o.postOnly === true ? { post_only: true } : {}),
      cl_ord_id: o.clientOrderId,
      token
    },
    req_id: reqId
  })

export const wsCancelOrder = (clientOrderIds: ReadonlyArray<string>, token: string, reqId: number): string =>
  JSON.stringify({ method: "cancel_order", params: { cl_ord_id: clientOrderIds, token }, req_id: reqId })

export const wsAmendOrder = (a: KrakenAmendRequest, token: string, reqId: number): string =>
  toJson({
    method: "amend_order",
    params: {
      cl_ord_id: a.clientOrderId,
      ...(a.quantity !== undefined ? { order_qty: exact(a.quantity) } : {}),
      ...(a.price !== undefined ? { limit_price: exact(a.price) } : {}),
      token
    },
    req_id: reqId
  })

// ---------------------------------------------------------------------------
// The adapter (src/execution/live/LiveAdapter.ts)
// ---------------------------------------------------------------------------

export interface KrakenCredentials {
  readonly apiKey: Redacted.Redacted<string>
  /** The base64 private key. */
  readonly apiSecret: Redacted.Redacted<string>
}

export interface KrakenAdapterOptions {
  /** The venue's name in `SubmitOrder.venue`. Default "kraken". */
  readonly venue?: string
  /** Default `KRAKEN_REST_URL` (Kraken has no spot testnet: a mock venue's URL in tests). */
  readonly restUrl?: string
  /** Default `KRAKEN_WS_AUTH_URL`. */
  readonly wsUrl?: string
  readonly credentials: KrakenCredentials
  /** Our symbols traded here ("BTC-USD"), and where Kraken's v2 name differs from "BTC/USD", the map. */
  readonly symbols: ReadonlyArray<string>
  readonly symbolMap?: Readonly<Record<string, string>>
  /** A request without an answer after this long is an unknown outcome. Default 10 s. */
  readonly timeoutMs?: number
  readonly dryRun?: boolean
  /**
   * Kraken's REST call counter for the account's tier (Starter: 15, decaying
   * 0.33 a second; Intermediate: 20 at 0.5; Pro: 20 at 1): counted as a fixed
   * window of `counterMax` per `counterMax / decayPerSecond` seconds. Default Starter.
   */
  readonly counterMax?: number
  readonly decayPerSecond?: number
  /** The skew to Kraken's clock tolerated (Kraken checks nonces, not times): default 30 s. */
  readonly recvWindowMs?: number
  /** The private stream's reconnect backoff (tests make it quick). */
  readonly backoff?: ReconnectBackoff
  readonly stallTimeoutMs?: number
  /**
   * Where orders, cancels and amends go: REST (AddOrder, CancelOrder,
   * AmendOrder; the default) or the authenticated WebSocket v2 (`add_order`,
   * `cancel_order`, `amend_order` with the session's token) that also carries
   * the executions channel. Queries, fills and reconciliation use REST either way.
   */
  readonly orderEntry?: "rest" | "websocket"
  /**
   * Why this venue must not start (a configuration it cannot honour): the
   * start's clock check and every private call fail with it.
   */
  readonly startProblem?: string | undefined
}

/** Error strings that mean our credentials or signature were refused. */
const AUTH_ERRORS = /invalid key|invalid signature|invalid nonce|permission denied|invalid session/i

/**
 * Kraken's `cl_ord_id`: a UUID (with or without dashes) or free text of at
 * most 18 characters (https://docs.kraken.com/api/docs/guides/spot-clordid).
 */
export const krakenClientOrderIdProblem = (id: string): string | undefined =>
  /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(id) ||
    (id.length <= 18 && /^[\x21-\x7e]+$/.test(id))
    ? undefined
    : "Kraken's cl_ord_id takes a UUID or at most 18 printable ASCII characters"

const AssetPair = Schema.Struct({
  altname: Schema.String,
  wsname: Schema.optional(Schema.String),
  lot_decimals: Schema.optional(Schema.Number),
  ordermin: Schema.optional(Num),
  costmin: Schema.optional(Num),
  tick_size: Schema.optional(Num),
  status: Schema.optional(Schema.String)
})
const AssetPairsResult = Schema.Record({ key: Schema.String, value: AssetPair })
const TimeResult = Schema.Struct({ unixtime: Schema.Number })
const QueryTradesResult = Schema.Record({ key: Schema.String, value: KrakenTradeInfo })

const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Envelope))

/** Kraken refused a call: its error strings, for the operation to map. */
class KrakenRefusal extends Data.TaggedError("KrakenRefusal")<{
  readonly operation: string
  readonly errors: ReadonlyArray<string>
}> {}

/** "BTC/USD" <- "XBT/USD" (AssetPairs' wsname keeps Kraken's old asset codes). */
const normaliseWsName = (ws: string): string =>
  ws.split("/").map((a) => a === "XBT" ? "BTC" : a === "XDG" ? "DOGE" : a).join("/")

export const makeKrakenAdapter = (
  options: KrakenAdapterOptions
): Effect.Effect<LiveAdapter, never, HttpClient.HttpClient | WebSocketConstructor> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const webSocket = yield* WebSocketConstructor
    const clock = yield* Effect.clock
    const venue = options.venue ?? "kraken"
    const restUrl = options.restUrl ?? KRAKEN_REST_URL
    const counterMax = options.counterMax ?? 15
    const decay = options.decayPerSecond ?? 0.33
    const limiter = makeRateLimiter({
      buckets: [
        { name: "counter", limit: counterMax, intervalMs: Math.ceil((counterMax / decay) * 1000) },
        // the matching engine's per-pair order counter (Starter: 60, decaying 1 a second)
        { name: "orders", limit: 60, intervalMs: 60_000 },
        // public calls: about one a second per IP, counted here as five per five seconds (start-up makes two at once)
        { name: "public", limit: 5, intervalMs: 5_000 }
      ],
      defaultCoolDownMs: 15_000
    }, clock)
    const transport = yield* makeRestTransport({
      venue,
      baseUrl: restUrl,
      http,
      limiter,
      timeoutMs: options.timeoutMs ?? 10_000,
      dryRun: options.dryRun ?? false,
      secretHeaders: ["api-key", "api-sign"],
      // Kraken answers "too many" with HTTP 200 and an error string
      isRateLimitBody: (_status, body) =>
        body.length < 4_096 && /"E(API|Order|General):(Rate limit exceeded|Too many requests)/i.test(body)
    })
    const venueClock = makeVenueClock(venue, options.recvWindowMs ?? 30_000, clock)
    const nonces = makeNonces(() => clock.unsafeCurrentTimeMillis())

    // symbols: ours <-> Kraken's v2 name ("BTC/USD") <-> REST altname ("XBTUSD")
    const wsOf = new Map<string, string>()
    const ours = new Map<string, string>()
    for (const s of options.symbols) {
      const ws = options.symbolMap?.[s] ?? s.replace("-", "/")
      wsOf.set(s, ws)
      ours.set(ws, s)
      ours.set(krakenRestPair(ws), s)
    }
    const wsSymbol = (symbol: string) => wsOf.get(symbol) ?? symbol.replace("-", "/")
    const restPair = (symbol: string) => krakenRestPair(wsSymbol(symbol))
    const ourSymbol = (venueName: string): string | undefined => ours.get(venueName) ?? ours.get(normaliseWsName(venueName))

    const refused = (operation: string) =>
      options.startProblem === undefined
        ? Effect.void
        : Effect.fail(new VenueFailure({ venue, operation, status: 0, code: "not_started", text: options.startProblem }))

    /** One private call: the decoded result, a refusal to map, or a LiveError. */
    const call = <A, I>(
      operation: string,
      params: ReadonlyArray<readonly [string, string]>,
      result: Schema.Schema<A, I>,
      opts: { readonly mutating: boolean; readonly cost?: number; readonly orders?: boolean }
    ): Effect.Effect<A, KrakenRefusal | LiveError> =>
      Effect.gen(function*() {
        yield* refused(operation)
        const path = `/0/private/${operation}`
        const nonce = nonces()
        const body = formBody([["nonce", nonce], ...params])
        const response = yield* transport.send({
          operation,
          method: "POST",
          path,
          body,
          contentType: "application/x-www-form-urlencoded",
          headers: {
            "API-Key": Redacted.value(options.credentials.apiKey),
            "API-Sign": krakenSign(path, nonce, body, options.credentials.apiSecret)
          },
          costs: opts.orders === true ? { orders: 1 } : { counter: opts.cost ?? 1 },
          mutating: opts.mutating
        })
        return yield* readAnswer(operation, response.status, response.body, result, opts.mutating)
      })

    const readAnswer = <A, I>(
      operation: string,
      status: number,
      text: string,
      result: Schema.Schema<A, I>,
      mutating: boolean
    ): Effect.Effect<A, KrakenRefusal | LiveError> => {
      if (status >= 500) {
        return Effect.fail(
          mutating
            ? new OutcomeUnknown({ venue, operation, reason: `HTTP ${status}` })
            : new VenueFailure({ venue, operation, status, code: `HTTP_${status}`, text: "server error" })
        )
      }
      const envelope = decodeEnvelope(text)
      if (Either.isLeft(envelope)) {
        return Effect.fail(new VenueFailure({ venue, operation, status, code: "undecodable", text: "an answer that does not decode" }))
      }
      const errors = envelope.right.error.filter((e) => !e.startsWith("W")).map((e) => e.slice(0, 200)).slice(0, 8)
      if (errors.length > 0) return refusal(operation, errors, mutating)
      const decoded = Schema.decodeUnknownEither(result)(envelope.right.result)
      return Either.isLeft(decoded)
        ? Effect.fail(new VenueFailure({ venue, operation, status, code: "undecodable", text: "the result does not decode" }))
        : Effect.succeed(decoded.right)
    }

    /** Kraken's error strings: our credentials refused, an unknown outcome, or a refusal for the operation to map. */
    const refusal = (operation: string, errors: ReadonlyArray<string>, mutating: boolean): Effect.Effect<never, KrakenRefusal | LiveError> => {
      const first = parseKrakenError(errors[0] ?? "EGeneral:Unknown error")
      if (AUTH_ERRORS.test(first.text)) return Effect.fail(new AuthenticationFailed({ venue, code: `E${first.category}`, text: first.text }))
      // "the matching engine is unavailable / busy / timed out": it may have taken the order
      if (mutating && first.category === "Service") return Effect.fail(new OutcomeUnknown({ venue, operation, reason: first.raw }))
      return Effect.fail(new KrakenRefusal({ operation, errors }))
    }

    // --- order entry on the WebSocket: requests matched to answers by req_id

    const orderEntry = options.orderEntry ?? "rest"
    let wsSend: ((text: string) => Effect.Effect<void>) | undefined
    let wsToken: string | undefined
    let wsReady = false
    let wsRequests = 0
    const pending = new Map<string, Deferred.Deferred<WsAnswer>>()
    const wsTimeoutMs = options.timeoutMs ?? 10_000

    const wsCall = (
      operation: string,
      build: (token: string, reqId: number) => string
    ): Effect.Effect<unknown, KrakenRefusal | LiveError> =>
      Effect.gen(function*() {
        if (options.dryRun === true) {
          yield* Effect.logInfo("dry-run: signed request logged, not sent").pipe(
            Effect.annotateLogs({ venue, operation, message: build(REDACTED, 0) })
          )
          return yield* new RequestNotSent({ venue, operation, reason: "dry-run" })
        }
        if (!wsReady || wsSend === undefined || wsToken === undefined) {
          return yield* new RequestNotSent({ venue, operation, reason: "the private WebSocket is not connected" })
        }
        yield* limiter.acquire({ orders: 1 })
        const id = ++reqId
        const answer = yield* Deferred.make<WsAnswer>()
        pending.set(String(id), answer)
        wsRequests++
        yield* wsSend(build(wsToken, id))
        const a = yield* Deferred.await(answer).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(wsTimeoutMs),
            onTimeout: () => new OutcomeUnknown({ venue, operation, reason: `no answer in ${wsTimeoutMs} ms` })
          }),
          Effect.ensuring(Effect.sync(() => pending.delete(String(id))))
        )
        if (a.ok) return a.result
        const error = (a.error ?? "EGeneral:Unknown error").slice(0, 200)
        if (isKrakenRateLimit(parseKrakenError(error))) {
          return yield* new VenueRateLimited({ venue, status: 429, retryAfterMs: limiter.rateLimited(429, undefined) })
        }
        return yield* refusal(operation, [error], true)
      })

    const WsAddResult = Schema.Struct({ order_id: Schema.String })

    /** AddOrder / add_order: Kraken's order id. */
    const sendAdd = (order: PlaceOrder): Effect.Effect<string, KrakenRefusal | LiveError> => {
      const request: KrakenOrderRequest = {
        clientOrderId: order.clientOrderId,
        pair: restPair(order.symbol),
        side: order.side,
        type: order.type,
        quantity: order.quantity,
        price: order.price,
        timeInForce: order.type === "market" ? undefined : order.timeInForce === "IOC" ? "IOC" : "GTC",
        postOnly: order.postOnly
      }
      if (orderEntry === "websocket") {
        return wsCall("add_order", (token, id) => wsAddOrder({ ...request, symbol: wsSymbol(order.symbol) }, token, id)).pipe(
          Effect.flatMap((r) => {
            const d = Schema.decodeUnknownEither(WsAddResult)(r)
            return Either.isLeft(d)
              ? Effect.fail(new OutcomeUnknown({ venue, operation: "add_order", reason: "no order_id in the answer" }))
              : Effect.succeed(d.right.order_id)
          })
        )
      }
      return call("AddOrder", addOrderParams(request), AddOrderResult, { mutating: true, orders: true }).pipe(
        Effect.flatMap((r) =>
          r.txid[0] === undefined
            ? Effect.fail(new OutcomeUnknown({ venue, operation: "AddOrder", reason: "no txid in the answer" }))
            : Effect.succeed(r.txid[0])
        )
      )
    }

    /** CancelOrder / cancel_order: whether Kraken canceled something. */
    const sendCancel = (clientOrderId: string): Effect.Effect<boolean, KrakenRefusal | LiveError> =>
      orderEntry === "websocket"
        ? wsCall("cancel_order", (token, id) => wsCancelOrder([clientOrderId], token, id)).pipe(Effect.as(true))
        : call("CancelOrder", [["cl_ord_id", clientOrderId]], CancelOrderResult, { mutating: true, orders: true }).pipe(
          Effect.map((r) => r.count > 0 || r.pending === true)
        )

    const sendAmend = (a: KrakenAmendRequest): Effect.Effect<void, KrakenRefusal | LiveError> => {
      if (orderEntry === "websocket") return Effect.asVoid(wsCall("amend_order", (token, id) => wsAmendOrder(a, token, id)))
      const params: Array<readonly [string, string]> = [["cl_ord_id", a.clientOrderId]]
      if (a.quantity !== undefined) params.push(["order_qty", a.quantity])
      if (a.price !== undefined) params.push(["limit_price", a.price])
      return Effect.asVoid(call("AmendOrder", params, AmendOrderResult, { mutating: true, orders: true }))
    }

    const publicGet = <A, I>(operation: string, path: string, query: string, result: Schema.Schema<A, I>) =>
      transport.send({ operation, method: "GET", path, query, headers: {}, costs: { public: 1 }, mutating: false }).pipe(
        Effect.flatMap((r) => readAnswer(operation, r.status, r.body, result, false)),
        Effect.catchTag("KrakenRefusal", (e) =>
          Effect.fail(new VenueFailure({ venue, operation, status: 200, code: e.errors[0] ?? "error", text: e.errors.join("; ") })))
      )

    /** Any refusal left unmapped by an operation is a venue failure with Kraken's words. */
    const otherwise = (operation: string) => (e: KrakenRefusal): Effect.Effect<never, LiveError> =>
      Effect.fail(new VenueFailure({ venue, operation, status: 200, code: (e.errors[0] ?? "error").slice(0, 64), text: e.errors.join("; ") }))

    const venueOrderOf = (state: KrakenOrderState, symbol: string): VenueOrder => ({
      clientOrderId: state.clientOrderId ?? "",
      venueOrderId: state.venueOrderId,
      symbol,
      status: state.status,
      price: state.price as Decimal | undefined,
      quantity: state.quantity as Decimal,
      filledQty: state.filledQty as Decimal,
      reason: state.reason,
      updatedMs: clock.unsafeCurrentTimeMillis()
    })

    const venueFillOf = (f: KrakenFill, symbol: string): VenueFill => ({
      tradeId: f.tradeId,
      venueOrderId: f.venueOrderId,
      clientOrderId: f.clientOrderId,
      symbol,
      price: f.price as Decimal,
      quantity: f.quantity as Decimal,
      fee: f.fee as Decimal,
      liquidity: f.maker ? "maker" : "taker",
      tsMs: f.timeMs
    })

    const queryOne = (symbol: string, clientOrderId: string): Effect.Effect<VenueOrder, LiveError> =>
      call("QueryOrders", [["cl_ord_id", clientOrderId], ["trades", "true"]], QueryOrdersResult, { mutating: false }).pipe(
        Effect.flatMap((r): Effect.Effect<VenueOrder, LiveError> => {
          const hit = Object.entries(r).find(([, o]) => o.cl_ord_id === clientOrderId)
          return hit === undefined
            ? Effect.fail(new VenueOrderUnknown({ venue, clientOrderId, code: "not_listed" }))
            : Effect.succeed(venueOrderOf(orderStateOf(hit[0], hit[1]), symbol))
        }),
        Effect.catchTag("KrakenRefusal", (e): Effect.Effect<never, LiveError> =>
          e.errors.some((x) => /unknown order|invalid order/i.test(x))
            ? Effect.fail(new VenueOrderUnknown({ venue, clientOrderId, code: e.errors[0]!.slice(0, 64) }))
            : otherwise("QueryOrders")(e))
      )

    /** After a cancel or an amend the venue's order as it is now (the engine reports from it). */
    const answerAfter = (symbol: string, clientOrderId: string): Effect.Effect<VenueAnswer, LiveError> =>
      Effect.map(queryOne(symbol, clientOrderId), (order) => ({ order, fills: [] }))

    /** A cancel or amend Kraken refused because the order is unknown to it: closed, or never seen. */
    const unknownOrClosed = (symbol: string, clientOrderId: string, code: string): Effect.Effect<never, LiveError> =>
      Effect.either(queryOne(symbol, clientOrderId)).pipe(
        Effect.flatMap((q): Effect.Effect<never, LiveError> =>
          Either.isRight(q) && (q.right.status === "filled" || q.right.status === "canceled" || q.right.status === "rejected")
            ? Effect.fail(new VenueOrderClosed({ venue, clientOrderId, code, text: `the order is ${q.right.status}` }))
            : Effect.fail(new VenueOrderUnknown({ venue, clientOrderId, code }))
        )
      )

    const place = (order: PlaceOrder): Effect.Effect<VenueAnswer, LiveError> => {
      if (order.timeInForce === "FOK") {
        return Effect.fail(new OrderRefused({
          venue,
          rejection: new VenueRejected({
            venue,
            clientOrderId: order.clientOrderId,
            symbol: order.symbol,
            code: "unsupported_time_in_force",
            text: "Kraken spot takes GTC and IOC orders, not FOK"
          })
        }))
      }
      return sendAdd(order).pipe(
        Effect.map((venueOrderId): VenueAnswer => ({
              order: {
                clientOrderId: order.clientOrderId,
                venueOrderId,
                symbol: order.symbol,
                status: "new",
                price: order.price,
                quantity: order.quantity,
                filledQty: "0" as Decimal,
                updatedMs: clock.unsafeCurrentTimeMillis()
              },
              fills: []
            })),
        Effect.catchTag("KrakenRefusal", (e): Effect.Effect<never, LiveError> => {
          const first = parseKrakenError(e.errors[0] ?? "")
          if (/duplicate/i.test(first.text)) {
            return Effect.fail(new VenueDuplicate({ venue, clientOrderId: order.clientOrderId, code: first.raw.slice(0, 64) }))
          }
          if (/post only/i.test(first.text) && order.price !== undefined) {
            return Effect.fail(new OrderRefused({
              venue,
              rejection: new PostOnlyWouldTake({
                clientOrderId: order.clientOrderId,
                symbol: order.symbol,
                venue,
                side: order.side,
                price: order.price,
                bestOpposite: "unknown"
              })
            }))
          }
          return Effect.fail(new OrderRefused({
            venue,
            rejection: krakenRejection(e.errors, { ...order, venue })
          }))
        })
      )
    }

    const cancel = (symbol: string, clientOrderId: string): Effect.Effect<VenueAnswer, LiveError> =>
      sendCancel(clientOrderId).pipe(
        Effect.flatMap((done): Effect.Effect<VenueAnswer, LiveError> =>
          done ? answerAfter(symbol, clientOrderId) : unknownOrClosed(symbol, clientOrderId, "count_0")
        ),
        Effect.catchTag("KrakenRefusal", (e): Effect.Effect<never, LiveError> =>
          e.errors.some((x) => /unknown order|invalid order/i.test(x))
            ? unknownOrClosed(symbol, clientOrderId, e.errors[0]!.slice(0, 64))
            : otherwise("CancelOrder")(e))
      )

    const amend = (
      symbol: string,
      clientOrderId: string,
      change: { readonly price?: Decimal | undefined; readonly quantity?: Decimal | undefined }
    ): Effect.Effect<VenueAnswer, LiveError> => {
      return sendAmend({ clientOrderId, quantity: change.quantity, price: change.price }).pipe(
        Effect.zipRight(answerAfter(symbol, clientOrderId)),
        Effect.catchTag("KrakenRefusal", (e): Effect.Effect<never, LiveError> => {
          const text = e.errors.join("; ")
          if (/unknown order|invalid order/i.test(text)) return unknownOrClosed(symbol, clientOrderId, e.errors[0]!.slice(0, 64))
          return Effect.fail(new OrderRefused({
            venue,
            rejection: /price/i.test(text)
              ? new InvalidPrice({ clientOrderId, symbol, price: change.price, rule: `kraken: ${text}`.slice(0, 200) })
              : /qty|quantity|volume/i.test(text)
              ? new InvalidQuantity({ clientOrderId, symbol, quantity: change.quantity ?? "", rule: `kraken: ${text}`.slice(0, 200) })
              : new VenueRejected({ venue, clientOrderId, symbol, code: e.errors[0]!.slice(0, 64), text: text.slice(0, 500) })
          }))
        })
      )
    }

    const tradesByIds = (ids: ReadonlyArray<string>) =>
      Effect.forEach(
        Array.from({ length: Math.ceil(ids.length / 20) }, (_, i) => ids.slice(i * 20, i * 20 + 20)),
        (chunk) => call("QueryTrades", [["txid", chunk.join(",")]], QueryTradesResult, { mutating: false, cost: 2 }),
        { concurrency: 1 }
      ).pipe(Effect.map((rs) => rs.flatMap((r) => Object.entries(r))))

    const orderFills = (symbol: string, venueOrderId: string): Effect.Effect<ReadonlyArray<VenueFill>, LiveError> =>
      call("QueryOrders", [["txid", venueOrderId], ["trades", "true"]], QueryOrdersResult, { mutating: false }).pipe(
        Effect.flatMap((r) => {
          const info = r[venueOrderId]
          const ids = info?.trades ?? []
          return tradesByIds(ids).pipe(
            Effect.map((trades) =>
              trades
                .map(([id, t]) => venueFillOf(fillOf(id, t, info?.cl_ord_id ?? undefined), symbol))
                .sort((a, b) => a.tsMs - b.tsMs)
            )
          )
        }),
        Effect.catchTag("KrakenRefusal", otherwise("QueryOrders"))
      )

    const openOrders = (symbols: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<VenueOrder>, LiveError> =>
      call("OpenOrders", [["trades", "true"]], OpenOrdersResult, { mutating: false }).pipe(
        Effect.map((r) =>
          Object.entries(r.open).flatMap(([txid, o]) => {
            const symbol = ourSymbol(o.descr.pair)
            if (symbol === undefined || (symbols.length > 0 && !symbols.includes(symbol))) return []
            return [venueOrderOf(orderStateOf(txid, o), symbol)]
          })
        ),
        Effect.catchTag("KrakenRefusal", otherwise("OpenOrders"))
      )

    /** TradesHistory pages (50 a page, newest first) from `sinceMs`, up to `MAX_PAGES` pages. */
    const fillsSince = (symbol: string, sinceMs: number): Effect.Effect<ReadonlyArray<VenueFill>, LiveError> =>
      Effect.gen(function*() {
        const pair = restPair(symbol)
        const out: Array<VenueFill> = []
        // Kraken's `start` is exclusive and in seconds: a second earlier, then filtered to `sinceMs` inclusive
        const start = String(Math.floor(sinceMs / 1000) - 1)
        for (let page = 0, ofs = 0; page < MAX_PAGES; page++) {
          const r = yield* call("TradesHistory", [["start", start], ["ofs", String(ofs)]], TradesHistoryResult, { mutating: false, cost: 2 }).pipe(
            Effect.catchTag("KrakenRefusal", otherwise("TradesHistory"))
          )
          const entries = Object.entries(r.trades)
          for (const [id, t] of entries) {
            const f = fillOf(id, t)
            if (f.timeMs >= sinceMs && (ourSymbol(t.pair) === symbol || t.pair === pair)) out.push(venueFillOf(f, symbol))
          }
          ofs += entries.length
          if (entries.length === 0 || ofs >= (r.count ?? 0)) break
        }
        return out.sort((a, b) => a.tsMs - b.tsMs)
      })

    const instruments: Effect.Effect<ReadonlyArray<Instrument>, LiveError> = publicGet(
      "AssetPairs",
      "/0/public/AssetPairs",
      "",
      AssetPairsResult
    ).pipe(
      Effect.map((pairs) =>
        Object.values(pairs).flatMap((p) => {
          const symbol = ourSymbol(p.altname) ?? (p.wsname === undefined ? undefined : ourSymbol(p.wsname))
          if (symbol === undefined) return []
          if (p.wsname !== undefined) ours.set(p.wsname, symbol)
          const tick = decimalText(p.tick_size)
          const minQty = decimalText(p.ordermin)
          const minNotional = decimalText(p.costmin)
          return [{
            symbol,
            tickSize: tick as Decimal | undefined,
            lotSize: p.lot_decimals === undefined ? undefined : new DecimalJs(10).pow(-p.lot_decimals).toFixed() as Decimal,
            minQty: minQty as Decimal | undefined,
            minNotional: minNotional as Decimal | undefined,
            trading: p.status === undefined || p.status === "online"
          }]
        })
      )
    )

    const syncClock = refused("start").pipe(Effect.zipRight(venueClock.sync(
      publicGet("Time", "/0/public/Time", "", TimeResult).pipe(Effect.map((t) => t.unixtime * 1000))
    )))

    // --- the private stream: the executions channel, authenticated with a token from GetWebSocketsToken

    /** What we know of each open order, so a partial update (Kraken sends changed fields) becomes a whole view. */
    const known = new Map<string, VenueOrder>()
    let reqId = 0
    let subscribeReq = -1

    const orderUpdateOf = (x: KrakenExecution, nowMs: number): StreamUpdate | undefined => {
      const prior = known.get(x.venueOrderId)
      const symbol = (x.symbol === undefined ? undefined : ourSymbol(x.symbol)) ?? prior?.symbol
      const clientOrderId = x.clientOrderId ?? prior?.clientOrderId
      const quantity = x.quantity ?? prior?.quantity
      if (symbol === undefined || clientOrderId === undefined || quantity === undefined) return undefined
      const order: VenueOrder = {
        clientOrderId,
        venueOrderId: x.venueOrderId,
        symbol,
        status: x.status ?? prior?.status ?? "new",
        price: (x.price ?? prior?.price) as Decimal | undefined,
        quantity: quantity as Decimal,
        filledQty: (x.filledQty ?? prior?.filledQty ?? "0") as Decimal,
        reason: x.reason ?? prior?.reason,
        updatedMs: nowMs
      }
      if (order.status === "filled" || order.status === "canceled" || order.status === "rejected") known.delete(x.venueOrderId)
      else known.set(x.venueOrderId, order)
      return { _tag: "Order", order, fill: x.fill === undefined ? undefined : venueFillOf({ ...x.fill, clientOrderId }, symbol) }
    }

    const stream = makePrivateStream({
      venue,
      url: options.wsUrl ?? KRAKEN_WS_AUTH_URL,
      webSocket,
      backoff: options.backoff,
      stallTimeoutMs: options.stallTimeoutMs,
      keepalive: { intervalMs: 20_000, message: JSON.stringify({ method: "ping" }) },
      onOpen: (send) =>
        call("GetWebSocketsToken", [], WebSocketsTokenResult, { mutating: false }).pipe(
          Effect.flatMap((t) => {
            subscribeReq = ++reqId
            wsSend = send
            wsToken = t.token
            return send(subscribeExecutions(t.token, subscribeReq))
          }),
          // without a token there is no private stream: the connection is replaced after the backoff
          Effect.catchAll((e) =>
            Effect.logWarning("kraken: no WebSocket token; the private stream reconnects").pipe(
              Effect.annotateLogs({ venue, reason: e._tag === "KrakenRefusal" ? e.errors.join("; ") : e.message }),
              Effect.zipRight(Effect.die(new Error("no WebSocket token")))
            )
          )
        ),
      onFrame: (text, emit) => {
        const now = clock.unsafeCurrentTimeMillis()
        const frame = parsePrivateFrame(text, now)
        switch (frame._tag) {
          case "Heartbeat":
            return true
          case "Malformed":
            return false
          case "Answer": {
            if (frame.method === "subscribe" && frame.reqId === String(subscribeReq)) {
              wsReady = frame.ok
              if (frame.ok) emit({ _tag: "Connected" })
              return true
            }
            const waiting = frame.reqId === undefined ? undefined : pending.get(frame.reqId)
            if (waiting !== undefined) Deferred.unsafeDone(waiting, Exit.succeed(frame))
            return true
          }
          case "Executions":
            for (const x of frame.executions) {
              const update = orderUpdateOf(x, now)
              if (update !== undefined) emit(update)
            }
            return true
        }
      }
    })

    return {
      venue,
      clientOrderIdProblem: krakenClientOrderIdProblem,
      amendable: { price: true, quantityUp: true, quantityDown: true },
      syncClock,
      instruments,
      place,
      cancel,
      amend,
      query: queryOne,
      orderFills,
      openOrders,
      fillsSince,
      privateStream: (onUpdate) =>
        stream.run((u) => {
          if (u._tag === "Disconnected") wsReady = false
          onUpdate(u)
        }),
      stats: adapterStats({ transport, limiter, stream, venueClock, extraRequests: () => wsRequests })
    } satisfies LiveAdapter
  })

type WsAnswer = Extract<KrakenPrivateFrame, { readonly _tag: "Answer" }>

/** TradesHistory pages read in one catch-up (50 fills a page). */
const MAX_PAGES = 20

// ---------------------------------------------------------------------------
// From the configuration (`live.venues.<name>`, schema/Config.ts)
// ---------------------------------------------------------------------------

/** The credentials a Kraken section must name: the API key and its base64 private key. */
export const KRAKEN_CREDENTIALS = ["apiKey", "secret"] as const

/** A Kraken section that cannot trade: `reason` says why (never a credential). */
export class KrakenConfigProblem extends Data.TaggedError("KrakenConfigProblem")<{
  readonly venue: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.venue}: ${this.reason}`
  }
}

/**
 * The problems of a Kraken section for live trading, each named by its key
 * (check-config lists them): Kraken has no spot testnet, so `testnet: true`
 * (the default) is refused rather than trading on the real venue by surprise.
 */
export const krakenSectionProblems = (section: LiveVenueSection): ReadonlyArray<string> => [
  ...KRAKEN_CREDENTIALS.filter((k) => section[k] === undefined).map((k) => `${k}: missing (a reference { env: NAME } or { file: path })`),
  ...(section.testnet && section.restUrl === undefined
    ? ["testnet: Kraken has no spot testnet; set testnet: false to trade on the real venue (or restUrl/wsUrl to a test venue)"]
    : [])
]

/**
 * The live engine's factory for Kraken venues (an entry of
 * `liveAdapterFactories`, src/execution/live/LiveExecution.ts): credentials
 * already read. A section it cannot honour (no testnet at Kraken) makes an
 * adapter whose start fails with the reason, so the gateway does not start it.
 */
export const krakenLiveAdapter = (
  spec: { readonly name: string; readonly symbols: ReadonlyArray<string>; readonly section: LiveVenueSection },
  credentials: { readonly apiKey?: Redacted.Redacted<string> | undefined; readonly secret?: Redacted.Redacted<string> | undefined }
): Effect.Effect<LiveAdapter, never, HttpClient.HttpClient | WebSocketConstructor> => {
  const problems = [
    ...(credentials.apiKey === undefined ? ["apiKey: missing"] : []),
    ...(credentials.secret === undefined ? ["secret: missing"] : []),
    ...krakenSectionProblems(spec.section).filter((p) => p.startsWith("testnet"))
  ]
  return makeKrakenAdapter({
    venue: spec.name,
    credentials: { apiKey: credentials.apiKey ?? Redacted.make(""), apiSecret: credentials.secret ?? Redacted.make("") },
    symbols: spec.symbols,
    ...(spec.section.restUrl === undefined ? {} : { restUrl: spec.section.restUrl }),
    ...(spec.section.wsUrl === undefined ? {} : { wsUrl: spec.section.wsUrl }),
    ...(spec.section.timeoutMs === undefined ? {} : { timeoutMs: spec.section.timeoutMs }),
    dryRun: spec.section.dryRun,
    startProblem: problems.length === 0 ? undefined : problems.join("; ")
  })
}

/** The adapter of a `live.venues.<venue>` Kraken section, its credentials read by reference. */
export const krakenFromConfig = (
  venue: string,
  section: LiveVenueSection,
  symbols: ReadonlyArray<string>,
  symbolMap?: Readonly<Record<string, string>>
): Effect.Effect<LiveAdapter, KrakenConfigProblem | SecretUnavailable, HttpClient.HttpClient | WebSocketConstructor> =>
  Effect.gen(function*() {
    const problems = krakenSectionProblems(section)
    if (problems.length > 0) return yield* new KrakenConfigProblem({ venue, reason: problems.join("; ") })
    const apiKey = yield* readSecret(venue, "apiKey", section.apiKey!)
    const apiSecret = yield* readSecret(venue, "secret", section.secret!)
    return yield* makeKrakenAdapter({
      venue,
      credentials: { apiKey, apiSecret },
      symbols,
      ...(symbolMap === undefined ? {} : { symbolMap }),
      ...(section.restUrl === undefined ? {} : { restUrl: section.restUrl }),
      ...(section.wsUrl === undefined ? {} : { wsUrl: section.wsUrl }),
      ...(section.timeoutMs === undefined ? {} : { timeoutMs: section.timeoutMs }),
      dryRun: section.dryRun
    })
  })
