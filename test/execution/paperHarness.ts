/**
 * A paper venue under test: a sink that records each report's wire form and
 * recycles it, a debug pool (a market event kept past `onMarketData` would
 * fail on its next access), market data fed per venue, and order builders.
 */
import { assert } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { AmendOrder, CancelOrder, QueryOrder, SubmitOrder, type TimeInForce } from "../../schema/Control.js"
import type { WireExecReport } from "../../schema/Event.js"
import { BookDelta, BookSnapshot, decimal, Ticker } from "../../schema/Event.js"
import type { Event } from "../../src/Event.js"
import { ExecReportSink, ExecutionVenue } from "../../src/ExecutionVenue.js"
import * as PaperVenue from "../../src/execution/Paper.js"
import type { PaperVenueOptions } from "../../src/execution/Paper.js"
import { Pool } from "../../src/Pool.js"
import { generationOf, Recycler } from "../../src/Recycler.js"

export const SYM = "BTC-USDT"

export class Received extends Context.Tag("test/paper/Received")<Received, Array<WireExecReport>>() {}

const TestSink = Layer.effect(
  ExecReportSink,
  Effect.gen(function*() {
    const recycler = yield* Recycler
    const received = yield* Received
    return (report) =>
      Effect.sync(() => {
        received.push(report.toWire())
        assert.isTrue(recycler.unsafeRecycle(report, generationOf(report)), "the sink owns each report exactly once")
      })
  })
)

export const paperLayer = (options: PaperVenueOptions) =>
  PaperVenue.layerWith(options).pipe(
    Layer.provideMerge(TestSink),
    Layer.provideMerge(Layer.sync(Received, () => [])),
    Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({ debug: true }))))
  )

const services = Effect.all({ venue: ExecutionVenue, pool: Pool, recycler: Recycler, received: Received })
export type Services = Effect.Effect.Success<typeof services>

/** Runs `f` against a fresh venue; at the end no pooled report or event is outstanding. */
export const withPaper = <A, E>(options: PaperVenueOptions, f: (s: Services) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const s = yield* services
    const a = yield* f(s)
    assert.strictEqual(s.venue.stats().reportsPending, 0)
    assert.strictEqual(s.pool.stats().ExecReport.outstanding, 0, "every report recycled")
    assert.strictEqual(s.pool.stats().Event.outstanding, 0, "every market event recycled by its owner")
    return a
  }).pipe(Effect.provide(paperLayer(options)))

const feed = (s: Services, venue: string, symbol: string, payload: Event["payload"], traceId: string) =>
  Effect.suspend(() => {
    const e = s.pool.acquireEvent()
    e.symbol = symbol
    e.provider = venue
    e.kind = payload!._tag as Event["kind"]
    e.payload = payload
    e.traceId = traceId
    const gen = generationOf(e)
    return s.venue.onMarketData(e).pipe(Effect.ensuring(Effect.sync(() => s.recycler.unsafeRecycle(e, gen))))
  })

type Levels = ReadonlyArray<readonly [string, string]>
const lv = (levels: Levels) => levels.map(([p, q]) => [decimal(p), decimal(q)] as const)

/** A consistent book snapshot of `venue` (BTC-USDT unless said). */
export const book = (s: Services, venue: string, bids: Levels, asks: Levels, symbol = SYM) =>
  feed(s, venue, symbol, BookSnapshot.make({ bids: lv(bids), asks: lv(asks), state: "consistent" }), `md-${venue}`)

export const bookDelta = (s: Services, venue: string, bids: Levels, asks: Levels, symbol = SYM) =>
  feed(s, venue, symbol, BookDelta.make({ bids: lv(bids), asks: lv(asks) }), `md-${venue}-delta`)

export const ticker = (s: Services, venue: string, bid: string, ask: string, qty = "10", symbol = SYM) =>
  feed(
    s,
    venue,
    symbol,
    Ticker.make({ bidPrice: decimal(bid), bidQty: decimal(qty), askPrice: decimal(ask), askQty: decimal(qty), exchangeTs: 0 }),
    `md-${venue}-ticker`
  )

let commands = 0
const nextCommand = () => `cmd-${++commands}`

export interface OrderOpts {
  readonly venue?: string
  readonly symbol?: string
  readonly consumerId?: string
  readonly timeInForce?: TimeInForce
  readonly postOnly?: boolean
  readonly reduceOnly?: boolean
}

const extras = (o: OrderOpts) => ({
  ...(o.venue === undefined ? {} : { venue: o.venue }),
  ...(o.timeInForce === undefined ? {} : { timeInForce: o.timeInForce }),
  ...(o.postOnly === undefined ? {} : { postOnly: o.postOnly }),
  ...(o.reduceOnly === undefined ? {} : { reduceOnly: o.reduceOnly })
})

export const market = (clientOrderId: string, side: "buy" | "sell", quantity: string, o: OrderOpts = {}) =>
  SubmitOrder.make({
    commandId: nextCommand(),
    consumerId: o.consumerId ?? "strat-a",
    clientOrderId,
    symbol: o.symbol ?? SYM,
    side,
    orderType: "market",
    quantity: decimal(quantity),
    ...extras(o)
  })

export const limit = (clientOrderId: string, side: "buy" | "sell", quantity: string, price: string, o: OrderOpts = {}) =>
  SubmitOrder.make({
    commandId: nextCommand(),
    consumerId: o.consumerId ?? "strat-a",
    clientOrderId,
    symbol: o.symbol ?? SYM,
    side,
    orderType: "limit",
    quantity: decimal(quantity),
    price: decimal(price),
    ...extras(o)
  })

export const amend = (
  clientOrderId: string,
  change: { readonly price?: string; readonly quantity?: string },
  consumerId = "strat-a"
) =>
  AmendOrder.make({
    commandId: nextCommand(),
    consumerId,
    clientOrderId,
    ...(change.price === undefined ? {} : { price: decimal(change.price) }),
    ...(change.quantity === undefined ? {} : { quantity: decimal(change.quantity) })
  })

export const cancel = (clientOrderId: string, consumerId = "strat-a") =>
  CancelOrder.make({ commandId: nextCommand(), consumerId, clientOrderId })

export const query = (clientOrderId: string, consumerId = "strat-a") =>
  QueryOrder.make({ commandId: nextCommand(), consumerId, clientOrderId })

/** The reports of one order, compactly: `seq status [qty@price] filled=x`. */
export const trail = (received: ReadonlyArray<WireExecReport>, clientOrderId: string) =>
  received.filter((r) => r.payload.clientOrderId === clientOrderId).map((r) => {
    const p = r.payload
    const fill = p.lastFillQty === undefined ? "" : ` ${p.lastFillQty}@${p.lastFillPrice}`
    return `${p.reportSeq} ${p.status}${fill} filled=${p.filledQty}`
  })

/** One balance of the snapshot as [total, available, reserved]. */
export const balanceOf = (s: Services, venue: string, asset: string) => {
  const b = s.venue.portfolio().balances.find((x) => x.venue === venue && x.asset === asset)
  return b === undefined ? undefined : [b.total, b.available, b.reserved]
}

/** Zero fees and deep balances: for tests about matching, not money. */
export const roomy = { balances: { BTC: "1000", ETH: "1000", USDT: "10000000" }, fees: { maker: "0", taker: "0" } }
