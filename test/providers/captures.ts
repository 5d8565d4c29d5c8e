/**
 * Replay of the real venue captures in `test/fixtures/venues/` (see its
 * README): the capture's lines in time order, a REST server that holds each
 * snapshot request until the replay reaches the moment the recorder had the
 * snapshot, and independent books built from the raw frames alone (plain maps
 * sorted by `decimal.js`, nothing shared with `src/OrderBook.ts`), to hold the
 * adapters' published books against.
 */
import { Decimal as Dec } from "decimal.js"
import { Effect, Queue } from "effect"
import type { Scope } from "effect"
import { readFileSync } from "node:fs"
import { createServer, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { crc32 } from "node:zlib"
import type { BookDelta, BookSnapshot } from "../../schema/Event.js"
import type { Seen } from "./helpers.js"

export type CaptureLine =
  | { readonly t: "recv"; readonly ts: number; readonly data: string }
  | { readonly t: "http"; readonly ts: number; readonly url: string; readonly data: string }

/** The capture's received frames and REST bodies, in the order of their receive time (stable). */
export const readCapture = (relative: string): Array<CaptureLine> => {
  const text = readFileSync(join(import.meta.dirname, "..", "fixtures", "venues", relative), "utf8")
  const lines: Array<CaptureLine> = []
  for (const row of text.split("\n")) {
    if (row.trim() === "") continue
    const o = JSON.parse(row)
    if (o.t === "recv" || o.t === "http") lines.push(o)
  }
  return lines.map((l, i) => [l, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([l]) => l)
}

// ---------------------------------------------------------------------------
// A REST server that answers a snapshot request when the replay says so
// ---------------------------------------------------------------------------

export interface HeldRestServer {
  readonly url: string
  /** Request paths (with query) in order. */
  readonly requests: Array<string>
  /** Waits for a request whose query has `key=value`, then answers it (and any later one) with `body`. */
  readonly serve: (key: string, value: string, body: string) => Effect.Effect<void>
}

export const heldRestServer: Effect.Effect<HeldRestServer, never, Scope.Scope> = Effect.gen(function*() {
  const requests: Array<string> = []
  const waiting = new Map<string, Array<ServerResponse>>()
  const bodies = new Map<string, string>()
  const arrived = yield* Queue.unbounded<string>()
  const server = yield* Effect.acquireRelease(
    Effect.async<ReturnType<typeof createServer>>((resume) => {
      const s = createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1")
        requests.push(`${url.pathname}${url.search}`)
        for (const [k, v] of url.searchParams) {
          const id = `${k}=${v}`
          const body = bodies.get(id)
          if (body !== undefined) {
            res.writeHead(200, { "content-type": "application/json" }).end(body)
            return
          }
          waiting.set(id, [...(waiting.get(id) ?? []), res])
          Queue.unsafeOffer(arrived, id)
        }
      })
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  )
  const serve = (key: string, value: string, body: string): Effect.Effect<void> =>
    Effect.gen(function*() {
      const id = `${key}=${value}`
      while (!waiting.has(id)) {
        const next = yield* Queue.take(arrived)
        if (next === id) break
      }
      bodies.set(id, body)
      for (const res of waiting.get(id) ?? []) res.writeHead(200, { "content-type": "application/json" }).end(body)
      waiting.delete(id)
    })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, serve }
})

// ---------------------------------------------------------------------------
// Books
// ---------------------------------------------------------------------------

type Levels = ReadonlyArray<readonly [string, string]>

const isZero = (qty: string): boolean => new Dec(qty).isZero()

/** One side of a book as a map from exact price value to the venue's [price, qty]. */
class Side {
  private readonly levels = new Map<string, { readonly level: readonly [string, string]; readonly key: Dec }>()
  constructor(private readonly descending: boolean) {}
  set(price: string, qty: string): void {
    const key = new Dec(price)
    if (isZero(qty)) this.levels.delete(key.toString())
    else this.levels.set(key.toString(), { level: [price, qty], key })
  }
  clear(): void {
    this.levels.clear()
  }
  /** The best `n`, selected in one pass (the book may hold a thousand levels). */
  top(n: number): Array<readonly [string, string]> {
    const best: Array<{ readonly level: readonly [string, string]; readonly key: Dec }> = []
    const before = (a: Dec, b: Dec) => this.descending ? a.gt(b) : a.lt(b)
    for (const e of this.levels.values()) {
      if (best.length === n && !before(e.key, best[n - 1].key)) continue
      let i = best.length
      while (i > 0 && before(e.key, best[i - 1].key)) i--
      best.splice(i, 0, e)
      if (best.length > n) best.pop()
    }
    return best.map((e) => e.level)
  }
  get size(): number {
    return this.levels.size
  }
}

/** A price-level book: absolute quantities, zero removes. */
export class PlainBook {
  readonly bids = new Side(true)
  readonly asks = new Side(false)
  replace(bids: Levels, asks: Levels): void {
    this.bids.clear()
    this.asks.clear()
    this.apply(bids, asks)
  }
  apply(bids: Levels, asks: Levels): void {
    for (const [p, q] of bids) this.bids.set(p, q)
    for (const [p, q] of asks) this.asks.set(p, q)
  }
  /** The top `n` per side, as [price, qty] strings. */
  top(n: number): { readonly bids: Array<readonly [string, string]>; readonly asks: Array<readonly [string, string]> } {
    return { bids: this.bids.top(n), asks: this.asks.top(n) }
  }
}

/** OKX's (legacy) book checksum, from its documentation: CRC32 of bid:size:ask:size... over the top 25, signed. */
export const okxBookChecksum = (book: PlainBook): number => {
  const { asks, bids } = book.top(25)
  const parts: Array<string> = []
  for (let i = 0; i < 25; i++) {
    if (bids[i] !== undefined) parts.push(bids[i][0], bids[i][1])
    if (asks[i] !== undefined) parts.push(asks[i][0], asks[i][1])
  }
  return crc32(parts.join(":")) | 0
}

/**
 * What a consumer of the published events holds for each symbol: a consistent
 * snapshot replaces the book, a delta updates it, a stale snapshot drops it.
 */
export class ConsumerBooks {
  private readonly books = new Map<string, PlainBook>()
  private taken = 0
  /** Applies the events recorded since the last call. */
  follow(seen: ReadonlyArray<Seen>): void {
    for (; this.taken < seen.length; this.taken++) {
      const s = seen[this.taken]
      if (s.kind === "book_snapshot") {
        const p = s.payload as BookSnapshot
        if (p.state === "stale") {
          this.books.delete(s.symbol)
          continue
        }
        const b = new PlainBook()
        b.replace(p.bids, p.asks)
        this.books.set(s.symbol, b)
      } else if (s.kind === "book_delta") {
        const p = s.payload as BookDelta
        const b = this.books.get(s.symbol)
        if (b === undefined) throw new Error(`${s.symbol}: delta ${s.seq} without a consistent snapshot`)
        b.apply(p.bids, p.asks)
      }
    }
  }
  book(symbol: string): PlainBook | undefined {
    return this.books.get(symbol)
  }
  /** Levels held per side: a depth-N consumer holds at most N. */
  size(symbol: string): { readonly bids: number; readonly asks: number } | undefined {
    const b = this.books.get(symbol)
    return b === undefined ? undefined : { bids: b.bids.size, asks: b.asks.size }
  }
}
