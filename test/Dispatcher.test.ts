import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Logger, TestClock } from "effect"
import { layerCore, pipeline } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { DataBus } from "../src/DataBus.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { DeliveryError, FanoutFailed } from "../src/Errors.js"
import type { AnyEvent } from "../src/Event.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"
import { eventually, execReport, market } from "./support/events.js"
import { runAndCountLeftFibers } from "./support/leaks.js"

const services = Effect.all({
  pool: Pool,
  recycler: Recycler,
  dispatcher: Dispatcher,
  consumers: Consumers
})

const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const

/** Starts `n` consumers on BTC-USDT tickers, each recording what it receives. */
const startRecorders = (n: number) =>
  Effect.gen(function*() {
    const { consumers } = yield* services
    const received: Array<Array<{ traceId: string; seq: number | undefined; at: number }>> = []
    for (let i = 0; i < n; i++) {
      const log: Array<{ traceId: string; seq: number | undefined; at: number }> = []
      received.push(log)
      yield* consumers.start({
        id: `strategy-${i}`,
        handle: (e) => Effect.sync(() => log.push({ traceId: e.traceId, seq: e.seqProvider, at: performance.now() })),
        subscriptions: [btc]
      })
    }
    return received
  })

describe("Dispatcher", () => {
  for (const n of [5, 10]) {
    it.scoped(`SC-001: ${n} strategies on BTC-USDT: every mailbox holds the update before any lambda runs, and a blocked lambda delays no other`, () =>
      Effect.gen(function*() {
        const { pool, dispatcher, consumers } = yield* services
        const blocked = yield* Deferred.make<void>()
        const received: Array<Array<string>> = []
        for (let i = 0; i < n; i++) {
          const log: Array<string> = []
          received.push(log)
          yield* consumers.start({
            id: `strategy-${i}`,
            subscriptions: [btc],
            // strategy-0 never finishes its first event until the end of the test
            handle: (e) =>
              Effect.sync(() => log.push(e.traceId)).pipe(Effect.zipRight(i === 0 ? Deferred.await(blocked) : Effect.void))
          })
        }
        const handles = consumers.list()
        const first = market(pool, { seq: 1 })
        const firstTrace = first.traceId
        yield* dispatcher.dispatch(first)
        // the fan-out is done when dispatch returns: every subscriber holds its copy, no lambda has run yet
        assert.deepStrictEqual(handles.map((h) => h.stats().lag), Array(n).fill(1))
        assert.isTrue(received.every((r) => r.length === 0), "no lambda ran during the fan-out")
        yield* eventually(() => received.every((r) => r.length === 1), "every strategy")
        for (const r of received) assert.strictEqual(r[0], firstTrace)
        // strategy-0 is stuck in its lambda: the next updates reach every other strategy all the same
        for (let seq = 2; seq <= 3; seq++) {
          yield* dispatcher.dispatch(market(pool, { seq }))
          // (the event a lambda is working on is in its hands, no longer counted as lag)
          assert.deepStrictEqual(handles.map((h) => h.stats().lag), [seq - 1, ...Array(n - 1).fill(1)])
          yield* eventually(() => received.slice(1).every((r) => r.length === seq), `the other strategies, update ${seq}`)
        }
        assert.strictEqual(received[0]!.length, 1, "strategy-0 is still on its first update")
        assert.strictEqual(handles[0]!.stats().processed, 0)
        yield* Deferred.succeed(blocked, undefined)
        yield* eventually(() => received[0]!.length === 3, "strategy-0 catches up")
        yield* eventually(() => pool.stats().Event.outstanding === 0, "original and clones all recycled")
      }).pipe(Effect.provide(layerCore())))
  }

  it.scoped("0 subscribers: the event goes to the Recycler; 1 subscriber: the original as it is", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq: 1 }))
      assert.strictEqual(pool.stats().Event.outstanding, 0)
      assert.strictEqual(dispatcher.stats().noSubscriber, 1)
      const seen: Array<AnyEvent> = []
      yield* consumers.start({ id: "only", handle: (e) => Effect.sync(() => seen.push(e)), subscriptions: [btc] })
      const original = market(pool, { seq: 1 })
      const acquiredBefore = pool.stats().Event.acquired
      yield* dispatcher.dispatch(original)
      yield* eventually(() => seen.length === 1)
      assert.strictEqual(seen[0], original, "the original itself is delivered")
      assert.strictEqual(pool.stats().Event.acquired, acquiredBefore, "no clone for a single subscriber")
    }).pipe(Effect.provide(layerCore())))

  it.scoped("a run of one stream's events follows every change of its routes: subscribe, unsubscribe, a consumer stopped", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const seen = new Map<string, Array<number>>()
      const start = (id: string, subscriptions: ReadonlyArray<typeof btc> = [btc]) =>
        consumers.start({
          id,
          handle: (e) => Effect.sync(() => seen.set(id, [...(seen.get(id) ?? []), e.seqProvider!])),
          subscriptions
        })
      const a = yield* start("a")
      let seq = 0
      const send = Effect.suspend(() => dispatcher.dispatch(market(pool, { seq: ++seq })))
      const merged = { ...btc, merged: true } as const
      yield* send // 1: a
      const b = yield* start("b")
      yield* send // 2: a, b
      yield* a.unsubscribe(btc)
      yield* send // 3: b
      yield* b.subscribe(merged) // another route of the same symbol and kind
      yield* send // 4: b
      yield* start("c")
      yield* send // 5: b, c
      yield* eventually(() => seen.get("b")?.length === 4) // what b was handed before it stops
      yield* b.stop
      yield* send // 6: c
      yield* a.subscribe(btc)
      yield* send // 7: c, a
      yield* eventually(() => (seen.get("a")?.length ?? 0) === 3 && (seen.get("c")?.length ?? 0) === 3)
      assert.deepStrictEqual(seen.get("a"), [1, 2, 7])
      assert.deepStrictEqual(seen.get("b"), [2, 3, 4, 5])
      assert.deepStrictEqual(seen.get("c"), [5, 6, 7])
      assert.strictEqual(dispatcher.stats().noSubscriber, 0)
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }).pipe(Effect.provide(layerCore())))

  it.scoped("every subscriber has its event before any consumer runs", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const observed: Array<ReadonlyArray<number>> = []
      for (let i = 0; i < 5; i++) {
        yield* consumers.start({
          id: `s${i}`,
          handle: () =>
            Effect.sync(() => observed.push(consumers.list().map((h) => h.stats().lag + h.stats().processed))),
          subscriptions: [btc]
        })
      }
      for (let k = 1; k <= 4; k++) {
        yield* dispatcher.dispatch(market(pool, { seq: k }))
        yield* eventually(() => observed.length === 5 * k)
        // whoever ran first saw every other subscriber already holding event k
        // (itself excepted: its event is in its hands, neither queued nor done)
        const first = observed[5 * (k - 1)]!
        assert.strictEqual(first.filter((n) => n < k).length, 1, `event ${k}: ${first}`)
      }
    }).pipe(Effect.provide(layerCore())))

  it.effect("the fan-out start rotates: no subscriber is always handed its event first", () =>
    Effect.gen(function*() {
      const handedOver: Array<string> = []
      const recording = Layer.effect(
        DataBus,
        Effect.map(DataBus, (memory) => ({
          ...memory,
          endpoint: (id: string) => {
            const inner = memory.endpoint(id)
            return inner === undefined ? undefined : {
              ...inner,
              offer: (e: AnyEvent) => {
                handedOver.push(id)
                return inner.offer(e)
              }
            }
          }
        }))
      ).pipe(Layer.provide(DataBus.layerMemory))
      yield* Effect.gen(function*() {
        const { pool, dispatcher, consumers } = yield* services
        for (let i = 0; i < 3; i++) yield* consumers.start({ id: `s${i}`, handle: () => Effect.void, subscriptions: [btc] })
        for (let k = 1; k <= 3; k++) yield* dispatcher.dispatch(market(pool, { seq: k }))
      }).pipe(Effect.scoped, Effect.provide(pipeline(recording)))
      assert.deepStrictEqual(handedOver, ["s0", "s1", "s2", "s1", "s2", "s0", "s2", "s0", "s1"])
    }))

  describe("per-stream ordering", () => {
    const layer = layerCore({ dispatcher: { latenessMs: 100, reorderBuffer: 4 } })

    it.scoped("out-of-order events are released in sequence", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        for (const seq of [1, 3, 4, 2, 5]) yield* dispatcher.dispatch(market(pool, { seq }))
        yield* eventually(() => r!.length === 5)
        assert.deepStrictEqual(r!.map((x) => x.seq), [1, 2, 3, 4, 5])
        assert.strictEqual(dispatcher.stats().gapsSkipped, 0)
      }).pipe(Effect.provide(layer)))

    it.scoped("a gap waits up to the lateness tolerance, then is skipped and counted", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        for (const seq of [1, 2, 4, 5]) yield* dispatcher.dispatch(market(pool, { seq }))
        yield* eventually(() => r!.length === 2)
        yield* TestClock.adjust("99 millis")
        assert.strictEqual(r!.length, 2, "4 and 5 wait behind the gap at 3")
        yield* TestClock.adjust("1 millis")
        yield* eventually(() => r!.length === 4, "release after lateness")
        assert.deepStrictEqual(r!.map((x) => x.seq), [1, 2, 4, 5])
        assert.strictEqual(dispatcher.stats().gapsSkipped, 1)
        yield* dispatcher.dispatch(market(pool, { seq: 3 }))
        assert.strictEqual(dispatcher.stats().duplicates, 1, "3 arriving after the skip is too old")
        assert.strictEqual(pool.stats().Event.outstanding, 0)
      }).pipe(Effect.provide(layer)))

    it.scoped("duplicates and older sequences are dropped, counted and recycled", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        for (const seq of [1, 2, 2, 1, 3, 5, 5]) yield* dispatcher.dispatch(market(pool, { seq }))
        yield* eventually(() => r!.length === 3)
        assert.deepStrictEqual(r!.map((x) => x.seq), [1, 2, 3])
        assert.strictEqual(dispatcher.stats().duplicates, 3)
        assert.strictEqual(dispatcher.stats().buffered, 1, "5 waits for 4")
      }).pipe(Effect.provide(layer)))

    it.scoped("the stream remembers its sequence after its buffer empties", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        // 1, then 3 waits, 2 fills the gap: the buffer empties
        for (const seq of [1, 3, 2]) yield* dispatcher.dispatch(market(pool, { seq }))
        yield* eventually(() => r!.length === 3)
        assert.strictEqual(dispatcher.stats().buffered, 0)
        // a quiet spell, then a replay of 2 and the next in sequence
        yield* TestClock.adjust("1 second")
        yield* dispatcher.dispatch(market(pool, { seq: 2 }))
        yield* dispatcher.dispatch(market(pool, { seq: 4 }))
        yield* eventually(() => r!.length === 4)
        assert.deepStrictEqual(r!.map((x) => x.seq), [1, 2, 3, 4])
        assert.strictEqual(dispatcher.stats().duplicates, 1)
      }).pipe(Effect.provide(layer)))

    it.scoped("a full reorder buffer skips the gap at once", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        for (const seq of [1, 3, 4, 5, 6, 7]) yield* dispatcher.dispatch(market(pool, { seq }))
        yield* eventually(() => r!.length === 6)
        assert.deepStrictEqual(r!.map((x) => x.seq), [1, 3, 4, 5, 6, 7])
        assert.strictEqual(dispatcher.stats().gapsSkipped, 1)
      }).pipe(Effect.provide(layer)))

    it.scoped("streams are independent: a gap in one does not hold another", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        yield* dispatcher.dispatch(market(pool, { provider: "sim-a", seq: 1 }))
        yield* dispatcher.dispatch(market(pool, { provider: "sim-a", seq: 3 }))
        yield* dispatcher.dispatch(market(pool, { provider: "sim-b", seq: 7 }))
        yield* dispatcher.dispatch(market(pool, { provider: "sim-b", seq: 8 }))
        yield* eventually(() => r!.length === 3)
      }).pipe(Effect.provide(layer)))

    it.scoped("events without a sequence are ordered by ingest time; older ones are dropped as late", () =>
      Effect.gen(function*() {
        const { pool, dispatcher } = yield* services
        const [r] = yield* startRecorders(1)
        for (const ingestTs of [10, 20, 15, 30]) yield* dispatcher.dispatch(market(pool, { ingestTs }))
        yield* eventually(() => r!.length === 3)
        assert.strictEqual(dispatcher.stats().late, 1)
        assert.strictEqual(pool.stats().Event.outstanding, 0)
      }).pipe(Effect.provide(layer)))
  })

  it.scoped("critical events go to the consumer that owns them, without a subscription", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const got: Array<number> = []
      yield* consumers.start({
        id: "owner",
        handle: (e) => Effect.sync(() => e._pool === "ExecReport" && got.push(e.payload!.reportSeq))
      })
      for (let i = 1; i <= 3; i++) yield* dispatcher.dispatch(execReport(pool, "owner", i))
      yield* eventually(() => got.length === 3)
      assert.deepStrictEqual(got, [1, 2, 3])
    }).pipe(Effect.provide(layerCore())))

  it.effect("fan-out failures on a remote bus are aggregated: every failure reported, not just the first", () =>
    Effect.gen(function*() {
      const logged: Array<unknown> = []
      const capture = Logger.make(({ message }) => {
        logged.push(...(Array.isArray(message) ? message : [message]))
      })
      const failing = new Set(["b", "c"])
      // a bus whose hand-overs suspend, and fail for two of the three consumers
      const remote = Layer.effect(
        DataBus,
        Effect.gen(function*() {
          const recycler = yield* Recycler
          const memory = yield* DataBus
          return {
            ...memory,
            endpoint: (id: string) => ({
              consumerId: id,
              offer: () => false,
              deliver: (e: AnyEvent) =>
                failing.has(id)
                  ? Effect.sync(() => recycler.unsafeRecycle(e, generationOf(e))).pipe(
                    Effect.zipRight(Effect.fail(new DeliveryError({ consumerId: id, reason: "connection lost" })))
                  )
                  : memory.publish(id, e)
            })
          }
        })
      ).pipe(Layer.provide(DataBus.layerMemory))
      yield* Effect.gen(function*() {
        const { pool, dispatcher, consumers } = yield* services
        const seen: Array<string> = []
        for (const id of ["a", "b", "c"]) {
          yield* consumers.start({ id, handle: () => Effect.sync(() => seen.push(id)), subscriptions: [btc] })
        }
        yield* dispatcher.dispatch(market(pool, { seq: 1 }))
        yield* eventually(() => seen.length === 1)
        assert.deepStrictEqual(seen, ["a"])
        assert.strictEqual(dispatcher.stats().deliveryFailures, 2)
        const failure = logged.find((m): m is FanoutFailed => m instanceof FanoutFailed)
        assert.isDefined(failure)
        assert.deepStrictEqual(failure!.failures.map((f) => f.consumerId).sort(), ["b", "c"])
        assert.strictEqual(pool.stats().Event.outstanding, 0)
      }).pipe(
        Effect.scoped,
        Effect.provide(pipeline(remote, { dispatcher: { fanoutConcurrency: 4 } })),
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
    }))

  it.effect("leaves no fiber running once its scope closes, gap timers included", () =>
    Effect.gen(function*() {
      const { left, aliveBefore } = yield* runAndCountLeftFibers(
        layerCore({ dispatcher: { latenessMs: 1_000 } }),
        Effect.gen(function*() {
          const { pool, dispatcher } = yield* services
          yield* startRecorders(3)
          for (const seq of [1, 3]) yield* dispatcher.dispatch(market(pool, { seq }))
          yield* Effect.yieldNow()
        })
      )
      assert.isAbove(aliveBefore, 3, "consumers, a gap timer and the drain fibers were running")
      assert.strictEqual(left, 0)
    }))

  it.effect("closing the scope with events held behind a gap recycles them", () =>
    Effect.gen(function*() {
      const layer = layerCore()
      const { pool } = yield* Effect.gen(function*() {
        const s = yield* services
        yield* startRecorders(1)
        for (const seq of [1, 3, 4]) yield* s.dispatcher.dispatch(market(s.pool, { seq }))
        yield* eventually(() => s.consumers.list()[0]!.stats().processed === 1)
        assert.strictEqual(s.pool.stats().Event.outstanding, 2, "3 and 4 wait behind the gap")
        return s
      }).pipe(Effect.scoped, Effect.provide(layer))
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }))
})
