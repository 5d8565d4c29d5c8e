/**
 * A local mock of OKX v5 spot trading (REST + private WebSocket) on
 * 127.0.0.1. It checks what OKX documents: `OK-ACCESS-KEY`, the passphrase,
 * `OK-ACCESS-SIGN` = base64(HMAC-SHA256(secret, timestamp + method +
 * requestPath + body)), the timestamp within 30 s; the WebSocket `login` sign
 * over `timestamp + "GET/users/self/verify"`. It answers in OKX's
 * `{ code, msg, data }` envelope with per-order `sCode`/`sMsg`, pushes the
 * `orders` channel, and can drop connections, hold answers, lose requests
 * and rate-limit (HTTP 429, code 50011).
 */
import { createHmac } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { WebSocket } from "ws"
import DecimalJs from "decimal.js"
import { MockVenueServer } from "./MockVenueServer.js"
import type { RecordedRequest } from "./BinanceMock.js"

export interface OkxMockOrder {
  instId: string
  ordId: string
  clOrdId: string
  side: "buy" | "sell"
  ordType: string
  px: string
  sz: string
  accFillSz: string
  state: string
  cTime: string
  uTime: string
}

export interface OkxMockFill {
  instId: string
  tradeId: string
  ordId: string
  clOrdId: string
  fillPx: string
  fillSz: string
  fee: string
  feeCcy: string
  execType: string
  side: string
  ts: string
}

export interface OkxMockOptions {
  readonly apiKey: string
  readonly secret: string
  readonly passphrase: string
  readonly now: () => number
  readonly marketPrice?: Record<string, string>
}

const D = (s: string | number) => new DecimalJs(s)

export class OkxMock extends MockVenueServer {
  readonly orders = new Map<string, OkxMockOrder>()
  readonly fills: Array<OkxMockFill> = []
  readonly requests: Array<RecordedRequest> = []
  private failNextPlace: { sCode: string; sMsg: string } | undefined
  private rateLimitNext = false
  private nextOrderId = 700000
  private nextTradeId = 900

  constructor(readonly options: OkxMockOptions) {
    super("/ws/v5/private")
  }

  rejectNextOrder(sCode: string, sMsg: string) {
    this.failNextPlace = { sCode, sMsg }
  }
  rateLimit() {
    this.rateLimitNext = true
  }
  get streamSubscribers() {
    return this.subscribed.size
  }
  /** Sends a frame as it is to every subscribed connection (hostile-input tests). */
  sendRaw(text: string) {
    for (const ws of this.subscribed) ws.send(text)
  }
  placements(clOrdId: string) {
    return this.requests.filter((r) => r.method === "POST" && r.path === "/api/v5/trade/order" && (JSON.parse(r.body) as { clOrdId?: string }).clOrdId === clOrdId).length
  }

  fill(clOrdId: string, sz: string, px: string): void {
    const o = this.orders.get(clOrdId)
    if (o === undefined) throw new Error(`mock: no order ${clOrdId}`)
    this.execute(o, sz, px, "M")
  }

  cancelAtVenue(clOrdId: string) {
    const o = this.orders.get(clOrdId)!
    o.state = "canceled"
    o.uTime = String(this.options.now())
    this.push(o, {})
  }

  private execute(o: OkxMockOrder, sz: string, px: string, execType: string): OkxMockFill {
    const now = String(this.options.now())
    o.accFillSz = D(o.accFillSz).add(sz).toFixed()
    o.state = D(o.accFillSz).gte(o.sz) ? "filled" : "partially_filled"
    o.uTime = now
    const f: OkxMockFill = {
      instId: o.instId,
      tradeId: String(this.nextTradeId++),
      ordId: o.ordId,
      clOrdId: o.clOrdId,
      fillPx: px,
      fillSz: sz,
      fee: D(sz).mul(px).mul("-0.001").toFixed(),
      feeCcy: o.instId.split("-")[1]!,
      execType,
      side: o.side,
      ts: now
    }
    this.fills.push(f)
    this.push(o, { fillPx: f.fillPx, fillSz: f.fillSz, tradeId: f.tradeId, fillTime: now, fillFee: f.fee, fillFeeCcy: f.feeCcy, execType })
    return f
  }

