/**
 * `meltica import`: a raw capture of venue frames turned into a recording by
 * running the real venue adapter offline, so that its own parsing, book
 * building and integrity checks (sequence chains, checksums) produce the
 * canonical events. Two sources, one record shape (`RawFrames.ts`):
 * - NDJSON, the format of `test/fixtures/venues/README.md`: `recv` frames
 *   and `http` REST bodies with their receive time;
 * - the raw frames our own recorder writes (`record.rawFrames`,
 *   `--record-raw`): Parquet files under a recording's `raw/` (a directory,
 *   or one file). Each provider in it is imported with the configuration it
 *   was recorded with (its header row), so any of the four venues imports.
 * Both are checked row by row (`checkRow`): a row that is not a frame is
 * refused and counted, the rest imports; an unusable file is skipped with a
 * message saying why.
 *
 * The adapter runs on the virtual clock and the deterministic scheduler,
 * with an in-process WebSocket and HTTP client standing in for the venue:
 * each capture line, in receive-time order, moves the clock to its time, is
 * handed over (a frame to the socket; a REST body to the request waiting for
 * that symbol's snapshot, held until the capture reaches it, as the venue
 * served it; a new connection closes the current socket, and the adapter
 * reconnects), and the import waits until the adapter has handled it before
 * the next line. Events are stamped with the capture's receive times.
 *
 * A capture without our header is recognised as Binance or OKX by its header
 * or connection address. Its symbols are taken from the frames; Binance's
 * are split at a known quote asset (NKNUSDT -> NKN-USDT), OKX's dated and
 * perpetual instruments get canonical names (BTC-USD-220527 ->
 * BTC220527-USD, UNI-USD-SWAP -> UNISWAP-USD).
 */
