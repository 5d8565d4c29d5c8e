import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Exit, Fiber, Layer, TestClock } from "effect"
import { CancelOrder, QueryOrder, SubmitOrder } from "../schema/Control.js"
import type { OrderStatus, WireExecReport } from "../schema/Event.js"
import { BookDelta, BookSnapshot, decimal, Ticker } from "../schema/Event.js"
import { DuplicateClientOrderId, OrderNotCancelable, OrderNotFound, UnknownSymbol, VenueRejected } from "../schema/Rejection.js"
import { ExecReportSink, ExecutionVenue } from "../src/ExecutionVenue.js"
import * as PaperVenue from "../src/execution/Paper.js"
import { PAPER_PROVIDER, type PaperVenueOptions } from "../src/execution/Paper.js"
import type { Event } from "../src/Event.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"

const SYM = "BTC-USDT"

/** What the test sink received: the wire form of each report, taken before the report is recycled. */
class Received extends Context.Tag("test/Received")<Received, Array<WireExecReport>>() {}

/** A sink that yields before taking each report, so concurrent callers interleave. */
const TestSink = Layer.effect(
  ExecReportSink,
  Effect.gen(function*() {
    const recycler = yield* Recycler
    const received = yield* Received
    return (report) =>
      Effect.yieldNow().pipe(Effect.zipRight(Effect.sync(() => {
        received.push(report.toWire())
        assert.isTrue(recycler.unsafeRecycle(report, generationOf(report)), "the sink owns each report exactly once")
      })))
  })
)

/** Venues known from their market data trade from an account deep enough for every test here, without fees. */
const roomyVenue = { balances: { BTC: "1000", ETH: "1000", USDT: "10000000" }, fees: { maker: "0", taker: "0" } }

const layer = (options: PaperVenueOptions) =>
  PaperVenue.layerWith({ defaultVenue: roomyVenue, ...options }).pipe(
    Layer.provideMerge(TestSink),
    Layer.provideMerge(Layer.sync(Received, () => [])),
    // Debug pool: a market event the venue kept past onMarketData would fail on its next access.
    Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({ debug: true }))))
  )

const services = Effect.all({ venue: ExecutionVenue, pool: Pool, recycler: Recycler, received: Received })
type Services = Effect.Effect.Success<typeof services>

/** Runs a test against a fresh venue; at the end no pooled ExecReport or Event is outstanding. */
const withVenue = <A, E>(f: (s: Services) => Effect.Effect<A, E>, options: PaperVenueOptions = {}) =>
  Effect.gen(function*() {
    const s = yield* services
    const a = yield* f(s)
    assert.strictEqual(s.venue.stats().reportsPending, 0)
    assert.strictEqual(s.pool.stats().ExecReport.outstanding, 0, "every report recycled")
    assert.strictEqual(s.pool.stats().Event.outstanding, 0, "every market event recycled by its owner")
    return a
  }).pipe(Effect.provide(layer(options)))

// -- market data: the test owns each event and recycles it after the call ---

const feed = (s: Services, symbol: string, provider: string, payload: Event["payload"], traceId: string) =>
  Effect.suspend(() => {
    const e = s.pool.acquireEvent()
    e.symbol = symbol
    e.provider = provider
    e.kind = payload!._tag as Event["kind"]
    e.payload = payload
    e.traceId = traceId
    const gen = generationOf(e)
    return s.venue.onMarketData(e).pipe(Effect.ensuring(Effect.sync(() => s.recycler.unsafeRecycle(e, gen))))
  })

const lv = (levels: ReadonlyArray<readonly [string, string]>) =>
  levels.map(([p, q]) => [decimal(p), decimal(q)] as const)

