/**
 * A local mock of Kraken spot (REST + WebSocket v2 private channel) on
 * 127.0.0.1, for the Kraken adapter's end-to-end tests. It checks what Kraken
 * checks, as documented (https://docs.kraken.com/api/docs/guides/spot-rest-auth):
 * the API-Key header, API-Sign recomputed as base64(HMAC-SHA512(base64-decoded
 * secret, path + SHA-256(nonce + body))), nonces strictly increasing per key
 * ("EAPI:Invalid nonce" otherwise); it answers with Kraken's documented shapes
 * (`{ error: [...], result }`, refusals as error strings with HTTP 200), issues
 * WebSocket tokens (GetWebSocketsToken) and accepts only those on the
 * `executions` subscription, pushes order updates and trades there, and can
 * drop connections, hold answers past the client's timeout, lose requests and
 * rate-limit ("EAPI:Rate limit exceeded").
 *
 * The test drives the market: `fill(clOrdId, qty, price)` executes part of a
 * resting order (pushed on the stream when subscribed, listed by TradesHistory
 * and QueryTrades either way).
 */
import { createHash, createHmac, randomBytes } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { WebSocket } from "ws"
import DecimalJs from "decimal.js"
import { MockVenueServer } from "./live/MockVenueServer.js"

export interface KrakenMockOrder {
  txid: string
  clOrdId: string
  pair: string
  wsSymbol: string
  side: "buy" | "sell"
  ordertype: "limit" | "market"
  price: string
  vol: string
  volExec: string
  cost: string
  status: "pending" | "open" | "closed" | "canceled" | "expired"
  oflags: string
  timeinforce: string
  opentm: number
  trades: Array<string>
}

export interface KrakenMockTrade {
  id: string
  ordertxid: string
  pair: string
  time: number
  type: "buy" | "sell"
  ordertype: string
  price: string
  vol: string
  cost: string
  fee: string
  maker: boolean
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
  readonly params: URLSearchParams
}

export interface KrakenMockOptions {
  readonly apiKey: string
  /** The base64 private key the mock verifies API-Sign with. */
  readonly apiSecret: string
  /** The server's clock (ms): the test's clock. */
  readonly now: () => number
  /** Market orders fill here, per REST pair ("XBTUSD"). */
  readonly marketPrice?: Record<string, string>
  /** Best bid and ask per REST pair (post-only crossing check). */
  readonly book?: Record<string, { readonly bid: string; readonly ask: string }>
}

const D = (s: string | number) => new DecimalJs(s)
const ws2rest = (ws: string) => ws.split("/").map((a) => (a === "BTC" ? "XBT" : a)).join("")
const rest2ws = (pair: string) => pair.startsWith("XBT") ? `BTC/${pair.slice(3)}` : `${pair.slice(0, 3)}/${pair.slice(3)}`

export class KrakenMock extends MockVenueServer {
  readonly orders = new Map<string, KrakenMockOrder>()
  readonly trades: Array<KrakenMockTrade> = []
  readonly requests: Array<RecordedRequest> = []
  /** Order requests taken on the WebSocket (add_order, cancel_order, amend_order), in order. */
  readonly wsOrderRequests: Array<{ readonly method: string; readonly clOrdId: string }> = []
  private readonly tokens = new Set<string>()
  private lastNonce = 0n
  private failNextPlace: Array<string> | undefined
  private rateLimitNext = 0
  private nextId = 1

  constructor(readonly options: KrakenMockOptions) {
    super("/v2")
  }

  rejectNextOrder(...errors: Array<string>) {
    this.failNextPlace = errors
  }
  /** The next `n` private requests are refused with "EAPI:Rate limit exceeded". */
  rateLimit(n = 1) {
    this.rateLimitNext = n
  }
  get streamSubscribers() {
    return this.subscribed.size
  }
  placements(clOrdId: string) {
    return this.requests.filter((r) => r.path === "/0/private/AddOrder" && r.params.get("cl_ord_id") === clOrdId).length +
      this.wsOrderRequests.filter((r) => r.method === "add_order" && r.clOrdId === clOrdId).length
  }
  calls(method: string) {
    return this.requests.filter((r) => r.path === `/0/private/${method}`).length
  }
  byCl(clOrdId: string): KrakenMockOrder | undefined {
    let found: KrakenMockOrder | undefined
    for (const o of this.orders.values()) if (o.clOrdId === clOrdId) found = o
    return found
  }

