import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { KrakenConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { BookLevel } from "../../src/OrderBook.js"
import { krakenChecksum, OrderBook } from "../../src/OrderBook.js"
import { parseKraken } from "../../src/providers/Kraken.js"
import type { HostileCase } from "./helpers.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runHostileTable, runProvider, stopProvider, takeCloses, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

/** Kraken writes numbers as JSON numbers: levels are [price, qty] in their exact wire text. */
type Wire = ReadonlyArray<readonly [string, string]>
const levelsJson = (ls: Wire) => `[${ls.map(([p, q]) => `{"price":${p},"qty":${q}}`).join(",")}]`
const bookFrame = (type: "snapshot" | "update", symbol: string, bids: Wire, asks: Wire, checksum: string | number) =>
  `{"channel":"book","type":"${type}","data":[{"symbol":"${symbol}","bids":${levelsJson(bids)},"asks":${levelsJson(asks)},"checksum":${checksum}}]}`
const tradeFrame = (symbol: string, id: number, price = "2000.5", qty = "0.25000000") =>
  `{"channel":"trade","type":"update","data":[{"symbol":"${symbol}","side":"buy","price":${price},"qty":${qty},"ord_type":"limit","trade_id":${id},"timestamp":"2023-10-06T17:35:55.508700Z"}]}`
const toLevels = (ls: Wire): Array<BookLevel> => ls.map(([price, qty]) => ({ price, qty }))
/** The checksum the venue would send for `book` with `bids`/`asks` applied (computed over the digits, sign or not). */
const checksumAfter = (book: OrderBook, bids: Wire, asks: Wire): number => {
  const b = new OrderBook(book.symbol)
  b.reset(book.levels("bid"), book.levels("ask"))
  b.apply(toLevels(bids), toLevels(asks))
  return krakenChecksum(b)
}

describe("Kraken v2 adapter", () => {
  it("parses numbers exactly as their source text, leaving strings alone and refusing non-JSON", () => {
    const parsed = parseKraken(`{"price":45283.50,"qty":0.10000000,"e":1E-7,"big":18446744073709551617,"s":"digits 1.0 \\"2\\"","a":[0,-2.5e+3]}`)
    assert.deepStrictEqual(parsed.ok && parsed.value, {
      price: "45283.50",
      qty: "0.10000000",
      e: "1E-7",
      big: "18446744073709551617",
      s: "digits 1.0 \"2\"",
      a: ["0", "-2.5e+3"]
    } as any)
    for (const bad of [`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":NaN}`, `{"a":"1`, `{"a":Infinity}`, `{"qty":1.0,"qty":2.0}`]) {
      assert.isFalse(parseKraken(bad).ok, bad)
    }
  })

  it.live("checks the book CRC32 over the exact wire digits, resubscribes on a mismatch, and survives bad frames, a drop and a stall", () =>
    Effect.gen(function*() {
      const f = readFrames("kraken-v2.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      const run = yield* runProvider(KrakenConfig.make({
        symbols: ["BTC-USD"],
        ...localVenue(ws, rest),
        bookDepth: 10,
        depth: 10,
        stallTimeoutMs: 1_000,
        pingIntervalMs: 150
      }))
      const { provider, rec } = run
      const sent: Array<any> = []
      /** The next client message that is not a ping (pings are kept in `sent`). */
      const nextRequest = within(Queue.take(ws.received).pipe(
        Effect.map((m) => JSON.parse(m)),
        Effect.tap((m) => sent.push(m)),
        Effect.repeat({ until: (m) => m.method !== "ping" })
      ))

      const subs = [yield* nextRequest, yield* nextRequest, yield* nextRequest].map((m) => m.params)
      assert.deepStrictEqual(subs, [
        { channel: "book", symbol: ["BTC/USD"], depth: 10, snapshot: true },
        { channel: "trade", symbol: ["BTC/USD"], snapshot: false },
        { channel: "ticker", symbol: ["BTC/USD"], event_trigger: "bbo" }
      ])

      // the checksum guide's snapshot verifies, so the book is consistent, with its trailing zeros
      yield* ws.sendAll(f.connected)
      const first = yield* within(rec.waitFor(isConsistent))
      assert.strictEqual((first.payload as any).checksum, 3310070434)
      assert.deepStrictEqual((first.payload as any).bids[0], ["45283.5", "0.10000000"])
      assert.deepStrictEqual((first.payload as any).asks[0], ["45285.2", "0.00100000"])

      yield* ws.sendAll(f.live)
      const delta = yield* within(rec.waitFor(isDelta))
      assert.deepStrictEqual([(delta.payload as any).bids, (delta.payload as any).checksum], [[["45283.5", "0.20000000"]], 38355977])
      const trade = yield* within(rec.waitFor((s) => s.kind === "trade"))
      assert.deepStrictEqual(trade.payload, { _tag: "trade", tradeId: "4665906", price: "45283.5", quantity: "0.00500000", side: "sell", exchangeTs: Date.parse("2023-10-06T17:35:55.508700Z") } as any)
      const ticker = yield* within(rec.waitFor((s) => s.kind === "ticker"))
      assert.strictEqual((ticker.payload as any).bidQty, "0.20000000")

      // a corrupted checksum: stale at once, then unsubscribe + subscribe for a fresh snapshot
      yield* ws.sendAll(f["bad-checksum"])
      const stale = yield* within(rec.waitFor(isStale))
      assert.match((stale.payload as any).staleReason, /^checksum mismatch: venue 12345, local \d+$/)
      assert.deepStrictEqual([(yield* nextRequest).method, (yield* nextRequest)], [
        "unsubscribe",
        { method: "subscribe", params: { channel: "book", symbol: ["BTC/USD"], depth: 10, snapshot: true }, req_id: 5 }
      ])
      yield* ws.sendAll(f.resubscribed)
      const resynced = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual((resynced.payload as any).asks[0], ["45285.2", "0.00200000"])
      const after = yield* within(rec.waitFor((s) => isDelta(s) && (s.payload as any).checksum === 154802010))
      assert.deepStrictEqual((after.payload as any).asks, [["45285.2", "0"], ["45300.1", "1.00000000"]])
      assert.deepStrictEqual([provider.stats().checksumMismatches, provider.stats().resyncs], [1, 1])

      // malformed JSON, an unknown channel, a schema failure, a venue error: counted and dead-lettered
      yield* ws.sendAll(f.bad)
      yield* within(rec.waitFor(isTrade("4665908")))
      assert.deepStrictEqual(provider.stats().malformed, { invalid_json: 1, unknown_message: 1, schema: 1, venue_error: 1 })
      assert.strictEqual(provider.stats().venueErrors, 1)
      assert.deepStrictEqual((yield* DeadLetter).entries().map((e) => e.raw), f.bad.slice(0, 4))

      // the keepalive ping went out
      const ping = sent.find((m) => m.method === "ping") ??
        (yield* within(Queue.take(ws.received).pipe(Effect.map((m) => JSON.parse(m)), Effect.repeat({ until: (m) => m.method === "ping" }))))
      assert.deepStrictEqual(ping, { method: "ping" })

      // dropped mid-stream: stale, reconnect, resubscribe, fresh snapshot
      yield* ws.drop
      const dropped = yield* within(rec.waitFor(isStale))
      assert.match((dropped.payload as any).staleReason, /^disconnected: closed \(1006/)
      const again = yield* nextRequest
      assert.deepStrictEqual(again.params, { channel: "book", symbol: ["BTC/USD"], depth: 10, snapshot: true })
      yield* nextRequest
      yield* nextRequest
      yield* ws.sendAll(f.reconnected)
      const back = yield* within(rec.waitFor(isConsistent))
      assert.strictEqual((back.payload as any).checksum, 154802010)
      yield* within(rec.waitFor(isTrade("4665909")))

      // silence: the stalled connection is replaced
      yield* nextRequest
      assert.strictEqual(provider.stats().stalls, 1)

      yield* stopProvider(run)
      assert.deepStrictEqual(yield* takeCloses(ws, 3), [1006, 1000, 1000])
      yield* assertDelivered(rec.seen, ["4665906", "4665908", "4665909"], 10)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))

  it.live("hostile frames: refused, counted, dead-lettered; the book named goes stale and is resubscribed; the other symbol flows on", () =>
    Effect.gen(function*() {
      const ws = yield* venueServer
      const rest = yield* restServer
      const run = yield* runProvider(KrakenConfig.make({
        symbols: ["BTC-USD", "ETH-USD"],
        ...localVenue(ws, rest),
        bookDepth: 10,
        depth: 10,
        pingIntervalMs: 600_000,
        maxFrameBytes: 64 * 1024
      }))
      const { provider, rec } = run
      const nextRequest = within(Queue.take(ws.received).pipe(
        Effect.map((m) => JSON.parse(m)),
        Effect.repeat({ until: (m) => m.method !== "ping" })
      ))
      yield* nextRequest
      yield* nextRequest
      yield* nextRequest

      const btc = new OrderBook("BTC-USD")
      const btcBids: Wire = [["45283.5", "0.10000000"], ["45283.4", "1.54582015"], ["45282.1", "0.10000000"]]
      const btcAsks: Wire = [["45285.2", "0.00100000"], ["45286.4", "1.54571953"], ["45286.6", "1.54571109"]]
      btc.reset(toLevels(btcBids), toLevels(btcAsks))
      const btcSnapshot = bookFrame("snapshot", "BTC/USD", btcBids, btcAsks, krakenChecksum(btc))
      const eth = new OrderBook("ETH-USD")
      const ethBids: Wire = [["2000.1", "3.5"], ["1999.9", "1.25"]]
      const ethAsks: Wire = [["2000.6", "2.0"], ["2001.0", "4.75"]]
      eth.reset(toLevels(ethBids), toLevels(ethAsks))
      yield* ws.sendAll([btcSnapshot, bookFrame("snapshot", "ETH/USD", ethBids, ethAsks, krakenChecksum(eth))])
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "BTC-USD"))
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "ETH-USD"))

      const update = (bids: Wire, asks: Wire, checksum?: string) =>
        bookFrame("update", "BTC/USD", bids, asks, checksum ?? checksumAfter(btc, bids, asks))
      const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
      const many: Wire = Array.from({ length: 3_000 }, (_, i) => [`${40_000 + i}.5`, "0.12345678"] as const)
      const cases: ReadonlyArray<HostileCase> = [
        { name: "negative quantity, checksum over its digits", frame: update([["45283.5", "-0.50000000"]], []), reason: "schema", stale: "BTC-USD" },
        { name: "price in exponent form", frame: update([["1e3000000", "0.5"]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "quantity in exponent form", frame: update([["45283.5", "5E-8"]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "too many integer digits", frame: update([["123456789012345678901.5", "1"]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "too many fraction digits", frame: update([["45283.5", "0.1234567890123456789"]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "leading plus", frame: update([["45283.5", "\"+0.5\""]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "Infinity as a string", frame: update([["\"Infinity\"", "0.5"]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "NaN literal", frame: update([["45283.5", "NaN"]], [], "1"), reason: "invalid_json" },
        { name: "zero price", frame: update([["0", "0.5"]], [], "1"), reason: "schema", stale: "BTC-USD" },
        { name: "zero quantity in a snapshot", frame: bookFrame("snapshot", "BTC/USD", [["45283.5", "0"]], btcAsks, 1), reason: "schema", stale: "BTC-USD" },
        { name: "missing checksum", frame: `{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[]}]}`, reason: "schema", stale: "BTC-USD" },
        { name: "wrong type: bids an object", frame: `{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":{},"asks":[],"checksum":1}]}`, reason: "schema", stale: "BTC-USD" },
        { name: "checksum beyond 2^64", frame: update([], [], "18446744073709551617"), reason: "schema", stale: "BTC-USD" },
        { name: "nesting 12 deep in a book", frame: `{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":${deep(8)},"asks":[],"checksum":1}]}`, reason: "schema", stale: "BTC-USD" },
        { name: "nesting 10,000 deep in a book", frame: `{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":${deep(10_000)},"asks":[],"checksum":1}]}`, reason: "too_deep" },
        { name: "nesting 10,000 deep, whole frame", frame: deep(10_000), reason: "too_deep" },
        { name: "unknown symbol", frame: bookFrame("update", "DOGE/USD", [["0.1", "5"]], [], 1), reason: "unknown_symbol" },
        { name: "trade at price zero", frame: tradeFrame("BTC/USD", 77, "0"), reason: "schema" },
        { name: "trade with a negative quantity", frame: tradeFrame("BTC/USD", 78, "45283.5", "-1"), reason: "schema" },
        { name: "frame over the limit", frame: update(many, [], "1"), reason: "frame_too_large" },
        { name: "truncated JSON", frame: update([["45283.5", "0.1"]], []).slice(0, 60), reason: "invalid_json" }
      ]

      yield* runHostileTable({
        provider,
        rec,
        send: ws.send,
        cases,
        bystander: "ETH-USD",
        probe: (i) => ({ frame: tradeFrame("ETH/USD", 9_000 + i), tradeId: String(9_000 + i) }),
        recover: (symbol) =>
          Effect.gen(function*() {
            assert.strictEqual(symbol, "BTC-USD")
            assert.deepStrictEqual([(yield* nextRequest).method, (yield* nextRequest).method], ["unsubscribe", "subscribe"])
            yield* ws.send(btcSnapshot)
            yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "BTC-USD"))
          })
      })

      // the book still works: a valid update is applied and published
      const ok: Wire = [["45283.5", "0.20000000"]]
      yield* ws.send(update(ok, []))
      const delta = yield* within(rec.waitFor((s) => isDelta(s) && s.symbol === "BTC-USD"))
      assert.deepStrictEqual((delta.payload as any).bids, [["45283.5", "0.20000000"]])
      assert.strictEqual(provider.stats().malformedTotal, cases.length)

      yield* stopProvider(run)
      yield* assertDelivered(rec.seen, cases.map((_, i) => String(9_000 + i)), 10)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
