import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, TestClock, TestContext } from "effect"
import { SimulatedFaults, SimulatedVenueConfig } from "../../schema/ProviderConfig.js"
import type { Ticker, Trade } from "../../schema/Event.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { Pool } from "../../src/Pool.js"
import { Providers } from "../../src/Provider.js"
import { makeSimulated } from "../../src/providers/Simulated.js"
import { Recycler } from "../../src/Recycler.js"
import { assertContiguous, badPublishedValues, baseLayer, isSnapshot, recordingSink, replayBooks } from "./helpers.js"
import { MALFORMED_LOG_CHARS } from "../../src/providers/internal/feed.js"
import type { MalformedFrame } from "../../schema/Errors.js"

type Wire = ReadonlyArray<readonly [string, string]>
const simFrame = (symbol: string, seq: string | number, bids: Wire, checksum: string | number = 1) =>
  `{"type":"delta","symbol":"${symbol}","seq":${seq},"checksum":${checksum},"bids":${JSON.stringify(bids)},"asks":[]}`

const config = (overrides: Partial<ConstructorParameters<typeof SimulatedVenueConfig>[0]> = {}) =>
  SimulatedVenueConfig.make({
    name: "sim-a",
    symbols: ["BTC-USDT", "ETH-USDT", "SOL-USDT"],
    seed: 7,
    tradesPerSecond: 20,
    tickersPerSecond: 20,
    deltasPerSecond: 50,
    snapshotIntervalMs: 500,
    tickMs: 50,
    ...overrides
  })

const lastWhere = <A>(xs: ReadonlyArray<A>, p: (a: A) => boolean): A | undefined => [...xs].reverse().find(p)

const services = Effect.all({ pool: Pool, recycler: Recycler, deadLetter: DeadLetter })

/** Runs one simulated venue for `ms` of TestClock time and returns what the sink saw. */
const runFor = (cfg: SimulatedVenueConfig, ms: number) =>
  Effect.scoped(Effect.gen(function*() {
    const provider = makeSimulated(cfg, yield* services)
    const rec = yield* recordingSink
    const fiber = yield* Effect.forkScoped(provider.run(rec.sink))
    yield* TestClock.adjust(ms)
    yield* Fiber.interrupt(fiber)
    return { seen: rec.seen, stats: provider.stats() }
  })).pipe(Effect.provide(TestContext.TestContext))

