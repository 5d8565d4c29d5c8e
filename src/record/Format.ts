/**
 * The recording format: Parquet files (snappy-compressed, one row per
 * canonical market-data event), written with `hyparquet-writer` and read with
 * `hyparquet` (pure JavaScript, no native build). DuckDB, pandas (pyarrow) and
 * polars open them without our code:
 *   `SELECT * FROM read_parquet('DIR/**\/*.parquet') ORDER BY ingest_ts`.
 *
 * Rules:
 * - Every file has the same columns (a column a kind does not use is null),
 *   so a whole directory reads as one table. Prices and quantities stay the
 *   venue's decimal strings (exact); book levels are JSON text
 *   (`[["price","qty"], ...]`).
 * - Layout: `DIR/<yyyy-mm-dd>/<provider>/<symbol>/<kind>/<first>-<last>-<n>.<crc>.parquet`,
 *   `first`/`last` the first and last `ingest_ts` in the file (epoch
 *   microseconds), `n` a counter, `crc` the CRC32 of the whole file in hex. A
 *   reader selects files by path alone (provider, symbol, kind, time range)
 *   before opening any.
 * - A file is complete or absent: it is written under a `.tmp` name and
 *   renamed once written (an atomic rename), so a crash leaves at most a
 *   `.tmp` file, which readers skip. A file whose bytes no longer match the
 *   CRC in its name (a disk error, a truncated copy) is skipped with a clear
 *   message before the Parquet decoder sees it (a damaged page can otherwise
 *   send a decoder into a long loop).
 */
import { Data } from "effect"
import { parquetMetadata, parquetRead } from "hyparquet"
import { parquetWriteBuffer } from "hyparquet-writer"
import { crc32 } from "node:zlib"
import type { EventPayload, Level, MarketKind } from "../../schema/Event.js"
import { BookDelta, BookSnapshot, isCritical, Ticker, Trade } from "../../schema/Event.js"
import { decodeFrame, type FrameHandler, unpooled } from "../codec/Binary.js"
import type { Event } from "../Event.js"

/**
 * The format's version, in each file's key-value metadata (`meltica.recording`).
 * Version 2 marks a column with no null in the file REQUIRED (version 1 wrote
 * every column OPTIONAL, which costs the reader a pass over definition
 * levels per value); both read the same way.
 */
export const RECORDING_FORMAT_VERSION = "2"
const READABLE_VERSIONS: ReadonlySet<string> = new Set(["1", "2"])

/** The payload columns of each kind (the reader reads these and the envelope's); the others are null in its files. */
const KIND_COLUMNS: Readonly<Record<MarketKind, ReadonlyArray<string>>> = {
  trade: ["exchange_ts", "trade_id", "price", "quantity", "side"],
  ticker: ["exchange_ts", "bid_price", "bid_qty", "ask_price", "ask_qty"],
  book_snapshot: ["bids", "asks", "book_state", "stale_reason", "checksum"],
  book_delta: ["bids", "asks", "checksum", "first_seq", "last_seq"]
}

/** One recorded event: the envelope fields that matter for replay, and the payload. */
export interface RecordedEvent {
  readonly provider: string
  readonly symbol: string
  readonly kind: MarketKind
  /** Epoch microseconds at ingest. */
  readonly ingestTs: number
  readonly seq: number | undefined
  readonly epoch: string | undefined
  readonly payload: EventPayload
}

/** Column-wise rows of one stream (provider, symbol, kind), as the recorder buffers them. */
export interface StreamRows {
  readonly provider: string
  readonly symbol: string
  readonly kind: MarketKind
  readonly ingestTs: Array<number>
  readonly seq: Array<number | undefined>
  readonly epoch: Array<string | undefined>
  readonly payload: Array<EventPayload>
}

/** Why a recording file is skipped, as a metric tag (`meltica_replay_files_skipped{reason}`). */
export type SkipCause = "unfinished_write" | "bad_name" | "checksum" | "wrong_format" | "not_parquet" | "unreadable" | "no_directory"
export const SKIP_CAUSES: ReadonlyArray<SkipCause> = [
  "unfinished_write", "bad_name", "checksum", "wrong_format", "not_parquet", "unreadable", "no_directory"
]

