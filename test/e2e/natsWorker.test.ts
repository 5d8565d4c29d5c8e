/**
 * A worker-isolated strategy in a NATS strategy process, end to end: a feed
 * gateway process and a strategy gateway process (`src/main.ts`) against a
 * `nats-server` started here, the paper trader given on the command line with
 * `--strategy-isolation worker`, and a strategy that logs what it handles on
 * a worker, also from the command line (the configuration enables no
 * strategy). Its worker gets the feed's market data, its
 * orders go to the feed's Control Plane and their execution reports come
 * back to its handler; every critical event is acknowledged on JetStream once
 * the worker handled it (nothing left pending when the process stops); the
 * worker's figures are in the process's `/metrics`; it stops cleanly.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Schedule } from "effect"
import { NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import { CRITICAL_STREAM, criticalDurable } from "../../src/nats/Subjects.js"
import type { StatusSnapshot } from "../../src/Status.js"
import { natsServer } from "../nats/support/server.js"
import { endpointsUrl, type GatewayProcess as Gateway, startGateway, until } from "./support.js"

/** Generous: three processes and a worker thread start slowly on a loaded machine; the bound only ends a broken run. */
const WAIT_S = 90

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "meltica-nats-worker-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const httpUrl = (g: Gateway) => endpointsUrl(g, WAIT_S)

/** The value of a sample of `name` whose labels include every one of `labels`, summed. */
const metric = (text: string, name: string, ...labels: ReadonlyArray<string>): number => {
  let sum = 0
  for (const line of text.split("\n")) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && labels.every((l) => line.includes(l))) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1))
    }
  }
  return sum
}

/** Both processes' configuration: no strategy enabled (the strategy process takes its strategies from the command line). */
const configFor = (url: string, role: "feed" | "strategy") => `
http: { port: 0 }
statusIntervalMs: 1000
bus: { type: nats, url: "${url}", role: ${role} }
strategies:
  bbo: { enabled: false }
  orders: { enabled: false }
`

const TRADER = "paper-trader"
const LOGGER = "tick-logger"
const LOGGER_ORDERS = 3

/** A `field` of the annotations of each log line `message` of the strategy (relayed from its worker). */
const logged = (g: Gateway, message: string) =>
  g.lines.filter((l) => l.message === message && (l.annotations as Record<string, unknown>).worker === LOGGER)
    .map((l) => l.annotations as Record<string, unknown>)

