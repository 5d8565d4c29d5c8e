/**
 * The `record:` section wired into the gateway: a gateway run with recording
 * on writes every market-data event its providers ingest, the recording reads
 * back to the same count per provider and kind, and `/metrics` exports the
 * recorder's and the replay's figures from the first scrape.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { layerTest, testConfig } from "../../layers/Test.js"
import { RecordSection } from "../../schema/Config.js"
import * as Gateway from "../../src/Gateway.js"
import { Prometheus } from "../../src/Prometheus.js"
import { Providers } from "../../src/Provider.js"
import { decimal, Trade } from "../../schema/Event.js"
import { Event } from "../../src/Event.js"
import { makeRecorder, RecordingFigures } from "../../src/record/Recorder.js"
import { listRecording } from "../../src/replay/Reader.js"
import { openRecording } from "../../src/replay/Reader.js"
import { tempDir } from "./support.js"

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

/** `name{labels} value` lines of a scrape whose name starts with `prefix`. */
const series = (text: string, prefix: string) => text.split("\n").filter((l) => l.startsWith(prefix))

describe("recording wired into the gateway", () => {
  it.scoped("memory is bounded: past maxPendingBytes events are left out and counted; an event the codec cannot hold is refused; the rest is written", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const recorder = yield* makeRecorder({ dir, flushIntervalMs: 3_600_000, encodeOnWorker: false, maxPendingBytes: 4_096 })
      const e = new Event()
      e.provider = "venue-a"
      e.symbol = "BTC-USDT"
      e.kind = "trade"
      for (let i = 0; i < 500; i++) {
        e.ingestTs = 1_000_000 + i
        e.seqProvider = i + 1
        e.payload = Trade.make({ tradeId: `t${i}`, price: decimal("100.5"), quantity: decimal("1"), side: "buy", exchangeTs: 1 })
        recorder.record(e)
      }
      const full = recorder.stats()
      assert.isAbove(full.dropped, 0)
      assert.strictEqual(full.events + full.dropped, 500)
      yield* recorder.flush
      // room again after the flush; a sequence the codec cannot hold is refused, not written
      e.seqProvider = -1
      recorder.record(e)
      e.seqProvider = 501
      e.ingestTs = 2_000_000
      recorder.record(e)
      yield* recorder.flush
      const after = recorder.stats()
      assert.strictEqual(after.refused, 1)
      assert.strictEqual(after.rowsWritten, full.events + 1)
      const read = yield* Effect.promise(() => openRecording(dir).readAll())
      assert.strictEqual(read.length, full.events + 1)
      assert.deepStrictEqual(read.map((r) => r.seq), [...Array.from({ length: full.events }, (_, i) => i + 1), 501])
    }))

  it.scoped("a gateway with record.dir writes what its providers ingest; it reads back to the same counts", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = testConfig({ record: RecordSection.make({ dir, flushIntervalMs: 200, maxRowsPerFile: 500 }) })
      const run = Effect.gen(function*() {
        const prometheus = yield* Prometheus
        const providers = yield* Providers
        const figures = yield* RecordingFigures
        const fiber = yield* Gateway.run(config, { strategies: [] }).pipe(Effect.scoped, Effect.fork)
        yield* settle
        const first = yield* prometheus.scrape
        for (let t = 0; t < 1_500; t += 10) yield* TestClock.adjust("10 millis")
        yield* Fiber.interrupt(fiber)
        const ingested = new Map<string, number>()
        for (const p of providers) {
          for (const [kind, n] of Object.entries(p.stats().eventsByKind)) ingested.set(`${p.name}/${kind}`, n)
        }
        return { first, ingested, figures }
      }).pipe(Effect.provide(layerTest(config)))
      const { figures, first, ingested } = yield* run
      // every series exported from the first scrape (the books' first snapshots may already be buffered, nothing is written yet)
      for (const name of ["meltica_recorder_events_total", "meltica_recorder_files_written_total", "meltica_recorder_bytes_written_total", "meltica_recorder_flush_failures_total"]) {
        assert.strictEqual(series(first, name).length, 1, name)
      }
      for (const name of ["meltica_recorder_files_written_total", "meltica_recorder_bytes_written_total", "meltica_recorder_flush_failures_total", "meltica_recorder_dropped_total", "meltica_recorder_refused_total"]) {
        assert.deepStrictEqual(series(first, name).map((l) => l.split(" ").pop()), ["0"], name)
      }
      assert.strictEqual(series(first, "meltica_replay_files_skipped_total{").length, 7)
      // the scope closed: the recorder flushed what it held
      const stats = figures.recorder()
      const total = [...ingested.values()].reduce((a, b) => a + b, 0)
      assert.isAbove(total, 100)
      assert.strictEqual(stats.events, total)
      assert.strictEqual(stats.rowsWritten, total)
      assert.strictEqual(stats.buffered, 0)
      assert.strictEqual(stats.writeFailures, 0)
      assert.isAbove(stats.files, 6)
      const reader = openRecording(dir)
      const events = yield* Effect.promise(() => reader.readAll())
      assert.deepStrictEqual(reader.skipped, [])
      const read = new Map<string, number>()
      for (const e of events) read.set(`${e.provider}/${e.kind}`, (read.get(`${e.provider}/${e.kind}`) ?? 0) + 1)
      assert.deepStrictEqual(
        [...read.entries()].sort(),
        [...ingested.entries()].filter(([, n]) => n > 0).sort()
      )
      for (let i = 1; i < events.length; i++) assert.isAtLeast(events[i].ingestTs, events[i - 1].ingestTs)
    }))

  it.scoped("without record.dir nothing is written and the recorder's figures stay at 0", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const stats = yield* Effect.gen(function*() {
        const figures = yield* RecordingFigures
        const fiber = yield* Gateway.run(config, { strategies: [] }).pipe(Effect.scoped, Effect.fork)
        for (let t = 0; t < 300; t += 10) yield* TestClock.adjust("10 millis")
        yield* Fiber.interrupt(fiber)
        return figures.recorder()
      }).pipe(Effect.provide(layerTest(config)))
      assert.deepStrictEqual(stats, { events: 0, files: 0, rowsWritten: 0, bytes: 0, writeFailures: 0, buffered: 0, dropped: 0, refused: 0 })
    }))

  it.scoped("files encoded on the worker thread are byte for byte the files encoded on the event loop", () =>
    Effect.gen(function*() {
      const names = (yield* Effect.forEach([true, false], (encodeOnWorker) =>
        Effect.gen(function*() {
          const dir = yield* tempDir
          yield* Effect.scoped(Effect.gen(function*() {
            const recorder = yield* makeRecorder({ dir, encodeOnWorker, maxRowsPerFile: 40 })
            const e = new Event()
            e.provider = "v"
            e.kind = "trade"
            for (let i = 0; i < 100; i++) {
              e._owned = true
              e.symbol = i % 3 === 0 ? "ETH-USDT" : "BTC-USDT"
              e.ingestTs = 1_700_000_000_000_000 + i * 1_000
              e.seqProvider = i + 1
              e.payload = Trade.make({ tradeId: `t${i}`, price: decimal(`100.${i}`), quantity: decimal("1"), side: i % 2 === 0 ? "buy" : "sell", exchangeTs: i }, true)
              recorder.record(e)
              if (i === 60) yield* recorder.flush
            }
          }))
          return listRecording(dir).files.map((f) => f.path.slice(dir.length)).sort()
        })))
      assert.isAbove(names[0].length, 2)
      // the CRC32 of each file's bytes is in its name
      assert.deepStrictEqual(names[0], names[1])
    }))
})
