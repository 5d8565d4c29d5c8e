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

/** Diffs longer than this are merged in one pass rather than set level by level. */
const BULK_THRESHOLD = 32

/** True for "0", "0.00000000", "0E-8", ... */
export const isZeroQty = (qty: string): boolean => zeroPattern.test(qty) || (/[eE]/.test(qty) && new Dec(qty).isZero())

export class OrderBook {
  private readonly bids: Array<Entry> = []
  private readonly asks: Array<Entry> = []
  state: BookState = "stale"
  staleReason: string | undefined = "not synchronised"
  /** The venue sequence of the last applied update (update id, seqId, sequence_num). */
  lastSeq: number | undefined = undefined
  /** The top levels consumers hold: the last published snapshot with the deltas since. */
  private view: { readonly n: number; readonly bids: Array<Entry>; readonly asks: Array<Entry> } | undefined = undefined

  constructor(readonly symbol: string, readonly maxDepth: number = Number.POSITIVE_INFINITY) {}

  get bidCount(): number {
    return this.bids.length
  }

  get askCount(): number {
    return this.asks.length
  }

  /**
   * Replaces the whole book. The levels are sorted once (O(n log n), whatever
   * their order) and cut to the book's depth before anything else is kept:
   * inserting them one by one would splice each into place, O(n^2) for a
   * snapshot in worst order (40,000 levels: seconds).
   */
  reset(bids: Iterable<BookLevel>, asks: Iterable<BookLevel>): void {
    this.bids.length = 0
    this.asks.length = 0
    this.mergeSide("bid", bids)
    this.mergeSide("ask", asks)
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

  /**
   * Applies a diff in order (a price given twice: the last one wins), then
   * truncates to the book's depth. A short diff is set level by level; a long
   * one is sorted and merged in one pass, so no diff costs more than
   * O(n + k log k).
   */
  apply(bids: Iterable<BookLevel>, asks: Iterable<BookLevel>): void {
    this.applySide("bid", bids)
    this.applySide("ask", asks)
    this.truncate(this.maxDepth)
  }

  private applySide(side: BookSide, levels: Iterable<BookLevel>): void {
    const arr = Array.isArray(levels) ? levels as ReadonlyArray<BookLevel> : Array.from(levels)
    if (arr.length <= BULK_THRESHOLD) {
      for (let i = 0; i < arr.length; i++) this.set(side, arr[i].price, arr[i].qty)
    } else {
      this.mergeSide(side, arr)
    }
  }

  /** Merges levels into one side: sorted once, the last of equal prices wins, zero removes. */
  private mergeSide(side: BookSide, levels: Iterable<BookLevel>): void {
    const better = side === "bid" ? (a: Dec, b: Dec) => b.cmp(a) : (a: Dec, b: Dec) => a.cmp(b)
    const updates: Array<Entry & { readonly order: number }> = []
    let order = 0
    for (const l of levels) updates.push({ price: l.price, qty: l.qty, key: new Dec(l.price), order: order++ })
    // equal prices: later first, so the first of a run is the one that wins
    updates.sort((a, b) => better(a.key, b.key) || b.order - a.order)
    const list = side === "bid" ? this.bids : this.asks
    const old = list.slice()
    list.length = 0
    const limit = this.maxDepth
    let i = 0
    let j = 0
    while ((i < old.length || j < updates.length) && list.length < limit) {
      const c = i >= old.length ? 1 : j >= updates.length ? -1 : better(old[i].key, updates[j].key)
      if (c < 0) {
        list.push(old[i++])
        continue
      }
      const u = updates[j++]
      while (j < updates.length && updates[j].key.eq(u.key)) j++
      if (c === 0) i++
      if (!isZeroQty(u.qty)) list.push({ price: u.price, qty: u.qty, key: u.key })
    }
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
    this.view = undefined
  }

  markConsistent(): void {
    this.state = "consistent"
    this.staleReason = undefined
  }

  /**
   * The snapshot consumers are sent: the top `n` levels, which from now on is
   * the view they hold and later deltas are computed against.
   */
  publishSnapshot(n: number, checksum?: number): BookSnapshot {
    this.view = { n, bids: copyTop(this.bids, n), asks: copyTop(this.asks, n) }
    return this.snapshot(n, checksum)
  }

  /**
   * What a consumer holding the published top-`n` view must apply to hold the
   * current top `n`: changed and new levels (a level that moved up into view
   * after a removal, too), and a "0" for each level that left the view
   * (removed, or pushed below level `n`). Removals come first. The view is
   * then the current top `n`. Empty on both sides when the diff changed
   * nothing within view.
   */
  viewDelta(n: number): { readonly bids: Array<BookLevel>; readonly asks: Array<BookLevel> } {
    const view = this.view !== undefined && this.view.n === n ? this.view : { n, bids: [], asks: [] }
    const bids = diffView("bid", view.bids, this.bids, n)
    const asks = diffView("ask", view.asks, this.asks, n)
    this.view = { n, bids: copyTop(this.bids, n), asks: copyTop(this.asks, n) }
    return { bids, asks }
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

const copyTop = (list: ReadonlyArray<Entry>, n: number): Array<Entry> => {
  const m = Math.min(n, list.length)
  const out: Array<Entry> = new Array(m)
  for (let i = 0; i < m; i++) out[i] = { price: list[i].price, qty: list[i].qty, key: list[i].key }
  return out
}

/** Both lists best first; walks them together, O(n). */
const diffView = (side: BookSide, before: ReadonlyArray<Entry>, after: ReadonlyArray<Entry>, n: number): Array<BookLevel> => {
  const removed: Array<BookLevel> = []
  const changed: Array<BookLevel> = []
  const m = Math.min(n, after.length)
  let i = 0
  let j = 0
  while (i < before.length || j < m) {
    let c: number
    if (i >= before.length) c = 1
    else if (j >= m) c = -1
    else if (before[i].price === after[j].price) c = 0
    else c = side === "bid" ? after[j].key.cmp(before[i].key) : before[i].key.cmp(after[j].key)
    if (c < 0) {
      removed.push({ price: before[i++].price, qty: "0" })
    } else if (c > 0) {
      changed.push({ price: after[j].price, qty: after[j++].qty })
    } else {
      const a = after[j++]
      const b = before[i++]
      if (a.qty !== b.qty || a.price !== b.price) changed.push({ price: a.price, qty: a.qty })
    }
  }
  return removed.length === 0 ? changed : changed.length === 0 ? removed : removed.concat(changed)
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
