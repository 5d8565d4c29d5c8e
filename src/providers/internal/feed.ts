/**
 * What every provider shares: the contract it meets (`ProviderShape`, which
 * `Provider.ts` exports with the port), turning venue data into pooled canonical events
 * (per-stream contiguous `seqProvider`, `ingestTs` from the Clock, a cheap
 * unique `traceId`), the plain-number counters of `stats()`, and the handling
 * of refused frames (typed error, counter per reason, dead-letter entry, a
 * rate-limited and truncated log line).
 *
 * What a frame must be before any adapter parses it: at most the venue's
 * frame limit in bytes (`frameTooLarge`); and what its numbers must be:
 * prices and quantities `Decimal` strings, sequence numbers and ids integers
 * that a JSON number holds exactly (`SafeInteger`: a sequence number beyond
 * 2^53 - 1 would silently round, and an adapter would chain on a wrong value).
 */
import type { Clock, Scope } from "effect"
import { Effect, Schema } from "effect"
import { jsonNestedDeeperThan } from "../../../schema/Bounds.js"
import { MalformedFrame } from "../../../schema/Errors.js"
import type { EventPayload, MarketKind } from "../../../schema/Event.js"
import type { Fault } from "../../../schema/ProviderConfig.js"
import type { DeadLetter } from "../../DeadLetter.js"
import type { Event } from "../../Event.js"
import { generationOf, type Pool } from "../../Pool.js"
import type { Recycler } from "../../Recycler.js"

export type Sink = (event: Event) => Effect.Effect<void>

export interface BookStatus {
  readonly symbol: string
  readonly state: "consistent" | "stale"
  readonly reason?: string
}

export interface ProviderStatus {
  readonly provider: string
  readonly connected: boolean
  readonly books: ReadonlyArray<BookStatus>
  readonly stats: ProviderStats
}

export interface ProviderShape {
  /** e.g. "binance", "sim-a" */
  readonly name: string
  /** Canonical symbols, e.g. "BTC-USDT". */
  readonly symbols: ReadonlyArray<string>
  /**
   * Runs the feed until interrupted. Each event is acquired from the Pool,
   * filled, and handed to `sink`; from then on the sink owns it (never touch
   * it again).
   */
  readonly run: (sink: Sink) => Effect.Effect<never, never, Scope.Scope>
  readonly status: Effect.Effect<ProviderStatus>
  readonly stats: () => ProviderStats
  /** Fault injection, where the provider supports it (simulated venues). */
  readonly inject?: (fault: Fault, symbol?: string) => Effect.Effect<void>
}

/** A non-negative integer that a JSON number holds exactly (at most 2^53 - 1). */
export const SafeInteger = Schema.Number.pipe(
  Schema.int(),
  Schema.between(0, Number.MAX_SAFE_INTEGER, { message: () => "an integer between 0 and 2^53 - 1" })
)

/**
 * The frame's size in UTF-8 bytes when it is over `limit`, undefined when it
 * is not. Cheap for ordinary frames: a UTF-16 unit is at most 3 UTF-8 bytes,
 * so only a frame longer than a third of the limit is measured.
 */
const frameTooLarge = (data: string, limit: number): number | undefined => {
  if (data.length * 3 <= limit) return undefined
  const bytes = Buffer.byteLength(data, "utf8")
  return bytes > limit ? bytes : undefined
}

/**
 * Deepest nesting of arrays and objects a venue frame may have. Real frames
 * nest at most 5 deep; a deeper one is refused before parsing, so no frame
 * can overflow the stack later (formatting a decode error of a value nested
 * 10,000 deep does).
 */
const MAX_FRAME_DEPTH = 16

/**
 * Why a frame is refused before it is parsed, if it is: over `limit` bytes
 * ("frame_too_large") or nested deeper than `MAX_FRAME_DEPTH` ("too_deep").
 */
export const frameProblem = (
  data: string,
  limit: number
): { readonly reason: "frame_too_large" | "too_deep"; readonly detail: string } | undefined => {
  const size = frameTooLarge(data, limit)
  if (size !== undefined) return { reason: "frame_too_large", detail: `${size} bytes, limit ${limit}` }
  if (jsonNestedDeeperThan(data, MAX_FRAME_DEPTH)) return { reason: "too_deep", detail: `nested deeper than ${MAX_FRAME_DEPTH} levels` }
  return undefined
}

/**
 * Default frame limits, in UTF-8 bytes. Real traffic fits with room to spare:
 * a Kraken book snapshot of 1,000 levels a side is about 80 KB, Binance and
 * OKX diffs are tens of KB, Binance's default 1,000-level REST snapshot
 * about 50 KB, a Coinbase level2 snapshot (the whole book) about
 * 1 to 1.5 MB for the busiest products. Binance and OKX REST snapshots grow
 * with the configured `snapshotLimit`: their limit is at least
 * `restSnapshotBytes(snapshotLimit)`. Handling the largest accepted frame is
 * measured by `npm run bench:frames` (BENCHMARKS.md, "Hostile frames").
 */
export const defaultMaxFrameBytes = {
  simulated: 64 * 1024,
  binance: 128 * 1024,
  kraken: 256 * 1024,
  okx: 256 * 1024,
  coinbase: 2 * 1024 * 1024
} as const

/** Room for a REST snapshot of `levels` levels a side (64 bytes a level, twice what venues write). */
export const restSnapshotBytes = (levels: number): number => levels * 2 * 64

/** Refused frames are logged at most once per this interval per provider; the line counts the ones not logged. */
const MALFORMED_LOG_INTERVAL_MS = 1_000
/** Characters of a refused frame (and of the reason's detail) that a log line shows. */
export const MALFORMED_LOG_CHARS = 256