/** A recording file that cannot be used, and why (the reader skips it and says so). */
export class CorruptRecording extends Data.TaggedError("CorruptRecording")<{
  readonly file: string
  readonly cause: SkipCause
  readonly reason: string
}> {
  override get message(): string {
    return `recording file ${this.file} skipped: ${this.reason}`
  }
}

const levelsText = (levels: ReadonlyArray<Level>): string => JSON.stringify(levels)

/** What `parquetWriteBuffer` takes for one file: its columns and metadata (plain data, so a worker can encode it). */
export interface EncodeRequest {
  readonly columnData: ReadonlyArray<{ readonly name: string; readonly data: Array<unknown>; readonly type: "STRING" | "INT64"; readonly nullable: boolean }>
  readonly kvMetadata: ReadonlyArray<{ readonly key: string; readonly value: string }>
  readonly createdBy: string
}

/** The file's bytes: every column, nulls where the kind has no such field. */
export const encodeRows = (rows: StreamRows): Uint8Array => encodeRequest(encodeRequestOf(rows))

/** Encodes a request on this thread (`encodeWorker.mjs` does the same on a worker thread). */
export const encodeRequest = (request: EncodeRequest): Uint8Array =>
  new Uint8Array(parquetWriteBuffer(request as Parameters<typeof parquetWriteBuffer>[0]))

/** The columns of a stream's rows: nulls where the kind has no such field. */
export const encodeRequestOf = (rows: StreamRows): EncodeRequest => {
  const n = rows.ingestTs.length
  const col = <A>(f: (p: EventPayload) => A | undefined): Array<A | null> => {
    const out = new Array<A | null>(n)
    for (let i = 0; i < n; i++) {
      const v = f(rows.payload[i])
      out[i] = v === undefined ? null : v
    }
    return out
  }
  const big = (xs: ReadonlyArray<number | null | undefined>): Array<bigint | null> =>
    xs.map((x) => (x === undefined || x === null ? null : BigInt(Math.trunc(x))))
  const str = (name: string, data: Array<string | null>) => ({ name, data, type: "STRING" as const, nullable: data.includes(null) })
  const i64 = (name: string, data: Array<bigint | null>) => ({ name, data, type: "INT64" as const, nullable: data.includes(null) })
  const same = <A>(v: A) => new Array<A>(n).fill(v)
  return {
    columnData: [
      i64("ingest_ts", big(rows.ingestTs)),
      str("provider", same(rows.provider)),
      str("symbol", same(rows.symbol)),
      str("kind", same(rows.kind)),
      i64("seq", big(rows.seq)),
      str("epoch", rows.epoch.map((e) => e ?? null)),
      i64("exchange_ts", big(col((p) => p._tag === "trade" || p._tag === "ticker" ? p.exchangeTs : undefined))),
      str("trade_id", col((p) => p._tag === "trade" ? p.tradeId : undefined)),
      str("price", col((p) => p._tag === "trade" ? p.price : undefined)),
      str("quantity", col((p) => p._tag === "trade" ? p.quantity : undefined)),
      str("side", col((p) => p._tag === "trade" ? p.side : undefined)),
      str("bid_price", col((p) => p._tag === "ticker" ? p.bidPrice : undefined)),
      str("bid_qty", col((p) => p._tag === "ticker" ? p.bidQty : undefined)),
      str("ask_price", col((p) => p._tag === "ticker" ? p.askPrice : undefined)),
      str("ask_qty", col((p) => p._tag === "ticker" ? p.askQty : undefined)),
      str("bids", col((p) => p._tag === "book_snapshot" || p._tag === "book_delta" ? levelsText(p.bids) : undefined)),
      str("asks", col((p) => p._tag === "book_snapshot" || p._tag === "book_delta" ? levelsText(p.asks) : undefined)),
      str("book_state", col((p) => p._tag === "book_snapshot" ? p.state : undefined)),
      str("stale_reason", col((p) => p._tag === "book_snapshot" ? p.staleReason : undefined)),
      i64("checksum", big(col((p) => p._tag === "book_snapshot" || p._tag === "book_delta" ? p.checksum : undefined))),
      i64("first_seq", big(col((p) => p._tag === "book_delta" ? p.firstSeq : undefined))),
      i64("last_seq", big(col((p) => p._tag === "book_delta" ? p.lastSeq : undefined)))
    ],
    kvMetadata: [{ key: "meltica.recording", value: RECORDING_FORMAT_VERSION }],
    createdBy: "meltica recorder"
  }
}

