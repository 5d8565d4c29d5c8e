/**
 * The strategy of `bench/workers.ts`: each ticker burns a fixed amount of CPU
 * (`iterations` rounds of integer arithmetic, the same work in process and
 * on a worker), then counts itself in shared memory and records its latency
 * from the event's intended send time (`ingestTs`, epoch microseconds) in a
 * shared log-bucket histogram, so the main thread reads both without a
 * message.
 */
import { Effect, Schema } from "effect"
import * as Strategy from "../../src/strategy/index.js"

/** Buckets of the shared histogram: 16 per power of two of microseconds, up to 2^32 us. */
export const LATENCY_BUCKETS = 32 * 16

let sink = 0
/** A fixed amount of CPU: `iterations` rounds of an xorshift. */
export const burn = (iterations: number): number => {
  let x = (iterations ^ 0x9e3779b9) | 1
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
  }
  sink ^= x
  return sink
}

export const bucketOf = (us: number): number => {
  if (us < 1) return 0
  const b = Math.floor(Math.log2(us) * 16)
  return b >= LATENCY_BUCKETS ? LATENCY_BUCKETS - 1 : b
}

/** The upper bound of a bucket, microseconds. */
export const bucketBound = (b: number): number => 2 ** ((b + 1) / 16)

/** Quantiles of summed shared histograms, microseconds (the bucket's upper bound, about 4.4% resolution). */
export const quantiles = (histograms: ReadonlyArray<Int32Array>, qs: ReadonlyArray<number>): Array<number> => {
  const sum = new Float64Array(LATENCY_BUCKETS)
  let total = 0
  for (const h of histograms) {
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      sum[i]! += h[i]!
      total += h[i]!
    }
  }
  return qs.map((q) => {
    const rank = q >= 1 ? total : Math.ceil(q * total)
    let seen = 0
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      seen += sum[i]!
      if (seen >= rank && seen > 0) return bucketBound(i)
    }
    return 0
  })
}

const Shared = Schema.instanceOf(SharedArrayBuffer)

export default Strategy.define({
  id: "burner",
  options: Schema.Struct({
    /** Int32 [0]: tickers handled; [1]: the burn's iterations per ticker (the bench sets it between runs). */
    counts: Shared,
    /** Int32 per bucket: latency from the intended send time. */
    latency: Shared
  }),
  init: (o) => ({ counts: new Int32Array(o.counts), latency: new Int32Array(o.latency) }),
  on: {
    ticker: (event, ctx) =>
      Effect.sync(() => {
        const s = ctx.state
        const lateUs = (performance.timeOrigin + performance.now()) * 1000 - event.ingestTs
        s.latency[bucketOf(lateUs)]!++
        const iterations = Atomics.load(s.counts, 1)
        if (iterations > 0) burn(iterations)
        Atomics.add(s.counts, 0, 1)
      })
  }
})
