/**
 * Real venue captures replayed through the real adapters over a local
 * WebSocket (and, for Binance, a local REST server that hands out the
 * captured depth snapshot when the adapter asks, the stream paused there until
 * it is installed). After every frame, the book a depth-N consumer rebuilds
 * from the published snapshot and deltas must equal an independent book built
 * from the raw frames, cut to the top N; every OKX checksum must verify on the
 * independent book.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { Backoff, BinanceConfig, OkxConfig } from "../../schema/ProviderConfig.js"
import type { Ticker } from "../../schema/Event.js"
import type { HeldRestServer } from "./captures.js"
import { ConsumerBooks, heldRestServer, okxBookChecksum, PlainBook, readCapture } from "./captures.js"
import type { Seen } from "./helpers.js"
import { isConsistent, runProvider, stopProvider, venueLayer, within } from "./helpers.js"
import type { VenueServer } from "./servers.js"
import { venueServer } from "./servers.js"

/** Sends one frame, then a ticker frame carrying `marker`, and waits for that ticker: the frame has been handled. */
const makeBarrier = (ws: VenueServer, waitFor: (p: (s: Seen) => boolean) => Effect.Effect<Seen>, tickerFrame: (marker: number) => string) => {
  let marker = 0
  return (frame: string) =>
    Effect.gen(function*() {
      const m = ++marker
      yield* ws.send(frame)
      yield* ws.send(tickerFrame(m))
      yield* within(waitFor((s) => s.kind === "ticker" && (s.payload as Ticker).exchangeTs === m))
    })
}

/** The consumer's top N equals the independent top N for every book the independent side has. */
const assertSameBooks = (
  where: string,
  consumer: ConsumerBooks,
  reference: ReadonlyMap<string, PlainBook | undefined>,
  depth: number
): number => {
  let compared = 0
  for (const [symbol, ref] of reference) {
    if (ref === undefined) continue
    const mine = consumer.book(symbol)
    assert.isDefined(mine, `${where}: ${symbol} has no consistent book`)
    assert.deepStrictEqual(mine!.top(depth + 1), ref.top(depth), `${where}: ${symbol}`)
    compared++
  }
  return compared
}

/** The local servers; no periodic refresh in the way (every snapshot seen is a sync). */
const localRest = (ws: VenueServer, rest: HeldRestServer) => ({
  wsUrl: ws.url,
  restUrl: rest.url,
  snapshotIntervalMs: 600_000,
  backoff: Backoff.make({ initialMs: 20, maxMs: 200, jitter: 0 })
})

