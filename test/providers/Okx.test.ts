import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { OkxConfig } from "../../schema/ProviderConfig.js"
import type { Trade } from "../../schema/Event.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runProvider, stopProvider, takeCloses, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

describe("OKX adapter", () => {
  it.live("syncs books from the REST snapshot, validates the seqId chain, and survives a gap, bad frames, a drop and a stall", () =>
    Effect.gen(function*() {
      const f = readFrames("okx-v5.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      let body = f["rest-1"][0]
      rest.route("/api/v5/market/books", () => body)
      const run = yield* runProvider(OkxConfig.make({
        symbols: ["BTC-USDT"],
        ...localVenue(ws, rest),
        stallTimeoutMs: 1_000,
        pingIntervalMs: 150
      }))
      const { provider, rec } = run
      const pings: Array<string> = []
      const nextRequest = within(Queue.take(ws.received).pipe(
        Effect.tap((m) => m === "ping" ? pings.push(m) : undefined),
        Effect.repeat({ until: (m) => m !== "ping" }),
        Effect.map((m) => JSON.parse(m))
      ))

      assert.deepStrictEqual(yield* nextRequest, {
        op: "subscribe",
        args: [
          { channel: "books", instId: "BTC-USDT" },
          { channel: "trades", instId: "BTC-USDT" },
          { channel: "tickers", instId: "BTC-USDT" }
        ]
      })
      // updates buffered; the REST snapshot (no seqId) drops those older than its ts; the chain starts after it
      yield* ws.sendAll(f.subscribed)
      const first = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual([(first.payload as any).bids, (first.payload as any).asks], [
        [["41006.3", "0.40000000"], ["41005.9", "2.00000000"]],
        [["41006.8", "0.60038921"], ["41007.2", "1.20000000"]]
      ])
      assert.deepStrictEqual(rest.requests, ["/api/v5/market/books?instId=BTC-USDT&sz=400"])

      yield* ws.sendAll(f.live)
      const delta = yield* within(rec.waitFor(isDelta))
      assert.deepStrictEqual([(delta.payload as any).asks, (delta.payload as any).lastSeq], [[["41007.2", "0"]], 103])
      const trade = yield* within(rec.waitFor((s) => s.kind === "trade"))
      assert.deepStrictEqual([(trade.payload as Trade).side, (trade.payload as Trade).exchangeTs], ["buy", 1629966437100])
      yield* within(rec.waitFor((s) => s.kind === "ticker"))

      // prevSeqId 104 does not name the last seqId 103: stale, resync from REST (this one carries a seqId)
      body = f["rest-2"][0]
      yield* ws.sendAll(f.gap)
      const stale = yield* within(rec.waitFor(isStale))
      assert.strictEqual((stale.payload as any).staleReason, "gap: expected prevSeqId=103, received prevSeqId=104 seqId=105")
      const resynced = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual((resynced.payload as any).bids[1], ["41006.0", "1.00000000"])
      yield* ws.sendAll(f["after-gap"])
      const next = yield* within(rec.waitFor((s) => isDelta(s) && (s.payload as any).lastSeq === 106))
      assert.deepStrictEqual((next.payload as any).asks, [["41006.9", "0.10000000"]])
      assert.deepStrictEqual([provider.stats().gaps, provider.stats().resyncs], [1, 1])

      yield* ws.sendAll(f.bad)
      yield* within(rec.waitFor(isTrade("130639476")))
      assert.deepStrictEqual(provider.stats().malformed, { invalid_json: 1, unknown_message: 1, schema: 1, venue_error: 1 })
      assert.deepStrictEqual((yield* DeadLetter).entries().map((e) => e.raw), f.bad.slice(0, 4))
      if (pings.length === 0) assert.strictEqual(yield* within(Queue.take(ws.received)), "ping")

      body = f["rest-3"][0]
      yield* ws.drop
      const dropped = yield* within(rec.waitFor(isStale))
      assert.match((dropped.payload as any).staleReason, /^disconnected: closed \(1006/)
      assert.strictEqual((yield* nextRequest).op, "subscribe")
      yield* ws.sendAll(f.reconnected)
      const back = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual((back.payload as any).bids, [["41006.3", "0.50000000"]])
      yield* within(rec.waitFor(isTrade("130639477")))

      assert.strictEqual((yield* nextRequest).op, "subscribe")
      assert.strictEqual(provider.stats().stalls, 1)

      yield* stopProvider(run)
      assert.deepStrictEqual(yield* takeCloses(ws, 3), [1006, 1000, 1000])
      yield* assertDelivered(rec.seen, ["130639474", "130639476", "130639477"], 20)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