describe("a worker strategy over NATS", () => {
  it.scopedLive("a strategy process runs --strategy-isolation worker: market data in, orders out, reports back, acknowledged", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const dir = yield* tempDir
      const feedFile = join(dir, "feed.yaml")
      const strategyFile = join(dir, "strategy.yaml")
      writeFileSync(feedFile, configFor(server.url, "feed"))
      writeFileSync(strategyFile, configFor(server.url, "strategy"))

      const feed = yield* startGateway("feed", feedFile)
      const strategy = yield* startGateway("strategy", strategyFile, "node", [
        "--strategy",
        "examples/paperTrader.ts",
        "--strategy-options",
        `{"intervalMs":100}`,
        "--strategy-isolation",
        "worker",
        // the tick logger (`fixtures/tickLogger.ts`): every ticker and report it handles is in the process's log
        "--strategy",
        resolve("test/e2e/fixtures/tickLogger.ts"),
        "--strategy-options",
        JSON.stringify({ symbol: "BTC-USDT", orders: LOGGER_ORDERS }),
        "--strategy-isolation",
        "worker"
      ])
      const strategyUrl = yield* httpUrl(strategy)

      const started = yield* until("both strategies on their worker threads", WAIT_S, async () => {
        const ids = strategy.lines.filter((l) => l.message === "strategy started on a worker thread")
          .map((l) => (l.annotations as Record<string, unknown>).consumer_id)
        return ids.length === 2 ? ids : undefined
      }, strategy)
      assert.sameMembers(started, [TRADER, LOGGER])

      // market data reaches the worker's handler, and the reports of its orders come back to it
      const scrape = () => fetch(`${strategyUrl}/metrics`).then((r) => r.text())
      const text = yield* until("the worker to take market data and execution reports", WAIT_S, async () => {
        const t = await scrape()
        const closed = strategy.lines.filter((l) => l.message === "order closed").length
        return metric(t, "meltica_worker_ring_frames_total", `consumer="${TRADER}"`, `lane="market"`) >= 20 &&
            logged(strategy, "tick").length >= 30 && logged(strategy, "report").filter((r) => r.status === "filled").length >= LOGGER_ORDERS &&
            metric(t, "meltica_nats_critical_delivered_total", `kind="exec_report"`) >= 4 && closed >= 2
          ? t
          : undefined
      }, strategy)
      assert.isAbove(metric(text, "meltica_worker_ring_frames_total", `consumer="${TRADER}"`, `lane="critical"`), 0)
      assert.isAbove(metric(text, "meltica_worker_ring_frames_read_total", `consumer="${TRADER}"`), 0)
      assert.isAbove(metric(text, "meltica_consumer_processed_total", `consumer="${TRADER}"`), 0)
      assert.isAbove(metric(text, "meltica_worker_commands_total", `consumer="${TRADER}"`), 0)
      assert.strictEqual(metric(text, "meltica_worker_running", `consumer="${TRADER}"`), 1)
      assert.strictEqual(metric(text, "meltica_worker_undecodable_frames_total", `consumer="${TRADER}"`), 0)
      assert.strictEqual(metric(text, "meltica_worker_crashes_total", `consumer="${TRADER}"`), 0)

      // the execution reports reached the strategy's own handler, on the worker (its log is relayed, tagged)
      const closed = strategy.lines.find((l) => l.message === "order closed")!
      const annotations = closed.annotations as Record<string, unknown>
      assert.strictEqual(annotations.worker, TRADER)
      assert.strictEqual(annotations.consumer_id, TRADER)

      // each venue's stream reached the worker's handler in order; each order's reports once each, in order, to the fill
      const ticks = logged(strategy, "tick")
      const providers = new Set(ticks.map((t) => String(t.provider)))
      assert.isAbove(providers.size, 0)
      for (const p of providers) {
        const mine = ticks.filter((t) => t.provider === p)
        for (let i = 1; i < mine.length; i++) {
          const [before, now] = [mine[i - 1]!, mine[i]!]
          if (Number(now.seq) >= 0 && Number(before.seq) >= 0) assert.isAbove(Number(now.seq), Number(before.seq), `${p} in sequence`)
          else assert.isAtLeast(Number(now.ingest_ts), Number(before.ingest_ts), `${p} in ingest order`)
        }
      }
      const reportsOf = new Map<string, Array<{ readonly seq: number; readonly status: string }>>()
      for (const r of logged(strategy, "report")) {
        const id = String(r.client_order_id)
        reportsOf.set(id, [...(reportsOf.get(id) ?? []), { seq: Number(r.report_seq), status: String(r.status) }])
      }
      assert.strictEqual(reportsOf.size, LOGGER_ORDERS, "reports for each order")
      for (const [id, reports] of reportsOf) {
        // new, maybe partial fills, then filled: each report once, in sequence
        assert.deepStrictEqual(reports.map((r) => r.seq), reports.map((_, i) => i + 1), `${id}: each report once, in order`)
        assert.strictEqual(reports[0]!.status, "new", id)
        assert.strictEqual(reports.at(-1)!.status, "filled", id)
      }

      const status = (yield* Effect.promise(() => fetch(`${strategyUrl}/status.json`).then((r) => r.json()))) as StatusSnapshot
      const listed = status.strategies?.find((s) => s.id === TRADER)
      assert.strictEqual(listed?.state, "running")
      assert.strictEqual(listed?.description, "on a worker thread")
      const ready = yield* until("the strategy process /ready", WAIT_S, async () => {
        const r = await fetch(`${strategyUrl}/ready`)
        return r.status === 200 ? ((await r.json()) as { ready: boolean; reasons: Array<string> }) : undefined
      }, strategy)
      assert.deepStrictEqual(ready, { ready: true, reasons: [] })

      // the feed stops first, so that no report is still on its way when the strategy process stops (one delivered
      // during a stop stays unacknowledged for the next process, by design: at-least-once); every report it sent is
      // delivered, handled and acknowledged while the strategy process runs
      feed.process.kill("SIGTERM")
      assert.strictEqual(yield* Deferred.await(feed.exited).pipe(Effect.timeout("60 seconds")), 0, feed.raw.join("\n").slice(-2_000))
      const consumerInfos = Effect.gen(function*() {
        const { jsm } = yield* NatsConnection
        return yield* Effect.forEach([TRADER, LOGGER], (id) =>
          Effect.tryPromise(() => jsm.consumers.info(CRITICAL_STREAM, criticalDurable(id))).pipe(
            Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("10 seconds")))
          ))
      }).pipe(
        Effect.provide(NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [server.url], name: "test", manageStreams: false }))))
      )
      yield* consumerInfos.pipe(
        Effect.filterOrFail((infos) => infos.every((i) => i.num_pending === 0 && i.num_ack_pending === 0), () => "reports still on their way"),
        Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds"))),
        Effect.orElse(() => Effect.void)
      )

      // a clean stop: no worker, fiber or pooled event left ...
      strategy.process.kill("SIGTERM")
      const code = yield* Deferred.await(strategy.exited).pipe(Effect.timeout("60 seconds"))
      assert.strictEqual(code, 0, strategy.raw.join("\n").slice(-2_000))
      const messages = strategy.lines.map((l) => String(l.message))
      assert.include(messages, "leak report: 0 outstanding pooled object(s) (Event 0, MergedEvent 0, ExecReport 0)")
      assert.include(messages, "fibers left: 0")
      assert.notInclude(messages, "strategy worker did not stop in time: terminated")

      // ... and every critical event the worker handled was acknowledged on JetStream: none left unacknowledged
      const infos = yield* consumerInfos
      for (const info of infos) {
        assert.isAbove(info.delivered.consumer_seq, 4, `${info.name}: reports were delivered to the strategy process`)
        assert.strictEqual(info.num_ack_pending, 0, `${info.name}: each acknowledged once the worker handled it`)
        assert.strictEqual(info.num_redelivered, 0, `${info.name}: none redelivered for want of an acknowledgement`)
      }
    }), { timeout: 240_000 })
})
