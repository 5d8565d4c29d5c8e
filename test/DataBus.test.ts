import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { layerCore } from "../layers/Core.js"
import { DataBus } from "../src/DataBus.js"
import { Pool } from "../src/Pool.js"
import { eventually, execReport, market } from "./support/events.js"

describe("DataBus (in memory)", () => {
  it.scoped("the critical lane is lossless and warns once above its high-water mark", () =>
    Effect.gen(function*() {
      const warnings: Array<{ message: string; depth: unknown }> = []
      const capture = Logger.make(({ annotations, message }) => {
        const text = Array.isArray(message) ? message.join(" ") : String(message)
        for (const [k, v] of annotations) if (k === "depth") warnings.push({ message: text, depth: v })
      })
      yield* Effect.gen(function*() {
        const bus = yield* DataBus
        const pool = yield* Pool
        const box = yield* bus.register("slow", { criticalHighWater: 10, marketCapacity: 2 })
        for (let i = 1; i <= 25; i++) yield* bus.publish("slow", execReport(pool, "slow", i))
        for (let seq = 1; seq <= 5; seq++) yield* bus.publish("slow", market(pool, { seq }))
        yield* eventually(() => warnings.length > 0, "the high-water warning")
        const stats = box.stats()
        assert.strictEqual(stats.criticalDepth, 25, "nothing dropped")
        assert.strictEqual(stats.criticalHighWaterMark, 25)
        assert.strictEqual(stats.marketDepth, 2)
        assert.strictEqual(stats.coalesced, 3)
        const order: Array<number> = []
        for (let e = box.poll(); e !== undefined; e = box.poll()) {
          if (e._pool === "ExecReport") order.push(e.payload!.reportSeq)
          else order.push(-e.seqProvider!)
        }
        assert.deepStrictEqual(order, [...Array.from({ length: 25 }, (_, i) => i + 1), -1, -5], "critical first, in order; the stream keeps its oldest queued and newest values")
      }).pipe(Effect.scoped, Effect.provide(layerCore()), Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      assert.strictEqual(warnings.length, 1)
      assert.match(warnings[0]!.message, /high-water/)
      assert.strictEqual(warnings[0]!.depth, 10)
    }))

  it.scoped("an event for a consumer that is not registered is recycled and counted", () =>
    Effect.gen(function*() {
      const bus = yield* DataBus
      const pool = yield* Pool
      yield* bus.publish("nobody", execReport(pool, "nobody", 1))
      assert.strictEqual(bus.stats().undeliverable, 1)
      assert.strictEqual(pool.stats().ExecReport.outstanding, 0)
    }).pipe(Effect.provide(layerCore())))

  it.scoped("closing a mailbox recycles what it holds and refuses what comes after", () =>
    Effect.gen(function*() {
      const bus = yield* DataBus
      const pool = yield* Pool
      yield* Effect.scoped(Effect.gen(function*() {
        yield* bus.register("c")
        for (let seq = 1; seq <= 3; seq++) yield* bus.publish("c", market(pool, { seq }))
        assert.strictEqual(pool.stats().Event.outstanding, 3)
      }))
      assert.strictEqual(pool.stats().Event.outstanding, 0)
      assert.isUndefined(bus.endpoint("c"))
    }).pipe(Effect.provide(layerCore())))
})
