/**
 * A fixed-memory latency histogram for hot paths: log-linear buckets over
 * nanoseconds (16 sub-buckets per power of two, about 6% resolution, up to
 * about 2 s), integer arithmetic, no allocation per record. Values are given
 * and reported in microseconds.
 *
 * Beside the fine buckets (for quantiles on the status line), each value is
 * also counted exactly in one of the Prometheus buckets `PROMETHEUS_BOUNDS_US`
 * (`le` semantics: a value equal to a bound is counted in it), which
 * `/metrics` exports as a Prometheus histogram. The Prometheus bucket of a
 * fine bucket is looked up in a table built once; only the few fine buckets
 * that contain a bound compare the value with it.
 */
const SUB_BITS = 4
const SUB = 1 << SUB_BITS
const BUCKETS = 32 * SUB
const MAX_NS = 0x7fffffff

/** Upper bounds of the exported Prometheus buckets, microseconds (1 us to 1 s; above: `+Inf`). */
export const PROMETHEUS_BOUNDS_US: ReadonlyArray<number> = [
  1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000
]

/** The lowest nanosecond value of a fine bucket, and one past its highest. */
const fineRange = (bucket: number): readonly [number, number] => {
  if (bucket < SUB) return [bucket, bucket + 1]
  const pow = Math.floor(bucket / SUB) - 1 + SUB_BITS
  const width = 2 ** (pow - SUB_BITS)
  const lo = 2 ** pow + (bucket % SUB) * width
  return [lo, lo + width]
}

/**
 * Per fine bucket: the index of its Prometheus bucket when every value of the
 * fine bucket falls in it, or `-(j + 1)` when the fine bucket contains bound
 * `j` (then the value is compared with `STRADDLED_US`).
 */
const COARSE = new Int8Array(BUCKETS)
const STRADDLED_US = new Float64Array(BUCKETS)
for (let i = 0; i < BUCKETS; i++) {
  const [lo, hi] = fineRange(i)
  // the first bound at or above the fine bucket's lowest value: every value
  // is above the bounds before it, and below bound j unless j lies inside
  let j = 0
  while (j < PROMETHEUS_BOUNDS_US.length && PROMETHEUS_BOUNDS_US[j]! * 1000 < lo) j++
  const bound = PROMETHEUS_BOUNDS_US[j]
  if (bound !== undefined && bound * 1000 < hi) {
    COARSE[i] = -(j + 1)
    STRADDLED_US[i] = bound
  } else {
    COARSE[i] = j
  }
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  /** Exact counts per Prometheus bucket (not cumulative); the last one is `+Inf`. */
  private readonly coarse = new Float64Array(PROMETHEUS_BOUNDS_US.length + 1)
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
    const b = Histogram.bucket(v)
    this.counts[b]!++
    const c = COARSE[b]!
    this.coarse[c >= 0 ? c : v <= STRADDLED_US[b]! ? -c - 1 : -c]!++
  }

  /** Cumulative counts at each of `PROMETHEUS_BOUNDS_US` (values <= the bound); `count` is `+Inf`'s. */
  cumulative(): ReadonlyArray<number> {
    const out: Array<number> = new Array(PROMETHEUS_BOUNDS_US.length)
    let seen = 0
    for (let j = 0; j < PROMETHEUS_BOUNDS_US.length; j++) out[j] = seen += this.coarse[j]!
    return out
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
    for (let j = 0; j < this.coarse.length; j++) this.coarse[j]! += other.coarse[j]!
    this.count += other.count
    this.sum += other.sum
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
  }

  reset(): void {
    this.counts.fill(0)
    this.coarse.fill(0)
    this.count = 0
    this.sum = 0
    this.min = Infinity
    this.max = 0
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      sum: this.sum,
      buckets: this.cumulative(),
      min: this.count === 0 ? 0 : this.min,
      mean: this.mean(),
      p50: this.quantile(0.5),
      p95: this.quantile(0.95),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
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
  /** Values recorded; 0 means no figure (shown as "-", never as 0). */
  readonly count: number
  /** Sum of the values, microseconds. */
  readonly sum: number
  /** Cumulative counts at each of `PROMETHEUS_BOUNDS_US`. */
  readonly buckets: ReadonlyArray<number>
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

/** Monotonic time in microseconds. */
export const nowUs = (): number => performance.now() * 1000
