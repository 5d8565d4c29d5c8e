import { assert, describe, it } from "@effect/vitest"
import { Histogram, PROMETHEUS_BOUNDS_US, WindowedHistogram } from "../src/internal/histogram.js"

describe("Histogram", () => {
  it("quantiles within the bucket resolution (about 6%)", () => {
    const h = new Histogram()
    for (let v = 1; v <= 10_000; v++) h.record(v / 10) // 0.1 us .. 1000 us
    for (const [q, exact] of [[0.5, 500], [0.95, 950], [0.99, 990]] as const) {
      const got = h.quantile(q)
      assert.isAtLeast(got, exact)
      assert.isBelow((got - exact) / exact, 0.0625, `p${q * 100}: ${got}`)
    }
    assert.strictEqual(h.count, 10_000)
    assert.strictEqual(h.max, 1000)
    assert.closeTo(h.mean(), 500.05, 1e-6)
  })

  it("adds another histogram's values", () => {
    const a = new Histogram()
    const b = new Histogram()
    a.record(10)
    b.record(1000)
    a.add(b)
    assert.deepStrictEqual([a.count, a.min, a.max], [2, 10, 1000])
  })
})

describe("Histogram: Prometheus buckets", () => {
  /** The exact cumulative count at each bound, by brute force. */
  const expected = (values: ReadonlyArray<number>) =>
    PROMETHEUS_BOUNDS_US.map((bound) => values.filter((v) => Math.max(v, 0) <= bound).length)

  it("counts each value in its bucket exactly, bounds included (le), whatever the fine resolution", () => {
    const values: Array<number> = [-3, 0, 0.001, 0.5]
    // every bound, a hair below and a hair above it
    for (const b of PROMETHEUS_BOUNDS_US) values.push(b, b - 0.001, b + 0.001, b * 0.97, b * 1.03)
    // beyond the last bound, and beyond the fine buckets' range
    values.push(1_500_000, 5_000_000, 1e12)
    const h = new Histogram()
    for (const v of values) h.record(v)
    assert.deepStrictEqual([...h.cumulative()], expected(values))
    const s = h.summary()
    assert.deepStrictEqual([...s.buckets], expected(values))
    assert.strictEqual(s.count, values.length)
  })

  it("a pseudo-random spread over eight decades matches the brute-force count", () => {
    let x = 12345
    const values: Array<number> = []
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      values.push(10 ** ((x / 2 ** 31) * 8 - 2)) // 0.01 us .. 1e6 us
    }
    const h = new Histogram()
    for (const v of values) h.record(v)
    assert.deepStrictEqual([...h.cumulative()], expected(values))
    assert.closeTo(h.summary().sum, values.reduce((a, b) => a + b, 0), 1e-3)
  })

  it("adding and resetting carry the Prometheus buckets too", () => {
    const a = new Histogram()
    const b = new Histogram()
    a.record(3)
    b.record(3_000)
    a.add(b)
    assert.deepStrictEqual([...a.cumulative()], expected([3, 3_000]))
    a.reset()
    assert.deepStrictEqual([...a.cumulative()], expected([]))
  })
})

describe("WindowedHistogram", () => {
  it("covers the current and the previous period, and forgets what is older", () => {
    const w = new WindowedHistogram(1_000)
    w.record(5_000, 0)
    w.record(10, 10)
    assert.deepStrictEqual([w.summary(20).count, w.summary(20).max], [2, 5_000])
    w.record(20, 1_100)
    assert.deepStrictEqual([w.summary(1_100).count, w.summary(1_100).max], [3, 5_000])
    w.record(30, 2_200)
    assert.deepStrictEqual([w.summary(2_200).count, w.summary(2_200).max], [2, 30], "the outlier has aged out")
    w.record(40, 5_000)
    assert.strictEqual(w.summary(5_000).count, 1, "after a quiet spell only the new value")
    assert.strictEqual(w.summary(6_500).count, 1, "one period on, the last period still counts")
    assert.strictEqual(w.summary(9_000).count, 0)
    assert.deepStrictEqual([...w.summary(9_000).buckets], PROMETHEUS_BOUNDS_US.map(() => 0))
  })
})
