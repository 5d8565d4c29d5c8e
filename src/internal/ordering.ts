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
 * - A stream belongs to one feed epoch (the run id its feed stamps on every
 *   event, `epoch`). When an event carries another epoch, the feed restarted
 *   and numbers from its own start again: whatever waited behind a gap is
 *   released, and the stream starts over from this event (counted).
 * - A sequence more than `jumpWindow` away from the next expected one (ahead
 *   or behind) is suspect: dropped and counted, never taken as the new truth,
 *   so one forged or corrupt frame (seq 999,999,999) cannot silence the real
 *   feed. Only `resyncAfter` suspect events in a row, each within the window of
 *   the first, with no in-window event between them, resynchronise the stream
 *   at the new numbering (counted): a feed that really renumbered is followed,
 *   at the cost of the events before the confirmation; an in-window event
 *   breaks the run.
 * - The same holds for a stream without sequences and its ingest times: an
 *   event older than the stream's last released one by more than
 *   `ingestWindowUs` (a forged frame from the far future was released before
 *   it, or the feed's clock was set back) is suspect rather than late, and
 *   `resyncAfter` such events in a row move the stream to their time, so one
 *   frame stamped in the year 3000 cannot silence the stream for good.
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
  /** A sequence farther than this from the next expected one is suspect. */
  readonly jumpWindow: number
  /** Suspect events in a row (consistent among themselves) that resynchronise the stream. */
  readonly resyncAfter: number
  /** How far (microseconds) an unsequenced event may be older than its stream's latest before it is suspect (default 60 s). */
  readonly ingestWindowUs?: number
}

/** What the owner may want to log: a suspect jump or a resynchronisation, rarely (they are counted anyway). */
export interface OrderingNotice {
  readonly what: "suspect_jump" | "resync" | "epoch_reset"
  readonly provider: string
  readonly symbol: string
  readonly kind: string
  readonly seq: number | undefined
  /** The next sequence the stream expected. */
  readonly expected: number
}

interface StreamState {
  /** The next sequence expected (after the first sequenced event). */
  next: number
  /** Events ahead of `next`, sorted by sequence. */
  readonly buffer: Array<AnyEvent>
  deadline: number | undefined
  lastIngestTs: number
  /** The feed epoch the stream's state belongs to. */
  epoch: string | undefined
  /** The run of suspect sequences seen in a row: its first and last sequence and length (0: none). */
  suspectFirst: number
  suspectLast: number
  suspectRun: number
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
  /** Events dropped because their sequence jumped beyond the window. */
  suspectJumps: number
  /** Streams resynchronised at a new numbering after a run of suspect sequences. */
  resyncs: number
  /** Streams started over because their feed epoch changed (a feed restarted). */
  epochResets: number
}

export class StreamOrdering {
  private readonly streams = new Map<string, Map<string, Map<string, StreamState>>>()
  private readonly waiting = new Set<StreamState>()
  private readonly ingestWindowUs: number
  readonly stats: OrderingStats = {
    gapsSkipped: 0,
    gapEvents: 0,
    duplicates: 0,
    late: 0,
    buffered: 0,
    suspectJumps: 0,
    resyncs: 0,
    epochResets: 0
  }

  /**
   * `drop` receives the events that must not be delivered (the owner recycles
   * them); `notice`, when given, hears of suspect jumps, resyncs and epoch resets.
   */
  constructor(
    readonly options: OrderingOptions,
    private readonly drop: (e: AnyEvent) => void,
    private readonly notice?: (n: OrderingNotice) => void
  ) {
    this.ingestWindowUs = options.ingestWindowUs ?? 60_000_000
  }

  // the stream of the last event: a run of one stream's events skips the three lookups
  private lastProvider = ""
  private lastSymbol = ""
  private lastKind = ""
  private lastState: StreamState | undefined

  private state(e: AnyEvent): StreamState {
    const last = this.lastState
    if (last !== undefined && e.kind === this.lastKind && e.symbol === this.lastSymbol && e.provider === this.lastProvider) return last
    const s = this.lookup(e)
    this.lastProvider = e.provider
    this.lastSymbol = e.symbol
    this.lastKind = e.kind
    this.lastState = s
    return s
  }

  private lookup(e: AnyEvent): StreamState {
    let bySymbol = this.streams.get(e.provider)
    if (bySymbol === undefined) this.streams.set(e.provider, bySymbol = new Map())
    let byKind = bySymbol.get(e.symbol)
    if (byKind === undefined) bySymbol.set(e.symbol, byKind = new Map())
    let s = byKind.get(e.kind)
    if (s === undefined) {
      byKind.set(
        e.kind,
        s = {
          next: -1,
          buffer: [],
          deadline: undefined,
          lastIngestTs: -Infinity,
          epoch: e.epoch,
          suspectFirst: 0,
          suspectLast: 0,
          suspectRun: 0
        }
      )
    }
    return s
  }

