/**
 * OKX spot live execution: the `LiveAdapter` (`live/LiveAdapter.ts`) for OKX's
 * documented v5 API (https://www.okx.com/docs-v5/en/).
 *
 * - Orders over REST: `POST /api/v5/trade/order` (`clOrdId` = our
 *   `clientOrderId`, `tdMode: "cash"`, `tgtCcy: "base_ccy"` so a market
 *   buy's `sz` is a base quantity as ours is; `ordType` limit, market,
 *   post_only, ioc or fok), `POST /api/v5/trade/cancel-order`,
 *   `POST /api/v5/trade/amend-order` (price and quantity, up or down),
 *   `GET /api/v5/trade/order`, `GET /api/v5/trade/orders-pending`,
 *   `GET /api/v5/trade/fills`. OKX answers an order request with ids only
 *   (`sCode`/`sMsg` per order); the order's state after a cancel or an amend
 *   is read back with `GET /api/v5/trade/order`, and fills come on the stream.
 * - Private stream: `wss://ws.okx.com:8443/ws/v5/private`, `login` (signed
 *   `timestamp + "GET" + "/users/self/verify"`, timestamp in seconds) then the
 *   `orders` channel for SPOT; "ping" every 20 s (OKX drops a silent
 *   connection after 30 s).
 * - Signing (REST): `OK-ACCESS-SIGN` = base64(HMAC-SHA256(secret,
 *   timestamp + method + requestPath + body)), with `OK-ACCESS-KEY`,
 *   `OK-ACCESS-TIMESTAMP` (ISO 8601 with milliseconds) and
 *   `OK-ACCESS-PASSPHRASE`. OKX refuses a timestamp more than 30 s away
 *   from its clock (code 50102): the receive window.
 * - Limits (per the documentation, per user ID): place, cancel, amend, query
 *   and pending orders 60 requests per 2 s; fills 60 per 2 s; public time
 *   and instruments 10 and 20 per 2 s. OKX sends no usage headers; a 429 or
 *   code 50011 imposes a cool-down.
 * - Demo trading: the same hosts with the header `x-simulated-trading: 1`
 *   (REST) and `wss://wspap.okx.com:8443/ws/v5/private`.
 */
import { createHmac } from "node:crypto"
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
  VenueOrderClosed,
  type VenueOrderStatus,
  VenueOrderUnknown
} from "./live/LiveAdapter.js"
import { adapterStats } from "./live/AdapterStats.js"
import { makePrivateStream, type StreamTuning } from "./live/PrivateStream.js"
import { type LimitBucket, makeRateLimiter } from "./live/RateLimiter.js"
import { makeRestTransport, type RestRequest } from "./live/Transport.js"

export const OKX_REST_URL = "https://www.okx.com"
export const OKX_PRIVATE_WS_URL = "wss://ws.okx.com:8443/ws/v5/private"
export const OKX_DEMO_PRIVATE_WS_URL = "wss://wspap.okx.com:8443/ws/v5/private"

/** OKX checks a request's timestamp within 30 s of its clock. */
export const OKX_RECV_WINDOW_MS = 30_000

export const OKX_LIMITS: ReadonlyArray<LimitBucket> = [
  { name: "ORDER", limit: 60, intervalMs: 2_000 },
  { name: "CANCEL", limit: 60, intervalMs: 2_000 },
  { name: "AMEND", limit: 60, intervalMs: 2_000 },
  { name: "QUERY", limit: 60, intervalMs: 2_000 },
  { name: "PENDING", limit: 60, intervalMs: 2_000 },
  { name: "FILLS", limit: 60, intervalMs: 2_000 },
  { name: "PUBLIC_TIME", limit: 10, intervalMs: 2_000 },
  { name: "INSTRUMENTS", limit: 20, intervalMs: 2_000 }
]

/** OKX's documented `clOrdId`: case-sensitive alphanumerics, 1 to 32 characters. */
const CLIENT_ORDER_ID = /^[A-Za-z0-9]{1,32}$/

export interface OkxLiveOptions {
  /** Default "okx". */
  readonly venue?: string
  readonly restUrl?: string
  readonly wsUrl?: string
  /** Demo trading: sends `x-simulated-trading: 1`. */
  readonly demo?: boolean
  /** Our symbols traded here (OKX spells them as we do: "BTC-USDT"). */
  readonly symbols: ReadonlyArray<string>
  readonly apiKey: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<string>
  readonly passphrase: Redacted.Redacted<string>
  readonly timeoutMs?: number
  readonly dryRun?: boolean
  readonly limits?: ReadonlyArray<LimitBucket>
  readonly stream?: StreamTuning
}

