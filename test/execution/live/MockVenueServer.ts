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

  protected abstract onHttp(req: IncomingMessage, res: ServerResponse): void
  protected abstract onSocket(ws: WebSocket): void

  get restUrl() {
    return `http://127.0.0.1:${this.port}`
  }
  get wsUrl() {
    return `ws://127.0.0.1:${this.port}${this.wsPath}`
  }

  start(): Promise<void> {
    this.server = createServer((req, res) => this.onHttp(req, res))
    this.wss = new WebSocketServer({ server: this.server, path: this.wsPath })
    this.wss.on("connection", (ws) => this.onSocket(ws))
    return new Promise((resolve) => {
      this.server.listen(0, "127.0.0.1", () => {
        this.port = (this.server.address() as AddressInfo).port
        resolve()
      })
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