const clip = (text: string, max: number): string =>
  text.length > max ? `${text.slice(0, max)}... (${text.length} chars)` : text

/** Plain-number counters of one provider. */
export interface ProviderStats {
  /** Frames received (WebSocket messages, or generated frames of a simulated venue). */
  readonly frames: number
  /** Events handed to the sink, by kind. */
  readonly events: number
  readonly eventsByKind: Readonly<Record<MarketKind, number>>
  /** Refused frames by reason (invalid_json, schema, unknown_message, ...). */
  readonly malformed: Readonly<Record<string, number>>
  readonly malformedTotal: number
  /** Error messages sent by the venue itself. */
  readonly venueErrors: number
  readonly gaps: number
  readonly checksumMismatches: number
  readonly crossedBooks: number
  /** Books resynchronised from a fresh snapshot after they went stale. */
  readonly resyncs: number
  readonly snapshotFetches: number
  readonly snapshotFailures: number
  /** Requests the venue refused as too many (HTTP 429/418 or a rate-limit body). */
  readonly rateLimited: number
  /** Requests held back by the request budget or a venue-imposed cool-down. */
  readonly requestsDelayed: number
  readonly connects: number
  readonly reconnects: number
  readonly disconnects: number
  readonly stalls: number
  readonly bufferOverflows: number
}

export class Counters {
  frames = 0
  events = 0
  readonly eventsByKind: Record<MarketKind, number> = { trade: 0, ticker: 0, book_snapshot: 0, book_delta: 0 }
  readonly malformed: Record<string, number> = {}
  malformedTotal = 0
  venueErrors = 0
  gaps = 0
  checksumMismatches = 0
  crossedBooks = 0
  resyncs = 0
  snapshotFetches = 0
  snapshotFailures = 0
  rateLimited = 0
  requestsDelayed = 0
  connects = 0
  reconnects = 0
  disconnects = 0
  stalls = 0
  bufferOverflows = 0

  snapshot(): ProviderStats {
    return {
      frames: this.frames,
      events: this.events,
      eventsByKind: { ...this.eventsByKind },
      malformed: { ...this.malformed },
      malformedTotal: this.malformedTotal,
      venueErrors: this.venueErrors,
      gaps: this.gaps,
      checksumMismatches: this.checksumMismatches,
      crossedBooks: this.crossedBooks,
      resyncs: this.resyncs,
      snapshotFetches: this.snapshotFetches,
      snapshotFailures: this.snapshotFailures,
      rateLimited: this.rateLimited,
      requestsDelayed: this.requestsDelayed,
      connects: this.connects,
      reconnects: this.reconnects,
      disconnects: this.disconnects,
      stalls: this.stalls,
      bufferOverflows: this.bufferOverflows
    }
  }
}

/** The services a provider reads once, at construction. */
export interface FeedServices {
  readonly pool: Pool
  readonly recycler: Recycler
  readonly deadLetter: DeadLetter
}

export interface Emitter {
  /** Acquires an event, fills it and hands it to the sink, which owns it from then on. */
  readonly emit: (symbol: string, kind: MarketKind, payload: EventPayload) => Effect.Effect<void>
  /** Refuses a frame: typed error, counter, dead-letter entry. Never fails. */
  readonly malformed: (reason: string, raw: string, detail?: string) => Effect.Effect<void>
  /** Epoch milliseconds from the Clock. */
  readonly nowMillis: () => number
}

export const makeEmitter = (
  provider: string,
  services: FeedServices,
  counters: Counters,
  clock: Clock.Clock,
  sink: Sink
): Emitter => {
  const { deadLetter, pool, recycler } = services
  const seqs = new Map<string, number>()
  let trace = 0

  const emit = (symbol: string, kind: MarketKind, payload: EventPayload): Effect.Effect<void> =>
    Effect.uninterruptibleMask((restore) => {
      const key = `${symbol}|${kind}`
      const seq = (seqs.get(key) ?? 0) + 1
      seqs.set(key, seq)
      const ev = pool.acquireEvent()
      const gen = generationOf(ev)
      ev.provider = provider
      ev.symbol = symbol
      ev.kind = kind
      ev.payload = payload
      ev.traceId = `${provider}-${++trace}`
      ev.ingestTs = Number(clock.unsafeCurrentTimeNanos() / 1000n)
      ev.seqProvider = seq
      counters.events++
      counters.eventsByKind[kind]++
      let handed = false
      return restore(Effect.suspend(() => {
        handed = true
        return sink(ev)
      })).pipe(Effect.onInterrupt(() => handed ? Effect.void : Effect.sync(() => recycler.unsafeRecycle(ev, gen))))
    })

  // a flood of bad frames must not become a flood of log lines
  let lastLogAt = Number.NEGATIVE_INFINITY
  let unlogged = 0

  const malformed = (reason: string, raw: string, detail?: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      counters.malformed[reason] = (counters.malformed[reason] ?? 0) + 1
      counters.malformedTotal++
      const now = clock.unsafeCurrentTimeMillis()
      deadLetter.unsafeRecord(provider, reason, raw, now)
      if (now - lastLogAt < MALFORMED_LOG_INTERVAL_MS) {
        unlogged++
        return Effect.void
      }
      lastLogAt = now
      const suppressed = unlogged
      unlogged = 0
      const error = new MalformedFrame({
        source: provider,
        reason: detail === undefined ? reason : `${reason}: ${clip(detail, MALFORMED_LOG_CHARS)}`,
        raw: clip(raw, MALFORMED_LOG_CHARS)
      })
      return Effect.logWarning("malformed frame refused", error).pipe(
        Effect.annotateLogs({ provider, reason, refusedSinceLastLog: suppressed })
      )
    })

  return { emit, malformed, nowMillis: () => clock.unsafeCurrentTimeMillis() }
}
