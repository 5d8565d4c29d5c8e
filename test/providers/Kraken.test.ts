import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { KrakenConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runProvider, stopProvider, takeCloses, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

describe("Kraken v2 adapter", () => {
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
})
