/**
 * The provider-side order book: a snapshot plus diffs, kept in exact decimals.
 *
 * Levels keep the venue's own strings (checksums are computed over them) and
 * are ordered by exact decimal value (`decimal.js`), never by float. A book is
 * either consistent or explicitly stale with a reason; the adapters mark it
 * stale the moment a sequence gap or a checksum mismatch is seen, resync it
 * from a fresh snapshot and only then mark it consistent again.
 */
import { Data } from "effect"
import { Decimal as Dec } from "decimal.js"
import { crc32 } from "node:zlib"
import type { BookState, Decimal, Level } from "../schema/Event.js"
import { BookDelta, BookSnapshot } from "../schema/Event.js"

export type BookSide = "bid" | "ask"

/** One price level as the venue wrote it. */
export interface BookLevel {
  readonly price: string
  readonly qty: string
}

interface Entry {
  price: string
  qty: string
  readonly key: Dec
}

/** A diff that does not follow the last applied one. */
export class SequenceGap extends Data.TaggedError("SequenceGap")<{
  readonly provider: string
  readonly symbol: string
  readonly expected: string
  readonly received: string
}> {
  override get message(): string {
    return `sequence gap on ${this.provider} ${this.symbol}: expected ${this.expected}, received ${this.received}`
  }
}

/** The venue's checksum disagrees with the local book. */
export class ChecksumMismatch extends Data.TaggedError("ChecksumMismatch")<{
  readonly provider: string
  readonly symbol: string
  readonly expected: number
  readonly computed: number
}> {
  override get message(): string {
    return `checksum mismatch on ${this.provider} ${this.symbol}: venue ${this.expected}, local ${this.computed}`
  }
}

/** Best bid at or above best ask after applying a diff. */
export class CrossedBook extends Data.TaggedError("CrossedBook")<{
  readonly provider: string
  readonly symbol: string
  readonly bestBid: string
  readonly bestAsk: string
}> {
  override get message(): string {
    return `crossed book on ${this.provider} ${this.symbol}: bid ${this.bestBid} >= ask ${this.bestAsk}`
  }
}

export type BookIntegrityError = SequenceGap | ChecksumMismatch | CrossedBook

/** A stale reason from an integrity error. */
export const staleReason = (e: BookIntegrityError): string =>
  e._tag === "SequenceGap"
    ? `gap: expected ${e.expected}, received ${e.received}`
    : e._tag === "ChecksumMismatch"
    ? `checksum mismatch: venue ${e.expected}, local ${e.computed}`
    : `crossed: bid ${e.bestBid} >= ask ${e.bestAsk}`

const zeroPattern = /^[+-]?0*\.?0*$/

/** True for "0", "0.00000000", "0E-8", ... */
export const isZeroQty = (qty: string): boolean => zeroPattern.test(qty) || (/[eE]/.test(qty) && new Dec(qty).isZero())

export class OrderBook {
  private readonly bids: Array<Entry> = []
  private readonly asks: Array<Entry> = []
  state: BookState = "stale"
  staleReason: string | undefined = "not synchronised"
  /** The venue sequence of the last applied update (update id, seqId, sequence_num). */
  lastSeq: number | undefined = undefined

  constructor(readonly symbol: string, readonly maxDepth: number = Number.POSITIVE_INFINITY) {}

  get bidCount(): number {
    return this.bids.length
  }

  get askCount(): number {
    return this.asks.length
  }

  /** Replaces the whole book. */
  reset(bids: Iterable<BookLevel>, asks: Iterable<BookLevel>): void {
    this.bids.length = 0
    this.asks.length = 0
    for (const l of bids) this.set("bid", l.price, l.qty)
    for (const l of asks) this.set("ask", l.price, l.qty)
    this.truncate(this.maxDepth)
  }

  clear(): void {
    this.bids.length = 0
    this.asks.length = 0
  }

