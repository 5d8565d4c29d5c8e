/**
 * A local mock of Coinbase Advanced Trade (REST + the `user` WebSocket
 * channel) on 127.0.0.1, for the Coinbase adapter's end-to-end tests. It
 * checks what Coinbase checks, as documented
 * (https://docs.cdp.coinbase.com/coinbase-app/authentication-authorization/api-key-authentication):
 * a Bearer ES256 JWT per request, verified with the public half of the CDP key
 * (header kid = key name; claims iss "cdp", sub = key name, nbf/exp around the
 * server's clock, at most 120 s apart, uri = "METHOD host/path" of this very
 * request); the WebSocket subscription's JWT the same, without uri. It answers
 * with the documented shapes (create: `success` with `success_response` or
 * `error_response`; batch cancel `results`; edit `success`/`errors`; 401/404/429
 * with `{ error, message }`), pushes `user` channel order updates (cumulative
 * figures, no individual fills), and can drop connections, hold answers past
 * the client's timeout, lose requests and rate-limit (HTTP 429).
 */
import { createPublicKey, type KeyObject, verify } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { WebSocket } from "ws"
import DecimalJs from "decimal.js"
import { MockVenueServer } from "./live/MockVenueServer.js"

export interface CoinbaseMockOrder {
  order_id: string
  client_order_id: string
  product_id: string
  side: "BUY" | "SELL"
  kind: string
  base_size: string
  limit_price: string
  post_only: boolean
  filled_size: string
  filled_value: string
  status: "OPEN" | "FILLED" | "CANCELLED" | "EXPIRED" | "FAILED" | "PENDING"
  created_time: string
}

export interface CoinbaseMockFill {
  trade_id: string
  order_id: string
  product_id: string
  price: string
  size: string
  commission: string
  side: "BUY" | "SELL"
  liquidity: "MAKER" | "TAKER"
  time: number
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
}

export interface CoinbaseMockOptions {
  readonly keyName: string
  /** The PEM public key of the CDP key pair. */
  readonly publicKey: string
  readonly now: () => number
  readonly marketPrice?: Record<string, string>
  readonly book?: Record<string, { readonly bid: string; readonly ask: string }>
}

const D = (s: string | number) => new DecimalJs(s)

export class CoinbaseMock extends MockVenueServer {
  readonly orders = new Map<string, CoinbaseMockOrder>()
  readonly fills: Array<CoinbaseMockFill> = []
  readonly requests: Array<RecordedRequest> = []
  /** Why the last refused JWT was refused (the tests read it). */
  lastAuthFailure: string | undefined
  private readonly key: KeyObject
  private failNextPlace: { error: string; preview?: string; message: string } | undefined
  private rateLimitNext: string | undefined
  private nextId = 1
  private sequence = 0

  constructor(readonly options: CoinbaseMockOptions) {
    super("/ws/user")
    this.key = createPublicKey(options.publicKey)
  }

  rejectNextOrder(error: string, message: string, preview?: string) {
    this.failNextPlace = { error, message, ...(preview === undefined ? {} : { preview }) }
  }
  rateLimit(retryAfterSeconds: number) {
    this.rateLimitNext = String(retryAfterSeconds)
  }
  placements(clientOrderId: string) {
    return this.requests.filter((r) =>
      r.method === "POST" && r.path === "/api/v3/brokerage/orders" &&
      (JSON.parse(r.body) as { client_order_id?: string }).client_order_id === clientOrderId
    ).length
  }
  byClient(clientOrderId: string) {
    for (const o of this.orders.values()) if (o.client_order_id === clientOrderId) return o
    return undefined
  }

  fill(clientOrderId: string, qty: string, price: string) {
    const o = this.byClient(clientOrderId)
    if (o === undefined) throw new Error(`mock: no order ${clientOrderId}`)
    this.execute(o, qty, price, "MAKER")
  }

  cancelAtVenue(clientOrderId: string) {
    const o = this.byClient(clientOrderId)!
    o.status = "CANCELLED"
    this.push([o])
  }

  private execute(o: CoinbaseMockOrder, qty: string, price: string, liquidity: "MAKER" | "TAKER") {
    o.filled_size = D(o.filled_size).add(qty).toFixed()
    o.filled_value = D(o.filled_value).add(D(qty).mul(price)).toFixed()
    if (D(o.filled_size).gte(o.base_size)) o.status = "FILLED"
    this.fills.push({
      trade_id: `t-${this.nextId++}`,
      order_id: o.order_id,
      product_id: o.product_id,
      price,
      size: qty,
      commission: D(qty).mul(price).mul("0.006").toFixed(),
      side: o.side,
      liquidity,
      time: this.options.now()
    })
    this.push([o])
  }

