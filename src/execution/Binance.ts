/**
 * Binance spot live execution: the `LiveAdapter` (`live/LiveAdapter.ts`) for
 * Binance's documented spot API (https://developers.binance.com/docs/binance-spot-api-docs).
 *
 * - Orders over REST: `POST /api/v3/order` (`newClientOrderId` = our
 *   `clientOrderId`, `newOrderRespType=FULL` so the fills of a taking order
 *   come with the answer), `DELETE /api/v3/order`, `GET /api/v3/order`,
 *   `GET /api/v3/openOrders`, `GET /api/v3/myTrades`,
 *   `PUT /api/v3/order/amend/keepPriority` (Binance amends a quantity
 *   downwards only, keeping priority; a price change is refused before it
 *   leaves, "amend_unsupported"). Post-only is the `LIMIT_MAKER` type.
 * - Private stream: the WebSocket API's `userDataStream.subscribe.signature`
 *   on `wss://ws-api.binance.com:443/ws-api/v3`, whose `executionReport`
 *   events carry each transition and each trade (`t`, the trade id).
 * - Signing (SIGNED endpoints): the query string with `timestamp` and
 *   `recvWindow` is signed with HMAC-SHA256 (hex) or Ed25519 (base64 of the
 *   signature over the same payload), appended as `signature`; the API key
 *   goes in the `X-MBX-APIKEY` header.
 * - Limits: REQUEST_WEIGHT 6,000 a minute, ORDERS 100 per 10 s and 200,000 a
 *   day; the weights below are the documented ones; `X-MBX-USED-WEIGHT-1M`
 *   and `X-MBX-ORDER-COUNT-10S` feed the limiter; 429 and 418 impose their
 *   Retry-After.
 * - Errors: `{ code, msg }`. -2010 "Duplicate order sent." is a duplicate
 *   client id, other -2010 refusals and -1013 filter failures map to typed
 *   rejections; -2011/-2013 are an unknown order; -1022, -2014, -2015 refused
 *   credentials; 5xx on an order request means the outcome is unknown (as the
 *   documentation says), so the order is queried, never resent.
 * - Testnet: `https://testnet.binance.vision` and
 *   `wss://ws-api.testnet.binance.vision/ws-api/v3`.
 */
import { createHmac, createPrivateKey, sign as signWith } from "node:crypto"
import { Effect, Redacted, Schema, type Scope } from "effect"
import { HttpClient } from "@effect/platform/HttpClient"
import { WebSocketConstructor } from "@effect/platform/Socket"
import type { Decimal } from "../../schema/Event.js"
import {
  BelowMinimum,
  InsufficientBalance,
  InvalidPrice,
  InvalidQuantity,
  type OrderRejection,
  UnknownSymbol,
  VenueRejected
} from "../../schema/Rejection.js"
import { dec, toDecimal } from "../internal/decimal.js"
import { makeVenueClock } from "./live/ClockSkew.js"
import {
  AuthenticationFailed,
  type Instrument,
  type LiveAdapter,
  type LiveError,
  OrderRefused,
  OutcomeUnknown,
  type PlaceOrder,
  type StreamUpdate,
  VenueDuplicate,
  VenueFailure,
  type VenueFill,
  type VenueOrder,
  type VenueOrderStatus,
  VenueOrderUnknown
} from "./live/LiveAdapter.js"
import { adapterStats } from "./live/AdapterStats.js"
import { makePrivateStream, type StreamTuning } from "./live/PrivateStream.js"
import { type LimitBucket, makeRateLimiter } from "./live/RateLimiter.js"
import { makeRestTransport, type RestRequest } from "./live/Transport.js"

export const BINANCE_REST_URL = "https://api.binance.com"
export const BINANCE_WS_API_URL = "wss://ws-api.binance.com:443/ws-api/v3"
export const BINANCE_TESTNET_REST_URL = "https://testnet.binance.vision"
export const BINANCE_TESTNET_WS_API_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"

/** The documented spot limits (GET /api/v3/exchangeInfo `rateLimits`). */
export const BINANCE_LIMITS: ReadonlyArray<LimitBucket> = [
  { name: "REQUEST_WEIGHT", limit: 6_000, intervalMs: 60_000 },
  { name: "ORDERS_10S", limit: 100, intervalMs: 10_000 },
  { name: "ORDERS_1D", limit: 200_000, intervalMs: 86_400_000 }
]

