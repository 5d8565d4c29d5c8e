import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { BinanceConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runProvider, stopProvider, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

describe("Binance adapter", () => {
  it.live("syncs the diff-depth book from the REST snapshot, survives a gap, bad frames, a drop and a stall, and closes its socket", () =>
    Effect.gen(function*() {
      const f = readFrames("binance-spot.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      let snapshot = f["snapshot-157"][0]
      rest.route("/api/v3/depth", () => snapshot)

      const run = yield* runProvider(BinanceConfig.make({
        symbols: ["BNB-BTC"],
        ...localVenue(ws, rest),
        stallTimeoutMs: 1_500
      }))
      const { provider, rec } = run

      // subscribe, then the documentation's sync: buffer, REST snapshot, drop u <= lastUpdateId, chain
      assert.deepStrictEqual(JSON.parse(yield* within(Queue.take(ws.received))), {
        method: "SUBSCRIBE",
        params: ["bnbbtc@trade", "bnbbtc@bookTicker", "bnbbtc@depth@100ms"],
        id: 1
      })
      yield* ws.sendAll([...f.subscribed, ...f.initial])
      const first = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual([(first.payload as any).bids, (first.payload as any).asks], [
        [["0.0024", "12.5"], ["0.00220000", "6.40000000"], ["0.0021", "3"]],
        [["0.00260000", "3.60000000"]]
      ])
      assert.deepStrictEqual(rest.requests, ["/api/v3/depth?symbol=BNBBTC&limit=1000"])

      yield* ws.sendAll(f.live)
      const delta = yield* within(rec.waitFor(isDelta))
      assert.deepStrictEqual([(delta.payload as any).firstSeq, (delta.payload as any).lastSeq, (delta.payload as any).bids], [161, 161, [["0.0023", "1.25"]]])

      // a dropped diff: stale at once, resync from a fresh snapshot
      snapshot = f["snapshot-165"][0]
      yield* ws.sendAll(f.gap)
      const stale = yield* within(rec.waitFor(isStale))
      assert.strictEqual((stale.payload as any).staleReason, "gap: expected U <= 162, received U=165 u=166")
      assert.deepStrictEqual([(stale.payload as any).bids, (stale.payload as any).asks], [[], []])
      const resynced = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual((resynced.payload as any).asks, [["0.0026", "2.5"]])
      yield* ws.sendAll(f["after-gap"])
      yield* within(rec.waitFor((s) => isDelta(s) && s.payload.firstSeq === 167))
      assert.strictEqual(provider.stats().gaps, 1)
      assert.strictEqual(provider.stats().resyncs, 1)

      // malformed JSON, an unknown stream, a schema failure: counted, dead-lettered, the next frame still processed
      yield* ws.sendAll(f.bad)
      yield* within(rec.waitFor(isTrade("12347")))
      assert.deepStrictEqual(provider.stats().malformed, { invalid_json: 1, unknown_message: 1, schema: 1 })
      const dl = yield* DeadLetter
      assert.deepStrictEqual(dl.entries().map((e) => [e.source, e.reason, e.raw]), [
        ["binance", "invalid_json", f.bad[0]],
        ["binance", "unknown_message", f.bad[1]],
        ["binance", "schema", f.bad[2]]
      ])

      // a disconnect mid-stream (no close frame: 1006): stale, reconnect, resubscribe, resync
      snapshot = f["snapshot-171"][0]
      yield* ws.drop
      const dropped = yield* within(rec.waitFor(isStale))
      assert.match((dropped.payload as any).staleReason, /^disconnected: closed \(1006/)
      assert.strictEqual(JSON.parse(yield* within(Queue.take(ws.received))).method, "SUBSCRIBE")
      yield* ws.sendAll(f.reconnected)
      const back = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual((back.payload as any).bids, [["0.0024", "20"]])
      yield* within(rec.waitFor(isTrade("12348")))

      // a server that stalls: the client gives up on the silent connection and reconnects
      assert.strictEqual(JSON.parse(yield* within(Queue.take(ws.received))).method, "SUBSCRIBE")
      assert.strictEqual(provider.stats().stalls, 1)
      assert.strictEqual((yield* provider.status).connected, true)

      // closing the provider's scope closes the socket and stops every fiber
      const closesBefore = yield* Queue.size(ws.closes)
      yield* stopProvider(run)
      const codes = yield* within(Effect.all(Array.from({ length: closesBefore + 1 }, () => Queue.take(ws.closes))))
      assert.deepStrictEqual(codes, [1006, 1000, 1000])
      assert.strictEqual(ws.clients().length, 0)
      assert.isFalse((yield* provider.status).connected)

      // nothing lost, nothing leaked
      const stats = provider.stats()
      assert.deepStrictEqual([stats.connects, stats.disconnects, stats.reconnects], [3, 2, 2])
      yield* assertDelivered(rec.seen, ["12345", "12347", "12348"], 20)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
