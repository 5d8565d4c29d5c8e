/**
 * Entry point: `npm start`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { decimal, Ticker } from "../schema/Event.js"
import { Pool } from "../src/Pool.js"
import { formatLeakReport, Recycler } from "../src/Recycler.js"

const program = Effect.gen(function*() {
  const pool = yield* Pool
  const recycler = yield* Recycler
  for (let i = 0; i < 100_000; i++) {
    const e = pool.acquireEvent()
    e.kind = "ticker"
    e.symbol = "BTC-USDT"
    e.payload = Ticker.make({
      bidPrice: decimal("64000.1"),
      bidQty: decimal("1"),
      askPrice: decimal("64000.2"),
      askQty: decimal("1"),
      exchangeTs: Date.now()
    })
    const copies = Array.from({ length: 10 }, () => pool.clone(e))
    recycler.unsafeRecycleMany(copies)
    recycler.unsafeRecycle(e)
  }
  yield* Effect.log("pool", pool.stats().Event)
  yield* Effect.log(formatLeakReport(recycler.leakReport()))
})

program.pipe(
  Effect.provide(Recycler.Default.pipe(Layer.provideMerge(Pool.Default))),
  NodeRuntime.runMain
)