// ---------------------------------------------------------------------------
// Signing (documented: "REST Authentication", "WebSocket Login")
// ---------------------------------------------------------------------------

/** base64(HMAC-SHA256(secret, timestamp + method + requestPath + body)). */
export const signOkx = (secret: string, timestamp: string, method: string, requestPath: string, body: string): string =>
  createHmac("sha256", secret).update(`${timestamp}${method.toUpperCase()}${requestPath}${body}`).digest("base64")

/** The WebSocket login's sign: the same with GET /users/self/verify and a timestamp in seconds. */
export const signOkxLogin = (secret: string, timestampSeconds: string): string =>
  signOkx(secret, timestampSeconds, "GET", "/users/self/verify", "")

// ---------------------------------------------------------------------------
// Response shapes
// ---------------------------------------------------------------------------

const Envelope = Schema.Struct({
  code: Schema.String,
  msg: Schema.String,
  data: Schema.Array(Schema.Unknown)
})
const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Envelope))

const Ack = Schema.Struct({
  ordId: Schema.String,
  clOrdId: Schema.String,
  sCode: Schema.String,
  sMsg: Schema.String
})
const decodeAck = Schema.decodeUnknownEither(Ack)

const OrderData = Schema.Struct({
  instId: Schema.String,
  ordId: Schema.String,
  clOrdId: Schema.String,
  px: Schema.String,
  sz: Schema.String,
  state: Schema.String,
  accFillSz: Schema.String,
  uTime: Schema.String,
  fillPx: Schema.optional(Schema.String),
  fillSz: Schema.optional(Schema.String),
  fillTime: Schema.optional(Schema.String),
  tradeId: Schema.optional(Schema.String),
  fillFee: Schema.optional(Schema.String),
  fillFeeCcy: Schema.optional(Schema.String),
  execType: Schema.optional(Schema.String),
  amendResult: Schema.optional(Schema.String),
  cancelSource: Schema.optional(Schema.String)
})
type OrderData = typeof OrderData.Type
const decodeOrderData = Schema.decodeUnknownEither(OrderData)

const FillData = Schema.Struct({
  instId: Schema.String,
  tradeId: Schema.String,
  ordId: Schema.String,
  clOrdId: Schema.String,
  fillPx: Schema.String,
  fillSz: Schema.String,
  fee: Schema.String,
  feeCcy: Schema.String,
  execType: Schema.String,
  ts: Schema.String
})
const decodeFillData = Schema.decodeUnknownEither(FillData)

const TimeData = Schema.Struct({ ts: Schema.String })
const decodeTimeData = Schema.decodeUnknownEither(TimeData)

const InstrumentData = Schema.Struct({
  instId: Schema.String,
  tickSz: Schema.String,
  lotSz: Schema.String,
  minSz: Schema.String,
  state: Schema.String
})
const decodeInstrumentData = Schema.decodeUnknownEither(InstrumentData)

const WsFrame = Schema.Union(
  Schema.Struct({ event: Schema.String, code: Schema.optional(Schema.String), msg: Schema.optional(Schema.String) }),
  Schema.Struct({ arg: Schema.Struct({ channel: Schema.String }), data: Schema.Array(Schema.Unknown) })
)
const decodeWsFrame = Schema.decodeUnknownEither(Schema.parseJson(WsFrame))

/** OKX's order state as ours. */
export const statusOf = (state: string): VenueOrderStatus => {
  switch (state) {
    case "live":
      return "new"
    case "partially_filled":
      return "partially_filled"
    case "filled":
      return "filled"
    default:
      return "canceled"
  }
}

