/**
 * A local mock of Binance spot (REST + WebSocket API user data stream) on
 * 127.0.0.1, for the live adapter's end-to-end tests. It checks what Binance
 * checks, as documented: the API key header, the signature (HMAC-SHA256 hex,
 * or Ed25519 verified with the key's public half) over the exact query string,
 * the timestamp against `recvWindow`; it answers with Binance's documented
 * shapes and error codes, pushes `executionReport` events on the user data
 * stream, and can drop connections, hold answers past the client's timeout,
 * and rate-limit.
 *
 * The test drives the market: `fill(clientOrderId, qty, price)` executes part
 * of a resting order (pushed on the stream unless the stream is down, and
 * listed by /api/v3/myTrades either way).
 */
import { createHmac, createPublicKey, verify } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { WebSocket } from "ws"
import DecimalJs from "decimal.js"
import { MockVenueServer } from "./MockVenueServer.js"

export interface MockOrder {
  symbol: string
  orderId: number
  clientOrderId: string
  side: "BUY" | "SELL"
  type: string
  timeInForce: string
  price: string
  origQty: string
  executedQty: string
  status: string
  time: number
  updateTime: number
}

export interface MockTrade {
  symbol: string
  id: number
  orderId: number
  price: string
  qty: string
  commission: string
  commissionAsset: string
  time: number
  isMaker: boolean
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
}

export interface BinanceMockOptions {
  readonly apiKey: string
  readonly hmacSecret?: string
  /** PEM public key: Ed25519 signatures are verified with it. */
  readonly ed25519PublicKey?: string
  /** The server's clock (ms): the test's clock, so recvWindow checks follow TestClock. */
  readonly now: () => number
  /** The price a market order fills at, per venue symbol. */
  readonly marketPrice?: Record<string, string>
  /** The best ask and bid per venue symbol (LIMIT_MAKER crossing check). */
  readonly book?: Record<string, { readonly bid: string; readonly ask: string }>
}

const D = (s: string | number) => new DecimalJs(s)

export class BinanceMock extends MockVenueServer {
  readonly orders = new Map<string, MockOrder>()
  readonly trades: Array<MockTrade> = []
  readonly requests: Array<RecordedRequest> = []
  private failNextPlace: { code: number; msg: string } | undefined
  private rateLimitNext: { status: number; retryAfter: string } | undefined
  private nextOrderId = 1000
  private nextTradeId = 5000

  constructor(readonly options: BinanceMockOptions) {
    super("/ws-api/v3")
  }

  rejectNextOrder(code: number, msg: string) {
    this.failNextPlace = { code, msg }
  }
  rateLimit(status: number, retryAfterSeconds: number) {
    this.rateLimitNext = { status, retryAfter: String(retryAfterSeconds) }
  }
  /** Closes every user data stream connection (the client reconnects). */
  get streamSubscribers() {
    return this.subscribed.size
  }
  /** Connections open now (subscribed or not). */
  get streamConnections() {
    return this.sockets.size
  }
  /** Sends a frame as it is to every subscribed connection (hostile-input tests). */
  sendRaw(text: string) {
    for (const ws of this.subscribed) ws.send(text)
  }
  placements(clientOrderId: string) {
    return this.requests.filter((r) => r.method === "POST" && r.path === "/api/v3/order" && new URLSearchParams(r.query).get("newClientOrderId") === clientOrderId).length
  }

  /** Executes `qty` of a resting order at `price` (pushed on the stream if subscribed). */
  fill(clientOrderId: string, qty: string, price: string): void {
    const o = this.orders.get(clientOrderId)
    if (o === undefined) throw new Error(`mock: no order ${clientOrderId}`)
    this.execute(o, qty, price, true)
  }

  private execute(o: MockOrder, qty: string, price: string, maker: boolean): MockTrade {
    const now = this.options.now()
    o.executedQty = D(o.executedQty).add(qty).toFixed()
    o.status = D(o.executedQty).gte(o.origQty) ? "FILLED" : "PARTIALLY_FILLED"
    o.updateTime = now
    const t: MockTrade = {
      symbol: o.symbol,
      id: this.nextTradeId++,
      orderId: o.orderId,
      price,
      qty,
      commission: D(qty).mul(price).mul("0.001").toFixed(),
      commissionAsset: o.symbol.endsWith("USDT") ? "USDT" : "BNB",
      time: now,
      isMaker: maker
    }
    this.trades.push(t)
    this.push(o, "TRADE", t)
    return t
  }

