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
import { Data, Effect, Either, Redacted, Schema } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import { WebSocketConstructor } from "@effect/platform/Socket"
import DecimalJs from "decimal.js"
import type { Decimal, OrderStatus, OrderType, Side } from "../../schema/Event.js"
import { jsonNestedDeeperThan } from "../../schema/Bounds.js"
import type { OrderRejection } from "../../schema/Rejection.js"
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
  VenueDuplicate,
  VenueFailure,
  VenueOrderClosed,
  VenueOrderUnknown
} from "./live/LiveAdapter.js"
import { adapterStats } from "./live/AdapterStats.js"
import { decimalText as plainDecimalText, insufficientBalance, type RefusedOrder } from "./live/Refusals.js"
import { makePrivateStream, type ReconnectBackoff } from "./live/PrivateStream.js"
import { makeRateLimiter } from "./live/RateLimiter.js"
import { makeRestTransport } from "./live/Transport.js"
import { readSecret, type SecretUnavailable } from "./live/Secrets.js"
import type { LiveVenueSection } from "../../schema/Config.js"

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
export const decimalText = (u: unknown): string | undefined => u === "" ? undefined : plainDecimalText(u)

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

/**
 * Coinbase's documented order failures (`error_response.error`,
 * `preview_failure_reason`, `new_order_failure_reason`) as our typed
 * rejections; anything else is a `VenueRejected` carrying Coinbase's code.
 */
export const coinbaseRejection = (code: string, text: string, o: RefusedOrder): OrderRejection => {
  const c = code.toUpperCase()
  if (/INSUFFICIENT_FUND/.test(c)) return insufficientBalance(o)
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
    (x): x is string => typeof x === "string" && x !== "" && !/^UNKNOWN_.*REASON$|^UNSPECIFIED/.test(x)
  ) ?? e?.error ?? r.failure_reason ?? "UNKNOWN_FAILURE_REASON"
  return { code, text: e?.message ?? e?.error_details ?? code }
}


// ---------------------------------------------------------------------------
// The user channel
// ---------------------------------------------------------------------------

/** One order of a `user` channel event (cumulative figures; no individual fills). */
export const UserOrder = Schema.Struct({
  order_id: Str,
  client_order_id: optStr,
  cumulative_quantity: optStr,
  leaves_quantity: optStr,
  avg_price: optStr,
  status: Str,
  product_id: Str,
  order_side: optStr,
  order_type: optStr,
  limit_price: optStr,
  cancel_reason: optStr,
  reject_Reason: optStr,
  creation_time: optStr
})
export type UserOrder = typeof UserOrder.Type

const UserMessage = Schema.Struct({
  channel: Schema.Literal("user"),
  events: Schema.Array(Schema.Struct({ type: Str, orders: Schema.optional(Schema.Array(UserOrder)) }))
})
const SubscriptionsMessage = Schema.Struct({
  channel: Schema.Literal("subscriptions"),
  events: Schema.Array(Schema.Struct({ subscriptions: Schema.Record({ key: Str, value: Schema.Unknown }) }))
})

export type CoinbasePrivateFrame =
  | { readonly _tag: "Orders"; readonly snapshot: boolean; readonly orders: ReadonlyArray<UserOrder> }
  | { readonly _tag: "Subscribed"; readonly channels: ReadonlyArray<string> }
  | { readonly _tag: "Heartbeat" }
  | { readonly _tag: "Error"; readonly text: string }
  | { readonly _tag: "Malformed"; readonly reason: string }

const decodeUser = Schema.decodeUnknownEither(UserMessage)
const decodeSubscriptions = Schema.decodeUnknownEither(SubscriptionsMessage)

/** The largest private frame read. */
export const MAX_PRIVATE_FRAME = 1 << 20

