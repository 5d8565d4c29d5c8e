/**
 * Hostile-frame benchmark: how long the largest frame each venue adapter
 * accepts holds the event loop, and what refusing an oversized one costs.
 *
 * Every adapter runs as in production (connection, inbox, actor, books,
 * emitter, pool, recycler) over an in-process WebSocket stand-in and, for the
 * REST snapshots, an in-process HTTP client: no network time is measured.
 * Frames are built beforehand at the venue's default frame limit, with their
 * levels in worst order (bids ascending, asks descending), and with correct
 * checksums where the venue has them, so the whole path runs to a published
 * event. For each frame two figures:
 *   - handling: from the frame's arrival to the event it produces;
 *   - loop held: the longest the event loop could not run anything else
 *     (perf_hooks.monitorEventLoopDelay at 1 ms resolution), which is the
 *     floor: no single frame holds the loop longer than 50 ms.
 * `worstFrameMs` per adapter is the longest loop hold over its frames;
 * `worstHandlingMs` the longest handling (on a loaded machine it includes
 * time the process waited for a CPU).
 *
 * Also: the exact-number parse of a Kraken frame against lossless-json and
 * plain JSON.parse, and a 40,000-level book reset in worst order.
 *
 *   npm run bench:frames [-- --json] [-- --reps N]
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { WebSocketConstructor } from "@effect/platform/Socket"
import { Effect, Layer, Logger, LogLevel, Queue, TestClock, TestContext } from "effect"
import { loadavg } from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { ProviderConfig } from "../schema/ProviderConfig.js"
import { BinanceConfig, CoinbaseConfig, KrakenConfig, OkxConfig, SimulatedVenueConfig } from "../schema/ProviderConfig.js"
import { DeadLetter } from "../src/DeadLetter.js"
import type { Event } from "../src/Event.js"
import type { BookLevel } from "../src/OrderBook.js"
import { krakenChecksum, OrderBook } from "../src/OrderBook.js"
import { Pool } from "../src/Pool.js"
import * as Provider from "../src/Provider.js"
import { parseKraken } from "../src/providers/Kraken.js"
import { defaultMaxFrameBytes } from "../src/providers/internal/feed.js"
import { makeSimulated } from "../src/providers/Simulated.js"
import { generationOf, Recycler } from "../src/Recycler.js"
import { arg, emitJson, machine, table } from "./internal/report.js"

const REPS = arg("--reps", 5)
const FLOOR_MS = 50
const DEPTH = 1_000

// ---------------------------------------------------------------------------
// In-process venue stand-ins
// ---------------------------------------------------------------------------

/** A WebSocket that is open at once; the benchmark delivers frames to it. */
class LocalSocket extends EventTarget {
  readyState = 1
  readonly sent: Array<string> = []
  send(data: string) {
    this.sent.push(String(data))
  }
  close(code = 1000) {
    if (this.readyState === 3) return
    this.readyState = 3
    this.dispatchEvent(Object.assign(new globalThis.Event("close"), { code, reason: "", wasClean: true }))
  }
  deliver(data: string) {
    this.dispatchEvent(new MessageEvent("message", { data }))
  }
}

interface Arrival {
  readonly at: number
  readonly kind: string
  readonly symbol: string
  readonly state: string | undefined
}

/** One adapter running into a sink that stamps each event's arrival and recycles it. */
const start = (config: ProviderConfig, restBody: (url: string) => string) =>
  Effect.gen(function*() {
    const recycler = yield* Recycler
    let socket: LocalSocket | undefined
    const http = HttpClient.make((request) => Effect.succeed(HttpClientResponse.fromWeb(request, new Response(restBody(request.url)))))
    const provider = yield* Provider.make(config).pipe(
      Effect.provideService(HttpClient.HttpClient, http),
      Effect.provideService(WebSocketConstructor, () => {
        socket = new LocalSocket()
        return socket as unknown as globalThis.WebSocket
      })
    )
    const arrivals = yield* Queue.unbounded<Arrival>()
    const sink = (e: Event) =>
      Effect.sync(() => {
        const at = performance.now()
        const p = e.payload as { readonly state?: string } | undefined
        Queue.unsafeOffer(arrivals, { at, kind: e.kind, symbol: e.symbol, state: p?.state })
        recycler.unsafeRecycle(e, generationOf(e))
      })
    yield* Effect.forkScoped(provider.run(sink))
    while (socket === undefined) yield* Effect.sleep(1)
    const ws = socket
    /** The arrival time of the next event that satisfies `p`. */
    const until = (p: (a: Arrival) => boolean): Effect.Effect<number> =>
      Queue.take(arrivals).pipe(Effect.repeat({ until: p }), Effect.map((a) => a.at))
    return { provider, ws, until }
  })

