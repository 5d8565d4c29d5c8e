/**
 * Raw venue frames (`src/record/RawFrames.ts`): a venue adapter run with the
 * frame tap writes what it received, sent and fetched; `meltica import`
 * turns those files into the same canonical events the live adapter
 * produced, and into the same recording as the equivalent NDJSON capture;
 * unfinished, damaged and foreign files are skipped with a message, hostile
 * rows are refused and counted, and nothing else is lost.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Queue, Schema } from "effect"
import { spawn } from "node:child_process"
import { copyFileSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { GatewayConfig, RecordSection } from "../../schema/Config.js"
import { BinanceConfig, KrakenConfig, ProviderConfig } from "../../schema/ProviderConfig.js"
import { rawFrameOptions } from "../../layers/Application.js"
import { layerTest, testConfig, testVenues } from "../../layers/Test.js"
import * as Gateway from "../../src/Gateway.js"
import { Prometheus } from "../../src/Prometheus.js"
import { unknownFlag } from "../../src/main.js"
import * as Provider from "../../src/Provider.js"
import { Providers, type ProviderShape } from "../../src/Provider.js"
import { Counters } from "../../src/providers/internal/feed.js"
import { FrameTap } from "../../src/providers/internal/tap.js"
import { checksumOf } from "../../src/record/Format.js"
import {
  checkRow,
  DEFAULT_MAX_ROW_CHARS,
  layerRawFrames,
  listRawFrames,
  makeRawFrameRecorder,
  RawFrameFigures,
  type RawFrameOptions,
  maskUrl,
  type RawRow,
  readRawFile,
  writeRawFile
} from "../../src/record/RawFrames.js"
import { importCapture } from "../../src/replay/Import.js"
import { listRecording, openRecording } from "../../src/replay/Reader.js"
import { isConsistent, isDelta, isStale, isTrade, localVenue, readFrames, recordingSink, venueLayer, within } from "../providers/helpers.js"
import { restServer, venueServer } from "../providers/servers.js"
import { eventually } from "../support/events.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { TS_NODE } from "../support/tsNode.js"
import { tempDir } from "./support.js"

const fixture = (p: string) => join(import.meta.dirname, "..", "fixtures", "venues", p)
const BINANCE = fixture("binance/capture-2021-10-12.jsonl")
const OKX = fixture("okx/capture-2022-05-13.jsonl")

/** A payload as text with its keys in a fixed order (live instances and read-back ones build their fields differently). */
const norm = (p: object): string => JSON.stringify(p, Object.keys(p).sort())

/** The canonical events of a recording, without their times. */
const eventsOf = (dir: string) =>
  Effect.promise(() => openRecording(dir).readAll()).pipe(
    Effect.map((es) => es.map((e) => [e.provider, e.symbol, e.kind, e.seq, norm(e.payload)] as const))
  )

/** A ticker's time is the adapter's clock when the venue sends none: compared apart from the rest. */
const untimed = (p: object) => (p as { _tag: string })._tag === "ticker" ? norm({ ...p, exchangeTs: 0 }) : norm(p)

/** The NDJSON capture's lines as checked rows, in file order. */
const rowsOf = (file: string): Array<RawRow> =>
  readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => {
    const r = checkRow(JSON.parse(l))
    if (typeof r === "string") throw new Error(`fixture line refused: ${r}`)
    return r
  })

/** Rows written as raw files of `parts` pieces each (header rows kept in every piece). */
const writeRaw = (dir: string, provider: string, rows: ReadonlyArray<RawRow>, parts = 3) =>
  Effect.gen(function*() {
    const headers = rows.filter((r) => r.t === "header")
    const rest = rows.filter((r) => r.t !== "header")
    const size = Math.ceil(rest.length / parts)
    const paths: Array<string> = []
    for (let i = 0; i < parts; i++) {
      const w = yield* writeRawFile(dir, provider, [...headers, ...rest.slice(i * size, (i + 1) * size)], i + 1)
      paths.push(w.path)
    }
    return paths
  })

