/**
 * Raw frame recording benchmark (`src/record/RawFrames.ts`):
 *   - the tap's cost on the adapter's path: a frame handed to the inbox as
 *     `onFrame` does it, without a tap and with the raw-frame recorder's tap,
 *     in alternating rounds (ns per frame, and the difference), and the tap
 *     alone;
 *   - writing: the frames as Parquet (on this thread), rows per second and
 *     bytes per frame on disk against the frames' own text;
 *   - importing the Binance capture from its NDJSON and from its raw files.
 * Frames are the Binance capture's own (`test/fixtures/venues/`), cycled.
 *
 *   npm run bench:raw [-- --json] [-- --frames N] [-- --rounds R]
 */
import { Effect, Logger, LogLevel, Queue } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BinanceConfig } from "../schema/ProviderConfig.js"
import { checkRow, encodeRawRows, makeRawFrameRecorder, type RawRow, writeRawFile } from "../src/record/RawFrames.js"
import { importCapture } from "../src/replay/Import.js"
import { alternatingMedians, arg, emitJson, machine, table } from "./internal/report.js"

const frames = arg("--frames", 200_000)
const rounds = arg("--rounds", 5)
const dir = mkdtempSync(join(tmpdir(), "meltica-bench-raw-"))
const CAPTURE = join(import.meta.dirname, "..", "test", "fixtures", "venues", "binance", "capture-2021-10-12.jsonl")

const rows: Array<RawRow> = readFileSync(CAPTURE, "utf8").split("\n").filter((l) => l.trim() !== "").flatMap((l) => {
  const r = checkRow(JSON.parse(l))
  return typeof r === "string" ? [] : [r]
})
const texts = rows.filter((r) => r.t === "recv").map((r) => r.data!)

type Input = { readonly _tag: "Frame"; readonly data: string }

/** A full collection before a timed round, so that no round pays for the garbage of another. */
const collect = () => (globalThis as { gc?: () => void }).gc?.()

/** ns per frame of `onFrame` over `frames` frames. */
const timeFrames = (onFrame: (data: string) => void) =>
  Effect.sync(() => {
    collect()
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < frames; i++) onFrame(texts[i % texts.length])
    return Number(process.hrtime.bigint() - t0) / frames
  })

const program = Effect.gen(function*() {
  const clock = yield* Effect.clock
  const inbox = yield* Queue.unbounded<Input>()
  const drain = Queue.takeAll(inbox)
  const recorder = yield* makeRawFrameRecorder({ dir, flushIntervalMs: 3_600_000, maxRowsPerFile: 10_000_000, encodeOnWorker: false })
  const tap = recorder.tap.open!({
    provider: "bench",
    config: BinanceConfig.make({ symbols: ["NKN-USDT"] }),
    url: "wss://stream.binance.com:9443/stream",
    symbolMap: { "NKN-USDT": "NKNUSDT" },
    clock
  })
  tap.connected()
  const plain = (data: string) => Queue.unsafeOffer(inbox, { _tag: "Frame", data })
  const tapped = (data: string) => {
    tap.received(data)
    Queue.unsafeOffer(inbox, { _tag: "Frame", data })
  }
  const [withoutNs, withNs] = yield* alternatingMedians(
    rounds,
    timeFrames(plain).pipe(Effect.zipLeft(drain)),
    // the buffered rows are written between rounds, untimed (a flush is off the path)
    timeFrames(tapped).pipe(Effect.zipLeft(drain), Effect.zipLeft(recorder.flush))
  )

  // the tap alone (no inbox): what the hook itself costs
  const alone: Array<number> = []
  for (let r = 0; r < rounds; r++) {
    alone.push(yield* timeFrames(tap.received))
    yield* recorder.flush
  }
  const aloneNs = alone.sort((a, b) => a - b)[Math.floor(rounds / 2)]

  // writing: a file of `frames` rows, encoded here
  const fileRows: Array<RawRow> = []
  let textBytes = 0
  for (let i = 0; i < frames; i++) {
    const data = texts[i % texts.length]
    fileRows.push({ t: "recv", conn: "bench.ws.1", ts: 1_633_998_512 + i / 1000, data, url: undefined })
    textBytes += Buffer.byteLength(data)
  }
  const t0 = process.hrtime.bigint()
  const bytes = encodeRawRows(fileRows).byteLength
  const encodeMs = Number(process.hrtime.bigint() - t0) / 1e6
  // cycled frames repeat (dictionary encoding flatters them): the capture's own frames once, for the size on disk
  const captureFrames = rows.filter((r) => r.t !== "header")
  const captureBytes = encodeRawRows(captureFrames).byteLength
  const captureText = captureFrames.reduce((n, r) => n + Buffer.byteLength(r.data ?? ""), 0)

  // importing the capture from its NDJSON and from its raw files
  yield* writeRawFile(join(dir, "capture"), "binance", rows, 1)
  const timeImport = (capture: string, out: string) =>
    Effect.gen(function*() {
      const t = process.hrtime.bigint()
      const r = yield* importCapture({ capture, out: join(dir, out) })
      return { ms: Number(process.hrtime.bigint() - t) / 1e6, events: r.recorder.rowsWritten }
    })
  const ndjson = yield* timeImport(CAPTURE, "from-ndjson")
  const raw = yield* timeImport(join(dir, "capture"), "from-raw")
  const ndjsonAgain = yield* timeImport(CAPTURE, "from-ndjson-2")
  const rawAgain = yield* timeImport(join(dir, "capture"), "from-raw-2")

  console.log(machine())
  table(`The tap on the adapter's path (${frames} frames per round, median of ${rounds} alternating rounds)`, ["variant", "ns/frame"], [
    ["frame to the inbox, no tap (raw recording off)", withoutNs],
    ["frame to the inbox, with the raw-frame tap", withNs],
    ["the tap's cost (difference)", withNs - withoutNs],
    ["the tap alone, no inbox", aloneNs]
  ])
  table(`Writing ${frames} frames of the Binance capture as one Parquet file (this thread)`, ["figure", "value"], [
    ["rows/s", Math.round(frames / (encodeMs / 1000))],
    ["bytes per frame on disk (cycled frames)", bytes / frames],
    ["bytes per frame as text", textBytes / frames],
    [`bytes per frame on disk (the capture's ${captureFrames.length} rows once, REST snapshots included)`, captureBytes / captureFrames.length],
    ["size on disk / text (the capture once)", captureBytes / captureText]
  ])
  table(`Importing the Binance capture (${rows.length} rows, ${ndjson.events} events)`, ["source", "ms (first)", "ms (second)"], [
    ["NDJSON", ndjson.ms, ndjsonAgain.ms],
    ["raw frame files", raw.ms, rawAgain.ms]
  ])
  emitJson({
    bench: "rawFrames",
    frames,
    tapNsPerFrame: Number((withNs - withoutNs).toFixed(1)),
    tapAloneNsPerFrame: Number(aloneNs.toFixed(1)),
    inboxNsPerFrame: Number(withoutNs.toFixed(1)),
    writeRowsPerSec: Math.round(frames / (encodeMs / 1000)),
    bytesPerFrameCycled: Number((bytes / frames).toFixed(2)),
    bytesPerFrame: Number((captureBytes / captureFrames.length).toFixed(2)),
    compression: Number((captureBytes / captureText).toFixed(4)),
    importMs: { ndjson: Number(ndjsonAgain.ms.toFixed(1)), raw: Number(rawAgain.ms.toFixed(1)) }
  })
}).pipe(Effect.scoped)

Effect.runPromise(program.pipe(Logger.withMinimumLogLevel(LogLevel.Error), Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))))
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