interface Figure {
  readonly venue: string
  readonly frame: string
  readonly bytes: number
  readonly handlingMs: number
  readonly loopHeldMs: number
}

/**
 * Times `REPS` runs of `once` (which delivers a frame and returns its handling
 * time) after one untimed run; `prepare` runs before each, untimed (the loop
 * monitor is off).
 */
const measure = (
  venue: string,
  frame: string,
  bytes: number,
  prepare: Effect.Effect<void>,
  once: Effect.Effect<number>
) =>
  Effect.gen(function*() {
    let handling = 0
    let held = 0
    // one untimed run first: the first frame of a kind also pays for compiling its code path
    yield* prepare
    yield* once
    for (let i = 0; i < REPS; i++) {
      yield* prepare
      const h = monitorEventLoopDelay({ resolution: 1 })
      h.enable()
      handling = Math.max(handling, yield* once)
      // let the monitor's timer fire once more (a real timer: the simulated venue runs on the TestClock)
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 3)))
      h.disable()
      held = Math.max(held, h.max / 1e6)
    }
    return { venue, frame, bytes, handlingMs: handling, loopHeldMs: held } satisfies Figure
  })

// ---------------------------------------------------------------------------
// Frames at the limit, in worst order
// ---------------------------------------------------------------------------

/** The largest n for which `make(n)` fits in `limit` bytes. */
const largest = (limit: number, make: (n: number) => string): number => {
  let lo = 1
  let hi = 1
  while (Buffer.byteLength(make(hi)) <= limit) hi *= 2
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1
    if (Buffer.byteLength(make(mid)) <= limit) lo = mid
    else hi = mid
  }
  return lo
}

/** n levels per side in worst order: every bid a new best, every ask a new best. */
const worstLevels = (n: number, seed = 0): { bids: Array<BookLevel>; asks: Array<BookLevel> } => {
  const bids: Array<BookLevel> = []
  const asks: Array<BookLevel> = []
  for (let i = 0; i < n; i++) {
    bids.push({ price: `${(10_000 + i + seed / 10).toFixed(1)}`, qty: `0.${String(12_345_678 + i).padStart(8, "0")}` })
    asks.push({ price: `${(200_000 - i - seed / 10).toFixed(1)}`, qty: `1.${String(87_654_321 - i).padStart(8, "0")}` })
  }
  return { bids, asks }
}

const bookOf = (symbol: string, maxDepth: number, bids: Iterable<BookLevel>, asks: Iterable<BookLevel>): OrderBook => {
  const b = new OrderBook(symbol, maxDepth)
  b.reset(bids, asks)
  return b
}

const isConsistentSnapshot = (a: Arrival) => a.kind === "book_snapshot" && a.state === "consistent"
const isBookEvent = (a: Arrival) => a.kind === "book_snapshot" || a.kind === "book_delta"
const isTrade = (a: Arrival) => a.kind === "trade"
const OVERSIZE = 10 * 1024 * 1024

/** A 10 MB frame is refused before parsing; measured up to the small trade sent right after it. */
const oversize = (venue: string, ws: LocalSocket, until: (p: (a: Arrival) => boolean) => Effect.Effect<number>, junk: string, trade: () => string) =>
  measure(venue, "10 MB frame (refused)", OVERSIZE, Effect.void, Effect.gen(function*() {
    const t0 = performance.now()
    ws.deliver(junk)
    ws.deliver(trade())
    return (yield* until(isTrade)) - t0
  }))

