import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { layerCore } from "../layers/Core.js"
import { DataBus, type Mailbox } from "../src/DataBus.js"
import { Pool } from "../src/Pool.js"
import { Recycler } from "../src/Recycler.js"
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

  it.effect("a critical event offered to a closed mailbox is recycled, counted and logged with its context", () =>
    Effect.gen(function*() {
      const logged: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
      const capture = Logger.make(({ annotations, logLevel, message }) => {
        const a: Record<string, unknown> = {}
        for (const [k, v] of annotations) a[k] = v
        logged.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message), annotations: a })
      })
      yield* Effect.gen(function*() {
        const bus = yield* DataBus
        const pool = yield* Pool
        // a holder of the endpoint (a dispatcher route, a remote bus) that outlives the mailbox
        const endpoint = yield* Effect.scoped(Effect.gen(function*() {
          yield* bus.register("gone")
          return bus.endpoint("gone")!
        }))
        const report = execReport(pool, "gone", 1)
        const traceId = report.traceId
        endpoint.offer(report)
        endpoint.offer(market(pool, { seq: 1 }))
        assert.strictEqual(pool.stats().ExecReport.outstanding + pool.stats().Event.outstanding, 0, "both recycled")
        assert.strictEqual(bus.stats().undeliverable, 2)
        assert.deepStrictEqual(bus.stats().criticalRefused, { closed: 1, critical_lane_full: 0 })
        yield* eventually(() => logged.some((l) => l.level === "ERROR"), "the error log")
        const error = logged.filter((l) => l.level === "ERROR")
        assert.strictEqual(error.length, 1, "the critical one only")
        assert.match(error[0]!.message, /mailbox is closed/)
        assert.deepStrictEqual(error[0]!.annotations, { consumer_id: "gone", kind: "exec_report", trace_id: traceId, reason: "closed" })
      }).pipe(Effect.scoped, Effect.provide(layerCore()), Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    }))

  it.effect("the critical lane at its bound refuses further critical events loudly: counted, logged, recycled; what is queued is kept", () =>
    Effect.gen(function*() {
      const errors: Array<Record<string, unknown>> = []
      const capture = Logger.make(({ annotations, logLevel }) => {
        if (logLevel.label !== "ERROR") return
        const a: Record<string, unknown> = {}
        for (const [k, v] of annotations) a[k] = v
        errors.push(a)
      })
      yield* Effect.gen(function*() {
        const bus = yield* DataBus
        const pool = yield* Pool
        const box = yield* bus.register("stuck", { criticalHighWater: 3, criticalCapacity: 5 })
        for (let i = 1; i <= 8; i++) yield* bus.publish("stuck", execReport(pool, "stuck", i))
        assert.strictEqual(box.stats().criticalDepth, 5, "never past the bound")
        assert.strictEqual(box.stats().criticalRefused, 3)
        assert.deepStrictEqual(bus.stats().criticalRefused, { closed: 0, critical_lane_full: 3 })
        assert.strictEqual(pool.stats().ExecReport.outstanding, 5, "the refused ones recycled")
        yield* eventually(() => errors.length === 3, "one error per refusal")
        assert.deepStrictEqual(errors.map((a) => a["trace_id"]), ["exec-stuck-6", "exec-stuck-7", "exec-stuck-8"])
        assert.isTrue(errors.every((a) => a["consumer_id"] === "stuck" && a["reason"] === "critical_lane_full"))
        // market data is not held back by a full critical lane, and a drained lane accepts again
        yield* bus.publish("stuck", market(pool, { seq: 1 }))
        assert.strictEqual(box.stats().marketDepth, 1)
        const first = box.poll()!
        assert.strictEqual(first._pool === "ExecReport" ? first.payload!.reportSeq : -1, 1, "the queued ones kept, in order")
        yield* bus.publish("stuck", execReport(pool, "stuck", 9))
        assert.strictEqual(box.stats().criticalDepth, 5)
        assert.strictEqual(box.stats().criticalRefused, 3)
      }).pipe(Effect.scoped, Effect.provide(layerCore()), Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    }))

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

  it.scoped("closing a mailbox gives remote deliveries back to their source: the one its consumer had taken, then those queued", () =>
    Effect.gen(function*() {
      const bus = yield* DataBus
      const pool = yield* Pool
      const recycler = yield* Recycler
      const givenBack: Array<number> = []
      const remote = (seq: number) => {
        const r = execReport(pool, "c", seq)
        r._giveBack = () => givenBack.push(seq)
        return r
      }
      let box: Mailbox | undefined
      yield* Effect.scoped(Effect.gen(function*() {
        box = yield* bus.register("c")
        for (let seq = 1; seq <= 3; seq++) yield* bus.publish("c", remote(seq))
        yield* bus.publish("c", market(pool, { seq: 1 })) // delivered in process: nothing to give back
        const taken = box.poll()!
        const gen = box.polledGeneration
        box.giveBackOnClose(box.polledGiveBack!) // its consumer stopped while its lambda ran
        recycler.unsafeRecycle(taken, gen)
        assert.deepStrictEqual(givenBack, [], "nothing given back while the mailbox is open")
      }))
      assert.deepStrictEqual(givenBack, [1, 2, 3])
      box!.offer(remote(4)) // refused by the closed mailbox
      assert.deepStrictEqual(givenBack, [1, 2, 3, 4])
      box!.giveBackOnClose(() => givenBack.push(5)) // already closed: at once
      assert.deepStrictEqual(givenBack, [1, 2, 3, 4, 5])
      assert.strictEqual(pool.stats().Event.outstanding + pool.stats().ExecReport.outstanding, 0)
    }).pipe(Effect.provide(layerCore())))
})
