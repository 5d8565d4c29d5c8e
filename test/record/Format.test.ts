/**
 * The recording format from the outside: DuckDB opens a recording without
 * our code (the README's query), the columns a kind always fills are REQUIRED
 * in its files, and a file whose rows are not the stream its path names is
 * skipped with a clear reason (whether its statistics tell or each row must
 * be checked).
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { parquetMetadata } from "hyparquet"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { decimal, Ticker, Trade } from "../../schema/Event.js"
import { checksumOf, decodeFile, encodeRows, fileName, parseFileName, type StreamRows } from "../../src/record/Format.js"
import { openRecording } from "../../src/replay/Reader.js"
import { tempDir } from "./support.js"

const T0 = Date.UTC(2026, 10, 30, 12) * 1000

const trades = (provider: string, symbol: string, n: number): StreamRows => ({
  provider,
  symbol,
  kind: "trade",
  ingestTs: Array.from({ length: n }, (_, i) => T0 + i * 10),
  seq: Array.from({ length: n }, (_, i) => i + 1),
  epoch: Array.from({ length: n }, () => undefined),
  payload: Array.from({ length: n }, (_, i) =>
    Trade.make({ tradeId: `t${i}`, price: decimal(`100.${i % 10}`), quantity: decimal("0.5"), side: i % 2 === 0 ? "buy" : "sell", exchangeTs: T0 / 1000 + i }))
})

const tickers = (provider: string, symbol: string, n: number): StreamRows => ({
  provider,
  symbol,
  kind: "ticker",
  ingestTs: Array.from({ length: n }, (_, i) => T0 + i * 10 + 5),
  seq: Array.from({ length: n }, () => undefined),
  epoch: Array.from({ length: n }, () => "e1"),
  payload: Array.from({ length: n }, (_, i) =>
    Ticker.make({ bidPrice: decimal(`99.${i % 10}`), bidQty: decimal("1"), askPrice: decimal(`101.${i % 10}`), askQty: decimal("2"), exchangeTs: T0 / 1000 + i }))
})

/** Writes `rows` as the recorder names them, or under another stream's directory (`as`). */
const write = (dir: string, rows: StreamRows, counter: number, as?: Partial<Pick<StreamRows, "provider" | "symbol">>): string => {
  const bytes = encodeRows(rows)
  const parts = [...fileName({ ...rows, ...as }, counter, checksumOf(bytes))]
  mkdirSync(join(dir, ...parts.slice(0, -1)), { recursive: true })
  const path = join(dir, ...parts)
  writeFileSync(path, bytes)
  return path
}

const duckdb = (sql: string) =>
  Effect.promise(async () => {
    const db = await DuckDBInstance.create(":memory:")
    const connection = await db.connect()
    try {
      return (await connection.runAndReadAll(sql)).getRowObjects()
    } finally {
      connection.closeSync()
    }
  })

describe("recording format", () => {
  it.scoped("DuckDB reads a whole recording as one table, across kinds, with the README's query", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      write(dir, trades("venue-a", "BTC-USDT", 300), 1)
      write(dir, tickers("venue-a", "BTC-USDT", 200), 2)
      write(dir, trades("venue-b", "ETH-USDT", 100), 3)
      const rows = yield* duckdb(
        `SELECT provider, kind, count(*) AS n, min(ingest_ts) AS first, max(price) AS top, count(bid_price) AS bids
         FROM read_parquet('${dir}/**/*.parquet') GROUP BY provider, kind ORDER BY provider, kind`
      )
      assert.deepStrictEqual(rows.map((r) => [r.provider, r.kind, Number(r.n), Number(r.first), r.top, Number(r.bids)]), [
        ["venue-a", "ticker", 200, T0 + 5, null, 200],
        ["venue-a", "trade", 300, T0, "100.9", 0],
        ["venue-b", "trade", 100, T0, "100.9", 0]
      ])
      const ordered = yield* duckdb(`SELECT ingest_ts, kind FROM read_parquet('${dir}/**/*.parquet') ORDER BY ingest_ts, kind LIMIT 3`)
      assert.deepStrictEqual(ordered.map((r) => [Number(r.ingest_ts), r.kind]), [[T0, "trade"], [T0, "trade"], [T0 + 5, "ticker"]])
    }))

  it.scoped("a kind's own columns are REQUIRED in its files; columns with a null stay OPTIONAL", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = write(dir, tickers("venue-a", "BTC-USDT", 50), 1)
      const bytes = readFileSync(path)
      const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
      const repetition = new Map(meta.schema.slice(1).map((s) => [s.name, s.repetition_type]))
      for (const c of ["ingest_ts", "provider", "symbol", "kind", "epoch", "bid_price", "bid_qty", "ask_price", "ask_qty", "exchange_ts"]) {
        assert.strictEqual(repetition.get(c), "REQUIRED", c)
      }
      for (const c of ["seq", "price", "trade_id", "bids", "checksum"]) assert.strictEqual(repetition.get(c), "OPTIONAL", c)
      assert.strictEqual(meta.key_value_metadata?.find((kv) => kv.key === "meltica.recording")?.value, "2")
    }))

  it.scoped("a file under another stream's directory is skipped, by its statistics or row by row; the others read", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      write(dir, trades("venue-a", "BTC-USDT", 40), 1)
      // statistics tell: the file's symbol column is ETH-USDT all along
      write(dir, trades("venue-a", "ETH-USDT", 30), 2, { symbol: "SOL-USDT" })
      // a symbol longer than the statistics keep (16 bytes): rows are checked one by one
      const long = "BTC-USDT-SWAP-250926-LONGNAME"
      write(dir, trades("venue-a", `${long}-X`, 20), 3, { symbol: long })
      const honest = write(dir, trades("venue-a", long, 25), 4)
      const reader = openRecording(dir)
      const read = yield* Effect.promise(() => reader.readAll())
      const reasons = reader.skipped.map((s) => s.reason)
      assert.deepStrictEqual(reasons.sort(), [
        `its symbol column is not "SOL-USDT", which its path names`,
        `row 0's symbol is not "${long}", which its path names`
      ])
      assert.strictEqual(read.length, 40 + 25)
      assert.strictEqual(read.filter((e) => e.symbol === long).length, 25)
      const info = parseFileName(honest, honest.slice(dir.length + 1).split("/"))!
      const file = yield* Effect.promise(() => decodeFile(info, readFileSync(honest)))
      const e = file.event(3)
      assert.instanceOf(e.payload, Trade)
      assert.deepStrictEqual(e.payload, trades("venue-a", long, 25).payload[3])
    }))
})
