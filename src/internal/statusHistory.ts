/**
 * The status page's history: a bounded ring of one sample a second (the last
 * ten minutes by default), kept on the server so that a page opened late
 * still draws the minutes before it.
 *
 * Rules:
 * - A sample is taken from two consecutive readings of the running totals:
 *   the rates are the totals' differences over the time between the readings
 *   (figures per second), never the gateway's smoothed 10 s rates, so a chart
 *   shows each second as it was.
 * - The first reading, a reading no later than the previous one, and a reading
 *   whose totals went backwards (a restart of the counters) give no rate: the
 *   sample carries `null`, and the chart shows a gap rather than a spike.
 * - Latency is the gateway's own worst p99 dispatch-to-lambda figure at the
 *   reading (null when nothing was sampled).
 * - Once the ring holds `capacity` samples, each new one replaces the oldest.
 */

/** What one reading of the gateway's status gives the history. */
export interface HistoryReading {
  /** Epoch milliseconds. */
  readonly at: number
  readonly eventsIn: number
  readonly dispatched: number
  readonly deliveries: number
  readonly p99DispatchToLambdaUs: number | null
}

export interface HistorySample {
  /** Epoch milliseconds. */
  readonly at: number
  readonly eventsInPerSec: number | null
  readonly eventsOutPerSec: number | null
  readonly deliveriesPerSec: number | null
  readonly p99DispatchToLambdaUs: number | null
}

/** The history as columns (what the chart library draws), oldest first; `at` in epoch seconds. */
export interface HistoryColumns {
  readonly intervalMs: number
  readonly capacity: number
  readonly at: ReadonlyArray<number>
  readonly eventsInPerSec: ReadonlyArray<number | null>
  readonly eventsOutPerSec: ReadonlyArray<number | null>
  readonly deliveriesPerSec: ReadonlyArray<number | null>
  readonly p99DispatchToLambdaUs: ReadonlyArray<number | null>
}

const rate = (now: number, before: number, ms: number): number | null =>
  now < before ? null : ((now - before) * 1000) / ms

export class HistoryRing {
  private readonly ring: Array<HistorySample | undefined>
  private next = 0
  private size = 0
  private last: HistoryReading | undefined

  constructor(readonly capacity: number, readonly intervalMs: number) {
    this.ring = new Array(capacity)
  }

  /** Adds the sample of `r` (rates against the previous reading). */
  record(r: HistoryReading): void {
    const prev = this.last
    this.last = r
    const ms = prev === undefined ? 0 : r.at - prev.at
    const sample: HistorySample = prev === undefined || ms <= 0
      ? { at: r.at, eventsInPerSec: null, eventsOutPerSec: null, deliveriesPerSec: null, p99DispatchToLambdaUs: r.p99DispatchToLambdaUs }
      : {
        at: r.at,
        eventsInPerSec: rate(r.eventsIn, prev.eventsIn, ms),
        eventsOutPerSec: rate(r.dispatched, prev.dispatched, ms),
        deliveriesPerSec: rate(r.deliveries, prev.deliveries, ms),
        p99DispatchToLambdaUs: r.p99DispatchToLambdaUs
      }
    this.ring[this.next] = sample
    this.next = (this.next + 1) % this.capacity
    if (this.size < this.capacity) this.size++
  }

  /** The samples held, oldest first. */
  samples(): ReadonlyArray<HistorySample> {
    const out: Array<HistorySample> = []
    const start = (this.next - this.size + this.capacity) % this.capacity
    for (let i = 0; i < this.size; i++) out.push(this.ring[(start + i) % this.capacity]!)
    return out
  }

  columns(): HistoryColumns {
    const s = this.samples()
    return {
      intervalMs: this.intervalMs,
      capacity: this.capacity,
      at: s.map((x) => x.at / 1000),
      eventsInPerSec: s.map((x) => x.eventsInPerSec),
      eventsOutPerSec: s.map((x) => x.eventsOutPerSec),
      deliveriesPerSec: s.map((x) => x.deliveriesPerSec),
      p99DispatchToLambdaUs: s.map((x) => x.p99DispatchToLambdaUs)
    }
  }
}