  /** Sets one level; a zero quantity removes it. */
  set(side: BookSide, price: string, qty: string): void {
    const list = side === "bid" ? this.bids : this.asks
    const key = new Dec(price)
    // bids descending, asks ascending
    let lo = 0
    let hi = list.length
    let found = -1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const c = key.cmp(list[mid].key)
      if (c === 0) {
        found = mid
        break
      }
      if (side === "bid" ? c > 0 : c < 0) hi = mid
      else lo = mid + 1
    }
    if (isZeroQty(qty)) {
      if (found >= 0) list.splice(found, 1)
      return
    }
    if (found >= 0) {
      list[found].qty = qty
      list[found].price = price
    } else {
      list.splice(lo, 0, { price, qty, key })
    }
  }

  /** Applies a diff in order, then truncates to the book's depth. */
  apply(bids: Iterable<BookLevel>, asks: Iterable<BookLevel>): void {
    for (const l of bids) this.set("bid", l.price, l.qty)
    for (const l of asks) this.set("ask", l.price, l.qty)
    this.truncate(this.maxDepth)
  }

  truncate(depth: number): void {
    if (this.bids.length > depth) this.bids.length = depth
    if (this.asks.length > depth) this.asks.length = depth
  }

  bestBid(): BookLevel | undefined {
    return this.bids[0]
  }

  bestAsk(): BookLevel | undefined {
    return this.asks[0]
  }

  isCrossed(): boolean {
    const b = this.bids[0]
    const a = this.asks[0]
    return b !== undefined && a !== undefined && b.key.cmp(a.key) >= 0
  }

  /** The best `n` levels per side: bids high to low, asks low to high. */
  levels(side: BookSide, n: number = Number.POSITIVE_INFINITY): ReadonlyArray<BookLevel> {
    const list = side === "bid" ? this.bids : this.asks
    const out: Array<BookLevel> = []
    const m = Math.min(n, list.length)
    for (let i = 0; i < m; i++) out.push({ price: list[i].price, qty: list[i].qty })
    return out
  }

  markStale(reason: string): void {
    this.state = "stale"
    this.staleReason = reason
  }

  markConsistent(): void {
    this.state = "consistent"
    this.staleReason = undefined
  }

  /** A canonical snapshot payload of the top `n` levels in the book's current state. */
  snapshot(n: number, checksum?: number): BookSnapshot {
    return BookSnapshot.make({
      bids: toLevels(this.bids, n),
      asks: toLevels(this.asks, n),
      state: this.state,
      ...(this.staleReason === undefined ? {} : { staleReason: this.staleReason }),
      ...(checksum === undefined ? {} : { checksum })
    }, true)
  }
}

const toLevels = (list: ReadonlyArray<Entry>, n: number): Array<Level> => {
  const m = Math.min(n, list.length)
  const out: Array<Level> = new Array(m)
  for (let i = 0; i < m; i++) out[i] = [list[i].price as Decimal, list[i].qty as Decimal]
  return out
}

/** A stale snapshot payload: no levels, the reason. A consumer must not use a stale book's levels. */
export const staleSnapshot = (reason: string): BookSnapshot =>
  BookSnapshot.make({ bids: [], asks: [], state: "stale", staleReason: reason }, true)

/** A canonical delta payload from venue levels. */
export const deltaPayload = (
  bids: ReadonlyArray<BookLevel>,
  asks: ReadonlyArray<BookLevel>,
  seq?: { readonly first?: number | undefined; readonly last?: number | undefined; readonly checksum?: number | undefined }
): BookDelta =>
  BookDelta.make({
    bids: bids.map((l) => [l.price as Decimal, l.qty as Decimal] as const),
    asks: asks.map((l) => [l.price as Decimal, l.qty as Decimal] as const),
    ...(seq?.first === undefined ? {} : { firstSeq: seq.first }),
    ...(seq?.last === undefined ? {} : { lastSeq: seq.last }),
    ...(seq?.checksum === undefined ? {} : { checksum: seq.checksum })
  }, true)

// ---------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------

/** Kraken's rendering of a price or quantity: the decimal point and leading zeros removed. */
const krakenDigits = (s: string): string => {
  const plain = /[eE]/.test(s) ? new Dec(s).toFixed() : s
  let out = ""
  let started = false
  for (let i = 0; i < plain.length; i++) {
    const ch = plain[i]
    if (ch === "." || ch === "-" || ch === "+") continue
    if (!started && ch === "0") continue
    started = true
    out += ch
  }
  return out
}

/** The string Kraken's CRC32 is computed over: top 10 asks low to high, then top 10 bids high to low. */
export const krakenChecksumInput = (book: OrderBook, levels = 10): string => {
  let s = ""
  for (const l of book.levels("ask", levels)) s += krakenDigits(l.price) + krakenDigits(l.qty)
  for (const l of book.levels("bid", levels)) s += krakenDigits(l.price) + krakenDigits(l.qty)
  return s
}

/** Kraken (WebSocket v1 and v2) book checksum: CRC32 as an unsigned 32-bit integer. */
export const krakenChecksum = (book: OrderBook, levels = 10): number => crc32(krakenChecksumInput(book, levels)) >>> 0

/**
 * OKX's legacy book checksum: CRC32 over "bid:size:ask:size:..." of the top 25
 * levels, interleaved, as a signed 32-bit integer. OKX now sends 0 in this
 * field; the adapter checks it only when it is not 0.
 */
export const okxChecksum = (book: OrderBook, levels = 25): number => {
  const bids = book.levels("bid", levels)
  const asks = book.levels("ask", levels)
  const parts: Array<string> = []
  for (let i = 0; i < levels; i++) {
    const b = bids[i]
    const a = asks[i]
    if (b !== undefined) parts.push(b.price, b.qty)
    if (a !== undefined) parts.push(a.price, a.qty)
  }
  return crc32(parts.join(":")) | 0
}
