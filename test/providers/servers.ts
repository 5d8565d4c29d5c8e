/**
 * Local stand-ins for a venue: a WebSocket server and an HTTP server on
 * 127.0.0.1 (ephemeral ports), held by the test's scope. The WebSocket server
 * records what clients send and when they close; the test scripts what the
 * venue sends.
 */
import { Effect, Queue } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"

export interface VenueServer {
  readonly url: string
  /** Every text message a client sent, in order. */
  readonly received: Queue.Queue<string>
  /** Client connections, in order of arrival. */
  readonly connections: Queue.Queue<WebSocket>
  /** Close codes the server saw, one per closed connection. */
  readonly closes: Queue.Queue<number>
  readonly clients: () => ReadonlyArray<WebSocket>
  /** Sends to the newest open client. */
  readonly send: (text: string) => Effect.Effect<void>
  readonly sendAll: (texts: ReadonlyArray<string>) => Effect.Effect<void>
  /** Drops the newest client without a close frame (the client sees 1006). */
  readonly drop: Effect.Effect<void>
}

export const venueServer: Effect.Effect<VenueServer, never, import("effect").Scope.Scope> = Effect.gen(function*() {
  const received = yield* Queue.unbounded<string>()
  const connections = yield* Queue.unbounded<WebSocket>()
  const closes = yield* Queue.unbounded<number>()
  const live: Array<WebSocket> = []
  const wss = yield* Effect.acquireRelease(
    Effect.async<WebSocketServer>((resume) => {
      const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
      server.on("listening", () => resume(Effect.succeed(server)))
      server.on("connection", (ws) => {
        live.push(ws)
        ws.on("message", (data) => Queue.unsafeOffer(received, data.toString()))
        ws.on("close", (code) => {
          live.splice(live.indexOf(ws), 1)
          Queue.unsafeOffer(closes, code)
        })
        Queue.unsafeOffer(connections, ws)
      })
    }),
    (server) =>
      Effect.async<void>((resume) => {
        for (const ws of server.clients) ws.terminate()
        server.close(() => resume(Effect.void))
      })
  )
  const port = (wss.address() as AddressInfo).port
  const newest = () => live.at(-1)
  const send = (text: string) =>
    Effect.async<void>((resume) => {
      const ws = newest()
      if (ws === undefined || ws.readyState !== WebSocket.OPEN) return resume(Effect.die(new Error("no open client")))
      ws.send(text, (err) => resume(err ? Effect.die(err) : Effect.void))
    })
  return {
    url: `ws://127.0.0.1:${port}`,
    received,
    connections,
    closes,
    clients: () => [...live],
    send,
    sendAll: (texts) => Effect.forEach(texts, send, { discard: true }),
    drop: Effect.sync(() => newest()?.terminate())
  }
})

export interface RestServer {
  readonly url: string
  /** Request paths (with query) in order. */
  readonly requests: Array<string>
  /** Sets the body served for a path (without query); a function is called per request. */
  readonly route: (path: string, body: string | ((query: URLSearchParams) => string)) => void
}

export const restServer: Effect.Effect<RestServer, never, import("effect").Scope.Scope> = Effect.gen(function*() {
  const routes = new Map<string, string | ((query: URLSearchParams) => string)>()
  const requests: Array<string> = []
  const server = yield* Effect.acquireRelease(
    Effect.async<ReturnType<typeof createServer>>((resume) => {
      const s = createServer((req: IncomingMessage, res: ServerResponse) => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1")
        requests.push(`${url.pathname}${url.search}`)
        const body = routes.get(url.pathname)
        if (body === undefined) {
          res.writeHead(404).end("not found")
          return
        }
        res.writeHead(200, { "content-type": "application/json" }).end(typeof body === "string" ? body : body(url.searchParams))
      })
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  )
  const port = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, requests, route: (path, body) => void routes.set(path, body) }
})
