/**
 * `isolation: worker` on a `strategies.modules` entry: the value is checked
 * at the configuration's boundary, and a gateway started from such a
 * configuration runs the strategy on a worker thread, subscribed through the
 * real Control Plane to the simulated venues, and stops with nothing left.
 */
import { resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Logger, Schema, TestClock } from "effect"
import { runGateway } from "../../layers/Application.js"
import { layerTest, testConfig } from "../../layers/Test.js"
import { HttpSection, OrdersStrategyConfig, StrategiesSection, StrategyModuleConfig } from "../../schema/Config.js"
import * as Gateway from "../../src/Gateway.js"
import { definedCounters } from "../../src/Metrics.js"
import { Prometheus } from "../../src/Prometheus.js"
import { Status } from "../../src/Status.js"
import { books, changeOf } from "./support.js"

/** Each sample of a metric (`name{labels} value` lines), with its labels as text. */
const samples = (text: string, name: string): ReadonlyArray<{ readonly labels: string; readonly value: number }> =>
  text.split("\n").flatMap((line) => {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    return m !== null && m[1] === name ? [{ labels: m[2] ?? "", value: Number(m[3]) }] : []
  })
/** The value of `name` for the recorder's consumer (and `more` labels), -1 when absent. */
const recorderValue = (text: string, name: string, more = ""): number =>
  samples(text, name).find((s) => s.labels.includes(`consumer="recorder"`) && s.labels.includes(more))?.value ?? -1

const decode = Schema.decodeUnknownEither(StrategyModuleConfig)

describe("isolation: worker", () => {
  it("the configuration takes process or worker, and refuses anything else with a clear message", () => {
    assert.strictEqual(Either.getOrThrow(decode({ module: "s.ts", isolation: "worker" })).isolation, "worker")
    assert.strictEqual(Either.getOrThrow(decode({ module: "s.ts", isolation: "process" })).isolation, "process")
    assert.isUndefined(Either.getOrThrow(decode({ module: "s.ts" })).isolation)
    const hostile: ReadonlyArray<unknown> = ["thread", "WORKER", "", 1, null, true, ["worker"], { worker: true }]
    for (const isolation of hostile) {
      const result = decode({ module: "s.ts", isolation })
      assert.isTrue(Either.isLeft(result), `refused: ${JSON.stringify(isolation)}`)
      if (Either.isLeft(result)) assert.include(String(result.left), "isolation must be process or worker")
    }
  })

  it.effect("a gateway runs a configured worker strategy on the simulated venues and stops with nothing left", () =>
    Effect.gen(function*() {
      const b = books()
      const messages: Array<string> = []
      const collect = Logger.make(({ message }) => {
        messages.push(Array.isArray(message) ? String(message[0]) : String(message))
      })
      const config = testConfig({
        http: HttpSection.make({ enabled: false }),
        strategies: StrategiesSection.make({
          orders: OrdersStrategyConfig.make({ enabled: false }),
          modules: [
            StrategyModuleConfig.make({
              module: resolve("test/worker/fixtures/recorder.ts"),
              options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "BTC-USDT" },
              isolation: "worker"
            })
          ]
        })
      })
      const fiber = yield* runGateway({ config, strategies: [] }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, collect)),
        Effect.fork
      )
      // the worker starts in real time; the venues move with the test clock
      for (let i = 0; i < 2_000 && Atomics.load(b.seen, 0) < 5; i++) {
        yield* TestClock.adjust("10 millis")
        yield* changeOf(b.seen, 0, 10)
      }
      assert.isAtLeast(Atomics.load(b.seen, 0), 5, "tickers reached the worker's handler")
      assert.include(messages, "strategy started on a worker thread")
      yield* Fiber.interrupt(fiber)
      assert.include(messages, "leak report: 0 outstanding pooled object(s) (Event 0, MergedEvent 0, ExecReport 0)")
      assert.include(messages, "fibers left: 0")
    }), { timeout: 120_000 })
})

describe("worker figures in /metrics", () => {
  it.effect("a gateway with a worker strategy exports the worker's counters, by consumer, with help texts", () =>
    Effect.gen(function*() {
      const b = books()
      const config = testConfig({
        http: HttpSection.make({ enabled: false }),
        strategies: StrategiesSection.make({ orders: OrdersStrategyConfig.make({ enabled: false }) })
      })
      const spec = {
        module: resolve("test/worker/fixtures/recorder.ts"),
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "BTC-USDT" },
        isolation: "worker" as const
      }
      const { snapshot, text } = yield* Effect.gen(function*() {
        const metrics = yield* Prometheus
        const status = yield* Status
        const fiber = yield* Gateway.run(config, { strategies: [spec] }).pipe(Effect.scoped, Effect.fork)
        // the worker runs in real time; the venues move with the test clock; a scrape samples now
        let scraped = ""
        for (let i = 0; i < 2_000; i++) {
          scraped = yield* metrics.scrape
          // five tickers handled, besides the Subscribe's ack and result
          if (recorderValue(scraped, "meltica_consumer_processed_total") >= 7) break
          yield* TestClock.adjust("10 millis")
          yield* changeOf(b.seen, 0, 10)
        }
        const snapshot = yield* status.snapshot
        yield* Fiber.interrupt(fiber)
        return { snapshot, text: scraped }
      }).pipe(Effect.provide(layerTest(config)))

      // the worker's consumer is on the status page's consumer list, as any consumer
      const listed = snapshot.consumers.find((c) => c.id === "recorder")
      assert.isDefined(listed, "the worker's consumer is listed")
      assert.isAtLeast(listed!.processed, 7)
      assert.strictEqual(listed!.failures, 0)
      assert.isAtLeast(listed!.criticalProcessed, 2, "the Subscribe's ack and result")
      assert.isAtLeast(listed!.lag, 0)
      assert.isNotNull(listed!.p99Us, "its recent dispatch-to-lambda, timed in the worker")
      assert.isAtLeast(listed!.maxUs!, listed!.p50Us!)

      assert.isAtLeast(recorderValue(text, "meltica_consumer_processed_total"), 7, "the worker's consumer, as any consumer")
      assert.isAtLeast(recorderValue(text, "meltica_worker_ring_frames_total", `lane="market"`), 5)
      assert.isAtLeast(recorderValue(text, "meltica_worker_ring_frames_total", `lane="critical"`), 1, "the Subscribe's ack and result")
      assert.isAtLeast(recorderValue(text, "meltica_worker_ring_frames_read_total"), 5)
      assert.isAtLeast(recorderValue(text, "meltica_worker_commands_total"), 1, "the Subscribe")
      assert.strictEqual(recorderValue(text, "meltica_worker_running"), 1)
      for (const zero of ["crashes", "restarts", "undecodable_frames", "foreign_commands", "write_failures", "critical_replayed"]) {
        assert.strictEqual(recorderValue(text, `meltica_worker_${zero}_total`), 0, `${zero} exported at 0`)
      }
      // every worker counter is exported for the worker's consumer, with its help text
      const workerCounters = definedCounters.filter((n) => n.startsWith("meltica_worker_"))
      assert.isAtLeast(workerCounters.length, 12)
      for (const name of workerCounters) {
        assert.isAtLeast(recorderValue(text, `${name}_total`), 0, `${name} exported`)
        assert.match(text, new RegExp(`# HELP ${name}_total \\S`), `${name} has a help text`)
      }
      for (const gauge of ["meltica_worker_running", "meltica_worker_handovers_waiting", "meltica_worker_critical_unacked"]) {
        assert.isAtLeast(recorderValue(text, gauge), 0, `${gauge} exported`)
      }
    }), { timeout: 120_000 })
})
