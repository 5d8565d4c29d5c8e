import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Supervisor, TestClock } from "effect"
import { HISTORY_INTERVAL_MS, makeStatusHistory } from "../src/Http.js"
import { type HistoryReading, HistoryRing } from "../src/internal/statusHistory.js"

const reading = (at: number, eventsIn: number, p99: number | null = 5): HistoryReading => ({
  at,
  eventsIn,
  dispatched: eventsIn * 2,
  deliveries: eventsIn * 3,
  p99DispatchToLambdaUs: p99
})

describe("HistoryRing", () => {
  it("rates are each second's differences; the first reading has none", () => {
    const ring = new HistoryRing(10, 1_000)
    ring.record(reading(1_000, 100))
    ring.record(reading(2_000, 400))
    ring.record(reading(2_500, 500))
    const s = ring.samples()
    assert.deepStrictEqual(s.map((x) => x.eventsInPerSec), [null, 300, 200])
    assert.deepStrictEqual(s.map((x) => x.eventsOutPerSec), [null, 600, 400])
    assert.deepStrictEqual(s.map((x) => x.deliveriesPerSec), [null, 900, 600])
    assert.deepStrictEqual(ring.columns().at, [1, 2, 2.5], "epoch seconds, what the chart's time axis takes")
  })

  it("a reading no later than the last, or with totals gone backwards, gives a gap, not a spike", () => {
    const ring = new HistoryRing(10, 1_000)
    ring.record(reading(1_000, 100))
    ring.record(reading(1_000, 200))
    ring.record(reading(2_000, 50))
    ring.record(reading(3_000, 80, null))
    assert.deepStrictEqual(ring.samples().map((x) => x.eventsInPerSec), [null, null, null, 30])
    assert.deepStrictEqual(ring.samples().map((x) => x.p99DispatchToLambdaUs), [5, 5, 5, null])
  })

  it("holds at most its capacity, the oldest replaced first", () => {
    const ring = new HistoryRing(3, 1_000)
    for (let i = 1; i <= 7; i++) ring.record(reading(i * 1_000, i * 10))
    assert.deepStrictEqual(ring.samples().map((x) => x.at), [5_000, 6_000, 7_000])
    assert.deepStrictEqual(ring.columns().eventsInPerSec, [10, 10, 10])
  })
})

describe("StatusHistory", () => {
  it.effect("samples once a second on the clock, keeps the last N, and its fiber ends with its scope", () =>
    Effect.gen(function*() {
      let eventsIn = 0
      let reads = 0
      const read = Effect.sync(() => {
        reads++
        eventsIn += 250
        return reading(reads * HISTORY_INTERVAL_MS, eventsIn)
      })
      const supervisor = yield* Supervisor.track
      const scope = yield* Scope.make()
      const history = yield* makeStatusHistory(read, 5).pipe(Scope.extend(scope), Effect.supervised(supervisor))
      yield* Effect.yieldNow()
      assert.strictEqual(history.samples().length, 1, "a first sample at once")
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(history.samples().length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(history.samples().length, 2)
      yield* TestClock.adjust("10 seconds")
      const cols = history.columns()
      assert.strictEqual(cols.at.length, 5, "bounded")
      assert.deepStrictEqual(cols.eventsInPerSec, [250, 250, 250, 250, 250])
      assert.strictEqual(cols.capacity, 5)
      const aliveBefore = (yield* supervisor.value).length
      yield* Scope.close(scope, Exit.void)
      const readsAtClose = reads
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(reads, readsAtClose, "no sampling after the scope closed")
      assert.strictEqual(aliveBefore, 1, "one sampling fiber")
      assert.strictEqual((yield* supervisor.value).length, 0, "no fiber left")
    }))
})
