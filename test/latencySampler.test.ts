import { assert, describe, it } from "@effect/vitest"
import { LatencySampler } from "../src/internal/latencySampler.js"

/** Events taken in one period and how many of them were timed. */
const period = (s: LatencySampler, events: number): number => {
  let timed = 0
  for (let i = 0; i < events; i++) if (s.take()) timed++
  return timed
}

describe("LatencySampler", () => {
  it("times every event while the rate stays under the target", () => {
    const s = new LatencySampler(1, 2_000)
    for (let p = 0; p < 5; p++) {
      assert.strictEqual(period(s, 150), 150) // 1,500 events/s at 100 ms periods
      s.adapt(100)
      assert.strictEqual(s.step, 1)
    }
  })

  it("under a flood, times about the target per second whatever the rate", () => {
    for (const perSecond of [50_000, 700_000, 5_000_000]) {
      const s = new LatencySampler(1, 2_000)
      const events = perSecond / 10 // one 100 ms period
      period(s, events)
      s.adapt(100)
      const timed = period(s, events)
      assert.isAtMost(timed, 200, `${perSecond}/s`)
      assert.isAtLeast(timed, 190, `${perSecond}/s`)
    }
  })

  it("goes back to every event at once when a flood stops, not after the rest of a long countdown", () => {
    const s = new LatencySampler(1, 2_000)
    period(s, 100_000)
    s.adapt(100)
    assert.strictEqual(s.step, 500)
    period(s, 10) // the first events after the flood, in a countdown of 500
    s.adapt(100)
    assert.strictEqual(s.step, 1)
    assert.strictEqual(period(s, 20), 20)
  })

  it("follows the measured period, not a nominal one (a timer that fires late)", () => {
    const s = new LatencySampler(1, 2_000)
    period(s, 100_000)
    s.adapt(500) // 200,000 events/s over half a second
    assert.strictEqual(s.step, 100)
  })

  it("keeps its bounds: never under minEvery, never over maxEvery, fixed without a target", () => {
    const floor = new LatencySampler(8, 2_000)
    period(floor, 10)
    floor.adapt(100)
    assert.strictEqual(floor.step, 8)
    assert.strictEqual(period(floor, 80), 10)
    const capped = new LatencySampler(1, 2_000, 64)
    period(capped, 1_000_000)
    capped.adapt(100)
    assert.strictEqual(capped.step, 64)
    const fixed = new LatencySampler(8, 0)
    period(fixed, 1_000_000)
    fixed.adapt(100)
    assert.strictEqual(fixed.step, 8)
    const idle = new LatencySampler(1, 2_000)
    idle.adapt(0) // a period of no length changes nothing
    assert.strictEqual(idle.step, 1)
  })

  it("a flood that never lets a timer run adapts at its own timed events", () => {
    const s = new LatencySampler(1, 2_000, 1 << 20, 100)
    s.periodEnded(0)
    let now = 0
    let timed = 0
    // 1,000,000 events/s for a second, 1 us apart, with no timer: each timed event reports its time
    for (let i = 0; i < 1_000_000; i++) {
      now += 0.001
      if (s.take()) {
        timed++
        s.timedAt(now)
      }
    }
    // every event in the first 100 ms, then the target rate
    assert.isAtMost(timed, 100_000 + 2_000)
    assert.isAtLeast(timed, 100_000)
    assert.isAtLeast(s.step, 490)
    assert.isAtMost(s.step, 510)
  })

  it("the timer ends a period the timed events did not (a rate that drops after a flood)", () => {
    const s = new LatencySampler(1, 2_000, 1 << 20, 100)
    s.periodEnded(0)
    period(s, 100_000)
    s.timedAt(100)
    assert.strictEqual(s.step, 500)
    period(s, 5) // then the rate drops: no timed event for long
    s.periodEnded(200)
    assert.strictEqual(s.step, 1)
    s.timedAt(250) // half a period: nothing changes
    assert.strictEqual(s.step, 1)
  })
})
