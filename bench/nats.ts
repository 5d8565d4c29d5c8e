/**
 * Throughput across processes over NATS, next to the in-memory figure.
 *
 * A local `nats-server` (JetStream, temporary store) is started; a feed
 * process (`bench/internal/natsFeed.ts`) publishes through the feed pipeline
 * and this process runs the strategy side (`layerNatsStrategy`) with one
 * consumer whose lambda counts. Figures are events reaching the lambda per
 * second, from the first to the last.
 *
 * - in memory: dispatch -> mailbox -> lambda, one process;
 * - market data over core NATS: binary frames batched per stream, publish,
 *   decode into the local pool, dispatch, lambda; the same with the JSON codec
 *   (one message per event, the path before the binary codec);
 * - execution reports over JetStream: pipelined within the publisher's window,
 *   one batch per consumer in flight, each stored before the strategy sees it,
 *   delivered by a durable consumer, acknowledged after the lambda;
 * - the latency cost of batching: market data paced at --rate events/s, from
 *   each event's intended send time to its lambda (p50/p99/p99.9/max), batched
 *   and with one event per message.
 *
 *   npm run bench:nats [-- --json] [-- --market N] [-- --critical N] [-- --rate N]
 */
import { Effect, Logger, LogLevel } from "effect"
import { layerCore } from "../layers/Core.js"
import { layerNatsStrategy } from "../layers/Nats.js"
import { Consumers } from "../src/Consumer.js"
import { DataBus } from "../src/DataBus.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { MarketSubscriber } from "../src/nats/Market.js"
import { NatsConsumers } from "../src/nats/NatsConsumers.js"
import { Pool } from "../src/Pool.js"
import { runScript, waitUntil } from "../test/nats/support/process.js"
import { natsServer } from "../test/nats/support/server.js"
import { arg, benchTicker, emitJson, machine, table } from "./internal/report.js"

const MARKET = arg("--market", 300_000)
const CRITICAL = arg("--critical", 20_000)
const JSON_MARKET = arg("--json-market", 50_000)
const RATE = arg("--rate", 20_000)
const PACED_SECONDS = 3
/** Wall-clock microseconds, comparable across the processes of one machine. */
const wallUs = () => (performance.timeOrigin + performance.now()) * 1_000

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const

interface Row {
  readonly path: string
  readonly events: number
  readonly received: number
  readonly seconds: number
  readonly perSec: number
}

const inMemory = Effect.gen(function*() {
  const pool = yield* Pool
  const dispatcher = yield* Dispatcher
  const consumers = yield* Consumers
  const bus = yield* DataBus
  let n = 0
  yield* consumers.start({ id: "c", subscriptions: [btc], handle: () => Effect.sync(() => void n++) })
  const payload = benchTicker
  const start = performance.now()
  for (let i = 1; i <= MARKET; i++) {
    const e = pool.acquireEvent()
    e.provider = "sim-a"
    e.symbol = "BTC-USDT"
    e.kind = "ticker"
    e.seqProvider = i
    e.payload = payload
    yield* dispatcher.dispatch(e)
    if (i % 100 === 0) yield* Effect.yieldNow()
  }
  // under backpressure the mailbox coalesces (latest wins): count those as settled too
  yield* waitUntil(() => n + (bus.mailboxes()[0]?.coalesced ?? 0) >= MARKET, "in-memory deliveries")
  const seconds = (performance.now() - start) / 1_000
  return { path: "in memory (dispatch -> lambda)", events: MARKET, received: n, seconds, perSec: n / seconds } satisfies Row
}).pipe(Effect.scoped, Effect.provide(layerCore()))

interface Wire {
  readonly path: string
  readonly codec?: "binary" | "json"
  readonly batchMax?: number
  readonly rate?: number
}