const junkFrame = (prefix: string) => prefix + " ".repeat(OVERSIZE - prefix.length)

// ---------------------------------------------------------------------------
// Kraken
// ---------------------------------------------------------------------------

const krakenLevels = (ls: ReadonlyArray<BookLevel>) => `[${ls.map((l) => `{"price":${l.price},"qty":${l.qty}}`).join(",")}]`
const krakenBook = (type: string, bids: ReadonlyArray<BookLevel>, asks: ReadonlyArray<BookLevel>, checksum: number) =>
  `{"channel":"book","type":"${type}","data":[{"symbol":"BTC/USD","bids":${krakenLevels(bids)},"asks":${krakenLevels(asks)},"checksum":${checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}]}`
let krakenTrade = 0
const krakenTradeFrame = () =>
  `{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":45000.1,"qty":0.5,"ord_type":"limit","trade_id":${++krakenTrade},"timestamp":"2023-10-06T17:35:55.508700Z"}]}`

const kraken = Effect.gen(function*() {
  const limit = defaultMaxFrameBytes.kraken
  const { until, ws } = yield* start(KrakenConfig.make({ symbols: ["BTC-USD"], wsUrl: "ws://local", bookDepth: 1000, depth: DEPTH }), () => "")
  const n = largest(limit, (k) => krakenBook("snapshot", worstLevels(k).bids, worstLevels(k).asks, 4_294_967_295))
  const snap = worstLevels(n)
  const snapshot = krakenBook("snapshot", snap.bids, snap.asks, krakenChecksum(bookOf("BTC-USD", 1000, snap.bids, snap.asks)))
  const sendSnapshot = Effect.suspend(() => {
    ws.deliver(snapshot)
    return until(isConsistentSnapshot)
  })
  const figures: Array<Figure> = []
  figures.push(yield* measure("kraken", `book snapshot, ${n.toLocaleString("en-US")} levels a side`, Buffer.byteLength(snapshot), Effect.void, Effect.gen(function*() {
    const t0 = performance.now()
    ws.deliver(snapshot)
    return (yield* until(isConsistentSnapshot)) - t0
  })))
  // an update as large as the limit, onto the book the snapshot left
  const upd = worstLevels(largest(limit, (k) => krakenBook("update", worstLevels(k, 5).bids, worstLevels(k, 5).asks, 4_294_967_295)), 5)
  const after = bookOf("BTC-USD", 1000, snap.bids, snap.asks)
  after.apply(upd.bids, upd.asks)
  const update = krakenBook("update", upd.bids, upd.asks, krakenChecksum(after))
  figures.push(yield* measure("kraken", `book update, ${upd.bids.length.toLocaleString("en-US")} levels a side`, Buffer.byteLength(update), Effect.asVoid(sendSnapshot), Effect.gen(function*() {
    const t0 = performance.now()
    ws.deliver(update)
    return (yield* until(isBookEvent)) - t0
  })))
  figures.push(yield* oversize("kraken", ws, until, junkFrame(`{"channel":"book","data":[`), krakenTradeFrame))
  return figures
})

// ---------------------------------------------------------------------------
// Binance
// ---------------------------------------------------------------------------

const pairs = (ls: ReadonlyArray<BookLevel>) => JSON.stringify(ls.map((l) => [l.price, l.qty]))
const binanceDiff = (U: number, u: number, bids: ReadonlyArray<BookLevel>, asks: ReadonlyArray<BookLevel>) =>
  `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT","U":${U},"u":${u},"b":${pairs(bids)},"a":${pairs(asks)}}}`
let binanceTradeId = 0
const binanceTrade = () =>
  `{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":${++binanceTradeId},"p":"45000.10","q":"0.5","T":1700000000000,"m":false}}`