/** One file's worth of a stream, encoded: what the recorder names and writes. */
export interface EncodedFile {
  readonly provider: string
  readonly symbol: string
  readonly kind: MarketKind
  readonly rows: number
  readonly firstTs: number
  readonly lastTs: number
  readonly bytes: Uint8Array
}

/** What `encodeFrames` makes of the recorder's frames. */
export interface EncodedFrames {
  readonly files: ReadonlyArray<EncodedFile>
  /** Records that did not decode (each named in `errors`, at most 16 of them). */
  readonly refused: number
  readonly errors: ReadonlyArray<string>
}

/**
 * The recorder's buffered events (binary codec frames, `codec/Binary.ts`,
 * in arrival order) as one Parquet file per stream (provider, symbol, kind),
 * rows in arrival order. Runs on the recorder's encoder thread (or on the
 * event loop when asked).
 */
export const encodeFrames = (frames: ReadonlyArray<Uint8Array>): EncodedFrames => {
  const streams = new Map<string, { -readonly [K in keyof StreamRows]: StreamRows[K] }>()
  let refused = 0
  const errors: Array<string> = []
  const handler: FrameHandler = {
    onEvent: (e) => {
      if (e._pool !== "Event" || e.payload === undefined || isCritical(e.kind)) return
      const key = `${e.provider}\u0000${e.symbol}\u0000${e.kind}`
      let rows = streams.get(key)
      if (rows === undefined) {
        streams.set(key, rows = { provider: e.provider, symbol: e.symbol, kind: e.kind as MarketKind, ingestTs: [], seq: [], epoch: [], payload: [] })
      }
      rows.ingestTs.push(e.ingestTs)
      rows.seq.push(e.seqProvider)
      rows.epoch.push(e.epoch)
      rows.payload.push(e.payload as EventPayload)
    },
    onError: (error) => {
      refused++
      if (errors.length < 16) errors.push(error.message)
    }
  }
  for (const frame of frames) decodeFrame(frame, unpooled, handler)
  const files: Array<EncodedFile> = []
  for (const rows of streams.values()) {
    files.push({
      provider: rows.provider,
      symbol: rows.symbol,
      kind: rows.kind,
      rows: rows.ingestTs.length,
      firstTs: rows.ingestTs[0],
      lastTs: rows.ingestTs[rows.ingestTs.length - 1],
      bytes: encodeRows(rows)
    })
  }
  return { files, refused, errors }
}

// ---------------------------------------------------------------------------
// File names
// ---------------------------------------------------------------------------

/** What a recording file's path says about it. */
export interface FileInfo {
  readonly path: string
  readonly provider: string
  readonly symbol: string
  readonly kind: string
  readonly firstTs: number
  readonly lastTs: number
  readonly counter: number
  readonly crc: number
}

const NAME = /^(\d+)-(\d+)-(\d+)\.([0-9a-f]{8})\.parquet$/

/** The UTC date directory of an epoch-microsecond time. */
export const dateDir = (ts: number): string => new Date(Math.floor(ts / 1000)).toISOString().slice(0, 10)

/** The path of a file, relative to the recording's directory. */
export const fileName = (rows: StreamRows, counter: number, crc: number): ReadonlyArray<string> =>
  pathOf({ ...rows, firstTs: rows.ingestTs[0], lastTs: rows.ingestTs[rows.ingestTs.length - 1] }, counter, crc)