const snapshot = (
  s: Services,
  bids: ReadonlyArray<readonly [string, string]>,
  asks: ReadonlyArray<readonly [string, string]>,
  opts: { readonly symbol?: string; readonly provider?: string; readonly stale?: boolean; readonly traceId?: string } =
    {}
) =>
  feed(
    s,
    opts.symbol ?? SYM,
    opts.provider ?? "binance",
    BookSnapshot.make({ bids: lv(bids), asks: lv(asks), state: opts.stale === true ? "stale" : "consistent" }),
    opts.traceId ?? "md-snapshot"
  )

const delta = (
  s: Services,
  bids: ReadonlyArray<readonly [string, string]>,
  asks: ReadonlyArray<readonly [string, string]>,
  traceId = "md-delta",
  provider = "binance"
) => feed(s, SYM, provider, BookDelta.make({ bids: lv(bids), asks: lv(asks) }), traceId)

const ticker = (s: Services, bid: string, bidQty: string, ask: string, askQty: string, traceId = "md-ticker") =>
  feed(
    s,
    SYM,
    "kraken",
    Ticker.make({
      bidPrice: decimal(bid),
      bidQty: decimal(bidQty),
      askPrice: decimal(ask),
      askQty: decimal(askQty),
      exchangeTs: 0
    }),
    traceId
  )

// -- commands ---------------------------------------------------------------

let commands = 0
const market = (clientOrderId: string, side: "buy" | "sell", quantity: string, consumerId = "strat-a") =>
  SubmitOrder.make({
    commandId: `cmd-${++commands}`,
    consumerId,
    clientOrderId,
    symbol: SYM,
    side,
    orderType: "market",
    quantity: decimal(quantity)
  })

const limit = (
  clientOrderId: string,
  side: "buy" | "sell",
  quantity: string,
  price: string,
  opts: { readonly symbol?: string; readonly consumerId?: string } = {}
) =>
  SubmitOrder.make({
    commandId: `cmd-${++commands}`,
    consumerId: opts.consumerId ?? "strat-a",
    clientOrderId,
    symbol: opts.symbol ?? SYM,
    side,
    orderType: "limit",
    quantity: decimal(quantity),
    price: decimal(price)
  })

const cancel = (clientOrderId: string, consumerId = "strat-a") =>
  CancelOrder.make({ commandId: `cmd-${++commands}`, consumerId, clientOrderId })

const query = (clientOrderId: string, consumerId = "strat-a") =>
  QueryOrder.make({ commandId: `cmd-${++commands}`, consumerId, clientOrderId })

/** A compact view of the reports of one order: status, reportSeq, last fill, cumulative fill. */
const trail = (received: ReadonlyArray<WireExecReport>, clientOrderId: string) =>
  received.filter((r) => r.payload.clientOrderId === clientOrderId).map((r) => {
    const p = r.payload
    const fill = p.lastFillQty === undefined ? "" : ` ${p.lastFillQty}@${p.lastFillPrice}`
    return `${p.reportSeq} ${p.status}${fill} filled=${p.filledQty}`
  })