export const parsePrivateFrame = (text: string): CoinbasePrivateFrame => {
  if (text.length > MAX_PRIVATE_FRAME) return { _tag: "Malformed", reason: `frame of ${text.length} characters` }
  if (jsonNestedDeeperThan(text, 16)) return { _tag: "Malformed", reason: "nested too deep" }
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return { _tag: "Malformed", reason: "not JSON" }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { _tag: "Malformed", reason: "not an object" }
  const o = v as Record<string, unknown>
  if (o.type === "error") return { _tag: "Error", text: String(o.message ?? "error").slice(0, 200) }
  if (o.channel === "heartbeats") return { _tag: "Heartbeat" }
  if (o.channel === "subscriptions") {
    const m = decodeSubscriptions(o)
    return Either.isLeft(m)
      ? { _tag: "Malformed", reason: "subscriptions message does not decode" }
      : { _tag: "Subscribed", channels: m.right.events.flatMap((e) => Object.keys(e.subscriptions)) }
  }
  if (o.channel === "user") {
    const m = decodeUser(o)
    if (Either.isLeft(m)) return { _tag: "Malformed", reason: "user message does not decode" }
    return {
      _tag: "Orders",
      snapshot: m.right.events.some((e) => e.type === "snapshot"),
      orders: m.right.events.flatMap((e) => e.orders ?? [])
    }
  }
  return { _tag: "Malformed", reason: "unknown message" }
}

/** The subscriptions sent on every (re)connect: the user channel for our products, and heartbeats. */
export const subscribeUser = (jwt: string, products: ReadonlyArray<string>): ReadonlyArray<string> => [
  JSON.stringify({ type: "subscribe", channel: "user", product_ids: products, jwt }),
  JSON.stringify({ type: "subscribe", channel: "heartbeats", jwt })
]

// ---------------------------------------------------------------------------
// The adapter (src/execution/live/LiveAdapter.ts)
// ---------------------------------------------------------------------------

export interface CoinbaseAdapterOptions {
  /** The venue's name in `SubmitOrder.venue`. Default "coinbase". */
  readonly venue?: string
  /** Default `COINBASE_REST_URL`; `COINBASE_SANDBOX_REST_URL` for the sandbox (static answers). */
  readonly restUrl?: string
  readonly wsUrl?: string
  readonly credentials: CoinbaseCredentials
  /** Our symbols traded here ("BTC-USD"), and where Coinbase's product id differs, the map. */
  readonly symbols: ReadonlyArray<string>
  readonly symbolMap?: Readonly<Record<string, string>>
  readonly timeoutMs?: number
  readonly dryRun?: boolean
  /** Private REST requests a second (Advanced Trade: 30). */
  readonly requestsPerSecond?: number
  /** The skew to Coinbase's clock tolerated (a JWT lives 120 s from nbf): default 30 s. */
  readonly recvWindowMs?: number
  readonly backoff?: ReconnectBackoff
  readonly stallTimeoutMs?: number
}

const TimeAnswer = Schema.Struct({ epochMillis: Schema.optional(Str), epochSeconds: Schema.optional(Str), iso: optStr })
const Product = Schema.Struct({
  product_id: Str,
  base_increment: optStr,
  price_increment: optStr,
  quote_increment: optStr,
  base_min_size: optStr,
  quote_min_size: optStr,
  status: optStr,
  trading_disabled: Schema.optional(Schema.Boolean),
  is_disabled: Schema.optional(Schema.Boolean),
  cancel_only: Schema.optional(Schema.Boolean)
})
const ProductsAnswer = Schema.Struct({ products: Schema.Array(Product) })
const ApiErrorBody = Schema.Struct({ error: optStr, message: optStr, error_details: optStr })

const TERMINAL = new Set(["filled", "canceled", "rejected"])

/** Coinbase answered with a failure code: the operation maps it. */
class CoinbaseRefusal extends Data.TaggedError("CoinbaseRefusal")<{
  readonly operation: string
  readonly status: number
  readonly code: string
  readonly text: string
}> {}

/** Pages of a cursor listing read at most. */
const MAX_PAGES = 10

