/**
 * The binary wire codec: canonical events (`schema/Event.ts`) and control
 * commands (`schema/Control.ts`) as compact, versioned frames, for the NATS
 * buses and the worker ring. JSON (`encodeWireJson`) stays the readable form;
 * this one is for throughput.
 *
 * ## Format, version 1 (`BINARY_FORMAT_VERSION`)
 *
 * All integers little-endian. `uv` is an unsigned LEB128 varint of at most
 * 8 bytes (values up to 2^53 - 1); `str` is `uv` byte length + UTF-8 bytes;
 * `dec` is a decimal as its text: `u8` length + ASCII bytes (plain notation,
 * see `DECIMAL_PATTERN`); `f64` an IEEE double; `opt` fields are present when
 * their bit of the record's flags byte is set.
 *
 * ```
 * frame   = magic u8 (0xB1) | version u8 (1) | count u32 | record * count
 * record  = length uv (of type + body) | type u8 | body
 * type    1 trade  2 ticker  3 book_snapshot  4 book_delta      (Event)
 *         5 control_ack  6 control_result                       (Event, critical)
 *         16 merged event   32 exec report   48 control command
 * envelope = flags u8 (1 seqProvider, 2 epoch, 4 provider as the previous
 *            record's, 8 symbol as the previous record's, 16 epoch as the
 *            previous record's) | traceId str | provider str? | symbol str?
 *            | seqProvider uv? | epoch str? | ingestTs f64 | routingVersion uv
 * trade    = tradeId str | price dec | quantity dec | side u8 (0 buy, 1 sell) | exchangeTs f64
 * ticker   = bidPrice dec | bidQty dec | askPrice dec | askQty dec | exchangeTs f64
 * levels   = count uv | (price dec | quantity dec) * count
 * book_snapshot = flags u8 (1 stale, 2 staleReason, 4 checksum) | bids levels | asks levels
 *            | staleReason str? | checksum f64?
 * book_delta = flags u8 (1 firstSeq, 2 lastSeq, 4 checksum) | bids levels | asks levels
 *            | firstSeq f64? | lastSeq f64? | checksum f64?
 * control_ack = commandId str | command str | consumerId str | appliesToVersion f64
 * control_result = the payload's canonical JSON (str): rare, and its rejection
 *            and `detail` are open-ended, so it goes through its Schema
 * merged   = envelope | kind u8 (market kind code) | mergeId str | sourceProviders (count uv | str*)
 *            | payload u8 (1 merged_ticker, 2 merged_book, 3 merged_trades) | payload body
 *            | missing: u8 (0 absent, 1 present) then count uv | str*
 * merged_ticker = bestBid dec | bestBidProvider str | bestAsk dec | bestAskProvider str
 *            | count uv | (provider str | bidPrice dec | bidQty dec | askPrice dec | askQty dec) * count
 * merged_book = (count uv | (price dec | totalQty dec | count uv | (provider str | quantity dec)*)*) bids, then asks
 * merged_trades = count uv | (provider str | trade)*
 * exec report = envelope | orderId str | clientOrderId str | consumerId str | side u8
 *            | orderType u8 (0 market, 1 limit) | status u8 (new, partially_filled,
 *            filled, canceled, rejected) | flags u8 (1 price, 2 lastFillPrice,
 *            4 lastFillQty, 8 reason) | price dec? | quantity dec | filledQty dec
 *            | lastFillPrice dec? | lastFillQty dec? | reportSeq f64 | reason str?
 * command  = the control envelope's canonical JSON (str), decoded by the
 *            command schema (commands are rare and their rules are many: one
 *            set of rules, the same typed rejections as the JSON path)
 * ```
 *
 * Decoded events are at `EVENT_SCHEMA_VERSION` of the event contract: the
 * frame's version says how the bytes read, the contract's says what they mean.
 *
 * ## Decoding
 *
 * Decoding checks the structure (every length and count against what is left
 * of the frame, so no count makes it allocate beyond the frame's size) and the
 * bounds of the contract (string lengths, array counts, decimal syntax, kinds,
 * non-negative integer sequences and routing versions, a finite ingest time),
 * by hand, without a Schema parse per event. Each record is read into locals
 * first; only a record that is whole and valid takes an event from the pool
 * (so a bad record leaves nothing to recycle). A bad record is reported and
 * decoding goes on with the next one (its length prefix says where it
 * starts); a bad frame header, or a length past the end, ends the frame.
 * An unknown version is refused as `UnsupportedFrameVersion`.
 *
 * A frame starts with 0xB1, which no JSON text does: a receiver tells the two
 * codecs apart by the first byte (`isBinaryFrame`).
 */
import { Data, Either, Schema } from "effect"
import {
  CONTROL_SCHEMA_VERSION,
  type ControlCommand,
  decodeControlJsonCommand,
  encodeControlJson
} from "../../schema/Control.js"
import {
  BookDelta,
  BookSnapshot,
  ControlAckPayload,
  ControlResultPayload,
  type Decimal,
  EVENT_SCHEMA_VERSION,
  type EventKind,
  ExecReportPayload,
  type Level,
  type MarketKind,
  MAX_BOOK_LEVELS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_PROVIDERS,
  MAX_REASON_LENGTH,
  MAX_TRACE_ID_LENGTH,
  MAX_TRADES,
  MergedBook,
  MergedLevel,
  type MergedPayload,
  MergedTicker,
  MergedTrades,
  type OrderStatus,
  type OrderType,
  type Side,
  Ticker,
  Trade,
  VenueQuote,
  VenueTrade
} from "../../schema/Event.js"
import { jsonNestedDeeperThan } from "../../schema/Bounds.js"
import { InvalidCommand } from "../../schema/Rejection.js"
import { type AnyEvent, Event, ExecReport, MergedEvent } from "../Event.js"

/** The first byte of every binary frame (no JSON text starts with it). */
export const BINARY_MAGIC = 0xb1
/** The version of the byte layout above. Bumped on any incompatible change. */
export const BINARY_FORMAT_VERSION = 1 as const
/** Versions this decoder reads. */
export const DECODED_BINARY_VERSIONS: ReadonlyArray<number> = [1]

