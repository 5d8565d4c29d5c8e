/**
 * Book bookkeeping shared by the venue adapters: one record per symbol, the
 * transitions consistent -> stale (announced once, at once) and -> consistent
 * (a full snapshot), and the periodic refresh.
 */
import { Effect } from "effect"
import type { BookIntegrityError, BookLevel } from "../../OrderBook.js"
import { krakenChecksum, OrderBook, staleReason, staleSnapshot } from "../../OrderBook.js"
import type { VenueRuntime } from "./venue.js"

export interface SymbolBook<D> {
  /** Canonical symbol. */
  readonly symbol: string
  /** The venue's spelling. */
  readonly venueSymbol: string
  readonly book: OrderBook
  /** idle: not connected; buffering: diffs kept while a snapshot is fetched; synced: diffs applied. */
  phase: "idle" | "buffering" | "synced"
  buffer: Array<D>
  /** Bumped whenever a sync attempt is abandoned; stale fetch results are ignored. */
  generation: number
  fetching: boolean
  /** Completed syncs; every one after the first is a resync. */
  syncs: number
}

export const makeSymbolBooks = <D>(
  symbols: ReadonlyArray<string>,
  venueSymbol: (canonical: string) => string,
  maxDepth = Number.POSITIVE_INFINITY
): ReadonlyArray<SymbolBook<D>> =>
  symbols.map((symbol) => ({
    symbol,
    venueSymbol: venueSymbol(symbol),
    book: new OrderBook(symbol, maxDepth),
    phase: "idle",
    buffer: [],
    generation: 0,
    fetching: false,
    syncs: 0
  }))

/** Marks the book stale and, if consumers saw it consistent, tells them at once. */
export const goStale = <D>(rt: VenueRuntime, sb: SymbolBook<D>, reason: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const wasConsistent = sb.book.state === "consistent"
    sb.book.markStale(reason)
    sb.book.clear()
    sb.buffer = []
    sb.fetching = false
    sb.generation++
    return wasConsistent ? rt.emitter.emit(sb.symbol, "book_snapshot", staleSnapshot(reason)) : Effect.void
  })

/** Counts an integrity error and marks the book stale with its reason. */
export const integrityFailure = <D>(rt: VenueRuntime, sb: SymbolBook<D>, e: BookIntegrityError): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (e._tag === "SequenceGap") rt.counters.gaps++
    else if (e._tag === "ChecksumMismatch") rt.counters.checksumMismatches++
    else rt.counters.crossedBooks++
    return goStale(rt, sb, staleReason(e)).pipe(
      Effect.zipRight(Effect.logWarning("book integrity lost; resynchronising").pipe(
        Effect.annotateLogs({ provider: e.provider, symbol: e.symbol, error: e.message })
      ))
    )
  })

/** Marks the book consistent and publishes a full snapshot of its top `depth` levels. */
export const goConsistent = <D>(
  rt: VenueRuntime,
  sb: SymbolBook<D>,
  depth: number,
  checksum?: (book: OrderBook) => number
): Effect.Effect<void> =>
  Effect.suspend(() => {
    sb.book.markConsistent()
    sb.phase = "synced"
    sb.buffer = []
    sb.fetching = false
    if (sb.syncs++ > 0) rt.counters.resyncs++
    return rt.emitter.emit(sb.symbol, "book_snapshot", sb.book.snapshot(depth, checksum?.(sb.book)))
  })

/** The periodic refresh: a consistent snapshot of every consistent book. */
export const refresh = <D>(
  rt: VenueRuntime,
  books: ReadonlyArray<SymbolBook<D>>,
  depth: number,
  checksum?: (book: OrderBook) => number
): Effect.Effect<void> =>
  Effect.forEach(
    books,
    (sb) =>
      sb.book.state === "consistent"
        ? rt.emitter.emit(sb.symbol, "book_snapshot", sb.book.snapshot(depth, checksum?.(sb.book)))
        : Effect.void,
    { discard: true }
  )

/** Every book stale on a dropped connection; fetches in flight abandoned. */
export const disconnectAll = <D>(
  rt: VenueRuntime,
  books: ReadonlyArray<SymbolBook<D>>,
  reason: string
): Effect.Effect<void> =>
  rt.cancelFetches.pipe(
    Effect.zipRight(Effect.forEach(books, (sb) =>
      goStale(rt, sb, `disconnected: ${reason}`).pipe(Effect.tap(() => {
        sb.phase = "idle"
      })), { discard: true }))
  )

export const levels = (pairs: ReadonlyArray<readonly [string, string, ...Array<unknown>]>): Array<BookLevel> =>
  pairs.map((p) => ({ price: p[0], qty: p[1] }))

export { krakenChecksum }

/** Parses JSON, or says why not. */
export const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) }
  }
}

export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
