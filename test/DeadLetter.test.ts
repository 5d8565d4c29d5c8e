import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { DeadLetter } from "../src/DeadLetter.js"

describe("DeadLetter", () => {
  it.effect("keeps entries with source, reason, raw and Clock time, and counts per (source, reason)", () =>
    Effect.gen(function*() {
      const dl = yield* DeadLetter
      yield* TestClock.adjust(1234)
      yield* dl.record("binance", "invalid_json", "{oops")
      dl.unsafeRecord("binance", "schema", { e: "trade" }, 99)
      yield* dl.record("binance", "invalid_json", "{again")
      yield* dl.record("control-bus", "invalid_command", new TextEncoder().encode("bytes"))
      const entries = dl.entries()
      assert.deepStrictEqual(entries.map((e) => [e.source, e.reason, e.raw, e.at]), [
        ["binance", "invalid_json", "{oops", 1234],
        ["binance", "schema", "{\"e\":\"trade\"}", 99],
        ["binance", "invalid_json", "{again", 1234],
        ["control-bus", "invalid_command", "bytes", 1234]
      ])
      assert.deepStrictEqual(
        [...dl.counts()].sort((a, b) => `${a.source}${a.reason}`.localeCompare(`${b.source}${b.reason}`)),
        [
          { source: "binance", reason: "invalid_json", count: 2 },
          { source: "binance", reason: "schema", count: 1 },
          { source: "control-bus", reason: "invalid_command", count: 1 }
        ]
      )
      assert.strictEqual(dl.count("binance"), 3)
      assert.strictEqual(dl.count("binance", "schema"), 1)
    }).pipe(Effect.provide(DeadLetter.Default)))

  it.effect("is bounded: keeps the newest entries, counts evictions, and counts survive eviction", () =>
    Effect.gen(function*() {
      const dl = yield* DeadLetter
      for (let i = 0; i < 10; i++) dl.unsafeRecord("okx", "schema", `frame-${i}`)
      assert.deepStrictEqual(dl.entries().map((e) => e.raw), ["frame-7", "frame-8", "frame-9"])
      assert.deepStrictEqual(dl.stats(), { total: 10, retained: 3, evicted: 7, capacity: 3 })
      assert.strictEqual(dl.count("okx", "schema"), 10)
      const long = "x".repeat(100)
      dl.unsafeRecord("okx", "schema", long)
      assert.strictEqual(dl.entries().at(-1)!.raw.length, 16)
      yield* dl.clear()
      assert.deepStrictEqual(dl.entries(), [])
      assert.strictEqual(dl.count("okx"), 11)
    }).pipe(Effect.provide(DeadLetter.layer({ capacity: 3, maxRawLength: 16 }))))
})