  /** Executes `qty` of a resting order at `price` (a maker fill). */
  fill(clOrdId: string, qty: string, price: string): void {
    const o = this.byCl(clOrdId)
    if (o === undefined) throw new Error(`mock: no order ${clOrdId}`)
    this.execute(o, qty, price, true)
  }

  cancelAtVenue(clOrdId: string) {
    const o = this.byCl(clOrdId)!
    o.status = "canceled"
    this.push([{ ...this.execBase(o), exec_type: "canceled", order_status: "canceled", reason: "User requested" }])
  }

  private execute(o: KrakenMockOrder, qty: string, price: string, maker: boolean): KrakenMockTrade {
    const now = this.options.now()
    o.volExec = D(o.volExec).add(qty).toFixed()
    o.cost = D(o.cost).add(D(qty).mul(price)).toFixed()
    const done = D(o.volExec).gte(o.vol)
    o.status = done ? "closed" : "open"
    const t: KrakenMockTrade = {
      id: `T${String(this.nextId++).padStart(5, "0")}-ABCDE-FGHIJ`,
      ordertxid: o.txid,
      pair: o.pair,
      time: now / 1000,
      type: o.side,
      ordertype: o.ordertype,
      price,
      vol: qty,
      cost: D(qty).mul(price).toFixed(),
      fee: D(qty).mul(price).mul("0.0026").toFixed(8),
      maker
    }
    this.trades.push(t)
    o.trades.push(t.id)
    this.push([{
      ...this.execBase(o),
      exec_type: "trade",
      order_status: done ? "filled" : "partially_filled",
      trade_id: this.trades.length,
      exec_id: t.id,
      last_qty: Number(qty),
      last_price: Number(price),
      liquidity_ind: maker ? "m" : "t",
      fees: [{ asset: "USD", qty: Number(t.fee) }]
    }])
    return t
  }

  private execBase(o: KrakenMockOrder) {
    return {
      order_id: o.txid,
      cl_ord_id: o.clOrdId,
      symbol: o.wsSymbol,
      side: o.side,
      order_type: o.ordertype,
      order_qty: Number(o.vol),
      ...(o.ordertype === "limit" ? { limit_price: Number(o.price) } : {}),
      cum_qty: Number(o.volExec),
      avg_price: D(o.volExec).gt(0) ? Number(D(o.cost).div(o.volExec).toFixed(8)) : 0,
      timestamp: new Date(this.options.now()).toISOString()
    }
  }

  private push(data: Array<Record<string, unknown>>, type: "update" | "snapshot" = "update", to?: WebSocket) {
    // Kraken writes numbers as JSON numbers (the adapter reads them as the exact text)
    const text = JSON.stringify({ channel: "executions", type, data, sequence: this.nextId++ })
    for (const ws of to === undefined ? this.subscribed : [to]) ws.send(text)
  }

  private info(o: KrakenMockOrder) {
    return {
      refid: null,
      userref: 0,
      cl_ord_id: o.clOrdId,
      status: o.status,
      reason: o.status === "canceled" ? "User requested" : null,
      opentm: o.opentm / 1000,
      closetm: o.status === "open" || o.status === "pending" ? 0 : this.options.now() / 1000,
      starttm: 0,
      expiretm: 0,
      descr: {
        pair: o.pair,
        type: o.side,
        ordertype: o.ordertype,
        price: o.ordertype === "limit" ? o.price : "0",
        price2: "0",
        leverage: "none",
        order: `${o.side} ${o.vol} ${o.pair} @ ${o.ordertype} ${o.price}`,
        close: ""
      },
      vol: D(o.vol).toFixed(8),
      vol_exec: D(o.volExec).toFixed(8),
      cost: D(o.cost).toFixed(5),
      fee: "0.00000",
      price: D(o.volExec).gt(0) ? D(o.cost).div(o.volExec).toFixed(5) : "0.00000",
      stopprice: "0.00000",
      limitprice: "0.00000",
      misc: "",
      oflags: o.oflags,
      trades: o.trades
    }
  }

