/**
 * `npm run bench:replay [-- --events N --rounds R --json]`
 *
 * 1. Writes a synthetic recording of N events (one venue, one symbol, trades
 *    and tickers, 100 us apart) through the recorder: the hot-path cost of
 *    `record` per event, the flush cost (encode + write) per event, bytes per
 *    event on disk.
 * 2. Reads it back (decode only): events per second.
 * 3. Replays it from disk through the whole in-memory gateway (Orchestrator,
 *    Dispatcher, mailboxes, consumers, paper venue) into N = 1 and N = 10
 *    no-op strategies subscribed to both kinds, on the virtual clock, as fast
 *    as possible: events per second.
 * 4. Recording overhead on the ingest path: the N = 1 replay with the
 *    recorder wrapping the providers (as `--record` does live) against
 *    without, in alternating rounds: 1 - with / without; and the same with
 *    the files encoded on the event loop instead of the encoder thread.
 */
import { Effect, Logger, LogLevel } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decimal, Ticker, Trade } from "../schema/Event.js"
import { layerBacktest } from "../layers/Application.js"
import { runBacktest } from "../src/backtest/Backtest.js"
import { Event } from "../src/Event.js"
import { makeRecorder } from "../src/record/Recorder.js"
import { listRecording, openRecording } from "../src/replay/Reader.js"
import * as Strategy from "../src/strategy/index.js"
import { alternatingMedians, arg, emitJson, machine, table } from "./internal/report.js"

const events = arg("--events", 300_000)
const rounds = arg("--rounds", 3)
const dir = mkdtempSync(join(tmpdir(), "meltica-bench-replay-"))
const START_US = Date.UTC(2026, 10, 30, 9, 0, 0) * 1000

const noop = (i: number) =>
  Strategy.define({
    id: `noop-${i}`,
    start: (ctx) => ctx.subscribe("BTC-USDT", ["trade", "ticker"])
  })

const write = Effect.gen(function*() {
  const recorder = yield* makeRecorder({ dir, flushIntervalMs: 3_600_000, maxRowsPerFile: 50_000 })
  const e = new Event()
  e.provider = "bench"
  e.symbol = "BTC-USDT"
  const trades = Array.from({ length: 64 }, (_, i) =>
    Trade.make({ tradeId: String(i), price: decimal(`64000.${i}`), quantity: decimal("0.01"), side: i % 2 === 0 ? "buy" : "sell", exchangeTs: 1 }, true))
  const tickers = Array.from({ length: 64 }, (_, i) =>
    Ticker.make({ bidPrice: decimal(`64000.${i}`), bidQty: decimal("1.5"), askPrice: decimal(`64001.${i}`), askQty: decimal("2"), exchangeTs: 1 }, true))
  let recordNs = 0
  let flushNs = 0
  for (let i = 0; i < events; i++) {
    e._owned = true
    e.kind = i % 2 === 0 ? "trade" : "ticker"
    e.payload = i % 2 === 0 ? trades[i % 64] : tickers[i % 64]
    e.ingestTs = START_US + i * 100
    e.seqProvider = Math.floor(i / 2) + 1
    const t0 = process.hrtime.bigint()
    recorder.record(e)
    recordNs += Number(process.hrtime.bigint() - t0)
    if (i % 50_000 === 49_999) {
      const t1 = process.hrtime.bigint()
      yield* recorder.flush
      flushNs += Number(process.hrtime.bigint() - t1)
    }
  }
  const t1 = process.hrtime.bigint()
  yield* recorder.flush
  flushNs += Number(process.hrtime.bigint() - t1)
  return { stats: recorder.stats(), recordNs: recordNs / events, flushNs: flushNs / events }
}).pipe(Effect.scoped)

const replay = (n: number, record?: string, recordOnEventLoop = false) =>
  runBacktest({
    data: dir,
    strategies: Array.from({ length: n }, (_, i) => ({ strategy: noop(i) })),
    sampleMs: 3_600_000,
    ...(record === undefined ? {} : { record, recordOnEventLoop })
  }, layerBacktest).pipe(Effect.map((r) => {
    if (record !== undefined) rmSync(record, { recursive: true, force: true })
    return r.replay.events / (r.run.wallMs / 1000)
  }))

const program = Effect.gen(function*() {
  const w = yield* write
  const files = listRecording(dir).files.length
  const t0 = performance.now()
  const read = yield* Effect.promise(() => openRecording(dir).readAll())
  const readPerSec = read.length / ((performance.now() - t0) / 1000)
  const n1 = yield* replay(1)
  const n10 = yield* replay(10)
  const rerecord = join(dir, "..", `${dir.split("/").pop()}-rerecord`)
  const [without, withRec] = yield* alternatingMedians(rounds, replay(1), replay(1, rerecord))
  const overhead = 1 - withRec / without
  // its own pair of alternating rounds: each overhead against the rounds beside it
  const [withoutLoop, withRecLoop] = yield* alternatingMedians(rounds, replay(1), replay(1, rerecord, true))
  const overheadLoop = 1 - withRecLoop / withoutLoop
  const bytesPerEvent = w.stats.bytes / events

  console.log(machine())
  table("Recording format: Parquet (hyparquet-writer, snappy), one file per flush", ["figure", "value"], [
    ["events written", events],
    ["files", files],
    ["bytes per event on disk", bytesPerEvent.toFixed(2)],
    ["record() on the hot path, ns per event", w.recordNs.toFixed(1)],
    ["flush (encode + write), ns per event", w.flushNs.toFixed(1)],
    ["read back (decode), events/s", Math.round(readPerSec)]
  ])
  table("Replay from disk through the whole gateway into no-op strategies (virtual clock, as fast as possible)", ["variant", "events/s"], [
    ["N=1", Math.round(n1)],
    ["N=10", Math.round(n10)],
    [`N=1, median of ${rounds} alternating rounds, without recording`, Math.round(without)],
    [`N=1, median of ${rounds} alternating rounds, recording the ingest path`, Math.round(withRec)],
    ["recording overhead (1 - with / without)", `${(overhead * 100).toFixed(1)}%`],
    [`N=1, median of ${rounds} alternating rounds, without recording (second pair)`, Math.round(withoutLoop)],
    [`N=1, median of ${rounds} alternating rounds, recording, files encoded on the event loop`, Math.round(withRecLoop)],
    ["recording overhead, files encoded on the event loop", `${(overheadLoop * 100).toFixed(1)}%`]
  ])
  emitJson({
    bench: "replay",
    events,
    n1: { eventsPerSec: Math.round(n1) },
    n10: { eventsPerSec: Math.round(n10) },
    bytesPerEvent: Number(bytesPerEvent.toFixed(2)),
    recordNsPerEvent: Number(w.recordNs.toFixed(1)),
    flushNsPerEvent: Number(w.flushNs.toFixed(1)),
    readEventsPerSec: Math.round(readPerSec),
    recordingOverhead: Number(overhead.toFixed(4)),
    recordingOverheadEncodingOnEventLoop: Number(overheadLoop.toFixed(4))
  })
})

Effect.runPromise(program.pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))))
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
