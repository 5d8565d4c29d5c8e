/**
 * Per-stream ordering, keyed by (provider, symbol, kind). No global ordering.
 *
 * - Events with `seqProvider` are released in sequence. An event ahead of the
 *   next expected sequence waits in a bounded buffer; a gap waits up to the
 *   lateness tolerance, then is skipped (counted). An event at or below the
 *   last released sequence is a duplicate: dropped and counted.
 * - Events without a sequence are released in `ingestTs` order: one older
 *   than the last released for its stream is dropped as late (counted).
 * - A stream's state outlives its buffer: the next expected sequence is kept
 *   when the buffer empties, so a late duplicate after a quiet spell is still
 *   recognised.
 *
 * Time is passed in (milliseconds), so the owner decides which clock drives it;
 * `accept` reads it only when a gap opens.
 */
import type { AnyEvent } from "../Event.js"

export interface OrderingOptions {
  /** How long a gap may hold later events back before it is skipped. */
  readonly latenessMs: number
  /** Events buffered per stream behind a gap; when full, the gap is skipped at once. */
  readonly bufferSize: number
}

interface StreamState {
  /** The next sequence expected (after the first sequenced event). */
  next: number
  /** Events ahead of `next`, sorted by sequence. */
  readonly buffer: Array<AnyEvent>
  deadline: number | undefined
  lastIngestTs: number
}

export interface OrderingStats {
  /** Sequences given up on after waiting (or on a full buffer). */
  gapsSkipped: number
  /** Times a gap was skipped. */
  gapEvents: number
  duplicates: number
  /** Unsequenced events older than their stream's last released one. */
  late: number
  /** Events currently held behind gaps. */
  buffered: number
}

export class StreamOrdering {
  private readonly streams = new Map<string, Map<string, Map<string, StreamState>>>()
  private readonly waiting = new Set<StreamState>()
  readonly stats: OrderingStats = { gapsSkipped: 0, gapEvents: 0, duplicates: 0, late: 0, buffered: 0 }

  /** `drop` receives the events that must not be delivered (the owner recycles them). */
  constructor(readonly options: OrderingOptions, private readonly drop: (e: AnyEvent) => void) {}

  private state(e: AnyEvent): StreamState {
    let bySymbol = this.streams.get(e.provider)
    if (bySymbol === undefined) this.streams.set(e.provider, bySymbol = new Map())
    let byKind = bySymbol.get(e.symbol)
    if (byKind === undefined) bySymbol.set(e.symbol, byKind = new Map())
    let s = byKind.get(e.kind)
    if (s === undefined) {
      byKind.set(e.kind, s = { next: -1, buffer: [], deadline: undefined, lastIngestTs: -Infinity })
    }
    return s
  }

  /**
   * Takes ownership of `e`. Returns true when `e` is in order and nothing
   * else is released with it (the fast path: the caller delivers `e`).
   * Otherwise any events that may now be released are pushed to `out`, in
   * order; events that must not be delivered go to `drop`.
   */
  accept(e: AnyEvent, nowMs: () => number, out: Array<AnyEvent>): boolean {
    const s = this.state(e)
    const seq = e.seqProvider
    if (seq === undefined) {
      if (e.ingestTs < s.lastIngestTs) {
        this.stats.late++
        this.drop(e)
        return false
      }
      s.lastIngestTs = e.ingestTs
      return true
    }
    if (s.next === -1 || (seq === s.next && s.buffer.length === 0)) {
      s.next = seq + 1
      return true
    }
    if (seq < s.next) {
      this.stats.duplicates++
      this.drop(e)
      return false
    }
    if (seq === s.next) {
      s.next = seq + 1
      out.push(e)
      this.releaseRun(s, out)
      return false
    }
    // ahead of the next expected sequence: hold it behind the gap
    const buf = s.buffer
    let i = buf.length
    while (i > 0 && buf[i - 1]!.seqProvider! > seq) i--
    if (i > 0 && buf[i - 1]!.seqProvider === seq) {
      this.stats.duplicates++
      this.drop(e)
      return false
    }
    buf.splice(i, 0, e)
    this.stats.buffered++
    if (buf.length > this.options.bufferSize) {
      this.skipGap(s, out)
    } else if (s.deadline === undefined) {
      s.deadline = nowMs() + this.options.latenessMs
      this.waiting.add(s)
    }
    return false
  }

  /** Skips every gap whose lateness has run out at `nowMs`, releasing what waited behind it. */
  expire(nowMs: number, out: Array<AnyEvent>): void {
    for (const s of this.waiting) {
      if (s.deadline !== undefined && s.deadline <= nowMs) {
        this.skipGap(s, out)
        if (s.buffer.length > 0) {
          s.deadline = nowMs + this.options.latenessMs
        }
      }
    }
  }

  /** The earliest gap deadline, if any gap is waiting. */
  nextDeadline(): number | undefined {
    let min: number | undefined
    for (const s of this.waiting) {
      if (s.deadline !== undefined && (min === undefined || s.deadline < min)) min = s.deadline
    }
    return min
  }

  /** Hands back every buffered event (shutdown); the caller recycles them. */
  drain(out: Array<AnyEvent>): void {
    for (const s of this.waiting) {
      for (const e of s.buffer) out.push(e)
      this.stats.buffered -= s.buffer.length
      s.buffer.length = 0
      s.deadline = undefined
    }
    this.waiting.clear()
  }

  private skipGap(s: StreamState, out: Array<AnyEvent>): void {
    const first = s.buffer[0]
    if (first === undefined) return
    this.stats.gapsSkipped += first.seqProvider! - s.next
    this.stats.gapEvents++
    s.next = first.seqProvider!
    this.releaseRun(s, out)
  }

  /** Releases the run of consecutive sequences at the head of the buffer. */
  private releaseRun(s: StreamState, out: Array<AnyEvent>): void {
    const buf = s.buffer
    let n = 0
    while (n < buf.length && buf[n]!.seqProvider === s.next) {
      out.push(buf[n]!)
      s.next++
      n++
    }
    if (n > 0) {
      buf.splice(0, n)
      this.stats.buffered -= n
    }
    if (buf.length === 0) {
      s.deadline = undefined
      this.waiting.delete(s)
    }
  }
}