/** Binance's documented `newClientOrderId` format. */
const CLIENT_ORDER_ID = /^[.A-Z:/a-z0-9_-]{1,36}$/

export type BinanceKey =
  | { readonly _tag: "hmac"; readonly secret: Redacted.Redacted<string> }
  /** A PKCS#8 PEM private key. */
  | { readonly _tag: "ed25519"; readonly privateKey: Redacted.Redacted<string> }

export interface BinanceLiveOptions {
  /** The venue's name on orders (`SubmitOrder.venue`). Default "binance". */
  readonly venue?: string
  readonly restUrl?: string
  readonly wsApiUrl?: string
  /** Our symbols traded here ("BTC-USDT" is Binance's "BTCUSDT"). */
  readonly symbols: ReadonlyArray<string>
  readonly apiKey: Redacted.Redacted<string>
  readonly key: BinanceKey
  /** Default 5,000 ms (Binance's default; at most 60,000). */
  readonly recvWindowMs?: number
  /** Default 10,000 ms. */
  readonly timeoutMs?: number
  readonly dryRun?: boolean
  readonly limits?: ReadonlyArray<LimitBucket>
  readonly stream?: StreamTuning
}

// ---------------------------------------------------------------------------
// Signing (documented: "SIGNED (TRADE and USER_DATA) endpoint security")
// ---------------------------------------------------------------------------

/** HMAC-SHA256 of the payload with the secret key, in hex. */
export const signHmac = (secret: string, payload: string): string =>
  createHmac("sha256", secret).update(payload).digest("hex")

/** Ed25519 signature of the payload (ASCII) with a PKCS#8 PEM private key, in base64. */
export const signEd25519 = (privateKeyPem: string, payload: string): string =>
  signWith(null, Buffer.from(payload, "ascii"), createPrivateKey(privateKeyPem)).toString("base64")

/** The `signature` value for a payload (URL-encoded: an Ed25519 signature holds "+", "/" and "="). */
export const signatureFor = (key: BinanceKey, payload: string): string =>
  key._tag === "hmac"
    ? signHmac(Redacted.value(key.secret), payload)
    : encodeURIComponent(signEd25519(Redacted.value(key.privateKey), payload))

const encode = (params: ReadonlyArray<readonly [string, string]>): string =>
  params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")

// ---------------------------------------------------------------------------
// Response shapes
// ---------------------------------------------------------------------------

const Num = Schema.Union(Schema.String, Schema.Number).pipe(Schema.transform(Schema.String, {
  decode: (v) => String(v),
  encode: (s) => s
}))

const ErrorBody = Schema.Struct({ code: Schema.Number, msg: Schema.String })
const decodeError = Schema.decodeUnknownOption(Schema.parseJson(ErrorBody))

const OrderBody = Schema.Struct({
  symbol: Schema.String,
  orderId: Schema.Number,
  clientOrderId: Schema.String,
  price: Schema.optional(Num),
  origQty: Num,
  executedQty: Num,
  status: Schema.String,
  side: Schema.optional(Schema.String),
  transactTime: Schema.optional(Schema.Number),
  updateTime: Schema.optional(Schema.Number),
  fills: Schema.optional(Schema.Array(Schema.Struct({
    price: Num,
    qty: Num,
    commission: Num,
    commissionAsset: Schema.String,
    tradeId: Schema.Number
  })))
})
type OrderBody = typeof OrderBody.Type
const decodeOrder = Schema.decodeUnknownEither(Schema.parseJson(OrderBody))
const decodeOrders = Schema.decodeUnknownEither(Schema.parseJson(Schema.Array(OrderBody)))

/** DELETE /api/v3/order: `origClientOrderId` is ours, `clientOrderId` the cancel's own. */
const CancelBody = Schema.Struct({
  symbol: Schema.String,
  orderId: Schema.Number,
  origClientOrderId: Schema.String,
  price: Schema.optional(Num),
  origQty: Num,
  executedQty: Num,
  status: Schema.String,
  transactTime: Schema.optional(Schema.Number)
})
const decodeCancel = Schema.decodeUnknownEither(Schema.parseJson(CancelBody))

