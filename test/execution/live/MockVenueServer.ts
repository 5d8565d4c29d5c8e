/**
 * What every venue mock (Binance, OKX, Kraken, Coinbase) runs on: one HTTP
 * server on a free local port with the venue's WebSocket path on it, the
 * open sockets, answers held back or lost on request, and waiters woken when
 * a request or a message changes the mock's state. A mock says how it
 * answers (`onHttp`, `onSocket`); the venue's protocol stays in the mock.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { type WebSocket, WebSocketServer } from "ws"

export abstract class MockVenueServer {
  readonly wsMessages: Array<string> = []
  /** WebSocket connections accepted since start. */
  connections = 0
  port = 0
  /** Answers held back: released (or, for lost requests, dropped) by `release()`. */
  protected held: Array<() => void> = []
  /** Operations whose next request is executed with its answer held back. */
  protected holdNext = new Set<string>()
  /** Operations whose next request is recorded, never executed nor answered. */
  protected loseNext = new Set<string>()
  protected sockets = new Set<WebSocket>()
  protected subscribed = new Set<WebSocket>()
  private waiters: Array<{ pred: () => boolean; resolve: () => void }> = []
  private server!: Server
  private wss!: WebSocketServer

  constructor(private readonly wsPath: string) {}

  /** A request with its whole body: the mock records it and calls `serve` with its operation's name. */
  protected abstract onHttp(req: IncomingMessage, body: string, res: ServerResponse): void
  /**
   * A new connection: the mock keeps any per-connection state and returns
   * what handles each text message (recorded in `wsMessages` first, waiters
   * checked after).
   */
  protected abstract onSocket(ws: WebSocket): (text: string) => void

  get restUrl() {
    return `http://127.0.0.1:${this.port}`
  }
  get wsUrl() {
    return `ws://127.0.0.1:${this.port}${this.wsPath}`
  }

  start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = ""
      req.on("data", (c) => (body += c))
      req.on("end", () => this.onHttp(req, body, res))
    })
    this.wss = new WebSocketServer({ server: this.server, path: this.wsPath })
    this.wss.on("connection", (ws) => this.accept(ws))
    return new Promise((resolve) => {
      this.server.listen(0, "127.0.0.1", () => {
        this.port = (this.server.address() as AddressInfo).port
        resolve()
      })
    })
  }

  /** Headers every answer carries besides its content type (read when the answer is sent). */
  protected answerHeaders(): Record<string, string> {
    return {}
  }

  /**
   * Runs `route` for a request on operation `op` ("POST /api/v3/order",
   * "AddOrder", ...) with a JSON `answer`, held back when `hold(op)` asked
   * for it; a request on a lost operation is not routed and never answered.
   */
  protected serve(
    res: ServerResponse,
    op: string,
    route: (answer: (status: number, payload: unknown, headers?: Record<string, string>) => void) => void
  ) {
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      const send = () => {
        if (res.writableEnded || res.destroyed) return
        res.writeHead(status, { "content-type": "application/json", ...this.answerHeaders(), ...headers })
        res.end(JSON.stringify(payload))
      }
      if (this.holdNext.delete(op)) this.held.push(send)
      else send()
    }
    try {
      if (this.loseNext.delete(op)) this.held.push(() => res.destroy())
      else route(answer)
    } finally {
      this.poke()
    }
  }

  private accept(ws: WebSocket) {
    this.connections++
    this.sockets.add(ws)
    ws.on("close", () => {
      this.sockets.delete(ws)
      this.subscribed.delete(ws)
    })
    const onMessage = this.onSocket(ws)
    ws.on("message", (data) => {
      const text = String(data)
      this.wsMessages.push(text)
      try {
        onMessage(text)
      } finally {
        this.poke()
      }
    })
  }

  stop(): Promise<void> {
    for (const r of this.held) r()
    for (const ws of this.sockets) ws.terminate()
    return new Promise((resolve) => {
      this.wss.close()
      this.server.closeAllConnections()
      this.server.close(() => resolve())
    })
  }

  /** Resolves once `pred` holds (checked after every request and message). */
  waitFor(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ pred, resolve }))
  }
  protected poke() {
    this.waiters = this.waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true))
  }

  /** The next request on this operation is executed but its answer held back until `release`. */
  hold(op: string) {
    this.holdNext.add(op)
  }
  /** The next request on this operation is recorded, never executed nor answered (until `release` drops it). */
  lose(op: string) {
    this.loseNext.add(op)
  }
  release() {
    const h = this.held
    this.held = []
    for (const r of h) r()
  }
  /** Closes every WebSocket connection at once (the venue dropping its streams). */
  dropStreams() {
    for (const ws of this.sockets) ws.terminate()
    this.sockets.clear()
    this.subscribed.clear()
  }
  /** WebSocket connections open now (a client that closed its scope has none). */
  get openSockets() {
    return this.sockets.size
  }
}