const binance = Effect.gen(function*() {
  const limit = defaultMaxFrameBytes.binance
  const snapshotBody = (id: number, k: number) => {
    const l = worstLevels(k)
    return `{"lastUpdateId":${id},"bids":${pairs(l.bids)},"asks":${pairs(l.asks)}}`
  }
  const n = largest(limit, (k) => snapshotBody(1_000_000_000, k))
  let id = 1_000
  const { until, ws } = yield* start(
    BinanceConfig.make({ symbols: ["BTC-USDT"], wsUrl: "ws://local", restUrl: "http://local", depth: DEPTH }),
    () => snapshotBody(id, n)
  )
  const figures: Array<Figure> = []
  // a diff that does not chain: stale, then the REST snapshot at the limit is fetched and installed
  figures.push(yield* measure("binance", `REST snapshot, ${n.toLocaleString("en-US")} levels a side`, Buffer.byteLength(snapshotBody(id, n)), Effect.void, Effect.gen(function*() {
    id += 10
    const t0 = performance.now()
    ws.deliver(binanceDiff(id, id, [], []))
    return (yield* until(isConsistentSnapshot)) - t0
  })))
  const m = largest(limit, (k) => binanceDiff(1_000_000_000, 1_000_000_000, worstLevels(k, 5).bids, worstLevels(k, 5).asks))
  const diff = worstLevels(m, 5)
  figures.push(yield* measure("binance", `depth diff, ${m.toLocaleString("en-US")} levels a side`, Buffer.byteLength(binanceDiff(id + 1, id + 1, diff.bids, diff.asks)), Effect.gen(function*() {
    id += 10
    ws.deliver(binanceDiff(id, id, [], []))
    yield* until(isConsistentSnapshot)
  }), Effect.gen(function*() {
    const frame = binanceDiff(id + 1, id + 1, diff.bids, diff.asks)
    const t0 = performance.now()
    ws.deliver(frame)
    return (yield* until(isBookEvent)) - t0
  })))
  figures.push(yield* oversize("binance", ws, until, junkFrame(`{"stream":"btcusdt@depth@100ms","data":{"b":[`), binanceTrade))
  return figures
})

// ---------------------------------------------------------------------------
// OKX
// ---------------------------------------------------------------------------

const okxLevels = (ls: ReadonlyArray<BookLevel>) => JSON.stringify(ls.map((l) => [l.price, l.qty, "0", "3"]))
const okxBooks = (action: string, prev: number, seq: number, bids: ReadonlyArray<BookLevel>, asks: ReadonlyArray<BookLevel>) =>
  `{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"${action}","data":[{"asks":${okxLevels(asks)},"bids":${okxLevels(bids)},"ts":"1700000000000","checksum":0,"prevSeqId":${prev},"seqId":${seq}}]}`
let okxTradeId = 0
const okxTrade = () =>
  `{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"${++okxTradeId}","px":"45000.1","sz":"0.5","side":"buy","ts":"1700000000000"}]}`

const okx = Effect.gen(function*() {
  const limit = defaultMaxFrameBytes.okx
  const { until, ws } = yield* start(OkxConfig.make({ symbols: ["BTC-USDT"], wsUrl: "ws://local", restUrl: "http://local", depth: DEPTH }), () => "")
  const n = largest(limit, (k) => okxBooks("snapshot", -1, 1_000_000_000, worstLevels(k).bids, worstLevels(k).asks))
  const snap = worstLevels(n)
  let seq = 1_000
  const figures: Array<Figure> = []
  figures.push(yield* measure("okx", `book snapshot, ${n.toLocaleString("en-US")} levels a side`, Buffer.byteLength(okxBooks("snapshot", -1, seq, snap.bids, snap.asks)), Effect.void, Effect.gen(function*() {
    seq += 10
    const frame = okxBooks("snapshot", -1, seq, snap.bids, snap.asks)
    const t0 = performance.now()
    ws.deliver(frame)
    return (yield* until(isConsistentSnapshot)) - t0
  })))
  const m = largest(limit, (k) => okxBooks("update", 1_000_000_000, 1_000_000_000, worstLevels(k, 5).bids, worstLevels(k, 5).asks))
  const upd = worstLevels(m, 5)
  figures.push(yield* measure("okx", `book update, ${m.toLocaleString("en-US")} levels a side`, Buffer.byteLength(okxBooks("update", seq, seq + 1, upd.bids, upd.asks)), Effect.gen(function*() {
    seq += 10
    ws.deliver(okxBooks("snapshot", -1, seq, snap.bids, snap.asks))
    yield* until(isConsistentSnapshot)
  }), Effect.gen(function*() {
    const frame = okxBooks("update", seq, seq + 1, upd.bids, upd.asks)
    const t0 = performance.now()
    ws.deliver(frame)
    return (yield* until(isBookEvent)) - t0
  })))
  figures.push(yield* oversize("okx", ws, until, junkFrame(`{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[`), okxTrade))
  return figures
})

