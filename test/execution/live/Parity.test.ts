/**
 * Paper and live behave alike towards a strategy: the same commands, run on
 * the paper venue and on the Binance mock through the execution router, give
 * the same sequence of ExecReport kinds per order. The router sends each order
 * where its venue trades, and the kill switch's cancelAll reaches every venue.
 * Every output of the run is searched for the (fake) credentials.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Redacted } from "effect"
import { CancelOrder, type ControlCommand, SubmitOrder } from "../../../schema/Control.js"
import { BookSnapshot, decimal, type WireExecReport } from "../../../schema/Event.js"
import { encodeRejection, isRejection } from "../../../schema/Rejection.js"
import { makeBinanceAdapter } from "../../../src/execution/Binance.js"
import { makeLiveVenue } from "../../../src/execution/live/LiveVenue.js"
import { makeRouter } from "../../../src/execution/live/Router.js"
import * as PaperVenue from "../../../src/execution/Paper.js"
import { ExecutionVenue, type ExecutionVenueShape, type OrderView } from "../../../src/ExecutionVenue.js"
import { Pool } from "../../../src/Pool.js"
import { generationOf, Recycler } from "../../../src/Recycler.js"
import { BinanceMock } from "./BinanceMock.js"
import { kindsOf, Logs, makeLayer, Received, until } from "./harness.js"

const API_KEY = "parity-fake-key-a1b2c3d4e5f6"
const SECRET = "parity-fake-secret-f6e5d4c3b2a1"
const SYM = "BTC-USDT"

const order = (cid: string, venue: string, o: { side: "buy" | "sell"; type: "limit" | "market"; qty: string; price?: string }) =>
  SubmitOrder.make({
    commandId: `c-${cid}`,
    consumerId: "parity",
    clientOrderId: cid,
    symbol: SYM,
    venue,
    side: o.side,
    orderType: o.type,
    quantity: decimal(o.qty),
    ...(o.price === undefined ? {} : { price: decimal(o.price) })
  })

/** The strategy: a resting bid, a market buy through two levels, the bid canceled, an off-tick order refused. */
const script = (venue: string): ReadonlyArray<ControlCommand> => [
  order("p1", venue, { side: "buy", type: "limit", qty: "0.5", price: "95.00" }),
  order("p2", venue, { side: "buy", type: "market", qty: "0.4" }),
  CancelOrder.make({ commandId: "c-cancel", consumerId: "parity", clientOrderId: "p1" }),
  order("p3", venue, { side: "sell", type: "limit", qty: "0.1", price: "120.005" })
]

const run = (venue: ExecutionVenueShape, commands: ReadonlyArray<ControlCommand>) =>
  Effect.forEach(commands, (c) =>
    Effect.either<OrderView, unknown, never>(
      c._tag === "SubmitOrder" ? venue.submit(c) : c._tag === "CancelOrder" ? venue.cancel(c) : Effect.die("not in the script")
    ))

/** The paper venue of "binance", its book two levels deep on the ask (so a market buy of 0.4 takes two fills). */
const paperLayer = PaperVenue.layerWith({
  venues: {
    binance: {
      symbols: [SYM],
      balances: { USDT: "100000", BTC: "10" },
      fees: { maker: "0", taker: "0" },
      instruments: { [SYM]: { tickSize: "0.01", lotSize: "0.00001", minQty: "0.00001", minNotional: "5" } }
    }
  }
})

const feedBook = Effect.gen(function*() {
  const pool = yield* Pool
  const recycler = yield* Recycler
  const venue = yield* ExecutionVenue
  const e = pool.acquireEvent()
  e.symbol = SYM
  e.provider = "binance"
  e.kind = "book_snapshot"
  e.payload = BookSnapshot.make({
    bids: [[decimal("99.00"), decimal("5")]],
    asks: [[decimal("101.00"), decimal("0.2")], [decimal("101.50"), decimal("5")]],
    state: "consistent"
  })
  e.traceId = "md"
  const gen = generationOf(e)
  yield* venue.onMarketData(e).pipe(Effect.ensuring(Effect.sync(() => recycler.unsafeRecycle(e, gen))))
})

const kindsByOrder = (received: ReadonlyArray<WireExecReport>) =>
  Object.fromEntries(["p1", "p2", "p3"].map((cid) => [cid, kindsOf(received, cid)]))

