/**
 * Risk checks benchmark: what the checks in front of the venue
 * (`src/execution/Risk.ts`) add to an order, beside the same order sent to
 * the venue directly, with every limit set (so each one is computed) and none
 * broken.
 *
 * One operation: a limit buy that rests, then its cancel, three ways: the
 * venue alone; with a notional limit only (the order's own figures: no read
 * of the venue's accounts); with every limit set, which reads the strategy's
 * position and working orders from the venue's `exposure()` for each order
 * (its own share only, whatever the venue holds). Measured with 0, 1,000 and
 * 10,000 other orders resting (of other strategies) and positions held on 3
 * venues by 50 strategies; `portfolio()` alone (every strategy's P&L, what the
 * checks read before `exposure()`) is timed beside. Alternating
 * rounds, the median of each.
 *
 *   npm run bench:risk [-- --json] [-- --orders N] [-- --rounds N]
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { CancelOrder, SubmitOrder } from "../schema/Control.js"
import { BookSnapshot, decimal, type Level } from "../schema/Event.js"
import { makePaperVenue } from "../src/execution/Paper.js"
import { makeRisk } from "../src/execution/Risk.js"
import { ExecReportSink, type ExecutionVenueShape } from "../src/ExecutionVenue.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"
import { alternatingMedians, arg, emitJson, machine, table } from "./internal/report.js"

const ORDERS = arg("--orders", 500)
const ROUNDS = arg("--rounds", 7)
const SYM = "BTC-USDT"
const VENUES = ["sim-a", "sim-b", "sim-c"] as const
const RESTING = [0, 1_000, 10_000] as const

const levels = (from: number, n: number, step: number): Array<Level> =>
  Array.from({ length: n }, (_, i) => [decimal((from + i * step).toFixed(2)), decimal("5")] as const)
const book = BookSnapshot.make({ bids: levels(9_999, 50, -1), asks: levels(10_001, 50, 1), state: "consistent" })

let ids = 0
const limitBuy = (consumerId: string, price: string, venue: string = "sim-a") =>
  SubmitOrder.make({
    commandId: `c-${++ids}`,
    consumerId,
    clientOrderId: `o-${ids}`,
    symbol: SYM,
    venue,
    side: "buy",
    orderType: "limit",
    quantity: decimal("0.01"),
    price: decimal(price)
  })

/** A venue holding `resting` orders of other strategies and positions of 50 strategies on 3 venues. */
const setUp = (resting: number) =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const recycler = yield* Recycler
    const deep = { balances: { USDT: "1000000000000", BTC: "1000000000" }, fees: { maker: "0", taker: "0" } }
    const venue = yield* makePaperVenue({ venues: Object.fromEntries(VENUES.map((v) => [v, { symbols: [SYM], ...deep }])) })
    for (const v of VENUES) {
      const e = pool.acquireEvent()
      e.provider = v
      e.symbol = SYM
      e.kind = "book_snapshot"
      e.traceId = "bench"
      e.payload = book
      yield* venue.onMarketData(e).pipe(Effect.ensuring(Effect.sync(() => recycler.unsafeRecycle(e, generationOf(e)))))
    }
    for (let s = 0; s < 50; s++) {
      for (const v of VENUES) {
        yield* venue.submit(SubmitOrder.make({
          commandId: `p-${++ids}`,
          consumerId: `strat-${s}`,
          clientOrderId: `p-${ids}`,
          symbol: SYM,
          venue: v,
          side: "buy",
          orderType: "market",
          quantity: decimal("0.01")
        }))
      }
    }
    for (let i = 0; i < resting; i++) yield* venue.submit(limitBuy(`other-${i % 50}`, "9000", VENUES[i % 3]))
    const every = yield* makeRisk(venue, {
      defaults: { maxOrderNotional: "1000000000", maxPosition: "1000000000", maxOpenOrders: 1_000_000 }
    })
    const notional = yield* makeRisk(venue, { defaults: { maxOrderNotional: "1000000000" } })
    return { raw: venue, every: every.venue, notional: notional.venue }
  })

/** µs per submit + cancel of a resting limit order. */
const perOrder = (venue: ExecutionVenueShape) =>
  Effect.gen(function*() {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < ORDERS; i++) {
      const o = limitBuy("bench", "9500")
      yield* venue.submit(o)
      yield* venue.cancel(CancelOrder.make({ commandId: `x-${++ids}`, consumerId: "bench", clientOrderId: o.clientOrderId }))
    }
    return Number(process.hrtime.bigint() - t0) / ORDERS / 1_000
  })

const main = Effect.gen(function*() {
  const rows: Array<{ resting: number; venueUs: number; notionalUs: number; everyUs: number; portfolioUs: number }> = []
  for (const resting of RESTING) {
    const { every, notional, raw } = yield* setUp(resting)
    const [venueUs, notionalUs] = yield* alternatingMedians(ROUNDS, perOrder(raw), perOrder(notional))
    const [, everyUs] = yield* alternatingMedians(ROUNDS, perOrder(raw), perOrder(every))
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < 50; i++) raw.portfolio()
    const portfolioUs = Number(process.hrtime.bigint() - t0) / 50 / 1_000
    rows.push({ resting, venueUs, notionalUs, everyUs, portfolioUs })
  }
  table(`Risk checks in front of the paper venue (${machine()}): µs per limit order + cancel`, [
    "other orders resting",
    "venue alone",
    "notional limit only",
    "every limit",
    "portfolio() alone"
  ], rows.map((r) => [r.resting, r.venueUs.toFixed(1), r.notionalUs.toFixed(1), r.everyUs.toFixed(1), r.portfolioUs.toFixed(1)]))
  emitJson({ bench: "risk", orders: ORDERS, rounds: ROUNDS, rows })
})

Effect.runPromise(
  main.pipe(
    Effect.provide(
      Layer.effect(
        ExecReportSink,
        Effect.map(Recycler, (recycler) => (report) => Effect.sync(() => void recycler.unsafeRecycle(report, generationOf(report))))
      ).pipe(Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({})))))
    ),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
)
