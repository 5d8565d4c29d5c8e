/**
 * `meltica import`: a raw capture of venue frames (NDJSON, the format of
 * `test/fixtures/venues/README.md`: `recv` frames and `http` REST bodies with
 * their receive time) turned into a recording by running the real venue
 * adapter offline, so that its own parsing, book building and integrity
 * checks (sequence chains, checksums) produce the canonical events.
 *
 * The adapter runs on the virtual clock and the deterministic scheduler,
 * with an in-process WebSocket and HTTP client standing in for the venue:
 * each capture line, in receive-time order, moves the clock to its time, is
 * handed over (a frame to the socket; a REST body to the request waiting for
 * that symbol's snapshot, held until the capture reaches it, as the venue
 * served it), and the import waits until the adapter has handled it before
 * the next line. Events are stamped with the capture's receive times.
 *
 * Binance and OKX captures are recognised by their header or connection
 * address. Symbols are taken from the capture; Binance's are split at a
 * known quote asset (NKNUSDT -> NKN-USDT), OKX's dated and perpetual
 * instruments get canonical names (BTC-USD-220527 -> BTC220527-USD,
 * UNI-USD-SWAP -> UNISWAP-USD).
 */
import { Data, Deferred, Effect, Layer } from "effect"
import { HttpClient } from "@effect/platform"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { WebSocketConstructor } from "@effect/platform/Socket"
import { readFileSync } from "node:fs"
import { BinanceConfig, OkxConfig, type ProviderConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../DeadLetter.js"
import { Pool } from "../Pool.js"
import { make as makeProvider } from "../Provider.js"
import { generationOf, Recycler } from "../Recycler.js"
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
  | { readonly t: "recv"; readonly ts: number; readonly data: string }
  | { readonly t: "http"; readonly ts: number; readonly url: string; readonly data: string }

export interface Capture {
  readonly venue: "binance" | "okx"
  readonly lines: ReadonlyArray<Line>
  /** Canonical symbol -> the venue's. */
  readonly symbolMap: Readonly<Record<string, string>>
  /** Lines that are not JSON or not of a known type (counted, skipped). */
  readonly unreadable: number
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

/** Reads and sorts a capture file; its venue and symbols. */
export const readCapture = (file: string): Capture => {
  const lines: Array<Line> = []
  let header = ""
  let unreadable = 0
  const venueSymbols = new Set<string>()
  for (const row of readFileSync(file, "utf8").split("\n")) {
    if (row.trim() === "") continue
    let o: unknown
    try {
      o = JSON.parse(row)
    } catch {
      unreadable++
      continue
    }
    if (!isRecord(o)) {
      unreadable++
      continue
    }
    if (o.t === "header") header += `${String(o.exchange ?? "")} `
    else if (o.t === "connect") header += `${String(o.addr ?? "")} `
    else if (o.t === "recv" && typeof o.ts === "number" && typeof o.data === "string") lines.push({ t: "recv", ts: o.ts, data: o.data })
    else if (o.t === "http" && typeof o.ts === "number" && typeof o.data === "string" && typeof o.url === "string") {
      lines.push({ t: "http", ts: o.ts, url: o.url, data: o.data })
    } else if (o.t !== "send") unreadable++
  }
  const venue = /binance/i.test(header) ? "binance" : /okx/i.test(header) ? "okx" : undefined
  if (venue === undefined) throw new ImportFailed({ capture: file, reason: "not a Binance or OKX capture (no header or connection naming the venue)" })
  for (const l of lines) {
    if (l.t === "http") {
      const s = new URL(l.url).searchParams.get(venue === "binance" ? "symbol" : "instId")
      if (s !== null) venueSymbols.add(s)
      continue
    }
    try {
      const m: unknown = JSON.parse(l.data)
      if (!isRecord(m)) continue
      if (venue === "binance" && isRecord(m.data) && typeof m.data.s === "string") venueSymbols.add(m.data.s)
      if (venue === "okx" && isRecord(m.arg) && typeof m.arg.instId === "string" && "data" in m) venueSymbols.add(m.arg.instId)
    } catch {
      // the adapter refuses and counts it
    }
  }
  const symbolMap: Record<string, string> = {}
  for (const v of [...venueSymbols].sort()) {
    const c = venue === "binance" ? binanceCanonical(v) : okxCanonical(v)
    if (c !== undefined && /^[A-Z0-9]+-[A-Z0-9]+$/.test(c)) symbolMap[c] = v
  }
  const sorted = lines.map((l, i) => [l, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([l]) => l)
  return { venue, lines: sorted, symbolMap, unreadable }
}

/** The venue's configuration for an offline run: local addresses, no refresh, no stall detection in the way. */
const offlineConfig = (c: Capture, name?: string): ProviderConfig => {
  const symbols = Object.keys(c.symbolMap) as [string, ...Array<string>]
  const common = {
    symbols,
    symbolMap: c.symbolMap,
    wsUrl: "ws://capture.invalid",
    restUrl: "http://capture.invalid",
    snapshotIntervalMs: 3_600_000,
    stallTimeoutMs: 3_600_000,
    pingIntervalMs: 3_600_000,
    ...(name === undefined ? {} : { name })
  }
  return c.venue === "binance" ? BinanceConfig.make(common) : OkxConfig.make(common)
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
  readonly capture: string
  readonly out: string
  /** The provider name in the recording (default: the venue's, "binance" or "okx"). */
  readonly name?: string | undefined
}

export interface ImportResult {
  readonly venue: string
  readonly symbols: Readonly<Record<string, string>>
  readonly frames: number
  readonly snapshots: number
  readonly unreadable: number
  /** Frames that arrived while no connection was open (dropped, as a venue would). */
  readonly dropped: number
  readonly recorder: RecorderStats
  readonly provider: { readonly gaps: number; readonly checksumMismatches: number; readonly resyncs: number; readonly malformed: number }
}

const baseLayer = Layer.mergeAll(Recycler.DefaultWithoutDependencies, DeadLetter.Default).pipe(
  Layer.provideMerge(Pool.layer({ prewarm: 0 }))
)

/** Imports a capture into the recording under `out`. */
export const importCapture = (options: ImportOptions): Effect.Effect<ImportResult, ImportFailed> =>
  Effect.gen(function*() {
    const capture = yield* Effect.try({
      try: () => readCapture(options.capture),
      catch: (e) => (e instanceof ImportFailed ? e : new ImportFailed({ capture: options.capture, reason: e instanceof Error ? e.message : String(e) }))
    })
    if (capture.lines.length === 0 || Object.keys(capture.symbolMap).length === 0) {
      return yield* new ImportFailed({ capture: options.capture, reason: "no frames or no symbols in the capture" })
    }
    const clock = new VirtualClock(Math.round(capture.lines[0].ts * 1e6))
    let socket: CaptureSocket | undefined
    const snapshots = new Map<string, Deferred.Deferred<string>>()
    const snapshotFor = (symbol: string) => {
      let d = snapshots.get(symbol)
      if (d === undefined) {
        d = Deferred.unsafeMake<string>(undefined as never)
        snapshots.set(symbol, d)
      }
      return d
    }
    const http = HttpClient.make((request, url) =>
      Effect.gen(function*() {
        const symbol = url.searchParams.get("symbol") ?? url.searchParams.get("instId") ?? ""
        const body = yield* Deferred.await(snapshotFor(symbol))
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
      const provider = yield* makeProvider(offlineConfig(capture, options.name)).pipe(Effect.provide(platform))
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
      for (const line of capture.lines) {
        yield* clock.advanceTo(Math.round(line.ts * 1e6))
        if (line.t === "recv") {
          if (socket === undefined || socket.readyState !== 1) dropped++
          else {
            socket.push(line.data)
            frames++
          }
        } else {
          const u = new URL(line.url)
          const symbol = u.searchParams.get("symbol") ?? u.searchParams.get("instId")
          if (symbol !== null) {
            yield* Deferred.succeed(snapshotFor(symbol), line.data)
            served++
          }
        }
        yield* settle
      }
      const s = provider.stats()
      yield* recorder.flush
      return {
        venue: capture.venue,
        symbols: capture.symbolMap,
        frames,
        snapshots: served,
        unreadable: capture.unreadable,
        dropped,
        recorder: recorder.stats(),
        provider: { gaps: s.gaps, checksumMismatches: s.checksumMismatches, resyncs: s.resyncs, malformed: s.malformedTotal }
      }
    }))
    return yield* runOnReplay(clock, run).pipe(
      Effect.provide(baseLayer),
      Effect.ensuring(Effect.sync(() => clock.release()))
    )
  })


