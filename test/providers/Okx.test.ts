import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { OkxConfig } from "../../schema/ProviderConfig.js"
import type { Trade } from "../../schema/Event.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { HostileCase } from "./helpers.js"
import { assertDelivered, isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, runHostileTable, runProvider, stopProvider, takeCloses, venueLayer, within } from "./helpers.js"
import { restServer, venueServer } from "./servers.js"

type Wire = ReadonlyArray<readonly [string, string]>
const okxLevels = (ls: Wire) => JSON.stringify(ls.map(([p, q]) => [p, q, "0", "1"]))
const booksFrame = (instId: string, action: "snapshot" | "update", prev: string | number, seq: string | number, bids: Wire, asks: Wire = []) =>
  `{"arg":{"channel":"books","instId":"${instId}"},"action":"${action}","data":[{"asks":${okxLevels(asks)},"bids":${okxLevels(bids)},"ts":"1700000000000","checksum":0,"prevSeqId":${prev},"seqId":${seq}}]}`
const tradesFrame = (instId: string, id: string, px = "2000.5", sz = "0.25") =>
  `{"arg":{"channel":"trades","instId":"${instId}"},"data":[{"instId":"${instId}","tradeId":"${id}","px":"${px}","sz":"${sz}","side":"buy","ts":"1700000000000"}]}`

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

  it.live("hostile frames: refused, counted, dead-lettered; the book named goes stale and resyncs; the other instrument flows on", () =>
    Effect.gen(function*() {
      const ws = yield* venueServer
      const rest = yield* restServer
      const seqId = 5_000
      const snapshot = (bids: Wire, asks: Wire) =>
        JSON.stringify({ code: "0", msg: "", data: [{ asks: JSON.parse(okxLevels(asks)), bids: JSON.parse(okxLevels(bids)), ts: "1700000000000", checksum: 0, prevSeqId: -1, seqId }] })
      const snapshots: Record<string, string> = {
        "BTC-USDT": snapshot([["64000.1", "1.5"], ["63999", "2"]], [["64000.2", "0.7"]]),
        "ETH-USDT": snapshot([["3200.01", "4"]], [["3200.05", "3"]])
      }
      rest.route("/api/v5/market/books", (q) => snapshots[q.get("instId") ?? ""] ?? "{}")
      const run = yield* runProvider(OkxConfig.make({
        symbols: ["BTC-USDT", "ETH-USDT"],
        ...localVenue(ws, rest),
        pingIntervalMs: 600_000,
        maxFrameBytes: 64 * 1024
      }))
      const { provider, rec } = run
      yield* within(Queue.take(ws.received))
      // an update per instrument starts each sync; it is not newer than the snapshot and dropped
      yield* ws.sendAll([booksFrame("BTC-USDT", "update", seqId - 1, seqId, []), booksFrame("ETH-USDT", "update", seqId - 1, seqId, [])])
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "BTC-USDT"))
      yield* within(rec.waitFor((s) => isConsistent(s) && s.symbol === "ETH-USDT"))

      const update = (bids: Wire) => booksFrame("BTC-USDT", "update", seqId, seqId + 1, bids)
      const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
      const many: Wire = Array.from({ length: 2_000 }, (_, i) => [`${60_000 + i}.5`, "0.12345678"] as const)
      const cases: ReadonlyArray<HostileCase> = [
        { name: "negative size", frame: update([["64000.1", "-1.5"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "price in exponent form", frame: update([["1e3000000", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "size in exponent form", frame: update([["64000.1", "5E-8"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "too many integer digits", frame: update([["123456789012345678901", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "too many fraction digits", frame: update([["64000.1", "0.1234567890123456789"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "leading plus", frame: update([["64000.1", "+1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "NaN", frame: update([["NaN", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "Infinity", frame: update([["64000.1", "Infinity"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "zero price", frame: update([["0", "1"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "zero size in a snapshot", frame: booksFrame("BTC-USDT", "snapshot", -1, seqId + 1, [["64000.1", "0"]]), reason: "schema", stale: "BTC-USDT" },
        { name: "missing ts", frame: update([]).replace(`"ts":"1700000000000",`, ""), reason: "schema", stale: "BTC-USDT" },
        { name: "wrong type: seqId a string", frame: booksFrame("BTC-USDT", "update", seqId, `"${seqId + 1}"`, []), reason: "schema", stale: "BTC-USDT" },
        { name: "seqId beyond 2^53", frame: booksFrame("BTC-USDT", "update", seqId, "9007199254740993", []), reason: "schema", stale: "BTC-USDT" },
        { name: "nesting 12 deep in an update", frame: update([]).replace(`"bids":[]`, `"bids":${deep(8)}`), reason: "schema", stale: "BTC-USDT" },
        { name: "nesting 10,000 deep in an update", frame: update([]).replace(`"bids":[]`, `"bids":${deep(10_000)}`), reason: "too_deep" },
        { name: "unknown instrument", frame: booksFrame("XRP-USDT", "update", 1, 2, [["0.5", "1"]]), reason: "unknown_symbol" },
        { name: "trade at price zero", frame: tradesFrame("BTC-USDT", "77", "0"), reason: "schema" },
        { name: "trade with a negative size", frame: tradesFrame("BTC-USDT", "78", "64000.1", "-1"), reason: "schema" },
        { name: "frame over the limit", frame: update(many), reason: "frame_too_large" },
        { name: "truncated JSON", frame: update([["64000.1", "1"]]).slice(0, 60), reason: "invalid_json" }
      ]

      yield* runHostileTable({
        provider,
        rec,
        send: ws.send,
        cases,
        bystander: "ETH-USDT",
        probe: (i) => ({ frame: tradesFrame("ETH-USDT", String(9_000 + i)), tradeId: String(9_000 + i) }),
        // a fresh REST snapshot, fetched at once
        recover: (symbol) => within(rec.waitFor((s) => isConsistent(s) && s.symbol === symbol))
      })

      // the book still works: the next update chains onto the snapshot and is published
      yield* ws.send(update([["64000.1", "2.5"]]))
      const delta = yield* within(rec.waitFor((s) => isDelta(s) && s.symbol === "BTC-USDT"))
      assert.deepStrictEqual((delta.payload as any).bids, [["64000.1", "2.5"]])
      assert.strictEqual(provider.stats().malformedTotal, cases.length)

      yield* stopProvider(run)
      yield* assertDelivered(rec.seen, cases.map((_, i) => String(9_000 + i)), 20)
    }).pipe(Effect.scoped, Effect.provide(venueLayer)))
})