describe("ExecutionVenue (paper)", () => {
  it.effect("FR-014: each report carries the routing version current when it was created, from submit or from market data", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        let version = 3
        s.venue.followRoutingVersion(() => version)
        yield* snapshot(s, [["99", "1"]], [["100.5", "1"], ["101", "5"]])
        yield* s.venue.submit(market("o-1", "buy", "1"))
        yield* s.venue.submit(limit("o-2", "buy", "1", "98"))
        version = 4
        // the resting order fills on market data under the new version
        yield* snapshot(s, [["97", "1"]], [["98", "1"]])
        const stamped = s.received.map((r) => `${r.payload.clientOrderId}:${r.payload.status}@${r.routingVersion}`)
        assert.deepStrictEqual(stamped, ["o-1:new@3", "o-1:filled@3", "o-2:new@3", "o-2:filled@4"])
      })
    ))

  it.effect("a market order fills in full against the top level", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* TestClock.adjust("7 millis")
        yield* snapshot(s, [["99", "1"]], [["100.5", "5"], ["101", "1"]])
        const view = yield* s.venue.submit(market("o-1", "buy", "2"))
        assert.deepStrictEqual(
          [view.status, view.filledQty, view.leavesQty, view.avgPrice, view.reports],
          ["filled", "2", "0", "100.5", 2]
        )
        assert.deepStrictEqual(trail(s.received, "o-1"), ["1 new filled=0", "2 filled 2@100.5 filled=2"])
        const first = s.received[0]!
        assert.deepStrictEqual(
          [first.provider, first.symbol, first.ingestTs, first.seqProvider, first.kind, first.traceId],
          [PAPER_PROVIDER, SYM, 7_000, undefined, "exec_report", "cmd-" + commands]
        )
        assert.deepStrictEqual(
          [first.payload.orderId, first.payload.consumerId, first.payload.side, first.payload.orderType],
          [view.orderId, "strat-a", "buy", "market"]
        )
        assert.strictEqual(s.venue.stats().fills, 1)
      })
    ))

  it.effect("a book built from a snapshot and hundreds of deltas fills as if each had been applied at once", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* snapshot(s, [["99", "1"]], [["100", "1"]])
        // 300 deltas: each adds an ask level, then one removes the original best ask
        for (let i = 1; i <= 300; i++) yield* delta(s, [], [[`${100 + i}`, "1"]])
        yield* delta(s, [], [["100", "0"]])
        const view = yield* s.venue.submit(market("o-many", "buy", "2"))
        assert.deepStrictEqual([view.status, view.filledQty, view.avgPrice], ["filled", "2", "101.5"])
        assert.deepStrictEqual(trail(s.received, "o-many"), [
          "1 new filled=0",
          "2 partially_filled 1@101 filled=1",
          "3 filled 1@102 filled=2"
        ])
      })
    ))

  it.effect("a market order walks the book: one partial fill per level, then filled, exact decimals", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* snapshot(s, [["99.9", "0.1"], ["99.8", "0.2"], ["99.7", "10"]], [["100", "1"]])
        const view = yield* s.venue.submit(market("o-2", "sell", "0.35"))
        assert.deepStrictEqual(trail(s.received, "o-2"), [
          "1 new filled=0",
          "2 partially_filled 0.1@99.9 filled=0.1",
          "3 partially_filled 0.2@99.8 filled=0.3",
          "4 filled 0.05@99.7 filled=0.35"
        ])
        // (9.99 + 19.96 + 4.985) / 0.35 = 34.935 / 0.35 = 99.814285714285714285714...
        assert.strictEqual(view.avgPrice, "99.814285714285714286")
        assert.strictEqual(view.filledQty, "0.35")
        const again = yield* s.venue.submit(market("o-3", "sell", "1"))
        assert.deepStrictEqual(trail(s.received, "o-3").slice(1), ["2 filled 1@99.7 filled=1"], "liquidity consumed")
        assert.strictEqual(again.status, "filled")
      })
    ))

  it.effect("a market order larger than the book fills what there is and cancels the rest", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* snapshot(s, [["99", "1"]], [["100", "1"], ["100.5", "0.5"]])
        const view = yield* s.venue.submit(market("o-4", "buy", "2"))
        assert.deepStrictEqual(trail(s.received, "o-4"), [
          "1 new filled=0",
          "2 partially_filled 1@100 filled=1",
          "3 partially_filled 0.5@100.5 filled=1.5",
          "4 canceled filled=1.5"
        ])
        assert.deepStrictEqual([view.status, view.filledQty, view.leavesQty], ["canceled", "1.5", "0"])
        assert.strictEqual(view.reason, "insufficient liquidity: 1.5 of 2 filled")
        const empty = yield* s.venue.submit(market("o-5", "buy", "1"))
        assert.deepStrictEqual(trail(s.received, "o-5"), ["1 new filled=0", "2 canceled filled=0"])
        assert.strictEqual(empty.reason, "insufficient liquidity: 0 of 1 filled")
      })
    ))

  describe("idempotency by clientOrderId", () => {
    it.effect("a resubmission with the same terms returns the existing order, emits nothing and never fills twice", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "1"]], [["100", "1"], ["101", "1"]])
          const first = yield* s.venue.submit(market("dup", "buy", "1"))
          const reports = s.received.length
          const second = yield* s.venue.submit(market("dup", "buy", "1"))
          const third = yield* s.venue.submit(market("dup", "buy", "1.000"))
          assert.deepStrictEqual(second, first)
          assert.deepStrictEqual(third, first, "the same quantity, however written")
          assert.strictEqual(s.received.length, reports, "no new report")
          assert.strictEqual(s.venue.stats().orders, 1)
          assert.strictEqual(s.venue.stats().duplicates, 2)
          const probe = yield* s.venue.submit(market("probe", "buy", "1"))
          assert.strictEqual(probe.avgPrice, "101", "the 100 level was consumed once, by the first submission only")
        })
      ))

    it.effect("a resubmission with other terms is a DuplicateClientOrderId naming them, and changes nothing", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "10"]], [["100", "10"]])
          const first = yield* s.venue.submit(limit("terms", "buy", "1", "90"))
          const reports = s.received.length
          const cases: ReadonlyArray<readonly [SubmitOrder, ReadonlyArray<string>]> = [
            [limit("terms", "buy", "5", "90"), ["quantity"]],
            [limit("terms", "buy", "1", "91"), ["price"]],
            [limit("terms", "sell", "1", "90"), ["side"]],
            [market("terms", "buy", "1"), ["orderType", "price"]],
            [limit("terms", "sell", "2", "90", { symbol: "ETH-USDT" }), ["symbol", "side", "quantity"]]
          ]
          for (const [cmd, fields] of cases) {
            const err = yield* s.venue.submit(cmd).pipe(Effect.flip)
            assert.instanceOf(err, DuplicateClientOrderId)
            const d = err as DuplicateClientOrderId
            assert.deepStrictEqual([d.conflict, d.fields, d.orderId], ["other_terms", fields, first.orderId])
          }
          assert.strictEqual(s.received.length, reports, "no report")
          const q = yield* s.venue.query(query("terms"))
          assert.deepStrictEqual([q.quantity, q.price, q.status], ["1", "90", "new"])
          assert.strictEqual(s.venue.stats().conflicts, cases.length)
          yield* s.venue.cancel(cancel("terms"))
        })
      ))

    it.effect("concurrent submissions of one clientOrderId create one order", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "10"]], [["100", "10"]])
          const views = yield* Effect.all(
            Array.from({ length: 20 }, () => s.venue.submit(limit("same", "buy", "1", "99.5"))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(new Set(views.map((v) => v.orderId)).size, 1)
          assert.deepStrictEqual(trail(s.received, "same"), ["1 new filled=0"])
          assert.strictEqual(s.venue.stats().resting, 1)
        })
      ))

    it.effect("a clientOrderId used by another consumer is refused without touching the order", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "10"]], [["100", "10"]])
          yield* s.venue.submit(limit("shared", "buy", "1", "90"))
          const exit = yield* s.venue.submit(limit("shared", "buy", "1", "90", { consumerId: "strat-b" })).pipe(
            Effect.exit
          )
          assert.isTrue(Exit.isFailure(exit))
          const err = yield* s.venue.submit(limit("shared", "buy", "1", "90", { consumerId: "strat-b" })).pipe(
            Effect.flip
          )
          assert.instanceOf(err, DuplicateClientOrderId)
          assert.deepStrictEqual(
            [err._tag, err.clientOrderId, (err as DuplicateClientOrderId).conflict, (err as DuplicateClientOrderId).orderId],
            ["DuplicateClientOrderId", "shared", "other_consumer", undefined],
            "the other consumer's order is not described"
          )
          assert.deepStrictEqual(trail(s.received, "shared"), ["1 new filled=0"])
          yield* s.venue.cancel(cancel("shared"))
        })
      ))
  })

  describe("limit orders", () => {
    it.effect("rest until the market crosses them, with partial fills when the crossing level is smaller", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "1"]], [["101", "1"]])
          const resting = yield* s.venue.submit(limit("l-1", "buy", "2", "100"))
          assert.deepStrictEqual([resting.status, resting.price, resting.leavesQty], ["new", "100", "2"])
          assert.strictEqual(s.venue.stats().resting, 1)
          yield* ticker(s, "99", "1", "99.5", "100")
          assert.deepStrictEqual(trail(s.received, "l-1"), ["1 new filled=0"], "a book-fed view ignores tickers")
          yield* delta(s, [], [["100.5", "3"]], "md-d1")
          assert.strictEqual(trail(s.received, "l-1").length, 1, "100.5 does not cross 100")
          yield* delta(s, [], [["100", "0.5"]], "md-d2", "kraken")
          assert.strictEqual(trail(s.received, "l-1").length, 1, "a delta from another provider is ignored")
          yield* delta(s, [], [["100", "0.5"]], "md-d3")
          yield* snapshot(s, [["99", "1"]], [["99.5", "5"]], { traceId: "md-s2" })
          assert.deepStrictEqual(trail(s.received, "l-1"), [
            "1 new filled=0",
            "2 partially_filled 0.5@100 filled=0.5",
            "3 filled 1.5@99.5 filled=2"
          ])
          const byTrace = s.received.filter((r) => r.payload.clientOrderId === "l-1").map((r) => r.traceId)
          assert.deepStrictEqual(byTrace.slice(1), ["md-d3", "md-s2"], "a fill carries the trace of the market event")
          const done = yield* s.venue.query(query("l-1"))
          assert.deepStrictEqual([done.status, done.avgPrice, done.reports], ["filled", "99.625", 3])
          assert.strictEqual(s.venue.stats().resting, 0)
        })
      ))

    it.effect("a marketable limit fills the crossing levels at once and rests the remainder", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "1"]], [["100", "1"], ["101", "1"], ["102", "1"]])
          const view = yield* s.venue.submit(limit("l-2", "buy", "3", "101"))
          assert.deepStrictEqual(trail(s.received, "l-2"), [
            "1 new filled=0",
            "2 partially_filled 1@100 filled=1",
            "3 partially_filled 1@101 filled=2"
          ])
          assert.deepStrictEqual([view.status, view.leavesQty], ["partially_filled", "1"])
          assert.strictEqual(s.venue.stats().resting, 1)
          yield* s.venue.cancel(cancel("l-2"))
        })
      ))

    it.effect("resting orders fill oldest first against limited liquidity", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["90", "1"]], [["110", "1"]])
          yield* s.venue.submit(limit("old", "sell", "1", "95"))
          yield* s.venue.submit(limit("young", "sell", "1", "94"))
          yield* delta(s, [["96", "1.5"]], [])
          assert.deepStrictEqual(trail(s.received, "old").slice(1), ["2 filled 1@96 filled=1"])
          assert.deepStrictEqual(trail(s.received, "young").slice(1), ["2 partially_filled 0.5@96 filled=0.5"])
          yield* s.venue.cancel(cancel("young"))
        })
      ))

    it.effect("a stale book fills nothing and refuses market orders until it is consistent again", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "1"]], [["100", "1"]], { stale: true })
          const err = yield* s.venue.submit(market("m-stale", "buy", "1")).pipe(Effect.flip)
          assert.instanceOf(err, VenueRejected)
          assert.deepStrictEqual([(err as VenueRejected).code, (err as VenueRejected).text], [
            "stale_book",
            `the book of ${SYM} is stale`
          ])
          const view = yield* s.venue.submit(limit("l-stale", "buy", "1", "100"))
          assert.strictEqual(view.status, "new", "accepted and resting, not filled against a stale book")
          yield* snapshot(s, [["99", "1"]], [["100", "1"]])
          assert.deepStrictEqual(trail(s.received, "l-stale").slice(1), ["2 filled 1@100 filled=1"])
        })
      ))
  })

  describe("cancel and query", () => {
    it.effect("cancels a working order; a filled, canceled or unknown order is refused with a typed error", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "1"]], [["100", "1"]])
          yield* s.venue.submit(limit("c-1", "buy", "1", "98"))
          const canceled = yield* s.venue.cancel(cancel("c-1"))
          assert.deepStrictEqual([canceled.status, canceled.reports, canceled.leavesQty], ["canceled", 2, "0"])
          assert.deepStrictEqual(trail(s.received, "c-1"), ["1 new filled=0", "2 canceled filled=0"])
          assert.strictEqual(s.venue.stats().resting, 0)
          yield* snapshot(s, [["99", "1"]], [["97", "1"]])
          assert.strictEqual(trail(s.received, "c-1").length, 2, "a canceled order never fills")

          const twice = yield* s.venue.cancel(cancel("c-1")).pipe(Effect.flip)
          assert.instanceOf(twice, OrderNotCancelable)
          assert.deepStrictEqual(
            [twice._tag, (twice as OrderNotCancelable).status, twice.clientOrderId],
            ["OrderNotCancelable", "canceled", "c-1"]
          )

          yield* s.venue.submit(market("c-2", "buy", "1"))
          const filled = yield* s.venue.cancel(cancel("c-2")).pipe(Effect.flip)
          assert.deepStrictEqual([filled._tag, (filled as OrderNotCancelable).status], ["OrderNotCancelable", "filled"])

          const missing = yield* s.venue.cancel(cancel("nope")).pipe(Effect.flip)
          assert.instanceOf(missing, OrderNotFound)
          const foreign = yield* s.venue.cancel(cancel("c-2", "strat-b")).pipe(Effect.flip)
          assert.deepStrictEqual([foreign._tag, foreign.consumerId], ["OrderNotFound", "strat-b"])
          assert.strictEqual(trail(s.received, "c-2").length, 2, "refused cancels emit nothing")
        })
      ))

    it.effect("query returns the order's current state, and only to its owner", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["99", "1"]], [["101", "1"]])
          yield* TestClock.adjust("1 millis")
          const submitted = yield* s.venue.submit(limit("q-1", "sell", "2", "99"))
          assert.strictEqual(submitted.status, "partially_filled")
          yield* TestClock.adjust("1 millis")
          yield* delta(s, [["99", "4"]], [])
          const q = yield* s.venue.query(query("q-1"))
          assert.deepStrictEqual(
            [q.status, q.filledQty, q.leavesQty, q.avgPrice, q.reports, q.submittedTs, q.updatedTs],
            ["filled", "2", "0", "99", 3, 1_000, 2_000]
          )
          const err = yield* s.venue.query(query("q-1", "strat-b")).pipe(Effect.flip)
          assert.instanceOf(err, OrderNotFound)
          const none = yield* s.venue.query(query("unknown")).pipe(Effect.either)
          assert.isTrue(Either.isLeft(none))
        })
      ))
  })

  it.effect("memory stays bounded: beyond retainClosed, the oldest closed orders are forgotten, open ones never", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* snapshot(s, [["99", "1000"]], [["101", "1000"]])
        const resting = yield* s.venue.submit(limit("open-1", "buy", "1", "50"))
        assert.strictEqual(resting.status, "new")
        for (let i = 1; i <= 5; i++) assert.strictEqual((yield* s.venue.submit(market(`m-${i}`, "buy", "1"))).status, "filled")
        assert.deepStrictEqual([s.venue.stats().retained, s.venue.stats().orders], [3, 6], "the open order and the 2 newest closed")
        // the oldest closed orders are gone: a query does not find them, a resubmission is a new order
        assert.instanceOf(yield* s.venue.query(query("m-1")).pipe(Effect.flip), OrderNotFound)
        assert.strictEqual((yield* s.venue.query(query("m-5"))).status, "filled")
        assert.strictEqual((yield* s.venue.query(query("open-1"))).status, "new", "an open order is never forgotten")
        const again = yield* s.venue.submit(market("m-1", "buy", "1"))
        assert.notStrictEqual(again.orderId, resting.orderId)
        assert.strictEqual(s.venue.stats().orders, 7)
        assert.strictEqual(s.venue.stats().retained, 3)
      }), { retainClosed: 2 }))

  describe("rejections", () => {
    it.effect("an unknown symbol is rejected with a report and a typed error, once", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          yield* snapshot(s, [["1", "1"]], [["2", "1"]], { symbol: "ETH-USDT" })
          const err = yield* s.venue.submit(limit("r-1", "buy", "1", "1", { symbol: "ETH-USDT" })).pipe(Effect.flip)
          assert.instanceOf(err, UnknownSymbol)
          assert.deepStrictEqual([err._tag, (err as UnknownSymbol).symbol, (err as UnknownSymbol).venue], [
            "UnknownSymbol",
            "ETH-USDT",
            PAPER_PROVIDER
          ])
          assert.deepStrictEqual(trail(s.received, "r-1"), ["1 rejected filled=0"])
          assert.strictEqual(s.received[0]!.payload.reason, "unknown symbol ETH-USDT on paper")
          const again = yield* s.venue.submit(limit("r-1", "buy", "1", "1", { symbol: "ETH-USDT" })).pipe(Effect.flip)
          assert.deepStrictEqual([again._tag, again.message], [err._tag, err.message], "the same rejection, answered again")
          assert.strictEqual(trail(s.received, "r-1").length, 1, "the rejection is reported once")
          assert.strictEqual(s.venue.stats().rejected, 1)
        }), { symbols: [SYM] }))

    it.effect("an order before any market data for its symbol is rejected", () =>
      withVenue((s) =>
        Effect.gen(function*() {
          const err = yield* s.venue.submit(market("r-2", "sell", "1")).pipe(Effect.flip)
          assert.instanceOf(err, VenueRejected)
          const v = err as VenueRejected
          assert.deepStrictEqual([v.venue, v.code, v.text, v.clientOrderId, v.symbol], [
            PAPER_PROVIDER,
            "no_market_data",
            `no market data for ${SYM}`,
            "r-2",
            SYM
          ])
          assert.deepStrictEqual(trail(s.received, "r-2"), ["1 rejected filled=0"])
          const q = yield* s.venue.query(query("r-2"))
          assert.strictEqual(v.orderId, q.orderId, "the rejection names the order the report was for")
          assert.deepStrictEqual([q.status, q.reason], ["rejected", `no market data for ${SYM}`])
        })
      ))
  })

  it.effect("a ticker-fed view trades against the top of book", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* ticker(s, "99.5", "2", "100.25", "0.75")
        const view = yield* s.venue.submit(market("t-1", "buy", "1"))
        assert.deepStrictEqual(trail(s.received, "t-1"), [
          "1 new filled=0",
          "2 partially_filled 0.75@100.25 filled=0.75",
          "3 canceled filled=0.75"
        ])
        assert.strictEqual(view.avgPrice, "100.25")
        yield* ticker(s, "99.5", "2", "100.25", "0.75")
        const sell = yield* s.venue.submit(market("t-2", "sell", "2"))
        assert.deepStrictEqual([sell.status, sell.avgPrice], ["filled", "99.5"])
      })
    ))

  it.effect("reports of each order are emitted in order under concurrent orders, cancels and market data", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        yield* snapshot(s, [["90", "1"]], [["110", "1"]])
        const ids = Array.from({ length: 12 }, (_, i) => `p-${i}`)
        yield* Effect.all(ids.map((id, i) => s.venue.submit(limit(id, "buy", "3", String(100 + i)))), {
          concurrency: "unbounded"
        })
        const traffic = [
          ...ids.slice(0, 4).map((id) => s.venue.cancel(cancel(id)).pipe(Effect.ignore)),
          ...Array.from({ length: 6 }, (_, k) => delta(s, [], [[String(95 + k), "2"]], `md-${k}`)),
          ...ids.slice(4, 6).map((id) => s.venue.cancel(cancel(id)).pipe(Effect.ignore))
        ]
        yield* Effect.all(traffic, { concurrency: "unbounded" })
        yield* Effect.forEach(ids, (id) => s.venue.cancel(cancel(id)).pipe(Effect.ignore))
        for (const id of ids) {
          const seqs = s.received.filter((r) => r.payload.clientOrderId === id).map((r) => r.payload.reportSeq)
          assert.deepStrictEqual(seqs, seqs.map((_, i) => i + 1), `reports of ${id} in order`)
          const statuses = s.received.filter((r) => r.payload.clientOrderId === id).map((r) => r.payload.status)
          assert.strictEqual(statuses[0], "new")
          const last: OrderStatus = statuses[statuses.length - 1]!
          assert.include(["filled", "canceled"], last)
          const q = yield* s.venue.query(query(id))
          assert.strictEqual(q.reports, seqs.length)
          assert.strictEqual(q.status, last)
        }
        assert.strictEqual(s.venue.stats().resting, 0)
        assert.isAbove(s.venue.stats().fills, 0)
        assert.strictEqual(s.venue.stats().reportsEmitted, s.received.length)
      })
    ))

  it.effect("a submitter interrupted while another fiber is emitting loses none of its reports", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const GatedSink = Layer.effect(
        ExecReportSink,
        Effect.gen(function*() {
          const recycler = yield* Recycler
          const received = yield* Received
          return (report) =>
            Deferred.succeed(entered, undefined).pipe(
              Effect.zipRight(Deferred.await(gate)),
              Effect.zipRight(Effect.sync(() => {
                received.push(report.toWire())
                recycler.unsafeRecycle(report, generationOf(report))
              }))
            )
        })
      )
      const gated = PaperVenue.layer.pipe(
        Layer.provideMerge(GatedSink),
        Layer.provideMerge(Layer.sync(Received, () => [])),
        Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({}))))
      )
      yield* Effect.gen(function*() {
        const s = yield* services
        yield* snapshot(s, [["99", "1"]], [["100", "1"]])
        const first = yield* s.venue.submit(market("g-1", "buy", "1")).pipe(Effect.fork)
        yield* Deferred.await(entered)
        const second = yield* s.venue.submit(limit("g-2", "sell", "1", "105")).pipe(Effect.fork)
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(second)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(first)
        assert.deepStrictEqual(trail(s.received, "g-1"), ["1 new filled=0", "2 filled 1@100 filled=1"])
        assert.deepStrictEqual(trail(s.received, "g-2"), ["1 new filled=0"], "emitted by the fiber that was draining")
        assert.strictEqual(s.venue.stats().reportsPending, 0)
        assert.strictEqual(s.pool.stats().ExecReport.outstanding, 0)
        yield* s.venue.cancel(cancel("g-2"))
      }).pipe(Effect.provide(gated))
    }))

  it.effect("ignores merged events and execution reports offered as market data", () =>
    withVenue((s) =>
      Effect.gen(function*() {
        const merged = s.pool.acquireMerged()
        merged.symbol = SYM
        const report = s.pool.acquireExecReport()
        report.symbol = SYM
        yield* s.venue.onMarketData(merged)
        yield* s.venue.onMarketData(report)
        s.recycler.unsafeRecycleMany([merged, report], [generationOf(merged), generationOf(report)])
        assert.deepStrictEqual([s.venue.stats().symbols, s.venue.stats().marketUpdates], [0, 0])
      })
    ))
})