// ---------------------------------------------------------------------------
// Coinbase
// ---------------------------------------------------------------------------

const TS = "2023-02-09T20:32:50.714964855Z"
const coinbaseL2 = (seq: number, type: string, bids: ReadonlyArray<BookLevel>, asks: ReadonlyArray<BookLevel>) =>
  `{"channel":"l2_data","client_id":"","timestamp":"${TS}","sequence_num":${seq},"events":[{"type":"${type}","product_id":"BTC-USD","updates":${
    JSON.stringify([
      ...bids.map((l) => ({ side: "bid", event_time: TS, price_level: l.price, new_quantity: l.qty })),
      ...asks.map((l) => ({ side: "offer", event_time: TS, price_level: l.price, new_quantity: l.qty }))
    ])
  }}]}`
let coinbaseSeq = 0
const coinbaseTrade = () =>
  `{"channel":"market_trades","client_id":"","timestamp":"${TS}","sequence_num":${++coinbaseSeq},"events":[{"type":"update","trades":[{"trade_id":"${coinbaseSeq}","product_id":"BTC-USD","price":"45000.1","size":"0.5","side":"BUY","time":"${TS}"}]}]}`

const coinbase = Effect.gen(function*() {
  const limit = defaultMaxFrameBytes.coinbase
  const { until, ws } = yield* start(CoinbaseConfig.make({ symbols: ["BTC-USD"], wsUrl: "ws://local", depth: DEPTH }), () => "")
  const n = largest(limit, (k) => coinbaseL2(1_000_000_000, "snapshot", worstLevels(k).bids, worstLevels(k).asks))
  const snap = worstLevels(n)
  const figures: Array<Figure> = []
  figures.push(yield* measure("coinbase", `level2 snapshot, ${n.toLocaleString("en-US")} levels a side`, Buffer.byteLength(coinbaseL2(1_000_000_000, "snapshot", snap.bids, snap.asks)), Effect.void, Effect.gen(function*() {
    const frame = coinbaseL2(++coinbaseSeq, "snapshot", snap.bids, snap.asks)
    const t0 = performance.now()
    ws.deliver(frame)
    return (yield* until(isConsistentSnapshot)) - t0
  })))
  const m = largest(limit, (k) => coinbaseL2(1_000_000_000, "update", worstLevels(k, 5).bids, worstLevels(k, 5).asks))
  const upd = worstLevels(m, 5)
  figures.push(yield* measure("coinbase", `level2 update, ${m.toLocaleString("en-US")} levels a side`, Buffer.byteLength(coinbaseL2(1_000_000_000, "update", upd.bids, upd.asks)), Effect.gen(function*() {
    ws.deliver(coinbaseL2(++coinbaseSeq, "snapshot", snap.bids, snap.asks))
    yield* until(isConsistentSnapshot)
  }), Effect.gen(function*() {
    const frame = coinbaseL2(++coinbaseSeq, "update", upd.bids, upd.asks)
    const t0 = performance.now()
    ws.deliver(frame)
    return (yield* until(isBookEvent)) - t0
  })))
  figures.push(yield* oversize("coinbase", ws, until, junkFrame(`{"channel":"l2_data","events":[`), coinbaseTrade))
  return figures
})

// ---------------------------------------------------------------------------
// Simulated venue: raw frames go through its decode path at the next tick
// ---------------------------------------------------------------------------

