/**
 * Book bookkeeping shared by the venue adapters: one record per symbol, the
 * transitions consistent -> stale (announced once, at once) and -> consistent
 * (a full snapshot), the periodic refresh, the sync from a REST snapshot, and
 * the books' part of a provider's status.
 */
import type { Either, ParseResult } from "effect"
import { Effect } from "effect"
import type { BookIntegrityError, BookLevel } from "../../OrderBook.js"
import { deltaPayload, OrderBook, staleReason, staleSnapshot } from "../../OrderBook.js"
import type { ProviderStatus } from "./feed.js"
import type { Counters } from "./feed.js"
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
  /**
   * The first venue sequence of diffs that changed nothing within the
   * published view (so were not published): the next published delta covers
   * them from here.
   */
  unpublishedFirst: number | undefined
  /**
   * Snapshot fetches (or resubscriptions) since the book was last consistent:
   * each one after the first waits its backoff delay.
   */
  attempts: number
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
    syncs: 0,
    unpublishedFirst: undefined,
    attempts: 0
  }))

/** What `status` reports: each book's state (with the reason it is stale) and the counters. */
export const venueStatus = (
  provider: string,
  connected: boolean,
  books: ReadonlyArray<{ readonly symbol: string; readonly book: OrderBook }>,
  counters: Counters
): ProviderStatus => ({
  provider,
  connected,
  books: books.map((sb) => ({
    symbol: sb.symbol,
    state: sb.book.state,
    ...(sb.book.staleReason === undefined ? {} : { reason: sb.book.staleReason })
  })),
  stats: counters.snapshot()
})

/** On a new connection every book waits for a fresh snapshot: nothing buffered or fetched before it counts. */
export const awaitSnapshot = <D>(sb: SymbolBook<D>): void => {
  sb.phase = "buffering"
  sb.buffer = []
  sb.fetching = false
  sb.generation++
  sb.attempts = 0
}

/** Marks the book stale and, if consumers saw it consistent, tells them at once. */
export const goStale = <D>(rt: VenueRuntime, sb: SymbolBook<D>, reason: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const wasConsistent = sb.book.state === "consistent"
    sb.book.markStale(reason)
    sb.book.clear()
    sb.unpublishedFirst = undefined
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
    sb.unpublishedFirst = undefined
    sb.attempts = 0
    if (sb.syncs++ > 0) rt.counters.resyncs++
    return rt.emitter.emit(sb.symbol, "book_snapshot", sb.book.publishSnapshot(depth, checksum?.(sb.book)))
  })

/**
 * Publishes what a diff just applied to a synced book changed within the top
 * `depth` levels consumers hold: levels changed, added or moved up into view,
 * and removals for levels that left it (see `OrderBook.viewDelta`). A diff
 * that changed nothing within view publishes nothing; the next published
 * delta's `firstSeq` then reaches back to it, so the venue sequence range
 * stays unbroken.
 */
export const publishDelta = <D>(
  rt: VenueRuntime,
  sb: SymbolBook<D>,
  depth: number,
  seq?: { readonly first?: number | undefined; readonly last?: number | undefined; readonly checksum?: number | undefined }
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const view = sb.book.viewDelta(depth)
    if (view.bids.length === 0 && view.asks.length === 0) {
      if (sb.unpublishedFirst === undefined) sb.unpublishedFirst = seq?.first
      return Effect.void
    }
    const first = sb.unpublishedFirst ?? seq?.first
    sb.unpublishedFirst = undefined
    return rt.emitter.emit(sb.symbol, "book_delta", deltaPayload(view.bids, view.asks, { ...seq, first }))
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
        ? Effect.suspend(() => {
          sb.unpublishedFirst = undefined
          return rt.emitter.emit(sb.symbol, "book_snapshot", sb.book.publishSnapshot(depth, checksum?.(sb.book)))
        })
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

/** Books synchronised from a REST snapshot, with the venue's diffs buffered while it is fetched. */
export interface RestSync<D> {
  /** Fetches a snapshot for the book's current generation (after a backoff delay when it is not the first since the book was consistent). */
  readonly start: (rt: VenueRuntime, sb: SymbolBook<D>) => Effect.Effect<void>
  /** The buffered diffs do not chain onto the snapshot: it is abandoned and another fetched. */
  readonly restart: (rt: VenueRuntime, sb: SymbolBook<D>) => Effect.Effect<void>
  /** Keeps a diff until the snapshot arrives, fetching one if none is on its way; a full buffer starts over. */
  readonly buffer: (rt: VenueRuntime, sb: SymbolBook<D>, diff: D) => Effect.Effect<void>
  /**
   * A fetched body: ignored unless the book still waits for this generation's
   * snapshot; refused as `snapshot_schema` and fetched again; or installed.
   */
  readonly receive: (rt: VenueRuntime, sb: SymbolBook<D>, generation: number, body: string) => Effect.Effect<void>
}

export const makeRestSync = <D, S>(options: {
  readonly maxBuffered: number
  readonly url: (sb: SymbolBook<D>) => string
  readonly decode: (body: string) => Either.Either<S, ParseResult.ParseError>
  /** Installs a decoded snapshot and applies what was buffered after it. */
  readonly install: (rt: VenueRuntime, sb: SymbolBook<D>, snapshot: S) => Effect.Effect<void>
}): RestSync<D> => {
  const start = (rt: VenueRuntime, sb: SymbolBook<D>): Effect.Effect<void> =>
    Effect.suspend(() => {
      sb.fetching = true
      return rt.fetchSnapshot(sb.symbol, sb.generation, options.url(sb), sb.attempts++)
    })

  const restart = (rt: VenueRuntime, sb: SymbolBook<D>): Effect.Effect<void> =>
    Effect.suspend(() => {
      sb.phase = "buffering"
      sb.generation++
      return start(rt, sb)
    })

  const buffer = (rt: VenueRuntime, sb: SymbolBook<D>, diff: D): Effect.Effect<void> =>
    Effect.suspend(() => {
      sb.phase = "buffering"
      if (sb.buffer.length >= options.maxBuffered) {
        rt.counters.bufferOverflows++
        sb.buffer = []
        sb.generation++
        sb.fetching = false
      }
      sb.buffer.push(diff)
      return sb.fetching ? Effect.void : start(rt, sb)
    })

  const receive = (rt: VenueRuntime, sb: SymbolBook<D>, generation: number, body: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (sb.generation !== generation || sb.phase !== "buffering") return Effect.void
      sb.fetching = false
      const decoded = options.decode(body)
      return decoded._tag === "Left"
        ? rt.emitter.malformed("snapshot_schema", body, decoded.left.message).pipe(Effect.zipRight(start(rt, sb)))
        : options.install(rt, sb, decoded.right)
    })

  return { start, restart, buffer, receive }
}

export const levels = (pairs: ReadonlyArray<readonly [string, string, ...Array<unknown>]>): Array<BookLevel> =>
  pairs.map((p) => ({ price: p[0], qty: p[1] }))

/** Parses JSON (with `JSON.parse` unless told otherwise), or says why not. */
export const parseJson = (
  text: string,
  parse: (text: string) => unknown = JSON.parse
): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string } => {
  try {
    return { ok: true, value: parse(text) }
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) }
  }
}

/** An ISO 8601 time in epoch milliseconds; the fallback when there is none or it does not parse. */
export const isoMillis = (iso: string | undefined, fallback: number): number => {
  if (iso === undefined) return fallback
  const t = Date.parse(iso)
  return Number.isNaN(t) ? fallback : t
}

export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