  private view(o: OkxMockOrder) {
    return {
      instType: "SPOT",
      instId: o.instId,
      ccy: "",
      ordId: o.ordId,
      clOrdId: o.clOrdId,
      tag: "",
      px: o.px,
      sz: o.sz,
      ordType: o.ordType,
      side: o.side,
      tdMode: "cash",
      accFillSz: o.accFillSz,
      avgPx: "",
      state: o.state,
      fee: "0",
      feeCcy: o.instId.split("-")[1]!,
      cancelSource: o.state === "canceled" ? "1" : "",
      cTime: o.cTime,
      uTime: o.uTime,
      fillPx: "",
      fillSz: "0",
      tradeId: "",
      fillTime: ""
    }
  }

  private push(o: OkxMockOrder, extra: Record<string, string>) {
    const text = JSON.stringify({ arg: { channel: "orders", instType: "SPOT", uid: "44705892343619584" }, data: [{ ...this.view(o), ...extra }] })
    for (const ws of this.subscribed) ws.send(text)
  }

  protected override onHttp(req: IncomingMessage, body: string, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://x")
    const query = url.search.startsWith("?") ? url.search.slice(1) : ""
    const rec: RecordedRequest = { method: req.method ?? "", path: url.pathname, query, headers: req.headers, body }
    this.requests.push(rec)
    const op = `${rec.method} ${rec.path}`
    this.serve(res, op, (answer) => this.route(rec, answer))
  }

  private verify(rec: RecordedRequest): { code: string; msg: string } | undefined {
    const h = rec.headers
    if (h["ok-access-key"] !== this.options.apiKey) return { code: "50111", msg: "Invalid OK-ACCESS-KEY." }
    if (h["ok-access-passphrase"] !== this.options.passphrase) return { code: "50105", msg: "Your OK-ACCESS-PASSPHRASE is incorrect." }
    const ts = String(h["ok-access-timestamp"] ?? "")
    const t = Date.parse(ts)
    if (Number.isNaN(t) || Math.abs(this.options.now() - t) > 30_000) return { code: "50102", msg: "Timestamp request expired." }
    const path = rec.query === "" ? rec.path : `${rec.path}?${rec.query}`
    const expected = createHmac("sha256", this.options.secret).update(`${ts}${rec.method}${path}${rec.body}`).digest("base64")
    if (h["ok-access-sign"] !== expected) return { code: "50113", msg: "Invalid Sign." }
    return undefined
  }

