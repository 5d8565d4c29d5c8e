import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { CoinbaseConfig } from "../../schema/ProviderConfig.js"
import type { Trade } from "../../schema/Event.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runProvider, stopProvider, takeCloses, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

describe("Coinbase Advanced Trade adapter", () => {
  it.live("subscribes heartbeats with level2, detects a sequence_num gap, resubscribes, and survives bad frames, a drop and a stall", () =>
    Effect.gen(function*() {
      const f = readFrames("coinbase-advanced-trade.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      const run = yield* runProvider(CoinbaseConfig.make({
        symbols: ["BTC-USD"],
        ...localVenue(ws, rest),
        stallTimeoutMs: 1_000
      }))
      const { provider, rec } = run
      const nextRequest = within(Queue.take(ws.received).pipe(Effect.map((m) => JSON.parse(m))))

      assert.deepStrictEqual([yield* nextRequest, yield* nextRequest, yield* nextRequest, yield* nextRequest], [
        { type: "subscribe", channel: "heartbeats" },
        { type: "subscribe", product_ids: ["BTC-USD"], channel: "level2" },
        { type: "subscribe", product_ids: ["BTC-USD"], channel: "market_trades" },
        { type: "subscribe", product_ids: ["BTC-USD"], channel: "ticker" }
      ])
      yield* ws.sendAll(f.subscribed)
      const first = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual([(first.payload as any).bids, (first.payload as any).asks], [
        [["21921.73", "0.06317902"], ["21921.3", "0.02"]],
        [["21921.74", "0.01"], ["21922.5", "1.5"]]
      ])

      yield* ws.sendAll(f.live)
      const delta = yield* within(rec.waitFor(isDelta))
      assert.deepStrictEqual([(delta.payload as any).bids, (delta.payload as any).asks, (delta.payload as any).lastSeq], [
        [["21921.3", "0"]],
        [["21921.9", "0.75"]],
        4
      ])
      // the public trade names the maker's side; the canonical trade carries the aggressor's
      const trade = yield* within(rec.waitFor((s) => s.kind === "trade"))
      assert.deepStrictEqual([(trade.payload as Trade).tradeId, (trade.payload as Trade).side], ["000000001", "buy"])
      const ticker = yield* within(rec.waitFor((s) => s.kind === "ticker"))
      assert.deepStrictEqual([(ticker.payload as any).bidPrice, (ticker.payload as any).askQty], ["21921.73", "0.01"])

      // sequence_num 8 never arrives: every book stale at once, level2 resubscribed
      yield* ws.sendAll(f.gap)
      const stale = yield* within(rec.waitFor(isStale))
      assert.strictEqual((stale.payload as any).staleReason, "gap: expected sequence_num=8, received sequence_num=9")
      assert.deepStrictEqual([yield* nextRequest, yield* nextRequest], [
        { type: "unsubscribe", product_ids: ["BTC-USD"], channel: "level2" },
        { type: "subscribe", product_ids: ["BTC-USD"], channel: "level2" }
      ])
      yield* ws.sendAll(f.resubscribed)
      const resynced = yield* within(rec.waitFor(isConsistent))
      assert.deepStrictEqual((resynced.payload as any).bids, [["21921.73", "0.06317902"], ["21921.5", "0.4"]])
      yield* within(rec.waitFor((s) => isDelta(s) && (s.payload as any).lastSeq === 11))
      assert.deepStrictEqual([provider.stats().gaps, provider.stats().resyncs], [1, 1])

      yield* ws.sendAll(f.bad)
      yield* within(rec.waitFor(isTrade("000000003")))
      assert.deepStrictEqual(provider.stats().malformed, { invalid_json: 1, unknown_message: 1, schema: 1, venue_error: 1 })
      assert.deepStrictEqual((yield* DeadLetter).entries().map((e) => e.raw), f.bad.slice(0, 4))
      // the invalid frame consumed sequence_num 12 unseen: that is a gap too
      assert.strictEqual(provider.stats().gaps, 2)
      assert.deepStrictEqual([(yield* nextRequest).type, (yield* nextRequest).type], ["unsubscribe", "subscribe"])
      yield* ws.sendAll(f["resubscribed-again"])
      yield* within(rec.waitFor((s) => isConsistent(s) && (s.payload as any).asks[0][1] === "0.02"))

      yield* ws.drop
      yield* within(rec.waitFor((s) => isStale(s) && /^disconnected: closed \(1006/.test((s.payload as any).staleReason)))
      const again = [yield* nextRequest, yield* nextRequest, yield* nextRequest, yield* nextRequest]
      assert.deepStrictEqual(again.map((m) => m.channel), ["heartbeats", "level2", "market_trades", "ticker"])
      yield* ws.sendAll(f.reconnected)
      const back = yield* within(rec.waitFor((s) => isConsistent(s) && (s.payload as any).bids[0][0] === "21930.01"))
      assert.deepStrictEqual((back.payload as any).asks, [["21930.02", "2"]])
      yield* within(rec.waitFor(isTrade("000000004")))

      assert.strictEqual((yield* nextRequest).channel, "heartbeats")
      assert.strictEqual(provider.stats().stalls, 1)

      yield* stopProvider(run)
      assert.deepStrictEqual(yield* takeCloses(ws, 3), [1006, 1000, 1000])
      yield* assertDelivered(rec.seen, ["000000001", "000000003", "000000004"], 20)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