/**
 * The size past which a sender cuts a batch (half the NATS server's default
 * max payload, 1 MiB): a frame grows past it only by one event, and an event
 * too large for the server travels alone, so it is the only one refused.
 */
export const BATCH_CUT_BYTES = 512 * 1024

/** Records in one frame, at most. */
export const MAX_FRAME_RECORDS = 65_536
/** The longest frame decoded (the NATS server's default max payload, 1 MiB, with room). */
export const MAX_BINARY_FRAME_LENGTH = 4 * 1_048_576
/** The deepest JSON inside a control result or a command record. */
const MAX_EMBEDDED_JSON_DEPTH = 32
/** The longest embedded JSON text (a control result, a command), in bytes. */
const MAX_EMBEDDED_JSON_LENGTH = 256 * 1024
/** The longest decimal text: 20 integer digits, a point, 18 fraction digits. */
const MAX_DECIMAL_LENGTH = 39
const HEADER_LENGTH = 6

const TYPE_TRADE = 1
const TYPE_TICKER = 2
const TYPE_BOOK_SNAPSHOT = 3
const TYPE_BOOK_DELTA = 4
const TYPE_CONTROL_ACK = 5
const TYPE_CONTROL_RESULT = 6
const TYPE_MERGED = 16
const TYPE_EXEC_REPORT = 32
const TYPE_COMMAND = 48

const F_SEQ = 1
const F_EPOCH = 2
const F_SAME_PROVIDER = 4
const F_SAME_SYMBOL = 8
const F_SAME_EPOCH = 16

const MARKET_KINDS: ReadonlyArray<MarketKind> = ["trade", "ticker", "book_snapshot", "book_delta"]
const SIDES: ReadonlyArray<Side> = ["buy", "sell"]
const ORDER_TYPES: ReadonlyArray<OrderType> = ["market", "limit"]
const ORDER_STATUSES: ReadonlyArray<OrderStatus> = ["new", "partially_filled", "filled", "canceled", "rejected"]

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A frame whose version this decoder does not read: nothing in it is decoded. */
export class UnsupportedFrameVersion extends Data.TaggedError("UnsupportedFrameVersion")<{
  readonly version: number
}> {
  override get message(): string {
    return `unsupported binary frame version ${this.version} (this decoder reads ${DECODED_BINARY_VERSIONS.join(", ")})`
  }
}

/**
 * A frame, or one record of it, that does not decode: `record` is its index
 * in the frame (-1 for the frame header), `offset` the byte where it went
 * wrong. Never carries the bytes themselves.
 */
export class MalformedBinaryFrame extends Data.TaggedError("MalformedBinaryFrame")<{
  readonly reason: string
  readonly record: number
  readonly offset: number
}> {
  override get message(): string {
    return this.record < 0
      ? `malformed binary frame at byte ${this.offset}: ${this.reason}`
      : `malformed record ${this.record} at byte ${this.offset}: ${this.reason}`
  }
}

export type BinaryFrameError = UnsupportedFrameVersion | MalformedBinaryFrame

/** True when `data` starts like a binary frame (a JSON text never does). */
export const isBinaryFrame = (data: Uint8Array): boolean => data.length > 0 && data[0] === BINARY_MAGIC

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

const textEncoder = new TextEncoder()
const encodeControlResultJson = Schema.encodeSync(Schema.parseJson(ControlResultPayload))

/**
 * Writes frames. One writer is reused: `begin`, `add` each event, `finish`
 * for a copy of the frame's bytes (safe to hand to a client that keeps it).
 * `finishView` returns a view of the writer's own buffer, valid until the next
 * `begin` (for a caller that copies at once, e.g. into a shared ring).
 */
export class FrameWriter {
  private buf: Uint8Array
  private view: DataView
  private pos = 0
  private count = 0
  private prevProvider: string | undefined = undefined
  private prevSymbol: string | undefined = undefined
  private prevEpoch: string | undefined = undefined
  private undo: {
    readonly pos: number
    readonly prevProvider: string | undefined
    readonly prevSymbol: string | undefined
    readonly prevEpoch: string | undefined
  } | undefined = undefined

  constructor(initialBytes = 4_096) {
    this.buf = new Uint8Array(initialBytes)
    this.view = new DataView(this.buf.buffer)
    this.begin()
  }

  /** Records added since `begin`. */
  get records(): number {
    return this.count
  }

  /** Bytes written since `begin`, header included. */
  get length(): number {
    return this.pos
  }

  begin(): this {
    this.pos = 0
    this.count = 0
    this.undo = undefined
    this.prevProvider = undefined
    this.prevSymbol = undefined
    this.prevEpoch = undefined
    this.ensure(HEADER_LENGTH)
    this.buf[0] = BINARY_MAGIC
    this.buf[1] = BINARY_FORMAT_VERSION
    this.pos = HEADER_LENGTH
    return this
  }

  /**
   * Appends one event. Throws on an event the format cannot hold (no payload,
   * a sequence that is not a non-negative integer: a programming error
   * upstream); the frame is then as it was before the call.
   */
  add(e: AnyEvent): this {
    if (this.count >= MAX_FRAME_RECORDS) throw new RangeError(`a frame holds at most ${MAX_FRAME_RECORDS} records`)
    const pos = this.pos
    const prevProvider = this.prevProvider
    const prevSymbol = this.prevSymbol
    const prevEpoch = this.prevEpoch
    try {
      const lengthAt = this.reserveLength()
      switch (e._pool) {
        case "Event":
          this.writeEvent(e)
          break
        case "MergedEvent":
          this.writeMerged(e)
          break
        case "ExecReport":
          this.writeExecReport(e)
          break
      }
      this.closeLength(lengthAt)
    } catch (u) {
      this.pos = pos
      this.prevProvider = prevProvider
      this.prevSymbol = prevSymbol
      this.prevEpoch = prevEpoch
      throw u
    }
    this.undo = { pos, prevProvider, prevSymbol, prevEpoch }
    return this
  }

  /**
   * Takes back the last event added (once): for a caller that cuts frames by
   * size, and finds the last event made this one too large.
   */
  undoLast(): void {
    const u = this.undo
    if (u === undefined) throw new Error("nothing to undo")
    this.undo = undefined
    this.pos = u.pos
    this.prevProvider = u.prevProvider
    this.prevSymbol = u.prevSymbol
    this.prevEpoch = u.prevEpoch
    this.count--
  }