  private tradeInfo(t: KrakenMockTrade) {
    return {
      ordertxid: t.ordertxid,
      postxid: "TKH2SE-M7IF5-CFI7LT",
      pair: t.pair,
      time: t.time,
      type: t.type,
      ordertype: t.ordertype,
      price: t.price,
      cost: t.cost,
      fee: t.fee,
      vol: t.vol,
      margin: "0.00000",
      misc: "",
      maker: t.maker
    }
  }

  // -- HTTP -----------------------------------------------------------------

  protected override onHttp(req: IncomingMessage, body: string, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://x")
    const params = new URLSearchParams(req.method === "POST" ? body : url.search)
    const rec: RecordedRequest = { method: req.method ?? "", path: url.pathname, headers: req.headers, body, params }
    this.requests.push(rec)
    const method = url.pathname.split("/").at(-1) ?? ""
    this.serve(res, method, (answer) => this.route(rec, method, (payload, status = 200) => answer(status, payload)))
  }

  /** Kraken's check of a private request: the key, the signature, the nonce. */
  private verify(rec: RecordedRequest): string | undefined {
    if (rec.headers["api-key"] !== this.options.apiKey) return "EAPI:Invalid key"
    const nonce = rec.params.get("nonce")
    if (nonce === null || !/^\d+$/.test(nonce)) return "EAPI:Invalid nonce"
    const expected = createHmac("sha512", Buffer.from(this.options.apiSecret, "base64"))
      .update(Buffer.concat([Buffer.from(rec.path), createHash("sha256").update(nonce + rec.body).digest()]))
      .digest("base64")
    if (rec.headers["api-sign"] !== expected) return "EAPI:Invalid signature"
    if (BigInt(nonce) <= this.lastNonce) return "EAPI:Invalid nonce"
    this.lastNonce = BigInt(nonce)
    return undefined
  }

  private route(rec: RecordedRequest, method: string, answer: (payload: unknown, status?: number) => void) {
    const ok = (result: unknown) => answer({ error: [], result })
    const err = (...error: Array<string>) => answer({ error })
    if (rec.path === "/0/public/Time") {
      const now = this.options.now()
      return ok({ unixtime: Math.floor(now / 1000), rfc1123: new Date(now).toUTCString() })
    }
    if (rec.path === "/0/public/AssetPairs") {
      return ok({
        XXBTZUSD: {
          altname: "XBTUSD",
          wsname: "XBT/USD",
          base: "XXBT",
          quote: "ZUSD",
          pair_decimals: 1,
          lot_decimals: 8,
          ordermin: "0.0001",
          costmin: "0.5",
          tick_size: "0.1",
          status: "online"
        }
      })
    }
    if (!rec.path.startsWith("/0/private/")) return answer({ error: ["EGeneral:Unknown method"] }, 404)
    if (this.rateLimitNext > 0) {
      this.rateLimitNext--
      return err("EAPI:Rate limit exceeded")
    }
    const bad = this.verify(rec)
    if (bad !== undefined) return err(bad)
    answer(this.exec(method, rec.params))
  }

