import { createServer, request } from "node:http"
import { HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, TestClock } from "effect"
import bboFollower from "../examples/bboFollower.js"
import paperTrader from "../examples/paperTrader.js"
import { layerTest, TEST_VENUES, testConfig } from "../layers/Test.js"
import { DeadLetter } from "../src/DeadLetter.js"
import * as Gateway from "../src/Gateway.js"
import * as Http from "../src/Http.js"
import { definedCounters, definedHistograms } from "../src/Metrics.js"
import { Prometheus } from "../src/Prometheus.js"
import { MIN_RATE_WINDOW_MS, RATE_WINDOW_MS, Status } from "../src/Status.js"
import { Pool } from "../src/Pool.js"
import { Recycler } from "../src/Recycler.js"
import * as Strategy from "../src/strategy/index.js"
import { runAndCountLeftFibers } from "./support/leaks.js"
import { advance } from "./support/clock.js"

/** The BBO follower example under another id, its state readable, on BTC-USDT (the test configuration's ticker merge). */
const follower = (id: string) => {
  const observed = Strategy.observe(bboFollower, id)
  return { ...observed, spec: { strategy: observed.strategy, options: { symbol: "BTC-USDT" } } }
}

/** Advances the TestClock in 10 ms steps (each step lets every fiber due run). */

/** Each sample of a metric (`name{labels} value` lines), with its labels as text. */
const samples = (text: string, name: string): ReadonlyArray<{ readonly labels: string; readonly value: number }> =>
  text.split("\n").flatMap((line) => {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    return m !== null && m[1] === name ? [{ labels: m[2] ?? "", value: Number(m[3]) }] : []
  })