  /** Appends one control command (in its current envelope). */
  addCommand(command: ControlCommand): this {
    this.undo = undefined
    const json = encodeControlJson({ schemaVersion: CONTROL_SCHEMA_VERSION, command })
    if (Either.isLeft(json)) throw json.left
    const lengthAt = this.reserveLength()
    this.u8(TYPE_COMMAND)
    this.str(json.right)
    this.closeLength(lengthAt)
    return this
  }

  /** A copy of the frame. */
  finish(): Uint8Array {
    return this.finishView().slice()
  }

  /** The frame in the writer's buffer: valid until the next `begin`. */
  finishView(): Uint8Array {
    this.view.setUint32(2, this.count, true)
    return this.buf.subarray(0, this.pos)
  }

  // -- records ---------------------------------------------------------------

  private writeEvent(e: Event): void {
    const p = e.payload
    if (p === undefined) throw new TypeError(`event ${e.traceId} has no payload`)
    switch (p._tag) {
      case "trade":
        this.u8(TYPE_TRADE)
        this.envelope(e)
        this.tradeBody(p)
        return
      case "ticker":
        this.u8(TYPE_TICKER)
        this.envelope(e)
        this.dec(p.bidPrice)
        this.dec(p.bidQty)
        this.dec(p.askPrice)
        this.dec(p.askQty)
        this.f64(p.exchangeTs)
        return
      case "book_snapshot":
        this.u8(TYPE_BOOK_SNAPSHOT)
        this.envelope(e)
        this.u8(
          (p.state === "stale" ? 1 : 0) | (p.staleReason !== undefined ? 2 : 0) | (p.checksum !== undefined ? 4 : 0)
        )
        this.levels(p.bids)
        this.levels(p.asks)
        if (p.staleReason !== undefined) this.str(p.staleReason)
        if (p.checksum !== undefined) this.f64(p.checksum)
        return
      case "book_delta":
        this.u8(TYPE_BOOK_DELTA)
        this.envelope(e)
        this.u8((p.firstSeq !== undefined ? 1 : 0) | (p.lastSeq !== undefined ? 2 : 0) | (p.checksum !== undefined ? 4 : 0))
        this.levels(p.bids)
        this.levels(p.asks)
        if (p.firstSeq !== undefined) this.f64(p.firstSeq)
        if (p.lastSeq !== undefined) this.f64(p.lastSeq)
        if (p.checksum !== undefined) this.f64(p.checksum)
        return
      case "control_ack":
        this.u8(TYPE_CONTROL_ACK)
        this.envelope(e)
        this.str(p.commandId)
        this.str(p.command)
        this.str(p.consumerId)
        this.f64(p.appliesToVersion)
        return
      case "control_result":
        this.u8(TYPE_CONTROL_RESULT)
        this.envelope(e)
        this.str(encodeControlResultJson(p))
        return
    }
  }

  private writeMerged(e: MergedEvent): void {
    const p = e.payload
    if (p === undefined) throw new TypeError(`merged event ${e.traceId} has no payload`)
    this.u8(TYPE_MERGED)
    this.envelope(e)
    this.u8(MARKET_KINDS.indexOf(e.kind))
    this.str(e.mergeId)
    this.strings(e.sourceProviders)
    switch (p._tag) {
      case "merged_ticker":
        this.u8(1)
        this.dec(p.bestBid)
        this.str(p.bestBidProvider)
        this.dec(p.bestAsk)
        this.str(p.bestAskProvider)
        this.uv(p.quotes.length)
        for (const q of p.quotes) {
          this.str(q.provider)
          this.dec(q.bidPrice)
          this.dec(q.bidQty)
          this.dec(q.askPrice)
          this.dec(q.askQty)
        }
        break
      case "merged_book":
        this.u8(2)
        this.mergedLevels(p.bids)
        this.mergedLevels(p.asks)
        break
      case "merged_trades":
        this.u8(3)
        this.uv(p.trades.length)
        for (const t of p.trades) {
          this.str(t.provider)
          this.tradeBody(t.trade)
        }
        break
    }
    if (p.missing === undefined) this.u8(0)
    else {
      this.u8(1)
      this.strings(p.missing)
    }
  }

  private writeExecReport(e: ExecReport): void {
    const p = e.payload
    if (p === undefined) throw new TypeError(`exec report ${e.traceId} has no payload`)
    this.u8(TYPE_EXEC_REPORT)
    this.envelope(e)
    this.str(p.orderId)
    this.str(p.clientOrderId)
    this.str(p.consumerId)
    this.u8(SIDES.indexOf(p.side))
    this.u8(ORDER_TYPES.indexOf(p.orderType))
    this.u8(ORDER_STATUSES.indexOf(p.status))
    this.u8(
      (p.price !== undefined ? 1 : 0) |
        (p.lastFillPrice !== undefined ? 2 : 0) |
        (p.lastFillQty !== undefined ? 4 : 0) |
        (p.reason !== undefined ? 8 : 0)
    )
    if (p.price !== undefined) this.dec(p.price)
    this.dec(p.quantity)
    this.dec(p.filledQty)
    if (p.lastFillPrice !== undefined) this.dec(p.lastFillPrice)
    if (p.lastFillQty !== undefined) this.dec(p.lastFillQty)
    this.f64(p.reportSeq)
    if (p.reason !== undefined) this.str(p.reason)
  }

  private envelope(e: AnyEvent): void {
    const sameProvider = e.provider === this.prevProvider
    const sameSymbol = e.symbol === this.prevSymbol
    const epoch = e.epoch
    const sameEpoch = epoch !== undefined && epoch === this.prevEpoch
    this.u8(
      (e.seqProvider !== undefined ? F_SEQ : 0) |
        (epoch !== undefined ? F_EPOCH : 0) |
        (sameProvider ? F_SAME_PROVIDER : 0) |
        (sameSymbol ? F_SAME_SYMBOL : 0) |
        (sameEpoch ? F_SAME_EPOCH : 0)
    )
    this.str(e.traceId)
    if (!sameProvider) this.str(e.provider)
    if (!sameSymbol) this.str(e.symbol)
    if (e.seqProvider !== undefined) this.uv(e.seqProvider)
    if (epoch !== undefined && !sameEpoch) this.str(epoch)
    this.f64(e.ingestTs)
    this.uv(e.routingVersion)
    this.prevProvider = e.provider
    this.prevSymbol = e.symbol
    if (epoch !== undefined) this.prevEpoch = epoch
  }