const overNats = (url: string, mode: "market" | "critical", count: number, wire: Wire) =>
  Effect.gen(function*() {
    const consumers = yield* NatsConsumers
    const market = yield* MarketSubscriber
    let n = 0
    let first = 0
    let last = 0
    const latencies: Array<number> = []
    yield* consumers.start({
      id: "bench",
      subscriptions: mode === "market" ? [btc] : [],
      handle: (e) =>
        Effect.sync(() => {
          last = performance.now()
          if (wire.rate !== undefined) latencies.push(wallUs() - e.ingestTs)
          if (n++ === 0) first = last
        })
    })
    const feed = yield* runScript(new URL("./internal/natsFeed.ts", import.meta.url).pathname, {
      NATS_URL: url,
      MODE: mode,
      COUNT: String(count),
      CODEC: wire.codec ?? "binary",
      BATCH_MAX: String(wire.batchMax ?? 256),
      RATE: String(wire.rate ?? 0)
    })
    yield* waitUntil(() => feed.lines.some((l) => l.startsWith("done")), "the feed", feed, "120 seconds")
    // market data is at most once: wait until all arrived or nothing more has for half a second
    let seen = -1
    let changed = performance.now()
    yield* waitUntil(() => {
      if (n !== seen) {
        seen = n
        changed = performance.now()
      }
      return n >= count || performance.now() - changed > 500
    }, "the last events", feed, "120 seconds")
    const seconds = (last - first) / 1_000
    latencies.sort((a, b) => a - b)
    return {
      path: wire.path,
      events: count,
      received: n,
      seconds,
      perSec: n / seconds,
      dropped: market.stats().dropped,
      latencyUs: {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        p999: percentile(latencies, 99.9),
        max: latencies[latencies.length - 1] ?? 0
      }
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(layerNatsStrategy({ nats: { servers: [url], name: "bench-strategy" } }))
  )

const program = Effect.gen(function*() {
  const memory = yield* inMemory
  const server = yield* natsServer
  const md = yield* overNats(server.url, "market", MARKET, { path: "market data, core NATS, binary batches (feed -> strategy process)" })
  const mdJson = yield* overNats(server.url, "market", JSON_MARKET, {
    path: "market data, core NATS, JSON (one message per event)",
    codec: "json"
  })
  const critical = yield* overNats(server.url, "critical", CRITICAL, { path: "exec reports, JetStream (pipelined, stored, acked after lambda)" })
  const paced = RATE * PACED_SECONDS
  const batched = yield* overNats(server.url, "market", paced, { path: `market data at ${RATE}/s, batched`, rate: RATE })
  const single = yield* overNats(server.url, "market", paced, { path: `market data at ${RATE}/s, one event per message`, rate: RATE, batchMax: 1 })
  const rows = [memory, md, mdJson, critical]
  console.log(`machine: ${machine()}, date: ${new Date().toISOString().slice(0, 10)}`)
  table(
    "Throughput across processes over NATS (one consumer)",
    ["path", "events", "reached the lambda", "seconds", "events/s"],
    rows.map((r) => [r.path, r.events, r.received, r.seconds, r.perSec])
  )
  table(
    "The latency cost of batching: intended send time -> lambda, microseconds",
    ["path", "reached the lambda", "p50", "p99", "p99.9", "max"],
    [batched, single].map((r) => [r.path, `${r.received} of ${r.events}`, r.latencyUs.p50, r.latencyUs.p99, r.latencyUs.p999, r.latencyUs.max])
  )
  emitJson({
    machine: machine(),
    inMemoryEventsPerSec: memory.perSec,
    natsMarketEventsPerSec: md.perSec,
    natsMarketJsonEventsPerSec: mdJson.perSec,
    natsReportsPerSec: critical.perSec,
    natsMarketLatencyUs: { batched: batched.latencyUs, onePerMessage: single.latencyUs, rate: RATE },
    rows: [...rows, batched, single]
  })
})

program.pipe(
  Effect.scoped,
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
).catch((e) => {
  console.error(e)
  process.exit(1)
})
