/**
 * Raw venue frames: what the real venue adapters receive and send, recorded
 * beside the canonical events (`record.rawFrames: true`, `--record-raw`), so
 * that a session can be imported again later (`meltica import`) through a
 * newer adapter, or inspected.
 *
 * Rules:
 * - One row per frame, in the record shape of the venue captures'
 *   NDJSON (`test/fixtures/venues/README.md`): `t` (header, connect, send,
 *   recv, http), `conn` (the connection: `<provider>.ws.<n>`,
 *   `<provider>.http`), `ts` (receive or send time, seconds since the epoch,
 *   a double), `data` (the frame's text, or a REST body), `url` (a REST
 *   body's URL, a connection's address). Every file starts with a header row
 *   whose `data` names the venue, the provider, its symbols and its
 *   configuration (without its URLs), so each file can be imported alone.
 * - Files are Parquet (snappy), like the recording's, written the same
 *   crash-safe way: under a `.tmp` name, renamed once complete, the CRC32 of
 *   the bytes in the name; a file per provider at every flush (every
 *   `flushIntervalMs`, and at once when a provider holds `maxRowsPerFile`
 *   rows or `maxChunkChars` characters). A kill -9 loses at most the last
 *   flush interval.
 * - Layout: `DIR/raw/<yyyy-mm-dd>/<provider>/<first>-<last>-<n>.<crc>.frames.pq`
 *   (first/last: receive times in epoch microseconds). The `.pq` suffix keeps
 *   the files out of the canonical reader's way (`Reader.ts` lists
 *   `.parquet` files only); DuckDB reads them with
 *   `read_parquet('DIR/raw/**\/*.frames.pq')`, pandas with `read_parquet`.
 * - Secrets: market data only (the venue adapters' public streams; the
 *   execution adapters are not tapped); no header is ever seen; URLs are
 *   written with their credentials and credential-like query parameters
 *   masked.
 * - Reading refuses, counts and skips what is not a frame (a row of an
 *   unknown type, a time that is not a plausible epoch time, a frame larger
 *   than the limit, a REST body without a URL): one hostile row never stops
 *   an import. An unfinished (`.tmp`), misnamed, damaged or foreign file is
 *   skipped with a `CorruptRecording` naming it and why.
 */
import { Context, Data, Effect, Either, Layer, Queue, Schema } from "effect"
import type { Scope } from "effect"
import { parquetMetadata, parquetReadObjects } from "hyparquet"
import { parquetWriteBuffer } from "hyparquet-writer"
import { readFileSync, statSync } from "node:fs"
import { mkdir, rename, writeFile } from "node:fs/promises"
import { basename, dirname, join, relative, sep } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { ProviderConfig } from "../../schema/ProviderConfig.js"
import { filesUnder } from "../internal/files.js"
import { flushInBackground } from "../internal/flusher.js"
import { redactUrls } from "../internal/redact.js"
import { workerCalls } from "../internal/workerCalls.js"
import { Providers, type ProviderShape } from "../Provider.js"
import { FrameTap, type RunTap, type TapRun } from "../providers/internal/tap.js"
import { checksumOf, CorruptRecording, dateDir } from "./Format.js"

/** The raw format's version, in each file's key-value metadata (`meltica.raw`). */
export const RAW_FORMAT_VERSION = "1"

export type RawRowType = "header" | "connect" | "send" | "recv" | "http"
const ROW_TYPES: ReadonlySet<string> = new Set<RawRowType>(["header", "connect", "send", "recv", "http"])

/** One row: the fixtures' NDJSON record shape. */
export interface RawRow {
  readonly t: RawRowType
  readonly conn: string | undefined
  /** Seconds since the epoch (a header row: the time of the file's first frame, or 0). */
  readonly ts: number
  readonly data: string | undefined
  readonly url: string | undefined
}

/** What a header row's `data` holds (JSON). */
export interface RawHeader {
  readonly format: "meltica-raw"
  /** The venue kind: binance, kraken, okx, coinbase. */
  readonly exchange: string
  readonly provider: string
  /** Canonical symbol -> the venue's. */
  readonly symbolMap: Readonly<Record<string, string>>
  /** The provider's configuration, encoded, without its URLs. */
  readonly config: unknown
}

// ---------------------------------------------------------------------------
// Masking
// ---------------------------------------------------------------------------

const SECRET_PARAM = /key|token|secret|sign|pass|auth|session|credential/i