  private tradeBody(t: Trade): void {
    this.str(t.tradeId)
    this.dec(t.price)
    this.dec(t.quantity)
    this.u8(t.side === "sell" ? 1 : 0)
    this.f64(t.exchangeTs)
  }

  private levels(levels: ReadonlyArray<Level>): void {
    this.uv(levels.length)
    for (const [price, qty] of levels) {
      this.dec(price)
      this.dec(qty)
    }
  }

  private mergedLevels(levels: ReadonlyArray<MergedLevel>): void {
    this.uv(levels.length)
    for (const l of levels) {
      this.dec(l.price)
      this.dec(l.totalQty)
      this.uv(l.venues.length)
      for (const v of l.venues) {
        this.str(v.provider)
        this.dec(v.quantity)
      }
    }
  }

  private strings(xs: ReadonlyArray<string>): void {
    this.uv(xs.length)
    for (const x of xs) this.str(x)
  }

  // -- primitives ------------------------------------------------------------

  private ensure(extra: number): void {
    const need = this.pos + extra
    if (need <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < need) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  /** Reserves a 4-byte varint for a record's length (patched by `closeLength`). */
  private reserveLength(): number {
    this.ensure(4)
    const at = this.pos
    this.pos += 4
    return at
  }

  /** Writes the record's length as a 4-byte (padded) varint: records are at most 2^28 - 1 bytes. */
  private closeLength(at: number): void {
    const n = this.pos - at - 4
    if (n >= 0x10000000) throw new RangeError("record too large")
    const b = this.buf
    b[at] = (n & 0x7f) | 0x80
    b[at + 1] = ((n >>> 7) & 0x7f) | 0x80
    b[at + 2] = ((n >>> 14) & 0x7f) | 0x80
    b[at + 3] = (n >>> 21) & 0x7f
    this.count++
  }

  private u8(n: number): void {
    this.ensure(1)
    this.buf[this.pos++] = n
  }

  private f64(n: number): void {
    this.ensure(8)
    this.view.setFloat64(this.pos, n, true)
    this.pos += 8
  }

  private uv(n: number): void {
    this.ensure(8)
    if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`not a non-negative safe integer: ${n}`)
    const b = this.buf
    while (n >= 0x80) {
      b[this.pos++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    b[this.pos++] = n
  }

  private str(s: string): void {
    const n = s.length
    // ASCII, the usual case: one byte per character, written directly
    this.ensure(n + 8)
    const start = this.pos
    this.uv(n)
    const b = this.buf
    let p = this.pos
    let i = 0
    for (; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c >= 0x80) break
      b[p++] = c
    }
    if (i === n) {
      this.pos = p
      return
    }
    // anything else: UTF-8 through the platform's encoder, the length written again
    this.pos = start
    const bytes = textEncoder.encode(s)
    this.uv(bytes.length)
    this.ensure(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  private dec(s: string): void {
    const n = s.length
    if (n > 255) throw new RangeError("decimal too long")
    this.ensure(n + 1)
    const b = this.buf
    b[this.pos++] = n
    for (let i = 0; i < n; i++) b[this.pos++] = s.charCodeAt(i) & 0xff
  }
}

const sharedWriter = new FrameWriter()

/** One frame holding these events (a copy: safe to keep). */
export const encodeEvents = (events: Iterable<AnyEvent>): Uint8Array => {
  sharedWriter.begin()
  for (const e of events) sharedWriter.add(e)
  return sharedWriter.finish()
}

/** One frame holding one event, or why it cannot be encoded (no payload, a value out of range). */
export const encodeEvent = (e: AnyEvent): Either.Either<Uint8Array, string> => {
  try {
    return Either.right(sharedWriter.begin().add(e).finish())
  } catch (u) {
    return Either.left(u instanceof Error ? u.message : String(u))
  }
}

/** One frame holding one control command. */
export const encodeCommandFrame = (command: ControlCommand): Uint8Array =>
  sharedWriter.begin().addCommand(command).finish()

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/** Where decoded events come from: the process's `Pool`, or `unpooled` (a plain new object). */
export interface EventSource {
  acquireEvent(): Event
  acquireMerged(): MergedEvent
  acquireExecReport(): ExecReport
}

/** Plain new events, for a receiver without a pool (tests, tools). */
export const unpooled: EventSource = {
  acquireEvent: () => new Event(),
  acquireMerged: () => new MergedEvent(),
  acquireExecReport: () => new ExecReport()
}

/** What a frame's records turn into. */
export interface FrameHandler {
  /** A decoded event, taken from the source: the handler owns it. */
  readonly onEvent: (e: AnyEvent) => void
  /** A decoded control command (absent: a command record is refused as unexpected). */
  readonly onCommand?: (command: ControlCommand) => void
  /** A command record whose command is refused by the command schema: the same rejection as the JSON path. */
  readonly onInvalidCommand?: (invalid: InvalidCommand) => void
  /** A record, or the whole frame, that does not decode. */
  readonly onError: (error: BinaryFrameError) => void
}

/** Thrown inside the reader, caught per record; never escapes this module. */
class Bad {
  constructor(readonly reason: string) {}
}

const utf8 = new TextDecoder("utf-8", { fatal: true })
const decodeControlResultJson = Schema.decodeUnknownEither(Schema.parseJson(ControlResultPayload))

/** Short ASCII strings are built from their bytes: for an id or a symbol that beats the platform's decoder. */
const SHORT_ASCII = 48

/** The string of ASCII bytes `d[start, stop)` (a loop: cheaper than `fromCharCode.apply` on a view, measured). */
const ascii8 = (d: Uint8Array, start: number, stop: number): string => {
  let s = ""
  for (let i = start; i < stop; i++) s += String.fromCharCode(d[i]!)
  return s
}

/** Doubles are read through this scratch pair: no DataView (an allocation) per frame. */
const f64Bytes = new Uint8Array(8)
const f64Value = new Float64Array(f64Bytes.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Little-endian u32 at `at`. */
const u32At = (d: Uint8Array, at: number): number =>
  (d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16)) + d[at + 3]! * 0x1000000

class Reader {
  pos = 0
  end: number
  /**
   * The previous record's provider, symbol and epoch, set as soon as each is
   * read (a record that fails later, on its payload, still names them for the
   * next one, as the writer did); undefined while unknown (none yet, or it did
   * not decode): a record that refers to an unknown one is refused.
   */
  prevProvider: string | undefined = undefined
  prevSymbol: string | undefined = undefined
  prevEpoch: string | undefined = undefined

  constructor(readonly data: Uint8Array) {
    this.end = data.length
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new Bad(`${what} runs past the end of its record`)
  }

  u8(what: string): number {
    if (this.pos >= this.end) throw new Bad(`${what} runs past the end of its record`)
    return this.data[this.pos++]!
  }

  f64(what: string): number {
    this.need(8, what)
    const d = this.data
    const p = this.pos
    if (littleEndian) for (let i = 0; i < 8; i++) f64Bytes[i] = d[p + i]!
    else for (let i = 0; i < 8; i++) f64Bytes[7 - i] = d[p + i]!
    this.pos = p + 8
    return f64Value[0]!
  }

  /** An unsigned varint of at most 8 bytes (2^53 - 1 at most). */
  uv(what: string): number {
    let n = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new Bad(`${what} runs past the end of its record`)
      const b = this.data[this.pos++]!
      n += (b & 0x7f) * mul
      if (b < 0x80) {
        if (n > Number.MAX_SAFE_INTEGER) throw new Bad(`${what} out of range`)
        return n
      }
      mul *= 0x80
    }
    throw new Bad(`${what}: a varint longer than 8 bytes`)
  }

  /** A count of items of at least `minBytes` each: at most `max`, and no more than the record can hold. */
  count(what: string, max: number, minBytes: number): number {
    const n = this.uv(what)
    if (n > max) throw new Bad(`${what} must hold at most ${max} items (got ${n})`)
    if (n * minBytes > this.end - this.pos) throw new Bad(`${what}: ${n} items cannot fit in the ${this.end - this.pos} bytes left`)
    return n
  }

  /** A string of at most `max` UTF-16 code units (the contract's bound), valid UTF-8. */
  str(what: string, max: number): string {
    const n = this.uv(what)
    // a UTF-16 code unit takes at least one UTF-8 byte and at most three
    if (n > max * 3) throw new Bad(`${what} must be at most ${max} characters (got ${n} bytes)`)
    this.need(n, what)
    const d = this.data
    const start = this.pos
    const stop = start + n
    if (n <= SHORT_ASCII) {
      let ascii = true
      for (let i = start; i < stop; i++) {
        if (d[i]! >= 0x80) {
          ascii = false
          break
        }
      }
      if (ascii) {
        if (n > max) throw new Bad(`${what} must be at most ${max} characters (got ${n})`)
        this.pos = stop
        return ascii8(d, start, stop)
      }
    }
    let s: string
    try {
      // the platform's decoder refuses views of shared memory (a worker ring): those are copied first
      s = utf8.decode(d.buffer instanceof SharedArrayBuffer ? d.slice(start, stop) : d.subarray(start, stop))
    } catch {
      throw new Bad(`${what} is not valid UTF-8`)
    }
    if (s.length > max) throw new Bad(`${what} must be at most ${max} characters (got ${s.length})`)
    this.pos = stop
    return s
  }

  /**
   * A decimal in plain notation (`DECIMAL_PATTERN`): checked byte by byte as
   * it is read, no regular expression, no number parsed.
   */
  dec(what: string): Decimal {
    const n = this.u8(what)
    if (n === 0 || n > MAX_DECIMAL_LENGTH) throw new Bad(`${what}: a decimal of ${n} characters`)
    this.need(n, what)
    const d = this.data
    const start = this.pos
    const stop = start + n
    let i = start
    let c = d[i]!
    if (c < 48 || c > 57) throw new Bad(`${what} is not a plain decimal`)
    if (c === 48) {
      i++
    } else {
      while (i < stop && (c = d[i]!) >= 48 && c <= 57) i++
      if (i - start > 20) throw new Bad(`${what} is not a plain decimal: more than 20 integer digits`)
    }
    if (i < stop) {
      if (d[i] !== 46) throw new Bad(`${what} is not a plain decimal`)
      const fraction = ++i
      while (i < stop && (c = d[i]!) >= 48 && c <= 57) i++
      const digits = i - fraction
      if (i !== stop || digits === 0 || digits > 18) throw new Bad(`${what} is not a plain decimal`)
    }
    this.pos = stop
    return ascii8(d, start, stop) as Decimal
  }

  bool(what: string): boolean {
    const b = this.u8(what)
    if (b > 1) throw new Bad(`${what}: ${b} is not 0 or 1`)
    return b === 1
  }

  literal<L>(what: string, literals: ReadonlyArray<L>): L {
    const b = this.u8(what)
    const v = literals[b]
    if (v === undefined) throw new Bad(`${what}: unknown code ${b}`)
    return v
  }

  strings(what: string, max: number, itemMax: number): Array<string> {
    const n = this.count(what, max, 1)
    const out = new Array<string>(n)
    for (let i = 0; i < n; i++) out[i] = this.str(what, itemMax)
    return out
  }

  levels(what: string): Array<Level> {
    const n = this.count(what, MAX_BOOK_LEVELS, 4)
    const out = new Array<Level>(n)
    for (let i = 0; i < n; i++) out[i] = [this.dec(what), this.dec(what)]
    return out
  }

  json(what: string): string {
    const text = this.str(what, MAX_EMBEDDED_JSON_LENGTH)
    if (jsonNestedDeeperThan(text, MAX_EMBEDDED_JSON_DEPTH)) throw new Bad(`${what} nested deeper than ${MAX_EMBEDDED_JSON_DEPTH} levels`)
    return text
  }
}

interface EnvelopeFields {
  traceId: string
  provider: string
  symbol: string
  seqProvider: number | undefined
  epoch: string | undefined
  ingestTs: number
  routingVersion: number
}

const FLAGS_KNOWN = F_SEQ | F_EPOCH | F_SAME_PROVIDER | F_SAME_SYMBOL | F_SAME_EPOCH

const readEnvelope = (r: Reader, out: EnvelopeFields): void => {
  const flags = r.u8("envelope flags")
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new Bad(`envelope flags: unknown bits ${flags}`)
  out.traceId = r.str("traceId", MAX_TRACE_ID_LENGTH)
  if ((flags & F_SAME_PROVIDER) !== 0) {
    if (r.prevProvider === undefined) throw new Bad("provider as the previous record's, which did not decode")
    out.provider = r.prevProvider
  } else {
    r.prevProvider = undefined
    out.provider = r.prevProvider = r.str("provider", MAX_NAME_LENGTH)
  }
  if ((flags & F_SAME_SYMBOL) !== 0) {
    if (r.prevSymbol === undefined) throw new Bad("symbol as the previous record's, which did not decode")
    out.symbol = r.prevSymbol
  } else {
    r.prevSymbol = undefined
    out.symbol = r.prevSymbol = r.str("symbol", MAX_NAME_LENGTH)
  }
  out.seqProvider = (flags & F_SEQ) !== 0 ? r.uv("seqProvider") : undefined
  if ((flags & F_EPOCH) === 0) {
    if ((flags & F_SAME_EPOCH) !== 0) throw new Bad("envelope flags: an epoch as the previous one, but no epoch")
    out.epoch = undefined
  } else if ((flags & F_SAME_EPOCH) !== 0) {
    if (r.prevEpoch === undefined) throw new Bad("epoch as the previous record's, which did not decode or had none")
    out.epoch = r.prevEpoch
  } else {
    r.prevEpoch = undefined
    out.epoch = r.prevEpoch = r.str("epoch", MAX_ID_LENGTH)
  }
  const ingestTs = r.f64("ingestTs")
  if (!Number.isFinite(ingestTs)) throw new Bad(`ingestTs must be finite (got ${ingestTs})`)
  out.ingestTs = ingestTs
  out.routingVersion = r.uv("routingVersion")
}

const commitEnvelope = (env: EnvelopeFields, e: AnyEvent): void => {
  e.traceId = env.traceId
  e.provider = env.provider
  e.symbol = env.symbol
  e.seqProvider = env.seqProvider
  e.epoch = env.epoch
  e.ingestTs = env.ingestTs
  e.routingVersion = env.routingVersion
}

/**
 * Payloads are built without a second validation: every field was checked as
 * it was read. And without the class constructor: `new Ticker(props, true)`
 * copies and re-merges its props generically and costs about 5 us (measured,
 * `bench/codec.ts`); an object made from the class's prototype with the same
 * own fields, in the same order (`_tag` last), is the same value (the same
 * class, `Equal`, printing) for a few dozen nanoseconds.
 */
/** An instance of a Schema class with these fields: what its constructor makes with validation off. */
const instance = <A>(cls: { readonly prototype: A }, tag: string | undefined, fields: object): A => {
  const o = Object.create(cls.prototype as object) as Record<string, unknown>
  for (const k in fields) {
    const v = (fields as Record<string, unknown>)[k]
    if (v !== undefined) o[k] = v
  }
  if (tag !== undefined) o["_tag"] = tag
  return o as A
}

const readTrade = (r: Reader): Trade =>
  instance(Trade, "trade", {
    tradeId: r.str("tradeId", MAX_ID_LENGTH),
    price: r.dec("price"),
    quantity: r.dec("quantity"),
    side: r.literal("side", SIDES),
    exchangeTs: r.f64("exchangeTs")
  })

const readFlags = (r: Reader, what: string, known: number): number => {
  const flags = r.u8(what)
  if ((flags & ~known) !== 0) throw new Bad(`${what}: unknown bits ${flags}`)
  return flags
}

const readEventPayload = (r: Reader, type: number): Event["payload"] => {
  switch (type) {
    case TYPE_TRADE:
      return readTrade(r)
    case TYPE_TICKER:
      return instance(Ticker, "ticker", {
        bidPrice: r.dec("bidPrice"),
        bidQty: r.dec("bidQty"),
        askPrice: r.dec("askPrice"),
        askQty: r.dec("askQty"),
        exchangeTs: r.f64("exchangeTs")
      })
    case TYPE_BOOK_SNAPSHOT: {
      const flags = readFlags(r, "book_snapshot flags", 7)
      const bids = r.levels("bids")
      const asks = r.levels("asks")
      const staleReason = (flags & 2) !== 0 ? r.str("staleReason", MAX_REASON_LENGTH) : undefined
      const checksum = (flags & 4) !== 0 ? r.f64("checksum") : undefined
      return instance(BookSnapshot, "book_snapshot", {
        bids,
        asks,
        state: (flags & 1) !== 0 ? "stale" : "consistent",
        ...(staleReason !== undefined ? { staleReason } : {}),
        ...(checksum !== undefined ? { checksum } : {})
      })
    }
    case TYPE_BOOK_DELTA: {
      const flags = readFlags(r, "book_delta flags", 7)
      const bids = r.levels("bids")
      const asks = r.levels("asks")
      const firstSeq = (flags & 1) !== 0 ? r.f64("firstSeq") : undefined
      const lastSeq = (flags & 2) !== 0 ? r.f64("lastSeq") : undefined
      const checksum = (flags & 4) !== 0 ? r.f64("checksum") : undefined
      return instance(BookDelta, "book_delta", {
        bids,
        asks,
        ...(firstSeq !== undefined ? { firstSeq } : {}),
        ...(lastSeq !== undefined ? { lastSeq } : {}),
        ...(checksum !== undefined ? { checksum } : {})
      })
    }
    case TYPE_CONTROL_ACK:
      return instance(ControlAckPayload, "control_ack", {
        commandId: r.str("commandId", MAX_ID_LENGTH),
        command: r.str("command", MAX_NAME_LENGTH),
        consumerId: r.str("consumerId", MAX_ID_LENGTH),
        appliesToVersion: r.f64("appliesToVersion")
      })
    case TYPE_CONTROL_RESULT: {
      const decoded = decodeControlResultJson(r.json("control_result"))
      if (Either.isLeft(decoded)) throw new Bad(`control_result: ${decoded.left.message.slice(0, 512)}`)
      return decoded.right
    }
  }
  throw new Bad(`unknown record type ${type}`)
}

const readMergedPayload = (r: Reader): MergedPayload => {
  const tag = r.u8("merged payload")
  let payload: MergedPayload
  switch (tag) {
    case 1: {
      const bestBid = r.dec("bestBid")
      const bestBidProvider = r.str("bestBidProvider", MAX_NAME_LENGTH)
      const bestAsk = r.dec("bestAsk")
      const bestAskProvider = r.str("bestAskProvider", MAX_NAME_LENGTH)
      const n = r.count("quotes", MAX_PROVIDERS, 5)
      const quotes = new Array<VenueQuote>(n)
      for (let i = 0; i < n; i++) {
        quotes[i] = instance(VenueQuote, undefined, {
          provider: r.str("provider", MAX_NAME_LENGTH),
          bidPrice: r.dec("bidPrice"),
          bidQty: r.dec("bidQty"),
          askPrice: r.dec("askPrice"),
          askQty: r.dec("askQty")
        })
      }
      const missing = readMissing(r)
      payload = instance(MergedTicker, "merged_ticker", {
        bestBid,
        bestBidProvider,
        bestAsk,
        bestAskProvider,
        quotes,
        ...(missing !== undefined ? { missing } : {})
      })
      break
    }
    case 2: {
      const bids = readMergedLevels(r, "bids")
      const asks = readMergedLevels(r, "asks")
      const missing = readMissing(r)
      payload = instance(MergedBook, "merged_book", { bids, asks, ...(missing !== undefined ? { missing } : {}) })
      break
    }
    case 3: {
      const n = r.count("trades", MAX_TRADES, 8)
      const trades = new Array<VenueTrade>(n)
      for (let i = 0; i < n; i++) {
        const provider = r.str("provider", MAX_NAME_LENGTH)
        trades[i] = instance(VenueTrade, undefined, { provider, trade: readTrade(r) })
      }
      const missing = readMissing(r)
      payload = instance(MergedTrades, "merged_trades", { trades, ...(missing !== undefined ? { missing } : {}) })
      break
    }
    default:
      throw new Bad(`merged payload: unknown code ${tag}`)
  }
  return payload
}

const readMissing = (r: Reader): Array<string> | undefined =>
  r.bool("missing") ? r.strings("missing", MAX_PROVIDERS, MAX_NAME_LENGTH) : undefined

const readMergedLevels = (r: Reader, what: string): Array<MergedLevel> => {
  const n = r.count(what, MAX_BOOK_LEVELS, 5)
  const out = new Array<MergedLevel>(n)
  for (let i = 0; i < n; i++) {
    const price = r.dec("price")
    const totalQty = r.dec("totalQty")
    const v = r.count("venues", MAX_PROVIDERS, 2)
    const venues = new Array<{ readonly provider: string; readonly quantity: Decimal }>(v)
    for (let j = 0; j < v; j++) venues[j] = { provider: r.str("provider", MAX_NAME_LENGTH), quantity: r.dec("quantity") }
    out[i] = instance(MergedLevel, undefined, { price, totalQty, venues })
  }
  return out
}

const readExecReport = (r: Reader): ExecReportPayload => {
  const orderId = r.str("orderId", MAX_ID_LENGTH)
  const clientOrderId = r.str("clientOrderId", MAX_ID_LENGTH)
  const consumerId = r.str("consumerId", MAX_ID_LENGTH)
  const side = r.literal("side", SIDES)
  const orderType = r.literal("orderType", ORDER_TYPES)
  const status = r.literal("status", ORDER_STATUSES)
  const flags = readFlags(r, "exec report flags", 15)
  const price = (flags & 1) !== 0 ? r.dec("price") : undefined
  const quantity = r.dec("quantity")
  const filledQty = r.dec("filledQty")
  const lastFillPrice = (flags & 2) !== 0 ? r.dec("lastFillPrice") : undefined
  const lastFillQty = (flags & 4) !== 0 ? r.dec("lastFillQty") : undefined
  const reportSeq = r.f64("reportSeq")
  const reason = (flags & 8) !== 0 ? r.str("reason", MAX_REASON_LENGTH) : undefined
  return instance(ExecReportPayload, "exec_report", {
    orderId,
    clientOrderId,
    consumerId,
    side,
    orderType,
    status,
    ...(price !== undefined ? { price } : {}),
    quantity,
    filledQty,
    ...(lastFillPrice !== undefined ? { lastFillPrice } : {}),
    ...(lastFillQty !== undefined ? { lastFillQty } : {}),
    reportSeq,
    ...(reason !== undefined ? { reason } : {})
  })
}

/** Reads one record's body (type included) up to `r.end`; hands over what it decoded. */
const readRecord = (r: Reader, env: EnvelopeFields, source: EventSource, handler: FrameHandler): void => {
  const type = r.u8("record type")
  if (type === TYPE_COMMAND) {
    const text = r.json("command")
    if (r.pos !== r.end) throw new Bad(`${r.end - r.pos} bytes left over after the record`)
    if (handler.onCommand === undefined) throw new Bad("a command record where events are expected")
    const decoded = decodeControlJsonCommand(text)
    if (Either.isLeft(decoded)) {
      if (handler.onInvalidCommand === undefined) throw new Bad(`invalid command: ${decoded.left.reason.slice(0, 512)}`)
      handler.onInvalidCommand(decoded.left)
    } else handler.onCommand(decoded.right)
    return
  }
  readEnvelope(r, env)
  if (type === TYPE_MERGED) {
    const kind = r.literal("merged kind", MARKET_KINDS)
    const mergeId = r.str("mergeId", MAX_ID_LENGTH)
    const sourceProviders = r.strings("sourceProviders", MAX_PROVIDERS, MAX_NAME_LENGTH)
    const payload = readMergedPayload(r)
    if (r.pos !== r.end) throw new Bad(`${r.end - r.pos} bytes left over after the record`)
    const e = source.acquireMerged()
    commitEnvelope(env, e)
    e.kind = kind
    e.mergeId = mergeId
    e.sourceProviders = sourceProviders
    e.payload = payload
    handler.onEvent(e)
    return
  }
  if (type === TYPE_EXEC_REPORT) {
    const payload = readExecReport(r)
    if (r.pos !== r.end) throw new Bad(`${r.end - r.pos} bytes left over after the record`)
    const e = source.acquireExecReport()
    commitEnvelope(env, e)
    e.payload = payload
    handler.onEvent(e)
    return
  }
  const payload = readEventPayload(r, type)!
  if (r.pos !== r.end) throw new Bad(`${r.end - r.pos} bytes left over after the record`)
  const e = source.acquireEvent()
  commitEnvelope(env, e)
  e.kind = payload._tag as EventKind
  e.payload = payload
  handler.onEvent(e)
}

/**
 * Decodes a frame: each valid record becomes an event taken from `source`
 * and handed to `handler.onEvent` (or a command to `onCommand`), in frame
 * order; each bad record is reported to `onError` and skipped. Returns the
 * number of records handed over. Never throws (a defect in a handler aside).
 */
export const decodeFrame = (data: Uint8Array, source: EventSource, handler: FrameHandler): number => {
  if (data.length < HEADER_LENGTH) {
    handler.onError(new MalformedBinaryFrame({ reason: `a frame of ${data.length} bytes is shorter than its header`, record: -1, offset: 0 }))
    return 0
  }
  if (data[0] !== BINARY_MAGIC) {
    handler.onError(new MalformedBinaryFrame({ reason: `not a binary frame (first byte ${data[0]})`, record: -1, offset: 0 }))
    return 0
  }
  if (data[1] !== BINARY_FORMAT_VERSION) {
    handler.onError(new UnsupportedFrameVersion({ version: data[1]! }))
    return 0
  }
  if (data.length > MAX_BINARY_FRAME_LENGTH) {
    handler.onError(new MalformedBinaryFrame({ reason: `frame too large: ${data.length} bytes (at most ${MAX_BINARY_FRAME_LENGTH})`, record: -1, offset: 0 }))
    return 0
  }
  // one reader per frame: a handler may decode another frame before this one is done
  const r = new Reader(data)
  const env: EnvelopeFields = {
    traceId: "",
    provider: "",
    symbol: "",
    seqProvider: undefined,
    epoch: undefined,
    ingestTs: 0,
    routingVersion: 0
  }
  const count = u32At(data, 2)
  // a record takes at least two bytes (its length and its type)
  if (count > MAX_FRAME_RECORDS || count * 2 > data.length - HEADER_LENGTH) {
    handler.onError(new MalformedBinaryFrame({ reason: `a count of ${count} records cannot fit in ${data.length} bytes`, record: -1, offset: 2 }))
    return 0
  }
  r.pos = HEADER_LENGTH
  let handed = 0
  for (let i = 0; i < count; i++) {
    const at = r.pos
    r.end = data.length
    let length: number
    try {
      length = r.uv("record length")
      if (length > data.length - r.pos) throw new Bad(`record length ${length} runs past the end of the frame (${data.length - r.pos} bytes left)`)
    } catch (u) {
      // the frame's framing is gone: the records after this one cannot be found
      handler.onError(new MalformedBinaryFrame({ reason: u instanceof Bad ? u.reason : String(u), record: i, offset: at }))
      return handed
    }
    const next = r.pos + length
    r.end = next
    try {
      readRecord(r, env, source, handler)
      handed++
    } catch (u) {
      if (!(u instanceof Bad)) throw u
      handler.onError(new MalformedBinaryFrame({ reason: u.reason, record: i, offset: r.pos }))
    }
    r.pos = next
  }
  if (r.pos !== data.length) {
    handler.onError(new MalformedBinaryFrame({ reason: `${data.length - r.pos} bytes after the last record`, record: -1, offset: r.pos }))
  }
  return handed
}

/** Decodes a frame of exactly one event: the event, or the first error. */
export const decodeEvent = (data: Uint8Array, source: EventSource = unpooled): Either.Either<AnyEvent, BinaryFrameError> => {
  if (data.length >= HEADER_LENGTH && data[0] === BINARY_MAGIC && data[1] === BINARY_FORMAT_VERSION) {
    const count = u32At(data, 2)
    if (count !== 1) return Either.left(new MalformedBinaryFrame({ reason: `${count} records where one event is expected`, record: -1, offset: 2 }))
  }
  let event: AnyEvent | undefined
  let error: BinaryFrameError | undefined
  decodeFrame(data, source, {
    onEvent: (e) => {
      event ??= e
    },
    onError: (e) => {
      error ??= e
    }
  })
  if (event !== undefined) return Either.right(event)
  return Either.left(error ?? new MalformedBinaryFrame({ reason: "a frame without records", record: -1, offset: 2 }))
}

/**
 * Decodes a frame of one control command: the command, its typed rejection
 * (`InvalidCommand`, as on the JSON path), or the frame's error.
 */
export const decodeCommandFrame = (
  data: Uint8Array
): Either.Either<ControlCommand, InvalidCommand | BinaryFrameError> => {
  let result: Either.Either<ControlCommand, InvalidCommand | BinaryFrameError> | undefined
  decodeFrame(data, unpooled, {
    onEvent: () => {
      result ??= Either.left(new MalformedBinaryFrame({ reason: "an event record where a command is expected", record: 0, offset: 0 }))
    },
    onCommand: (c) => {
      result ??= Either.right(c)
    },
    onInvalidCommand: (invalid) => {
      result ??= Either.left(invalid)
    },
    onError: (e) => {
      result ??= Either.left(e)
    }
  })
  return result ?? Either.left(new MalformedBinaryFrame({ reason: "a frame without records", record: -1, offset: 2 }))
}

/** The version of the event contract decoded events carry. */
export const DECODED_EVENT_VERSION = EVENT_SCHEMA_VERSION

export { InvalidCommand }
