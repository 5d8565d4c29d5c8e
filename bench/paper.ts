/**
 * Paper venue benchmark: what the venue costs on the market-data path (run
 * before every dispatch) and when an order needs the book.
 *
 * - market data: a book delta of 2 levels per side offered to the venue, no
 *   order waiting (the venue only queues it);
 * - book then market order: a 1,000-level snapshot and 200 deltas, then a
 *   market order walking 10 levels (the book is built from what was queued);
 * - resting limit, crossed: a delta that crosses one resting limit order;
 * - market round trip: a market buy then a market sell of 0.01 at the top of a
 *   book already built (two fills: the account's balances, the fees and the
 *   positions of the venue and of the consumer move with each).
 *
 * Reports µs per operation.
 *
 *   npm run bench:paper [-- --json] [-- --rounds N]
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { SubmitOrder } from "../schema/Control.js"
import { BookDelta, BookSnapshot, decimal, type Level } from "../schema/Event.js"
import { makePaperVenue } from "../src/execution/Paper.js"
import { ExecReportSink } from "../src/ExecutionVenue.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"
import { arg, emitJson, machine, table } from "./internal/report.js"

const ROUNDS = arg("--rounds", 2_000)
const SYM = "BTC-USDT"

const levels = (from: number, n: number, step: number): Array<Level> =>
  Array.from({ length: n }, (_, i) => [decimal((from + i * step).toFixed(2)), decimal("1.5")] as const)

const snapshot = BookSnapshot.make({ bids: levels(9_999, 1_000, -0.01), asks: levels(10_000, 1_000, 0.01), state: "consistent" })
const deltas = Array.from({ length: 200 }, (_, i) =>
  BookDelta.make({
    bids: [[decimal((9_999 - (i % 50) * 0.01).toFixed(2)), decimal("2")], [decimal((9_990 - (i % 7)).toFixed(2)), decimal("0")]],
    asks: [[decimal((10_000 + (i % 50) * 0.01 + 20).toFixed(2)), decimal("2")], [decimal((10_010 + (i % 7)).toFixed(2)), decimal("0")]]
  }))

const run = Effect.gen(function*() {
  const pool = yield* Pool
  const recycler = yield* Recycler
  // an account deep enough that every round trades: the figures measure matching and bookkeeping, not refusals
  const venue = yield* makePaperVenue({
    venues: { "sim-a": { symbols: [SYM], balances: { USDT: "1000000000000", BTC: "1000000000" } } }
  })
  let orders = 0
  const offer = (payload: BookSnapshot | BookDelta) => {
    const e = pool.acquireEvent()
    e.provider = "sim-a"
    e.symbol = SYM
    e.kind = payload._tag
    e.traceId = "bench"
    e.payload = payload
    return venue.onMarketData(e).pipe(Effect.ensuring(Effect.sync(() => recycler.unsafeRecycle(e, generationOf(e)))))
  }
  const order = (orderType: "market" | "limit", side: "buy" | "sell", quantity: string, price?: string) =>
    SubmitOrder.make({
      commandId: `c-${++orders}`,
      consumerId: "bench",
      clientOrderId: `o-${orders}`,
      symbol: SYM,
      venue: "sim-a",
      side,
      orderType,
      quantity: decimal(quantity),
      ...(price === undefined ? {} : { price: decimal(price) })
    })
  const time = <A, E>(n: number, f: (i: number) => Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      for (let i = 0; i < Math.min(n, 200); i++) yield* f(i) // warm-up
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < n; i++) yield* f(i)
      return Number(process.hrtime.bigint() - t0) / n / 1_000
    })

  yield* offer(snapshot)
  const marketData = yield* time(ROUNDS * 10, (i) => offer(deltas[i % deltas.length]!))
  const bookThenOrder = yield* time(ROUNDS, () =>
    Effect.gen(function*() {
      yield* offer(snapshot)
      for (const d of deltas) yield* offer(d)
      yield* venue.submit(order("market", "buy", "14"))
    }))
  const crossed = yield* time(ROUNDS, () =>
    Effect.gen(function*() {
      yield* offer(snapshot)
      yield* venue.submit(order("limit", "buy", "1", "9999.50"))
      yield* offer(BookDelta.make({ bids: [], asks: [[decimal("9999.50"), decimal("1")]] }))
    }))
  yield* offer(snapshot)
  const roundTrip = yield* time(ROUNDS * 5, () =>
    Effect.zipRight(venue.submit(order("market", "buy", "0.01")), venue.submit(order("market", "sell", "0.01"))))
  return { marketData, bookThenOrder, crossed, roundTrip }
})

const main = Effect.gen(function*() {
  const r = yield* run.pipe(
    Effect.provide(
      Layer.effect(
        ExecReportSink,
        Effect.map(Recycler, (recycler) => (report) => Effect.sync(() => void recycler.unsafeRecycle(report, generationOf(report))))
      ).pipe(
        Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({}))))
      )
    ),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
  table(`Paper venue (${machine()})`, ["operation", "µs per op"], [
    ["market data (one delta, nothing to match)", r.marketData.toFixed(2)],
    ["1,000-level snapshot + 200 deltas, then a market order over 10 levels", r.bookThenOrder.toFixed(1)],
    ["snapshot, resting limit, crossing delta", r.crossed.toFixed(1)],
    ["market buy then sell at the top (two fills, account and positions)", r.roundTrip.toFixed(1)]
  ])
  emitJson({ bench: "paper", rounds: ROUNDS, ...r })
})

Effect.runPromise(main)