/** A URL with its user info and every credential-like query parameter masked. */
export const maskUrl = (url: string): string => {
  const text = redactUrls(url)
  let u: URL
  try {
    u = new URL(text)
  } catch {
    return text
  }
  let masked = false
  for (const k of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(k)) {
      u.searchParams.set(k, "***")
      masked = true
    }
  }
  return masked ? u.toString() : text
}

// ---------------------------------------------------------------------------
// Encoding and file names
// ---------------------------------------------------------------------------

/** What `parquetWriteBuffer` takes for one file (plain data: the encoder thread takes it as is). */
interface RawEncodeRequest {
  readonly columnData: ReadonlyArray<{ readonly name: string; readonly data: Array<unknown>; readonly type: "STRING" | "DOUBLE" }>
  readonly kvMetadata: ReadonlyArray<{ readonly key: string; readonly value: string }>
  readonly createdBy: string
}

/** Rows column by column, as the recorder buffers them (no object per row on the adapter's path). */
export interface RawColumns {
  readonly t: Array<RawRowType>
  readonly conn: Array<string | undefined>
  readonly ts: Array<number>
  readonly data: Array<string | undefined>
  readonly url: Array<string | undefined>
}

export const columnsOf = (rows: ReadonlyArray<RawRow>): RawColumns => ({
  t: rows.map((r) => r.t),
  conn: rows.map((r) => r.conn),
  ts: rows.map((r) => r.ts),
  data: rows.map((r) => r.data),
  url: rows.map((r) => r.url)
})

const nulls = <A>(xs: ReadonlyArray<A | undefined>): Array<A | null> => xs.map((x) => x ?? null)

const rawRequestOf = (c: RawColumns): RawEncodeRequest => ({
  columnData: [
    { name: "t", type: "STRING", data: c.t },
    { name: "conn", type: "STRING", data: nulls(c.conn) },
    { name: "ts", type: "DOUBLE", data: c.ts },
    { name: "data", type: "STRING", data: nulls(c.data) },
    { name: "url", type: "STRING", data: nulls(c.url) }
  ],
  kvMetadata: [{ key: "meltica.raw", value: RAW_FORMAT_VERSION }],
  createdBy: "meltica raw-frame recorder"
})

/** A raw file's bytes, encoded on this thread. */
export const encodeRawColumns = (columns: RawColumns): Uint8Array =>
  new Uint8Array(parquetWriteBuffer(rawRequestOf(columns) as Parameters<typeof parquetWriteBuffer>[0]))

/** A raw file's bytes, encoded on this thread. */
export const encodeRawRows = (rows: ReadonlyArray<RawRow>): Uint8Array => encodeRawColumns(columnsOf(rows))

type Encode = (columns: RawColumns) => Effect.Effect<Uint8Array, string>
const encodeHere: Encode = (c) => Effect.try({ try: () => encodeRawColumns(c), catch: String })

/** A provider's name as a directory name (anything but letters, digits, `.`, `_`, `-` becomes `_`). */
const pathSafe = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_")

const RAW_NAME = /^(\d+)-(\d+)-(\d+)\.([0-9a-f]{8})\.frames\.pq$/
const micros = (seconds: number): number => Math.round(seconds * 1e6)

/** A raw file's path under the recording's directory. */
export const rawFileName = (provider: string, firstTs: number, lastTs: number, counter: number, crc: number): ReadonlyArray<string> => [
  "raw",
  dateDir(micros(firstTs)),
  pathSafe(provider),
  `${micros(firstTs)}-${micros(lastTs)}-${counter}.${(crc >>> 0).toString(16).padStart(8, "0")}.frames.pq`
]

export class RawWriteFailed extends Data.TaggedError("RawWriteFailed")<{
  readonly file: string
  readonly rows: number
  readonly reason: string
}> {
  override get message(): string {
    return `raw frame file ${this.file} (${this.rows} rows) not written: ${this.reason}`
  }
}

/**
 * Writes one file of `rows` (a header row first) under `dir`: encoded, written
 * under a `.tmp` name, renamed; its path.
 */