  cancelAtVenue(clientOrderId: string) {
    const o = this.orders.get(clientOrderId)!
    o.status = "CANCELED"
    o.updateTime = this.options.now()
    this.push(o, "CANCELED")
  }

  private push(o: MockOrder, x: string, t?: MockTrade) {
    const event = {
      e: "executionReport",
      E: this.options.now(),
      s: o.symbol,
      c: x === "CANCELED" ? `web_${o.orderId}` : o.clientOrderId,
      S: o.side,
      o: o.type,
      f: o.timeInForce,
      q: o.origQty,
      p: o.price,
      P: "0.00000000",
      F: "0.00000000",
      g: -1,
      C: x === "CANCELED" ? o.clientOrderId : "",
      x,
      X: o.status,
      r: "NONE",
      i: o.orderId,
      l: t?.qty ?? "0.00000000",
      z: o.executedQty,
      L: t?.price ?? "0.00000000",
      n: t?.commission ?? "0",
      N: t?.commissionAsset ?? null,
      T: t?.time ?? o.updateTime,
      t: t?.id ?? -1,
      I: 1,
      w: o.status === "NEW" || o.status === "PARTIALLY_FILLED",
      m: t?.isMaker ?? false,
      M: false,
      O: o.time,
      Z: "0",
      Y: "0",
      Q: "0",
      W: o.time,
      V: "NONE"
    }
    const text = JSON.stringify({ subscriptionId: 0, event })
    for (const ws of this.subscribed) ws.send(text)
  }

  // -- HTTP -----------------------------------------------------------------

  protected override onHttp(req: IncomingMessage, body: string, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://x")
    const query = url.search.startsWith("?") ? url.search.slice(1) : ""
    const rec: RecordedRequest = { method: req.method ?? "", path: url.pathname, query, headers: req.headers, body }
    this.requests.push(rec)
    const op = `${rec.method} ${rec.path}`
    this.serve(res, op, (answer) => this.route(rec, answer))
  }

  /** The request weight used, as Binance reports it on every answer. */
  protected override answerHeaders() {
    return { "x-mbx-used-weight-1m": String(this.requests.length) }
  }

  private verifySigned(rec: RecordedRequest): { code: number; msg: string } | undefined {
    if (rec.headers["x-mbx-apikey"] !== this.options.apiKey) return { code: -2015, msg: "Invalid API-key, IP, or permissions for action." }
    const i = rec.query.lastIndexOf("&signature=")
    if (i < 0) return { code: -1102, msg: "Mandatory parameter 'signature' was not sent, was empty/null, or malformed." }
    const payload = rec.query.slice(0, i)
    const signature = decodeURIComponent(rec.query.slice(i + "&signature=".length))
    const ok = this.options.hmacSecret !== undefined
      ? createHmac("sha256", this.options.hmacSecret).update(payload).digest("hex") === signature.toLowerCase()
      : verify(null, Buffer.from(payload, "ascii"), createPublicKey(this.options.ed25519PublicKey!), Buffer.from(signature, "base64"))
    if (!ok) return { code: -1022, msg: "Signature for this request is not valid." }
    const params = new URLSearchParams(payload)
    const ts = Number(params.get("timestamp"))
    const recvWindow = Number(params.get("recvWindow") ?? 5000)
    const server = this.options.now()
    if (!(ts < server + 1000 && server - ts <= recvWindow)) {
      return { code: -1021, msg: "Timestamp for this request is outside of the recvWindow." }
    }
    return undefined
  }