describe("paper and live alike", () => {
  it.scoped("the same commands give the same ExecReport kinds on paper and on the Binance mock", () =>
    Effect.gen(function*() {
      // paper
      const paperKinds = yield* Effect.gen(function*() {
        yield* feedBook
        const venue = yield* ExecutionVenue
        const results = yield* run(venue, script("binance"))
        const received = yield* Received
        return { kinds: kindsByOrder(received), outcomes: results.map((r) => Either.isLeft(r) ? (r.left as { readonly _tag: string })._tag : "accepted") }
      }).pipe(Effect.provide(paperLayer.pipe(Layer.provideMerge(makeLayer()))))

      // live, through the router, on the mock
      const live = yield* Effect.gen(function*() {
        const clock = yield* Effect.clock
        const mock = new BinanceMock({ apiKey: API_KEY, hmacSecret: SECRET, now: () => clock.unsafeCurrentTimeMillis(), marketPrice: { BTCUSDT: "101.00" } })
        yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
        const adapter = yield* makeBinanceAdapter({
          restUrl: mock.restUrl,
          wsApiUrl: mock.wsUrl,
          symbols: [SYM],
          apiKey: Redacted.make(API_KEY),
          key: { _tag: "hmac", secret: Redacted.make(SECRET) }
        })
        const liveVenue = yield* makeLiveVenue(adapter)
        yield* until(() => liveVenue.liveStats().reconciliations >= 1, "the private stream")
        const paper = yield* ExecutionVenue
        const router = makeRouter(paper, [liveVenue])
        const results = yield* run(router, script("binance"))
        const received = yield* Received
        yield* until(() => kindsOf(received, "p2").at(-1) === "filled", "the market order's fills")

        // the router: a paper order (another venue) and a live one, both canceled by the kill switch's cancelAll
        yield* router.submit(order("k-live", "binance", { side: "buy", type: "limit", qty: "0.1", price: "90.00" }))
        yield* router.submit(order("k-paper", "sim", { side: "buy", type: "limit", qty: "0.1", price: "90.00" })).pipe(Effect.either)
        // what the risk checks read: the live venue's position and every venue's working orders, as the portfolio has them
        const mine = router.portfolio().byConsumer.filter((c) => c.consumerId === "parity")
        const exposure = {
          read: router.exposure("parity", SYM, "binance"),
          position: mine.flatMap((c) => c.positions).find((p) => p.venue === "binance" && p.symbol === SYM)?.quantity,
          openOrders: mine.reduce((n, c) => n + c.openOrders, 0)
        }
        const canceled = yield* router.cancelAll({}, "kill switch engaged")
        const exposureAfter = router.exposure("parity", SYM, "binance")
        const stats = router.stats()
        return {
          kinds: kindsByOrder(received),
          outcomes: results.map((r) => Either.isLeft(r) ? (r.left as { readonly _tag: string })._tag : "accepted"),
          canceled: canceled.map((o) => `${o.venue}:${o.clientOrderId}`).sort(),
          liveOpen: liveVenue.liveStats().open,
          exposure,
          exposureAfter,
          placedLive: mock.placements("k-live"),
          placedPaper: mock.placements("k-paper"),
          outputs: {
            logs: (yield* Logs).join("\n"),
            reports: JSON.stringify(received),
            rejections: JSON.stringify(results.flatMap((r) => Either.isLeft(r) && isRejection(r.left) ? [encodeRejection(r.left), r.left.message] : [])),
            stats: JSON.stringify(stats),
            portfolio: JSON.stringify(router.portfolio())
          }
        }
      }).pipe(Effect.provide(paperLayer.pipe(Layer.provideMerge(makeLayer()))))

      assert.deepStrictEqual(live.kinds, paperKinds.kinds)
      assert.deepStrictEqual(paperKinds.kinds, { p1: ["new", "canceled"], p2: ["new", "partially_filled", "filled"], p3: ["rejected"] })
      assert.deepStrictEqual(live.outcomes, paperKinds.outcomes)
      assert.deepStrictEqual(live.outcomes, ["accepted", "accepted", "accepted", "InvalidPrice"])
      assert.strictEqual(live.placedLive, 1)
      assert.strictEqual(live.placedPaper, 0, "an order of another venue never reaches the live one")
      assert.include(live.canceled, "binance:k-live")
      assert.strictEqual(live.liveOpen, 0)
      assert.deepStrictEqual(live.exposure.read, { venue: "binance", position: live.exposure.position!, openOrders: live.exposure.openOrders })
      assert.isAbove(Number(live.exposure.position), 0, "the market order's fills")
      assert.isAbove(live.exposure.openOrders, 0, "k-live works")
      assert.strictEqual(live.exposureAfter.openOrders, 0, "every working order canceled")
      for (const [name, text] of Object.entries(live.outputs)) {
        assert.notInclude(text, API_KEY, name)
        assert.notInclude(text, SECRET, name)
      }
    }))
})