const norm = (s: string): Decimal => toDecimal(dec(s))
const positive = (s: string | undefined): Decimal | undefined =>
  s === undefined || s === "" || dec(s).isZero() ? undefined : norm(s)

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export const makeOkxAdapter = (
  options: OkxLiveOptions
): Effect.Effect<LiveAdapter, never, HttpClient | WebSocketConstructor> =>
  Effect.gen(function*() {
    const http = yield* HttpClient
    const webSocket = yield* WebSocketConstructor
    const clock = yield* Effect.clock
    const venue = options.venue ?? "okx"
    const venueClock = makeVenueClock(venue, OKX_RECV_WINDOW_MS, clock)
    const limiter = makeRateLimiter({ buckets: options.limits ?? OKX_LIMITS }, clock)
    const transport = yield* makeRestTransport({
      venue,
      baseUrl: options.restUrl ?? OKX_REST_URL,
      http,
      limiter,
      timeoutMs: options.timeoutMs ?? 10_000,
      dryRun: options.dryRun ?? false,
      secretHeaders: ["ok-access-key", "ok-access-passphrase"],
      isRateLimitBody: (status, body) => status === 429 || /"code"\s*:\s*"(50011|50061)"/.test(body.slice(0, 200))
    })

    const signed = (
      operation: string,
      method: "GET" | "POST",
      path: string,
      params: { readonly query?: string; readonly body?: unknown },
      costs: Readonly<Record<string, number>>,
      mutating: boolean
    ): RestRequest => {
      const query = params.query ?? ""
      const body = params.body === undefined ? "" : JSON.stringify(params.body)
      const requestPath = query === "" ? path : `${path}?${query}`
      const timestamp = new Date(venueClock.now()).toISOString()
      return {
        operation,
        method,
        path,
        query,
        ...(body === "" ? {} : { body, contentType: "application/json" }),
        headers: {
          "OK-ACCESS-KEY": Redacted.value(options.apiKey),
          "OK-ACCESS-SIGN": signOkx(Redacted.value(options.secret), timestamp, method, requestPath, body),
          "OK-ACCESS-TIMESTAMP": timestamp,
          "OK-ACCESS-PASSPHRASE": Redacted.value(options.passphrase),
          ...(options.demo === true ? { "x-simulated-trading": "1" } : {})
        },
        costs,
        mutating
      }
    }

    /** An OKX error code (top-level or per order) as one of ours. */
    const failure = (
      operation: string,
      status: number,
      code: string,
      msg: string,
      context: { readonly clientOrderId?: string; readonly symbol?: string; readonly order?: PlaceOrder }
    ): LiveError => {
      const cid = context.clientOrderId ?? ""
      const symbol = context.symbol ?? ""
      if (status >= 500 && (operation === "place" || operation === "cancel" || operation === "amend")) {
        return new OutcomeUnknown({ venue, operation, reason: `HTTP ${status}` })
      }
      if (["50101", "50102", "50103", "50104", "50105", "50111", "50113", "50114"].includes(code) || status === 401) {
        return new AuthenticationFailed({ venue, code, text: msg })
      }
      if (code === "51603") return new VenueOrderUnknown({ venue, clientOrderId: cid, code })
      if (code === "51400" || code === "51401" || code === "51503" || code === "51509" || code === "51510") {
        return new VenueOrderClosed({ venue, clientOrderId: cid, code, text: msg.slice(0, 500) })
      }
      if (operation === "place" || operation === "amend") {
        const refuse = (rejection: OrderRejection) => new OrderRefused({ venue, rejection })
        const o = context.order
        if (code === "51016") return new VenueDuplicate({ venue, clientOrderId: cid, code })
        if (code === "51008" || code === "51131") {
          const [base = "", quote = ""] = symbol.split("-")
          return refuse(new InsufficientBalance({ clientOrderId: cid, asset: o?.side === "sell" ? base : quote, required: "unknown", available: "unknown" }))
        }
        if (code === "51020") return refuse(new BelowMinimum({ clientOrderId: cid, symbol, measure: "quantity", value: o?.quantity ?? "unknown", minimum: "unknown" }))
        if (code === "51121") return refuse(new InvalidQuantity({ clientOrderId: cid, symbol, quantity: o?.quantity ?? "unknown", rule: msg.slice(0, 200) }))
        if (code === "51006" || code === "51137" || code === "51138") {
          return refuse(new InvalidPrice({ clientOrderId: cid, symbol, ...(o?.price === undefined ? {} : { price: o.price }), rule: msg.slice(0, 200) }))
        }
        if (code === "51001") return refuse(new UnknownSymbol({ symbol, venue }))
        if (code !== "0" && code !== "") return refuse(new VenueRejected({ venue, clientOrderId: cid, symbol, code, text: msg.slice(0, 500) }))
      }
      return new VenueFailure({ venue, operation, status, code, text: msg.slice(0, 500) })
    }

    /** Sends, reads `{ code, msg, data }`, and for order requests the first item's `sCode`. */
    const send = (
      request: RestRequest,
      context: { readonly clientOrderId?: string; readonly symbol?: string; readonly order?: PlaceOrder } = {}
    ): Effect.Effect<ReadonlyArray<unknown>, LiveError> =>
      Effect.flatMap(transport.send(request), (res) => {
        const env = decodeEnvelope(res.body)
        if (env._tag === "Left") {
          if (res.status >= 200 && res.status < 300 && request.mutating) {
            return Effect.fail(new OutcomeUnknown({ venue, operation: request.operation, reason: "the answer did not decode" }))
          }
          return Effect.fail(failure(request.operation, res.status, "", res.body.slice(0, 200), context))
        }
        const { code, msg, data } = env.right
        if (code === "0" && res.status >= 200 && res.status < 300) return Effect.succeed(data)
        // a refused order request says why per order (sCode/sMsg) under a top-level code "1"
        const ack = data.length > 0 ? decodeAck(data[0]) : undefined
        if (ack !== undefined && ack._tag === "Right" && ack.right.sCode !== "0") {
          return Effect.fail(failure(request.operation, res.status, ack.right.sCode, ack.right.sMsg, context))
        }
        return Effect.fail(failure(request.operation, res.status, code, msg, context))
      })

    const orderOf = (d: OrderData): VenueOrder => ({
      clientOrderId: d.clOrdId,
      venueOrderId: d.ordId,
      symbol: d.instId,
      status: statusOf(d.state),
      ...(positive(d.px) === undefined ? {} : { price: positive(d.px) }),
      quantity: norm(d.sz),
      filledQty: norm(d.accFillSz === "" ? "0" : d.accFillSz),
      ...(d.state === "canceled" || d.state === "mmp_canceled"
        ? { reason: d.cancelSource === undefined || d.cancelSource === "" ? "canceled" : `canceled (source ${d.cancelSource})` }
        : {}),
      updatedMs: Number(d.uTime) || venueClock.now(),
      ...(d.amendResult === "0" ? { amended: true } : {})
    })

    const decodeList = <A>(decode: (u: unknown) => { _tag: "Right"; right: A } | { _tag: "Left"; left: unknown }, operation: string) =>
      (data: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<A>, LiveError> => {
        const out: Array<A> = []
        for (const d of data) {
          const r = decode(d)
          if (r._tag === "Left") return Effect.fail(new VenueFailure({ venue, operation, status: 200, code: "decode", text: "an item did not decode" }))
          out.push(r.right)
        }
        return Effect.succeed(out)
      }

    const query = (symbol: string, clientOrderId: string) =>
      send(
        signed("query", "GET", "/api/v5/trade/order", { query: `instId=${encodeURIComponent(symbol)}&clOrdId=${encodeURIComponent(clientOrderId)}` }, { QUERY: 1 }, false),
        { clientOrderId, symbol }
      ).pipe(
        Effect.flatMap(decodeList(decodeOrderData, "query")),
        Effect.flatMap((list) =>
          list.length === 0
            ? Effect.fail(new VenueOrderUnknown({ venue, clientOrderId, code: "51603" }))
            : Effect.succeed(orderOf(list[0]!))
        )
      )

    const ackOf = (data: ReadonlyArray<unknown>, operation: string) => {
      const a = data.length > 0 ? decodeAck(data[0]) : undefined
      return a === undefined || a._tag === "Left"
        ? Effect.fail(new OutcomeUnknown({ venue, operation, reason: "no order acknowledgement in the answer" }))
        : Effect.succeed(a.right)
    }

    const place = (o: PlaceOrder) => {
      const ordType = o.type === "market"
        ? "market"
        : o.postOnly
        ? "post_only"
        : o.timeInForce === "IOC"
        ? "ioc"
        : o.timeInForce === "FOK"
        ? "fok"
        : "limit"
      const body = {
        instId: o.symbol,
        tdMode: "cash",
        clOrdId: o.clientOrderId,
        side: o.side,
        ordType,
        sz: o.quantity,
        ...(o.price === undefined ? {} : { px: o.price }),
        ...(o.type === "market" ? { tgtCcy: "base_ccy" } : {})
      }
      return send(signed("place", "POST", "/api/v5/trade/order", { body }, { ORDER: 1 }, true), { clientOrderId: o.clientOrderId, symbol: o.symbol, order: o }).pipe(
        Effect.flatMap((data) => ackOf(data, "place")),
        Effect.map((ack) => ({
          order: {
            clientOrderId: o.clientOrderId,
            venueOrderId: ack.ordId,
            symbol: o.symbol,
            status: "new" as const,
            price: o.price,
            quantity: o.quantity,
            filledQty: "0" as Decimal,
            updatedMs: venueClock.now()
          },
          fills: []
        }))
      )
    }

    /** After an acknowledged cancel or amend: the order as OKX holds it now. */
    const readBack = (symbol: string, clientOrderId: string) =>
      Effect.map(query(symbol, clientOrderId), (order) => ({ order, fills: [] }))

    const cancel = (symbol: string, clientOrderId: string) =>
      send(signed("cancel", "POST", "/api/v5/trade/cancel-order", { body: { instId: symbol, clOrdId: clientOrderId } }, { CANCEL: 1 }, true), { clientOrderId, symbol }).pipe(
        Effect.flatMap((data) => ackOf(data, "cancel")),
        Effect.zipRight(readBack(symbol, clientOrderId))
      )

    const amend: LiveAdapter["amend"] = (symbol, clientOrderId, change) =>
      send(
        signed("amend", "POST", "/api/v5/trade/amend-order", {
          body: {
            instId: symbol,
            clOrdId: clientOrderId,
            ...(change.quantity === undefined ? {} : { newSz: change.quantity }),
            ...(change.price === undefined ? {} : { newPx: change.price })
          }
        }, { AMEND: 1 }, true),
        { clientOrderId, symbol }
      ).pipe(
        Effect.flatMap((data) => ackOf(data, "amend")),
        Effect.zipRight(readBack(symbol, clientOrderId))
      )

    const fillsOf = (list: ReadonlyArray<typeof FillData.Type>): ReadonlyArray<VenueFill> =>
      list.map((f) => ({
        tradeId: f.tradeId,
        venueOrderId: f.ordId,
        clientOrderId: f.clOrdId,
        symbol: f.instId,
        price: norm(f.fillPx),
        quantity: norm(f.fillSz),
        // OKX reports a fee charged as a negative number
        fee: toDecimal(dec(f.fee).neg()),
        feeAsset: f.feeCcy,
        liquidity: f.execType === "M" ? "maker" as const : "taker" as const,
        tsMs: Number(f.ts)
      })).sort((a, b) => a.tsMs - b.tsMs)

    const orderFills = (symbol: string, venueOrderId: string) =>
      send(signed("fills", "GET", "/api/v5/trade/fills", { query: `instType=SPOT&instId=${encodeURIComponent(symbol)}&ordId=${encodeURIComponent(venueOrderId)}` }, { FILLS: 1 }, false)).pipe(
        Effect.flatMap(decodeList(decodeFillData, "fills")),
        Effect.map(fillsOf)
      )

    const fillsSince = (symbol: string, sinceMs: number) =>
      send(signed("fills", "GET", "/api/v5/trade/fills", { query: `instType=SPOT&instId=${encodeURIComponent(symbol)}&begin=${Math.max(0, Math.floor(sinceMs) - 1)}&limit=100` }, { FILLS: 1 }, false)).pipe(
        Effect.flatMap(decodeList(decodeFillData, "fills")),
        Effect.map(fillsOf)
      )

    const openOrders = (symbols: ReadonlyArray<string>) =>
      Effect.map(
        Effect.forEach(symbols.length === 0 ? [""] : symbols, (s) =>
          send(signed("open_orders", "GET", "/api/v5/trade/orders-pending", { query: s === "" ? "instType=SPOT" : `instType=SPOT&instId=${encodeURIComponent(s)}` }, { PENDING: 1 }, false)).pipe(
            Effect.flatMap(decodeList(decodeOrderData, "open_orders"))
          )),
        (lists) => lists.flat().map(orderOf)
      )

    const serverTime = send({ operation: "time", method: "GET", path: "/api/v5/public/time", headers: {}, costs: { PUBLIC_TIME: 1 }, mutating: false }).pipe(
      Effect.flatMap(decodeList(decodeTimeData, "time")),
      Effect.flatMap((list) => list.length === 0
        ? Effect.fail(new VenueFailure({ venue, operation: "time", status: 200, code: "decode", text: "no time in the answer" }))
        : Effect.succeed(Number(list[0]!.ts)))
    )

    const instruments = Effect.map(
      Effect.forEach(options.symbols, (s) =>
        send({ operation: "instruments", method: "GET", path: "/api/v5/public/instruments", query: `instType=SPOT&instId=${encodeURIComponent(s)}`, headers: {}, costs: { INSTRUMENTS: 1 }, mutating: false }).pipe(
          Effect.flatMap(decodeList(decodeInstrumentData, "instruments"))
        )),
      (lists) =>
        lists.flat().map((i): Instrument => ({
          symbol: i.instId,
          tickSize: positive(i.tickSz),
          lotSize: positive(i.lotSz),
          minQty: positive(i.minSz),
          trading: i.state === "live"
        }))
    )

    // -- the private stream ------------------------------------------------------

    const updateOf = (d: OrderData): StreamUpdate => {
      const order = orderOf(d)
      const fill: VenueFill | undefined = d.tradeId !== undefined && d.tradeId !== "" && d.fillSz !== undefined && !dec(d.fillSz || "0").isZero()
        ? {
          tradeId: d.tradeId,
          venueOrderId: d.ordId,
          clientOrderId: d.clOrdId,
          symbol: d.instId,
          price: norm(d.fillPx ?? "0"),
          quantity: norm(d.fillSz),
          ...(d.fillFee === undefined || d.fillFee === "" ? {} : { fee: toDecimal(dec(d.fillFee).neg()) }),
          ...(d.fillFeeCcy === undefined || d.fillFeeCcy === "" ? {} : { feeAsset: d.fillFeeCcy }),
          ...(d.execType === "M" ? { liquidity: "maker" as const } : d.execType === "T" ? { liquidity: "taker" as const } : {}),
          tsMs: Number(d.fillTime) || Number(d.uTime) || venueClock.now()
        }
        : undefined
      return { _tag: "Order", order, ...(fill === undefined ? {} : { fill }) }
    }

    const stream = makePrivateStream({
      venue,
      url: options.wsUrl ?? (options.demo === true ? OKX_DEMO_PRIVATE_WS_URL : OKX_PRIVATE_WS_URL),
      webSocket,
      openTimeoutMs: options.stream?.openTimeoutMs,
      stallTimeoutMs: options.stream?.stallTimeoutMs ?? 60_000,
      keepalive: { intervalMs: options.stream?.keepaliveMs ?? 20_000, message: "ping" },
      ...(options.stream?.backoff === undefined ? {} : { backoff: options.stream.backoff }),
      onOpen: (send) =>
        Effect.suspend(() => {
          const ts = String(Math.floor(venueClock.now() / 1000))
          return send(JSON.stringify({
            op: "login",
            args: [{
              apiKey: Redacted.value(options.apiKey),
              passphrase: Redacted.value(options.passphrase),
              timestamp: ts,
              sign: signOkxLogin(Redacted.value(options.secret), ts)
            }]
          }))
        }),
      onFrame: (text, emit, reply) => {
        if (text === "pong") return true
        const frame = decodeWsFrame(text)
        if (frame._tag === "Left") return false
        const f = frame.right
        if ("event" in f) {
          if (f.event === "login") {
            if (f.code === "0") reply(JSON.stringify({ op: "subscribe", args: [{ channel: "orders", instType: "SPOT" }] }))
            else emit({ _tag: "Disconnected", reason: `login refused (${f.code ?? "?"}: ${f.msg ?? ""})` })
          } else if (f.event === "subscribe") emit({ _tag: "Connected" })
          else if (f.event === "error") emit({ _tag: "Disconnected", reason: `error (${f.code ?? "?"}: ${f.msg ?? ""})` })
          return true
        }
        if (f.arg.channel !== "orders") return true
        let ok = true
        for (const d of f.data) {
          const r = decodeOrderData(d)
          if (r._tag === "Left") ok = false
          else emit(updateOf(r.right))
        }
        return ok
      }
    })

    return {
      venue,
      clientOrderIdProblem: (id) => CLIENT_ORDER_ID.test(id) ? undefined : "OKX takes 1 to 32 letters and digits",
      amendable: { price: true, quantityUp: true, quantityDown: true },
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