  private route(rec: RecordedRequest, answer: (status: number, payload: unknown, headers?: Record<string, string>) => void) {
    if (this.rateLimitNext !== undefined) {
      const r = this.rateLimitNext
      this.rateLimitNext = undefined
      return answer(r.status, { code: -1003, msg: "Too many requests; current limit is 6000 request weight per 1 MINUTE." }, { "retry-after": r.retryAfter })
    }
    if (rec.path === "/api/v3/time") return answer(200, { serverTime: this.options.now() })
    if (rec.path === "/api/v3/exchangeInfo") {
      const symbols = JSON.parse(new URLSearchParams(rec.query).get("symbols") ?? "[]") as Array<string>
      return answer(200, {
        timezone: "UTC",
        serverTime: this.options.now(),
        rateLimits: [],
        symbols: symbols.map((s) => ({
          symbol: s,
          status: "TRADING",
          baseAsset: s.replace(/USDT$/, ""),
          quoteAsset: "USDT",
          filters: [
            { filterType: "PRICE_FILTER", minPrice: "0.01000000", maxPrice: "1000000.00000000", tickSize: "0.01000000" },
            { filterType: "LOT_SIZE", minQty: "0.00001000", maxQty: "9000.00000000", stepSize: "0.00001000" },
            { filterType: "NOTIONAL", minNotional: "5.00000000", applyMinToMarket: true, maxNotional: "9000000.00000000", applyMaxToMarket: false, avgPriceMins: 5 }
          ]
        }))
      })
    }
    const bad = this.verifySigned(rec)
    if (bad !== undefined) return answer(bad.code === -1022 || bad.code === -2015 ? 401 : 400, bad)
    const p = new URLSearchParams(rec.query)
    const now = this.options.now()
    const byCid = (cid: string | null, symbol: string | null) => {
      const o = cid === null ? undefined : this.orders.get(cid)
      return o !== undefined && o.symbol === symbol ? o : undefined
    }
    if (rec.path === "/api/v3/order" && rec.method === "POST") {
      const cid = p.get("newClientOrderId")!
      if (this.failNextPlace !== undefined) {
        const f = this.failNextPlace
        this.failNextPlace = undefined
        return answer(400, f)
      }
      const existing = this.orders.get(cid)
      if (existing !== undefined && (existing.status === "NEW" || existing.status === "PARTIALLY_FILLED")) {
        return answer(400, { code: -2010, msg: "Duplicate order sent." })
      }
      const symbol = p.get("symbol")!
      const type = p.get("type")!
      const side = p.get("side") as "BUY" | "SELL"
      const price = p.get("price") ?? "0.00000000"
      const book = this.options.book?.[symbol]
      if (type === "LIMIT_MAKER" && book !== undefined &&
        ((side === "BUY" && D(price).gte(book.ask)) || (side === "SELL" && D(price).lte(book.bid)))) {
        return answer(400, { code: -2010, msg: "Order would immediately match and take." })
      }
      const o: MockOrder = {
        symbol,
        orderId: this.nextOrderId++,
        clientOrderId: cid,
        side,
        type,
        timeInForce: p.get("timeInForce") ?? "GTC",
        price,
        origQty: p.get("quantity")!,
        executedQty: "0.00000000",
        status: "NEW",
        time: now,
        updateTime: now
      }
      this.orders.set(cid, o)
      this.push(o, "NEW")
      const fills: Array<MockTrade> = []
      if (type === "MARKET") {
        const px = this.options.marketPrice?.[symbol] ?? "100"
        const half = D(o.origQty).div(2).toFixed()
        fills.push(this.execute(o, half, px, false))
        fills.push(this.execute(o, D(o.origQty).sub(half).toFixed(), px, false))
      }
      return answer(200, {
        symbol,
        orderId: o.orderId,
        orderListId: -1,
        clientOrderId: cid,
        transactTime: now,
        price: o.price,
        origQty: o.origQty,
        executedQty: o.executedQty,
        origQuoteOrderQty: "0.00000000",
        cummulativeQuoteQty: "0",
        status: o.status,
        timeInForce: o.timeInForce,
        type,
        side,
        workingTime: now,
        selfTradePreventionMode: "NONE",
        fills: fills.map((t) => ({ price: t.price, qty: t.qty, commission: t.commission, commissionAsset: t.commissionAsset, tradeId: t.id }))
      })
    }
    if (rec.path === "/api/v3/order" && rec.method === "DELETE") {
      const o = byCid(p.get("origClientOrderId"), p.get("symbol"))
      if (o === undefined || (o.status !== "NEW" && o.status !== "PARTIALLY_FILLED")) {
        return answer(400, { code: -2011, msg: "Unknown order sent." })
      }
      o.status = "CANCELED"
      o.updateTime = now
      this.push(o, "CANCELED")
      return answer(200, {
        symbol: o.symbol,
        origClientOrderId: o.clientOrderId,
        orderId: o.orderId,
        orderListId: -1,
        clientOrderId: `cancel_${o.orderId}`,
        transactTime: now,
        price: o.price,
        origQty: o.origQty,
        executedQty: o.executedQty,
        cummulativeQuoteQty: "0",
        status: "CANCELED",
        timeInForce: o.timeInForce,
        type: o.type,
        side: o.side,
        selfTradePreventionMode: "NONE"
      })
    }
    if (rec.path === "/api/v3/order" && rec.method === "GET") {
      const o = byCid(p.get("origClientOrderId"), p.get("symbol"))
      if (o === undefined) return answer(400, { code: -2013, msg: "Order does not exist." })
      return answer(200, { ...o, orderListId: -1, cummulativeQuoteQty: "0", stopPrice: "0", icebergQty: "0", isWorking: true, origQuoteOrderQty: "0", workingTime: o.time, selfTradePreventionMode: "NONE" })
    }
    if (rec.path === "/api/v3/order/amend/keepPriority" && rec.method === "PUT") {
      const o = byCid(p.get("origClientOrderId"), p.get("symbol"))
      if (o === undefined || (o.status !== "NEW" && o.status !== "PARTIALLY_FILLED")) return answer(400, { code: -2013, msg: "Order does not exist." })
      const newQty = p.get("newQty")!
      if (D(newQty).gte(o.origQty)) return answer(400, { code: -2038, msg: "The requested action would change no state; rejecting." })
      o.origQty = newQty
      o.updateTime = now
      this.push(o, "REPLACED")
      return answer(200, {
        transactTime: now,
        executionId: 1,
        amendedOrder: { symbol: o.symbol, orderId: o.orderId, orderListId: -1, origClientOrderId: o.clientOrderId, clientOrderId: `amend_${o.orderId}`, price: o.price, qty: o.origQty, executedQty: o.executedQty, preventedQty: "0", quoteOrderQty: "0", cumulativeQuoteQty: "0", status: o.status, timeInForce: o.timeInForce, type: o.type, side: o.side, workingTime: o.time, selfTradePreventionMode: "NONE" }
      })
    }
    if (rec.path === "/api/v3/openOrders") {
      const symbol = p.get("symbol")
      return answer(200, [...this.orders.values()].filter((o) => (symbol === null || o.symbol === symbol) && (o.status === "NEW" || o.status === "PARTIALLY_FILLED")))
    }
    if (rec.path === "/api/v3/myTrades") {
      const symbol = p.get("symbol")
      const orderId = p.get("orderId")
      const start = Number(p.get("startTime") ?? 0)
      return answer(200, this.trades.filter((t) => t.symbol === symbol && (orderId === null || String(t.orderId) === orderId) && t.time >= start)
        .map((t) => ({ ...t, orderListId: -1, quoteQty: D(t.qty).mul(t.price).toFixed(), isBuyer: this.sideOf(t.orderId) === "BUY", isBestMatch: true })))
    }
    return answer(404, { code: -1000, msg: "An unknown error occurred while processing the request." })
  }

