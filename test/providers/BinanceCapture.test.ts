/**
 * The real Binance capture (cryptofeed's, 2021-10-12) carries `aggTrade` and
 * `kline_1m` streams: imported through the Binance adapter, its aggregate
 * trades become canonical trades and its klines are refused and counted; the
 * sample shipped in `examples/data/binance-2021-10-12` holds the same trades.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { importCapture } from "../../src/replay/Import.js"
import { openRecording } from "../../src/replay/Reader.js"
import { tempDir } from "../record/support.js"

const capture = join(import.meta.dirname, "..", "fixtures", "venues", "binance", "capture-2021-10-12.jsonl")
const sample = join(import.meta.dirname, "..", "..", "examples", "data", "binance-2021-10-12")

/** The capture's two aggTrade frames, as canonical trades (`m` false: the buyer took, a buy). */
const expected = [
  ["NKN-USDT", 1633998523957215, { _tag: "trade", tradeId: "15683430", price: "0.35280000", quantity: "58.00000000", side: "buy", exchangeTs: 1633998523963 }],
  ["LRC-BTC", 1633998534481201, { _tag: "trade", tradeId: "9213679", price: "0.00000638", quantity: "177.00000000", side: "buy", exchangeTs: 1633998534486 }]
]

const tradesOf = (dir: string) =>
  Effect.promise(() => openRecording(dir, { kinds: ["trade"] }).readAll()).pipe(
    Effect.map((events) => events.map((e): unknown => [e.symbol, e.ingestTs, { ...e.payload }]))
  )

describe("Binance capture with aggTrade and kline streams", () => {
  it.scoped("imports its aggregate trades as trades; its klines are refused and counted", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const result = yield* importCapture({ capture, out: dir })
      assert.deepStrictEqual(yield* tradesOf(dir), expected)
      // the two kline frames, and nothing else
      assert.strictEqual(result.provider.malformed, 2)
      assert.deepStrictEqual([result.provider.gaps, result.provider.resyncs, result.dropped], [0, 0, 0])
    }), 60_000)

  it.effect("the shipped sample holds the capture's trades", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* tradesOf(sample), expected)
    }))
})