export const writeRawFile = (
  dir: string,
  provider: string,
  rows: ReadonlyArray<RawRow> | RawColumns,
  counter: number,
  encode: Encode = encodeHere
): Effect.Effect<{ readonly path: string; readonly bytes: number }, RawWriteFailed> =>
  Effect.gen(function*() {
    const c = Array.isArray(rows) ? columnsOf(rows as ReadonlyArray<RawRow>) : rows as RawColumns
    let first: number | undefined
    let last: number | undefined
    for (let i = 0; i < c.t.length; i++) {
      if (c.t[i] === "header") continue
      first ??= c.ts[i]
      last = c.ts[i]
    }
    first ??= c.ts[0] ?? 0
    last ??= first
    const n = c.t.length
    const encoded = yield* encode(c).pipe(
      Effect.mapError((reason) => new RawWriteFailed({ file: `raw/${provider}`, rows: n, reason }))
    )
    const parts = rawFileName(provider, first, last, counter, checksumOf(encoded))
    const final = join(dir, ...parts)
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(dirname(final), { recursive: true })
        await writeFile(`${final}.tmp`, encoded)
        await rename(`${final}.tmp`, final)
      },
      catch: (e) => new RawWriteFailed({ file: final, rows: n, reason: e instanceof Error ? e.message : String(e) })
    })
    return { path: final, bytes: encoded.byteLength }
  })

// ---------------------------------------------------------------------------
// The recorder
// ---------------------------------------------------------------------------

export interface RawFrameOptions {
  /** The recording's directory (raw files go under its `raw/`). */
  readonly dir: string
  /** At most this much is lost on a crash (default 1,000 ms). */
  readonly flushIntervalMs?: number
  /** A provider's rows are written at once when it holds this many (default 100,000). */
  readonly maxRowsPerFile?: number
  /** ... or this many characters of frames (default 32 Mi). */
  readonly maxChunkChars?: number
  /** Rows are dropped (counted) while this many characters wait to be written (default 256 Mi): memory stays bounded when the disk does not keep up. */
  readonly maxBufferedChars?: number
  /** Encode files on a worker thread (default true). */
  readonly encodeOnWorker?: boolean
}

export interface RawFrameStats {
  /** Rows taken in (frames received and sent, REST bodies, connections). */
  readonly rows: number
  readonly files: number
  readonly rowsWritten: number
  readonly bytes: number
  readonly writeFailures: number
  /** Rows dropped because too much was waiting to be written. */
  readonly dropped: number
  /** Rows taken in and not yet written (or failed). */
  readonly buffered: number
}

export const noRawFrameStats: RawFrameStats = { rows: 0, files: 0, rowsWritten: 0, bytes: 0, writeFailures: 0, dropped: 0, buffered: 0 }

export interface RawFrameRecorder {
  /** The tap to set around a provider's run. */
  readonly tap: FrameTap["Type"]
  /** The providers, each run with the tap. */
  readonly wrap: (providers: ReadonlyArray<ProviderShape>) => ReadonlyArray<ProviderShape>
  /** Writes every buffered row now. */
  readonly flush: Effect.Effect<void>
  readonly stats: () => RawFrameStats
}

/** A provider's buffered rows; a flush takes the columns and leaves new empty ones. */
interface ProviderBuffer {
  readonly provider: string
  header: string
  columns: RawColumns
  chars: number
}

const emptyColumns = (): RawColumns => ({ t: [], conn: [], ts: [], data: [], url: [] })

const ENCODER = new URL("./rawEncodeWorker.mjs", import.meta.url)

/** Parquet encoding on a worker thread for the life of the scope (on this thread once the worker fails). */
const workerEncoder: Effect.Effect<Encode, never, Scope.Scope> = workerCalls({
  start: () => new Worker(fileURLToPath(ENCODER)),
  post: (worker, id, columns: Parameters<Encode>[0]) => worker.postMessage({ id, ...rawRequestOf(columns) }),
  answer: (m: { readonly id: number; readonly bytes?: ArrayBuffer; readonly error?: string }) =>
    m.bytes !== undefined ? Either.right(new Uint8Array(m.bytes)) : Either.left(m.error ?? "no answer"),
  here: encodeHere
})

const encodeConfig = Schema.encodeSync(ProviderConfig)

/** The header row's data for a run: venue, provider, symbols, configuration without URLs. */
const headerOf = (run: TapRun): string => {
  const { restUrl: _restUrl, wsUrl: _wsUrl, ...config } = encodeConfig(run.config) as Record<string, unknown>
  const header: RawHeader = { format: "meltica-raw", exchange: run.config._tag, provider: run.provider, symbolMap: run.symbolMap, config }
  return JSON.stringify(header)
}