/** A provider whose run receives `frames` frames of 30 characters through the run's tap, then waits. */
const tapOnly = (frames: number): ProviderShape => {
  const counters = new Counters()
  return {
    name: "fake",
    symbols: ["BTC-USDT"],
    run: () =>
      Effect.gen(function*() {
        const tap = (yield* FrameTap).open?.({
          provider: "fake",
          config: BinanceConfig.make({ symbols: ["BTC-USDT"] }),
          url: "wss://stream.example.com/ws",
          symbolMap: { "BTC-USDT": "BTCUSDT" },
          clock: yield* Effect.clock
        })
        tap?.connected()
        for (let i = 0; i < frames; i++) tap?.received(`frame ${String(i).padStart(24, "0")}`)
        return yield* Effect.never
      }),
    status: Effect.succeed({ provider: "fake", connected: true, books: [], stats: counters.snapshot() }),
    stats: () => counters.snapshot()
  }
}

/** The raw frame layer over `tapOnly(frames)`, run until its rows are taken in, then closed: its figures and the fibers left. */
const runRawLayer = (options: RawFrameOptions, frames: number) =>
  runAndCountLeftFibers(
    layerRawFrames(options)(Layer.succeed(Providers, [tapOnly(frames)])),
    Effect.gen(function*() {
      const [provider] = yield* Providers
      const figures = yield* RawFrameFigures
      const fiber = yield* provider.run(() => Effect.void).pipe(Effect.scoped, Effect.fork)
      yield* eventually(() => figures.stats().rows + figures.stats().dropped === frames + 1, "the frames taken in")
      yield* Fiber.interrupt(fiber)
      return figures
    })
  )

