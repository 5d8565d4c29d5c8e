/**
 * The cost of a consumer's optional per-event timeout (`eventTimeout`): the
 * same stream through one consumer with and without it, rounds alternating,
 * median reported. The timeout races each lambda call against a timer
 * (`Effect.timeoutFail`), which is why it is off unless asked for.
 *
 *   npm run bench:timeout [-- --json] [-- --events N] [-- --rounds N]
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { layerCore } from "../layers/Core.js"
import { Consumers, type ConsumerSpec } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { Pool } from "../src/Pool.js"
import { alternatingMedians, arg, benchTicker, emitJson, machine, table } from "./internal/report.js"

const EVENTS = arg("--events", 200_000)
const ROUNDS = arg("--rounds", 5)
const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const

/** Nanoseconds per delivery through one consumer, `eventTimeout` as given. */
const round = (eventTimeout: ConsumerSpec["eventTimeout"]) =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const consumers = yield* Consumers
    let processed = 0
    yield* consumers.start({
      id: "bench",
      subscriptions: [btc],
      mailbox: { marketCapacity: EVENTS },
      ...(eventTimeout === undefined ? {} : { eventTimeout }),
      handle: () => Effect.sync(() => void processed++)
    })
    const t0 = process.hrtime.bigint()
    for (let seq = 1; seq <= EVENTS; seq++) {
      const e = pool.acquireEvent()
      e.provider = "sim-a"
      e.symbol = "BTC-USDT"
      e.kind = "ticker"
      e.payload = benchTicker
      e.seqProvider = seq
      e.traceId = "b"
      yield* dispatcher.dispatch(e)
      if (seq % 1_000 === 0) yield* Effect.yieldNow()
    }
    while (processed < EVENTS) yield* Effect.yieldNow()
    return Number(process.hrtime.bigint() - t0) / EVENTS
  }).pipe(Effect.scoped, Effect.provide(layerCore()))

const main = Effect.gen(function*() {
  const [offNs, onNs] = yield* alternatingMedians(ROUNDS, round(undefined), round("1 second"))
  console.log(`consumer timeout benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}`)
  table(
    `${EVENTS.toLocaleString("en-US")} events through one consumer, median of ${ROUNDS} alternating rounds`,
    ["eventTimeout", "ns/delivery", "deliveries/s", "ratio"],
    [
      ["off (default)", offNs, 1e9 / offNs, 1],
      ["1 second", onNs, 1e9 / onNs, onNs / offNs]
    ]
  )
  emitJson({ events: EVENTS, rounds: ROUNDS, offNsPerDelivery: offNs, onNsPerDelivery: onNs, ratio: onNs / offNs })
})

Effect.runPromise(main.pipe(Effect.provide(Layer.empty), Logger.withMinimumLogLevel(LogLevel.Warning)))