const simulated = Effect.gen(function*() {
  const limit = defaultMaxFrameBytes.simulated
  const services = { pool: yield* Pool, recycler: yield* Recycler, deadLetter: yield* DeadLetter }
  const provider = makeSimulated(SimulatedVenueConfig.make({ name: "sim-a", symbols: ["BTC-USDT"], tickMs: 10 }), services)
  const recycler = services.recycler
  yield* Effect.forkScoped(provider.run((e) => Effect.sync(() => recycler.unsafeRecycle(e, generationOf(e)))))
  yield* TestClock.adjust(100)
  const frame = (k: number) => {
    const l = worstLevels(k)
    return `{"type":"delta","symbol":"BTC-USDT","seq":1,"checksum":1,"bids":${pairs(l.bids)},"asks":${pairs(l.asks)}}`
  }
  const n = largest(limit, frame)
  const raw = frame(n)
  const figures: Array<Figure> = []
  // one generator tick with the frame in it (the book then resyncs, untimed)
  figures.push(yield* measure("simulated", `raw delta, ${n.toLocaleString("en-US")} levels a side`, Buffer.byteLength(raw), TestClock.adjust(100), Effect.gen(function*() {
    yield* provider.injectFrame(raw)
    const t0 = performance.now()
    yield* TestClock.adjust(10)
    return performance.now() - t0
  })))
  const junk = junkFrame(`{"type":"delta","bids":[`)
  figures.push(yield* measure("simulated", "10 MB frame (refused)", OVERSIZE, Effect.void, Effect.gen(function*() {
    yield* provider.injectFrame(junk)
    const t0 = performance.now()
    yield* TestClock.adjust(10)
    return performance.now() - t0
  })))
  return figures
}).pipe(Effect.provide(TestContext.TestContext))

// ---------------------------------------------------------------------------
// Parse paths and the book reset
// ---------------------------------------------------------------------------

// The exact alternative measured against lossless-json (not used by the adapter):
/**
 * The source text of every number token of a JSON text, in order (strings
 * skipped, escapes included). One pass, no regular expression.
 */
const numberTokens = (text: string): Array<string> => {
  const out: Array<string> = []
  const len = text.length
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      for (i++; i < len; i++) {
        const d = text.charCodeAt(i)
        if (d === 92) i++
        else if (d === 34) break
      }
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1
      for (; j < len; j++) {
        const d = text.charCodeAt(j)
        if (!((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45)) break
      }
      out.push(text.slice(i, j))
      i = j - 1
    }
  }
  return out
}

/** An object key that JavaScript orders before the others (an array index). */
const INDEX_KEY = /^(?:0|[1-9][0-9]*)$/

/**
 * `JSON.parse` with every number replaced by its exact source text. The
 * parsed value is walked in document order (arrays in order, objects in key
 * order) and the number tokens are handed out in the same order; each must
 * equal the number it replaces, and all must be used. A frame where document
 * order and key order could differ (an index-like key, a duplicate key) is
 * refused rather than guessed at. Nesting is bounded before parsing
 * so the walk's recursion is too.
 */
const parseExactNumbers = (text: string): unknown => {
  const value: unknown = JSON.parse(text)
  const tokens = numberTokens(text)
  let next = 0
  const take = (n: number): string => {
    const t = tokens[next++]
    if (t === undefined || Number(t) !== n) throw new Error("numbers out of document order (duplicate key?)")
    return t
  }
  const walk = (u: unknown): unknown => {
    if (typeof u === "number") return take(u)
    if (typeof u !== "object" || u === null) return u
    if (Array.isArray(u)) {
      for (let i = 0; i < u.length; i++) u[i] = walk(u[i])
      return u
    }
    const o = u as Record<string, unknown>
    for (const k of Object.keys(o)) {
      if (INDEX_KEY.test(k)) throw new Error(`index-like key ${JSON.stringify(k.slice(0, 20))}`)
      o[k] = walk(o[k])
    }
    return o
  }
  const exact = walk(value)
  if (next !== tokens.length) throw new Error("numbers out of document order (duplicate key?)")
  return exact
}


