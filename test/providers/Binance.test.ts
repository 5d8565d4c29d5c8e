import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { BinanceConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { HostileCase } from "./helpers.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runHostileTable, runProvider, stopProvider, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

type Wire = ReadonlyArray<readonly [string, string]>
const depthFrame = (symbol: string, U: string | number, u: string | number, bids: Wire, asks: Wire = []) =>
  `{"stream":"${symbol.toLowerCase()}@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"${symbol}","U":${U},"u":${u},"b":${JSON.stringify(bids)},"a":${JSON.stringify(asks)}}}`
const tradeFrame = (symbol: string, id: string | number, price = "\"2000.5\"", qty = "\"0.25\"") =>
  `{"stream":"${symbol.toLowerCase()}@trade","data":{"e":"trade","E":1700000000000,"s":"${symbol}","t":${id},"p":${price},"q":${qty},"T":1700000000000,"m":false}}`

/** An aggregate trade (`@aggTrade`): id `a`, covering trade ids `f`..`l`; `m` true when the buyer is the maker. */
const aggTradeFrame = (symbol: string, id: string | number, fields: { p?: string; q?: string; f?: string | number; l?: string | number; m?: string; T?: string | number } = {}) =>
  `{"stream":"${symbol.toLowerCase()}@aggTrade","data":{"e":"aggTrade","E":1700000000100,"s":"${symbol}","a":${id},"p":${fields.p ?? "\"2000.5\""},"q":${fields.q ?? "\"0.25\""},"f":${fields.f ?? 100},"l":${fields.l ?? 102},"T":${fields.T ?? 1700000000099},"m":${fields.m ?? "true"},"M":true}}`

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

  it.live("tradeStream aggTrade: subscribes @aggTrade; an aggregate trade is a canonical trade (id a, side from m, time T)", () =>
    Effect.gen(function*() {
      const ws = yield* venueServer
      const rest = yield* restServer
      rest.route("/api/v3/depth", () => JSON.stringify({ lastUpdateId: 1, bids: [["64000.10", "1"]], asks: [["64000.20", "1"]] }))
      const run = yield* runProvider(BinanceConfig.make({ symbols: ["BTC-USDT"], ...localVenue(ws, rest), tradeStream: "aggTrade" }))
      const { provider, rec } = run
      assert.deepStrictEqual(JSON.parse(yield* within(Queue.take(ws.received))).params, ["btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@depth@100ms"])

      // the buyer is the maker: the aggressor sold; then a buy, as a bare (uncombined) frame
      yield* ws.send(aggTradeFrame("BTCUSDT", 15683430, { p: "\"64000.12\"", q: "\"0.015\"", T: 1700000000001, m: "true" }))
      yield* ws.send(`{"e":"aggTrade","E":1700000000200,"s":"BTCUSDT","a":15683431,"p":"64000.13","q":"2","f":103,"l":103,"T":1700000000199,"m":false,"M":true}`)
      const sell = yield* within(rec.waitFor(isTrade("15683430")))
      const buy = yield* within(rec.waitFor(isTrade("15683431")))
      assert.deepStrictEqual<unknown>(
        [sell.symbol, { ...sell.payload }, { ...buy.payload }],
        [
          "BTC-USDT",
          { _tag: "trade", tradeId: "15683430", price: "64000.12", quantity: "0.015", side: "sell", exchangeTs: 1700000000001 },
          { _tag: "trade", tradeId: "15683431", price: "64000.13", quantity: "2", side: "buy", exchangeTs: 1700000000199 }
        ]
      )
      assert.deepStrictEqual([sell.seq, buy.seq], [1, 2])
      assert.strictEqual(provider.stats().malformedTotal, 0)
      yield* stopProvider(run)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))

  it.live("hostile frames: refused, counted, dead-lettered; the book named goes stale and resyncs; the other symbol flows on", () =>
    Effect.gen(function*() {
      const ws = yield* venueServer
      const rest = yield* restServer
      const lastUpdateId = 1_000
      const snapshots: Record<string, string> = {
        BTCUSDT: JSON.stringify({ lastUpdateId, bids: [["64000.10", "1.5"], ["63999.00", "2"]], asks: [["64000.20", "0.7"]] }),
        ETHUSDT: JSON.stringify({ lastUpdateId, bids: [["3200.01", "4"]], asks: [["3200.05", "3"]] })
      }
      rest.route("/api/v3/depth", (q) => snapshots[q.get("symbol") ?? ""] ?? "{}")
      const run = yield* runProvider(BinanceConfig.make({
        symbols: ["BTC-USDT", "ETH-USDT"],
        ...localVenue(ws, rest),
        maxFrameBytes: 64 * 1024
      }))
      const { provider, rec } = run
      yield* within(Queue.take(ws.received))
      // a diff per symbol starts each sync; it is older than the snapshot and dropped
      yield* ws.sendAll([depthFrame("BTCUSDT", lastUpdateId, lastUpdateId, []), depthFrame("ETHUSDT", lastUpdateId, lastUpdateId, [])])
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "BTC-USDT"))
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "ETH-USDT"))

      const next = lastUpdateId + 1
      const diff = (bids: Wire) => depthFrame("BTCUSDT", next, next, bids)
      const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
      const many: Wire = Array.from({ length: 3_000 }, (_, i) => [`${60_000 + i}.5`, "0.12345678"] as const)
      const cases: ReadonlyArray<HostileCase> = [
        { name: "negative quantity", frame: diff([["64000.10", "-1.5"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "price in exponent form", frame: diff([["1e3000000", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "quantity in exponent form", frame: diff([["64000.10", "5E-8"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "too many integer digits", frame: diff([["123456789012345678901", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "too many fraction digits", frame: diff([["64000.10", "0.1234567890123456789"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "leading plus", frame: diff([["64000.10", "+1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "NaN", frame: diff([["NaN", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "Infinity", frame: diff([["64000.10", "Infinity"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "zero price", frame: diff([["0.00", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "missing u", frame: diff([]).replace(`"u":${next},`, ""), reason: "schema", stale: "BTC-USDT" },
        { name: "wrong type: U a string", frame: depthFrame("BTCUSDT", `"${next}"`, next, []), reason: "schema", stale: "BTC-USDT" },
        { name: "wrong type: quantity a number", frame: depthFrame("BTCUSDT", next, next, []).replace(`"b":[]`, `"b":[["64000.10",1.5]]`), reason: "schema", stale: "BTC-USDT" },
        { name: "update id beyond 2^53", frame: depthFrame("BTCUSDT", next, "9007199254740993", []), reason: "schema", stale: "BTC-USDT" },
        { name: "nesting 12 deep in a diff", frame: depthFrame("BTCUSDT", next, next, []).replace(`"b":[]`, `"b":${deep(9)}`), reason: "schema", stale: "BTC-USDT" },
        { name: "nesting 10,000 deep in a diff", frame: depthFrame("BTCUSDT", next, next, []).replace(`"b":[]`, `"b":${deep(10_000)}`), reason: "too_deep" },
        { name: "unknown symbol", frame: depthFrame("XRPUSDT", next, next, [["0.5", "1"]]), reason: "unknown_symbol" },
        { name: "trade at price zero", frame: tradeFrame("BTCUSDT", 77, "\"0\""), reason: "schema" },
        { name: "trade id beyond 2^53", frame: tradeFrame("BTCUSDT", "9007199254740993"), reason: "schema" },
        { name: "trade price as a JSON number", frame: tradeFrame("BTCUSDT", 78, "64000.1"), reason: "schema" },
        { name: "aggTrade at price zero", frame: aggTradeFrame("BTCUSDT", 79, { p: "\"0.00\"" }), reason: "schema" },
        { name: "aggTrade quantity in exponent form", frame: aggTradeFrame("BTCUSDT", 80, { q: "\"1e-8\"" }), reason: "schema" },
        { name: "aggTrade id beyond 2^53", frame: aggTradeFrame("BTCUSDT", "9007199254740993"), reason: "schema" },
        { name: "aggTrade id negative", frame: aggTradeFrame("BTCUSDT", -1), reason: "schema" },
        { name: "aggTrade id a string", frame: aggTradeFrame("BTCUSDT", "\"81\""), reason: "schema" },
        { name: "aggTrade first trade id above the last", frame: aggTradeFrame("BTCUSDT", 82, { f: 200, l: 199 }), reason: "schema" },
        { name: "aggTrade maker flag as text", frame: aggTradeFrame("BTCUSDT", 83, { m: "\"true\"" }), reason: "schema" },
        { name: "aggTrade trade time fractional", frame: aggTradeFrame("BTCUSDT", 84, { T: "1700000000099.5" }), reason: "schema" },
        { name: "aggTrade missing its id", frame: aggTradeFrame("BTCUSDT", 85).replace(`"a":85,`, ""), reason: "schema" },
        { name: "aggTrade of an unknown symbol", frame: aggTradeFrame("XRPUSDT", 86), reason: "unknown_symbol" },
        { name: "a kline (not a canonical event)", frame: `{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1700000000000,"s":"BTCUSDT","k":{"t":1700000000000,"T":1700000059999,"s":"BTCUSDT","i":"1m","o":"64000.1","c":"64000.2","h":"64000.3","l":"64000.0","v":"1.5","x":false}}}`, reason: "unknown_message" },
        { name: "frame over the limit", frame: diff(many), reason: "frame_too_large" },
        { name: "truncated JSON", frame: diff([["64000.10", "1"]]).slice(0, 60), reason: "invalid_json" }
      ]

      yield* runHostileTable({
        provider,
        rec,
        send: ws.send,
        cases,
        bystander: "ETH-USDT",
        probe: (i) => ({ frame: tradeFrame("ETHUSDT", 9_000 + i), tradeId: String(9_000 + i) }),
        // a fresh REST snapshot, fetched at once
        recover: (symbol) => within(rec.waitFor((s) => isConsistent(s) && s.symbol === symbol))
      })

      // the book still works: the next diff chains onto the snapshot and is published
      yield* ws.send(diff([["64000.10", "2.5"]]))
      const delta = yield* within(rec.waitFor((s) => isDelta(s) && s.symbol === "BTC-USDT"))
      assert.deepStrictEqual((delta.payload as any).bids, [["64000.10", "2.5"]])
      assert.strictEqual(provider.stats().malformedTotal, cases.length)

      yield* stopProvider(run)
      yield* assertDelivered(rec.seen, cases.map((_, i) => String(9_000 + i)), 20)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
