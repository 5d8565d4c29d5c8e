/**
 * `npm run bench:replay [-- --events N --rounds R --json]`
 *
 * 1. Writes a synthetic recording of N events (default 1,000,000; one venue,
 *    one symbol, trades and tickers 100 us apart, a seeded random walk of
 *    distinct ids, prices and sizes) through the recorder: the hot-path cost of
 *    `record` per event, the flush cost (encode + write) per event, bytes per
 *    event on disk.
 * 2. Reads it back (decode only): events per second.
 * 3. Replays it from disk through the whole in-memory gateway (Orchestrator,
 *    Dispatcher, mailboxes, consumers, paper venue) into N = 1 and N = 10
 *    no-op strategies subscribed to both kinds, on the virtual clock, as fast
 *    as possible: events per second (the median of alternating rounds, after
 *    one uncounted replay of each).
 * 4. Recording overhead on the live path: the shipped in-memory gateway (its
 *    scheduler, layers and recorder, as `--record DIR` runs it) with three
 *    simulated venues asked for more than they can generate, so that the
 *    process runs flat out, and one no-op strategy: events ingested per second
 *    with recording against without, in alternating rounds: 1 - with / without.
 * 5. The same on the replay path (a backtest that records what it replays): the
 *    N = 1 replay with the recorder wrapping the replay's providers, against
 *    without; the run ends when the last file is written, so this is bounded
 *    by the encoder thread's own speed, not by the cost to the event loop.
 */
import { Effect, Logger, LogLevel } from "effect"
import { layerOn, memoryOptions } from "../layers/Application.js"
import { layerMemory } from "../layers/Memory.js"
import { GatewayConfig, RecordSection, StrategiesSection, BboStrategyConfig, OrdersStrategyConfig } from "../schema/Config.js"
import { SimulatedVenueConfig } from "../schema/ProviderConfig.js"
import * as Gateway from "../src/Gateway.js"
import { gatewayScheduler } from "../src/internal/scheduler.js"
import { Providers } from "../src/Provider.js"
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