  /** One private operation on the book of orders: Kraken's answer envelope. */
  private exec(method: string, p: URLSearchParams): { error: Array<string>; result?: unknown } {
    const ok = (result: unknown) => ({ error: [], result })
    const err = (...error: Array<string>) => ({ error })
    const now = this.options.now()
    const open = (o: KrakenMockOrder | undefined) => o !== undefined && (o.status === "open" || o.status === "pending")
    switch (method) {
      case "GetWebSocketsToken": {
        const token = randomBytes(16).toString("base64")
        this.tokens.add(token)
        return ok({ token, expires: 900 })
      }
      case "AddOrder": {
        if (this.failNextPlace !== undefined) {
          const f = this.failNextPlace
          this.failNextPlace = undefined
          return err(...f)
        }
        const cl = p.get("cl_ord_id") ?? ""
        if (open(this.byCl(cl))) return err("EOrder:Duplicate cl_ord_id")
        const pair = p.get("pair")!
        const side = p.get("type") as "buy" | "sell"
        const ordertype = p.get("ordertype") as "limit" | "market"
        const price = p.get("price") ?? "0"
        const oflags = p.get("oflags") ?? ""
        const book = this.options.book?.[pair]
        if (oflags.split(",").includes("post") && book !== undefined &&
          ((side === "buy" && D(price).gte(book.ask)) || (side === "sell" && D(price).lte(book.bid)))) {
          return err("EOrder:Post only order")
        }
        const o: KrakenMockOrder = {
          txid: `O${String(this.nextId++).padStart(5, "0")}-QWERT-YUIOPA`,
          clOrdId: cl,
          pair,
          wsSymbol: rest2ws(pair),
          side,
          ordertype,
          price,
          vol: p.get("volume")!,
          volExec: "0",
          cost: "0",
          status: "open",
          oflags,
          timeinforce: p.get("timeinforce") ?? "GTC",
          opentm: now,
          trades: []
        }
        this.orders.set(o.txid, o)
        this.push([{ ...this.execBase(o), exec_type: "pending_new", order_status: "pending_new" }])
        this.push([{ ...this.execBase(o), exec_type: "new", order_status: "new" }])
        if (ordertype === "market") {
          const px = this.options.marketPrice?.[pair] ?? "100"
          const half = D(o.vol).div(2).toFixed()
          this.execute(o, half, px, false)
          this.execute(o, D(o.vol).sub(half).toFixed(), px, false)
        }
        return ok({ descr: { order: `${side} ${o.vol} ${pair} @ ${ordertype} ${price}` }, txid: [o.txid] })
      }
      case "CancelOrder": {
        const o = p.has("cl_ord_id") ? this.byCl(p.get("cl_ord_id")!) : this.orders.get(p.get("txid") ?? "")
        if (o === undefined || !open(o)) return err("EOrder:Unknown order")
        o.status = "canceled"
        this.push([{ ...this.execBase(o), exec_type: "canceled", order_status: "canceled", reason: "User requested" }])
        return ok({ count: 1 })
      }
      case "AmendOrder": {
        const o = this.byCl(p.get("cl_ord_id") ?? "")
        if (o === undefined || !open(o)) return err("EOrder:Unknown order")
        const qty = p.get("order_qty")
        const price = p.get("limit_price")
        if (qty !== null && D(qty).lte(o.volExec)) return err("EGeneral:Invalid arguments:order_qty")
        if (qty !== null) o.vol = qty
        if (price !== null) o.price = price
        this.push([{ ...this.execBase(o), exec_type: "amended", order_status: D(o.volExec).gt(0) ? "partially_filled" : "new" }])
        return ok({ amend_id: `TAMEND-${this.nextId++}` })
      }
      case "QueryOrders": {
        const out: Record<string, unknown> = {}
        if (p.has("cl_ord_id")) {
          const o = this.byCl(p.get("cl_ord_id")!)
          if (o === undefined) return err("EOrder:Unknown order")
          out[o.txid] = this.info(o)
        } else {
          for (const id of (p.get("txid") ?? "").split(",")) {
            const o = this.orders.get(id)
            if (o === undefined) return err("EOrder:Invalid order")
            out[id] = this.info(o)
          }
        }
        return ok(out)
      }
      case "OpenOrders": {
        const out: Record<string, unknown> = {}
        for (const o of this.orders.values()) if (open(o)) out[o.txid] = this.info(o)
        return ok({ open: out })
      }
      case "QueryTrades": {
        const out: Record<string, unknown> = {}
        for (const id of (p.get("txid") ?? "").split(",")) {
          const t = this.trades.find((x) => x.id === id)
          if (t !== undefined) out[id] = this.tradeInfo(t)
        }
        return ok(out)
      }
      case "TradesHistory": {
        const start = Number(p.get("start") ?? 0)
        const ofs = Number(p.get("ofs") ?? 0)
        const all = this.trades.filter((t) => t.time > start).reverse()
        const page = all.slice(ofs, ofs + 50)
        return ok({ trades: Object.fromEntries(page.map((t) => [t.id, this.tradeInfo(t)])), count: all.length })
      }
      default:
        return err("EGeneral:Unknown method")
    }
  }

