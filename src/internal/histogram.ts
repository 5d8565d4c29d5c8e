/**
 * A fixed-memory latency histogram for hot paths: log-linear buckets over
 * nanoseconds (16 sub-buckets per power of two, about 6% resolution, up to
 * about 2 s), integer arithmetic, no allocation per record. Values are given
 * and reported in microseconds.
 */
const SUB_BITS = 4
const SUB = 1 << SUB_BITS
const BUCKETS = 32 * SUB
const MAX_NS = 0x7fffffff

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  min = Infinity
  max = 0

  record(valueUs: number): void {
    const v = valueUs < 0 ? 0 : valueUs
    this.count++
    this.sum += v
    if (v < this.min) this.min = v
    if (v > this.max) this.max = v
    this.counts[Histogram.bucket(v)]!++
  }

  private static bucket(us: number): number {
    const ns = us >= MAX_NS / 1000 ? MAX_NS : (us * 1000) | 0
    if (ns < SUB) return ns // below 16 ns: one bucket per nanosecond
    const pow = 31 - Math.clz32(ns)
    return (pow - SUB_BITS + 1) * SUB + ((ns >>> (pow - SUB_BITS)) & (SUB - 1))
  }

  /** The upper bound of a bucket, in microseconds. */
  private static upper(bucket: number): number {
    if (bucket < SUB) return (bucket + 1) / 1000
    const pow = Math.floor(bucket / SUB) - 1 + SUB_BITS
    const sub = bucket % SUB
    return (2 ** pow + (sub + 1) * 2 ** (pow - SUB_BITS)) / 1000
  }

  /** The value at quantile q (0..1), to bucket resolution (the bucket's upper bound, capped at max). */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(Histogram.upper(i), this.max)
    }
    return this.max
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  /** Adds every value recorded in `other`. */
  add(other: Histogram): void {
    if (other.count === 0) return
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!
    this.count += other.count
    this.sum += other.sum
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
  }

  reset(): void {
    this.counts.fill(0)
    this.count = 0
    this.sum = 0
    this.min = Infinity
    this.max = 0
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      min: this.count === 0 ? 0 : this.min,
      mean: this.mean(),
      p50: this.quantile(0.5),
      p95: this.quantile(0.95),
      p99: this.quantile(0.99),
      max: this.max
    }
  }
}

/**
 * A histogram over a sliding window: the values of the current period and of
 * the one before it, so that a summary always covers between one and two
 * periods of recent history.
 */
export class WindowedHistogram {
  private current = new Histogram()
  private previous = new Histogram()
  private periodStart = -Infinity

  constructor(readonly periodUs: number) {}

  record(valueUs: number, nowUs: number): void {
    const age = nowUs - this.periodStart
    if (age >= this.periodUs) {
      // the current period becomes the previous one (or nothing, after a quiet spell)
      const spare = this.previous
      this.previous = this.current
      this.current = spare
      this.current.reset()
      if (age >= 2 * this.periodUs) this.previous.reset()
      this.periodStart = nowUs
    }
    this.current.record(valueUs)
  }

  summary(nowUs: number): LatencySummary {
    const age = nowUs - this.periodStart
    const merged = new Histogram()
    if (age < 2 * this.periodUs) merged.add(this.current)
    if (age < this.periodUs) merged.add(this.previous)
    return merged.summary()
  }
}

export interface LatencySummary {
  readonly count: number
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

/** Monotonic time in microseconds. */
export const nowUs = (): number => performance.now() * 1000