  private userOrder(o: CoinbaseMockOrder) {
    const leaves = o.status === "OPEN" || o.status === "PENDING" ? D(o.base_size).sub(o.filled_size).toFixed() : "0"
    return {
      order_id: o.order_id,
      client_order_id: o.client_order_id,
      cumulative_quantity: o.filled_size,
      leaves_quantity: leaves,
      avg_price: D(o.filled_size).gt(0) ? D(o.filled_value).div(o.filled_size).toFixed() : "0",
      total_fees: "0",
      status: o.status,
      product_id: o.product_id,
      creation_time: o.created_time,
      order_side: o.side,
      order_type: o.kind.startsWith("market") ? "Market" : "Limit",
      limit_price: o.kind.startsWith("market") ? "" : o.limit_price,
      cancel_reason: "",
      reject_Reason: ""
    }
  }

  private push(orders: ReadonlyArray<CoinbaseMockOrder>, type: "update" | "snapshot" = "update", to?: WebSocket) {
    const text = JSON.stringify({
      channel: "user",
      client_id: "",
      timestamp: new Date(this.options.now()).toISOString(),
      sequence_num: this.sequence++,
      events: [{ type, orders: orders.map((o) => this.userOrder(o)) }]
    })
    for (const ws of to === undefined ? this.subscribed : [to]) ws.send(text)
  }

  private historical(o: CoinbaseMockOrder) {
    return {
      order_id: o.order_id,
      product_id: o.product_id,
      user_id: "user-1",
      order_configuration: {
        [o.kind]: o.kind.startsWith("market")
          ? { base_size: o.base_size }
          : { base_size: o.base_size, limit_price: o.limit_price, ...(o.kind === "limit_limit_gtc" ? { post_only: o.post_only } : {}) }
      },
      side: o.side,
      client_order_id: o.client_order_id,
      status: o.status,
      time_in_force: o.kind === "limit_limit_gtc" ? "GOOD_UNTIL_CANCELLED" : o.kind === "limit_limit_fok" ? "FILL_OR_KILL" : "IMMEDIATE_OR_CANCEL",
      created_time: o.created_time,
      completion_percentage: D(o.filled_size).div(o.base_size).mul(100).toFixed(2),
      filled_size: o.filled_size,
      average_filled_price: D(o.filled_size).gt(0) ? D(o.filled_value).div(o.filled_size).toFixed() : "0",
      number_of_fills: String(this.fills.filter((f) => f.order_id === o.order_id).length),
      filled_value: o.filled_value,
      pending_cancel: false,
      size_in_quote: false,
      total_fees: "0",
      order_type: o.kind.startsWith("market") ? "MARKET" : "LIMIT",
      reject_reason: "",
      settled: o.status === "FILLED",
      product_type: "SPOT",
      reject_message: "",
      cancel_message: o.status === "CANCELLED" ? "User requested cancel" : ""
    }
  }

  // -- authentication --------------------------------------------------------

  /** Why a JWT is refused for this request (`uri` undefined for the WebSocket), or undefined. */
  private jwtProblem(jwt: string | undefined, uri: string | undefined): string | undefined {
    if (jwt === undefined) return "no token"
    const parts = jwt.split(".")
    if (parts.length !== 3) return "malformed"
    const [h, c, s] = parts as [string, string, string]
    let header: Record<string, unknown>
    let claims: Record<string, unknown>
    try {
      header = JSON.parse(Buffer.from(h, "base64url").toString()) as Record<string, unknown>
      claims = JSON.parse(Buffer.from(c, "base64url").toString()) as Record<string, unknown>
    } catch {
      return "unreadable"
    }
    if (header.alg !== "ES256" || header.kid !== this.options.keyName || typeof header.nonce !== "string") return "header"
    const signature = Buffer.from(s, "base64url")
    if (signature.length !== 64 || !verify("sha256", Buffer.from(`${h}.${c}`), { key: this.key, dsaEncoding: "ieee-p1363" }, signature)) {
      return "signature"
    }
    if (claims.iss !== "cdp" || claims.sub !== this.options.keyName) return "issuer"
    const now = Math.floor(this.options.now() / 1000)
    const nbf = Number(claims.nbf)
    const exp = Number(claims.exp)
    if (!(nbf <= now + 5 && now < exp && exp - nbf <= 120)) return "expired or not yet valid"
    if (claims.uri !== uri) return `uri ${String(claims.uri)} is not ${String(uri)}`
    return undefined
  }

  // -- HTTP -----------------------------------------------------------------

  protected override onHttp(req: IncomingMessage, body: string, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://x")
    const rec: RecordedRequest = { method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers, body }
    this.requests.push(rec)
    const op = `${rec.method} ${rec.path.startsWith("/api/v3/brokerage/orders/historical/") && !rec.path.endsWith("/batch") && !rec.path.endsWith("/fills") ? "/api/v3/brokerage/orders/historical/{id}" : rec.path}`
    this.serve(res, op, (answer) => this.route(rec, answer))
  }