  private sideOf(orderId: number) {
    for (const o of this.orders.values()) if (o.orderId === orderId) return o.side
    return "BUY"
  }

  // -- WebSocket API ----------------------------------------------------------

  protected override onSocket(ws: WebSocket) {
    return (text: string) => {
      const req = JSON.parse(text) as { id: string; method: string; params?: { apiKey?: string; timestamp?: number; signature?: string } }
      if (req.method === "ping") return ws.send(JSON.stringify({ id: req.id, status: 200, result: {} }))
      if (req.method === "userDataStream.subscribe.signature") {
        const prm = req.params ?? {}
        const payload = `apiKey=${prm.apiKey}&timestamp=${prm.timestamp}`
        const ok = prm.apiKey === this.options.apiKey && (this.options.hmacSecret !== undefined
          ? createHmac("sha256", this.options.hmacSecret).update(payload).digest("hex") === prm.signature
          : verify(null, Buffer.from(payload), createPublicKey(this.options.ed25519PublicKey!), Buffer.from(prm.signature ?? "", "base64")))
        if (!ok) return ws.send(JSON.stringify({ id: req.id, status: 400, error: { code: -1022, msg: "Signature for this request is not valid." } }))
        this.subscribed.add(ws)
        return ws.send(JSON.stringify({ id: req.id, status: 200, result: { subscriptionId: 0 } }))
      }
      ws.send(JSON.stringify({ id: req.id, status: 400, error: { code: -1100, msg: "unknown method" } }))
    }
  }
}