/** A raw-frame recorder writing under `options.dir/raw` for the life of the scope. */
export const makeRawFrameRecorder = (options: RawFrameOptions): Effect.Effect<RawFrameRecorder, never, Scope.Scope> =>
  Effect.gen(function*() {
    // acquired first, so released after the final flush
    const encode = options.encodeOnWorker === false ? encodeHere : yield* workerEncoder
    const flushIntervalMs = options.flushIntervalMs ?? 1_000
    const maxRows = options.maxRowsPerFile ?? 100_000
    const maxChunkChars = options.maxChunkChars ?? 32 * 1024 * 1024
    const maxBufferedChars = options.maxBufferedChars ?? 256 * 1024 * 1024
    const buffers = new Map<string, ProviderBuffer>()
    const wake = yield* Queue.sliding<void>(1)
    let rows = 0
    let files = 0
    let rowsWritten = 0
    let bytes = 0
    let writeFailures = 0
    let dropped = 0
    let buffered = 0
    let bufferedChars = 0
    let counter = 0

    const open = (run: TapRun): RunTap => {
      let buffer = buffers.get(run.provider)
      if (buffer === undefined) {
        buffer = { provider: run.provider, header: "", columns: emptyColumns(), chars: 0 }
        buffers.set(run.provider, buffer)
      }
      buffer.header = headerOf(run)
      const b = buffer
      const { clock, provider } = run
      const wsConn = `${provider}.ws`
      const httpConn = `${provider}.http`
      let connections = 0
      let conn = `${wsConn}.0`
      const add = (t: RawRowType, c: string, data: string | undefined, url: string | undefined): void => {
        const size = (data?.length ?? 0) + (url?.length ?? 0)
        if (bufferedChars + size > maxBufferedChars) {
          dropped++
          return
        }
        const cs = b.columns
        cs.t.push(t)
        cs.conn.push(c)
        cs.ts.push(Number(clock.unsafeCurrentTimeNanos() / 1000n) / 1e6)
        cs.data.push(data)
        cs.url.push(url)
        b.chars += size
        bufferedChars += size
        rows++
        buffered++
        if (cs.t.length >= maxRows || b.chars >= maxChunkChars) Queue.unsafeOffer(wake, undefined)
      }
      const address = maskUrl(run.url)
      return {
        connected: () => {
          conn = `${wsConn}.${++connections}`
          add("connect", conn, undefined, address)
        },
        received: (data) => add("recv", conn, data, undefined),
        sent: (data) => add("send", conn, data, undefined),
        fetched: (url, body) => add("http", httpConn, body, maskUrl(url))
      }
    }

    type Batch = { readonly provider: string; readonly header: string; readonly columns: RawColumns }
    const writeOne = (b: Batch): Effect.Effect<void> =>
      Effect.suspend(() => {
        const c = b.columns
        // the header row first: each file can be imported alone
        c.t.unshift("header")
        c.conn.unshift(undefined)
        c.ts.unshift(c.ts[0])
        c.data.unshift(b.header)
        c.url.unshift(undefined)
        return writeRawFile(options.dir, b.provider, c, ++counter, encode)
      }).pipe(
        Effect.tap((w) =>
          Effect.sync(() => {
            files++
            rowsWritten += b.columns.t.length - 1
            bytes += w.bytes
          })
        ),
        Effect.catchAll((e) => Effect.sync(() => writeFailures++).pipe(Effect.zipRight(Effect.logError("raw frame write failed", e)))),
        Effect.asVoid
      )

    // one flush at a time; rows taken out of the buffers are always written (or counted as failed)
    const lock = yield* Effect.makeSemaphore(1)
    const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.suspend(() => {
      const batch: Array<Batch> = []
      let chars = 0
      let n = 0
      for (const b of buffers.values()) {
        if (b.columns.t.length === 0) continue
        batch.push({ provider: b.provider, header: b.header, columns: b.columns })
        n += b.columns.t.length
        chars += b.chars
        b.columns = emptyColumns()
        b.chars = 0
      }
      // the batch is held until written: it counts against the memory bound until then
      return Effect.forEach(batch, writeOne, { discard: true }).pipe(Effect.ensuring(Effect.sync(() => {
        buffered -= n
        bufferedChars -= chars
      })))
    })).pipe(Effect.uninterruptible)

    yield* flushInBackground(wake, flushIntervalMs, flush)

    const tap = { open }
    const wrap = (providers: ReadonlyArray<ProviderShape>): ReadonlyArray<ProviderShape> =>
      providers.map((p) => ({ ...p, run: (sink) => Effect.provideService(p.run(sink), FrameTap, tap) }))

    return {
      tap,
      wrap,
      flush,
      stats: () => ({ rows, files, rowsWritten, bytes, writeFailures, dropped, buffered })
    }
  })

