import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Logger, TestClock } from "effect"
import { runSc005 } from "../bench/internal/sc005.js"
import { layerCore } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { UseAfterRecycle } from "../src/Errors.js"
import type { AnyEvent } from "../src/Event.js"
import { Pool } from "../src/Pool.js"
import { controlAck, eventually, execReport, market } from "./support/events.js"
import { runAndCountLeftFibers } from "./support/leaks.js"

const services = Effect.all({ pool: Pool, dispatcher: Dispatcher, consumers: Consumers })
const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const

describe("Consumer runtime", () => {
  // The seeds' size (1 million deliveries) runs as `npm run bench:sc005`; the suite runs the same scenario smaller.
  it.effect("SC-005: 2,000 events to 10 subscribers (20,000 deliveries) with 10% of lambda calls dying: all recycled, all reported, no fiber left", () =>
    Effect.gen(function*() {
      const EVENTS = 2_000
      const SUBSCRIBERS = 10
      const r = yield* runSc005({ events: EVENTS, subscribers: SUBSCRIBERS, deathRate: 0.1 })
      assert.strictEqual(r.deliveries, EVENTS * SUBSCRIBERS)
      assert.isAbove(r.deaths, EVENTS * SUBSCRIBERS * 0.09)
      assert.isBelow(r.deaths, EVENTS * SUBSCRIBERS * 0.11)
      assert.strictEqual(r.failuresCounted, r.deaths, "every death counted")
      assert.strictEqual(r.outstandingAtEnd, 0, "every event recycled, dead or alive")
      assert.strictEqual(r.reported.length, r.deaths, "every death reported")
      for (const a of r.reported) {
        assert.match(String(a["consumer_id"]), /^strategy-\d$/)
        assert.match(String(a["trace_id"]), /^trace-\d+$/)
        assert.strictEqual(a["kind"], "ticker")
      }
      assert.isAbove(r.aliveBefore, SUBSCRIBERS, "the consumers were running")
      assert.strictEqual(r.fibersLeft, 0, "no fiber left running")
    }))

  it.scoped("a consumer taking 1 s per event never delays the other nine", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const fast: Array<Array<number>> = []
      for (let i = 0; i < 9; i++) {
        const got: Array<number> = []
        fast.push(got)
        yield* consumers.start({ id: `fast-${i}`, subscriptions: [btc], handle: (e) => Effect.sync(() => got.push(e.seqProvider!)) })
      }
      const slowSeen: Array<number> = []
      const slow = yield* consumers.start({
        id: "slow",
        subscriptions: [btc],
        handle: (e) => Effect.sync(() => slowSeen.push(e.seqProvider!)).pipe(Effect.zipRight(Effect.sleep("1 second")))
      })
      for (let seq = 1; seq <= 20; seq++) yield* dispatcher.dispatch(market(pool, { seq }))
      yield* eventually(() => fast.every((g) => g.length === 20), "the nine fast consumers")
      assert.deepStrictEqual(slowSeen, [1], "the slow one is still on its first event")
      assert.strictEqual(slow.stats().processed, 0)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => slow.stats().processed === 1)
      assert.deepStrictEqual(slowSeen, [1, 2])
    }).pipe(Effect.provide(layerCore())))

  it.scoped("a lambda that never returns is interrupted at the consumer's event timeout: counted, reported, recycled, and the critical events behind it flow", () =>
    Effect.gen(function*() {
      const logged: Array<{ message: string; consumer: unknown }> = []
      const capture = Logger.make(({ annotations, message }) => {
        const a = new Map(annotations)
        logged.push({ message: String(message), consumer: a.get("consumer_id") })
      })
      yield* Effect.gen(function*() {
        const { pool, dispatcher, consumers } = yield* services
        const seen: Array<string> = []
        const h = yield* consumers.start({
          id: "stuck",
          subscriptions: [btc],
          eventTimeout: "100 millis",
          handle: (e) =>
            e.seqProvider === 1
              ? Effect.never
              // within its time: a call that takes 60 ms completes
              : Effect.sleep("60 millis").pipe(Effect.zipRight(Effect.sync(() => seen.push(e.kind))))
        })
        yield* dispatcher.dispatch(market(pool, { seq: 1 }))
        yield* eventually(() => h.stats().lag === 0, "the stuck call under way")
        for (let i = 1; i <= 3; i++) yield* dispatcher.dispatch(execReport(pool, "stuck", i))
        yield* TestClock.adjust("99 millis")
        assert.strictEqual(h.stats().timeouts, 0)
        assert.strictEqual(h.stats().lag, 3, "held behind the stuck call")
        yield* TestClock.adjust("1 millis")
        yield* eventually(() => h.stats().timeouts === 1, "the timeout")
        assert.strictEqual(h.stats().failures, 1)
        assert.strictEqual(pool.stats().Event.outstanding, 0, "the stuck event recycled")
        for (let i = 1; i <= 3; i++) {
          yield* TestClock.adjust("60 millis")
          yield* eventually(() => seen.length === i, `report ${i}`)
        }
        assert.deepStrictEqual(seen, ["exec_report", "exec_report", "exec_report"])
        assert.strictEqual(h.stats().timeouts, 1, "60 ms calls are within the timeout")
        assert.strictEqual(h.stats().processed, 3)
        assert.strictEqual(pool.stats().ExecReport.outstanding, 0)
        yield* eventually(() => logged.some((l) => l.message.includes("consumer lambda failed")))
        const report = logged.find((l) => l.message.includes("consumer lambda failed"))!
        assert.strictEqual(report.consumer, "stuck")
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    }).pipe(Effect.provide(layerCore())))

  it.effect("a consumer with an event timeout, stopped while its lambda is stuck, leaves no fiber and nothing outstanding", () =>
    Effect.gen(function*() {
      let outstanding = -1
      const { left, aliveBefore } = yield* runAndCountLeftFibers(
        layerCore(),
        Effect.gen(function*() {
          const { pool, dispatcher, consumers } = yield* services
          const started = yield* Deferred.make<void>()
          const h = yield* consumers.start({
            id: "stuck",
            subscriptions: [btc],
            eventTimeout: "1 minute",
            handle: () => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.never))
          })
          for (let seq = 1; seq <= 3; seq++) yield* dispatcher.dispatch(market(pool, { seq }))
          yield* Deferred.await(started)
          yield* h.stop
          outstanding = pool.stats().Event.outstanding
          assert.strictEqual(yield* consumers.running, 0)
        })
      )
      assert.strictEqual(outstanding, 0, "the stuck event and the two behind it recycled")
      assert.isAbove(aliveBefore, 0)
      assert.strictEqual(left, 0)
    }))

  it.scoped("backpressure: market data coalesces to the latest per stream; every critical event arrives, in order, first", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const gate = yield* Deferred.make<void>()
      const seen: Array<AnyEvent> = []
      const seenView: Array<{ kind: string; provider: string; seq: number | undefined; report?: number }> = []
      const h = yield* consumers.start({
        id: "busy",
        subscriptions: [btc],
        mailbox: { marketCapacity: 8 },
        handle: (e) =>
          Deferred.await(gate).pipe(Effect.zipRight(Effect.sync(() => {
            seen.push(e)
            seenView.push({
              kind: e.kind,
              provider: e.provider,
              seq: e.seqProvider,
              ...(e._pool === "ExecReport" ? { report: e.payload!.reportSeq } : {})
            })
          })))
      })
      // the first event blocks the lambda; everything after it queues
      yield* dispatcher.dispatch(market(pool, { provider: "sim-a", seq: 1 }))
      yield* eventually(() => h.stats().lag === 0)
      const providers = ["sim-a", "sim-b", "sim-c"]
      let report = 0
      for (let seq = 2; seq <= 101; seq++) {
        for (const provider of providers) yield* dispatcher.dispatch(market(pool, { provider, seq }))
        if (seq % 2 === 0) yield* dispatcher.dispatch(execReport(pool, "busy", ++report))
      }
      const mailbox = h.stats()
      assert.strictEqual(mailbox.lag, 8 + report, "bounded market lane plus every critical event")
      yield* Deferred.succeed(gate, undefined)
      yield* eventually(() => h.stats().lag === 0 && h.stats().processed === 1 + 8 + report)
      const reports = seenView.filter((s) => s.kind === "exec_report").map((s) => s.report)
      assert.deepStrictEqual(reports, Array.from({ length: report }, (_, i) => i + 1), "all critical, in order")
      const firstMarketAfterGate = seenView.findIndex((s, i) => i > 0 && s.kind === "ticker")
      assert.isTrue(seenView.slice(1, firstMarketAfterGate).every((s) => s.kind === "exec_report"), "critical first")
      for (const provider of providers) {
        const last = seenView.filter((s) => s.kind === "ticker" && s.provider === provider).at(-1)
        assert.strictEqual(last?.seq, 101, `${provider}: the latest value won`)
      }
      assert.isAbove(consumers.list()[0]!.stats().processed, 0)
      assert.strictEqual(pool.stats().Event.outstanding + pool.stats().ExecReport.outstanding, 0)
      void seen
    }).pipe(Effect.provide(layerCore())))

  describe("recycles the event however the lambda ends", () => {
    const outcomes = {
      success: () => Effect.void,
      failure: () => Effect.fail("rejected"),
      defect: () => Effect.die(new Error("panic")),
      thrown: (): Effect.Effect<void> => {
        throw new Error("thrown outside the effect")
      }
    } as const
    for (const [name, handle] of Object.entries(outcomes)) {
      it.scoped(name, () =>
        Effect.gen(function*() {
          const { pool, dispatcher, consumers } = yield* services
          const h = yield* consumers.start({ id: "c", subscriptions: [btc], handle })
          yield* dispatcher.dispatch(market(pool, { seq: 1 }))
          yield* dispatcher.dispatch(market(pool, { seq: 2 }))
          yield* eventually(() => h.stats().processed + h.stats().failures === 2)
          assert.strictEqual(h.stats().failures, name === "success" ? 0 : 2, "the next event still runs")
          assert.strictEqual(pool.stats().Event.outstanding, 0)
        }).pipe(Effect.provide(layerCore({ pool: { debug: true } })), Effect.provide(Logger.remove(Logger.defaultLogger))))
    }

    it.scoped("interruption, with events still queued", () =>
      Effect.gen(function*() {
        const { pool, dispatcher, consumers } = yield* services
        const started = yield* Deferred.make<void>()
        const h = yield* consumers.start({
          id: "c",
          subscriptions: [btc],
          handle: () => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.never))
        })
        for (let seq = 1; seq <= 5; seq++) yield* dispatcher.dispatch(market(pool, { seq }))
        yield* Deferred.await(started)
        assert.strictEqual(pool.stats().Event.outstanding, 5)
        yield* h.stop
        assert.strictEqual(pool.stats().Event.outstanding, 0)
        assert.strictEqual(yield* consumers.running, 0)
        yield* dispatcher.dispatch(market(pool, { seq: 6 }))
        assert.strictEqual(pool.stats().Event.outstanding, 0, "a stopped consumer receives nothing")
      }).pipe(Effect.provide(layerCore({ pool: { debug: true } }))))
  })

  it.scoped("skips market data older than its routing version, never critical events; a ControlAck moves the version", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const seen: Array<string> = []
      const h = yield* consumers.start({
        id: "v",
        subscriptions: [btc],
        minVersion: 5,
        handle: (e) => Effect.sync(() => seen.push(`${e.kind}@${e.routingVersion}`))
      })
      yield* dispatcher.dispatch(market(pool, { seq: 1, routingVersion: 4 }))
      yield* dispatcher.dispatch(market(pool, { seq: 2, routingVersion: 5 }))
      yield* dispatcher.dispatch(execReport(pool, "v", 1, 0))
      yield* eventually(() => h.stats().processed === 2)
      assert.deepStrictEqual(seen.sort(), ["exec_report@0", "ticker@5"])
      assert.strictEqual(h.stats().skippedStale, 1)
      yield* dispatcher.dispatch(controlAck(pool, "v", 7))
      yield* eventually(() => h.minVersion() === 7)
      yield* dispatcher.dispatch(market(pool, { seq: 3, routingVersion: 6 }))
      yield* dispatcher.dispatch(market(pool, { seq: 4, routingVersion: 7 }))
      yield* eventually(() => h.stats().processed === 4)
      assert.deepStrictEqual(seen.slice(2), ["control_ack@0", "ticker@7"])
      assert.strictEqual(h.stats().skippedStale, 2)
    }).pipe(Effect.provide(layerCore())))

  it.scoped("debug mode: a reference kept past the lambda fails with UseAfterRecycle on the first read", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      let kept: AnyEvent | undefined
      const h = yield* consumers.start({ id: "leaky", subscriptions: [btc], handle: (e) => Effect.sync(() => (kept = e)) })
      yield* dispatcher.dispatch(market(pool, { seq: 1 }))
      yield* eventually(() => h.stats().processed === 1)
      const error = yield* Effect.try(() => kept!.symbol).pipe(Effect.flip)
      assert.instanceOf(error.error, UseAfterRecycle)
      assert.strictEqual((error.error as UseAfterRecycle).field, "symbol")
    }).pipe(Effect.provide(layerCore({ pool: { debug: true } }))))

  it.scoped("latency telemetry: dispatch-to-lambda and processing time per consumer", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const h = yield* consumers.start({ id: "t", subscriptions: [btc], handle: () => Effect.void })
      for (let seq = 1; seq <= 100; seq++) yield* dispatcher.dispatch(market(pool, { seq }))
      yield* eventually(() => h.stats().processed === 100)
      const s = h.stats()
      assert.strictEqual(s.dispatchToLambda.count, 100)
      assert.strictEqual(s.processing.count, 100)
      assert.isAbove(s.dispatchToLambda.max, 0)
      assert.isAtLeast(s.dispatchToLambda.p99, s.dispatchToLambda.p50)
    }).pipe(Effect.provide(layerCore({ dispatcher: { latencySampleEvery: 1 } }))))

  it.scoped("latency telemetry: a read while a timed lambda runs, and more timed events than are kept between reads", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const gate = yield* Deferred.make<void>()
      let started = 0
      const h = yield* consumers.start({
        id: "t",
        subscriptions: [btc],
        handle: (e) => e.seqProvider === 1 ? Effect.zipRight(Effect.sync(() => started++), Deferred.await(gate)) : Effect.void
      })
      yield* dispatcher.dispatch(market(pool, { seq: 1 }))
      yield* eventually(() => started === 1)
      const during = h.stats()
      assert.strictEqual(during.dispatchToLambda.count, 1, "the lambda in flight has started")
      assert.strictEqual(during.processing.count, 0, "and has not ended")
      yield* Deferred.succeed(gate, undefined)
      yield* eventually(() => h.stats().processed === 1)
      assert.strictEqual(h.stats().processing.count, 1, "its processing time counted once it ended")
      // 300 timed events with no read between them: more than the samples kept before they are recorded
      for (let seq = 2; seq <= 301; seq++) yield* dispatcher.dispatch(market(pool, { seq, ingestTs: 1 }))
      yield* eventually(() => h.stats().processed === 301)
      const s = h.stats()
      assert.strictEqual(s.dispatchToLambda.count, 301)
      assert.strictEqual(s.recentDispatchToLambda.count, 301)
      assert.strictEqual(s.processing.count, 301)
      assert.strictEqual(s.ingestToLambda.count, 300, "the events with an ingest time")
      assert.strictEqual(s.criticalDispatchToLambda.count, 0)
      // the critical lane's events are counted in both figures
      for (let seq = 1; seq <= 3; seq++) yield* dispatcher.dispatch(execReport(pool, "t", seq))
      yield* eventually(() => h.stats().processed === 304)
      assert.strictEqual(h.stats().dispatchToLambda.count, 304)
      assert.strictEqual(h.stats().criticalDispatchToLambda.count, 3)
    }).pipe(Effect.provide(layerCore({ dispatcher: { latencySampleEvery: 1 } }))))

  it.scoped("latency telemetry times every event at a low rate by default", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const h = yield* consumers.start({ id: "t", subscriptions: [btc], handle: () => Effect.void })
      for (let seq = 1; seq <= 20; seq++) yield* dispatcher.dispatch(market(pool, { seq }))
      yield* eventually(() => h.stats().processed === 20)
      assert.strictEqual(h.stats().dispatchToLambda.count, 20)
    }).pipe(Effect.provide(layerCore())))

  it.scoped("latency telemetry with a fixed share times one event in N", () =>
    Effect.gen(function*() {
      const { pool, dispatcher, consumers } = yield* services
      const h = yield* consumers.start({ id: "t", subscriptions: [btc], handle: () => Effect.void })
      for (let seq = 1; seq <= 80; seq++) yield* dispatcher.dispatch(market(pool, { seq }))
      yield* eventually(() => h.stats().processed === 80)
      assert.strictEqual(h.stats().dispatchToLambda.count, 10)
      assert.strictEqual(h.stats().processing.count, 10)
    }).pipe(Effect.provide(layerCore({ dispatcher: { latencySampleEvery: 8, latencySamplesPerSecond: 0 } }))))

  it.effect("a stopped consumer leaves no fiber behind", () =>
    Effect.gen(function*() {
      const { left } = yield* runAndCountLeftFibers(
        layerCore(),
        Effect.gen(function*() {
          const { consumers } = yield* services
          const a = yield* consumers.start({ id: "a", handle: () => Effect.void })
          yield* consumers.start({ id: "b", handle: () => Effect.void })
          assert.strictEqual(yield* consumers.running, 2)
          yield* a.stop
          assert.strictEqual(yield* consumers.running, 1)
        })
      )
      assert.strictEqual(left, 0)
    }))
})