export const makeCoinbaseAdapter = (
  options: CoinbaseAdapterOptions
): Effect.Effect<LiveAdapter, never, HttpClient.HttpClient | WebSocketConstructor> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const webSocket = yield* WebSocketConstructor
    const clock = yield* Effect.clock
    // a key that does not read is no reason to fail here: every signed call, and the start's clock check,
    // fail with it (typed, without the key), so the gateway refuses to start the venue and says why
    const signingKey = coinbaseSigningKey(options.credentials.privateKey)
    const keyProblem = (venueName: string) =>
      Either.isLeft(signingKey)
        ? Effect.fail(new AuthenticationFailed({ venue: venueName, code: "invalid_private_key", text: signingKey.left.reason }))
        : Effect.succeed(signingKey.right)
    const venue = options.venue ?? "coinbase"
    const restUrl = options.restUrl ?? COINBASE_REST_URL
    const host = new URL(restUrl).host
    const limiter = makeRateLimiter({
      buckets: [
        { name: "private", limit: options.requestsPerSecond ?? 30, intervalMs: 1_000 },
        { name: "public", limit: 10, intervalMs: 1_000 }
      ],
      defaultCoolDownMs: 1_000
    }, clock)
    const transport = yield* makeRestTransport({
      venue,
      baseUrl: restUrl,
      http,
      limiter,
      timeoutMs: options.timeoutMs ?? 10_000,
      dryRun: options.dryRun ?? false,
      secretHeaders: ["authorization"]
    })
    const venueClock = makeVenueClock(venue, options.recvWindowMs ?? 30_000, clock)
    const nowSec = () => Math.floor(venueClock.now() / 1000)

    const productOf = new Map<string, string>()
    const ours = new Map<string, string>()
    for (const s of options.symbols) {
      const p = options.symbolMap?.[s] ?? s
      productOf.set(s, p)
      ours.set(p, s)
    }
    const product = (symbol: string) => productOf.get(symbol) ?? symbol
    const ourSymbol = (p: string) => ours.get(p)

    /** Client order id -> Coinbase order id, learnt from answers and the stream (cancel and edit need the latter). */
    const orderIds = new Map<string, string>()
    const remember = (clientOrderId: string | undefined, orderId: string) => {
      if (clientOrderId !== undefined && clientOrderId !== "") orderIds.set(clientOrderId, orderId)
    }

    const call = <A, I>(
      operation: string,
      method: "GET" | "POST",
      path: string,
      query: string,
      body: unknown,
      answer: Schema.Schema<A, I>,
      mutating: boolean
    ): Effect.Effect<A, CoinbaseRefusal | LiveError> =>
      Effect.gen(function*() {
        const key = yield* keyProblem(venue)
        const jwt = coinbaseJwt(options.credentials.keyName, key, nowSec(), { method, host, path })
        const response = yield* transport.send({
          operation,
          method,
          path,
          query,
          ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: "application/json" }),
          headers: { Authorization: `Bearer ${jwt}` },
          costs: { private: 1 },
          mutating
        })
        return yield* readAnswer(operation, response.status, response.body, answer, mutating)
      })

    const readAnswer = <A, I>(
      operation: string,
      status: number,
      text: string,
      answer: Schema.Schema<A, I>,
      mutating: boolean
    ): Effect.Effect<A, CoinbaseRefusal | LiveError> => {
      if (status >= 500) {
        return Effect.fail(
          mutating
            ? new OutcomeUnknown({ venue, operation, reason: `HTTP ${status}` })
            : new VenueFailure({ venue, operation, status, code: `HTTP_${status}`, text: "server error" })
        )
      }
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        return Effect.fail(new VenueFailure({ venue, operation, status, code: "undecodable", text: "an answer that does not decode" }))
      }
      if (status === 401 || status === 403) {
        const e = Schema.decodeUnknownEither(ApiErrorBody)(json)
        const code = Either.isRight(e) ? e.right.error ?? "UNAUTHENTICATED" : "UNAUTHENTICATED"
        return Effect.fail(new AuthenticationFailed({ venue, code: code.slice(0, 64), text: `HTTP ${status}` }))
      }
      if (status >= 400) {
        const e = Schema.decodeUnknownEither(ApiErrorBody)(json)
        const code = (Either.isRight(e) ? e.right.error : undefined) ?? `HTTP_${status}`
        const words = (Either.isRight(e) ? e.right.message ?? e.right.error_details : undefined) ?? code
        return Effect.fail(new CoinbaseRefusal({ operation, status, code: code.slice(0, 64), text: words.slice(0, 300) }))
      }
      const decoded = Schema.decodeUnknownEither(answer)(json)
      return Either.isLeft(decoded)
        ? Effect.fail(new VenueFailure({ venue, operation, status, code: "undecodable", text: "the answer does not decode" }))
        : Effect.succeed(decoded.right)
    }

    const otherwise = (operation: string) => (e: CoinbaseRefusal): Effect.Effect<never, LiveError> =>
      Effect.fail(new VenueFailure({ venue, operation, status: e.status, code: e.code, text: e.text }))

    const venueOrderOf = (s: CoinbaseOrderState, symbol: string, fallbackQty?: string): VenueOrder => ({
      clientOrderId: s.clientOrderId ?? "",
      venueOrderId: s.venueOrderId,
      symbol,
      status: s.status,
      price: s.price as Decimal | undefined,
      quantity: (s.quantity ?? fallbackQty ?? s.filledQty) as Decimal,
      filledQty: s.filledQty as Decimal,
      reason: s.reason,
      updatedMs: clock.unsafeCurrentTimeMillis()
    })

    const venueFillOf = (f: CoinbaseFill, symbol: string, clientOrderId?: string): VenueFill => ({
      tradeId: f.tradeId,
      venueOrderId: f.venueOrderId,
      clientOrderId,
      symbol,
      price: f.price as Decimal,
      quantity: f.quantity as Decimal,
      fee: f.fee as Decimal,
      liquidity: f.maker ? "maker" : "taker",
      tsMs: f.timeMs
    })

    const ordersPath = "/api/v3/brokerage/orders"

    /** Listing pages (cursor) until `stop` says enough, at most MAX_PAGES. */
    const listOrders = (params: URLSearchParams, stop: (o: CoinbaseOrder) => boolean) =>
      Effect.gen(function*() {
        const out: Array<CoinbaseOrder> = []
        let cursor: string | undefined
        for (let page = 0; page < MAX_PAGES; page++) {
          const q = new URLSearchParams(params)
          if (cursor !== undefined) q.set("cursor", cursor)
          const r = yield* call("ListOrders", "GET", `${ordersPath}/historical/batch`, q.toString(), undefined, ListOrdersResponse, false)
          out.push(...r.orders)
          if (r.orders.some(stop) || r.has_next !== true || r.cursor == null || r.cursor === "") break
          cursor = r.cursor
        }
        return out
      })

    const getOrder = (orderId: string): Effect.Effect<CoinbaseOrderState | undefined, LiveError> =>
      call("GetOrder", "GET", `${ordersPath}/historical/${encodeURIComponent(orderId)}`, "", undefined, GetOrderResponse, false).pipe(
        Effect.map((r): CoinbaseOrderState | undefined => orderStateOf(r.order)),
        Effect.catchTag("CoinbaseRefusal", (e): Effect.Effect<undefined, LiveError> =>
          e.status === 404 || e.code === "NOT_FOUND" ? Effect.succeed(undefined) : otherwise("GetOrder")(e))
      )

    const query = (symbol: string, clientOrderId: string): Effect.Effect<VenueOrder, LiveError> =>
      Effect.gen(function*() {
        const known = orderIds.get(clientOrderId)
        if (known !== undefined) {
          const s = yield* getOrder(known)
          if (s !== undefined) return venueOrderOf(s, symbol)
        }
        const found = yield* listOrders(new URLSearchParams([["product_ids", product(symbol)]]), (o) => o.client_order_id === clientOrderId).pipe(
          Effect.catchTag("CoinbaseRefusal", otherwise("ListOrders"))
        )
        const hit = found.find((o) => o.client_order_id === clientOrderId)
        if (hit === undefined) return yield* new VenueOrderUnknown({ venue, clientOrderId, code: "not_listed" })
        remember(clientOrderId, hit.order_id)
        return venueOrderOf(orderStateOf(hit), symbol)
      })

    const place = (order: PlaceOrder): Effect.Effect<VenueAnswer, LiveError> =>
      call("CreateOrder", "POST", ordersPath, "", createOrderBody({
        clientOrderId: order.clientOrderId,
        product: product(order.symbol),
        side: order.side,
        type: order.type,
        quantity: order.quantity,
        price: order.price,
        timeInForce: order.timeInForce,
        postOnly: order.postOnly
      }), CreateOrderResponse, true).pipe(
        Effect.flatMap((r): Effect.Effect<VenueAnswer, LiveError | CoinbaseRefusal> => {
          const id = r.success_response?.order_id ?? r.order_id ?? undefined
          if (r.success && id !== undefined) {
            remember(order.clientOrderId, id)
            return Effect.succeed({
              order: {
                clientOrderId: order.clientOrderId,
                venueOrderId: id,
                symbol: order.symbol,
                status: "new",
                price: order.price,
                quantity: order.quantity,
                filledQty: "0" as Decimal,
                updatedMs: clock.unsafeCurrentTimeMillis()
              },
              fills: []
            })
          }
          const { code, text } = createFailureCode(r)
          return Effect.fail(new CoinbaseRefusal({ operation: "CreateOrder", status: 200, code: code.slice(0, 64), text: text.slice(0, 300) }))
        }),
        Effect.catchTag("CoinbaseRefusal", (e): Effect.Effect<never, LiveError> => {
          if (/DUPLICATE/.test(e.code)) return Effect.fail(new VenueDuplicate({ venue, clientOrderId: order.clientOrderId, code: e.code }))
          if (/POST_ONLY/.test(e.code) && order.price !== undefined) {
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
          return Effect.fail(new OrderRefused({ venue, rejection: coinbaseRejection(e.code, e.text, { ...order, venue }) }))
        })
      )

    /** The order id of a client order id we may not have seen an answer for (after a restart). */
    const orderIdOf = (symbol: string, clientOrderId: string): Effect.Effect<string, LiveError> => {
      const known = orderIds.get(clientOrderId)
      return known !== undefined ? Effect.succeed(known) : Effect.map(query(symbol, clientOrderId), (o) => o.venueOrderId)
    }

    const closedOrUnknown = (symbol: string, clientOrderId: string, code: string): Effect.Effect<never, LiveError> =>
      Effect.either(query(symbol, clientOrderId)).pipe(
        Effect.flatMap((q): Effect.Effect<never, LiveError> =>
          Either.isRight(q) && TERMINAL.has(q.right.status)
            ? Effect.fail(new VenueOrderClosed({ venue, clientOrderId, code, text: `the order is ${q.right.status}` }))
            : Effect.fail(new VenueOrderUnknown({ venue, clientOrderId, code }))
        )
      )

    const cancel = (symbol: string, clientOrderId: string): Effect.Effect<VenueAnswer, LiveError> =>
      Effect.gen(function*() {
        const id = yield* orderIdOf(symbol, clientOrderId)
        const r = yield* call("CancelOrders", "POST", `${ordersPath}/batch_cancel`, "", { order_ids: [id] }, CancelOrdersResponse, true).pipe(
          Effect.catchTag("CoinbaseRefusal", otherwise("CancelOrders"))
        )
        const result = r.results.find((x) => x.order_id === id)
        if (result !== undefined && !result.success) {
          return yield* closedOrUnknown(symbol, clientOrderId, (result.failure_reason ?? "UNKNOWN_CANCEL_FAILURE_REASON").slice(0, 64))
        }
        return { order: yield* query(symbol, clientOrderId), fills: [] }
      })

    const amend = (
      symbol: string,
      clientOrderId: string,
      change: { readonly price?: Decimal | undefined; readonly quantity?: Decimal | undefined }
    ): Effect.Effect<VenueAnswer, LiveError> =>
      Effect.gen(function*() {
        // edit takes both the price and the size: the one not changing is the order's current one
        const now = yield* query(symbol, clientOrderId)
        if (TERMINAL.has(now.status)) {
          return yield* new VenueOrderClosed({ venue, clientOrderId, code: "closed", text: `the order is ${now.status}` })
        }
        const price = change.price ?? now.price
        const size = change.quantity ?? now.quantity
        yield* call("EditOrder", "POST", `${ordersPath}/edit`, "", { order_id: now.venueOrderId, price: price ?? "", size }, EditOrderResponse, true).pipe(
          Effect.flatMap((r): Effect.Effect<void, CoinbaseRefusal> => {
            if (r.success) return Effect.void
            const first = r.errors?.[0]
            const code = first?.edit_failure_reason ?? first?.preview_failure_reason ?? "UNKNOWN_EDIT_ORDER_FAILURE_REASON"
            return Effect.fail(new CoinbaseRefusal({ operation: "EditOrder", status: 200, code: code.slice(0, 64), text: code }))
          }),
          Effect.catchTag("CoinbaseRefusal", (e): Effect.Effect<never, LiveError> => {
            if (/NOT_FOUND/.test(e.code)) return closedOrUnknown(symbol, clientOrderId, e.code)
            const rejection = /BELOW_FILLED|SIZE/.test(e.code)
              ? new InvalidQuantity({ clientOrderId, symbol, quantity: size, rule: `coinbase: ${e.code}` })
              : /PRICE/.test(e.code)
              ? new InvalidPrice({ clientOrderId, symbol, price, rule: `coinbase: ${e.code}` })
              : new VenueRejected({ venue, clientOrderId, symbol, code: e.code, text: e.text })
            return Effect.fail(new OrderRefused({ venue, rejection }))
          })
        )
        return { order: yield* query(symbol, clientOrderId), fills: [] }
      })

    const listFills = (params: URLSearchParams, symbol: string) =>
      Effect.gen(function*() {
        const out: Array<VenueFill> = []
        let cursor: string | undefined
        for (let page = 0; page < MAX_PAGES; page++) {
          const q = new URLSearchParams(params)
          if (cursor !== undefined) q.set("cursor", cursor)
          const r = yield* call("ListFills", "GET", `${ordersPath}/historical/fills`, q.toString(), undefined, ListFillsResponse, false).pipe(
            Effect.catchTag("CoinbaseRefusal", otherwise("ListFills"))
          )
          for (const f of r.fills) out.push(venueFillOf(fillOf(f), symbol))
          if (r.cursor == null || r.cursor === "" || r.fills.length === 0) break
          cursor = r.cursor
        }
        return out.sort((a, b) => a.tsMs - b.tsMs)
      })

    const orderFills = (symbol: string, venueOrderId: string) =>
      listFills(new URLSearchParams([["order_ids", venueOrderId]]), symbol)

    const fillsSince = (symbol: string, sinceMs: number) =>
      listFills(new URLSearchParams([["product_ids", product(symbol)], ["start_sequence_timestamp", new Date(sinceMs).toISOString()]]), symbol)
        .pipe(Effect.map((fs) => fs.filter((f) => f.tsMs >= sinceMs)))

    const openOrders = (symbols: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<VenueOrder>, LiveError> => {
      const params = new URLSearchParams([["order_status", "OPEN"]])
      for (const s of symbols) params.append("product_ids", product(s))
      return listOrders(params, () => false).pipe(
        Effect.map((os) =>
          os.flatMap((o) => {
            const symbol = ourSymbol(o.product_id)
            if (symbol === undefined) return []
            remember(o.client_order_id ?? undefined, o.order_id)
            return [venueOrderOf(orderStateOf(o), symbol)]
          })
        ),
        Effect.catchTag("CoinbaseRefusal", otherwise("ListOrders"))
      )
    }

    const publicGet = <A, I>(operation: string, path: string, query: string, answer: Schema.Schema<A, I>) =>
      transport.send({ operation, method: "GET", path, query, headers: {}, costs: { public: 1 }, mutating: false }).pipe(
        Effect.flatMap((r) => readAnswer(operation, r.status, r.body, answer, false)),
        Effect.catchTag("CoinbaseRefusal", otherwise(operation))
      )

    const syncClock = keyProblem(venue).pipe(Effect.zipRight(venueClock.sync(
      publicGet("Time", "/api/v3/brokerage/time", "", TimeAnswer).pipe(
        Effect.flatMap((t) => {
          const ms = t.epochMillis !== undefined ? Number(t.epochMillis) : t.epochSeconds !== undefined ? Number(t.epochSeconds) * 1000 : Number.NaN
          return Number.isFinite(ms)
            ? Effect.succeed(ms)
            : Effect.fail(new VenueFailure({ venue, operation: "Time", status: 200, code: "undecodable", text: "no epoch in the answer" }))
        })
      )
    )))

    const instruments: Effect.Effect<ReadonlyArray<Instrument>, LiveError> = publicGet(
      "Products",
      "/api/v3/brokerage/market/products",
      "",
      ProductsAnswer
    ).pipe(
      Effect.map((r) =>
        r.products.flatMap((p) => {
          const symbol = ourSymbol(p.product_id)
          if (symbol === undefined) return []
          return [{
            symbol,
            tickSize: decimalText(p.price_increment) as Decimal | undefined,
            lotSize: decimalText(p.base_increment) as Decimal | undefined,
            minQty: decimalText(p.base_min_size) as Decimal | undefined,
            minNotional: decimalText(p.quote_min_size) as Decimal | undefined,
            trading: (p.status ?? "online") === "online" && p.trading_disabled !== true && p.is_disabled !== true &&
              p.cancel_only !== true
          }]
        })
      )
    )

    // --- the user channel

    const known = new Map<string, VenueOrder>()
    const orderUpdateOf = (o: UserOrder, nowMs: number): StreamUpdate | undefined => {
      const symbol = ourSymbol(o.product_id)
      if (symbol === undefined) return undefined
      const prior = known.get(o.order_id)
      const clientOrderId = o.client_order_id ?? prior?.clientOrderId
      if (clientOrderId === undefined || clientOrderId === "") return undefined
      remember(clientOrderId, o.order_id)
      const filled = decimalText(o.cumulative_quantity) ?? prior?.filledQty ?? "0"
      const leaves = decimalText(o.leaves_quantity)
      const status = orderStatusOf(o.status, filled)
      // while working, the order's size is filled + leaves; once closed, leaves is 0 and the size we knew stays
      const quantity = prior !== undefined && TERMINAL.has(status)
        ? prior.quantity
        : leaves !== undefined
        ? new DecimalJs(filled).add(leaves).toFixed()
        : prior?.quantity ?? filled
      const order: VenueOrder = {
        clientOrderId,
        venueOrderId: o.order_id,
        symbol,
        status,
        price: (decimalText(o.limit_price) ?? prior?.price) as Decimal | undefined,
        quantity: quantity as Decimal,
        filledQty: filled as Decimal,
        reason: o.reject_Reason ?? o.cancel_reason ?? prior?.reason ?? undefined,
        updatedMs: nowMs
      }
      if (TERMINAL.has(status)) known.delete(o.order_id)
      else known.set(o.order_id, order)
      return { _tag: "Order", order }
    }

    const products = options.symbols.map(product)
    const stream = makePrivateStream({
      venue,
      url: options.wsUrl ?? COINBASE_USER_WS_URL,
      webSocket,
      backoff: options.backoff,
      stallTimeoutMs: options.stallTimeoutMs,
      onOpen: (send) =>
        Either.isLeft(signingKey)
          ? Effect.die(new Error("coinbase: the private key does not read; no user channel"))
          : Effect.forEach(subscribeUser(coinbaseJwt(options.credentials.keyName, signingKey.right, nowSec()), products), send, { discard: true }),
      onFrame: (text, emit) => {
        const now = clock.unsafeCurrentTimeMillis()
        const frame = parsePrivateFrame(text)
        switch (frame._tag) {
          case "Heartbeat":
            return true
          case "Malformed":
          case "Error":
            return false
          case "Subscribed":
            if (frame.channels.includes("user")) emit({ _tag: "Connected" })
            return true
          case "Orders":
            for (const o of frame.orders) {
              const update = orderUpdateOf(o, now)
              if (update !== undefined) emit(update)
            }
            return true
        }
      }
    })

    return {
      venue,
      // Coinbase takes any client_order_id (a UUID is recommended); ours are bounded already
      clientOrderIdProblem: (id) => id.length > 128 ? "Coinbase's client_order_id is at most 128 characters here" : undefined,
      amendable: { price: true, quantityUp: true, quantityDown: true },
      syncClock,
      instruments,
      place,
      cancel,
      amend,
      query,
      orderFills,
      openOrders,
      fillsSince,
      privateStream: stream.run,
      stats: adapterStats({ transport, limiter, stream, venueClock })
    } satisfies LiveAdapter
  })

