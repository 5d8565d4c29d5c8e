import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { crc32 } from "node:zlib"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { BookLevel } from "../src/OrderBook.js"
import { isZeroQty, krakenChecksum, krakenChecksumInput, okxChecksum, OrderBook } from "../src/OrderBook.js"
import { parseKraken } from "../src/providers/Kraken.js"

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8")

describe("OrderBook", () => {
  it("Node's zlib.crc32 is the IEEE CRC32 (check value of \"123456789\")", () => {
    assert.strictEqual(crc32("123456789") >>> 0, 0xcbf43926)
  })

  it("keeps bids high to low and asks low to high by exact decimal value, whatever the spelling", () => {
    const book = new OrderBook("BTC-USDT")
    book.reset(
      [{ price: "9.5", qty: "1" }, { price: "10.25", qty: "2" }, { price: "10.3", qty: "3" }],
      [{ price: "11.000", qty: "1" }, { price: "10.9", qty: "2" }, { price: "100", qty: "3" }]
    )
    assert.deepStrictEqual(book.levels("bid").map((l) => l.price), ["10.3", "10.25", "9.5"])
    assert.deepStrictEqual(book.levels("ask").map((l) => l.price), ["10.9", "11.000", "100"])
    // the same price written differently updates the same level, and keeps the venue's latest spelling
    book.set("ask", "11.0", "5")
    assert.deepStrictEqual(book.levels("ask"), [
      { price: "10.9", qty: "2" },
      { price: "11.0", qty: "5" },
      { price: "100", qty: "3" }
    ])
    // zero in any spelling removes
    book.set("bid", "10.30", "0.00000000")
    book.set("ask", "100", "0E-8")
    assert.deepStrictEqual(book.levels("bid").map((l) => l.price), ["10.25", "9.5"])
    assert.deepStrictEqual(book.levels("ask").map((l) => l.price), ["10.9", "11.0"])
    // removing a level that is not there is a no-op
    book.set("bid", "1", "0")
    assert.strictEqual(book.bidCount, 2)
    assert.isFalse(book.isCrossed())
    book.set("bid", "10.9", "1")
    assert.isTrue(book.isCrossed())
  })

  it("distinguishes prices that floats would confuse", () => {
    const book = new OrderBook("X")
    book.reset([{ price: "0.30000000000000001", qty: "1" }, { price: "0.3", qty: "2" }], [])
    assert.strictEqual(book.bidCount, 2)
    assert.deepStrictEqual(book.levels("bid").map((l) => l.price), ["0.30000000000000001", "0.3"])
  })

  it("truncates to its depth", () => {
    const book = new OrderBook("X", 2)
    book.reset([{ price: "1", qty: "1" }, { price: "2", qty: "1" }, { price: "3", qty: "1" }], [])
    assert.deepStrictEqual(book.levels("bid").map((l) => l.price), ["3", "2"])
    book.apply([{ price: "2.5", qty: "1" }], [])
    assert.deepStrictEqual(book.levels("bid").map((l) => l.price), ["3", "2.5"])
  })

  it("snapshots carry the state and stale reason", () => {
    const book = new OrderBook("X")
    book.reset([{ price: "1.00", qty: "2.0" }], [{ price: "1.01", qty: "3.0" }])
    book.markConsistent()
    const s = book.snapshot(10, 42)
    assert.deepStrictEqual([s.bids, s.asks, s.state, s.staleReason, s.checksum], [[["1.00", "2.0"]], [["1.01", "3.0"]], "consistent", undefined, 42])
    book.markStale("gap")
    assert.deepStrictEqual([book.snapshot(1).state, book.snapshot(1).staleReason], ["stale", "gap"])
  })

  it("isZeroQty", () => {
    for (const z of ["0", "0.0", "0.00000000", "00.00", "0E-8", "0e+3"]) assert.isTrue(isZeroQty(z), z)
    for (const nz of ["1", "0.00000001", "10", "1E-8"]) assert.isFalse(isZeroQty(nz), nz)
  })

  describe("large snapshots and diffs", () => {
    const lv = (price: number, qty: string = "1"): BookLevel => ({ price: `${price}.5`, qty })

    it("a 40,000-level snapshot in worst order (bids ascending, asks descending) builds sorted and cut to the book's depth", () => {
      const n = 40_000
      const bids = Array.from({ length: n }, (_, i) => lv(i + 1))
      const asks = Array.from({ length: n }, (_, i) => lv(2 * n - i))
      const cut = new OrderBook("X", 20)
      cut.reset(bids, asks)
      assert.deepStrictEqual([cut.bidCount, cut.askCount], [20, 20])
      assert.deepStrictEqual(cut.levels("bid").map((l) => l.price), Array.from({ length: 20 }, (_, i) => `${n - i}.5`))
      assert.deepStrictEqual(cut.levels("ask").map((l) => l.price), Array.from({ length: 20 }, (_, i) => `${n + 1 + i}.5`))
      const whole = new OrderBook("X")
      whole.reset(bids, asks)
      assert.deepStrictEqual([whole.bidCount, whole.askCount], [n, n])
      assert.deepStrictEqual([whole.levels("bid").at(-1)!.price, whole.levels("ask").at(-1)!.price], ["1.5", `${2 * n}.5`])
    })

    it("a snapshot keeps the last of repeated prices (in any spelling) and drops zero quantities, as level-by-level sets would", () => {
      const book = new OrderBook("X")
      book.reset(
        [{ price: "10", qty: "1" }, { price: "9", qty: "2" }, { price: "10.00", qty: "3" }, { price: "8", qty: "0" }, { price: "9.0", qty: "0.000" }],
        [{ price: "11", qty: "1" }, { price: "12", qty: "0" }, { price: "12", qty: "4" }]
      )
      assert.deepStrictEqual(book.levels("bid"), [{ price: "10.00", qty: "3" }])
      assert.deepStrictEqual(book.levels("ask"), [{ price: "11", qty: "1" }, { price: "12", qty: "4" }])
    })

    it("a long diff (merged in one pass) leaves the same book as setting its levels one by one", () => {
      const level = FastCheck.record({
        price: FastCheck.integer({ min: 1, max: 120 }).map((p) => (p % 3 === 0 ? `${p}.0` : String(p))),
        qty: FastCheck.constantFrom("0", "0.0", "1", "2.50", "3")
      })
      FastCheck.assert(
        FastCheck.property(
          FastCheck.array(level, { maxLength: 80 }),
          FastCheck.array(level, { maxLength: 200 }),
          FastCheck.integer({ min: 1, max: 60 }),
          (initial, diff, depth) => {
            const merged = new OrderBook("X", depth)
            const oneByOne = new OrderBook("X", depth)
            merged.reset(initial, [])
            for (const l of initial) oneByOne.set("bid", l.price, l.qty)
            oneByOne.truncate(depth)
            merged.apply(diff, [])
            for (const l of diff) oneByOne.set("bid", l.price, l.qty)
            oneByOne.truncate(depth)
            assert.deepStrictEqual(merged.levels("bid"), oneByOne.levels("bid"))
          }
        ),
        { numRuns: 300 }
      )
    })
  })

  describe("published view deltas", () => {
    const book = (bids: Array<[string, string]>, asks: Array<[string, string]> = []) => {
      const b = new OrderBook("X")
      b.reset(bids.map(([price, qty]) => ({ price, qty })), asks.map(([price, qty]) => ({ price, qty })))
      b.markConsistent()
      return b
    }

    it("a level removed within the top N brings the next one into view: both are published", () => {
      const b = book([["10", "1"], ["9", "2"], ["8", "3"], ["7", "4"]])
      assert.deepStrictEqual<ReadonlyArray<ReadonlyArray<string>>>(b.publishSnapshot(2).bids, [["10", "1"], ["9", "2"]])
      b.apply([{ price: "9", qty: "0" }], [])
      assert.deepStrictEqual(b.viewDelta(2), { bids: [{ price: "9", qty: "0" }, { price: "8", qty: "3" }], asks: [] })
    })

    it("a level inserted within the top N pushes level N out: its removal is published", () => {
      const b = book([], [["10", "1"], ["11", "2"], ["12", "3"]])
      b.publishSnapshot(2)
      b.apply([], [{ price: "10.5", qty: "7" }])
      assert.deepStrictEqual(b.viewDelta(2), { bids: [], asks: [{ price: "11", qty: "0" }, { price: "10.5", qty: "7" }] })
    })

    it("a change below the top N publishes nothing; a later delta is computed against what was published", () => {
      const b = book([["10", "1"], ["9", "2"], ["8", "3"]])
      b.publishSnapshot(2)
      b.apply([{ price: "8", qty: "5" }, { price: "7", qty: "1" }], [])
      assert.deepStrictEqual(b.viewDelta(2), { bids: [], asks: [] })
      b.apply([{ price: "10", qty: "0" }, { price: "9", qty: "0" }], [])
      assert.deepStrictEqual(b.viewDelta(2), {
        bids: [{ price: "10", qty: "0" }, { price: "9", qty: "0" }, { price: "8", qty: "5" }, { price: "7", qty: "1" }],
        asks: []
      })
    })

    it("a quantity change and a new spelling of the same price are published as updates", () => {
      const b = book([["10", "1"], ["9", "2"]])
      b.publishSnapshot(5)
      b.apply([{ price: "10.0", qty: "1" }, { price: "9", qty: "2.5" }], [])
      assert.deepStrictEqual(b.viewDelta(5).bids, [{ price: "10.0", qty: "1" }, { price: "9", qty: "2.5" }])
    })

    it("random diffs: snapshot plus published deltas always equals the book's top N", () => {
      const level = FastCheck.record({
        price: FastCheck.integer({ min: 1, max: 40 }).map(String),
        qty: FastCheck.constantFrom("0", "1", "2", "3")
      })
      FastCheck.assert(
        FastCheck.property(
          FastCheck.array(level, { maxLength: 30 }),
          FastCheck.array(FastCheck.array(level, { maxLength: 6 }), { maxLength: 40 }),
          FastCheck.integer({ min: 1, max: 8 }),
          (initial, diffs, depth) => {
            const venue = new OrderBook("X")
            venue.reset(initial, initial.map((l) => ({ price: String(Number(l.price) + 100), qty: l.qty })))
            const snap = venue.publishSnapshot(depth)
            const consumer = new OrderBook("X")
            consumer.reset(snap.bids.map(([price, qty]) => ({ price, qty })), snap.asks.map(([price, qty]) => ({ price, qty })))
            for (const diff of diffs) {
              venue.apply(diff, diff.map((l) => ({ price: String(Number(l.price) + 100), qty: l.qty })))
              const d = venue.viewDelta(depth)
              consumer.apply(d.bids, d.asks)
              assert.deepStrictEqual(consumer.levels("bid"), venue.levels("bid", depth))
              assert.deepStrictEqual(consumer.levels("ask"), venue.levels("ask", depth))
            }
          }
        ),
        { numRuns: 300 }
      )
    })
  })

  describe("Kraken checksum", () => {
    it("matches the worked example of Kraken's WebSocket v2 book checksum guide (3310070434)", () => {
      // docs.kraken.com/api/docs/guides/spot-ws-book-v2: the BTC/USD snapshot, prices and
      // quantities written as JSON numbers with their trailing zeros
      const parsed = parseKraken(fixture("kraken-v2-checksum-example.json"))
      assert.isTrue(parsed.ok)
      const msg = (parsed as { value: any }).value
      const data = msg.data[0]
      const book = new OrderBook("BTC-USD")
      book.reset(data.bids, data.asks)
      assert.strictEqual(krakenChecksum(book), 3310070434)
      assert.strictEqual(Number(data.checksum), 3310070434)
      assert.isTrue(krakenChecksumInput(book).startsWith("452852100000"), "45285.2 + 0.00100000 -> 452852 + 100000")
    })

    it("is lost when the trailing zeros are lost (JSON.parse)", () => {
      const msg = JSON.parse(fixture("kraken-v2-checksum-example.json"))
      const data = msg.data[0]
      const book = new OrderBook("BTC-USD")
      book.reset(
        data.bids.map((l: any) => ({ price: String(l.price), qty: String(l.qty) })),
        data.asks.map((l: any) => ({ price: String(l.price), qty: String(l.qty) }))
      )
      assert.notStrictEqual(krakenChecksum(book), 3310070434)
    })

    it("covers only the top 10 levels per side", () => {
      const book = new OrderBook("X")
      const bids = Array.from({ length: 12 }, (_, i) => ({ price: `${100 - i}.0`, qty: "1.0" }))
      const asks = Array.from({ length: 12 }, (_, i) => ({ price: `${101 + i}.0`, qty: "1.0" }))
      book.reset(bids, asks)
      const before = krakenChecksum(book)
      book.set("bid", "89.0", "5.0") // the 11th bid
      assert.strictEqual(krakenChecksum(book), before)
      book.set("bid", "100.0", "5.0")
      assert.notStrictEqual(krakenChecksum(book), before)
    })
  })

  it("OKX legacy checksum: CRC32 of interleaved bid:size:ask:size as a signed 32-bit integer", () => {
    const book = new OrderBook("BTC-USDT")
    book.reset(
      [{ price: "3366.1", qty: "7" }, { price: "3366", qty: "6" }],
      [{ price: "3366.8", qty: "9" }, { price: "3368", qty: "8" }, { price: "3372", qty: "8" }]
    )
    const s = "3366.1:7:3366.8:9:3366:6:3368:8:3372:8"
    assert.strictEqual(okxChecksum(book), crc32(s) | 0)
  })
})
