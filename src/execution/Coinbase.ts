/**
 * Coinbase Advanced Trade: authenticated order entry over REST, the `user`
 * WebSocket channel for order updates, and the mapping of Coinbase's orders,
 * fills and errors to our order views, execution reports and typed rejections.
 *
 * Documentation followed:
 * - Authentication with CDP API keys (ES256 JWT):
 *   https://docs.cdp.coinbase.com/coinbase-app/authentication-authorization/api-key-authentication
 *   and https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-auth: a JWT per request, header
 *   `{ alg: "ES256", kid: <key name>, nonce: <random hex>, typ: "JWT" }`, claims
 *   `{ iss: "cdp", sub: <key name>, nbf: now, exp: now + 120, uri: "<METHOD> <host><path>" }`,
 *   sent as `Authorization: Bearer <jwt>`; the WebSocket's JWT has no `uri`.
 * - REST orders (https://docs.cdp.coinbase.com/advanced-trade/reference/): create
 *   (`POST /api/v3/brokerage/orders`, with `client_order_id`), cancel (`POST
 *   .../orders/batch_cancel`), edit (`POST .../orders/edit`, limit GTC orders
 *   only), get (`GET .../orders/historical/{order_id}`), list (`GET
 *   .../orders/historical/batch`), fills (`GET .../orders/historical/fills`).
 * - The `user` channel (wss://advanced-trade-ws-user.coinbase.com): order
 *   snapshots and updates with cumulative quantities.
 *
 * Why Node's crypto and not a JWT library: the token is two fixed JSON objects
 * and one ES256 signature; Node signs P-256 with `dsaEncoding: "ieee-p1363"`
 * (the raw r||s that JWS requires) and verifies it the same way, so a library
 * would add a dependency without removing any code that does cryptography.
 *
 * Coinbase documents that a `client_order_id` already used is not a second
 * order: the existing order is answered. Our `clientOrderId` travels there,
 * and an order whose outcome is unknown is looked up before anything is sent
 * again.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from "node:crypto"
import { Data, Duration, Effect, Either, Redacted, Schema } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import DecimalJs from "decimal.js"
import type { OrderStatus, OrderType, Side } from "../../schema/Event.js"
import type { OrderRejection } from "../../schema/Rejection.js"
import {
  BelowMinimum,
  InsufficientBalance,
  InvalidPrice,
  InvalidQuantity,
  UnknownSymbol,
  VenueRejected
} from "../../schema/Rejection.js"

export const COINBASE_REST_URL = "https://api.coinbase.com"
export const COINBASE_SANDBOX_REST_URL = "https://api-sandbox.coinbase.com"
export const COINBASE_USER_WS_URL = "wss://advanced-trade-ws-user.coinbase.com"

// ---------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------

export interface CoinbaseCredentials {
  /** The CDP key name, "organizations/{org}/apiKeys/{key}" (the JWT's kid and sub). */
  readonly keyName: Redacted.Redacted<string>
  /** The EC private key, PEM ("-----BEGIN EC PRIVATE KEY-----..."); "\n" escapes are accepted. */
  readonly privateKey: Redacted.Redacted<string>
}

/** A signing key read once from the PEM (a bad key is a typed error at start, not at the first order). */
export class CoinbaseKeyInvalid extends Data.TaggedError("CoinbaseKeyInvalid")<{ readonly reason: string }> {
  override get message(): string {
    return `coinbase private key unusable: ${this.reason}`
  }
}

export const coinbaseSigningKey = (pem: Redacted.Redacted<string>): Either.Either<KeyObject, CoinbaseKeyInvalid> => {
  try {
    const key = createPrivateKey(Redacted.value(pem).replace(/\\n/g, "\n"))
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      return Either.left(new CoinbaseKeyInvalid({ reason: "not an EC P-256 key (ES256)" }))
    }
    return Either.right(key)
  } catch {
    // the parser's message may quote the key: it is not passed on
    return Either.left(new CoinbaseKeyInvalid({ reason: "not a PEM private key" }))
  }
}

const b64url = (text: string): string => Buffer.from(text).toString("base64url")

export interface JwtRequest {
  readonly method: string
  /** "api.coinbase.com" (host and port of the REST base URL). */
  readonly host: string
  readonly path: string
}