describe("Simulated venues", () => {
  it.effect("hostile raw frames: refused, counted, dead-lettered, logged rate-limited and truncated; the book named goes stale and resyncs; other symbols flow on", () =>
    Effect.gen(function*() {
      const logs: Array<{ readonly error: MalformedFrame; readonly annotations: Record<string, unknown> }> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, message }) => {
          const parts = Array.isArray(message) ? message : [message]
          if (parts[0] === "malformed frame refused") {
            logs.push({ error: parts[1] as MalformedFrame, annotations: Object.fromEntries(annotations) })
          }
        })
      )
      yield* Effect.gen(function*() {
        const provider = makeSimulated(config({ resyncDelayMs: 100, tradesPerSecond: 40, tickMs: 50 }), yield* services)
        const rec = yield* recordingSink
        yield* Effect.forkScoped(provider.run(rec.sink))
        yield* TestClock.adjust(200)
        const dl = yield* DeadLetter
        const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
        const cases: ReadonlyArray<{ name: string; frame: string; reason: string; stale?: boolean }> = [
          { name: "negative quantity", frame: simFrame("BTC-USDT", 1, [["64000.10", "-1.5"]]), reason: "schema", stale: true },
          { name: "price in exponent form", frame: simFrame("BTC-USDT", 1, [["1e3000000", "1"]]), reason: "schema", stale: true },
          { name: "too many fraction digits", frame: simFrame("BTC-USDT", 1, [["64000.10", "0.1234567890123456789"]]), reason: "schema", stale: true },
          { name: "leading plus", frame: simFrame("BTC-USDT", 1, [["64000.10", "+1"]]), reason: "schema", stale: true },
          { name: "NaN", frame: simFrame("BTC-USDT", 1, [["NaN", "1"]]), reason: "schema", stale: true },
          { name: "zero price", frame: simFrame("BTC-USDT", 1, [["0", "1"]]), reason: "schema", stale: true },
          { name: "missing seq", frame: simFrame("BTC-USDT", 1, []).replace(`"seq":1,`, ""), reason: "schema", stale: true },
          { name: "wrong type: seq a string", frame: simFrame("BTC-USDT", `"1"`, []), reason: "schema", stale: true },
          { name: "seq beyond 2^53", frame: simFrame("BTC-USDT", "9007199254740993", []), reason: "schema", stale: true },
          { name: "checksum beyond 32 bits", frame: simFrame("BTC-USDT", 1, [], "4294967296"), reason: "schema", stale: true },
          { name: "nesting 12 deep", frame: simFrame("BTC-USDT", 1, []).replace(`"bids":[]`, `"bids":${deep(11)}`), reason: "schema", stale: true },
          { name: "nesting 10,000 deep", frame: simFrame("BTC-USDT", 1, []).replace(`"bids":[]`, `"bids":${deep(10_000)}`), reason: "too_deep" },
          { name: "unknown symbol", frame: simFrame("DOGE-USDT", 1, [["0.1", "5"]]), reason: "unknown_symbol" },
          { name: "frame over the limit", frame: simFrame("BTC-USDT", 1, Array.from({ length: 3_000 }, (_, i) => [`${60_000 + i}.5`, "0.12345678"] as const)), reason: "frame_too_large" },
          { name: "truncated JSON", frame: simFrame("BTC-USDT", 1, []).slice(0, 30), reason: "invalid_json" }
        ]
        for (const c of cases) {
          const before = provider.stats().malformed[c.reason] ?? 0
          const seenBefore = rec.seen.length
          yield* provider.injectFrame(c.frame)
          yield* TestClock.adjust(50)
          const fresh = rec.seen.slice(seenBefore)
          assert.strictEqual(provider.stats().malformed[c.reason] ?? 0, before + 1, `${c.name}: counted as ${c.reason}`)
          const last = dl.entries().at(-1)!
          assert.deepStrictEqual([last.source, last.reason, last.raw === c.frame.slice(0, dl.settings.maxRawLength)], ["sim-a", c.reason, true], c.name)
          assert.deepStrictEqual(
            fresh.filter((s) => isSnapshot(s) && (s.payload as any).state === "stale").map((s) => s.symbol),
            c.stale === true ? ["BTC-USDT"] : [],
            `${c.name}: stale books`
          )
          // the other symbols went on in the same tick
          assert.isTrue(fresh.some((s) => s.symbol === "ETH-USDT" && s.kind === "trade"), `${c.name}: ETH-USDT trades flow`)
          yield* TestClock.adjust(100)
          assert.isTrue((yield* provider.status).books.every((b) => b.state === "consistent"), `${c.name}: resynced`)
        }
        assert.deepStrictEqual(badPublishedValues(rec.seen), [])

        // a burst of refusals is one log line; the next line counts what was not logged
        yield* TestClock.adjust(1_000)
        const linesBefore = logs.length
        for (let i = 0; i < 30; i++) yield* provider.injectFrame(`{"type":"delta","symbol":"${"X".repeat(20_000)}`)
        yield* TestClock.adjust(50)
        assert.strictEqual(logs.length, linesBefore + 1)
        const burst = logs.at(-1)!
        assert.strictEqual(burst.error._tag, "MalformedFrame")
        assert.isAtMost(burst.error.raw.length, MALFORMED_LOG_CHARS + 32)
        assert.match(burst.error.raw, /\.\.\. \(20026 chars\)$/)
        yield* TestClock.adjust(1_000)
        yield* provider.injectFrame("not json")
        yield* TestClock.adjust(50)
        assert.strictEqual(logs.length, linesBefore + 2)
        assert.strictEqual(logs.at(-1)!.annotations.refusedSinceLastLog, 29)
        assert.strictEqual(provider.stats().malformedTotal, cases.length + 31)
      }).pipe(Effect.provide(capture))
    }).pipe(Effect.scoped, Effect.provide(baseLayer)))

  it.effect("are reproducible: the same seed yields the same events, another seed others", () =>
    Effect.gen(function*() {
      const a = yield* runFor(config(), 2_000)
      const b = yield* runFor(config(), 2_000)
      const c = yield* runFor(config({ seed: 8 }), 2_000)
      assert.isAbove(a.seen.length, 300)
      assert.deepStrictEqual(a.seen, b.seen)
      assert.notDeepEqual(
        a.seen.map((s) => s.payload),
        c.seen.map((s) => s.payload)
      )
      const pool = yield* Pool
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }).pipe(Effect.provide(baseLayer)))

  it.effect("look like a market: bid < ask, fixed precision, contiguous sequences, correct deltas", () =>
    Effect.gen(function*() {
      const { seen, stats } = yield* runFor(config(), 3_000)
      assert.isTrue(assertContiguous(seen))
      const byKind = (k: string) => seen.filter((s) => s.kind === k)
      // rates: 3 s x 3 symbols x rate per second
      assert.strictEqual(byKind("trade").length, 3 * 3 * 20)
      assert.strictEqual(byKind("ticker").length, 3 * 3 * 20)
      assert.strictEqual(byKind("book_delta").length, 3 * 3 * 50)
      assert.strictEqual(stats.events, seen.length)
      for (const s of byKind("ticker")) {
        const t = s.payload as Ticker
        assert.isTrue(Number(t.bidPrice) < Number(t.askPrice), `${t.bidPrice} < ${t.askPrice}`)
        if (s.symbol === "BTC-USDT") assert.match(t.bidPrice, /^\d+\.\d{2}$/)
        if (s.symbol === "SOL-USDT") assert.match(t.askPrice, /^\d+\.\d{3}$/)
      }
      for (const s of byKind("trade")) {
        const t = s.payload as Trade
        if (s.symbol === "BTC-USDT") {
          assert.match(t.quantity, /^\d+\.\d{5}$/)
          assert.isTrue(Number(t.price) > 50_000 && Number(t.price) < 80_000)
        }
      }
      for (const s of seen.filter(isSnapshot)) {
        assert.strictEqual(s.payload.state, "consistent")
        const bids = s.payload.bids.map(([p]) => Number(p))
        const asks = s.payload.asks.map(([p]) => Number(p))
        assert.deepStrictEqual(bids, [...bids].sort((x, y) => y - x))
        assert.deepStrictEqual(asks, [...asks].sort((x, y) => x - y))
        assert.isTrue(bids[0] < asks[0])
      }
      // a consumer rebuilding each book from snapshot + deltas matches every periodic snapshot
      assert.deepStrictEqual(replayBooks(seen, 20), [])
      assert.isAbove(seen.filter(isSnapshot).length, 3 * 5)
    }).pipe(Effect.provide(baseLayer)))

  it.effect("injected faults: the book goes stale at once with a reason, resyncs, and nothing else is lost", () =>
    Effect.gen(function*() {
      const provider = makeSimulated(config({ resyncDelayMs: 100, reconnectDelayMs: 300 }), yield* services)
      const rec = yield* recordingSink
      yield* Effect.forkScoped(provider.run(rec.sink))
      yield* TestClock.adjust(200)

      yield* provider.inject("gap", "ETH-USDT")
      yield* TestClock.adjust(50)
      const stale = lastWhere(rec.seen, (s) => isSnapshot(s) && s.symbol === "ETH-USDT")!
      assert.strictEqual((stale.payload as any).state, "stale")
      assert.match((stale.payload as any).staleReason, /^gap: expected \d+, received \d+$/)
      let status = yield* provider.status
      assert.deepStrictEqual(status.books.find((b) => b.symbol === "ETH-USDT")!.state, "stale")
      assert.strictEqual(status.books.find((b) => b.symbol === "BTC-USDT")!.state, "consistent")
      yield* TestClock.adjust(100)
      const back = lastWhere(rec.seen, (s) => isSnapshot(s) && s.symbol === "ETH-USDT")!
      assert.strictEqual((back.payload as any).state, "consistent")
      assert.strictEqual(provider.stats().gaps, 1)
      assert.strictEqual(provider.stats().resyncs, 1)

      yield* provider.inject("bad_checksum", "BTC-USDT")
      yield* TestClock.adjust(50)
      const bad = lastWhere(rec.seen, (s) => isSnapshot(s) && s.symbol === "BTC-USDT")!
      assert.match((bad.payload as any).staleReason, /^checksum mismatch: venue \d+, local \d+$/)
      assert.strictEqual(provider.stats().checksumMismatches, 1)
      yield* TestClock.adjust(100)
      assert.strictEqual((yield* provider.status).books.every((b) => b.state === "consistent"), true)

      yield* provider.inject("malformed")
      yield* TestClock.adjust(50)
      assert.deepStrictEqual(provider.stats().malformed, { invalid_json: 1 })
      const dl = yield* DeadLetter
      assert.strictEqual(dl.count("sim-a", "invalid_json"), 1)
      assert.match(dl.entries()[0].raw, /^\{"type":"delta"/)

      yield* provider.inject("disconnect")
      yield* TestClock.adjust(50)
      status = yield* provider.status
      assert.isFalse(status.connected)
      assert.deepStrictEqual(status.books.map((b) => [b.state, b.reason]), [
        ["stale", "disconnected"],
        ["stale", "disconnected"],
        ["stale", "disconnected"]
      ])
      yield* TestClock.adjust(500)
      status = yield* provider.status
      assert.isTrue(status.connected)
      assert.isTrue(status.books.every((b) => b.state === "consistent"))
      assert.strictEqual(provider.stats().reconnects, 1)

      // every stream stayed contiguous, and the consumer's rebuilt books never disagreed with the venue
      assert.isTrue(assertContiguous(rec.seen))
      assert.deepStrictEqual(replayBooks(rec.seen, 20), [])
      // deltas never reached a consumer while its book was stale
      const state = new Map<string, string>()
      for (const s of rec.seen) {
        if (isSnapshot(s)) state.set(s.symbol, s.payload.state)
        if (s.kind === "book_delta") assert.strictEqual(state.get(s.symbol), "consistent")
      }
    }).pipe(Effect.scoped, Effect.provide(baseLayer)))

  it.effect("random faults from the configuration are survived the same way", () =>
    Effect.gen(function*() {
      const { seen, stats } = yield* runFor(
        config({ faults: SimulatedFaults.make({ gap: 0.01, badChecksum: 0.01, malformed: 0.01, disconnect: 0.002 }) }),
        10_000
      )
      assert.isAbove(stats.gaps + stats.checksumMismatches, 0)
      assert.isAbove(stats.malformedTotal, 0)
      assert.isTrue(assertContiguous(seen))
      assert.deepStrictEqual(replayBooks(seen, 20), [])
      assert.strictEqual((yield* Pool).stats().Event.outstanding, 0)
    }).pipe(Effect.provide(baseLayer)))

  it.effect("Providers.layerSimulated: three venues by default; closing the scope stops them and leaks nothing", () =>
    Effect.gen(function*() {
      const providers = yield* Providers
      assert.deepStrictEqual(providers.map((p) => p.name), ["sim-a", "sim-b", "sim-c"])
      const rec = yield* recordingSink
      const fibers = yield* Effect.scoped(Effect.gen(function*() {
        const fibers = yield* Effect.forEach(providers, (p) => Effect.forkScoped(p.run(rec.sink)))
        yield* TestClock.adjust(1_000)
        return fibers
      }))
      for (const f of fibers) assert.isTrue((yield* Fiber.await(f))._tag === "Failure", "interrupted")
      assert.isTrue(fibers.every((f) => f.unsafePoll() !== null))
      const names = new Set(rec.seen.map((s) => s.provider))
      assert.deepStrictEqual([...names].sort(), ["sim-a", "sim-b", "sim-c"])
      // the venues quote the same symbols at nearby but different prices
      const firstBid = (p: string) => (rec.seen.find((s) => s.provider === p && s.kind === "ticker" && s.symbol === "BTC-USDT")!.payload as Ticker).bidPrice
      assert.notStrictEqual(firstBid("sim-a"), firstBid("sim-b"))
      assert.isTrue(Math.abs(Number(firstBid("sim-a")) / Number(firstBid("sim-b")) - 1) < 0.01)
      for (const p of providers) assert.isFalse((yield* p.status).connected)
      assert.strictEqual((yield* Pool).stats().Event.outstanding, 0)
    }).pipe(Effect.provide(Providers.layerSimulated()), Effect.provide(baseLayer)))
})