  // -- WebSocket v2 (ws-auth) --------------------------------------------------

  protected override onSocket(ws: WebSocket) {
    return (text: string) => {
      const req = JSON.parse(text) as { method: string; req_id?: number; params?: { channel?: string; token?: string } }
      if (req.method === "ping") return ws.send(JSON.stringify({ method: "pong", req_id: req.req_id }))
      const orderMethods: Record<string, string> = { add_order: "AddOrder", cancel_order: "CancelOrder", amend_order: "AmendOrder" }
    if (orderMethods[req.method] !== undefined) {
      const prm = (req.params ?? {}) as Record<string, unknown>
      const reply = (payload: Record<string, unknown>) => {
        const send = () => ws.send(JSON.stringify({ method: req.method, req_id: req.req_id, ...payload, time_in: new Date(this.options.now()).toISOString() }))
        if (this.holdNext.delete(req.method)) this.held.push(send)
        else send()
      }
      if (this.loseNext.delete(req.method)) return
      if (typeof prm.token !== "string" || !this.tokens.has(prm.token)) return reply({ success: false, error: "ESession:Invalid session" })
      if (this.rateLimitNext > 0) {
        this.rateLimitNext--
        return reply({ success: false, error: "EOrder:Rate limit exceeded" })
      }
      // the v2 fields in REST's terms, then the same matching
      const p = new URLSearchParams()
      const cl = Array.isArray(prm.cl_ord_id) ? String(prm.cl_ord_id[0]) : String(prm.cl_ord_id ?? "")
      if (req.method === "add_order") {
        if (this.failNextPlace !== undefined) {
          const f = this.failNextPlace
          this.failNextPlace = undefined
          return reply({ success: false, error: f[0] })
        }
        p.set("ordertype", String(prm.order_type))
        p.set("type", String(prm.side))
        p.set("volume", String(prm.order_qty))
        p.set("pair", ws2rest(String(prm.symbol)))
        if (prm.limit_price !== undefined) p.set("price", String(prm.limit_price))
        if (prm.time_in_force !== undefined) p.set("timeinforce", String(prm.time_in_force).toUpperCase())
        if (prm.post_only === true) p.set("oflags", "post")
      }
      if (req.method === "amend_order") {
        if (prm.order_qty !== undefined) p.set("order_qty", String(prm.order_qty))
        if (prm.limit_price !== undefined) p.set("limit_price", String(prm.limit_price))
      }
      p.set("cl_ord_id", cl)
      this.wsOrderRequests.push({ method: req.method, clOrdId: cl })
      const out = this.exec(orderMethods[req.method]!, p)
      if (out.error.length > 0) return reply({ success: false, error: out.error[0] })
      const r = out.result as { txid?: Array<string>; amend_id?: string }
      return reply({
        success: true,
        result: req.method === "add_order" ? { order_id: r.txid![0], cl_ord_id: cl } : req.method === "amend_order" ? { amend_id: r.amend_id, cl_ord_id: cl } : { cl_ord_id: cl }
      })
    }
    if (req.method === "subscribe" && req.params?.channel === "executions") {
        if (req.params.token === undefined || !this.tokens.has(req.params.token)) {
          return ws.send(JSON.stringify({ method: "subscribe", req_id: req.req_id, success: false, error: "ESession:Invalid session" }))
        }
        this.subscribed.add(ws)
        ws.send(JSON.stringify({ method: "subscribe", req_id: req.req_id, success: true, result: { channel: "executions", snapshot: true } }))
        const snapshot = [...this.orders.values()].filter((o) => o.status === "open").map((o) => ({
          ...this.execBase(o),
          exec_type: "new",
          order_status: D(o.volExec).gt(0) ? "partially_filled" : "new"
        }))
        return this.push(snapshot, "snapshot", ws)
      }
      ws.send(JSON.stringify({ method: req.method, req_id: req.req_id, success: false, error: "EGeneral:Invalid arguments" }))
    }
  }
}

export { rest2ws, ws2rest }