/** The path of an encoded file, relative to the recording's directory. */
export const pathOf = (
  f: { readonly provider: string; readonly symbol: string; readonly kind: string; readonly firstTs: number; readonly lastTs: number },
  counter: number,
  crc: number
): ReadonlyArray<string> => [
  dateDir(f.firstTs),
  f.provider,
  f.symbol,
  f.kind,
  `${f.firstTs}-${f.lastTs}-${counter}.${(crc >>> 0).toString(16).padStart(8, "0")}.parquet`
]

/** The file's stream and time range from its relative path parts, or undefined when it is not a recording file. */
export const parseFileName = (path: string, parts: ReadonlyArray<string>): FileInfo | undefined => {
  if (parts.length < 5) return undefined
  const [provider, symbol, kind, name] = parts.slice(-4)
  const m = NAME.exec(name)
  if (m === null) return undefined
  return {
    path,
    provider,
    symbol,
    kind,
    firstTs: Number(m[1]),
    lastTs: Number(m[2]),
    counter: Number(m[3]),
    crc: parseInt(m[4], 16)
  }
}

export const checksumOf = (bytes: Uint8Array): number => crc32(bytes) >>> 0

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

const num = (x: unknown): number | undefined => (x === null || x === undefined ? undefined : Number(x))
const text = (x: unknown): string | undefined => (x === null || x === undefined ? undefined : String(x))
const levels = (x: unknown): ReadonlyArray<Level> => (typeof x === "string" ? JSON.parse(x) : [])

type Metadata = ReturnType<typeof parquetMetadata>

/**
 * Whether every row group's statistics say the column holds only `value`:
 * "yes", "no", or "unknown" (no statistics, or truncated ones).
 */
const columnIsOnly = (meta: Metadata, column: string, value: string): "yes" | "no" | "unknown" => {
  for (const group of meta.row_groups) {
    const chunk = group.columns.find((c) => c.meta_data?.path_in_schema.join(".") === column)
    const stats = chunk?.meta_data?.statistics
    if (stats === undefined || stats.min_value === undefined || stats.max_value === undefined) return "unknown"
    if (stats.null_count !== undefined && Number(stats.null_count) > 0) return "no"
    if (stats.min_value !== value || stats.max_value !== value) {
      // a long value's statistics are truncated: only its prefix can be compared
      const min = String(stats.min_value)
      return value.startsWith(min) && min.length < value.length ? "unknown" : "no"
    }
  }
  return "yes"
}

/**
 * The events of one file, in file order; fails with `CorruptRecording` when
 * the bytes do not match the CRC in the name, or the file does not decode,
 * or its rows are not the stream its path names.
 *
 * Only the envelope's columns and the file's kind's own are read. The
 * provider, symbol and kind come from the path; the file's statistics must
 * agree (when they cannot tell, those columns are read and every row checked).
 */
