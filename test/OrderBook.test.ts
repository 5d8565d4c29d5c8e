import { assert, describe, it } from "@effect/vitest"
import { crc32 } from "node:zlib"
import { readFileSync } from "node:fs"
import { join } from "node:path"
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
