/**
 * Recording and reading back: a simulated run recorded on the TestClock
 * reads back (and replays) to the same events, in the same order per stream,
 * with the same timestamps; damaged files are skipped with a clear reason;
 * time range and symbol filters.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Scope, TestClock, TestContext } from "effect"
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { EventPayload, MarketKind } from "../../schema/Event.js"
import { SimulatedVenueConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { Event } from "../../src/Event.js"
import { Pool } from "../../src/Pool.js"
import { makeSimulated } from "../../src/providers/Simulated.js"
import { generationOf, Recycler } from "../../src/Recycler.js"
import { decodeFile, type FileInfo } from "../../src/record/Format.js"
import { makeRecorder } from "../../src/record/Recorder.js"
import { listRecording, openRecording } from "../../src/replay/Reader.js"
import { makeReplay, runOnReplay } from "../../src/replay/Replay.js"
import { baseLayer } from "../providers/helpers.js"
import { tempDir } from "./support.js"

interface Row {
  readonly provider: string
  readonly symbol: string
  readonly kind: MarketKind
  readonly seq: number | undefined
  readonly epoch: string | undefined
  readonly ingestTs: number
  readonly payload: EventPayload
}

const services = Effect.all({ pool: Pool, recycler: Recycler, deadLetter: DeadLetter })


const venue = (name: string, seed: number) =>
  SimulatedVenueConfig.make({
    name,
    symbols: ["BTC-USDT", "ETH-USDT"],
    seed,
    tradesPerSecond: 20,
    tickersPerSecond: 20,
    deltasPerSecond: 40,
    snapshotIntervalMs: 500,
    tickMs: 50
  })

const rowOf = (e: Event): Row => ({
  provider: e.provider,
  symbol: e.symbol,
  kind: e.kind as MarketKind,
  seq: e.seqProvider,
  epoch: e.epoch,
  ingestTs: e.ingestTs,
  payload: e.payload!
})

/** Two simulated venues for `ms` of TestClock time, recorded into `dir`; what the pipeline saw. */
const recordSimulated = (dir: string, ms: number, flushIntervalMs = 500) =>
  Effect.gen(function*() {
    const { pool, recycler, deadLetter } = yield* services
    const seen: Array<Row> = []
    const scope = yield* Scope.make()
    const recorder = yield* makeRecorder({ dir, flushIntervalMs }).pipe(Scope.extend(scope))
    const providers = recorder.wrap([venue("sim-a", 3), venue("sim-b", 4)].map((c) => makeSimulated(c, { pool, recycler, deadLetter })))
    const fibers = yield* Effect.forEach(providers, (p) =>
      Effect.forkIn(
        p.run((e) =>
          Effect.sync(() => {
            seen.push(rowOf(e))
            recycler.unsafeRecycle(e, generationOf(e))
          })
        ).pipe(Effect.scoped),
        scope
      ))
    yield* TestClock.adjust(ms)
    yield* Effect.forEach(fibers, Fiber.interrupt)
    yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
    return { seen, stats: recorder.stats() }
  }).pipe(Effect.provide(TestContext.TestContext))

const byStream = (rows: ReadonlyArray<Row>) => {
  const m = new Map<string, Array<Row>>()
  for (const r of rows) {
    const k = `${r.provider}|${r.symbol}|${r.kind}`
    m.set(k, [...(m.get(k) ?? []), r])
  }
  return m
}

const assertNondecreasing = (rows: ReadonlyArray<Row>) => {
  for (let i = 1; i < rows.length; i++) {
    assert.isTrue(rows[i].ingestTs >= rows[i - 1].ingestTs, `row ${i} goes back in time`)
  }
}