/** The raw-frame figures (at 0 when nothing records raw frames). */
export class RawFrameFigures extends Context.Tag("meltica/RawFrameFigures")<RawFrameFigures, {
  readonly stats: () => RawFrameStats
}>() {}

/**
 * The providers of `providers`, each run with a raw-frame tap writing under
 * `options.dir` when `options` is given (`record.rawFrames`, `--record-raw`).
 */
export const layerRawFrames = (options: RawFrameOptions | undefined) =>
<E, R>(providers: Layer.Layer<Providers, E, R>): Layer.Layer<Providers | RawFrameFigures, E, R> =>
  Layer.scopedContext(Effect.gen(function*() {
    const inner = yield* Providers
    if (options === undefined) {
      return Context.make(Providers, inner).pipe(Context.add(RawFrameFigures, { stats: () => noRawFrameStats }))
    }
    // added first, so it runs after the recorder's final flush
    let stats = () => noRawFrameStats
    yield* Effect.addFinalizer(() => Effect.logInfo("raw frame recording closed").pipe(Effect.annotateLogs({ ...stats() })))
    const recorder = yield* makeRawFrameRecorder(options)
    stats = recorder.stats
    yield* Effect.logInfo("recording the venues' raw frames").pipe(Effect.annotateLogs({ dir: join(options.dir, "raw") }))
    return Context.make(Providers, recorder.wrap(inner)).pipe(Context.add(RawFrameFigures, { stats: recorder.stats }))
  })).pipe(Layer.provide(providers))

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/** Why a row is refused (counted per reason). */
export type RawRefusal = "invalid_json" | "not_an_object" | "unknown_type" | "bad_ts" | "too_large" | "missing_field" | "bad_url"

/** Rows larger than this (characters of `data`) are refused by default: above any venue adapter's frame limit. */
export const DEFAULT_MAX_ROW_CHARS = 4 * 1024 * 1024

/** No frame is from before 2000 or after 2100 (seconds). */
const TS_MAX = 4_102_444_800

const isText = (x: unknown): x is string => typeof x === "string"
const optText = (x: unknown): x is string | null | undefined => x === null || x === undefined || typeof x === "string"
const orUndefined = (x: string | null | undefined): string | undefined => (x === null ? undefined : x)

/**
 * A row of either source (an NDJSON object, a Parquet row) checked: the row,
 * or why it is refused. An NDJSON header's fields (all but `t`) become its
 * `data` (JSON); a connection's `addr` its `url`.
 */
export const checkRow = (o: unknown, maxChars: number = DEFAULT_MAX_ROW_CHARS): RawRow | RawRefusal => {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return "not_an_object"
  const r = o as Record<string, unknown>
  if (!isText(r.t) || !ROW_TYPES.has(r.t)) return "unknown_type"
  const t = r.t as RawRowType
  if (!optText(r.conn) || !optText(r.url) || !optText(r.addr)) return "missing_field"
  if (t === "header") {
    let data: string
    if (isText(r.data)) data = r.data
    else {
      const { t: _t, ...rest } = r
      data = JSON.stringify(rest)
    }
    if (data.length > maxChars) return "too_large"
    return { t, conn: undefined, ts: typeof r.ts === "number" && Number.isFinite(r.ts) ? r.ts : 0, data, url: undefined }
  }
  if (typeof r.ts !== "number" || !Number.isFinite(r.ts) || r.ts < 0 || r.ts >= TS_MAX) return "bad_ts"
  const conn = orUndefined(r.conn)
  const url = orUndefined(r.url) ?? orUndefined(r.addr)
  if (t === "connect") return { t, conn, ts: r.ts, data: undefined, url }
  if (!isText(r.data)) return "missing_field"
  if (r.data.length + (url?.length ?? 0) > maxChars) return "too_large"
  if (t === "http") {
    if (url === undefined || !URL.canParse(url)) return "bad_url"
  }
  return { t, conn, ts: r.ts, data: r.data, url }
}

/** What a raw file's path says about it. */
export interface RawFileInfo {
  readonly path: string
  /** The provider's directory name. */
  readonly provider: string
  /** Epoch microseconds. */
  readonly firstTs: number
  readonly lastTs: number
  readonly counter: number
  readonly crc: number
}