export const decodeFile = async (info: FileInfo, bytes: Uint8Array): Promise<DecodedFile> => {
  if (checksumOf(bytes) !== info.crc) {
    throw new CorruptRecording({ file: info.path, cause: "checksum", reason: "its bytes do not match the CRC32 in its name (damaged or truncated)" })
  }
  const kind = info.kind as MarketKind
  if (!Object.hasOwn(KIND_COLUMNS, kind)) {
    throw new CorruptRecording({ file: info.path, cause: "bad_name", reason: `its kind directory "${info.kind}" is not one of ${Object.keys(KIND_COLUMNS).join(", ")}` })
  }
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  const chunks: Record<string, Array<ArrayLike<unknown>>> = {}
  const columns: Record<string, ArrayLike<unknown>> = {}
  const stream = { provider: info.provider, symbol: info.symbol, kind: info.kind }
  const check: Array<keyof typeof stream> = []
  try {
    const meta = parquetMetadata(buffer)
    const version = meta.key_value_metadata?.find((kv) => kv.key === "meltica.recording")?.value
    if (version === undefined || !READABLE_VERSIONS.has(version)) {
      throw new CorruptRecording({ file: info.path, cause: "wrong_format", reason: `not a meltica recording of format ${[...READABLE_VERSIONS].join(" or ")} (found ${version ?? "none"})` })
    }
    for (const key of ["provider", "symbol", "kind"] as const) {
      const only = columnIsOnly(meta, key, stream[key])
      if (only === "no") {
        throw new CorruptRecording({ file: info.path, cause: "wrong_format", reason: `its ${key} column is not "${stream[key]}", which its path names` })
      }
      if (only === "unknown") check.push(key)
    }
    await parquetRead({
      file: buffer,
      metadata: meta,
      columns: ["ingest_ts", "seq", "epoch", ...KIND_COLUMNS[kind], ...check],
      // a column arrives in several chunks (row groups, pages): joined once at the end, not at every chunk
      onChunk: (chunk) => {
        ;(chunks[chunk.columnName] ??= []).push(chunk.columnData)
      }
    })
    for (const [name, parts] of Object.entries(chunks)) columns[name] = parts.length === 1 ? parts[0] : joinChunks(parts)
  } catch (e) {
    if (e instanceof CorruptRecording) throw e
    throw new CorruptRecording({ file: info.path, cause: "not_parquet", reason: `does not decode as Parquet: ${e instanceof Error ? e.message : String(e)}` })
  }
  const ts = columns.ingest_ts
  if (ts === undefined) throw new CorruptRecording({ file: info.path, cause: "wrong_format", reason: "no ingest_ts column" })
  const n = ts.length
  const c = (name: string): ArrayLike<unknown> => columns[name] ?? []
  for (const key of check) {
    const values = c(key)
    for (let i = 0; i < n; i++) {
      if (values[i] !== stream[key]) {
        throw new CorruptRecording({ file: info.path, cause: "wrong_format", reason: `row ${i}'s ${key} is not "${stream[key]}", which its path names` })
      }
    }
  }
  const seq = c("seq")
  const epoch = c("epoch")
  const ingestTs = new Float64Array(n)
  for (let i = 0; i < n; i++) ingestTs[i] = Number(ts[i])
  const payloadAt = payloadsOf(kind, c)
  const { provider, symbol } = info
  return {
    info,
    length: n,
    ingestTs,
    event: (i) => new Row(provider, symbol, kind, ingestTs[i], num(seq[i]), text(epoch[i]), payloadAt(i)),
    fill: (i, e) => {
      e.provider = provider
      e.symbol = symbol
      e.kind = kind
      e.ingestTs = ingestTs[i]
      e.seqProvider = num(seq[i])
      e.epoch = text(epoch[i])
      e.payload = payloadAt(i)
    }
  }
}

/**
 * A decoded file: its columns, and its rows as events built on demand (a
 * file is held while the replay crosses its time range; holding columns
 * rather than a million small objects keeps them out of the old generation,
 * where the garbage collector's cost grows with what is held).
 */
export interface DecodedFile {
  readonly info: FileInfo
  readonly length: number
  /** Epoch microseconds, row by row. */
  readonly ingestTs: Float64Array
  /** Row `i` as an event (a new object at each call). */
  readonly event: (i: number) => RecordedEvent
  /** Row `i` written into `e`'s envelope and payload (a pooled event: no object of its own). */
  readonly fill: (i: number, e: Event) => void
}

/** A `RecordedEvent` with one shape for every row. */
class Row implements RecordedEvent {
  constructor(
    readonly provider: string,
    readonly symbol: string,
    readonly kind: MarketKind,
    readonly ingestTs: number,
    readonly seq: number | undefined,
    readonly epoch: string | undefined,
    readonly payload: EventPayload
  ) {}
}

const joinChunks = (parts: ReadonlyArray<ArrayLike<unknown>>): Array<unknown> => {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Array<unknown>(n)
  let k = 0
  for (const p of parts) for (let i = 0; i < p.length; i++) out[k++] = p[i]
  return out
}