const AmendBody = Schema.Struct({
  transactTime: Schema.optional(Schema.Number),
  amendedOrder: Schema.Struct({
    symbol: Schema.String,
    orderId: Schema.Number,
    clientOrderId: Schema.String,
    origClientOrderId: Schema.optional(Schema.String),
    price: Schema.optional(Num),
    qty: Num,
    executedQty: Num,
    status: Schema.String
  })
})
const decodeAmend = Schema.decodeUnknownEither(Schema.parseJson(AmendBody))

const TradeBody = Schema.Struct({
  symbol: Schema.String,
  id: Schema.Number,
  orderId: Schema.Number,
  price: Num,
  qty: Num,
  commission: Num,
  commissionAsset: Schema.String,
  time: Schema.Number,
  isMaker: Schema.Boolean
})
const decodeTrades = Schema.decodeUnknownEither(Schema.parseJson(Schema.Array(TradeBody)))

const TimeBody = Schema.Struct({ serverTime: Schema.Number })
const decodeTime = Schema.decodeUnknownEither(Schema.parseJson(TimeBody))

const Filter = Schema.Struct({
  filterType: Schema.String,
  tickSize: Schema.optional(Schema.String),
  stepSize: Schema.optional(Schema.String),
  minQty: Schema.optional(Schema.String),
  minNotional: Schema.optional(Schema.String)
})
const ExchangeInfo = Schema.Struct({
  symbols: Schema.Array(Schema.Struct({
    symbol: Schema.String,
    status: Schema.String,
    baseAsset: Schema.String,
    quoteAsset: Schema.String,
    filters: Schema.Array(Filter)
  }))
})
const decodeExchangeInfo = Schema.decodeUnknownEither(Schema.parseJson(ExchangeInfo))

/** The `executionReport` event of the user data stream (the fields we read). */
const ExecutionReport = Schema.Struct({
  e: Schema.Literal("executionReport"),
  E: Schema.Number,
  s: Schema.String,
  c: Schema.String,
  S: Schema.String,
  o: Schema.String,
  q: Num,
  p: Num,
  x: Schema.String,
  X: Schema.String,
  r: Schema.String,
  i: Schema.Number,
  l: Num,
  z: Num,
  L: Num,
  n: Schema.optional(Schema.NullOr(Num)),
  N: Schema.optional(Schema.NullOr(Schema.String)),
  T: Schema.Number,
  t: Schema.Number,
  m: Schema.optional(Schema.Boolean),
  C: Schema.optional(Schema.String)
})
type ExecutionReport = typeof ExecutionReport.Type
const StreamFrame = Schema.Union(
  Schema.Struct({ subscriptionId: Schema.Number, event: Schema.Unknown }),
  Schema.Struct({ id: Schema.Union(Schema.String, Schema.Number, Schema.Null), status: Schema.Number, result: Schema.optional(Schema.Unknown), error: Schema.optional(ErrorBody) })
)
const decodeFrame = Schema.decodeUnknownEither(Schema.parseJson(StreamFrame))
const decodeExecutionReport = Schema.decodeUnknownEither(ExecutionReport)

/** Binance's order status as ours; EXPIRED (an IOC remainder, an expired-in-match STP) is a cancellation. */
export const statusOf = (s: string): VenueOrderStatus => {
  switch (s) {
    case "NEW":
    case "PENDING_NEW":
      return "new"
    case "PARTIALLY_FILLED":
      return "partially_filled"
    case "FILLED":
      return "filled"
    case "REJECTED":
      return "rejected"
    case "PENDING_CANCEL":
      return "new"
    default:
      return "canceled"
  }
}