export interface RawListing {
  readonly files: ReadonlyArray<RawFileInfo>
  readonly skipped: ReadonlyArray<CorruptRecording>
}


/** Whether `path` is a raw frame file or a directory holding any (an unfinished one counts). */
export const hasRawFrames = (path: string): boolean => {
  const st = statSync(path, { throwIfNoEntry: false })
  if (st === undefined) return false
  if (st.isFile()) return /\.frames\.pq(\.tmp)?$/.test(path)
  if (!st.isDirectory()) return false
  const all: Array<string> = []
  filesUnder(path, all)
  return all.some((p) => /\.frames\.pq(\.tmp)?$/.test(p))
}

/** The raw frame files at `path` (a file, or a directory searched whole), in time order, and the unusable ones. */
export const listRawFrames = (path: string): RawListing => {
  const st = statSync(path, { throwIfNoEntry: false })
  if (st === undefined) return { files: [], skipped: [new CorruptRecording({ file: path, cause: "no_directory", reason: "no such file or directory" })] }
  const paths: Array<string> = []
  if (st.isDirectory()) filesUnder(path, paths)
  else paths.push(path)
  paths.sort()
  const base = st.isDirectory() ? path : dirname(path)
  const files: Array<RawFileInfo> = []
  const skipped: Array<CorruptRecording> = []
  for (const p of paths) {
    const rel = relative(base, p) || basename(p)
    if (p.endsWith(".frames.pq.tmp")) {
      skipped.push(new CorruptRecording({ file: rel, cause: "unfinished_write", reason: "an unfinished write (the recorder stopped while flushing it)" }))
      continue
    }
    if (!p.endsWith(".frames.pq")) continue
    const m = RAW_NAME.exec(basename(p))
    if (m === null) {
      skipped.push(new CorruptRecording({ file: rel, cause: "bad_name", reason: "its name is not <first>-<last>-<n>.<crc32>.frames.pq under raw/<date>/<provider>" }))
      continue
    }
    files.push({
      path: p,
      provider: basename(dirname(p)),
      firstTs: Number(m[1]),
      lastTs: Number(m[2]),
      counter: Number(m[3]),
      crc: parseInt(m[4], 16)
    })
  }
  files.sort((a, b) => a.firstTs - b.firstTs || a.counter - b.counter || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { files, skipped }
}

/** The rows of one raw file, and the rows refused by reason; fails with `CorruptRecording` when the file cannot be used. */
export const readRawFile = async (
  info: RawFileInfo,
  maxChars: number = DEFAULT_MAX_ROW_CHARS
): Promise<{ readonly rows: ReadonlyArray<RawRow>; readonly refused: Readonly<Partial<Record<RawRefusal, number>>> }> => {
  const file = info.path.split(sep).slice(-4).join("/")
  let bytes: Uint8Array
  try {
    bytes = readFileSync(info.path)
  } catch (e) {
    throw new CorruptRecording({ file, cause: "unreadable", reason: e instanceof Error ? e.message : String(e) })
  }
  if (checksumOf(bytes) !== info.crc) {
    throw new CorruptRecording({ file, cause: "checksum", reason: "its bytes do not match the CRC32 in its name (damaged or truncated)" })
  }
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  let objects: ReadonlyArray<Record<string, unknown>>
  try {
    const metadata = parquetMetadata(buffer)
    const version = metadata.key_value_metadata?.find((kv) => kv.key === "meltica.raw")?.value
    if (version !== RAW_FORMAT_VERSION) {
      throw new CorruptRecording({ file, cause: "wrong_format", reason: `not a meltica raw frame file of format ${RAW_FORMAT_VERSION} (found ${version ?? "none"})` })
    }
    objects = await parquetReadObjects({ file: buffer, metadata, columns: ["t", "conn", "ts", "data", "url"] })
  } catch (e) {
    if (e instanceof CorruptRecording) throw e
    throw new CorruptRecording({ file, cause: "not_parquet", reason: `does not decode as Parquet: ${e instanceof Error ? e.message : String(e)}` })
  }
  const rows: Array<RawRow> = []
  const refused: Partial<Record<RawRefusal, number>> = {}
  for (const o of objects) {
    const r = checkRow(o, maxChars)
    if (typeof r === "string") refused[r] = (refused[r] ?? 0) + 1
    else rows.push(r)
  }
  return { rows, refused }
}
