import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { CoinbaseConfig } from "../../schema/ProviderConfig.js"
import type { Trade } from "../../schema/Event.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { HostileCase } from "./helpers.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runHostileTable, runProvider, stopProvider, takeCloses, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

type Wire = ReadonlyArray<readonly [string, string]>
const TS = "2023-02-09T20:32:50.714964855Z"
const l2Frame = (seq: string | number, product: string, type: "snapshot" | "update", bids: Wire, asks: Wire = []) =>
  `{"channel":"l2_data","client_id":"","timestamp":"${TS}","sequence_num":${seq},"events":[{"type":"${type}","product_id":"${product}","updates":${
    JSON.stringify([
      ...bids.map(([p, q]) => ({ side: "bid", event_time: TS, price_level: p, new_quantity: q })),
      ...asks.map(([p, q]) => ({ side: "offer", event_time: TS, price_level: p, new_quantity: q }))
    ])
  }}]}`
const tradesFrame = (seq: number, product: string, id: string, price = "2000.5", size = "0.25") =>
  `{"channel":"market_trades","client_id":"","timestamp":"${TS}","sequence_num":${seq},"events":[{"type":"update","trades":[{"trade_id":"${id}","product_id":"${product}","price":"${price}","size":"${size}","side":"BUY","time":"${TS}"}]}]}`

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

  it.live("hostile frames: refused, counted, dead-lettered; the book named goes stale and is resubscribed; the other product flows on", () =>
    Effect.gen(function*() {
      const ws = yield* venueServer
      const rest = yield* restServer
      const run = yield* runProvider(CoinbaseConfig.make({
        symbols: ["BTC-USD", "ETH-USD"],
        ...localVenue(ws, rest),
        maxFrameBytes: 64 * 1024
      }))
      const { provider, rec } = run
      const nextRequest = within(Queue.take(ws.received).pipe(Effect.map((m) => JSON.parse(m))))
      for (let i = 0; i < 4; i++) yield* nextRequest
      /** Every message on the connection carries the next sequence_num; refused text does not use one. */
      let seq = 0
      const btcBook: Wire = [["64000.10", "1.5"], ["63999", "2"]]
      const btcSnapshot = () => l2Frame(++seq, "BTC-USD", "snapshot", btcBook, [["64000.20", "0.7"]])
      yield* ws.sendAll([btcSnapshot(), l2Frame(++seq, "ETH-USD", "snapshot", [["3200.01", "4"]], [["3200.05", "3"]])])
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "BTC-USD"))
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "ETH-USD"))

      const update = (bids: Wire) => () => l2Frame(++seq, "BTC-USD", "update", bids)
      const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
      const many: Wire = Array.from({ length: 700 }, (_, i) => [`${60_000 + i}.5`, "0.12345678"] as const)
      const cases: ReadonlyArray<HostileCase> = [
        { name: "negative quantity", frame: update([["64000.10", "-1.5"]]), reason: "schema", stale: "BTC-USD" },
        { name: "price in exponent form", frame: update([["1e3000000", "1"]]), reason: "schema", stale: "BTC-USD" },
        { name: "quantity in exponent form", frame: update([["64000.10", "5E-8"]]), reason: "schema", stale: "BTC-USD" },
        { name: "too many integer digits", frame: update([["123456789012345678901", "1"]]), reason: "schema", stale: "BTC-USD" },
        { name: "too many fraction digits", frame: update([["64000.10", "0.1234567890123456789"]]), reason: "schema", stale: "BTC-USD" },
        { name: "leading plus", frame: update([["64000.10", "+1"]]), reason: "schema", stale: "BTC-USD" },
        { name: "NaN", frame: update([["NaN", "1"]]), reason: "schema", stale: "BTC-USD" },
        { name: "Infinity", frame: update([["64000.10", "Infinity"]]), reason: "schema", stale: "BTC-USD" },
        { name: "zero price", frame: update([["0", "1"]]), reason: "schema", stale: "BTC-USD" },
        { name: "zero quantity in a snapshot", frame: () => l2Frame(++seq, "BTC-USD", "snapshot", [["64000.10", "0"]]), reason: "schema", stale: "BTC-USD" },
        { name: "missing new_quantity", frame: () => update([["64000.10", "1"]])().replace(`,"new_quantity":"1"`, ""), reason: "schema", stale: "BTC-USD" },
        { name: "wrong type: updates an object", frame: () => update([])().replace(`"updates":[]`, `"updates":{}`), reason: "schema", stale: "BTC-USD" },
        // refused without moving the sequence: the next message is in order
        { name: "sequence_num beyond 2^53", frame: l2Frame("9007199254740993", "BTC-USD", "update", []), reason: "schema", stale: "BTC-USD" },
        { name: "nesting 12 deep in an update", frame: () => update([])().replace(`"updates":[]`, `"updates":${deep(9)}`), reason: "schema", stale: "BTC-USD" },
        { name: "nesting 10,000 deep in an update", frame: l2Frame(0, "BTC-USD", "update", []).replace(`"updates":[]`, `"updates":${deep(10_000)}`), reason: "too_deep" },
        { name: "unknown product", frame: () => l2Frame(++seq, "XRP-USD", "update", [["0.5", "1"]]), reason: "unknown_symbol" },
        { name: "trade at price zero", frame: () => tradesFrame(++seq, "BTC-USD", "77", "0"), reason: "schema" },
        { name: "trade with a negative size", frame: () => tradesFrame(++seq, "BTC-USD", "78", "64000.1", "-1"), reason: "schema" },
        { name: "frame over the limit", frame: l2Frame(0, "BTC-USD", "update", many), reason: "frame_too_large" },
        { name: "truncated JSON", frame: l2Frame(0, "BTC-USD", "update", []).slice(0, 60), reason: "invalid_json" }
      ]

      yield* runHostileTable({
        provider,
        rec,
        send: ws.send,
        cases,
        bystander: "ETH-USD",
        probe: (i) => ({ frame: tradesFrame(++seq, "ETH-USD", String(9_000 + i)), tradeId: String(9_000 + i) }),
        // level2 resubscribed; the venue answers with a fresh snapshot
        recover: (symbol) =>
          Effect.gen(function*() {
            assert.deepStrictEqual([yield* nextRequest, yield* nextRequest], [
              { type: "unsubscribe", product_ids: [symbol], channel: "level2" },
              { type: "subscribe", product_ids: [symbol], channel: "level2" }
            ])
            yield* ws.send(btcSnapshot())
            yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === symbol))
          })
      })

      // the book still works, and no gap was ever seen
      yield* ws.send(update([["64000.10", "2.5"]])())
      const delta = yield* within(rec.waitFor((s) => isDelta(s) && s.symbol === "BTC-USD"))
      assert.deepStrictEqual((delta.payload as any).bids, [["64000.10", "2.5"]])
      assert.deepStrictEqual([provider.stats().malformedTotal, provider.stats().gaps], [cases.length, 0])

      yield* stopProvider(run)
      yield* assertDelivered(rec.seen, cases.map((_, i) => String(9_000 + i)), 20)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
