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
import { Data, Duration, Effect, Either, Redacted, Schema } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import DecimalJs from "decimal.js"
import type { OrderStatus, OrderType, Side } from "../../schema/Event.js"

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

/** The error strings after which an order's outcome is not known (the venue may or may not have taken it). */
export const isKrakenOutcomeUnknown = (e: KrakenError): boolean =>
  e.category === "Service" || /timeout|deadline/i.test(e.text)

/** Kraken answered the call with errors (`error` non-empty, no usable `result`). */
export class KrakenApiError extends Data.TaggedError("KrakenApiError")<{
  readonly operation: string
  readonly errors: ReadonlyArray<string>
}> {
  override get message(): string {
    return `kraken ${this.operation}: ${this.errors.join("; ")}`
  }
}

/** Kraken said "too many" (an error string, HTTP 429/418): nothing goes out for `retryAfterMs`. */
export class KrakenRateLimited extends Data.TaggedError("KrakenRateLimited")<{
  readonly operation: string
  readonly retryAfterMs: number
}> {
  override get message(): string {
    return `kraken ${this.operation}: rate limited, waiting ${this.retryAfterMs} ms`
  }
}

/** No answer in time: the call may or may not have taken effect (an order is queried, never resent blindly). */
export class KrakenTimeout extends Data.TaggedError("KrakenTimeout")<{
  readonly operation: string
  readonly afterMs: number
}> {
  override get message(): string {
    return `kraken ${this.operation}: no answer in ${this.afterMs} ms (outcome unknown)`
  }
}

/** The call failed on the way (transport, HTTP status, an answer that does not decode). */
export class KrakenTransportError extends Data.TaggedError("KrakenTransportError")<{
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `kraken ${this.operation}: ${this.reason}`
  }
}

export type KrakenCallError = KrakenApiError | KrakenRateLimited | KrakenTimeout | KrakenTransportError

// ---------------------------------------------------------------------------
// Decimals
// ---------------------------------------------------------------------------

/** A decimal as Kraken may write it ("37500.0", 1.25, "0.00000000") to our canonical text. */
export const decimalText = (u: unknown): string | undefined => {
  if (typeof u !== "string" && typeof u !== "number") return undefined
  try {
    const d = new DecimalJs(u)
    return d.isFinite() && !d.isNegative() ? d.toFixed() : undefined
  } catch {
    return undefined
  }
}

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

export interface KrakenCredentials {
  readonly apiKey: Redacted.Redacted<string>
  /** The base64 private key. */
  readonly apiSecret: Redacted.Redacted<string>
}

export interface KrakenRestOptions {
  /** e.g. "https://api.kraken.com" (a mock venue's URL in tests). */
  readonly baseUrl: string
  readonly credentials: KrakenCredentials
  /** A call without an answer after this long fails with `KrakenTimeout`. */
  readonly timeoutMs: number
  /** How long nothing goes out after a rate-limit answer without a Retry-After. */
  readonly rateLimitedMs: number
  /** Called with every request's operation before it goes out (the venue's rate limiter, a counter). */
  readonly beforeRequest?: (operation: string) => Effect.Effect<void>
  /** Told of every rate-limit answer (the venue's rate limiter backs off). */
  readonly onRateLimited?: (operation: string, retryAfterMs: number) => void
}

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

export interface KrakenRest {
  readonly addOrder: (o: KrakenOrderRequest) => Effect.Effect<string, KrakenCallError>
  readonly cancelOrder: (clientOrderId: string) => Effect.Effect<number, KrakenCallError>
  readonly amendOrder: (a: KrakenAmendRequest) => Effect.Effect<string, KrakenCallError>
  /** The order carrying this `cl_ord_id`, open or closed; undefined when Kraken has none. */
  readonly queryByClientId: (clientOrderId: string) => Effect.Effect<KrakenOrderState | undefined, KrakenCallError>
  readonly queryOrders: (txids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<KrakenOrderState>, KrakenCallError>
  readonly openOrders: () => Effect.Effect<ReadonlyArray<KrakenOrderState>, KrakenCallError>
  /** Fills since `startSec` (epoch seconds, exclusive), oldest first. */
  readonly tradesHistory: (startSec?: number) => Effect.Effect<ReadonlyArray<KrakenFill>, KrakenCallError>
  readonly webSocketToken: () => Effect.Effect<string, KrakenCallError>
  /** Requests sent, rate-limit answers, timeouts (plain counters for `stats()`). */
  readonly counters: { requests: number; rateLimited: number; timeouts: number; errors: number }
}

const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Envelope))