import { Data, Deferred, Effect, Either, Layer, Schema } from "effect"
import { HttpClient } from "@effect/platform"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { WebSocketConstructor } from "@effect/platform/Socket"
import { readFileSync, statSync } from "node:fs"
import { ProviderConfig, type RealVenueConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../DeadLetter.js"
import { Pool } from "../Pool.js"
import { make as makeProvider } from "../Provider.js"
import { generationOf, Recycler } from "../Recycler.js"
import type { CorruptRecording } from "../record/Format.js"
import {
  checkRow,
  DEFAULT_MAX_ROW_CHARS,
  hasRawFrames,
  listRawFrames,
  type RawHeader,
  type RawRefusal,
  type RawRow,
  readRawFile
} from "../record/RawFrames.js"
import { makeRecorder, type RecorderStats } from "../record/Recorder.js"
import { runOnReplay } from "./Replay.js"
import { settle, VirtualClock } from "./VirtualClock.js"

export class ImportFailed extends Data.TaggedError("ImportFailed")<{
  readonly capture: string
  readonly reason: string
}> {
  override get message(): string {
    return `import of ${this.capture} failed: ${this.reason}`
  }
}

type Line =
  | { readonly t: "recv"; readonly conn: string | undefined; readonly ts: number; readonly data: string }
  | { readonly t: "http"; readonly ts: number; readonly url: string; readonly data: string }
  | { readonly t: "connect"; readonly conn: string | undefined; readonly ts: number }

export interface Capture {
  /** Where it was read from. */
  readonly source: string
  readonly venue: RealVenueConfig["_tag"]
  /** The provider's name as recorded (our own raw frames), if known. */
  readonly provider: string | undefined
  /** The provider's configuration as recorded (our own raw frames), if known. */
  readonly config: RealVenueConfig | undefined
  readonly lines: ReadonlyArray<Line>
  /** Canonical symbol -> the venue's. */
  readonly symbolMap: Readonly<Record<string, string>>
  /** Rows refused (not JSON, not a frame, a bad time, too large, ...): counted, skipped. */
  readonly unreadable: number
  readonly refused: Readonly<Partial<Record<RawRefusal, number>>>
}

const QUOTES = ["USDT", "BUSD", "USDC", "TUSD", "FDUSD", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY", "BRL", "AUD", "USD"]

const binanceCanonical = (s: string): string | undefined => {
  const q = QUOTES.find((q) => s.endsWith(q) && s.length > q.length)
  return q === undefined ? undefined : `${s.slice(0, -q.length)}-${q}`
}

const okxCanonical = (instId: string): string => {
  const [base, quote, ...rest] = instId.split("-")
  return rest.length === 0 ? instId : `${base}${rest.join("")}-${quote}`
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x)

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const decodeConfig = Schema.decodeUnknownEither(ProviderConfig)

/** Our own header (`RawFrames.ts`), when a header row is one. */
const ownHeader = (data: unknown): (RawHeader & { readonly decoded: RealVenueConfig }) | undefined => {
  if (!isRecord(data) || data.format !== "meltica-raw" || typeof data.provider !== "string" || !isRecord(data.symbolMap)) return undefined
  const decoded = decodeConfig(data.config)
  if (Either.isLeft(decoded) || decoded.right._tag === "simulated") return undefined
  return { ...(data as unknown as RawHeader), decoded: decoded.right }
}

const addCount = (into: Partial<Record<RawRefusal, number>>, from: Readonly<Partial<Record<RawRefusal, number>>>): void => {
  for (const [k, n] of Object.entries(from) as Array<[RawRefusal, number]>) into[k] = (into[k] ?? 0) + n
}
const total = (refused: Readonly<Partial<Record<RawRefusal, number>>>): number => Object.values(refused).reduce((a: number, n) => a + (n ?? 0), 0)

/** A capture from checked rows: its venue, symbols and frames in receive-time order. */
export const captureOf = (source: string, rows: ReadonlyArray<RawRow>, refused: Readonly<Partial<Record<RawRefusal, number>>>): Capture => {
  const lines: Array<Line> = []
  let header = ""
  let own: ReturnType<typeof ownHeader> = undefined
  for (const r of rows) {
    switch (r.t) {
      case "header": {
        const h = parseJson(r.data ?? "")
        own = ownHeader(h) ?? own
        if (isRecord(h)) header += `${String(h.exchange ?? "")} `
        break
      }
      case "connect":
        header += `${r.url ?? ""} `
        lines.push({ t: "connect", conn: r.conn, ts: r.ts })
        break
      case "recv":
        lines.push({ t: "recv", conn: r.conn, ts: r.ts, data: r.data! })
        break
      case "http":
        lines.push({ t: "http", ts: r.ts, url: r.url!, data: r.data! })
        break
      case "send":
        break
    }
  }
  const venue = own?.decoded._tag ?? (/binance/i.test(header) ? "binance" : /okx/i.test(header) ? "okx" : undefined)
  if (venue === undefined) throw new ImportFailed({ capture: source, reason: "not a Binance or OKX capture (no header or connection naming the venue)" })
  const symbolMap: Record<string, string> = {}
  if (own !== undefined) {
    for (const [c, v] of Object.entries(own.symbolMap)) if (typeof v === "string") symbolMap[c] = v
  } else {
    const venueSymbols = new Set<string>()
    for (const l of lines) {
      if (l.t === "http") {
        const s = new URL(l.url).searchParams.get(venue === "binance" ? "symbol" : "instId")
        if (s !== null) venueSymbols.add(s)
        continue
      }
      if (l.t !== "recv") continue
      const m = parseJson(l.data)
      if (!isRecord(m)) continue // the adapter refuses and counts it
      if (venue === "binance" && isRecord(m.data) && typeof m.data.s === "string") venueSymbols.add(m.data.s)
      if (venue === "okx" && isRecord(m.arg) && typeof m.arg.instId === "string" && "data" in m) venueSymbols.add(m.arg.instId)
    }
    for (const v of [...venueSymbols].sort()) {
      const c = venue === "binance" ? binanceCanonical(v) : okxCanonical(v)
      if (c !== undefined && /^[A-Z0-9]+-[A-Z0-9]+$/.test(c)) symbolMap[c] = v
    }
  }
  const sorted = lines.map((l, i) => [l, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([l]) => l)
  return {
    source,
    venue,
    provider: own?.provider,
    config: own?.decoded,
    lines: sorted,
    symbolMap,
    unreadable: total(refused),
    refused
  }
}

/** Reads and sorts an NDJSON capture file; its venue and symbols. Lines that are not frames are refused and counted. */
export const readCapture = (file: string, maxRowChars: number = DEFAULT_MAX_ROW_CHARS): Capture => {
  const rows: Array<RawRow> = []
  const refused: Partial<Record<RawRefusal, number>> = {}
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue
    let o: unknown
    try {
      o = JSON.parse(line)
    } catch {
      refused.invalid_json = (refused.invalid_json ?? 0) + 1
      continue
    }
    const r = checkRow(o, maxRowChars)
    if (typeof r === "string") refused[r] = (refused[r] ?? 0) + 1
    else rows.push(r)
  }
  return captureOf(file, rows, refused)
}

/** The raw frames under `path` (ours: Parquet), one capture per provider, and the files skipped. */
export const readRawCaptures = (
  path: string,
  maxRowChars: number = DEFAULT_MAX_ROW_CHARS
): Effect.Effect<{ readonly captures: ReadonlyArray<Capture>; readonly skipped: ReadonlyArray<CorruptRecording> }, ImportFailed> =>
  Effect.gen(function*() {
    const listing = listRawFrames(path)
    const skipped = [...listing.skipped]
    const byProvider = new Map<string, { rows: Array<RawRow>; refused: Partial<Record<RawRefusal, number>> }>()
    for (const info of listing.files) {
      const read = yield* Effect.either(Effect.tryPromise({ try: () => readRawFile(info, maxRowChars), catch: (e) => e as CorruptRecording }))
      if (Either.isLeft(read)) {
        skipped.push(read.left)
        continue
      }
      let group = byProvider.get(info.provider)
      if (group === undefined) byProvider.set(info.provider, group = { rows: [], refused: {} })
      group.rows.push(...read.right.rows)
      addCount(group.refused, read.right.refused)
    }
    for (const s of skipped) yield* Effect.logWarning(s.message)
    const captures: Array<Capture> = []
    for (const [provider, group] of byProvider) {
      captures.push(yield* Effect.try({
        try: () => captureOf(`${path} (${provider})`, group.rows, group.refused),
        catch: (e) => (e instanceof ImportFailed ? e : new ImportFailed({ capture: path, reason: String(e) }))
      }))
    }
    return { captures, skipped }
  })

/** Offline, a lost connection is replaced at once and no request waits for a budget: the capture says when things happened. */
const OFFLINE = {
  wsUrl: "ws://capture.invalid",
  restUrl: "http://capture.invalid",
  stallTimeoutMs: 3_600_000,
  pingIntervalMs: 3_600_000,
  backoff: { initialMs: 1, maxMs: 1, factor: 1, jitter: 0 },
  requestBudget: { burst: 1_000, perMinute: 6_000 }
}

/** The venue's configuration for an offline run: the recorded one where known; local addresses, no stall detection in the way. */
const offlineConfig = (c: Capture, name: string | undefined): Either.Either<ProviderConfig, string> => {
  const named = name === undefined ? {} : { name }
  if (c.config !== undefined) {
    const encoded = Schema.encodeSync(ProviderConfig)(c.config) as Record<string, unknown>
    return decodeConfig({ ...encoded, ...OFFLINE, ...named }).pipe(Either.mapLeft((e) => `the recorded configuration does not decode: ${e.message}`))
  }
  const symbols = Object.keys(c.symbolMap) as [string, ...Array<string>]
  const common = {
    symbols,
    symbolMap: c.symbolMap,
    snapshotIntervalMs: 3_600_000,
    ...OFFLINE,
    ...named
  }
  return decodeConfig({ _tag: c.venue, ...common }).pipe(Either.mapLeft((e) => `no configuration for the capture: ${e.message}`))
}

/** The venue's side of one WebSocket: frames pushed by the import, subscriptions taken and ignored. */
class CaptureSocket extends EventTarget {
  readyState = 0
  readonly sent: Array<string> = []
  constructor(readonly url: string) {
    super()
    queueMicrotask(() => {
      this.readyState = 1
      this.dispatchEvent(new Event("open"))
    })
  }
  send(data: string): void {
    this.sent.push(data)
  }
  close(code = 1000): void {
    if (this.readyState === 3) return
    this.readyState = 3
    const ev = new Event("close") as Event & { code: number; reason: string }
    ev.code = code
    ev.reason = ""
    this.dispatchEvent(ev)
  }
  push(data: string): void {
    this.dispatchEvent(new MessageEvent("message", { data }))
  }
}

export interface ImportOptions {
  /** An NDJSON capture file, or our own raw frames (a recording's directory, its `raw/`, or one `.frames.pq` file). */
  readonly capture: string
  readonly out: string
  /** The provider name in the recording (default: the recorded provider's, else the venue's, "binance" or "okx"). */
  readonly name?: string | undefined
  /** Of raw frames holding several providers, the one to import (by its directory name). */
  readonly provider?: string | undefined
  /** Rows whose frame is longer than this (characters) are refused (default 4 Mi). */
  readonly maxRowChars?: number | undefined
}

export interface ImportResult {
  readonly venue: string
  /** The provider's name in the recording. */
  readonly name: string
  readonly symbols: Readonly<Record<string, string>>
  readonly frames: number
  readonly snapshots: number
  /** Rows refused (all reasons). */
  readonly unreadable: number
  readonly refused: Readonly<Partial<Record<RawRefusal, number>>>
  /** Raw frame files skipped (unfinished, damaged, foreign), each saying why. */
  readonly skipped: ReadonlyArray<CorruptRecording>
  /** Frames that arrived while no connection was open (dropped, as a venue would). */
  readonly dropped: number
  /** Connections the capture replaced (each a reconnection of the adapter). */
  readonly reconnects: number
  readonly recorder: RecorderStats
  readonly provider: { readonly gaps: number; readonly checksumMismatches: number; readonly resyncs: number; readonly malformed: number }
}

const baseLayer = Layer.mergeAll(Recycler.DefaultWithoutDependencies, DeadLetter.Default).pipe(
  Layer.provideMerge(Pool.layer({ prewarm: 0 }))
)

/** The captures at `options.capture`: NDJSON, or our raw frames (one per provider), and the raw files skipped. */
export const loadCaptures = (
  options: ImportOptions
): Effect.Effect<{ readonly captures: ReadonlyArray<Capture>; readonly skipped: ReadonlyArray<CorruptRecording> }, ImportFailed> =>
  Effect.gen(function*() {
    const maxRowChars = options.maxRowChars ?? DEFAULT_MAX_ROW_CHARS
    if (statSync(options.capture, { throwIfNoEntry: false })?.isDirectory() === true && !hasRawFrames(options.capture)) {
      return yield* new ImportFailed({ capture: options.capture, reason: "a directory without raw frame files (*.frames.pq): give an NDJSON capture file, or a recording made with --record-raw" })
    }
    const loaded = hasRawFrames(options.capture)
      ? yield* readRawCaptures(options.capture, maxRowChars)
      : {
        captures: [yield* Effect.try({
          try: () => readCapture(options.capture, maxRowChars),
          catch: (e) => (e instanceof ImportFailed ? e : new ImportFailed({ capture: options.capture, reason: e instanceof Error ? e.message : String(e) }))
        })],
        skipped: []
      }
    const captures = options.provider === undefined
      ? loaded.captures
      : loaded.captures.filter((c) => c.source.endsWith(`(${options.provider})`))
    if (captures.length === 0) {
      const why = loaded.skipped.length > 0 ? `: ${loaded.skipped.map((s) => s.message).join("; ")}` : ""
      return yield* new ImportFailed({ capture: options.capture, reason: `no usable frames${options.provider === undefined ? "" : ` of ${options.provider}`}${why}` })
    }
    return { captures, skipped: loaded.skipped }
  })

/** Imports a capture of one provider into the recording under `out` (raw frames of several: name one with `provider`). */
export const importCapture = (options: ImportOptions): Effect.Effect<ImportResult, ImportFailed> =>
  Effect.gen(function*() {
    const { captures, skipped } = yield* loadCaptures(options)
    if (captures.length > 1) {
      return yield* new ImportFailed({
        capture: options.capture,
        reason: `it holds the raw frames of ${captures.length} providers (${captures.map((c) => c.provider ?? c.source).join(", ")}): choose one`
      })
    }
    return yield* importOne(captures[0], options, skipped)
  })

/** Imports every provider of a capture into the recording under `out`, one after the other. */
export const importAll = (options: ImportOptions): Effect.Effect<ReadonlyArray<ImportResult>, ImportFailed> =>
  Effect.gen(function*() {
    const { captures, skipped } = yield* loadCaptures(options)
    return yield* Effect.forEach(captures, (c, i) => importOne(c, options, i === 0 ? skipped : []))
  })

/** Bodies of one symbol's REST snapshots: served in order, each to one request, held until the capture reaches it. */
interface Bodies {
  readonly ready: Array<string>
  readonly waiting: Array<Deferred.Deferred<string>>
}

const importOne = (capture: Capture, options: ImportOptions, skipped: ReadonlyArray<CorruptRecording>): Effect.Effect<ImportResult, ImportFailed> =>
  Effect.gen(function*() {
    if (capture.lines.length === 0 || Object.keys(capture.symbolMap).length === 0) {
      return yield* new ImportFailed({ capture: capture.source, reason: "no frames or no symbols in the capture" })
    }
    const name = options.name ?? capture.provider
    const config = yield* Either.match(offlineConfig(capture, name), {
      onLeft: (reason) => new ImportFailed({ capture: capture.source, reason }),
      onRight: Effect.succeed
    })
    const clock = new VirtualClock(Math.round(capture.lines[0].ts * 1e6))
    let socket: CaptureSocket | undefined
    const snapshots = new Map<string, Bodies>()
    const bodiesOf = (symbol: string): Bodies => {
      let b = snapshots.get(symbol)
      if (b === undefined) snapshots.set(symbol, b = { ready: [], waiting: [] })
      return b
    }
    const http = HttpClient.make((request, url) =>
      Effect.gen(function*() {
        const b = bodiesOf(url.searchParams.get("symbol") ?? url.searchParams.get("instId") ?? "")
        let body = b.ready.shift()
        if (body === undefined) {
          const d = Deferred.unsafeMake<string>(undefined as never)
          b.waiting.push(d)
          // a request given up (timed out, interrupted) takes no later body
          body = yield* Deferred.await(d).pipe(Effect.onInterrupt(() => Effect.sync(() => b.waiting.splice(b.waiting.indexOf(d), 1))))
        }
        return HttpClientResponse.fromWeb(request, new Response(body, { status: 200, headers: { "content-type": "application/json" } }))
      })
    )
    const platform = Layer.mergeAll(
      Layer.succeed(HttpClient.HttpClient, http),
      Layer.succeed(WebSocketConstructor, (url: string) => {
        socket = new CaptureSocket(url)
        return socket as unknown as globalThis.WebSocket
      })
    )

    const run = Effect.scoped(Effect.gen(function*() {
      const scope = yield* Effect.scope
      const recorder = yield* makeRecorder({ dir: options.out, flushIntervalMs: 60_000 })
      const recycler = yield* Recycler
      const provider = yield* makeProvider(config).pipe(Effect.provide(platform))
      yield* provider.run((e) =>
        Effect.sync(() => {
          recorder.record(e)
          recycler.unsafeRecycle(e, generationOf(e))
        })
      ).pipe(Effect.scoped, Effect.forkIn(scope))
      yield* settle
      let frames = 0
      let dropped = 0
      let served = 0
      let reconnects = 0
      let conn: string | undefined
      let connected = false
      const open = () => socket !== undefined && socket.readyState === 1
      for (const line of capture.lines) {
        yield* clock.advanceTo(Math.round(line.ts * 1e6))
        switch (line.t) {
          case "connect": {
            // a connection after the first: the adapter's current one is lost (as it was), and it reconnects (each
            // connect row is a new connection, whatever its id: a gateway restarted in the same directory numbers
            // its connections from 1 again)
            if (connected && socket !== undefined) {
              const old = socket
              old.close(1006)
              reconnects++
              for (let i = 0; i < 1_000 && (socket === old || !open()); i++) {
                yield* settle
                yield* clock.advanceTo(clock.nowMicros() + 1_000)
              }
            }
            conn = line.conn
            connected = true
            break
          }
          case "recv": {
            if (!open() || (line.conn !== undefined && conn !== undefined && line.conn !== conn)) dropped++
            else {
              socket!.push(line.data)
              frames++
            }
            break
          }
          case "http": {
            const u = new URL(line.url)
            const symbol = u.searchParams.get("symbol") ?? u.searchParams.get("instId")
            if (symbol !== null) {
              const b = bodiesOf(symbol)
              const waiter = b.waiting.shift()
              if (waiter === undefined) b.ready.push(line.data)
              else yield* Deferred.succeed(waiter, line.data)
              served++
            }
            break
          }
        }
        yield* settle
      }
      const s = provider.stats()
      yield* recorder.flush
      return {
        venue: capture.venue,
        name: provider.name,
        symbols: capture.symbolMap,
        frames,
        snapshots: served,
        unreadable: capture.unreadable,
        refused: capture.refused,
        skipped,
        dropped,
        reconnects,
        recorder: recorder.stats(),
        provider: { gaps: s.gaps, checksumMismatches: s.checksumMismatches, resyncs: s.resyncs, malformed: s.malformedTotal }
      }
    }))
    return yield* runOnReplay(clock, run).pipe(
      Effect.provide(baseLayer),
      Effect.ensuring(Effect.sync(() => clock.release()))
    )
  })