/**
 * Instances of the payload classes from fields already known to be valid
 * (read from our own file): the class's prototype and its own fields in the
 * order its constructor sets them (`_tag` last), which is what the
 * constructor builds without validation, at a fraction of the cost (the
 * constructor merges defaults these classes do not have; measured in
 * `bench/replay.ts`, read-back speed). `test/record/Record.test.ts` compares
 * them with constructor-made ones.
 */
const instance = <A extends object>(proto: object, tag: MarketKind, fields: Record<string, unknown>): A => {
  const o = Object.assign(Object.create(proto), fields)
  o._tag = tag
  return o as A
}

/** Trades and tickers, the bulk of a recording, through constructor functions (one hidden class each). */
interface TradeFields {
  tradeId: unknown
  price: unknown
  quantity: unknown
  side: unknown
  exchangeTs: number
  _tag: "trade"
}
interface TickerFields {
  bidPrice: unknown
  bidQty: unknown
  askPrice: unknown
  askQty: unknown
  exchangeTs: number
  _tag: "ticker"
}
const TradeRow = function(this: TradeFields, tradeId: unknown, price: unknown, quantity: unknown, side: unknown, exchangeTs: number) {
  this.tradeId = tradeId
  this.price = price
  this.quantity = quantity
  this.side = side
  this.exchangeTs = exchangeTs
  this._tag = "trade"
} as unknown as new(tradeId: unknown, price: unknown, quantity: unknown, side: unknown, exchangeTs: number) => Trade
TradeRow.prototype = Trade.prototype
const TickerRow = function(this: TickerFields, bidPrice: unknown, bidQty: unknown, askPrice: unknown, askQty: unknown, exchangeTs: number) {
  this.bidPrice = bidPrice
  this.bidQty = bidQty
  this.askPrice = askPrice
  this.askQty = askQty
  this.exchangeTs = exchangeTs
  this._tag = "ticker"
} as unknown as new(bidPrice: unknown, bidQty: unknown, askPrice: unknown, askQty: unknown, exchangeTs: number) => Ticker
TickerRow.prototype = Ticker.prototype

/** Row `i`'s payload in a file of `kind`. */
const payloadsOf = (kind: MarketKind, c: (name: string) => ArrayLike<unknown>): (i: number) => EventPayload => {
  switch (kind) {
    case "trade": {
      const [id, price, qty, side, ts] = [c("trade_id"), c("price"), c("quantity"), c("side"), c("exchange_ts")]
      return (i) => new TradeRow(String(id[i]), price[i], qty[i], side[i], Number(ts[i]))
    }
    case "ticker": {
      const [bp, bq, ap, aq, ts] = [c("bid_price"), c("bid_qty"), c("ask_price"), c("ask_qty"), c("exchange_ts")]
      return (i) => new TickerRow(bp[i], bq[i], ap[i], aq[i], Number(ts[i]))
    }
    case "book_snapshot": {
      const [bids, asks, state, stale, checksum] = [c("bids"), c("asks"), c("book_state"), c("stale_reason"), c("checksum")]
      return (i) => {
        const staleReason = text(stale[i])
        const sum = num(checksum[i])
        return instance<BookSnapshot>(BookSnapshot.prototype, "book_snapshot", {
          bids: levels(bids[i]),
          asks: levels(asks[i]),
          state: state[i],
          ...(staleReason === undefined ? {} : { staleReason }),
          ...(sum === undefined ? {} : { checksum: sum })
        })
      }
    }
    case "book_delta": {
      const [bids, asks, checksum, first, last] = [c("bids"), c("asks"), c("checksum"), c("first_seq"), c("last_seq")]
      return (i) => {
        const sum = num(checksum[i])
        const firstSeq = num(first[i])
        const lastSeq = num(last[i])
        return instance<BookDelta>(BookDelta.prototype, "book_delta", {
          bids: levels(bids[i]),
          asks: levels(asks[i]),
          ...(firstSeq === undefined ? {} : { firstSeq }),
          ...(lastSeq === undefined ? {} : { lastSeq }),
          ...(sum === undefined ? {} : { checksum: sum })
        })
      }
    }
  }
}
