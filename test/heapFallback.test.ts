import { assert, describe, it } from "@effect/vitest"
import { DEFAULT_EVENT_POOL_CAPACITY, DEFAULT_MARKET_LANE, PLANNED_CONSUMERS } from "../schema/Sizing.js"
import { defaultMailboxOptions } from "../src/DataBus.js"
import { HeapFallbackWatch } from "../src/internal/heapFallback.js"
import { defaultPoolSettings } from "../src/Pool.js"

describe("default sizes", () => {
  it("the Event pool holds what the default mailboxes of the planned consumers let be in flight", () => {
    assert.strictEqual(defaultMailboxOptions.marketCapacity, DEFAULT_MARKET_LANE)
    assert.strictEqual(defaultPoolSettings.capacity.Event, DEFAULT_EVENT_POOL_CAPACITY)
    assert.isAtLeast(defaultPoolSettings.capacity.Event, PLANNED_CONSUMERS * defaultMailboxOptions.marketCapacity)
  })
})

describe("HeapFallbackWatch", () => {
  const table: ReadonlyArray<readonly [string, ReadonlyArray<number>, ReadonlyArray<number>]> = [
    // [case, totals sampled once a second, the sample indexes that warn]
    ["no fallback at all", [0, 0, 0, 0, 0, 0, 0, 0], []],
    ["a burst (three samples) is not sustained", [0, 10, 20, 30, 30, 30, 30, 30], []],
    ["five samples in a row with heap allocations warn once", [0, 1, 2, 3, 4, 5, 6, 7], [5]],
    ["a pause resets the streak", [0, 1, 2, 3, 4, 4, 5, 6, 7, 8], []],
    ["a sustained streak warns again only after the interval", Array.from({ length: 70 }, (_, i) => i * 3), [5, 65]]
  ]
  for (const [name, totals, warnAt] of table) {
    it(name, () => {
      const watch = new HeapFallbackWatch(5, 60_000)
      const warned: Array<number> = []
      totals.forEach((total, i) => {
        if (watch.observe("Event", total, i * 1_000) !== undefined) warned.push(i)
      })
      assert.deepStrictEqual(warned, warnAt)
      assert.strictEqual(watch.warnings.get("Event"), warnAt.length)
    })
  }

  it("the warning says how many allocations over how many samples; pool types are watched apart", () => {
    const watch = new HeapFallbackWatch(3, 60_000)
    watch.observe("Event", 100, 0)
    watch.observe("ExecReport", 0, 0)
    let warning
    for (let i = 1; i <= 3; i++) {
      warning = watch.observe("Event", 100 + i * 50, i * 1_000)
      assert.isUndefined(watch.observe("ExecReport", 0, i * 1_000))
    }
    assert.deepStrictEqual(warning, { pool: "Event", allocated: 150, samples: 3 })
    assert.isTrue(watch.sustained("Event"))
    assert.isFalse(watch.sustained("ExecReport"))
  })
})