const events = arg("--events", 1_000_000)
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
  // a seeded random walk: distinct trade ids, prices and sizes, as a busy symbol's would be
  let seed = 42
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648
  let mid = 6_400_000
  const price = (cents: number) => decimal((cents / 100).toFixed(2))
  const size = () => decimal((random() * 2).toFixed(5))
  let recordNs = 0
  let flushNs = 0
  for (let i = 0; i < events; i++) {
    e._owned = true
    mid += Math.round((random() - 0.5) * 20)
    const exchangeTs = Math.floor((START_US + i * 100) / 1000)
    e.kind = i % 2 === 0 ? "trade" : "ticker"
    e.payload = i % 2 === 0
      ? Trade.make({ tradeId: String(3_000_000_000 + i), price: price(mid), quantity: size(), side: random() < 0.5 ? "buy" : "sell", exchangeTs }, true)
      : Ticker.make({ bidPrice: price(mid - 1), bidQty: size(), askPrice: price(mid + 1), askQty: size(), exchangeTs }, true)
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

const replay = (n: number, record?: string) =>
  runBacktest({
    data: dir,
    strategies: Array.from({ length: n }, (_, i) => ({ strategy: noop(i) })),
    sampleMs: 3_600_000,
    ...(record === undefined ? {} : { record })
  }, layerBacktest).pipe(Effect.map((r) => {
    if (record !== undefined) rmSync(record, { recursive: true, force: true })
    return r.replay.events / (r.run.wallMs / 1000)
  }))

const LIVE_SECONDS = arg("--live-seconds", 6)
const LIVE_SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"] as const

/** The shipped gateway, its simulated venues asked for 300,000 events/s in all (more than they generate), recording into `record` when given. */
const liveConfig = (record: string | undefined) =>
  GatewayConfig.make({
    venues: ["sim-a", "sim-b", "sim-c"].map((name, i) =>
      SimulatedVenueConfig.make({
        name,
        symbols: [...LIVE_SYMBOLS],
        seed: i + 1,
        tradesPerSecond: 10_000,
        tickersPerSecond: 10_000,
        deltasPerSecond: 13_000,
        tickMs: 10
      })
    ),
    strategies: StrategiesSection.make({ bbo: BboStrategyConfig.make({ enabled: false }), orders: OrdersStrategyConfig.make({ enabled: false }) }),
    statusIntervalMs: 3_600_000,
    ...(record === undefined ? {} : { record: RecordSection.make({ dir: record }) })
  })

/** Events the live gateway ingests per second, flat out, with one no-op strategy subscribed to all of them. */
const live = (record?: string) =>
  Effect.gen(function*() {
    const config = liveConfig(record)
    const perSec = yield* Effect.gen(function*() {
      const providers = yield* Providers
      const strategy = Strategy.define({
        id: "noop-live",
        start: (ctx) => Effect.forEach(LIVE_SYMBOLS, (symbol) => ctx.subscribe(symbol, ["trade", "ticker", "book_delta"]), { discard: true })
      })
      yield* Effect.forkScoped(Gateway.run(config, { strategies: [{ strategy }] }))
      yield* Effect.sleep("1500 millis")
      const before = providers.reduce((n, p) => n + p.stats().events, 0)
      const t0 = performance.now()
      yield* Effect.sleep(`${LIVE_SECONDS * 1000} millis`)
      const events = providers.reduce((n, p) => n + p.stats().events, 0) - before
      return events / ((performance.now() - t0) / 1000)
    }).pipe(Effect.provide(layerOn(config, layerMemory(memoryOptions(config)))), Effect.scoped, Effect.withScheduler(gatewayScheduler))
    if (record !== undefined) rmSync(record, { recursive: true, force: true })
    return perSec
  })

const program = Effect.gen(function*() {
  const w = yield* write
  const files = listRecording(dir).files.length
  const t0 = performance.now()
  const read = yield* Effect.promise(() => openRecording(dir).readAll())
  const readPerSec = read.length / ((performance.now() - t0) / 1000)
  // after a replay of each, uncounted (the JIT has seen the path), alternating rounds
  const [n1, n10] = yield* alternatingMedians(rounds, replay(1), replay(10))
  const rerecord = join(dir, "..", `${dir.split("/").pop()}-rerecord`)
  const [liveWithout, liveWith] = yield* alternatingMedians(rounds, live(), live(rerecord))
  const overhead = 1 - liveWith / liveWithout
  const [without, withRec] = yield* alternatingMedians(rounds, replay(1), replay(1, rerecord))
  const overheadReplay = 1 - withRec / without
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
    [`N=1, median of ${rounds}`, Math.round(n1)],
    [`N=10, median of ${rounds}`, Math.round(n10)],
    [`the live in-memory gateway, flat out (3 simulated venues, 1 no-op strategy), median of ${rounds}`, Math.round(liveWithout)]
  ])
  table("Recording overhead (1 - with / without, alternating rounds)", ["path", "without, events/s", "with, events/s", "overhead"], [
    [`live gateway, flat out, median of ${rounds}`, Math.round(liveWithout), Math.round(liveWith), `${(overhead * 100).toFixed(1)}%`],
    [`replay N=1 re-recording what it replays, median of ${rounds}`, Math.round(without), Math.round(withRec), `${(overheadReplay * 100).toFixed(1)}%`]
  ])
  emitJson({
    bench: "replay",
    events,
    n1: { eventsPerSec: Math.round(n1) },
    n10: { eventsPerSec: Math.round(n10) },
    liveEventsPerSec: Math.round(liveWithout),
    bytesPerEvent: Number(bytesPerEvent.toFixed(2)),
    recordNsPerEvent: Number(w.recordNs.toFixed(1)),
    flushNsPerEvent: Number(w.flushNs.toFixed(1)),
    readEventsPerSec: Math.round(readPerSec),
    recordingOverhead: Number(overhead.toFixed(4)),
    recordingOverheadReplay: Number(overheadReplay.toFixed(4))
  })
})

Effect.runPromise(program.pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))))
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