describe("raw frame recording", () => {
  it.scoped("the layer's providers run with the tap; closing it writes what it holds and leaves no fiber; memory is bounded", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { left, result } = yield* runRawLayer({ dir, encodeOnWorker: false }, 1_000)
      assert.strictEqual(left, 0)
      assert.deepStrictEqual(result.stats(), { rows: 1_001, files: 1, rowsWritten: 1_001, bytes: result.stats().bytes, writeFailures: 0, dropped: 0, buffered: 0 })
      const listing = listRawFrames(dir)
      const { rows } = yield* Effect.promise(() => readRawFile(listing.files[0]))
      assert.deepStrictEqual(rows.map((r) => r.t).slice(0, 3), ["header", "connect", "recv"])
      assert.strictEqual(rows.length, 1_002)

      // at most 3,000 characters waiting: the connection's address (27) and 99 frames of 30 fit, the other 901 are
      // dropped, and counted
      const bounded = yield* tempDir
      const b = yield* runRawLayer({ dir: bounded, encodeOnWorker: false, maxBufferedChars: 3_000 }, 1_000)
      assert.deepStrictEqual([b.left, b.result.stats().rows, b.result.stats().dropped, b.result.stats().rowsWritten], [0, 100, 901, 100])
    }))

  it.scoped("kill -9 while recording raw frames: every complete file reads, in order, without a hole; a file caught mid-write is skipped", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const written = yield* Effect.async<number, Error>((resume) => {
        const child = spawn(process.execPath, [...TS_NODE, join(import.meta.dirname, "rawChild.ts"), dir], { stdio: ["ignore", "pipe", "inherit"] })
        let text = ""
        let killedAt: number | undefined
        child.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString()
          const lines = text.split("\n").filter((l) => l.startsWith("written "))
          // after the fifth flush that wrote something: kill it mid-run
          if (killedAt === undefined && lines.length >= 5) {
            killedAt = Number(lines[lines.length - 1].slice(8))
            child.kill("SIGKILL")
          }
        })
        child.on("exit", (code, signal) => {
          if (killedAt === undefined) resume(Effect.fail(new Error(`recorder exited before the kill (${code} ${signal})`)))
          else if (signal !== "SIGKILL") resume(Effect.fail(new Error(`recorder exited by ${signal}, not SIGKILL`)))
          else resume(Effect.succeed(killedAt))
        })
        return Effect.sync(() => child.kill("SIGKILL"))
      })
      const listing = listRawFrames(dir)
      for (const s of listing.skipped) assert.strictEqual(s.cause, "unfinished_write")
      const read = yield* Effect.forEach(listing.files, (f) => Effect.promise(() => readRawFile(f)))
      const frames = read.flatMap((r) => r.rows).filter((r) => r.t === "recv").map((r) => r.data)
      // every row reported written is there (more may have been flushed before the kill landed), as frames 0, 1, 2, ...
      assert.isAbove(written, 0)
      assert.isAtLeast(frames.length + 1, written)
      assert.deepStrictEqual(frames, frames.map((_, i) => `frame ${i}`))
    }), 60_000)

  it.scoped("a file that cannot be written is counted as a write failure; the run goes on", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // a regular file where the recording's directory should be: nothing can be created under it
      const blocked = join(dir, "not-a-directory")
      writeFileSync(blocked, "")
      const { left, result } = yield* runRawLayer({ dir: blocked, encodeOnWorker: false }, 10)
      assert.strictEqual(left, 0)
      assert.deepStrictEqual([result.stats().rows, result.stats().files, result.stats().writeFailures, result.stats().buffered], [11, 0, 1, 0])
    }))


  it.live("a venue adapter run with the tap writes its frames, sends, REST bodies and connections; importing them gives the live events", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const out = yield* tempDir
      const f = readFrames("binance-spot.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      let snapshot = f["snapshot-157"][0]
      rest.route("/api/v3/depth", () => snapshot)
      const recorder = yield* makeRawFrameRecorder({ dir, flushIntervalMs: 60_000, encodeOnWorker: false })
      // credentials in the address: never written
      const wsUrl = ws.url.replace("ws://", "ws://user:hunter2@")
      const provider = yield* Provider.make(BinanceConfig.make({ symbols: ["BNB-BTC"], ...localVenue(ws, rest), wsUrl }))
      const [tapped] = recorder.wrap([provider])
      const rec = yield* recordingSink
      yield* tapped.run(rec.sink).pipe(Effect.forkScoped)

      const subscription = yield* within(Queue.take(ws.received))
      yield* ws.sendAll([...f.subscribed, ...f.initial])
      yield* within(rec.waitFor(isConsistent))
      yield* ws.sendAll(f.live)
      yield* within(rec.waitFor(isDelta))
      // a dropped connection: the adapter reconnects, resubscribes and resyncs
      snapshot = f["snapshot-171"][0]
      yield* ws.drop
      yield* within(rec.waitFor(isStale))
      const resubscription = yield* within(Queue.take(ws.received))
      yield* ws.sendAll(f.reconnected)
      yield* within(rec.waitFor(isConsistent))
      yield* within(rec.waitFor(isTrade("12348")))
      yield* recorder.flush

      const listing = listRawFrames(dir)
      assert.deepStrictEqual(listing.skipped, [])
      assert.strictEqual(listing.files.length, 1)
      assert.match(listing.files[0].path, /raw\/\d{4}-\d{2}-\d{2}\/binance\/\d+-\d+-1\.[0-9a-f]{8}\.frames\.pq$/)
      const { refused, rows } = yield* Effect.promise(() => readRawFile(listing.files[0]))
      assert.deepStrictEqual(refused, {})
      const byType = (t: string) => rows.filter((r) => r.t === t)
      assert.strictEqual(byType("header").length, 1)
      const header = JSON.parse(byType("header")[0].data!)
      assert.deepStrictEqual([header.format, header.exchange, header.provider, header.symbolMap], ["meltica-raw", "binance", "binance", { "BNB-BTC": "BNBBTC" }])
      assert.deepStrictEqual(byType("connect").map((r) => [r.conn, r.url]), [
        ["binance.ws.1", `${ws.url.replace("ws://", "ws://***@")}/stream`],
        ["binance.ws.2", `${ws.url.replace("ws://", "ws://***@")}/stream`]
      ])
      assert.deepStrictEqual(byType("send").map((r) => [r.conn, r.data]), [["binance.ws.1", subscription], ["binance.ws.2", resubscription]])
      assert.deepStrictEqual(byType("recv").map((r) => r.data), [...f.subscribed, ...f.initial, ...f.live, ...f.reconnected])
      assert.deepStrictEqual(byType("http").map((r) => [r.conn, r.url!.replace(rest.url, ""), r.data]), [
        ["binance.http", "/api/v3/depth?symbol=BNBBTC&limit=1000", f["snapshot-157"][0]],
        ["binance.http", "/api/v3/depth?symbol=BNBBTC&limit=1000", f["snapshot-171"][0]]
      ])
      // receive times in order, on the run's clock
      const ts = rows.filter((r) => r.t !== "header").map((r) => r.ts)
      assert.deepStrictEqual(ts, [...ts].sort((a, b) => a - b))
      assert.isAbove(ts[0], Date.UTC(2020, 0, 1) / 1000)
      const bytes = readFileSync(listing.files[0].path)
      assert.strictEqual(bytes.indexOf("hunter2"), -1)

      // the canonical reader does not take raw files for event files, and does not complain about them
      writeFileSync(`${listing.files[0].path.replace(/\.frames\.pq$/, "-9.frames.pq")}.tmp`, bytes.subarray(0, 100))
      assert.deepStrictEqual(listRecording(dir), { files: [], skipped: [] })

      // imported offline through the same adapter: the events the live run produced, in the same order
      const result = yield* importCapture({ capture: dir, out })
      assert.deepStrictEqual([result.venue, result.name, result.reconnects, result.dropped], ["binance", "binance", 1, 0])
      assert.deepStrictEqual(result.skipped.map((s) => s.cause), ["unfinished_write"])
      // (a bookTicker carries no venue time: the adapter stamps it when it handles the frame, which offline is the
      // frame's receive time and live a little later; compared apart)
      const live = rec.seen.map((s) => [s.provider, s.symbol, s.kind, s.seq, untimed(s.payload)] as const)
      const imported = yield* Effect.promise(() => openRecording(out).readAll())
      assert.deepStrictEqual(imported.map((e) => [e.provider, e.symbol, e.kind, e.seq, untimed(e.payload)] as const), live)
      const tickerTimes = (ps: ReadonlyArray<{ readonly payload: object }>) =>
        ps.map((e) => e.payload as { _tag: string; exchangeTs: number }).filter((p) => p._tag === "ticker").map((p) => p.exchangeTs)
      const liveTimes = tickerTimes(rec.seen)
      tickerTimes(imported).forEach((t, i) => assert.isTrue(t <= liveTimes[i] && t >= liveTimes[i] - 5_000, `ticker ${i}: ${t} vs ${liveTimes[i]}`))
    }).pipe(Effect.provide(venueLayer), Effect.scoped), 30_000)

  it.live("a Kraken adapter's raw frames (a checksum mismatch and its resubscription) import to the live run's events", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const out = yield* tempDir
      const f = readFrames("kraken-v2.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      // (encoded on the worker thread here; on this thread in the Binance run above)
      const recorder = yield* makeRawFrameRecorder({ dir, flushIntervalMs: 60_000 })
      const provider = yield* Provider.make(KrakenConfig.make({ symbols: ["BTC-USD"], ...localVenue(ws, rest), bookDepth: 10, depth: 10 }))
      const rec = yield* recordingSink
      yield* recorder.wrap([provider])[0].run(rec.sink).pipe(Effect.forkScoped)
      for (let i = 0; i < 3; i++) yield* within(Queue.take(ws.received))
      yield* ws.sendAll([...f.connected, ...f.live])
      yield* within(rec.waitFor((s) => s.kind === "ticker"))
      yield* ws.sendAll(f["bad-checksum"])
      yield* within(rec.waitFor(isStale))
      for (let i = 0; i < 2; i++) yield* within(Queue.take(ws.received))
      yield* ws.sendAll(f.resubscribed)
      yield* within(rec.waitFor((s) => isDelta(s) && (s.payload as { checksum?: number }).checksum === 154802010))
      yield* recorder.flush

      const result = yield* importCapture({ capture: dir, out })
      assert.deepStrictEqual([result.venue, result.name, result.symbols], ["kraken", "kraken", { "BTC-USD": "BTC/USD" }])
      assert.deepStrictEqual([result.provider.checksumMismatches, result.provider.resyncs], [1, 1])
      const imported = yield* Effect.promise(() => openRecording(out).readAll())
      assert.deepStrictEqual(
        imported.map((e) => [e.provider, e.symbol, e.kind, e.seq, untimed(e.payload)] as const),
        rec.seen.map((s) => [s.provider, s.symbol, s.kind, s.seq, untimed(s.payload)] as const)
      )
    }).pipe(Effect.provide(venueLayer), Effect.scoped), 30_000)

  it.live("a gateway with record.rawFrames writes its real venues' frames beside the recording, which still reads cleanly", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const f = readFrames("binance-spot.frames")
      const ws = yield* venueServer
      const rest = yield* restServer
      rest.route("/api/v3/depth", () => f["snapshot-157"][0])
      const config = testConfig({
        venues: [testVenues(["BTC-USDT"])[0], BinanceConfig.make({ symbols: ["BNB-BTC"], ...localVenue(ws, rest) })],
        merges: [],
        record: RecordSection.make({ dir, rawFrames: true, flushIntervalMs: 100 })
      })
      const scrape = yield* Effect.scoped(Effect.gen(function*() {
        yield* Gateway.run(config, { strategies: [] }).pipe(Effect.forkScoped)
        yield* within(Queue.take(ws.received))
        yield* ws.sendAll([...f.subscribed, ...f.initial, ...f.live])
        // frames and the close travel in order: once the adapter has resubscribed, it has taken every frame in
        yield* ws.drop
        yield* within(Queue.take(ws.received))
        return yield* (yield* Prometheus).scrape
      }).pipe(Effect.provide(layerTest(config))))
      // /metrics: every row taken in so far (frames, sends, connections, a REST body if it came)
      const value = (name: string) => Number(scrape.split("\n").find((l) => l.startsWith(`${name} `))?.split(" ").pop())
      const taken = value("meltica_raw_frames_rows_total")
      const frames = f.subscribed.length + f.initial.length + f.live.length
      assert.isAtLeast(taken, frames + 4)
      for (const name of ["meltica_raw_frames_files_written_total", "meltica_raw_frames_bytes_written_total", "meltica_raw_frames_write_failures_total", "meltica_raw_frames_dropped_total", "meltica_raw_frames_buffered"]) {
        assert.isFalse(Number.isNaN(value(name)), name)
      }
      assert.deepStrictEqual([value("meltica_raw_frames_write_failures_total"), value("meltica_raw_frames_dropped_total")], [0, 0])

      const listing = listRawFrames(dir)
      assert.deepStrictEqual(listing.skipped, [])
      assert.deepStrictEqual([...new Set(listing.files.map((i) => i.provider))], ["binance"])
      const rows = (yield* Effect.forEach(listing.files, (i) => Effect.promise(() => readRawFile(i)))).flatMap((r) => r.rows)
      assert.deepStrictEqual(rows.filter((r) => r.t === "recv").map((r) => r.data), [...f.subscribed, ...f.initial, ...f.live])
      assert.deepStrictEqual(rows.filter((r) => r.t === "connect").map((r) => r.conn), ["binance.ws.1", "binance.ws.2"])
      // (the snapshot may or may not have arrived before the drop cancelled its fetch)
      for (const r of rows.filter((r) => r.t === "http")) assert.strictEqual(r.data, f["snapshot-157"][0])
      // the canonical recording beside it: both providers' events, no complaint about the raw files
      const recording = listRecording(dir)
      assert.deepStrictEqual(recording.skipped, [])
      assert.deepStrictEqual([...new Set(recording.files.map((i) => i.provider))].sort(), ["binance", "sim-a"])
    }).pipe(Effect.scoped), 30_000)

  for (const [name, file] of [["binance", BINANCE], ["okx", OKX]] as const) {
    it.scoped(`${name}: a capture converted to raw frame files imports to the same recording as the NDJSON`, () =>
      Effect.gen(function*() {
        const raw = yield* tempDir
        const fromNdjson = yield* tempDir
        const fromRaw = yield* tempDir
        yield* writeRaw(raw, name, rowsOf(file))
        const a = yield* importCapture({ capture: file, out: fromNdjson })
        const b = yield* importCapture({ capture: raw, out: fromRaw })
        assert.deepStrictEqual([b.venue, b.symbols, b.frames, b.snapshots, b.dropped], [a.venue, a.symbols, a.frames, a.snapshots, a.dropped])
        assert.deepStrictEqual(b.provider, a.provider)
        const events = yield* Effect.promise(() => openRecording(fromNdjson).readAll())
        assert.isAbove(events.length, 200)
        assert.deepStrictEqual(yield* Effect.promise(() => openRecording(fromRaw).readAll()), events)
      }), 60_000)
  }

  it.scoped("a gateway restarted into the same directory (its connections numbered from 1 again) imports as a reconnection", () =>
    Effect.gen(function*() {
      const raw = yield* tempDir
      const out = yield* tempDir
      const f = readFrames("binance-spot.frames")
      const header = JSON.stringify({
        format: "meltica-raw",
        exchange: "binance",
        provider: "binance",
        symbolMap: { "BNB-BTC": "BNBBTC" },
        config: Schema.encodeSync(ProviderConfig)(BinanceConfig.make({ symbols: ["BNB-BTC"] }))
      })
      let ts = 1_700_000_000
      const at = (t: RawRow["t"], data?: string, url?: string): RawRow => ({ t, conn: t === "http" ? "binance.http" : "binance.ws.1", ts: ts += 0.01, data, url })
      const depth = "https://api.binance.com/api/v3/depth?symbol=BNBBTC&limit=1000"
      const run = (snapshot: string, frames: ReadonlyArray<string>) => [
        at("connect", undefined, "wss://stream.binance.com:9443/stream"),
        ...frames.slice(0, 1).map((d) => at("recv", d)),
        at("http", snapshot, depth),
        ...frames.slice(1).map((d) => at("recv", d))
      ]
      const first = run(f["snapshot-157"][0], [...f.subscribed, ...f.initial, ...f.live])
      ts += 60
      const second = run(f["snapshot-171"][0], f.reconnected)
      yield* writeRawFile(raw, "binance", [{ t: "header", conn: undefined, ts: first[0].ts, data: header, url: undefined }, ...first], 1)
      yield* writeRawFile(raw, "binance", [{ t: "header", conn: undefined, ts: second[0].ts, data: header, url: undefined }, ...second], 2)

      const r = yield* importCapture({ capture: raw, out })
      assert.deepStrictEqual([r.reconnects, r.dropped, r.snapshots], [1, 0, 2])
      assert.deepStrictEqual([r.provider.gaps, r.provider.checksumMismatches], [0, 0])
      const events = yield* Effect.promise(() => openRecording(out).readAll())
      const books = events.filter((e) => e.kind === "book_snapshot").map((e) => {
        const p = e.payload as { state: string; staleReason?: string }
        return p.state === "stale" ? `stale: ${p.staleReason?.split(":")[0]}` : p.state
      })
      // (the recorded configuration's periodic snapshots, every 5 s of the minute between the runs, repeat a state)
      assert.deepStrictEqual(books.filter((b, i) => b !== books[i - 1]), ["consistent", "stale: disconnected", "consistent"])
      assert.deepStrictEqual(events.filter((e) => e.kind === "trade").map((e) => (e.payload as { tradeId: string }).tradeId).at(-1), "12348")
    }), 60_000)

  it.scoped("an unfinished (.tmp) file is skipped and what was complete imports", () =>
    Effect.gen(function*() {
      const raw = yield* tempDir
      const complete = yield* tempDir
      const outA = yield* tempDir
      const outB = yield* tempDir
      const rows = rowsOf(BINANCE)
      const [, second] = yield* writeRaw(raw, "binance", rows, 2)
      // the second file as a kill -9 leaves it: written, never renamed
      renameSync(second, `${second}.tmp`)
      const frames = rows.filter((r) => r.t !== "header")
      yield* writeRaw(complete, "binance", [...rows.filter((r) => r.t === "header"), ...frames.slice(0, Math.ceil(frames.length / 2))], 1)
      const r = yield* importCapture({ capture: raw, out: outA })
      assert.deepStrictEqual(r.skipped.map((s) => [s.cause, s.message.includes("unfinished write")]), [["unfinished_write", true]])
      yield* importCapture({ capture: complete, out: outB })
      const events = yield* eventsOf(outA)
      assert.isAbove(events.length, 50)
      assert.deepStrictEqual(events, yield* eventsOf(outB))
    }), 60_000)

  it.scoped("damaged, misnamed and foreign files are skipped with a clear message; the rest imports", () =>
    Effect.gen(function*() {
      const raw = yield* tempDir
      const canonical = yield* tempDir
      const out = yield* tempDir
      const [, second, third] = yield* writeRaw(raw, "binance", rowsOf(BINANCE), 3)
      // a flipped byte: no longer the CRC in its name
      const damaged = readFileSync(second)
      damaged[damaged.length >> 1] ^= 0xff
      writeFileSync(second, damaged)
      // not Parquet at all, under a name with the right CRC
      const garbage = Buffer.from("PAR1 this is not a parquet file PAR1")
      const dirOf = third.slice(0, third.lastIndexOf("/"))
      writeFileSync(join(dirOf, `1-2-7.${checksumOf(garbage).toString(16).padStart(8, "0")}.frames.pq`), garbage)
      // a canonical recording file dressed as raw frames
      yield* importCapture({ capture: OKX, out: canonical })
      const event = listRecording(canonical).files[0]
      const eventBytes = readFileSync(event.path)
      copyFileSync(event.path, join(dirOf, `3-4-8.${checksumOf(eventBytes).toString(16).padStart(8, "0")}.frames.pq`))
      // a name that is not ours
      writeFileSync(join(dirOf, "frames.frames.pq"), "x")

      const r = yield* importCapture({ capture: raw, out })
      const causes = r.skipped.map((s) => s.cause).sort()
      assert.deepStrictEqual(causes, ["bad_name", "checksum", "not_parquet", "wrong_format"])
      for (const s of r.skipped) assert.match(s.message, /^recording file .+ skipped: .+/)
      assert.match(r.skipped.find((s) => s.cause === "checksum")!.message, /do not match the CRC32/)
      assert.isAbove(r.recorder.rowsWritten, 0)
    }), 60_000)

  it.scoped("a directory without raw frames, or with only unusable ones, fails the import with a message saying why", () =>
    Effect.gen(function*() {
      const empty = yield* tempDir
      const out = yield* tempDir
      const none = yield* Effect.flip(importCapture({ capture: empty, out }))
      assert.match(none.message, /a directory without raw frame files/)
      const [only] = yield* writeRaw(empty, "binance", rowsOf(BINANCE), 1)
      renameSync(only, `${only}.tmp`)
      const unusable = yield* Effect.flip(importCapture({ capture: empty, out }))
      assert.match(unusable.message, /no usable frames: recording file .+\.frames\.pq\.tmp skipped: an unfinished write/)
    }))

  it.scoped("hostile rows are refused and counted, and the import produces what the clean capture does", () =>
    Effect.gen(function*() {
      const raw = yield* tempDir
      const cleanOut = yield* tempDir
      const rawOut = yield* tempDir
      const ndjsonOut = yield* tempDir
      const rows = rowsOf(BINANCE)
      const at = rows[5].ts
      const row = (r: Record<string, unknown>) => ({ t: "recv", conn: "BINANCE.ws.0", ts: at, data: "{}", url: null, ...r }) as unknown as RawRow
      // [row, why it is refused]
      const hostile: ReadonlyArray<readonly [RawRow, string]> = [
        [row({ data: "x".repeat(DEFAULT_MAX_ROW_CHARS + 1) }), "too_large"],
        [row({ t: "http", url: "https://api.binance.com/x", data: "y".repeat(DEFAULT_MAX_ROW_CHARS) }), "too_large"],
        [row({ ts: Number.NaN }), "bad_ts"],
        [row({ ts: -1 }), "bad_ts"],
        [row({ ts: 1e12 }), "bad_ts"],
        [row({ ts: null }), "bad_ts"],
        [row({ t: "bogus" }), "unknown_type"],
        [row({ t: null }), "unknown_type"],
        [row({ data: null }), "missing_field"],
        [row({ t: "http", url: "not a url" }), "bad_url"],
        [row({ t: "http", url: null }), "bad_url"]
      ]
      const mixed = [...rows.slice(0, 10), ...hostile.map(([r]) => r), ...rows.slice(10)]
      yield* writeRaw(raw, "binance", mixed, 2)
      const expected: Record<string, number> = {}
      for (const [, why] of hostile) expected[why] = (expected[why] ?? 0) + 1

      const clean = yield* importCapture({ capture: BINANCE, out: cleanOut })
      const r = yield* importCapture({ capture: raw, out: rawOut })
      assert.deepStrictEqual(r.refused, expected)
      assert.strictEqual(r.unreadable, hostile.length)
      assert.deepStrictEqual(r.provider, clean.provider)
      assert.deepStrictEqual(yield* eventsOf(rawOut), yield* eventsOf(cleanOut))

      // the same in NDJSON, with lines that are not even JSON objects
      const lines = readFileSync(BINANCE, "utf8").split("\n").filter((l) => l.trim() !== "")
      const bad: ReadonlyArray<readonly [string, string]> = [
        ["{not json", "invalid_json"],
        ["[1, 2, 3]", "not_an_object"],
        ["42", "not_an_object"],
        [`{"t":"recv","ts":"soon","data":"{}"}`, "bad_ts"],
        [`{"t":"recv","ts":1e400,"data":"{}"}`, "bad_ts"],
        [`{"t":7,"ts":${at},"data":"{}"}`, "unknown_type"],
        [`{"t":"recv","ts":${at},"data":{"nested":true}}`, "missing_field"],
        [`{"t":"recv","ts":${at},"conn":5,"data":"{}"}`, "missing_field"]
      ]
      const file = join(raw, "capture.jsonl")
      writeFileSync(file, [...lines.slice(0, 10), ...bad.map(([l]) => l), ...lines.slice(10)].join("\n"))
      const n = yield* importCapture({ capture: file, out: ndjsonOut })
      const expectedNdjson: Record<string, number> = {}
      for (const [, why] of bad) expectedNdjson[why] = (expectedNdjson[why] ?? 0) + 1
      assert.deepStrictEqual(n.refused, expectedNdjson)
      assert.deepStrictEqual(yield* eventsOf(ndjsonOut), yield* eventsOf(cleanOut))
    }), 60_000)

  it("masks credentials in URLs: user info and credential-like query parameters", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["wss://user:pw@stream.example.com/ws", "wss://***@stream.example.com/ws"],
      ["https://api.example.com/depth?symbol=BTCUSDT&apiKey=abc&signature=def", "https://api.example.com/depth?symbol=BTCUSDT&apiKey=***&signature=***"],
      ["https://api.example.com/depth?symbol=BTCUSDT&limit=1000", "https://api.example.com/depth?symbol=BTCUSDT&limit=1000"],
      ["not a url token=abc", "not a url token=abc"]
    ]
    for (const [url, masked] of table) assert.strictEqual(maskUrl(url).replace(/%2A/g, "*"), masked, url)
  })

  it("record.rawFrames is off by default, needs a directory, and --record/--record-raw are known flags", () => {
    const decode = Schema.decodeUnknownSync(GatewayConfig)
    assert.isFalse(decode({}).record.rawFrames)
    assert.isUndefined(rawFrameOptions(decode({ record: { rawFrames: true } })))
    assert.isUndefined(rawFrameOptions(decode({ record: { dir: "/tmp/rec" } })))
    assert.deepStrictEqual(rawFrameOptions(decode({ record: { dir: "/tmp/rec", rawFrames: true, flushIntervalMs: 250 } })), {
      dir: "/tmp/rec",
      flushIntervalMs: 250,
      maxRowsPerFile: 100_000,
      encodeOnWorker: true
    })
    assert.isUndefined(unknownFlag(["run", "--record", "/tmp/rec", "--record-raw"]))
    assert.isUndefined(unknownFlag(["import", "--capture", "/tmp/rec", "--out", "/tmp/out", "--provider", "binance"]))
  })
})