/** Lets every fiber that can run without time passing run. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

describe("telemetry", () => {
  // First in the file: the metric registry is per process, so no earlier
  // test may have registered a series this one looks for.
  it.effect("every defined counter is exported right after start, error counters at 0", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const bbo = follower("bbo")
      const { result: text } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const metrics = yield* Prometheus
          const fiber = yield* Gateway.run(config, { strategies: [bbo.spec] }).pipe(Effect.scoped, Effect.fork)
          yield* settle // routing flipped, strategies started; no time has passed, no venue has sent anything
          const text = yield* metrics.scrape
          yield* Fiber.interrupt(fiber)
          return text
        })
      )
      // NATS counters belong to a process whose buses run on NATS, live ones to a gateway with live venues, HTTP ones
      // to a process with the endpoints (this one has none), worker ones to a process with worker strategies
      const expected = definedCounters.filter((n) =>
        !n.startsWith("meltica_nats_") && !n.startsWith("meltica_live_") && !n.startsWith("meltica_http_") &&
        !n.startsWith("meltica_worker_")
      )
      assert.isAbove(expected.length, 30)
      const missing = expected.filter((n) => !text.includes(`# TYPE ${n}_total counter`))
      assert.deepStrictEqual(missing, [], "counters absent from the first scrape")
      for (const name of [
        "meltica_provider_malformed_frames_total",
        "meltica_provider_sequence_gaps_total",
        "meltica_provider_checksum_mismatches_total",
        "meltica_dispatcher_delivery_failures_total",
        "meltica_consumer_failures_total",
        "meltica_recycler_double_puts_total",
        "meltica_dead_letters_total",
        "meltica_control_malformed_total",
        "meltica_merge_missing_provider_total"
      ]) {
        const got = samples(text, name)
        assert.isAbove(got.length, 0, name)
        assert.deepStrictEqual(got.filter((s) => s.value !== 0), [], `${name} is 0`)
      }
      // per venue and reason, per consumer, per pool
      assert.include(text, `meltica_provider_malformed_frames_total{provider="sim-b",reason="invalid_json"} 0`)
      assert.include(text, `meltica_consumer_failures_total{consumer="bbo"} 0`)
      assert.include(text, `meltica_recycler_recycled_total{pool="ExecReport"} 0`)
      for (const h of definedHistograms) assert.include(text, `# TYPE ${h.name} histogram`)
    }))

  it.effect("latencies are Prometheus histograms: per consumer dispatch-to-lambda and processing, fan-out duration and parallelism", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const a = follower("bbo-a")
      const b = follower("bbo-b")
      const { result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const metrics = yield* Status
          const prometheus = yield* Prometheus
          const fiber = yield* Gateway.run(config, { strategies: [a.spec, b.spec] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(1_500)
          const snapshot = yield* metrics.snapshot
          const text = yield* prometheus.scrape
          yield* Fiber.interrupt(fiber)
          return { snapshot, text }
        })
      )
      const { snapshot, text } = result
      assert.notInclude(text, "quantile=", "no quantile gauges")
      for (const [name, labels] of [
        ["meltica_consumer_dispatch_to_lambda_seconds", `consumer="bbo-a"`],
        ["meltica_consumer_processing_seconds", `consumer="bbo-b"`],
        ["meltica_dispatcher_fanout_duration_seconds", ""]
      ] as const) {
        const buckets = samples(text, `${name}_bucket`).filter((s) => s.labels.includes(labels))
        const count = samples(text, `${name}_count`).find((s) => s.labels.includes(labels))
        assert.isDefined(count, name)
        assert.isAbove(count!.value, 0, `${name} has values`)
        assert.strictEqual(buckets.length, 20, `${name}: 19 bounds and +Inf`)
        assert.isTrue(buckets.every((s, i) => i === 0 || s.value >= buckets[i - 1]!.value), `${name} buckets are cumulative`)
        assert.include(buckets[0]!.labels, `le="0.000001"`)
        assert.include(buckets[19]!.labels, `le="+Inf"`)
        assert.strictEqual(buckets[19]!.value, count!.value, `${name}: +Inf equals _count`)
        assert.isAtLeast(samples(text, `${name}_sum`).find((s) => s.labels.includes(labels))!.value, 0)
      }
      // the critical lane's part of a consumer's dispatch-to-lambda, as a histogram of its own
      const critical = samples(text, "meltica_consumer_critical_dispatch_to_lambda_seconds_count")
        .find((s) => s.labels.includes(`consumer="bbo-a"`))
      assert.isDefined(critical)
      assert.isAtMost(critical!.value, samples(text, "meltica_consumer_dispatch_to_lambda_seconds_count")
        .find((s) => s.labels.includes(`consumer="bbo-a"`))!.value)
      // both followers take the merged quotes: one fan-out to two subscribers per merged event
      assert.strictEqual(samples(text, "meltica_dispatcher_fanout_max_parallelism")[0]!.value, 2)
      assert.isAbove(samples(text, "meltica_dispatcher_fanouts_total")[0]!.value, 0)
      assert.isAbove(samples(text, "meltica_dispatcher_fanout_duration_max_seconds")[0]!.value, 0)
      assert.strictEqual(snapshot.fanout.maxParallelism, 2)
      assert.isNotNull(snapshot.fanout.p95Us)
      assert.isAbove(snapshot.fanout.count, 0)
      assert.isNotNull(snapshot.consumers.find((c) => c.id === "bbo-a")!.processingP99Us)
    }))

  it.effect("rates cover a fixed window of periodic samples; before one second of history, and with nothing sampled, \"-\"", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const bbo = follower("bbo")
      // subscribes to nothing and sends nothing: its latency window stays empty
      const idle = { strategy: Strategy.define({ id: "idle" }) }
      const { result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const metrics = yield* Status
          const fiber = yield* Gateway.run(config, { strategies: [bbo.spec, idle] }).pipe(Effect.scoped, Effect.fork)
          yield* settle
          const atStart = yield* metrics.snapshot
          yield* advance(500)
          const early = yield* metrics.snapshot
          yield* advance(1_500)
          const periodic = yield* metrics.latest
          yield* TestClock.adjust("5 millis")
          const between = yield* metrics.snapshot
          // the venues stop; the periodic samples go on
          yield* Fiber.interrupt(fiber)
          for (let t = 0; t < 12; t++) yield* TestClock.adjust("1 second")
          const later = yield* metrics.snapshot
          return { atStart, early, periodic, between, later }
        })
      )
      const { atStart, early, periodic, between, later } = result
      assert.isNull(atStart.rates)
      const idleView = atStart.consumers.find((c) => c.id === "idle")!
      assert.deepStrictEqual([idleView.p50Us, idleView.p99Us, idleView.maxUs, idleView.processingP99Us], [null, null, null, null])
      assert.match(Gateway.statusLine(atStart), /^in -\/s out -\/s deliveries -\/s \| /)
      assert.match(Gateway.statusLine({ ...atStart, p99DispatchToLambdaUs: null }), / \| p99 -us \| /)
      assert.isNull(early.rates, "half a second of history is no rate")
      assert.isNotNull(periodic.rates)
      assert.isAtLeast(periodic.rates!.windowMs, MIN_RATE_WINDOW_MS)
      assert.isAbove(periodic.rates!.eventsIn, 0)
      // a sample 5 ms after a periodic one shows the periodic one's rates, not a rate over 5 ms
      assert.deepStrictEqual(between.rates, periodic.rates)
      assert.isAtLeast(later.rates!.windowMs, RATE_WINDOW_MS)
      assert.isAtMost(later.rates!.windowMs, RATE_WINDOW_MS + 1_000)
      assert.deepStrictEqual([later.rates!.eventsIn, later.rates!.deliveries], [0, 0], "nothing moved in the last window")
      assert.match(Gateway.statusLine(later), /^in 0\.0\/s out 0\.0\/s deliveries 0\.0\/s \| /)
    }))
})

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
}

/** One request over a real socket, with the Host header given as is (fetch would not let a test choose it). */
const call = (port: number, path: string, options: { readonly method?: string; readonly host?: string } = {}) =>
  Effect.async<Answer>((resume) => {
    const req = request(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.host === undefined ? {} : { host: options.host } },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => (body += chunk))
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body })))
      }
    )
    req.on("error", (e) => resume(Effect.die(e)))
    req.end()
  })