const timeIt = (reps: number, f: () => unknown): number => {
  f()
  let best = Number.POSITIVE_INFINITY
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    f()
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

const parsePaths = () => {
  const n = largest(defaultMaxFrameBytes.kraken, (k) => krakenBook("snapshot", worstLevels(k).bids, worstLevels(k).asks, 4_294_967_295))
  const l = worstLevels(n)
  const frame = krakenBook("snapshot", l.bids, l.asks, 4_294_967_295)
  const reps = Math.max(REPS * 4, 20)
  return {
    bytes: Buffer.byteLength(frame),
    jsonParseMs: timeIt(reps, () => JSON.parse(frame)),
    losslessMs: timeIt(reps, () => parseKraken(frame)),
    scanMs: timeIt(reps, () => parseExactNumbers(frame))
  }
}

const bookReset = () => {
  const l = worstLevels(40_000)
  const reps = Math.max(REPS, 3)
  return {
    unboundedMs: timeIt(reps, () => new OrderBook("X").reset(l.bids, l.asks)),
    depth1000Ms: timeIt(reps, () => new OrderBook("X", 1_000).reset(l.bids, l.asks))
  }
}

// ---------------------------------------------------------------------------

const layer = Layer.mergeAll(Recycler.DefaultWithoutDependencies, DeadLetter.Default).pipe(
  Layer.provideMerge(Pool.layer({ prewarm: 0 }))
)

const main = Effect.gen(function*() {
  const figures: Array<Figure> = []
  for (const venue of [binance, kraken, okx, coinbase, simulated]) figures.push(...(yield* Effect.scoped(venue)))
  const parse = parsePaths()
  const reset = bookReset()

  console.log(`machine: ${machine()}; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ${REPS} runs per frame, the worst shown`)
  table(
    "Largest accepted frame per adapter (default limits), levels in worst order",
    ["venue", "frame", "bytes", "handling ms", "loop held ms"],
    figures.map((f) => [f.venue, f.frame, f.bytes, f.handlingMs, f.loopHeldMs])
  )
  const venues = [...new Set(figures.map((f) => f.venue))]
  const worst = Object.fromEntries(venues.map((v) => {
    const fs = figures.filter((f) => f.venue === v)
    return [v, {
      worstFrameMs: Math.max(...fs.map((f) => f.loopHeldMs)),
      worstHandlingMs: Math.max(...fs.map((f) => f.handlingMs)),
      maxFrameBytes: defaultMaxFrameBytes[v as keyof typeof defaultMaxFrameBytes]
    }]
  }))
  table(
    `Worst frame per adapter (floor: under ${FLOOR_MS} ms)`,
    ["venue", "frame limit (bytes)", "worst loop held ms", "under floor", "worst handling ms"],
    venues.map((v) => [v, worst[v]!.maxFrameBytes, worst[v]!.worstFrameMs, worst[v]!.worstFrameMs < FLOOR_MS ? "yes" : "NO", worst[v]!.worstHandlingMs])
  )
  table(
    `Exact parse of a ${parse.bytes.toLocaleString("en-US")}-byte Kraken snapshot (numbers kept as their text), best of runs`,
    ["parser", "ms", "vs JSON.parse"],
    [
      ["JSON.parse (not exact: 0.10000000 becomes 0.1)", parse.jsonParseMs, "1.0x"],
      ["lossless-json (adapter)", parse.losslessMs, `${(parse.losslessMs / parse.jsonParseMs).toFixed(1)}x`],
      ["JSON.parse, then number texts from one scan", parse.scanMs, `${(parse.scanMs / parse.jsonParseMs).toFixed(1)}x`]
    ]
  )
  table("OrderBook.reset of a 40,000-level-a-side snapshot in worst order, best of runs", ["book", "ms"], [
    ["all levels kept", reset.unboundedMs],
    ["cut to 1,000 levels", reset.depth1000Ms]
  ])
  emitJson({ machine: machine(), loadAverage: loadavg(), reps: REPS, floorMs: FLOOR_MS, adapters: worst, frames: figures, parse, bookReset40k: reset })
})

Effect.runPromise(main.pipe(Effect.provide(layer), Effect.provide(Logger.minimumLogLevel(LogLevel.Error)))).catch((e) => {
  console.error(e)
  process.exit(1)
})
