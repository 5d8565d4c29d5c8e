/**
 * The publishing side of `bench/nats.ts`, as its own process: COUNT events
 * through the feed pipeline, market data (MODE=market: core NATS, a round
 * trip to the server every 5,000 events, at most two outstanding) or execution reports (MODE=critical: JetStream, pipelined
 * within the publisher's window, in batches per consumer; done once all are
 * stored). RATE paces market data (each event stamped with its intended send
 * time, for latency); CODEC=json and BATCH_MAX set the wire.. Prints `@@ done <count> <ms>`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel } from "effect"
import { layerNatsFeedPipeline } from "../../layers/Nats.js"
import { decimal, ExecReportPayload } from "../../schema/Event.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import { NatsConnection } from "../../src/nats/Connection.js"
import { CriticalPublisher } from "../../src/nats/CriticalChannel.js"
import { MarketPublisher } from "../../src/nats/Market.js"
import { Pool } from "../../src/Pool.js"
import { benchTicker } from "./report.js"

const url = process.env["NATS_URL"] ?? "nats://127.0.0.1:4222"
const mode = process.env["MODE"] ?? "market"
const count = Number(process.env["COUNT"] ?? 100_000)
/** Market data at this many events per second (0: as fast as it goes); each event's ingestTs is its intended send time. */
const rate = Number(process.env["RATE"] ?? 0)
const codec = process.env["CODEC"] === "json" ? "json" : "binary"
const batchMax = Number(process.env["BATCH_MAX"] ?? 256)
/** Wall-clock microseconds, comparable across the processes of one machine. */
const wallUs = () => (performance.timeOrigin + performance.now()) * 1_000

const payload = benchTicker

const program = Effect.gen(function*() {
  const pool = yield* Pool
  const dispatcher = yield* Dispatcher
  const { nc } = yield* NatsConnection
  const market = yield* MarketPublisher
  const critical = yield* CriticalPublisher
  let inFlight: Promise<void> = Promise.resolve()
  const start = performance.now()
  const t0 = wallUs()
  for (let i = 1; i <= count; i++) {
    if (mode === "market") {
      const e = pool.acquireEvent()
      e.provider = "sim-a"
      e.symbol = "BTC-USDT"
      e.kind = "ticker"
      e.seqProvider = i
      e.traceId = "b"
      e.payload = payload
      if (rate > 0) {
        // paced: the intended send time, not the actual one (no coordinated omission)
        const intended = t0 + (i * 1e6) / rate
        const ahead = intended - wallUs()
        if (ahead > 1_000) yield* Effect.promise(() => new Promise((r) => setTimeout(r, ahead / 1_000)))
        // an event sent up to a timer tick early counts from when it is sent; a late one from when it was due
        e.ingestTs = Math.max(intended, wallUs())
      } else e.ingestTs = wallUs()
      yield* dispatcher.dispatch(e)
      // flow control: at most two round trips' worth of events in flight (a server PING/PONG each)
      if (rate === 0 && i % 5_000 === 0) {
        yield* market.flush
        yield* Effect.promise(() => inFlight)
        inFlight = nc.flush()
      }
    } else {
      const r = pool.acquireExecReport()
      r.provider = "paper"
      r.symbol = "BTC-USDT"
      r.traceId = "b"
      r.payload = ExecReportPayload.make({
        orderId: `o-${i}`,
        clientOrderId: `c-${i}`,
        consumerId: "bench",
        side: "buy",
        orderType: "market",
        status: "filled",
        quantity: decimal("1"),
        filledQty: decimal("1"),
        reportSeq: 1
      })
      yield* dispatcher.dispatch(r)
    }
  }
  yield* Effect.zipRight(market.flush, Effect.promise(() => nc.flush()))
  yield* critical.whenStored
  console.log(`@@ done ${count} ${(performance.now() - start).toFixed(1)}`)
})

program.pipe(
  Effect.provide(layerNatsFeedPipeline({ nats: { servers: [url], name: "bench-feed", codec, marketBatchMax: batchMax } })),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