// ---------------------------------------------------------------------------
// From the configuration (`live.venues.<name>`, schema/Config.ts)
// ---------------------------------------------------------------------------

/** The credentials a Coinbase section must name: the CDP key name (`apiKey`) and its EC private key (PEM). */
export const COINBASE_CREDENTIALS = ["apiKey", "privateKey"] as const

/** The problems of a Coinbase section for live trading, each named by its key (check-config lists them). */
export const coinbaseSectionProblems = (section: LiveVenueSection): ReadonlyArray<string> =>
  COINBASE_CREDENTIALS.filter((k) => section[k] === undefined).map((k) =>
    `${k}: missing (a reference { env: NAME } or { file: path })`
  )

/** A Coinbase section that cannot trade: `reason` says why (never a credential). */
export class CoinbaseConfigProblem extends Data.TaggedError("CoinbaseConfigProblem")<{
  readonly venue: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.venue}: ${this.reason}`
  }
}

/**
 * The live engine's factory for Coinbase venues (an entry of
 * `liveAdapterFactories`, src/execution/live/LiveExecution.ts): credentials
 * already read; `testnet` is the Advanced Trade sandbox for REST.
 */
export const coinbaseLiveAdapter = (
  spec: { readonly name: string; readonly symbols: ReadonlyArray<string>; readonly section: LiveVenueSection },
  credentials: { readonly apiKey?: Redacted.Redacted<string> | undefined; readonly privateKey?: Redacted.Redacted<string> | undefined }
): Effect.Effect<LiveAdapter, never, HttpClient.HttpClient | WebSocketConstructor> =>
  makeCoinbaseAdapter({
    venue: spec.name,
    // a missing credential makes a key that does not read: the start fails with it, typed
    credentials: { keyName: credentials.apiKey ?? Redacted.make(""), privateKey: credentials.privateKey ?? Redacted.make("") },
    symbols: spec.symbols,
    restUrl: spec.section.restUrl ?? (spec.section.testnet ? COINBASE_SANDBOX_REST_URL : COINBASE_REST_URL),
    ...(spec.section.wsUrl === undefined ? {} : { wsUrl: spec.section.wsUrl }),
    ...(spec.section.timeoutMs === undefined ? {} : { timeoutMs: spec.section.timeoutMs }),
    dryRun: spec.section.dryRun
  })

/**
 * The adapter of a `live.venues.<venue>` Coinbase section, its credentials
 * read by reference. `testnet` selects the Advanced Trade sandbox for REST
 * (static answers; Coinbase has no sandbox for the user channel, which stays
 * on `wsUrl` or the production URL).
 */
export const coinbaseFromConfig = (
  venue: string,
  section: LiveVenueSection,
  symbols: ReadonlyArray<string>,
  symbolMap?: Readonly<Record<string, string>>
): Effect.Effect<
  LiveAdapter,
  CoinbaseConfigProblem | SecretUnavailable,
  HttpClient.HttpClient | WebSocketConstructor
> =>
  Effect.gen(function*() {
    const problems = coinbaseSectionProblems(section)
    if (problems.length > 0) return yield* new CoinbaseConfigProblem({ venue, reason: problems.join("; ") })
    const keyName = yield* readSecret(venue, "apiKey", section.apiKey!)
    const privateKey = yield* readSecret(venue, "privateKey", section.privateKey!)
    return yield* makeCoinbaseAdapter({
      venue,
      credentials: { keyName, privateKey },
      symbols,
      ...(symbolMap === undefined ? {} : { symbolMap }),
      restUrl: section.restUrl ?? (section.testnet ? COINBASE_SANDBOX_REST_URL : COINBASE_REST_URL),
      ...(section.wsUrl === undefined ? {} : { wsUrl: section.wsUrl }),
      ...(section.timeoutMs === undefined ? {} : { timeoutMs: section.timeoutMs }),
      dryRun: section.dryRun
    })
  })