describe("real venue captures", () => {
  for (const depth of [3, 10]) {
    it.live(`Binance 2021-10-12 (4 symbols, depth diffs + REST snapshots): the published top ${depth} rebuilds exactly after every frame`, () =>
      Effect.gen(function*() {
        const lines = readCapture("binance/capture-2021-10-12.jsonl")
        const ws = yield* venueServer
        const rest = yield* heldRestServer
        const symbols = ["NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"] as const
        const canonical = new Map<string, string>(symbols.map((s) => [s.replace("-", ""), s]))
        const run = yield* runProvider(BinanceConfig.make({ symbols: [...symbols], ...localRest(ws, rest), depth }))
        const { provider, rec } = run
        assert.strictEqual(JSON.parse(yield* within(Queue.take(ws.received))).method, "SUBSCRIBE")

        const sendHandled = makeBarrier(ws, rec.waitFor, (m) =>
          JSON.stringify({ stream: "nknusdt@bookTicker", data: { u: 0, s: "NKNUSDT", b: "0.1", B: "1", a: "0.2", A: "1", E: m } }))
        // the independent side: Binance's documented sync over the raw diffs
        const reference = new Map<string, PlainBook | undefined>(symbols.map((s) => [s, undefined]))
        const lastId = new Map<string, number>()
        const pending = new Map<string, Array<{ U: number; u: number; b: Array<[string, string]>; a: Array<[string, string]> }>>()
        const applyDiff = (symbol: string, d: { U: number; u: number; b: Array<[string, string]>; a: Array<[string, string]> }) => {
          const last = lastId.get(symbol)!
          if (d.u <= last) return
          assert.isAtMost(d.U, last + 1, `${symbol}: the capture's diffs chain`)
          reference.get(symbol)!.apply(d.b, d.a)
          lastId.set(symbol, d.u)
        }
        const consumer = new ConsumerBooks()
        let comparisons = 0
        let frames = 0

        for (const line of lines) {
          if (line.t === "http") {
            const venueSymbol = new URL(line.url).searchParams.get("symbol")!
            const symbol = canonical.get(venueSymbol)!
            yield* within(rest.serve("symbol", venueSymbol, line.data))
            yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === symbol))
            const snap = JSON.parse(line.data)
            const book = new PlainBook()
            book.replace(snap.bids, snap.asks)
            reference.set(symbol, book)
            lastId.set(symbol, snap.lastUpdateId)
            for (const d of pending.get(symbol) ?? []) applyDiff(symbol, d)
            pending.delete(symbol)
          } else {
            const msg = JSON.parse(line.data)
            if (typeof msg.stream === "string" && msg.stream.includes("@depth")) {
              const symbol = canonical.get(msg.data.s)!
              if (reference.get(symbol) === undefined) pending.set(symbol, [...(pending.get(symbol) ?? []), msg.data])
              else applyDiff(symbol, msg.data)
            }
            yield* sendHandled(line.data)
            frames++
          }
          consumer.follow(rec.seen)
          comparisons += assertSameBooks(`after capture line at ${line.ts}`, consumer, reference, depth)
        }

        assert.strictEqual(frames, 265)
        assert.isTrue([...reference.values()].every((b) => b !== undefined), "every symbol synced")
        assert.isAbove(comparisons, 700)
        // one snapshot request per symbol: the captured snapshots chain onto the captured diffs
        assert.deepStrictEqual([...rest.requests].sort(), symbols.map((s) => `/api/v3/depth?symbol=${s.replace("-", "")}&limit=1000`).sort())
        const stats = provider.stats()
        assert.deepStrictEqual([stats.gaps, stats.resyncs, stats.crossedBooks], [0, 0, 0])
        yield* stopProvider(run)
      }).pipe(Effect.scoped, Effect.provide(venueLayer)))

    it.live(`OKX 2022-05-13 (3 instruments, 400-level books with CRC32): every checksum verifies and the published top ${depth} rebuilds exactly after every frame`, () =>
      Effect.gen(function*() {
        const lines = readCapture("okx/capture-2022-05-13.jsonl")
        const ws = yield* venueServer
        const rest = yield* heldRestServer
        const symbolMap: Record<string, string> = { "BTC-USDT": "BTC-USDT", "BTCFUT-USD": "BTC-USD-220527", "UNISWAP-USD": "UNI-USD-SWAP" }
        const canonical = new Map(Object.entries(symbolMap).map(([c, v]) => [v, c]))
        const run = yield* runProvider(OkxConfig.make({
          symbols: Object.keys(symbolMap) as [string, ...Array<string>],
          symbolMap,
          ...localRest(ws, rest),
          depth
        }))
        const { provider, rec } = run
        assert.strictEqual(JSON.parse(yield* within(Queue.take(ws.received))).op, "subscribe")

        const sendHandled = makeBarrier(ws, rec.waitFor, (m) =>
          JSON.stringify({ arg: { channel: "tickers", instId: "BTC-USDT" }, data: [{ instId: "BTC-USDT", bidPx: "1", bidSz: "1", askPx: "2", askSz: "1", ts: String(m) }] }))
        const reference = new Map<string, PlainBook | undefined>(Object.keys(symbolMap).map((s) => [s, undefined]))
        const consumer = new ConsumerBooks()
        let checksums = 0
        let comparisons = 0

        for (const line of lines) {
          if (line.t !== "recv") continue
          const msg = JSON.parse(line.data)
          if (msg.arg?.channel === "books" && Array.isArray(msg.data)) {
            const symbol = canonical.get(msg.arg.instId)!
            for (const d of msg.data) {
              if (msg.action === "snapshot") reference.set(symbol, new PlainBook())
              const book = reference.get(symbol)!
              book.apply(d.bids.map((l: Array<string>) => [l[0], l[1]]), d.asks.map((l: Array<string>) => [l[0], l[1]]))
              assert.strictEqual(okxBookChecksum(book), d.checksum, `${symbol} checksum at ${d.ts}`)
              checksums++
            }
          }
          yield* sendHandled(line.data)
          consumer.follow(rec.seen)
          comparisons += assertSameBooks(`after capture line at ${line.ts}`, consumer, reference, depth)
        }

        assert.strictEqual(checksums, 290)
        assert.isAbove(comparisons, 900)
        assert.deepStrictEqual(rest.requests, [], "books came from the WebSocket snapshots")
        const stats = provider.stats()
        assert.deepStrictEqual([stats.checksumMismatches, stats.gaps, stats.crossedBooks], [0, 0, 0])
        yield* stopProvider(run)
      }).pipe(Effect.scoped, Effect.provide(venueLayer)))
  }
})
