/**
 * The cost of the strategy SDK on the delivery path: the same stream through
 * one consumer whose lambda is a bare function, and through one strategy
 * (`Strategy.define` with an `on.ticker` handler), rounds alternating, median
 * reported. The SDK's part is a reply lookup for critical events, the
 * type-level view of the pooled event and one handler lookup by kind: no
 * allocation and no fiber per event.
 *
 *   npm run bench:strategy [-- --json] [-- --events N] [-- --rounds N]
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { layerMemory } from "../layers/Memory.js"
import { Consumers } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { Orchestrator } from "../src/Orchestrator.js"
import { Pool } from "../src/Pool.js"
import * as Strategy from "../src/strategy/index.js"
import { run } from "../src/strategy/Strategy.js"
import { alternatingMedians, arg, benchTicker, emitJson, machine, table } from "./internal/report.js"

const EVENTS = arg("--events", 200_000)
const ROUNDS = arg("--rounds", 5)
const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const

/** Nanoseconds per delivery through one consumer: a bare lambda, or a strategy. */
const round = (sdk: boolean) =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const consumers = yield* Consumers
    // stamped as the Orchestrator would: a strategy's subscription moves its minimum version to the current one
    const version = (yield* Orchestrator).routingVersion()
    let processed = 0
    if (sdk) {
      yield* run(Strategy.define({
        id: "bench",
        mailbox: { marketCapacity: EVENTS },
        start: (ctx) => ctx.subscribe("BTC-USDT", ["ticker"]),
        on: { ticker: () => Effect.sync(() => void processed++) }
      }))
    } else {
      yield* consumers.start({
        id: "bench",
        subscriptions: [btc],
        mailbox: { marketCapacity: EVENTS },
        handle: () => Effect.sync(() => void processed++)
      })
    }
    const t0 = process.hrtime.bigint()
    for (let seq = 1; seq <= EVENTS; seq++) {
      const e = pool.acquireEvent()
      e.provider = "sim-a"
      e.symbol = "BTC-USDT"
      e.kind = "ticker"
      e.payload = benchTicker
      e.seqProvider = seq
      e.traceId = "b"
      e.routingVersion = version
      yield* dispatcher.dispatch(e)
      if (seq % 1_000 === 0) yield* Effect.yieldNow()
    }
    while (processed < EVENTS) yield* Effect.yieldNow()
    return Number(process.hrtime.bigint() - t0) / EVENTS
  }).pipe(Effect.scoped, Effect.provide(layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a"] })))

const main = Effect.gen(function*() {
  const [bareNs, sdkNs] = yield* alternatingMedians(ROUNDS, round(false), round(true))
  console.log(`strategy SDK benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}`)
  table(
    `${EVENTS.toLocaleString("en-US")} tickers through one consumer, median of ${ROUNDS} alternating rounds`,
    ["lambda", "ns/delivery", "deliveries/s", "ratio"],
    [
      ["bare function (ConsumerSpec.handle)", bareNs, 1e9 / bareNs, 1],
      ["strategy (Strategy.define, on.ticker)", sdkNs, 1e9 / sdkNs, sdkNs / bareNs]
    ]
  )
  emitJson({ events: EVENTS, rounds: ROUNDS, bareNsPerDelivery: bareNs, sdkNsPerDelivery: sdkNs, ratio: sdkNs / bareNs })
})

Effect.runPromise(main.pipe(Effect.provide(Layer.empty), Logger.withMinimumLogLevel(LogLevel.Warning)))