const norm = (s: string): Decimal => toDecimal(dec(s))

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export const makeBinanceAdapter = (
  options: BinanceLiveOptions
): Effect.Effect<LiveAdapter, never, HttpClient | WebSocketConstructor> =>
  Effect.gen(function*() {
    const http = yield* HttpClient
    const webSocket = yield* WebSocketConstructor
    const clock = yield* Effect.clock
    const venue = options.venue ?? "binance"
    const recvWindowMs = options.recvWindowMs ?? 5_000
    const venueClock = makeVenueClock(venue, recvWindowMs, clock)
    const limiter = makeRateLimiter({ buckets: options.limits ?? BINANCE_LIMITS }, clock)
    const transport = yield* makeRestTransport({
      venue,
      baseUrl: options.restUrl ?? BINANCE_REST_URL,
      http,
      limiter,
      timeoutMs: options.timeoutMs ?? 10_000,
      dryRun: options.dryRun ?? false,
      secretHeaders: ["x-mbx-apikey"],
      observe: (headers, l) => {
        const w = headers["x-mbx-used-weight-1m"]
        if (w !== undefined) l.observeUsage("REQUEST_WEIGHT", Number(w))
        const o = headers["x-mbx-order-count-10s"]
        if (o !== undefined) l.observeUsage("ORDERS_10S", Number(o))
      }
    })
    const toVenue = new Map(options.symbols.map((s) => [s, s.replace("-", "").toUpperCase()]))
    const fromVenue = new Map([...toVenue].map(([ours, theirs]) => [theirs, ours]))
    const venueSymbol = (s: string) => toVenue.get(s) ?? s.replace("-", "").toUpperCase()
    const ourSymbol = (s: string) => fromVenue.get(s) ?? s
    const headers = () => ({ "X-MBX-APIKEY": Redacted.value(options.apiKey) })

    /** A signed request: `timestamp` and `recvWindow` added, the payload signed. */
    const signed = (
      operation: string,
      method: RestRequest["method"],
      path: string,
      params: ReadonlyArray<readonly [string, string]>,
      costs: Readonly<Record<string, number>>,
      mutating: boolean
    ): RestRequest => {
      const payload = encode([...params, ["recvWindow", String(recvWindowMs)], ["timestamp", String(venueClock.now())]])
      return {
        operation,
        method,
        path,
        query: `${payload}&signature=${signatureFor(options.key, payload)}`,
        headers: headers(),
        costs,
        mutating
      }
    }

    /** The venue's error for a non-2xx answer, as one of ours. */
    const failure = (operation: string, status: number, body: string, context: { clientOrderId?: string; symbol?: string; side?: string; order?: PlaceOrder }): LiveError => {
      const err = decodeError(body)
      const code = err._tag === "Some" ? err.value.code : 0
      const msg = err._tag === "Some" ? err.value.msg : body.slice(0, 200)
      const cid = context.clientOrderId ?? ""
      const symbol = context.symbol ?? ""
      if (status >= 500 && (operation === "place" || operation === "cancel" || operation === "amend")) {
        return new OutcomeUnknown({ venue, operation, reason: `HTTP ${status}: the execution status is unknown` })
      }
      if (code === -1022 || code === -2014 || code === -2015 || status === 401) {
        return new AuthenticationFailed({ venue, code: String(code), text: msg })
      }
      if (code === -2011 || code === -2013) return new VenueOrderUnknown({ venue, clientOrderId: cid, code: String(code) })
      if (operation === "place") {
        const refuse = (rejection: OrderRejection) => new OrderRefused({ venue, rejection })
        const o = context.order
        if (code === -2010 && /duplicate/i.test(msg)) return new VenueDuplicate({ venue, clientOrderId: cid, code: String(code) })
        if (code === -2010 && /insufficient balance/i.test(msg) && o !== undefined) {
          const [base = "", quote = ""] = o.symbol.split("-")
          return refuse(new InsufficientBalance({ clientOrderId: cid, asset: o.side === "buy" ? quote : base, required: "unknown", available: "unknown" }))
        }
        if (code === -1013 && o !== undefined) {
          if (/PRICE_FILTER|PERCENT_PRICE/.test(msg)) return refuse(new InvalidPrice({ clientOrderId: cid, symbol, ...(o.price === undefined ? {} : { price: o.price }), rule: msg.slice(0, 200) }))
          if (/LOT_SIZE|MARKET_LOT_SIZE/.test(msg)) return refuse(new InvalidQuantity({ clientOrderId: cid, symbol, quantity: o.quantity, rule: msg.slice(0, 200) }))
          if (/NOTIONAL/.test(msg)) return refuse(new BelowMinimum({ clientOrderId: cid, symbol, measure: "notional", value: o.price === undefined ? "unknown" : toDecimal(dec(o.price).mul(dec(o.quantity))), minimum: "unknown" }))
        }
        if (code === -1121) return refuse(new UnknownSymbol({ symbol, venue }))
        if (code !== 0) return refuse(new VenueRejected({ venue, clientOrderId: cid, symbol, code: String(code), text: msg.slice(0, 500) }))
      }
      return new VenueFailure({ venue, operation, status, code: String(code), text: msg.slice(0, 500) })
    }

    const send = <A>(
      request: RestRequest,
      decode: (body: string) => { _tag: "Right"; right: A } | { _tag: "Left"; left: unknown },
      context: { clientOrderId?: string; symbol?: string; order?: PlaceOrder } = {}
    ): Effect.Effect<A, LiveError> =>
      Effect.flatMap(transport.send(request), (res) => {
        if (res.status < 200 || res.status >= 300) return Effect.fail(failure(request.operation, res.status, res.body, context))
        const decoded = decode(res.body)
        return decoded._tag === "Right"
          ? Effect.succeed(decoded.right)
          : Effect.fail(
            request.mutating
              ? new OutcomeUnknown({ venue, operation: request.operation, reason: "the answer did not decode" })
              : new VenueFailure({ venue, operation: request.operation, status: res.status, code: "decode", text: "the answer did not decode" })
          )
      })

    const orderOf = (b: OrderBody): VenueOrder => ({
      clientOrderId: b.clientOrderId,
      venueOrderId: String(b.orderId),
      symbol: ourSymbol(b.symbol),
      status: statusOf(b.status),
      ...(b.price === undefined || dec(b.price).isZero() ? {} : { price: norm(b.price) }),
      quantity: norm(b.origQty),
      filledQty: norm(b.executedQty),
      ...(b.status === "EXPIRED" || b.status === "EXPIRED_IN_MATCH" ? { reason: `expired (${b.status})` } : {}),
      updatedMs: b.updateTime ?? b.transactTime ?? venueClock.now()
    })

    const place = (o: PlaceOrder) => {
      const type = o.type === "market" ? "MARKET" : o.postOnly ? "LIMIT_MAKER" : "LIMIT"
      const params: Array<readonly [string, string]> = [
        ["symbol", venueSymbol(o.symbol)],
        ["side", o.side === "buy" ? "BUY" : "SELL"],
        ["type", type]
      ]
      if (type === "LIMIT") params.push(["timeInForce", o.timeInForce])
      params.push(["quantity", o.quantity])
      if (o.price !== undefined) params.push(["price", o.price])
      params.push(["newClientOrderId", o.clientOrderId], ["newOrderRespType", "FULL"])
      return send(
        signed("place", "POST", "/api/v3/order", params, { REQUEST_WEIGHT: 1, ORDERS_10S: 1, ORDERS_1D: 1 }, true),
        decodeOrder,
        { clientOrderId: o.clientOrderId, symbol: o.symbol, order: o }
      ).pipe(Effect.map((b) => {
        const order = orderOf(b)
        const fills: Array<VenueFill> = (b.fills ?? []).map((f) => ({
          tradeId: String(f.tradeId),
          venueOrderId: String(b.orderId),
          clientOrderId: b.clientOrderId,
          symbol: order.symbol,
          price: norm(f.price),
          quantity: norm(f.qty),
          fee: norm(f.commission),
          feeAsset: f.commissionAsset,
          liquidity: "taker",
          tsMs: b.transactTime ?? venueClock.now()
        }))
        return { order, fills }
      }))
    }

    const cancel = (symbol: string, clientOrderId: string) =>
      send(
        signed("cancel", "DELETE", "/api/v3/order", [["symbol", venueSymbol(symbol)], ["origClientOrderId", clientOrderId]], { REQUEST_WEIGHT: 1 }, true),
        decodeCancel,
        { clientOrderId, symbol }
      ).pipe(Effect.map((b) => ({
        order: {
          clientOrderId: b.origClientOrderId,
          venueOrderId: String(b.orderId),
          symbol: ourSymbol(b.symbol),
          status: statusOf(b.status),
          ...(b.price === undefined || dec(b.price).isZero() ? {} : { price: norm(b.price) }),
          quantity: norm(b.origQty),
          filledQty: norm(b.executedQty),
          reason: "canceled on request",
          updatedMs: b.transactTime ?? venueClock.now()
        },
        fills: []
      })))

    const amend: LiveAdapter["amend"] = (symbol, clientOrderId, change) =>
      change.quantity === undefined
        ? Effect.fail(new OrderRefused({ venue, rejection: new VenueRejected({ venue, clientOrderId, symbol, code: "amend_unsupported", text: "Binance amends the quantity only" }) }))
        : send(
          signed("amend", "PUT", "/api/v3/order/amend/keepPriority", [["symbol", venueSymbol(symbol)], ["origClientOrderId", clientOrderId], ["newQty", change.quantity]], { REQUEST_WEIGHT: 4, ORDERS_10S: 1, ORDERS_1D: 1 }, true),
          decodeAmend,
          { clientOrderId, symbol }
        ).pipe(Effect.map((b) => {
          const a = b.amendedOrder
          return {
            order: {
              clientOrderId: a.origClientOrderId ?? a.clientOrderId,
              venueOrderId: String(a.orderId),
              symbol: ourSymbol(a.symbol),
              status: statusOf(a.status),
              ...(a.price === undefined || dec(a.price).isZero() ? {} : { price: norm(a.price) }),
              quantity: norm(a.qty),
              filledQty: norm(a.executedQty),
              updatedMs: b.transactTime ?? venueClock.now()
            },
            fills: []
          }
        }))

    const query = (symbol: string, clientOrderId: string) =>
      send(
        signed("query", "GET", "/api/v3/order", [["symbol", venueSymbol(symbol)], ["origClientOrderId", clientOrderId]], { REQUEST_WEIGHT: 4 }, false),
        decodeOrder,
        { clientOrderId, symbol }
      ).pipe(Effect.map(orderOf))

    const tradesOf = (list: ReadonlyArray<typeof TradeBody.Type>): ReadonlyArray<VenueFill> =>
      list.map((t) => ({
        tradeId: String(t.id),
        venueOrderId: String(t.orderId),
        symbol: ourSymbol(t.symbol),
        price: norm(t.price),
        quantity: norm(t.qty),
        fee: norm(t.commission),
        feeAsset: t.commissionAsset,
        liquidity: t.isMaker ? "maker" as const : "taker" as const,
        tsMs: t.time
      }))

    const orderFills = (symbol: string, venueOrderId: string) =>
      send(
        signed("fills", "GET", "/api/v3/myTrades", [["symbol", venueSymbol(symbol)], ["orderId", venueOrderId]], { REQUEST_WEIGHT: 5 }, false),
        decodeTrades
      ).pipe(Effect.map(tradesOf))

    const fillsSince = (symbol: string, sinceMs: number) =>
      send(
        signed("fills", "GET", "/api/v3/myTrades", [["symbol", venueSymbol(symbol)], ["startTime", String(Math.max(0, Math.floor(sinceMs)))], ["limit", "1000"]], { REQUEST_WEIGHT: 20 }, false),
        decodeTrades
      ).pipe(Effect.map(tradesOf))

    const openOrders = (symbols: ReadonlyArray<string>) =>
      symbols.length === 0
        ? send(signed("open_orders", "GET", "/api/v3/openOrders", [], { REQUEST_WEIGHT: 80 }, false), decodeOrders).pipe(Effect.map((l) => l.map(orderOf)))
        : Effect.map(
          Effect.forEach(symbols, (s) =>
            send(signed("open_orders", "GET", "/api/v3/openOrders", [["symbol", venueSymbol(s)]], { REQUEST_WEIGHT: 6 }, false), decodeOrders)),
          (lists) => lists.flat().map(orderOf)
        )

    const serverTime = send(
      { operation: "time", method: "GET", path: "/api/v3/time", headers: {}, costs: { REQUEST_WEIGHT: 1 }, mutating: false },
      decodeTime
    ).pipe(Effect.map((b) => b.serverTime))

    const instruments = send(
      {
        operation: "instruments",
        method: "GET",
        path: "/api/v3/exchangeInfo",
        query: `symbols=${encodeURIComponent(JSON.stringify([...toVenue.values()]))}`,
        headers: {},
        costs: { REQUEST_WEIGHT: 20 },
        mutating: false
      },
      decodeExchangeInfo
    ).pipe(Effect.map((info) =>
      info.symbols.map((s): Instrument => {
        const f = (t: string) => s.filters.find((x) => x.filterType === t)
        const positive = (v: string | undefined) => v === undefined || dec(v).isZero() ? undefined : norm(v)
        return {
          symbol: fromVenue.get(s.symbol) ?? `${s.baseAsset}-${s.quoteAsset}`,
          tickSize: positive(f("PRICE_FILTER")?.tickSize),
          lotSize: positive(f("LOT_SIZE")?.stepSize),
          minQty: positive(f("LOT_SIZE")?.minQty),
          minNotional: positive((f("NOTIONAL") ?? f("MIN_NOTIONAL"))?.minNotional),
          trading: s.status === "TRADING"
        }
      })
    ))

    // -- the private stream ------------------------------------------------------

    const updateOf = (r: ExecutionReport): StreamUpdate => {
      // a cancel's report carries the cancel request's id in `c` and ours in `C`
      const clientOrderId = r.x === "CANCELED" && r.C !== undefined && r.C !== "" ? r.C : r.c
      const symbol = ourSymbol(r.s)
      const order: VenueOrder = {
        clientOrderId,
        venueOrderId: String(r.i),
        symbol,
        status: statusOf(r.X),
        ...(dec(r.p).isZero() ? {} : { price: norm(r.p) }),
        quantity: norm(r.q),
        filledQty: norm(r.z),
        ...(r.r !== "NONE" ? { reason: r.r } : r.X === "EXPIRED" ? { reason: "expired" } : {}),
        updatedMs: r.T,
        amended: r.x === "REPLACED"
      }
      const fill: VenueFill | undefined = r.x === "TRADE" && r.t >= 0
        ? {
          tradeId: String(r.t),
          venueOrderId: String(r.i),
          clientOrderId,
          symbol,
          price: norm(r.L),
          quantity: norm(r.l),
          ...(r.n === undefined || r.n === null ? {} : { fee: norm(r.n) }),
          ...(r.N === undefined || r.N === null ? {} : { feeAsset: r.N }),
          ...(r.m === undefined ? {} : { liquidity: r.m ? "maker" as const : "taker" as const }),
          tsMs: r.T
        }
        : undefined
      return { _tag: "Order", order, ...(fill === undefined ? {} : { fill }) }
    }

    let subscribeSeq = 0
    const stream = makePrivateStream({
      venue,
      url: options.wsApiUrl ?? BINANCE_WS_API_URL,
      webSocket,
      openTimeoutMs: options.stream?.openTimeoutMs,
      stallTimeoutMs: options.stream?.stallTimeoutMs ?? 90_000,
      keepalive: { intervalMs: options.stream?.keepaliveMs ?? 30_000, message: JSON.stringify({ id: "keepalive", method: "ping" }) },
      ...(options.stream?.backoff === undefined ? {} : { backoff: options.stream.backoff }),
      onOpen: (send) =>
        Effect.suspend(() => {
          const timestamp = String(venueClock.now())
          const payload = `apiKey=${Redacted.value(options.apiKey)}&timestamp=${timestamp}`
          const signature = options.key._tag === "hmac"
            ? signHmac(Redacted.value(options.key.secret), payload)
            : signEd25519(Redacted.value(options.key.privateKey), payload)
          return send(JSON.stringify({
            id: `subscribe-${++subscribeSeq}`,
            method: "userDataStream.subscribe.signature",
            params: { apiKey: Redacted.value(options.apiKey), timestamp: Number(timestamp), signature }
          }))
        }),
      onFrame: (text, emit) => {
        const frame = decodeFrame(text)
        if (frame._tag === "Left") return false
        const f = frame.right
        if ("subscriptionId" in f) {
          const ev = f.event as { readonly e?: unknown }
          if (ev?.e !== "executionReport") return true // balance and account updates: not orders
          const r = decodeExecutionReport(f.event)
          if (r._tag === "Left") return false
          emit(updateOf(r.right))
          return true
        }
        if (typeof f.id === "string" && f.id.startsWith("subscribe-")) {
          if (f.status === 200) emit({ _tag: "Connected" })
          else emit({ _tag: "Disconnected", reason: `subscription refused (${f.status}, ${f.error?.code ?? 0}: ${f.error?.msg ?? ""})` })
        }
        return true
      }
    })

    return {
      venue,
      clientOrderIdProblem: (id) =>
        CLIENT_ORDER_ID.test(id) ? undefined : "Binance takes 1 to 36 characters of A-Z a-z 0-9 . : / _ -",
      amendable: { price: false, quantityUp: false, quantityDown: true },
      syncClock: venueClock.sync(serverTime),
      instruments,
      place,
      cancel,
      amend,
      query,
      orderFills,
      openOrders,
      fillsSince,
      privateStream: (onUpdate): Effect.Effect<never, never, Scope.Scope> => stream.run(onUpdate),
      stats: adapterStats({ transport, limiter, stream, venueClock })
    } satisfies LiveAdapter
  })
