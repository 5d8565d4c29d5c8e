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
 * - market data over core NATS: encode, publish, decode, local pool, dispatch, lambda;
 * - execution reports over JetStream: each stored before the next is sent,
 *   delivered by a durable consumer, acknowledged after the lambda.
 *
 *   npm run bench:nats [-- --json] [-- --market N] [-- --critical N]
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

const MARKET = arg("--market", 200_000)
const CRITICAL = arg("--critical", 5_000)
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

const overNats = (url: string, mode: "market" | "critical", count: number) =>
  Effect.gen(function*() {
    const consumers = yield* NatsConsumers
    const market = yield* MarketSubscriber
    let n = 0
    let first = 0
    let last = 0
    yield* consumers.start({
      id: "bench",
      subscriptions: mode === "market" ? [btc] : [],
      handle: () =>
        Effect.sync(() => {
          last = performance.now()
          if (n++ === 0) first = last
        })
    })
    const feed = yield* runScript(new URL("./internal/natsFeed.ts", import.meta.url).pathname, {
      NATS_URL: url,
      MODE: mode,
      COUNT: String(count)
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
    return {
      path: mode === "market" ? "market data, core NATS (feed -> strategy process)" : "exec reports, JetStream (stored, acked after lambda)",
      events: count,
      received: n,
      seconds,
      perSec: n / seconds,
      dropped: market.stats().dropped
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(layerNatsStrategy({ nats: { servers: [url], name: "bench-strategy" } }))
  )

const program = Effect.gen(function*() {
  const memory = yield* inMemory
  const server = yield* natsServer
  const md = yield* overNats(server.url, "market", MARKET)
  const critical = yield* overNats(server.url, "critical", CRITICAL)
  const rows = [memory, md, critical]
  console.log(`machine: ${machine()}, date: ${new Date().toISOString().slice(0, 10)}`)
  table(
    "Throughput across processes over NATS (one consumer)",
    ["path", "events", "reached the lambda", "seconds", "events/s"],
    rows.map((r) => [r.path, r.events, r.received, r.seconds, r.perSec])
  )
  emitJson({ machine: machine(), rows })
})

program.pipe(
  Effect.scoped,
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
).catch((e) => {
  console.error(e)
  process.exit(1)
})