/** The operator endpoints on a free loopback port, over the test application layer. */
const endpoints = (allowedHosts: ReadonlyArray<string> = []) =>
  Http.layer({ host: "127.0.0.1", port: 0, allowedHosts }).pipe(Layer.provideMerge(layerTest(testConfig())))

const portOf = Effect.map(HttpServer.HttpServer, (s) => (s.address._tag === "TcpAddress" ? s.address.port : 0))

describe("operator endpoints", () => {
  it.scopedLive("the Host header must name this server, a localhost form or an allowed name (DNS rebinding)", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      const table: ReadonlyArray<readonly [host: string, status: number]> = [
        [`127.0.0.1:${port}`, 200],
        [`localhost:${port}`, 200],
        [`LOCALHOST:${port}`, 200],
        [`[::1]:${port}`, 200],
        ["metrics.internal", 200],
        [`metrics.internal:443`, 200],
        ["evil.example.com", 421],
        [`evil.example.com:${port}`, 421],
        [`localhost.evil.example.com:${port}`, 421],
        [`127.0.0.1:${port + 1}`, 421],
        ["127.0.0.1", 421],
        [`127.0.0.1:${port}@evil.example.com`, 421]
      ]
      for (const [host, status] of table) {
        const answer = yield* call(port, "/health", { host })
        assert.strictEqual(answer.status, status, `Host: ${JSON.stringify(host)}`)
        if (status === 421) assert.include(answer.body, "http.allowedHosts")
      }
    }).pipe(Effect.provide(endpoints(["metrics.internal"]))))

  it.scopedLive("security headers on every answer; 405 with Allow for a wrong method; 404 for an unknown path", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      const answers = [
        yield* call(port, "/"),
        yield* call(port, "/metrics"),
        yield* call(port, "/status.json"),
        yield* call(port, "/dead-letters"),
        yield* call(port, "/metrics", { method: "POST" }),
        yield* call(port, "/nowhere"),
        yield* call(port, "/health", { host: "evil.example.com" })
      ]
      assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200, 405, 404, 421])
      for (const a of answers) {
        assert.strictEqual(a.headers["x-content-type-options"], "nosniff")
        assert.strictEqual(a.headers["x-frame-options"], "DENY")
        assert.include(String(a.headers["content-security-policy"]), "frame-ancestors 'none'")
        assert.strictEqual(a.headers["referrer-policy"], "no-referrer")
        assert.strictEqual(a.headers["cache-control"], "no-store")
      }
      for (const [method, path] of [["POST", "/metrics"], ["PUT", "/status.json"], ["DELETE", "/dead-letters"], ["PATCH", "/"]] as const) {
        const a = yield* call(port, path, { method })
        assert.strictEqual(a.status, 405, `${method} ${path}`)
        assert.strictEqual(a.headers["allow"], "GET")
      }
    }).pipe(Effect.provide(endpoints())))

  it.scopedLive("GET /dead-letters: the newest first, bounded, payloads truncated, credentials in URLs masked", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      const dl = yield* DeadLetter
      for (let i = 0; i < 150; i++) dl.unsafeRecord("sim-a", "invalid_json", `{"n":${i}`, 1_000 + i)
      dl.unsafeRecord("binance", "schema", "x".repeat(10_000), 2_000)
      dl.unsafeRecord("control-bus", "schema", `{"url":"nats://alice:s3cret@10.0.0.5:4222"}`, 3_000)
      type Page = {
        total: number
        shown: number
        counts: Array<{ source: string; reason: string; count: number }>
        entries: Array<{ source: string; raw: string; rawLength: number; truncated: boolean; at: string }>
      }
      const page = JSON.parse((yield* call(port, "/dead-letters")).body) as Page
      assert.strictEqual(page.total, 152)
      assert.strictEqual(page.shown, Http.DEAD_LETTERS_DEFAULT)
      assert.strictEqual(page.entries[0]!.source, "control-bus", "newest first")
      assert.notInclude(page.entries[0]!.raw, "s3cret")
      assert.include(page.entries[0]!.raw, "nats://***@10.0.0.5:4222")
      assert.deepStrictEqual(
        [page.entries[1]!.source, page.entries[1]!.raw.length, page.entries[1]!.rawLength, page.entries[1]!.truncated],
        ["binance", Http.DEAD_LETTER_RAW_CHARS, 10_000, true]
      )
      assert.strictEqual(page.entries[2]!.raw, `{"n":149`)
      assert.strictEqual(page.entries[0]!.at, new Date(3_000).toISOString())
      assert.deepStrictEqual(page.counts.find((c) => c.source === "sim-a"), { source: "sim-a", reason: "invalid_json", count: 150 })
      const few = JSON.parse((yield* call(port, "/dead-letters?limit=5")).body) as Page
      assert.strictEqual(few.shown, 5)
      const many = JSON.parse((yield* call(port, "/dead-letters?limit=99999")).body) as Page
      assert.strictEqual(many.shown, 152, "capped at what is retained (and at 1,000)")
      const junk = JSON.parse((yield* call(port, "/dead-letters?limit=-3")).body) as Page
      assert.strictEqual(junk.shown, Http.DEAD_LETTERS_DEFAULT)
    }).pipe(Effect.provide(endpoints())))

  it.scopedLive("a port already in use: one typed error naming the setting to change", () =>
    Effect.gen(function*() {
      const taken = yield* Effect.acquireRelease(
        Effect.async<ReturnType<typeof createServer>>((resume) => {
          const server = createServer()
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const address = taken.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const exit = yield* Layer.build(Http.layer({ host: "127.0.0.1", port }).pipe(Layer.provide(layerTest(testConfig())))).pipe(
        Effect.scoped,
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.instanceOf(error, Http.HttpListenFailed)
      assert.strictEqual(
        error!.message,
        `cannot serve the operator endpoints: 127.0.0.1:${port} is already in use; ` +
          "set http.port (or MELTICA_HTTP_PORT) to a free port, 0 for any, or http.enabled: false"
      )
      assert.notInclude(error!.message, "\n")
    }))
})

describe("Gateway", () => {
  it.effect("example: the BBO follower receives merged quotes from every venue", () =>
    Effect.gen(function*() {
      const bbo = follower("bbo")
      const config = testConfig()
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [bbo.spec] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(2_000)
          const state = { ...bbo.state() }
          yield* Fiber.interrupt(fiber)
          return state
        })
      )
      assert.isTrue(result.subscribed, "SubscribeMerged accepted")
      assert.isAbove(result.updates, 10, `merged quotes: ${result.updates}`)
      assert.deepStrictEqual([...result.venues].sort(), [...TEST_VENUES])
      assert.isTrue(TEST_VENUES.includes(result.bestBidProvider as never))
      assert.isBelow(Number(result.bestBid), Number(result.bestAsk) * 1.01)
      assert.strictEqual(left, 0, "fibers left after the scope closed")
    }))

  it.effect("example: the paper trader places and cancels orders and gets every report, in order", () =>
    Effect.gen(function*() {
      const trader = Strategy.observe(paperTrader, "trader")
      const config = testConfig()
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [{ strategy: trader.strategy, options: { symbol: "BTC-USDT", quantity: "0.001", intervalMs: 100 } }] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(3_000)
          const state = structuredClone({ ...trader.state(), lastSeq: undefined })
          yield* Fiber.interrupt(fiber)
          return { state, recycler: yield* Recycler }
        })
      )
      const s = result.state
      assert.isAbove(s.submitted, 5, `submitted ${s.submitted}`)
      assert.isAbove(s.byStatus.new, 0)
      assert.isAbove(s.byStatus.canceled, 0, "resting limit orders were canceled")
      assert.isAbove(s.byStatus.filled, 0, "market orders filled")
      assert.strictEqual(s.outOfOrder, 0, "reports of each order arrive 1, 2, 3, ...")
      assert.deepStrictEqual(s.rejections, {}, "no command refused")
      assert.isAbove(s.accepted, 5, "submissions resolved with the accepted order")
      assert.isAbove(s.canceled, 0, "cancels resolved with the canceled order")
      assert.isAbove(s.closedOrders, 3)
      assert.strictEqual(left, 0, "fibers left after the scope closed")
      assert.strictEqual(result.recycler.leakReport().total, 0, "outstanding pooled objects after the scope closed")
    }))

  it.effect("status: metrics move, /ready's readiness follows the books, the status line is compact", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const bbo = follower("bbo")
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const metrics = yield* Status
          const prometheus = yield* Prometheus
          const pool = yield* Pool
          const before = yield* metrics.snapshot
          const fiber = yield* Gateway.run(config, { strategies: [bbo.spec] }).pipe(Effect.scoped, Effect.fork)
          yield* advance(1_000)
          const first = yield* metrics.snapshot
          yield* advance(1_000)
          const second = yield* metrics.snapshot
          const text = yield* prometheus.scrape
          yield* Fiber.interrupt(fiber)
          return { before, first, second, text, outstanding: pool.stats().Event.outstanding }
        })
      )
      const { before, first, second, text } = result
      assert.isFalse(before.readiness.ready, "not ready before the providers run")
      assert.isTrue(second.readiness.ready, second.readiness.reasons.join("; "))
      assert.isAbove(second.totals.eventsIn, first.totals.eventsIn)
      assert.isAbove(second.totals.deliveries, first.totals.deliveries)
      assert.isAbove(second.rates!.eventsIn, 0)
      assert.deepStrictEqual(second.consumers.map((c) => c.id).sort(), ["bbo", "gateway"])
      assert.match(text, /^meltica_dispatcher_deliveries_total [1-9]\d*$/m)
      assert.match(text, /meltica_pool_utilization\{pool="Event"/)
      const line = Gateway.statusLine(second)
      assert.match(line, /^in [\d.]+\/s out [\d.]+\/s deliveries [\d.]+\/s \| p99 [\d.]+us \| pool Event [\d.]+% /)
      assert.include(line, "lag gateway:0 bbo:")
      assert.strictEqual(left, 0)
    }))

  it.effect("status line over NATS: the link's state and what crossed it; readiness reasons counted", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const snapshot = yield* Effect.flatMap(Status, (m) => m.snapshot).pipe(Effect.provide(layerTest(config)), Effect.scoped)
      assert.isUndefined(snapshot.nats, "no NATS section in memory")
      assert.notInclude(Gateway.statusLine(snapshot), "nats")
      const line = Gateway.statusLine({
        ...snapshot,
        nats: {
          connected: false,
          reconnects: 2,
          market: { published: 0, received: 1200, dropped: 0, subjects: 2 },
          critical: { published: 0, delivered: { exec_report: 9, control_ack: 3, control_result: 3 } },
          commands: { submitted: 3, handled: 0 },
          malformed: 0
        },
        readiness: { ready: false, reasons: ["nats: not connected", "nats: no consumer attached yet"] }
      })
      assert.isTrue(
        line.endsWith(" | nats down md out 0 in 1200 critical out 0 in 15 | not ready: 2 reason(s)"),
        line
      )
    }))

  it("routesOf: each symbol from every venue that quotes it, with its merges", () => {
    const routes = Gateway.routesOf(testConfig())
    assert.deepStrictEqual(routes.map((r) => [r.symbol, r.providers, r.merges.map((m) => m.kind)]), [
      ["BTC-USDT", ["sim-a", "sim-b", "sim-c"], ["ticker"]],
      ["ETH-USDT", ["sim-a", "sim-b", "sim-c"], []]
    ])
  })
})