  private tell(what: OrderingNotice["what"], e: AnyEvent, expected: number): void {
    this.notice?.({ what, provider: e.provider, symbol: e.symbol, kind: e.kind, seq: e.seqProvider, expected })
  }

  /**
   * Takes ownership of `e`. Returns true when `e` is in order and nothing
   * else is released with it (the fast path: the caller delivers `e`).
   * Otherwise any events that may now be released are pushed to `out`, in
   * order; events that must not be delivered go to `drop`.
   */
  accept(e: AnyEvent, nowMs: () => number, out: Array<AnyEvent>): boolean {
    const s = this.state(e)
    if (e.epoch !== s.epoch) {
      // a restarted feed: what the old run left behind a gap goes out first
      const before = out.length
      this.startOver(s, e, out)
      if (out.length > before) {
        if (this.acceptIn(s, e, nowMs, out)) out.push(e)
        return false
      }
    }
    return this.acceptIn(s, e, nowMs, out)
  }

  private startOver(s: StreamState, e: AnyEvent, out: Array<AnyEvent>): void {
    this.stats.epochResets++
    this.tell("epoch_reset", e, s.next)
    this.flush(s, out)
    s.epoch = e.epoch
    s.next = -1
    s.lastIngestTs = -Infinity
    s.suspectRun = 0
  }

  /** Releases everything buffered, in order, skipping the gaps between (counted). */
  private flush(s: StreamState, out: Array<AnyEvent>): void {
    while (s.buffer.length > 0) this.skipGap(s, out)
  }

  private acceptIn(s: StreamState, e: AnyEvent, nowMs: () => number, out: Array<AnyEvent>): boolean {
    const seq = e.seqProvider
    if (seq === undefined) {
      if (e.ingestTs < s.lastIngestTs) {
        if (s.lastIngestTs - e.ingestTs > this.ingestWindowUs) return this.suspectTime(s, e)
        s.suspectRun = 0
        this.stats.late++
        this.drop(e)
        return false
      }
      s.lastIngestTs = e.ingestTs
      s.suspectRun = 0
      return true
    }
    if (s.next === -1 || (seq === s.next && s.buffer.length === 0)) {
      s.next = seq + 1
      s.suspectRun = 0
      return true
    }
    const window = this.options.jumpWindow
    if (seq - s.next >= window || s.next - seq > window) return this.suspect(s, e, seq, out)
    s.suspectRun = 0
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

  /**
   * Counts `value` (a sequence or an ingest time) into the stream's run of
   * suspects: a run is consistent while each value is at least `step` past the
   * previous one and all lie within `window` of the first. True when the value
   * completes a run of `resyncAfter`; otherwise the event is dropped as suspect.
   */
  private completesRun(s: StreamState, e: AnyEvent, value: number, step: number, window: number): boolean {
    if (s.suspectRun > 0 && value >= s.suspectLast + step && value - s.suspectFirst < window) {
      s.suspectRun++
      s.suspectLast = value
    } else {
      s.suspectRun = 1
      s.suspectFirst = value
      s.suspectLast = value
    }
    if (s.suspectRun < this.options.resyncAfter) {
      this.stats.suspectJumps++
      this.tell("suspect_jump", e, s.next)
      this.drop(e)
      return false
    }
    this.stats.resyncs++
    this.tell("resync", e, s.next)
    s.suspectRun = 0
    return true
  }

  /**
   * A sequence beyond the window: dropped, unless it completes a run of
   * `resyncAfter` consistent suspects, which moves the stream to its numbering.
   */
  private suspect(s: StreamState, e: AnyEvent, seq: number, out: Array<AnyEvent>): boolean {
    if (!this.completesRun(s, e, seq, 1, this.options.jumpWindow)) return false
    const before = out.length
    this.flush(s, out)
    s.next = seq + 1
    if (out.length === before) return true
    out.push(e)
    return false
  }

  /** An unsequenced event far older than its stream's latest: dropped, unless it completes a consistent run. */
  private suspectTime(s: StreamState, e: AnyEvent): boolean {
    if (!this.completesRun(s, e, e.ingestTs, 0, this.ingestWindowUs)) return false
    s.lastIngestTs = e.ingestTs
    return true
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
