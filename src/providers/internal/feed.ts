/**
 * What every provider shares: turning venue data into pooled canonical events
 * (per-stream contiguous `seqProvider`, `ingestTs` from the Clock, a cheap
 * unique `traceId`), the plain-number counters of `stats()`, and the handling
 * of refused frames (typed error, counter per reason, dead-letter entry).
 */
import type { Clock } from "effect"
import { Effect } from "effect"
import { MalformedFrame } from "../../../schema/Errors.js"
import type { EventPayload, MarketKind } from "../../../schema/Event.js"
import type { DeadLetter } from "../../DeadLetter.js"
import type { Event } from "../../Event.js"
import type { Pool } from "../../Pool.js"
import type { Recycler } from "../../Recycler.js"

export type Sink = (event: Event) => Effect.Effect<void>

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
      })).pipe(Effect.onInterrupt(() => handed ? Effect.void : Effect.sync(() => recycler.unsafeRecycle(ev))))
    })

  const malformed = (reason: string, raw: string, detail?: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      counters.malformed[reason] = (counters.malformed[reason] ?? 0) + 1
      counters.malformedTotal++
      deadLetter.unsafeRecord(provider, reason, raw, clock.unsafeCurrentTimeMillis())
      const error = new MalformedFrame({ source: provider, reason: detail === undefined ? reason : `${reason}: ${detail}`, raw: raw.length > 512 ? raw.slice(0, 512) : raw })
      return Effect.logDebug("frame refused").pipe(
        Effect.annotateLogs({ provider, reason, error: error.reason })
      )
    })

  return { emit, malformed, nowMillis: () => clock.unsafeCurrentTimeMillis() }
}