  private route(rec: RecordedRequest, answer: (status: number, payload: unknown, headers?: Record<string, string>) => void) {
    const base = "/api/v3/brokerage"
    if (rec.path === `${base}/time`) {
      const now = this.options.now()
      return answer(200, { iso: new Date(now).toISOString(), epochSeconds: String(Math.floor(now / 1000)), epochMillis: String(now) })
    }
    if (rec.path === `${base}/market/products`) {
      return answer(200, {
        products: [{
          product_id: "BTC-USD",
          price: "100.00",
          base_increment: "0.00000001",
          quote_increment: "0.01",
          price_increment: "0.01",
          base_min_size: "0.00001",
          base_max_size: "3400",
          quote_min_size: "1",
          quote_max_size: "150000000",
          status: "online",
          trading_disabled: false,
          is_disabled: false,
          cancel_only: false,
          limit_only: false,
          post_only: false,
          product_type: "SPOT"
        }],
        num_products: 1
      })
    }
    if (this.rateLimitNext !== undefined) {
      const retry = this.rateLimitNext
      this.rateLimitNext = undefined
      return answer(429, { error: "RATE_LIMIT_EXCEEDED", message: "Too many requests", error_details: "" }, { "retry-after": retry })
    }
    const auth = rec.headers.authorization
    const jwt = typeof auth === "string" && auth.startsWith("Bearer ") ? auth.slice(7) : undefined
    const problem = this.jwtProblem(jwt, `${rec.method} 127.0.0.1:${this.port}${rec.path}`)
    if (problem !== undefined) {
      this.lastAuthFailure = problem
      return answer(401, { error: "UNAUTHENTICATED", message: "Unauthorized", error_details: "" })
    }
    const now = this.options.now()
    const q = rec.query
    if (rec.method === "POST" && rec.path === `${base}/orders`) {
      const b = JSON.parse(rec.body) as {
        client_order_id: string
        product_id: string
        side: "BUY" | "SELL"
        order_configuration: Record<string, { base_size: string; limit_price?: string; post_only?: boolean }>
      }
      if (this.failNextPlace !== undefined) {
        const f = this.failNextPlace
        this.failNextPlace = undefined
        return answer(200, {
          success: false,
          failure_reason: "UNKNOWN_FAILURE_REASON",
          order_id: "",
          error_response: {
            error: f.error,
            message: f.message,
            error_details: "",
            preview_failure_reason: f.preview ?? "UNKNOWN_PREVIEW_FAILURE_REASON",
            new_order_failure_reason: "UNKNOWN_FAILURE_REASON"
          }
        })
      }
      // documented: a client_order_id already used answers with that order, and creates none
      const existing = this.byClient(b.client_order_id)
      if (existing !== undefined) {
        return answer(200, {
          success: true,
          success_response: { order_id: existing.order_id, product_id: existing.product_id, side: existing.side, client_order_id: existing.client_order_id }
        })
      }
      const [kind, cfg] = Object.entries(b.order_configuration)[0]!
      const book = this.options.book?.[b.product_id]
      if (cfg.post_only === true && book !== undefined && cfg.limit_price !== undefined &&
        ((b.side === "BUY" && D(cfg.limit_price).gte(book.ask)) || (b.side === "SELL" && D(cfg.limit_price).lte(book.bid)))) {
        return answer(200, {
          success: false,
          failure_reason: "UNKNOWN_FAILURE_REASON",
          order_id: "",
          error_response: {
            error: "INVALID_LIMIT_PRICE_POST_ONLY",
            message: "Invalid limit price for post only order",
            error_details: "",
            preview_failure_reason: "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
            new_order_failure_reason: "UNKNOWN_FAILURE_REASON"
          }
        })
      }
      const o: CoinbaseMockOrder = {
        order_id: `11111111-0000-4000-8000-${String(this.nextId++).padStart(12, "0")}`,
        client_order_id: b.client_order_id,
        product_id: b.product_id,
        side: b.side,
        kind,
        base_size: cfg.base_size,
        limit_price: cfg.limit_price ?? "",
        post_only: cfg.post_only === true,
        filled_size: "0",
        filled_value: "0",
        status: "OPEN",
        created_time: new Date(now).toISOString()
      }
      this.orders.set(o.order_id, o)
      this.push([o])
      if (kind.startsWith("market")) {
        const px = this.options.marketPrice?.[b.product_id] ?? "100"
        const half = D(o.base_size).div(2).toFixed()
        this.execute(o, half, px, "TAKER")
        this.execute(o, D(o.base_size).sub(half).toFixed(), px, "TAKER")
      }
      return answer(200, {
        success: true,
        success_response: { order_id: o.order_id, product_id: o.product_id, side: o.side, client_order_id: o.client_order_id },
        order_configuration: b.order_configuration
      })
    }
    if (rec.method === "POST" && rec.path === `${base}/orders/batch_cancel`) {
      const ids = (JSON.parse(rec.body) as { order_ids: Array<string> }).order_ids
      return answer(200, {
        results: ids.map((id) => {
          const o = this.orders.get(id)
          if (o === undefined) return { success: false, failure_reason: "UNKNOWN_CANCEL_ORDER", order_id: id }
          if (o.status !== "OPEN") return { success: false, failure_reason: "INVALID_CANCEL_REQUEST", order_id: id }
          o.status = "CANCELLED"
          this.push([o])
          return { success: true, failure_reason: "UNKNOWN_CANCEL_FAILURE_REASON", order_id: id }
        })
      })
    }
    if (rec.method === "POST" && rec.path === `${base}/orders/edit`) {
      const b = JSON.parse(rec.body) as { order_id: string; price: string; size: string }
      const o = this.orders.get(b.order_id)
      if (o === undefined || o.status !== "OPEN") return answer(200, { success: false, errors: [{ edit_failure_reason: "ORDER_NOT_FOUND" }] })
      if (o.kind !== "limit_limit_gtc") return answer(200, { success: false, errors: [{ edit_failure_reason: "INVALID_EDITED_ORDER_TYPE" }] })
      if (D(b.size).lte(o.filled_size)) return answer(200, { success: false, errors: [{ edit_failure_reason: "CANNOT_EDIT_TO_BELOW_FILLED_SIZE" }] })
      o.base_size = b.size
      o.limit_price = b.price
      this.push([o])
      return answer(200, { success: true, errors: [] })
    }
    if (rec.method === "GET" && rec.path === `${base}/orders/historical/batch`) {
      const status = q.getAll("order_status")
      const products = q.getAll("product_ids")
      const list = [...this.orders.values()].filter((o) =>
        (status.length === 0 || status.includes(o.status)) && (products.length === 0 || products.includes(o.product_id))
      ).reverse()
      return answer(200, { orders: list.map((o) => this.historical(o)), sequence: "0", has_next: false, cursor: "" })
    }
    if (rec.method === "GET" && rec.path === `${base}/orders/historical/fills`) {
      const orderIds = q.getAll("order_ids")
      const products = q.getAll("product_ids")
      const since = q.has("start_sequence_timestamp") ? Date.parse(q.get("start_sequence_timestamp")!) : 0
      const list = this.fills.filter((f) =>
        (orderIds.length === 0 || orderIds.includes(f.order_id)) && (products.length === 0 || products.includes(f.product_id)) && f.time >= since
      ).reverse()
      return answer(200, {
        fills: list.map((f) => ({
          entry_id: `e-${f.trade_id}`,
          trade_id: f.trade_id,
          order_id: f.order_id,
          trade_time: new Date(f.time).toISOString(),
          trade_type: "FILL",
          price: f.price,
          size: f.size,
          commission: f.commission,
          product_id: f.product_id,
          sequence_timestamp: new Date(f.time).toISOString(),
          liquidity_indicator: f.liquidity,
          size_in_quote: false,
          user_id: "user-1",
          side: f.side
        })),
        cursor: ""
      })
    }
    if (rec.method === "GET" && rec.path.startsWith(`${base}/orders/historical/`)) {
      const o = this.orders.get(decodeURIComponent(rec.path.slice(`${base}/orders/historical/`.length)))
      if (o === undefined) return answer(404, { error: "NOT_FOUND", message: "order with this orderID was not found", error_details: "" })
      return answer(200, { order: this.historical(o) })
    }
    return answer(404, { error: "NOT_FOUND", message: "Not Found", error_details: "" })
  }

  // -- the user channel ---------------------------------------------------------

  protected override onSocket(ws: WebSocket) {
    return (text: string) => {
      const m = JSON.parse(text) as { type: string; channel: string; product_ids?: Array<string>; jwt?: string }
      if (m.type !== "subscribe") return
      const problem = this.jwtProblem(m.jwt, undefined)
      if (problem !== undefined) {
        this.lastAuthFailure = problem
        return ws.send(JSON.stringify({ type: "error", message: "authentication failure" }))
      }
      ws.send(JSON.stringify({
        channel: "subscriptions",
        client_id: "",
        timestamp: new Date(this.options.now()).toISOString(),
        sequence_num: this.sequence++,
        events: [{ subscriptions: { [m.channel]: m.product_ids ?? [] } }]
      }))
      if (m.channel === "user") {
        this.subscribed.add(ws)
        this.push([...this.orders.values()].filter((o) => o.status === "OPEN"), "snapshot", ws)
      }
    }
  }
}