export const makeKrakenRest = (
  options: KrakenRestOptions
): Effect.Effect<KrakenRest, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const clock = yield* Effect.clock
    const nonces = makeNonces(() => clock.unsafeCurrentTimeMillis())
    const counters = { requests: 0, rateLimited: 0, timeouts: 0, errors: 0 }
    let blockedUntil = 0

    const waitCoolDown = Effect.suspend(() => {
      const wait = blockedUntil - clock.unsafeCurrentTimeMillis()
      return wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.void
    })

    const rateLimited = (operation: string, header: string | undefined): KrakenRateLimited => {
      counters.rateLimited++
      const seconds = header !== undefined && /^\d{1,6}$/.test(header.trim()) ? Number(header.trim()) * 1000 : undefined
      const retryAfterMs = Math.min(seconds ?? options.rateLimitedMs, 3_600_000)
      blockedUntil = Math.max(blockedUntil, clock.unsafeCurrentTimeMillis() + retryAfterMs)
      options.onRateLimited?.(operation, retryAfterMs)
      return new KrakenRateLimited({ operation, retryAfterMs })
    }

    /** One signed POST to /0/private/<operation>: the decoded `result`, or why not. */
    const call = <A, I>(
      operation: string,
      params: ReadonlyArray<readonly [string, string]>,
      result: Schema.Schema<A, I>
    ): Effect.Effect<A, KrakenCallError> =>
      Effect.gen(function*() {
        yield* waitCoolDown
        if (options.beforeRequest !== undefined) yield* options.beforeRequest(operation)
        const path = `/0/private/${operation}`
        const nonce = nonces()
        const body = formBody([["nonce", nonce], ...params])
        const request = HttpClientRequest.post(`${options.baseUrl}${path}`).pipe(
          HttpClientRequest.setHeaders({
            "API-Key": Redacted.value(options.credentials.apiKey),
            "API-Sign": krakenSign(path, nonce, body, options.credentials.apiSecret),
            "User-Agent": "meltica"
          }),
          HttpClientRequest.bodyText(body, "application/x-www-form-urlencoded")
        )
        counters.requests++
        const failed = (reason: string) => new KrakenTransportError({ operation, reason })
        const response = yield* http.execute(request).pipe(
          Effect.flatMap((r) => Effect.map(r.text, (text) => ({ status: r.status, headers: r.headers, text }))),
          Effect.scoped,
          Effect.mapError((e) => failed(e._tag === "RequestError" ? `request failed (${e.reason})` : `response failed (${e.reason})`)),
          Effect.timeoutFail({
            duration: Duration.millis(options.timeoutMs),
            onTimeout: () => {
              counters.timeouts++
              return new KrakenTimeout({ operation, afterMs: options.timeoutMs })
            }
          })
        )
        if (response.status === 429 || response.status === 418) {
          return yield* rateLimited(operation, response.headers["retry-after"])
        }
        if (response.status >= 500) return yield* failed(`HTTP ${response.status}`)
        const envelope = decodeEnvelope(response.text)
        if (Either.isLeft(envelope)) return yield* failed(`HTTP ${response.status}, an answer that does not decode`)
        const errors = envelope.right.error.filter((e) => !e.startsWith("W"))
        if (errors.length > 0) {
          counters.errors++
          if (errors.some((e) => isKrakenRateLimit(parseKrakenError(e)))) {
            return yield* rateLimited(operation, response.headers["retry-after"])
          }
          return yield* new KrakenApiError({ operation, errors: errors.slice(0, 8).map((e) => e.slice(0, 200)) })
        }
        const decoded = Schema.decodeUnknownEither(result)(envelope.right.result)
        if (Either.isLeft(decoded)) return yield* failed(`the result does not decode: ${decoded.left.message.slice(0, 300)}`)
        return decoded.right
      })

    const queryOrders = (txids: ReadonlyArray<string>) =>
      txids.length === 0
        ? Effect.succeed([])
        : call("QueryOrders", [["txid", txids.join(",")], ["trades", "true"]], QueryOrdersResult).pipe(
          Effect.map((r) => Object.entries(r).map(([txid, o]) => orderStateOf(txid, o)))
        )

    return {
      counters,
      addOrder: (o) => call("AddOrder", addOrderParams(o), AddOrderResult).pipe(
        Effect.flatMap((r) =>
          r.txid[0] === undefined
            ? Effect.fail(new KrakenTransportError({ operation: "AddOrder", reason: "no txid in the answer" }))
            : Effect.succeed(r.txid[0])
        )
      ),
      cancelOrder: (clientOrderId) =>
        call("CancelOrder", [["cl_ord_id", clientOrderId]], CancelOrderResult).pipe(Effect.map((r) => r.count)),
      amendOrder: (a) => {
        const params: Array<readonly [string, string]> = [["cl_ord_id", a.clientOrderId]]
        if (a.quantity !== undefined) params.push(["order_qty", a.quantity])
        if (a.price !== undefined) params.push(["limit_price", a.price])
        return call("AmendOrder", params, AmendOrderResult).pipe(Effect.map((r) => r.amend_id))
      },
      queryByClientId: (clientOrderId) =>
        call("QueryOrders", [["cl_ord_id", clientOrderId], ["trades", "true"]], QueryOrdersResult).pipe(
          Effect.map((r) => {
            const hit = Object.entries(r).find(([, o]) => o.cl_ord_id === clientOrderId)
            return hit === undefined ? undefined : orderStateOf(hit[0], hit[1])
          }),
          // "EOrder:Unknown order" / "EOrder:Invalid order": Kraken has no such order
          Effect.catchIf(
            (e): e is KrakenApiError => e._tag === "KrakenApiError" && e.errors.some((x) => /unknown order|invalid order/i.test(x)),
            () => Effect.succeed(undefined)
          )
        ),
      queryOrders,
      openOrders: () =>
        call("OpenOrders", [["trades", "true"]], OpenOrdersResult).pipe(
          Effect.map((r) => Object.entries(r.open).map(([txid, o]) => orderStateOf(txid, o)))
        ),
      tradesHistory: (startSec) =>
        call("TradesHistory", startSec === undefined ? [] : [["start", String(startSec)]], TradesHistoryResult).pipe(
          Effect.map((r) =>
            Object.entries(r.trades).map(([id, t]) => fillOf(id, t)).sort((a, b) => a.timeMs - b.timeMs)
          )
        ),
      webSocketToken: () => call("GetWebSocketsToken", [], WebSocketsTokenResult).pipe(Effect.map((r) => r.token))
    } satisfies KrakenRest
  })