  private route(rec: RecordedRequest, answer: (status: number, payload: unknown) => void) {
    const ok = (data: ReadonlyArray<unknown>) => answer(200, { code: "0", msg: "", data })
    if (this.rateLimitNext) {
      this.rateLimitNext = false
      return answer(429, { code: "50011", msg: "Rate limit reached. Please refer to API documentation and throttle requests accordingly.", data: [] })
    }
    const p = new URLSearchParams(rec.query)
    const now = String(this.options.now())
    if (rec.path === "/api/v5/public/time") return ok([{ ts: now }])
    if (rec.path === "/api/v5/public/instruments") {
      const instId = p.get("instId")!
      return ok([{ instType: "SPOT", instId, uly: "", baseCcy: instId.split("-")[0], quoteCcy: instId.split("-")[1], tickSz: "0.1", lotSz: "0.00000001", minSz: "0.00001", state: "live", ctVal: "", listTime: "1606468572000" }])
    }
    const bad = this.verify(rec)
    if (bad !== undefined) return answer(401, { ...bad, data: [] })
    const json = rec.body === "" ? {} : JSON.parse(rec.body) as Record<string, string>
    const ack = (o: OkxMockOrder | undefined, clOrdId: string, sCode = "0", sMsg = "") =>
      answer(200, { code: sCode === "0" ? "0" : "1", msg: sCode === "0" ? "" : "All operations failed", data: [{ clOrdId, ordId: o?.ordId ?? "", tag: "", ts: now, sCode, sMsg }], inTime: now, outTime: now })
    if (rec.path === "/api/v5/trade/order" && rec.method === "POST") {
      const clOrdId = json.clOrdId!
      if (this.failNextPlace !== undefined) {
        const f = this.failNextPlace
        this.failNextPlace = undefined
        return ack(undefined, clOrdId, f.sCode, f.sMsg)
      }
      if (this.orders.has(clOrdId)) return ack(undefined, clOrdId, "51016", "Duplicated clOrdId")
      const o: OkxMockOrder = {
        instId: json.instId!,
        ordId: String(this.nextOrderId++),
        clOrdId,
        side: json.side as "buy" | "sell",
        ordType: json.ordType!,
        px: json.px ?? "",
        sz: json.sz!,
        accFillSz: "0",
        state: "live",
        cTime: now,
        uTime: now
      }
      this.orders.set(clOrdId, o)
      this.push(o, {})
      if (o.ordType === "market") {
        const px = this.options.marketPrice?.[o.instId] ?? "100"
        const half = D(o.sz).div(2).toFixed()
        this.execute(o, half, px, "T")
        this.execute(o, D(o.sz).sub(half).toFixed(), px, "T")
      }
      return ack(o, clOrdId)
    }
    if (rec.path === "/api/v5/trade/cancel-order") {
      const o = this.orders.get(json.clOrdId!)
      if (o === undefined) return ack(undefined, json.clOrdId!, "51603", "Order does not exist")
      if (o.state !== "live" && o.state !== "partially_filled") {
        return ack(o, o.clOrdId, "51400", "Cancellation failed as the order has been filled, canceled or does not exist")
      }
      o.state = "canceled"
      o.uTime = now
      this.push(o, {})
      return ack(o, o.clOrdId)
    }
    if (rec.path === "/api/v5/trade/amend-order") {
      const o = this.orders.get(json.clOrdId!)
      if (o === undefined || (o.state !== "live" && o.state !== "partially_filled")) {
        return ack(o, json.clOrdId!, "51503", "Order modification failed as the order has been filled, canceled or does not exist")
      }
      if (json.newSz !== undefined) o.sz = json.newSz
      if (json.newPx !== undefined) o.px = json.newPx
      o.uTime = now
      this.push(o, { amendResult: "0", reqId: "" })
      return answer(200, { code: "0", msg: "", data: [{ clOrdId: o.clOrdId, ordId: o.ordId, reqId: "", ts: now, sCode: "0", sMsg: "" }] })
    }
    if (rec.path === "/api/v5/trade/order" && rec.method === "GET") {
      const o = this.orders.get(p.get("clOrdId") ?? "")
      if (o === undefined || o.instId !== p.get("instId")) return answer(200, { code: "51603", msg: "Order does not exist", data: [] })
      return ok([this.view(o)])
    }
    if (rec.path === "/api/v5/trade/orders-pending") {
      const instId = p.get("instId")
      return ok([...this.orders.values()].filter((o) => (instId === null || o.instId === instId) && (o.state === "live" || o.state === "partially_filled")).map((o) => this.view(o)))
    }
    if (rec.path === "/api/v5/trade/fills") {
      const instId = p.get("instId")
      const ordId = p.get("ordId")
      const begin = Number(p.get("begin") ?? 0)
      // newest first, as OKX lists them
      return ok(this.fills.filter((f) => f.instId === instId && (ordId === null || f.ordId === ordId) && Number(f.ts) > begin).reverse()
        .map((f) => ({ ...f, instType: "SPOT", billId: `b${f.tradeId}`, tag: "", posSide: "net", fillIdxPx: "", fillPnl: "0", fillMarkPx: "", fillPxVol: "", fillPxUsd: "", fillMarkVol: "", fillFwdPx: "" })))
    }
    return answer(404, { code: "50014", msg: "Unknown endpoint", data: [] })
  }

  protected override onSocket(ws: WebSocket) {
    let loggedIn = false
    return (text: string) => {
      if (text === "ping") return ws.send("pong")
      const msg = JSON.parse(text) as { op: string; args: Array<Record<string, string>> }
      if (msg.op === "login") {
        const a = msg.args[0] ?? {}
        const expected = createHmac("sha256", this.options.secret).update(`${a.timestamp}GET/users/self/verify`).digest("base64")
        const fresh = Math.abs(this.options.now() / 1000 - Number(a.timestamp)) <= 30
        if (a.apiKey !== this.options.apiKey || a.passphrase !== this.options.passphrase || a.sign !== expected || !fresh) {
          return ws.send(JSON.stringify({ event: "error", code: "60009", msg: "Login failed.", connId: "c1" }))
        }
        loggedIn = true
        return ws.send(JSON.stringify({ event: "login", code: "0", msg: "", connId: "c1" }))
      }
      if (msg.op === "subscribe") {
        if (!loggedIn) return ws.send(JSON.stringify({ event: "error", code: "60011", msg: "Please log in", connId: "c1" }))
        this.subscribed.add(ws)
        return ws.send(JSON.stringify({ event: "subscribe", arg: msg.args[0], connId: "c1" }))
      }
    }
  }
}