/**
 * An ES256 JWT for one REST request (`request` given) or for the WebSocket
 * (without `uri`), valid from `nowSec` for 120 seconds.
 */
export const coinbaseJwt = (
  keyName: Redacted.Redacted<string>,
  key: KeyObject,
  nowSec: number,
  request?: JwtRequest,
  nonce: string = randomBytes(16).toString("hex")
): string => {
  const kid = Redacted.value(keyName)
  const header = { alg: "ES256", kid, nonce, typ: "JWT" }
  const claims = {
    iss: "cdp",
    sub: kid,
    nbf: nowSec,
    exp: nowSec + 120,
    ...(request === undefined ? {} : { uri: `${request.method} ${request.host}${request.path}` })
  }
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" })
  return `${input}.${signature.toString("base64url")}`
}

export interface VerifiedJwt {
  readonly header: Record<string, unknown>
  readonly claims: Record<string, unknown>
}

/** Verifies an ES256 JWT with a public key (the mock venue's check): its parts, or why not. */
export const verifyCoinbaseJwt = (jwt: string, publicKey: KeyObject): Either.Either<VerifiedJwt, string> => {
  const parts = jwt.split(".")
  if (parts.length !== 3) return Either.left("not three parts")
  const [h, c, s] = parts as [string, string, string]
  try {
    const header = JSON.parse(Buffer.from(h, "base64url").toString()) as Record<string, unknown>
    const claims = JSON.parse(Buffer.from(c, "base64url").toString()) as Record<string, unknown>
    if (header.alg !== "ES256") return Either.left(`alg ${String(header.alg)}`)
    const signature = Buffer.from(s, "base64url")
    if (signature.length !== 64) return Either.left(`signature of ${signature.length} bytes`)
    const ok = verify("sha256", Buffer.from(`${h}.${c}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, signature)
    return ok ? Either.right({ header, claims }) : Either.left("bad signature")
  } catch {
    return Either.left("unreadable")
  }
}

/** The public half of a private key (for a mock venue that is handed our key pair). */
export const publicKeyOf = (key: KeyObject): KeyObject => createPublicKey(key)

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** Coinbase answered with a failure (`success: false`, an error body, a 4xx). */
export class CoinbaseApiError extends Data.TaggedError("CoinbaseApiError")<{
  readonly operation: string
  readonly status: number
  /** Coinbase's code, e.g. "INSUFFICIENT_FUND", "UNKNOWN_CANCEL_ORDER", "NOT_FOUND". */
  readonly code: string
  readonly text: string
}> {
  override get message(): string {
    return `coinbase ${this.operation}: HTTP ${this.status} ${this.code}: ${this.text}`
  }
}

export class CoinbaseRateLimited extends Data.TaggedError("CoinbaseRateLimited")<{
  readonly operation: string
  readonly retryAfterMs: number
}> {
  override get message(): string {
    return `coinbase ${this.operation}: rate limited, waiting ${this.retryAfterMs} ms`
  }
}

/** No answer in time: the call may or may not have taken effect. */
export class CoinbaseTimeout extends Data.TaggedError("CoinbaseTimeout")<{
  readonly operation: string
  readonly afterMs: number
}> {
  override get message(): string {
    return `coinbase ${this.operation}: no answer in ${this.afterMs} ms (outcome unknown)`
  }
}

export class CoinbaseTransportError extends Data.TaggedError("CoinbaseTransportError")<{
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `coinbase ${this.operation}: ${this.reason}`
  }
}

export type CoinbaseCallError = CoinbaseApiError | CoinbaseRateLimited | CoinbaseTimeout | CoinbaseTransportError

// ---------------------------------------------------------------------------
// REST answers (documented shapes; unknown fields are ignored)
// ---------------------------------------------------------------------------

const Str = Schema.String
const optStr = Schema.optional(Schema.NullOr(Schema.String))

const ErrorResponse = Schema.Struct({
  error: optStr,
  message: optStr,
  error_details: optStr,
  preview_failure_reason: optStr,
  new_order_failure_reason: optStr
})

export const CreateOrderResponse = Schema.Struct({
  success: Schema.Boolean,
  failure_reason: optStr,
  order_id: optStr,
  success_response: Schema.optional(Schema.Struct({
    order_id: Str,
    product_id: optStr,
    side: optStr,
    client_order_id: optStr
  })),
  error_response: Schema.optional(ErrorResponse)
})

export const CancelOrdersResponse = Schema.Struct({
  results: Schema.Array(Schema.Struct({ success: Schema.Boolean, failure_reason: optStr, order_id: Str }))
})

export const EditOrderResponse = Schema.Struct({
  success: Schema.Boolean,
  errors: Schema.optional(Schema.Array(Schema.Struct({ edit_failure_reason: optStr, preview_failure_reason: optStr })))
})

const Configuration = Schema.Record({ key: Str, value: Schema.Record({ key: Str, value: Schema.Unknown }) })

/** One order as the historical endpoints describe it. */
export const CoinbaseOrder = Schema.Struct({
  order_id: Str,
  product_id: Str,
  client_order_id: optStr,
  side: Schema.Literal("BUY", "SELL"),
  status: Str,
  order_type: optStr,
  time_in_force: optStr,
  order_configuration: Schema.optional(Configuration),
  filled_size: optStr,
  average_filled_price: optStr,
  reject_reason: optStr,
  reject_message: optStr,
  cancel_message: optStr,
  created_time: optStr
})
export type CoinbaseOrder = typeof CoinbaseOrder.Type

export const GetOrderResponse = Schema.Struct({ order: CoinbaseOrder })
export const ListOrdersResponse = Schema.Struct({
  orders: Schema.Array(CoinbaseOrder),
  has_next: Schema.optional(Schema.Boolean),
  cursor: optStr
})

export const CoinbaseFillInfo = Schema.Struct({
  entry_id: optStr,
  trade_id: Str,
  order_id: Str,
  trade_time: Str,
  price: Str,
  size: Str,
  commission: optStr,
  product_id: Str,
  sequence_timestamp: optStr,
  liquidity_indicator: optStr,
  side: Schema.optional(Schema.Literal("BUY", "SELL"))
})
export type CoinbaseFillInfo = typeof CoinbaseFillInfo.Type

export const ListFillsResponse = Schema.Struct({ fills: Schema.Array(CoinbaseFillInfo), cursor: optStr })

// ---------------------------------------------------------------------------
// Our vocabulary
// ---------------------------------------------------------------------------

export interface CoinbaseOrderState {
  readonly venueOrderId: string
  readonly clientOrderId: string | undefined
  /** Coinbase's product id, e.g. "BTC-USD". */
  readonly product: string
  readonly side: Side
  readonly type: OrderType
  readonly status: OrderStatus
  readonly price: string | undefined
  readonly quantity: string | undefined
  readonly filledQty: string
  readonly avgPrice: string | undefined
  readonly reason: string | undefined
}

export interface CoinbaseFill {
  /** Coinbase's trade id (the idempotency key of a fill). */
  readonly tradeId: string
  readonly venueOrderId: string
  readonly product: string
  readonly side: Side | undefined
  readonly price: string
  readonly quantity: string
  readonly fee: string
  readonly maker: boolean
  /** Epoch milliseconds. */
  readonly timeMs: number
}

/** A decimal as Coinbase writes it ("0.001", "" for none) to our canonical text. */
export const decimalText = (u: unknown): string | undefined => {
  if (typeof u !== "string" && typeof u !== "number") return undefined
  if (u === "") return undefined
  try {
    const d = new DecimalJs(u)
    return d.isFinite() && !d.isNegative() ? d.toFixed() : undefined
  } catch {
    return undefined
  }
}

/**
 * Coinbase's order status in ours: PENDING/QUEUED/OPEN are working (partially
 * filled once something filled; CANCEL_QUEUED too, until the cancel is done);
 * FILLED; CANCELLED and EXPIRED are canceled; FAILED is a rejection.
 */
export const orderStatusOf = (status: string, filled: string | undefined): OrderStatus => {
  const some = filled !== undefined && new DecimalJs(filled).gt(0)
  switch (status.toUpperCase()) {
    case "FILLED":
      return "filled"
    case "CANCELLED":
    case "EXPIRED":
      return "canceled"
    case "FAILED":
    case "REJECTED":
      return "rejected"
    default:
      return some ? "partially_filled" : "new"
  }
}

/** The size and limit price of an order configuration, whatever its kind. */
export const configurationTerms = (
  c: CoinbaseOrder["order_configuration"]
): { readonly quantity?: string; readonly price?: string; readonly kind?: string; readonly postOnly: boolean } => {
  if (c === undefined) return { postOnly: false }
  for (const [kind, v] of Object.entries(c)) {
    const quantity = decimalText(v.base_size)
    const price = decimalText(v.limit_price)
    return {
      kind,
      postOnly: v.post_only === true,
      ...(quantity === undefined ? {} : { quantity }),
      ...(price === undefined ? {} : { price })
    }
  }
  return { postOnly: false }
}

export const orderStateOf = (o: CoinbaseOrder): CoinbaseOrderState => {
  const filledQty = decimalText(o.filled_size) ?? "0"
  const terms = configurationTerms(o.order_configuration)
  const market = (o.order_type ?? terms.kind ?? "").toUpperCase().startsWith("MARKET")
  const avg = decimalText(o.average_filled_price)
  return {
    venueOrderId: o.order_id,
    clientOrderId: o.client_order_id ?? undefined,
    product: o.product_id,
    side: o.side === "BUY" ? "buy" : "sell",
    type: market ? "market" : "limit",
    status: orderStatusOf(o.status, filledQty),
    price: market ? undefined : terms.price,
    quantity: terms.quantity,
    filledQty,
    avgPrice: avg !== undefined && new DecimalJs(filledQty).gt(0) ? avg : undefined,
    reason: o.reject_message ?? o.reject_reason ?? o.cancel_message ?? undefined
  }
}

export const fillOf = (f: CoinbaseFillInfo): CoinbaseFill => ({
  tradeId: f.trade_id,
  venueOrderId: f.order_id,
  product: f.product_id,
  side: f.side === undefined ? undefined : f.side === "BUY" ? "buy" : "sell",
  price: decimalText(f.price) ?? "0",
  quantity: decimalText(f.size) ?? "0",
  fee: decimalText(f.commission) ?? "0",
  maker: (f.liquidity_indicator ?? "").toUpperCase() === "MAKER",
  timeMs: Date.parse(f.trade_time)
})

// ---------------------------------------------------------------------------
// Orders in Coinbase's terms
// ---------------------------------------------------------------------------

export interface CoinbaseOrderRequest {
  readonly clientOrderId: string
  readonly product: string
  readonly side: Side
  readonly type: OrderType
  readonly quantity: string
  readonly price?: string | undefined
  readonly timeInForce?: "GTC" | "IOC" | "FOK" | undefined
  readonly postOnly?: boolean | undefined
}

/**
 * The `order_configuration` of an order: a market order is
 * `market_market_ioc`; a limit order `limit_limit_gtc` (with `post_only`),
 * `sor_limit_ioc` for IOC, `limit_limit_fok` for FOK. Sizes in the base asset.
 */
export const orderConfiguration = (o: CoinbaseOrderRequest): Record<string, Record<string, unknown>> => {
  if (o.type === "market") return { market_market_ioc: { base_size: o.quantity } }
  const limit = { base_size: o.quantity, limit_price: o.price ?? "" }
  switch (o.timeInForce ?? "GTC") {
    case "IOC":
      return { sor_limit_ioc: limit }
    case "FOK":
      return { limit_limit_fok: limit }
    default:
      return { limit_limit_gtc: { ...limit, post_only: o.postOnly === true } }
  }
}

export const createOrderBody = (o: CoinbaseOrderRequest) => ({
  client_order_id: o.clientOrderId,
  product_id: o.product,
  side: o.side === "buy" ? "BUY" : "SELL",
  order_configuration: orderConfiguration(o)
})

// ---------------------------------------------------------------------------
// Refusals in our terms
// ---------------------------------------------------------------------------

export interface RefusedOrder {
  readonly venue: string
  readonly clientOrderId: string
  readonly symbol: string
  readonly side: Side
  readonly quantity: string
  readonly price?: string | undefined
}

/**
 * Coinbase's documented order failures (`error_response.error`,
 * `preview_failure_reason`, `new_order_failure_reason`) as our typed
 * rejections; anything else is a `VenueRejected` carrying Coinbase's code.
 */
export const coinbaseRejection = (code: string, text: string, o: RefusedOrder): OrderRejection => {
  const c = code.toUpperCase()
  const [base, quote] = o.symbol.split("-")
  if (/INSUFFICIENT_FUND/.test(c)) {
    return new InsufficientBalance({
      clientOrderId: o.clientOrderId,
      asset: (o.side === "buy" ? quote : base) ?? o.symbol,
      required: o.side === "buy" && o.price !== undefined ? new DecimalJs(o.price).mul(o.quantity).toFixed() : o.quantity,
      available: "unknown"
    })
  }
  if (/SIZE_TOO_SMALL/.test(c)) {
    return new BelowMinimum({
      clientOrderId: o.clientOrderId,
      symbol: o.symbol,
      measure: c.includes("QUOTE") ? "notional" : "quantity",
      value: o.quantity,
      minimum: "venue minimum"
    })
  }
  if (/SIZE_PRECISION|INVALID_BASE_SIZE|SIZE_TOO_LARGE/.test(c)) {
    return new InvalidQuantity({ clientOrderId: o.clientOrderId, symbol: o.symbol, quantity: o.quantity, rule: `coinbase: ${c}` })
  }
  if (/PRICE_PRECISION|INVALID_LIMIT_PRICE$|INVALID_PRICE/.test(c)) {
    return new InvalidPrice({ clientOrderId: o.clientOrderId, symbol: o.symbol, price: o.price, rule: `coinbase: ${c}` })
  }
  if (/INVALID_PRODUCT_ID|UNKNOWN_PRODUCT/.test(c)) return new UnknownSymbol({ symbol: o.symbol, venue: o.venue })
  return new VenueRejected({
    venue: o.venue,
    clientOrderId: o.clientOrderId,
    symbol: o.symbol,
    code: c.slice(0, 64) || "UNKNOWN_FAILURE_REASON",
    text: text.slice(0, 500)
  })
}

/** The most specific failure code of a create answer. */
export const createFailureCode = (r: typeof CreateOrderResponse.Type): { readonly code: string; readonly text: string } => {
  const e = r.error_response
  const code = [e?.preview_failure_reason, e?.new_order_failure_reason, e?.error, r.failure_reason].find(
    (x): x is string => typeof x === "string" && x !== "" && !/^UNKNOWN_FAILURE_REASON$|^UNSPECIFIED/.test(x)
  ) ?? e?.error ?? r.failure_reason ?? "UNKNOWN_FAILURE_REASON"
  return { code, text: e?.message ?? e?.error_details ?? code }
}

// ---------------------------------------------------------------------------
// REST client
// ---------------------------------------------------------------------------

export interface CoinbaseRestOptions {
  /** e.g. "https://api.coinbase.com" (a mock venue's URL in tests). */
  readonly baseUrl: string
  readonly credentials: CoinbaseCredentials
  readonly timeoutMs: number
  /** How long nothing goes out after a 429 without a Retry-After. */
  readonly rateLimitedMs: number
  readonly beforeRequest?: (operation: string) => Effect.Effect<void>
  readonly onRateLimited?: (operation: string, retryAfterMs: number) => void
}

export interface CoinbaseRest {
  /** The venue's order id of the order created (or of the order that already carried the client_order_id). */
  readonly createOrder: (o: CoinbaseOrderRequest) => Effect.Effect<string, CoinbaseCallError>
  /** Per order id: undefined when canceled, else Coinbase's failure reason. */
  readonly cancelOrders: (orderIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, string | undefined>, CoinbaseCallError>
  readonly editOrder: (e: { readonly orderId: string; readonly price: string; readonly size: string }) => Effect.Effect<void, CoinbaseCallError>
  readonly getOrder: (orderId: string) => Effect.Effect<CoinbaseOrderState | undefined, CoinbaseCallError>
  /** Open orders of these products (all products when empty). */
  readonly openOrders: (products: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<CoinbaseOrderState>, CoinbaseCallError>
  /** The order carrying this client_order_id among the orders since `sinceMs` (open or closed), if any. */
  readonly findByClientId: (
    clientOrderId: string,
    product: string,
    sinceMs: number
  ) => Effect.Effect<CoinbaseOrderState | undefined, CoinbaseCallError>
  /** Fills of these orders (all when empty) since `sinceMs`, oldest first. */
  readonly fills: (orderIds: ReadonlyArray<string>, sinceMs?: number) => Effect.Effect<ReadonlyArray<CoinbaseFill>, CoinbaseCallError>
  /** A JWT for the `user` channel (no uri claim). */
  readonly wsJwt: () => Effect.Effect<string>
  readonly counters: { requests: number; rateLimited: number; timeouts: number; errors: number }
}

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson(Schema.Unknown))
const ApiErrorBody = Schema.Struct({ error: optStr, message: optStr, error_details: optStr })

export const makeCoinbaseRest = (
  options: CoinbaseRestOptions
): Effect.Effect<CoinbaseRest, CoinbaseKeyInvalid, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const clock = yield* Effect.clock
    const key = yield* coinbaseSigningKey(options.credentials.privateKey)
    const host = new URL(options.baseUrl).host
    const counters = { requests: 0, rateLimited: 0, timeouts: 0, errors: 0 }
    let blockedUntil = 0
    const nowSec = () => Math.floor(clock.unsafeCurrentTimeMillis() / 1000)

    const waitCoolDown = Effect.suspend(() => {
      const wait = blockedUntil - clock.unsafeCurrentTimeMillis()
      return wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.void
    })

    /** One authenticated request: the decoded answer, or why not. */
    const call = <A, I>(
      operation: string,
      method: "GET" | "POST",
      path: string,
      query: string,
      body: unknown,
      answer: Schema.Schema<A, I>
    ): Effect.Effect<A, CoinbaseCallError> =>
      Effect.gen(function*() {
        yield* waitCoolDown
        if (options.beforeRequest !== undefined) yield* options.beforeRequest(operation)
        const jwt = coinbaseJwt(options.credentials.keyName, key, nowSec(), { method, host, path })
        const url = `${options.baseUrl}${path}${query === "" ? "" : `?${query}`}`
        const base = method === "GET" ? HttpClientRequest.get(url) : HttpClientRequest.post(url)
        const request = base.pipe(
          HttpClientRequest.setHeaders({ Authorization: `Bearer ${jwt}`, "User-Agent": "meltica" }),
          body === undefined ? (r) => r : HttpClientRequest.bodyText(JSON.stringify(body), "application/json")
        )
        counters.requests++
        const failed = (reason: string) => new CoinbaseTransportError({ operation, reason })
        const response = yield* http.execute(request).pipe(
          Effect.flatMap((r) => Effect.map(r.text, (text) => ({ status: r.status, headers: r.headers, text }))),
          Effect.scoped,
          Effect.mapError((e) => failed(e._tag === "RequestError" ? `request failed (${e.reason})` : `response failed (${e.reason})`)),
          Effect.timeoutFail({
            duration: Duration.millis(options.timeoutMs),
            onTimeout: () => {
              counters.timeouts++
              return new CoinbaseTimeout({ operation, afterMs: options.timeoutMs })
            }
          })
        )
        if (response.status === 429) {
          counters.rateLimited++
          const header = response.headers["retry-after"]
          const asked = header !== undefined && /^\d{1,6}$/.test(header.trim()) ? Number(header.trim()) * 1000 : undefined
          const retryAfterMs = Math.min(asked ?? options.rateLimitedMs, 3_600_000)
          blockedUntil = Math.max(blockedUntil, clock.unsafeCurrentTimeMillis() + retryAfterMs)
          options.onRateLimited?.(operation, retryAfterMs)
          return yield* new CoinbaseRateLimited({ operation, retryAfterMs })
        }
        if (response.status >= 500) return yield* failed(`HTTP ${response.status}`)
        const json = decodeJson(response.text)
        if (Either.isLeft(json)) return yield* failed(`HTTP ${response.status}, an answer that does not decode`)
        if (response.status >= 400) {
          counters.errors++
          const e = Schema.decodeUnknownEither(ApiErrorBody)(json.right)
          const code = Either.isRight(e) ? e.right.error ?? `HTTP_${response.status}` : `HTTP_${response.status}`
          const text = Either.isRight(e) ? e.right.message ?? e.right.error_details ?? code : code
          return yield* new CoinbaseApiError({ operation, status: response.status, code: code.slice(0, 64), text: text.slice(0, 300) })
        }
        const decoded = Schema.decodeUnknownEither(answer)(json.right)
        if (Either.isLeft(decoded)) return yield* failed(`the answer does not decode: ${decoded.left.message.slice(0, 300)}`)
        return decoded.right
      })

    const ordersPath = "/api/v3/brokerage/orders"
    const list = (params: URLSearchParams) =>
      call("ListOrders", "GET", `${ordersPath}/historical/batch`, params.toString(), undefined, ListOrdersResponse)

    return {
      counters,
      wsJwt: () => Effect.sync(() => coinbaseJwt(options.credentials.keyName, key, nowSec())),
      createOrder: (o) =>
        call("CreateOrder", "POST", ordersPath, "", createOrderBody(o), CreateOrderResponse).pipe(
          Effect.flatMap((r) => {
            const id = r.success_response?.order_id ?? r.order_id ?? undefined
            if (r.success && id !== undefined) return Effect.succeed(id)
            const { code, text } = createFailureCode(r)
            counters.errors++
            return Effect.fail(new CoinbaseApiError({ operation: "CreateOrder", status: 200, code: code.slice(0, 64), text: text.slice(0, 300) }))
          })
        ),
      cancelOrders: (orderIds) =>
        call("CancelOrders", "POST", `${ordersPath}/batch_cancel`, "", { order_ids: orderIds }, CancelOrdersResponse).pipe(
          Effect.map((r) => new Map(r.results.map((x) => [x.order_id, x.success ? undefined : x.failure_reason ?? "UNKNOWN_CANCEL_FAILURE_REASON"])))
        ),
      editOrder: (e) =>
        call("EditOrder", "POST", `${ordersPath}/edit`, "", { order_id: e.orderId, price: e.price, size: e.size }, EditOrderResponse).pipe(
          Effect.flatMap((r) => {
            if (r.success) return Effect.void
            const first = r.errors?.[0]
            const code = first?.edit_failure_reason ?? first?.preview_failure_reason ?? "UNKNOWN_EDIT_ORDER_FAILURE_REASON"
            return Effect.fail(new CoinbaseApiError({ operation: "EditOrder", status: 200, code: code.slice(0, 64), text: code }))
          })
        ),
      getOrder: (orderId) =>
        call("GetOrder", "GET", `${ordersPath}/historical/${encodeURIComponent(orderId)}`, "", undefined, GetOrderResponse).pipe(
          Effect.map((r) => orderStateOf(r.order) as CoinbaseOrderState | undefined),
          Effect.catchIf(
            (e): e is CoinbaseApiError => e._tag === "CoinbaseApiError" && (e.status === 404 || e.code === "NOT_FOUND"),
            () => Effect.succeed(undefined)
          )
        ),
      openOrders: (products) => {
        const params = new URLSearchParams([["order_status", "OPEN"]])
        for (const p of products) params.append("product_ids", p)
        return list(params).pipe(Effect.map((r) => r.orders.map(orderStateOf)))
      },
      findByClientId: (clientOrderId, product, sinceMs) => {
        const params = new URLSearchParams([["product_ids", product], ["start_date", new Date(sinceMs).toISOString()]])
        return list(params).pipe(
          Effect.map((r) => {
            const hit = r.orders.find((o) => o.client_order_id === clientOrderId)
            return hit === undefined ? undefined : orderStateOf(hit)
          })
        )
      },
      fills: (orderIds, sinceMs) => {
        const params = new URLSearchParams()
        for (const id of orderIds) params.append("order_ids", id)
        if (sinceMs !== undefined) params.set("start_sequence_timestamp", new Date(sinceMs).toISOString())
        return call("ListFills", "GET", `${ordersPath}/historical/fills`, params.toString(), undefined, ListFillsResponse).pipe(
          Effect.map((r) => r.fills.map(fillOf).sort((a, b) => a.timeMs - b.timeMs))
        )
      }
    } satisfies CoinbaseRest
  })
