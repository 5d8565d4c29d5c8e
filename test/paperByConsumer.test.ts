/**
 * The paper venue's figures per consumer, as the status page's strategy table
 * shows them: orders, fills, rejections and working orders of each consumer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { CancelOrder, SubmitOrder } from "../schema/Control.js"
import { BookSnapshot, decimal } from "../schema/Event.js"
import { ExecReportSink, ExecutionVenue } from "../src/ExecutionVenue.js"
import * as PaperVenue from "../src/execution/Paper.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"

const SYM = "BTC-USDT"

const RecyclingSink = Layer.effect(
  ExecReportSink,
  Effect.map(Recycler, (recycler) => (report) => Effect.sync(() => void recycler.unsafeRecycle(report, generationOf(report))))
)

const layer = PaperVenue.layerWith({ symbols: [SYM] }).pipe(
  Layer.provideMerge(RecyclingSink),
  Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({ prewarm: 0 }))))
)

let n = 0
const order = (consumerId: string, o: { side: "buy" | "sell"; quantity: string; price?: string; symbol?: string }) =>
  SubmitOrder.make({
    commandId: `c-${++n}`,
    consumerId,
    clientOrderId: `o-${n}`,
    symbol: o.symbol ?? SYM,
    side: o.side,
    orderType: o.price === undefined ? "market" : "limit",
    quantity: decimal(o.quantity),
    ...(o.price === undefined ? {} : { price: decimal(o.price) })
  })

describe("paper venue, per consumer", () => {
  it.effect("counts each consumer's orders, fills and rejections, and its working orders now", () =>
    Effect.gen(function*() {
      const venue = yield* ExecutionVenue
      const pool = yield* Pool
      const recycler = yield* Recycler
      assert.deepStrictEqual(venue.stats().byConsumer, [], "nobody has ordered yet")
      const book = pool.acquireEvent()
      book.symbol = SYM
      book.provider = "sim-a"
      book.kind = "book_snapshot"
      book.traceId = "md"
      book.payload = BookSnapshot.make({
        bids: [[decimal("99"), decimal("5")]],
        asks: [[decimal("100"), decimal("1")], [decimal("101"), decimal("5")]],
        state: "consistent"
      })
      yield* venue.onMarketData(book)
      recycler.unsafeRecycle(book, generationOf(book))

      // alpha: a market buy across two levels (two fills), one resting bid, one on an unknown symbol
      yield* Effect.either(venue.submit(order("alpha", { side: "buy", quantity: "2" })))
      yield* Effect.either(venue.submit(order("alpha", { side: "buy", quantity: "1", price: "90" })))
      const unknown = yield* Effect.either(venue.submit(order("alpha", { side: "buy", quantity: "1", symbol: "DOGE-USDT" })))
      assert.isTrue(Either.isLeft(unknown))
      // beta: two resting asks, one of them canceled
      yield* Effect.either(venue.submit(order("beta", { side: "sell", quantity: "1", price: "120" })))
      const canceled = `o-${n}`
      yield* Effect.either(venue.submit(order("beta", { side: "sell", quantity: "1", price: "130" })))
      yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "cancel-1", consumerId: "beta", clientOrderId: canceled })))

      const by = Object.fromEntries(venue.stats().byConsumer.map((c) => [c.consumerId, c]))
      assert.deepStrictEqual(by["alpha"], { consumerId: "alpha", orders: 3, fills: 2, rejected: 1, resting: 1 })
      assert.deepStrictEqual(by["beta"], { consumerId: "beta", orders: 2, fills: 0, rejected: 0, resting: 1 })
      const total = venue.stats()
      assert.strictEqual(by["alpha"]!.fills + by["beta"]!.fills, total.fills, "the per-consumer figures add up")
      assert.strictEqual(by["alpha"]!.orders + by["beta"]!.orders, total.orders)
      assert.strictEqual(by["alpha"]!.resting + by["beta"]!.resting, total.resting)
    }).pipe(Effect.provide(layer)))
})