describe("recorder and reader", () => {
  it.scoped("a recorded simulated run reads back and replays to the same events, per stream in the same order, with the same timestamps", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { seen, stats } = yield* recordSimulated(dir, 3_000)
      assert.isAbove(seen.length, 500)
      assert.strictEqual(stats.events, seen.length)
      assert.strictEqual(stats.writeFailures, 0)
      assert.isAbove(stats.files, 8) // flushed every 500 ms, per stream

      const read = yield* Effect.promise(() => openRecording(dir).readAll())
      assert.strictEqual(read.length, seen.length)
      assertNondecreasing(read)
      const want = byStream(seen)
      const got = byStream(read)
      assert.deepStrictEqual([...got.keys()].sort(), [...want.keys()].sort())
      for (const [k, rows] of want) assert.deepStrictEqual(got.get(k), rows, k)

      // the replay provider hands the same events to the pipeline, in time order
      const { pool, recycler, deadLetter } = yield* services
      const replay = yield* makeReplay({ dir, autoStart: true }, { pool, recycler, deadLetter })
      assert.deepStrictEqual(replay.providers.map((p) => p.name), ["sim-a", "sim-b"])
      const replayed: Array<Row> = []
      const fibers = yield* Effect.forEach(replay.providers, (p) =>
        runOnReplay(
          replay.clock,
          p.run((e) =>
            Effect.sync(() => {
              replayed.push(rowOf(e))
              recycler.unsafeRecycle(e, generationOf(e))
            })
          ).pipe(Effect.scoped, Effect.forkScoped)
        ))
      const done = yield* Deferred.await(replay.done)
      yield* Effect.forEach(fibers, Fiber.interrupt)
      assert.strictEqual(done.events, seen.length)
      assert.strictEqual(done.unrouted, 0)
      assert.deepStrictEqual(replayed, read)
      assert.strictEqual(pool.stats().Event.outstanding ?? 0, 0)
    }).pipe(Effect.provide(baseLayer)))

  it.scoped("damaged files (a flipped byte, a truncated file, a leftover .tmp, a foreign file) are skipped with a clear reason; the rest reads", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { seen } = yield* recordSimulated(dir, 1_500)
      const files = listRecording(dir).files
      assert.isAbove(files.length, 6)
      const [flipped, truncated] = [files[1], files[4]]
      const counts = new Map<string, number>()
      for (const f of [flipped, truncated]) counts.set(f.path, (yield* Effect.promise(() => decodeFile(f, readFileSync(f.path)))).length)
      const rowsOf = (f: FileInfo) => counts.get(f.path)!
      const bytes = readFileSync(flipped.path)
      bytes[Math.floor(bytes.length / 2)] ^= 0xff
      writeFileSync(flipped.path, bytes)
      truncateSync(truncated.path, Math.floor(readFileSync(truncated.path).length / 2))
      const streamDir = join(flipped.path, "..")
      writeFileSync(join(streamDir, "1-2-999.00000000.parquet.tmp"), "half a file")
      writeFileSync(join(streamDir, "5-6-998.deadbeef.parquet"), "PAR1 not really PAR1")
      writeFileSync(join(streamDir, "notes.parquet"), "")

      const reader = openRecording(dir)
      const read = yield* Effect.promise(() => reader.readAll())
      const reasons = reader.skipped.map((s) => `${s.file.split("/").pop()}: ${s.reason}`)
      assert.strictEqual(reader.skipped.length, 5, reasons.join("\n"))
      assert.isTrue(reasons.some((r) => r.startsWith("1-2-999") && r.includes("unfinished write")))
      assert.isTrue(reasons.some((r) => r.startsWith("notes.parquet") && r.includes("its name is not")))
      assert.isTrue(reasons.some((r) => r.startsWith("5-6-998") && r.includes("CRC32")))
      assert.strictEqual(reasons.filter((r) => r.includes("do not match the CRC32")).length, 3)
      // exactly the rows of the two damaged files are missing
      assert.strictEqual(read.length, seen.length - rowsOf(flipped) - rowsOf(truncated))
      assert.isAbove(read.length, 0)
      assertNondecreasing(read)
    }).pipe(Effect.provide(baseLayer)))

  it.scoped("time range and symbol filters: only the selected events, and files outside the range are not opened", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { seen } = yield* recordSimulated(dir, 3_000)
      const from = 1_000_000
      const to = 2_000_000
      const reader = openRecording(dir, { from, to, symbols: ["ETH-USDT"], providers: ["sim-b"] })
      const read = yield* Effect.promise(() => reader.readAll())
      const want = seen.filter((r) => r.symbol === "ETH-USDT" && r.provider === "sim-b" && r.ingestTs >= from && r.ingestTs < to)
      assert.isAbove(want.length, 50)
      assert.deepStrictEqual([...byStream(read)].sort(), [...byStream(want)].sort())
      const all = listRecording(dir).files.length
      assert.isBelow(reader.filesRead, all / 4)
      assert.strictEqual(readdirSync(dir).length, 1) // one date directory
    }).pipe(Effect.provide(baseLayer)))
})
