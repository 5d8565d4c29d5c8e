/**
 * The paper venue: the execution venue's embedded default (the port is
 * `src/ExecutionVenue.ts`). It trades as the venues it simulates would: one
 * book per (venue, symbol), an `OrderBook` (`src/OrderBook.ts`) fed by that
 * venue's market data only, and one spot account per venue (`Account.ts`).
 *
 * - Market view. `onMarketData` reads the event and keeps nothing of it (the
 *   caller still owns it and recycles it); the event's provider is the venue:
 *   - a `book_snapshot` replaces that venue's view of the symbol; a stale
 *     snapshot marks it stale;
 *   - a `book_delta` updates it when the view comes from a book (absolute
 *     quantities, "0" removes a level);
 *   - a `ticker` sets a one-level view (best bid and ask) when the venue's
 *     view does not come from a book;
 *   - merged events and execution reports are ignored.
 *   Fills consume the liquidity of the view, until market data replaces it.
 * - The venue of an order: the one it names. Without one, the only venue that
 *   quotes the symbol (configured with `symbols`, else seen quoting it);
 *   several: `VenueRequired`. A named venue that does not quote the symbol:
 *   `UnknownVenue`.
 * - Submission. Orders are idempotent by `clientOrderId`: a resubmission with
 *   the same terms returns the existing order (or its rejection again) and
 *   emits nothing; with other terms (symbol, side, type, quantity, price,
 *   venue, time in force, post-only, reduce-only) it is a
 *   `DuplicateClientOrderId` naming the terms that differ. A `clientOrderId`
 *   in use by another consumer is a `DuplicateClientOrderId` too, and neither
 *   creates an order. Before the order travels: an unknown symbol (when
 *   `symbols` is configured: `UnknownSymbol`), the venue as above, no market
 *   data yet (`VenueRejected`, code "no_market_data"), and the instrument rules
 *   (`Instruments.ts`). After the venue's latency (`latencyMs`, on the Effect
 *   Clock), on arrival, against the book and the account as they are then: a
 *   market order against a stale book ("stale_book"), reduce-only and
 *   post-only, and the account's reservation (`InsufficientBalance`). A refused
 *   order is `rejected` (one report, and the typed rejection); otherwise it is
 *   acknowledged with a `new` report and matched.
 * - Market orders (IOC by nature) walk the opposite side of the book, best
 *   level first: one `partially_filled` report per level consumed, the last
 *   one `filled`. When the book (or, for a buy, the money) runs out first, the
 *   remainder is canceled: a final `canceled` report with the reason, keeping
 *   what was filled.
 * - Limit orders fill at once against every level that crosses their price.
 *   Then GTC rests (checked on each market data update of its venue and
 *   symbol, oldest first, filling level by level while the market crosses it),
 *   IOC cancels the rest, and FOK fills only when the crossing levels hold its
 *   whole quantity (else it is canceled having filled nothing). Fills happen at
 *   the book's price (a buy limit at 101 against an ask of 100 fills at 100). A
 *   stale view fills nothing until it is consistent again.
 * - Fills at arrival pay the taker fee, fills of a resting order the maker
 *   fee; each fill moves the account's balances and the positions (the
 *   account's and the consumer's) of its (venue, symbol). A reduce-only order
 *   never fills past the consumer's position; what it cannot fill is canceled.
 * - Amend (`AmendOrder`): a resting limit order's price and quantity, the
 *   rules and the account applied again; time priority lost when the price
 *   changes or the quantity rises; an `amend` report with a new `reportSeq`.
 * - Cancel: a `new` or `partially_filled` order is canceled (a `canceled`
 *   report); a filled, canceled or rejected one is `OrderNotCancelable`; an
 *   order of another consumer, or none, is `OrderNotFound`. Cancels and amends
 *   travel with the venue's latency too; `cancelAll` acts at once.
 * - `avgPrice` is the fill-quantity-weighted mean of the fill prices, rounded
 *   half-even to 18 decimal places; every other figure is exact.
 *
 * State changes are synchronous critical sections; the reports they produce go
 * into one FIFO outbox that a single fiber at a time (a one-permit semaphore)
 * hands to the sink. A method returns once its own reports have been handed
 * over, so concurrent calls are safe and reports stay in order.
 */
import { Duration, Effect, Layer } from "effect"
import type { AmendOrder, CancelOrder, QueryOrder, SubmitOrder, TimeInForce } from "../../schema/Control.js"
import { timeInForceOf } from "../../schema/Control.js"
import type { BookDelta, BookSnapshot, Decimal, Level, OrderStatus, OrderType, Side, Ticker } from "../../schema/Event.js"
import { ExecReportPayload } from "../../schema/Event.js"
import {
  DuplicateClientOrderId,
  InsufficientBalance,
  InvalidQuantity,
  OrderNotCancelable,
  OrderNotFound,
  type OrderRejection,
  PostOnlyWouldTake,
  ReduceOnlyWouldIncrease,
  UnknownSymbol,
  UnknownVenue,
  VenueRejected,
  VenueRequired
} from "../../schema/Rejection.js"
import type { AnyEvent } from "../Event.js"
import {
  type CancelScope,
  type ConsumerExposure,
  ExecReportSink,
  ExecutionVenue,
  type ExecutionVenueShape,
  type ExecutionVenueStats,
  type OrderView,
  type PortfolioSnapshot,
  type Position
} from "../ExecutionVenue.js"
import { Dec, dec, toDecimal, ZERO } from "../internal/decimal.js"
import { type BookLevel, OrderBook } from "../OrderBook.js"
import { Pool } from "../Pool.js"
import { Account, assetsOf, consumerPortfolio, DEFAULT_BALANCES, DEFAULT_FEES, PositionBook } from "./Account.js"
import { checkRules, type InstrumentRules, type InstrumentRulesConfig, parseRules } from "./Instruments.js"
import { PaperStore, type PaperStoreShape, StoredOrder } from "./PaperStore.js"

/** One venue's paper account and market rules. */
export interface PaperVenueConfig {
  /**
   * The symbols the venue quotes: an order names the venue for these. Absent:
   * learned from the market data the venue sends.
   */
  readonly symbols?: ReadonlyArray<string> | undefined
  /** Starting balance per asset (decimal strings). Absent: `DEFAULT_BALANCES`. */
  readonly balances?: Readonly<Record<string, string>> | undefined
  /** Fee rates (fractions of the notional). Absent: `DEFAULT_FEES`. */
  readonly fees?: { readonly maker: string; readonly taker: string } | undefined
  /** The time an order (an amend, a cancel) takes to reach the venue, on the Effect Clock. Absent: none. */
  readonly latencyMs?: number | undefined
  /** Tick size, lot size, minimum quantity and notional, per symbol. */
  readonly instruments?: Readonly<Record<string, InstrumentRulesConfig>> | undefined
}

export interface PaperVenueOptions {
  /** The symbols the venue trades. When given, an order on any other symbol is rejected as unknown. */
  readonly symbols?: ReadonlyArray<string>
  /** The prefix of venue order ids (default "paper-"). */
  readonly orderIdPrefix?: string
  /**
   * Where open orders are kept across restarts (see `execution/PaperStore.ts`):
   * restored at start (they rest again, and can be queried and canceled),
   * saved before the reports of each change are handed over.
   */
  readonly store?: PaperStoreShape
  /**
   * Closed orders (filled, canceled, rejected) kept for idempotency and
   * queries, newest first: beyond this many, the oldest closed order is
   * forgotten, so a gateway that trades for days holds bounded memory. A
   * resubmission of a forgotten client order id is a new order. Default
   * 10,000 (about seventeen minutes of orders at ten a second; a retry after a
   * timeout or a reconnect comes within seconds).
   */
  readonly retainClosed?: number
  /** The venues (providers) by name: their accounts, fees, latency and instrument rules. */
  readonly venues?: Readonly<Record<string, PaperVenueConfig>>
  /** The account of a venue not named in `venues` (one known from its market data only). */
  readonly defaultVenue?: PaperVenueConfig
}

export const DEFAULT_RETAIN_CLOSED = 10_000

/** The `provider` of every report the paper venue emits. */
export const PAPER_PROVIDER = "paper"

// ---------------------------------------------------------------------------
// Paper venue
// ---------------------------------------------------------------------------

interface MarketView {
  source: "book" | "ticker"
  /** The levels, current once `unparsed` is applied; fills take liquidity out of it. */
  readonly book: OrderBook
  stale: boolean
  /**
   * Market data not yet turned into levels: a snapshot (replacing the levels)
   * and the deltas after it. Parsing waits until an order needs the book, so
   * the market-data path (which runs before every dispatch) stays cheap.
   */
  unparsed: { snapshot: BookSnapshot | undefined; readonly deltas: Array<BookDelta> } | undefined
  /** A ticker view's latest ticker not yet turned into its one level a side (the same deferral). */
  ticker: Ticker | undefined
}

/** A map by (venue, symbol), nested so that the market-data path builds no key string. */
class ByVenue<T> {
  readonly venues = new Map<string, Map<string, T>>()
  get(venue: string, symbol: string): T | undefined {
    return this.venues.get(venue)?.get(symbol)
  }
  set(venue: string, symbol: string, value: T): void {
    let m = this.venues.get(venue)
    if (m === undefined) this.venues.set(venue, m = new Map())
    m.set(symbol, value)
  }
  delete(venue: string, symbol: string): void {
    this.venues.get(venue)?.delete(symbol)
  }
  get size(): number {
    let n = 0
    for (const m of this.venues.values()) n += m.size
    return n
  }
  *values(): Generator<T> {
    for (const m of this.venues.values()) yield* m.values()
  }
}

/** Order numbers reserved in the store at a time (see `PaperStore`). */
const ORDER_ID_BLOCK = 1_024

/** Deltas held unparsed before they are applied anyway, so that memory stays bounded. */
const MAX_UNPARSED_DELTAS = 256

/** Decimal places a market buy's affordable quantity is rounded down to when the venue sets no lot size. */
const AFFORDABLE_DP = 12

/** Brings a view's levels up to date with the market data it holds unparsed. */
const parsed = (view: MarketView): MarketView => {
  const t = view.ticker
  if (t !== undefined) {
    view.ticker = undefined
    view.book.reset([{ price: t.bidPrice, qty: t.bidQty }], [{ price: t.askPrice, qty: t.askQty }])
  }
  const u = view.unparsed
  if (u === undefined) return view
  view.unparsed = undefined
  if (u.snapshot !== undefined) view.book.reset(levelsOf(u.snapshot.bids), levelsOf(u.snapshot.asks))
  for (const d of u.deltas) view.book.apply(levelsOf(d.bids), levelsOf(d.asks))
  return view
}

const levelsOf = (levels: ReadonlyArray<Level>): Array<BookLevel> => levels.map(([price, qty]) => ({ price, qty }))

/** The terms an order was submitted with: a resubmission is compared with these. */
interface Terms {
  readonly symbol: string
  readonly side: Side
  readonly type: OrderType
  readonly qty: Dec
  readonly limit: Dec | undefined
  readonly venue: string | undefined
  readonly timeInForce: TimeInForce
  readonly postOnly: boolean
  readonly reduceOnly: boolean
}

interface OrderState {
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly venue: string
  readonly side: Side
  readonly type: OrderType
  readonly timeInForce: TimeInForce
  readonly postOnly: boolean
  readonly reduceOnly: boolean
  readonly terms: Terms
  /** The current price and quantity (an amend changes them). */
  price: Decimal | undefined
  limit: Dec | undefined
  quantity: Decimal
  qty: Dec
  filled: Dec
  notional: Dec
  status: OrderStatus
  reportSeq: number
  reason: string | undefined
  /** Why it was rejected: answered again to a resubmission with the same terms. */
  rejection: OrderRejection | undefined
  /** The account reservation the order still holds, in `reservedAsset`. */
  reserved: Dec
  reservedAsset: string
  /** False while the order travels to the venue (latency). */
  arrived: boolean
  readonly submittedTs: number
  updatedTs: number
}

interface PendingReport {
  readonly payload: ExecReportPayload
  readonly symbol: string
  readonly traceId: string
  readonly ingestTs: number
  readonly routingVersion: number
}

/** One venue: its account, latency and rules. */
interface VenueState {
  readonly name: string
  readonly account: Account
  readonly latencyMs: number
  readonly rules: ReadonlyMap<string, InstrumentRules>
  /** The symbols it quotes, when configured (else learned from its market data). */
  readonly symbols: ReadonlySet<string> | undefined
  /** The highest fee rate: a buy reserves its price x quantity x (1 + this). */
  readonly reserveRate: Dec
}

const AVG_PRICE_DP = 18

const terminal = (s: OrderStatus): s is "filled" | "canceled" | "rejected" =>
  s === "filled" || s === "canceled" || s === "rejected"

/** A venue answer is a rejection when it is tagged (an `OrderView` never is). */
const isRejection = <A extends object>(r: A | OrderRejection): r is OrderRejection => "_tag" in r

/** The terms of `cmd` that differ from those of the order already under its clientOrderId. */
const differingTerms = (t: Terms, cmd: SubmitOrder): Array<string> => {
  const differ: Array<string> = []
  if (t.symbol !== cmd.symbol) differ.push("symbol")
  if (t.side !== cmd.side) differ.push("side")
  if (t.type !== cmd.orderType) differ.push("orderType")
  if (!t.qty.eq(dec(cmd.quantity))) differ.push("quantity")
  const price = cmd.orderType === "limit" ? cmd.price : undefined
  if ((t.limit === undefined) !== (price === undefined) || (t.limit !== undefined && !t.limit.eq(dec(price!)))) {
    differ.push("price")
  }
  if (cmd.venue !== undefined && cmd.venue !== t.venue) differ.push("venue")
  // a market order's time in force follows from its type: only a limit order's is a term of its own
  if (t.type === cmd.orderType && timeInForceOf(cmd) !== t.timeInForce) differ.push("timeInForce")
  if ((cmd.postOnly ?? false) !== t.postOnly) differ.push("postOnly")
  if ((cmd.reduceOnly ?? false) !== t.reduceOnly) differ.push("reduceOnly")
  return differ
}

const viewOf = (o: OrderState): OrderView => {
  const base = {
    orderId: o.orderId,
    clientOrderId: o.clientOrderId,
    consumerId: o.consumerId,
    symbol: o.symbol,
    venue: o.venue,
    side: o.side,
    type: o.type,
    timeInForce: o.timeInForce,
    postOnly: o.postOnly,
    reduceOnly: o.reduceOnly,
    status: o.status,
    quantity: o.quantity,
    filledQty: toDecimal(o.filled),
    leavesQty: toDecimal(terminal(o.status) ? ZERO : o.qty.minus(o.filled)),
    reports: o.reportSeq,
    submittedTs: o.submittedTs,
    updatedTs: o.updatedTs
  }
  return {
    ...base,
    ...(o.price === undefined ? {} : { price: o.price }),
    ...(o.filled.isZero() ? {} : { avgPrice: toDecimal(o.notional.div(o.filled).toDecimalPlaces(AVG_PRICE_DP)) }),
    ...(o.reason === undefined ? {} : { reason: o.reason })
  }
}

/** An order that travels to its venue: it arrives after `delay`. */
interface InFlight {
  readonly inFlight: OrderState
  readonly delay: number
}

/** The paper venue, reading its dependencies once. */
export const makePaperVenue = (
  options: PaperVenueOptions = {}
): Effect.Effect<ExecutionVenueShape, never, Pool | ExecReportSink> =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const sink = yield* ExecReportSink
    const clock = yield* Effect.clock
    const lock = yield* Effect.makeSemaphore(1)

    const tradable = options.symbols === undefined ? undefined : new Set(options.symbols)
    const prefix = options.orderIdPrefix ?? "paper-"
    const nowMicros = (): number => Number(clock.unsafeCurrentTimeNanos() / 1000n)

    const orders = new Map<string, OrderState>()
    /** Orders not yet closed (in flight, resting, or being matched). */
    const open = new Set<OrderState>()
    /** How many of them each consumer has (the risk checks read it: `exposure`). */
    const openBy = new Map<string, number>()
    const addOpen = (o: OrderState): void => {
      open.add(o)
      openBy.set(o.consumerId, (openBy.get(o.consumerId) ?? 0) + 1)
    }
    const removeOpen = (o: OrderState): void => {
      if (!open.delete(o)) return
      const n = (openBy.get(o.consumerId) ?? 1) - 1
      if (n <= 0) openBy.delete(o.consumerId)
      else openBy.set(o.consumerId, n)
    }
    /** Client order ids of closed orders, oldest first (a Map keeps insertion order). */
    const closed = new Map<string, true>()
    const retainClosed = Math.max(0, options.retainClosed ?? DEFAULT_RETAIN_CLOSED)
    let forgotten = 0
    /** Resting orders per (venue, symbol), in time priority. */
    const resting = new ByVenue<Array<OrderState>>()
    const views = new ByVenue<MarketView>()
    /** The account's positions per (venue, symbol), and each consumer's. */
    const positions = new ByVenue<PositionBook>()
    const consumerPositions = new Map<string, ByVenue<PositionBook>>()
    const outbox: Array<PendingReport> = []
    let nextOrder = 0
    const store = options.store
    /** Orders changed since the last save, and the open orders the store holds (by client order id). */
    const dirty = new Set<OrderState>()
    const kept = new Set<string>()
    /** Order numbers up to this one are reserved in the store: a restart starts after them, so no id is reused. */
    let reservedUpTo = 0
    let restored = 0
    let storeFailures = 0
    let routingVersion: () => number = () => 0
    const counters = {
      filled: 0,
      canceled: 0,
      rejected: 0,
      fills: 0,
      duplicates: 0,
      conflicts: 0,
      amended: 0,
      reportsEmitted: 0,
      marketUpdates: 0,
      balanceShortfalls: 0
    }
    /** Orders, fills and rejections per consumer (one entry per consumer that ever ordered). */
    const perConsumer = new Map<string, { orders: number; fills: number; rejected: number }>()
    const tally = (consumerId: string) => {
      let t = perConsumer.get(consumerId)
      if (t === undefined) perConsumer.set(consumerId, t = { orders: 0, fills: 0, rejected: 0 })
      return t
    }

    // -- venues and accounts ----------------------------------------------------

    const venueStates = new Map<string, VenueState>()
    /** A symbol's assets, worked out once per symbol (a fill needs them). */
    const assetCache = new Map<string, { readonly base: string; readonly quote: string } | undefined>()
    const assetsOfSymbol = (symbol: string) => {
      if (assetCache.has(symbol)) return assetCache.get(symbol)
      const assets = assetsOf(symbol)
      assetCache.set(symbol, assets)
      return assets
    }
    const makeVenue = (name: string, c: PaperVenueConfig): VenueState => {
      const fees = { maker: dec(c.fees?.maker ?? DEFAULT_FEES.maker), taker: dec(c.fees?.taker ?? DEFAULT_FEES.taker) }
      const rules = new Map<string, InstrumentRules>()
      for (const [symbol, r] of Object.entries(c.instruments ?? {})) rules.set(symbol, parseRules(r))
      const v: VenueState = {
        name,
        account: new Account(name, c.balances ?? DEFAULT_BALANCES, fees),
        latencyMs: Math.max(0, c.latencyMs ?? 0),
        rules,
        symbols: c.symbols === undefined ? undefined : new Set(c.symbols),
        reserveRate: Dec.max(ZERO, fees.maker, fees.taker)
      }
      venueStates.set(name, v)
      return v
    }
    for (const [name, c] of Object.entries(options.venues ?? {})) makeVenue(name, c)
    /** A venue's state; one known from its market data only gets the default account. */
    const venueOf = (name: string): VenueState => venueStates.get(name) ?? makeVenue(name, options.defaultVenue ?? {})

    /** The venues that quote `symbol`: configured to, or (when not configured) seen quoting it. */
    const carriersOf = (symbol: string): Array<string> => {
      const out: Array<string> = []
      for (const v of venueStates.values()) if (v.symbols?.has(symbol) === true) out.push(v.name)
      for (const [name, m] of views.venues) {
        if (!m.has(symbol)) continue
        const v = venueStates.get(name)
        if (v === undefined || v.symbols === undefined) out.push(name)
      }
      return out
    }

    const positionOf = (table: ByVenue<PositionBook>, o: OrderState): PositionBook => {
      let p = table.get(o.venue, o.symbol)
      if (p === undefined) {
        const assets = assetsOfSymbol(o.symbol)!
        table.set(o.venue, o.symbol, p = new PositionBook(o.venue, o.symbol, assets.base, assets.quote))
      }
      return p
    }
    const consumerTable = (consumerId: string): ByVenue<PositionBook> => {
      let t = consumerPositions.get(consumerId)
      if (t === undefined) consumerPositions.set(consumerId, t = new ByVenue())
      return t
    }

    /** The mid of a view: (best bid + best ask) / 2, or the one side there is. */
    const midOf = (view: MarketView | undefined): Dec | undefined => {
      if (view === undefined) return undefined
      const book = parsed(view).book
      const bid = book.bestBid()
      const ask = book.bestAsk()
      if (bid !== undefined && ask !== undefined) return dec(bid.price).plus(ask.price).div(2)
      if (bid !== undefined) return dec(bid.price)
      return ask === undefined ? undefined : dec(ask.price)
    }

    // -- reports ------------------------------------------------------------

    /** Gives back what a closed order still holds of the account. */
    const releaseAll = (o: OrderState): void => {
      if (o.reserved.isZero()) return
      venueOf(o.venue).account.release(o.reservedAsset, o.reserved)
      o.reserved = ZERO
    }

    const report = (
      o: OrderState,
      traceId: string,
      extra: { readonly lastFillPrice?: Decimal; readonly lastFillQty?: Decimal; readonly reason?: string } = {}
    ): void => {
      const ts = nowMicros()
      o.reportSeq++
      o.updatedTs = ts
      if (store !== undefined) dirty.add(o)
      if (terminal(o.status)) {
        releaseAll(o)
        removeOpen(o)
        if (!closed.has(o.clientOrderId)) {
          closed.set(o.clientOrderId, true)
          if (closed.size > retainClosed) {
            const oldest = closed.keys().next().value!
            closed.delete(oldest)
            orders.delete(oldest)
            forgotten++
          }
        }
      }
      const reason = extra.reason ?? o.reason
      const payload = ExecReportPayload.make({
        orderId: o.orderId,
        clientOrderId: o.clientOrderId,
        consumerId: o.consumerId,
        side: o.side,
        orderType: o.type,
        status: o.status,
        quantity: o.quantity,
        filledQty: toDecimal(o.filled),
        reportSeq: o.reportSeq,
        ...(o.price === undefined ? {} : { price: o.price }),
        ...(extra.lastFillPrice === undefined ? {} : { lastFillPrice: extra.lastFillPrice }),
        ...(extra.lastFillQty === undefined ? {} : { lastFillQty: extra.lastFillQty }),
        ...(reason === undefined ? {} : { reason })
      })
      outbox.push({ payload, symbol: o.symbol, traceId, ingestTs: ts, routingVersion: routingVersion() })
    }

    /**
     * Hands every pending report to the sink, in FIFO order, one fiber at a
     * time. Waiting for the permit is interruptible: whoever holds it drains
     * the outbox until it is empty, reports queued by the waiter included.
     * Draining is not: a report taken from the outbox always reaches the sink.
     */
    const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.uninterruptible(Effect.zipRight(
      Effect.suspend(() => save),
      Effect.whileLoop({
        while: () => outbox.length > 0,
        body: () =>
          Effect.suspend(() => {
            const next = outbox.shift()!
            const r = pool.acquireExecReport()
            r.payload = next.payload
            r.symbol = next.symbol
            r.provider = PAPER_PROVIDER
            r.traceId = next.traceId
            r.ingestTs = next.ingestTs
            r.routingVersion = next.routingVersion
            counters.reportsEmitted++
            return sink(r)
          }),
        step: () => {}
      })
    )))

    // -- the store ------------------------------------------------------------

    const storedOf = (o: OrderState): StoredOrder =>
      StoredOrder.make({
        orderId: o.orderId,
        clientOrderId: o.clientOrderId,
        consumerId: o.consumerId,
        symbol: o.symbol,
        venue: o.venue,
        side: o.side,
        type: o.type,
        timeInForce: o.timeInForce,
        postOnly: o.postOnly,
        reduceOnly: o.reduceOnly,
        ...(o.price === undefined ? {} : { price: o.price }),
        quantity: o.quantity,
        filled: toDecimal(o.filled),
        notional: toDecimal(o.notional),
        status: o.status as "new" | "partially_filled",
        reportSeq: o.reportSeq,
        submittedTs: o.submittedTs,
        updatedTs: o.updatedTs
      })

    /** Open orders changed since the last save are kept, closed ones dropped; a failure is logged and counted. */
    const save: Effect.Effect<void> = Effect.suspend(() => {
      // order numbers are reserved a block at a time: an order that never rests costs no save
      if (store === undefined || (dirty.size === 0 && nextOrder <= reservedUpTo)) return Effect.void
      const upsert: Array<StoredOrder> = []
      const remove: Array<{ clientOrderId: string; consumerId: string }> = []
      for (const o of dirty) {
        if (!terminal(o.status)) {
          upsert.push(storedOf(o))
          kept.add(o.clientOrderId)
        } else if (kept.delete(o.clientOrderId)) remove.push({ clientOrderId: o.clientOrderId, consumerId: o.consumerId })
      }
      dirty.clear()
      if (upsert.length === 0 && remove.length === 0 && nextOrder <= reservedUpTo) return Effect.void
      const reserve = nextOrder <= reservedUpTo ? reservedUpTo : nextOrder + ORDER_ID_BLOCK
      return store.save({ upsert, remove, nextOrder: reserve }).pipe(
        Effect.map(() => {
          reservedUpTo = reserve
        }),
        Effect.catchAll((e) =>
          Effect.sync(() => storeFailures++).pipe(
            Effect.zipRight(Effect.logError("paper venue state not saved", e).pipe(Effect.annotateLogs({ store: store.name })))
          )
        )
      )
    })

    const enqueueResting = (o: OrderState): void => {
      const queue = resting.get(o.venue, o.symbol)
      if (queue === undefined) resting.set(o.venue, o.symbol, [o])
      else queue.push(o)
    }
    const dequeueResting = (o: OrderState): void => {
      const queue = resting.get(o.venue, o.symbol)
      if (queue === undefined) return
      const rest = queue.filter((x) => x !== o)
      if (rest.length === 0) resting.delete(o.venue, o.symbol)
      else resting.set(o.venue, o.symbol, rest)
    }

    /** What an open order must hold of the account for its unfilled quantity (a market buy holds nothing). */
    const reservationOf = (
      o: { readonly side: Side; readonly type: OrderType; readonly limit: Dec | undefined },
      leaves: Dec,
      v: VenueState
    ): Dec =>
      o.side === "sell" ? leaves : o.limit === undefined ? ZERO : o.limit.times(leaves).times(v.reserveRate.plus(1))

    /** The open orders of an earlier run rest again, with their fills, report sequence and ids. */
    if (store !== undefined) {
      const state = yield* store.load.pipe(
        Effect.catchAll((e) =>
          Effect.logError("paper venue state not restored", e).pipe(
            Effect.tap(() => {
              storeFailures++
            }),
            Effect.annotateLogs({ store: store.name }),
            Effect.as({ orders: [], nextOrder: 0 })
          )
        )
      )
      nextOrder = reservedUpTo = state.nextOrder
      for (const s of state.orders) {
        const limit = s.type === "limit" && s.price !== undefined ? dec(s.price) : undefined
        // an order stored before orders named their venue trades on the one venue that quotes its symbol
        const venue = s.venue ?? carriersOf(s.symbol)[0] ?? PAPER_PROVIDER
        const timeInForce = s.timeInForce ?? "GTC"
        const o: OrderState = {
          orderId: s.orderId,
          clientOrderId: s.clientOrderId,
          consumerId: s.consumerId,
          symbol: s.symbol,
          venue,
          side: s.side,
          type: s.type,
          timeInForce,
          postOnly: s.postOnly ?? false,
          reduceOnly: s.reduceOnly ?? false,
          terms: {
            symbol: s.symbol,
            side: s.side,
            type: s.type,
            qty: dec(s.quantity),
            limit,
            venue,
            timeInForce,
            postOnly: s.postOnly ?? false,
            reduceOnly: s.reduceOnly ?? false
          },
          price: s.price as Decimal | undefined,
          limit,
          quantity: s.quantity as Decimal,
          qty: dec(s.quantity),
          filled: dec(s.filled),
          notional: dec(s.notional),
          status: s.status,
          reportSeq: s.reportSeq,
          reason: undefined,
          rejection: undefined,
          reserved: ZERO,
          reservedAsset: "",
          arrived: true,
          submittedTs: s.submittedTs,
          updatedTs: s.updatedTs
        }
        orders.set(o.clientOrderId, o)
        addOpen(o)
        tally(o.consumerId).orders++
        kept.add(o.clientOrderId)
        restored++
        // the account starts afresh: the order reserves again what it may spend, or is canceled
        const assets = assetsOfSymbol(o.symbol)
        const v = venueOf(o.venue)
        const need = reservationOf(o, o.qty.minus(o.filled), v)
        const asset = o.side === "buy" ? assets?.quote : assets?.base
        if (asset !== undefined && v.account.reserve(asset, need)) {
          o.reserved = need
          o.reservedAsset = asset
          enqueueResting(o)
        } else {
          o.status = "canceled"
          o.reason = asset === undefined
            ? `the assets of ${o.symbol} are unknown`
            : `insufficient ${asset} at restart: needs ${toDecimal(need)}, has ${toDecimal(v.account.available(asset))}`
          counters.canceled++
          report(o, `restore-${o.clientOrderId}`)
        }
      }
      if (restored > 0) {
        yield* Effect.logInfo("paper venue restored its open orders").pipe(
          Effect.annotateLogs({ store: store.name, orders: restored })
        )
      }
      yield* flush
    }

    // -- matching -----------------------------------------------------------

    /** Books one fill: the account pays and receives, the positions and P&L move. */
    const settle = (o: OrderState, price: Dec, qty: Dec, liquidity: "maker" | "taker"): void => {
      const v = venueOf(o.venue)
      const assets = assetsOfSymbol(o.symbol)!
      const account = v.account
      const notional = price.times(qty)
      const fee = notional.times(liquidity === "maker" ? account.fees.maker : account.fees.taker)
      if (o.side === "buy") {
        if (!o.reserved.isZero()) {
          const share = Dec.min(o.reserved, reservationOf(o, qty, v))
          account.release(assets.quote, share)
          o.reserved = o.reserved.minus(share)
        }
        if (account.debit(assets.quote, notional.plus(fee)).gt(0)) counters.balanceShortfalls++
        account.credit(assets.base, qty)
      } else {
        const share = Dec.min(o.reserved, qty)
        account.release(assets.base, share)
        o.reserved = o.reserved.minus(share)
        if (account.debit(assets.base, qty).gt(0)) counters.balanceShortfalls++
        account.credit(assets.quote, notional.minus(fee))
      }
      positionOf(positions, o).fill(o.side, qty, price, fee)
      positionOf(consumerTable(o.consumerId), o).fill(o.side, qty, price, fee)
    }

    /** The quantity the available quote pays for at `price`, fees included, in whole lots (else to 12 places). */
    const affordableAt = (o: OrderState, v: VenueState, price: Dec, liquidity: "maker" | "taker"): Dec => {
      const quote = assetsOfSymbol(o.symbol)!.quote
      const rate = liquidity === "maker" ? v.account.fees.maker : v.account.fees.taker
      const lot = v.rules.get(o.symbol)?.lotSize
      const afford = v.account.available(quote).div(price.times(rate.plus(1)))
      return lot === undefined || lot.lte(0)
        ? afford.toDecimalPlaces(AFFORDABLE_DP, Dec.ROUND_DOWN)
        : afford.div(lot).floor().times(lot)
    }

    /** What a reduce-only order may still fill: the consumer's position on its side, none once it is flat or flipped. */
    const reducible = (o: OrderState): Dec => {
      const pos = consumerTable(o.consumerId).get(o.venue, o.symbol)?.qty ?? ZERO
      return o.side === "buy" ? (pos.isNegative() ? pos.neg() : ZERO) : (pos.isPositive() ? pos : ZERO)
    }

    /**
     * Fills `o` against the opposite side while levels cross (`limit`
     * undefined: any level). It stops early, for the caller to cancel the
     * rest: a market buy takes no more than the available quote pays for,
     * fees included ("balance"); a reduce-only order no more than the
     * consumer's position still holds ("reduce_only"), however the position
     * moved since the order was placed.
     */
    const match = (
      o: OrderState,
      market: MarketView,
      traceId: string,
      liquidity: "maker" | "taker"
    ): "balance" | "reduce_only" | undefined => {
      const book = parsed(market).book
      const side = o.side === "buy" ? "ask" : "bid"
      const v = venueOf(o.venue)
      while (o.filled.lt(o.qty)) {
        const best = side === "ask" ? book.bestAsk() : book.bestBid()
        if (best === undefined) break
        const price = dec(best.price)
        if (o.limit !== undefined && (o.side === "buy" ? price.gt(o.limit) : price.lt(o.limit))) break
        const available = dec(best.qty)
        let fill = Dec.min(available, o.qty.minus(o.filled))
        if (o.reduceOnly) {
          fill = Dec.min(fill, reducible(o))
          if (fill.lte(0)) return "reduce_only"
        }
        if (o.side === "buy" && o.type === "market") {
          const affordable = affordableAt(o, v, price, liquidity)
          if (affordable.lt(fill)) fill = affordable
          if (fill.lte(0)) return "balance"
        }
        const left = available.minus(fill)
        // the level keeps the venue's price string; what is left of it stays, none removes it
        book.set(side, best.price, left.lte(0) ? "0" : toDecimal(left))
        o.filled = o.filled.plus(fill)
        o.notional = o.notional.plus(price.times(fill))
        o.status = o.filled.eq(o.qty) ? "filled" : "partially_filled"
        settle(o, price, fill, liquidity)
        counters.fills++
        tally(o.consumerId).fills++
        if (o.status === "filled") counters.filled++
        report(o, traceId, { lastFillPrice: best.price as Decimal, lastFillQty: toDecimal(fill) })
      }
      return undefined
    }

    /** The text of a reduce-only order canceled because the position it reduced is gone. */
    const reducedAway = (o: OrderState): string =>
      `reduce-only: the position on ${o.venue} is closed (${toDecimal(o.filled)} of ${o.quantity} filled)`

    const matchResting = (venue: string, symbol: string, traceId: string): void => {
      const queue = resting.get(venue, symbol)
      const view = views.get(venue, symbol)
      if (queue === undefined || view === undefined || view.stale) return
      for (const o of queue) {
        if (match(o, view, traceId, "maker") === "reduce_only") cancelWith(o, reducedAway(o), traceId)
      }
      const stillOpen = queue.filter((o) => !terminal(o.status))
      if (stillOpen.length === 0) resting.delete(venue, symbol)
      else resting.set(venue, symbol, stillOpen)
    }

    /** The order is rejected: one `rejected` report with the text, and the typed rejection (kept for resubmissions). */
    const reject = (o: OrderState, rejection: OrderRejection, traceId: string): OrderRejection => {
      o.status = "rejected"
      o.reason = rejection._tag === "VenueRejected" ? rejection.text : rejection.message
      o.rejection = rejection
      counters.rejected++
      tally(o.consumerId).rejected++
      report(o, traceId)
      return rejection
    }

    /** The order is canceled by the venue (`reason` says why), keeping what filled. */
    const cancelWith = (o: OrderState, reason: string, traceId: string): void => {
      o.status = "canceled"
      o.reason = reason
      counters.canceled++
      dequeueResting(o)
      report(o, traceId)
    }

    const venueRejected = (o: OrderState, code: string, text: string): VenueRejected =>
      new VenueRejected({
        venue: o.venue,
        clientOrderId: o.clientOrderId,
        symbol: o.symbol,
        code,
        text,
        orderId: o.orderId
      })

    /** Why a reduce-only order (side, quantity) would not reduce the consumer's position; undefined if it does. */
    const reduceOnlyProblem = (o: OrderState, leaves: Dec): ReduceOnlyWouldIncrease | undefined => {
      const pos = consumerTable(o.consumerId).get(o.venue, o.symbol)?.qty ?? ZERO
      const reduces = o.side === "buy" ? pos.isNegative() && leaves.lte(pos.neg()) : pos.isPositive() && leaves.lte(pos)
      return reduces ? undefined : new ReduceOnlyWouldIncrease({
        clientOrderId: o.clientOrderId,
        symbol: o.symbol,
        venue: o.venue,
        side: o.side,
        quantity: toDecimal(leaves),
        position: toDecimal(pos)
      })
    }

    /** The best opposite price a post-only order at `limit` would take; undefined if it would rest. */
    const wouldTake = (side: Side, limit: Dec, view: MarketView): string | undefined => {
      const book = parsed(view).book
      const best = side === "buy" ? book.bestAsk() : book.bestBid()
      if (best === undefined) return undefined
      const p = dec(best.price)
      return (side === "buy" ? p.lte(limit) : p.gte(limit)) ? best.price : undefined
    }

    /** The quantity a limit order could take at once (the levels that cross its price). */
    const crossingQty = (o: OrderState, view: MarketView): Dec => {
      const book = parsed(view).book
      let total = ZERO
      for (const level of book.levels(o.side === "buy" ? "ask" : "bid")) {
        const p = dec(level.price)
        if (o.limit !== undefined && (o.side === "buy" ? p.gt(o.limit) : p.lt(o.limit))) break
        total = total.plus(level.qty)
        if (total.gte(o.qty)) break
      }
      return total
    }

    // -- commands (synchronous critical sections) ---------------------------

    const submitSync = (cmd: SubmitOrder): OrderView | OrderRejection | InFlight => {
      const existing = orders.get(cmd.clientOrderId)
      if (existing !== undefined) {
        if (existing.consumerId !== cmd.consumerId) {
          counters.conflicts++
          // the other consumer's order is not described: only that the id is taken
          return new DuplicateClientOrderId({
            clientOrderId: cmd.clientOrderId,
            conflict: "other_consumer",
            fields: ["consumerId"]
          })
        }
        const differ = differingTerms(existing.terms, cmd)
        if (differ.length > 0) {
          counters.conflicts++
          return new DuplicateClientOrderId({
            clientOrderId: cmd.clientOrderId,
            conflict: "other_terms",
            fields: differ,
            orderId: existing.orderId
          })
        }
        counters.duplicates++
        return existing.rejection ?? viewOf(existing)
      }
      const ts = nowMicros()
      const carriers = carriersOf(cmd.symbol)
      const venue = cmd.venue ?? (carriers.length === 1 ? carriers[0]! : PAPER_PROVIDER)
      const limit = cmd.orderType === "limit" && cmd.price !== undefined ? dec(cmd.price) : undefined
      const tif = timeInForceOf(cmd)
      const o: OrderState = {
        orderId: `${prefix}${++nextOrder}`,
        clientOrderId: cmd.clientOrderId,
        consumerId: cmd.consumerId,
        symbol: cmd.symbol,
        venue,
        side: cmd.side,
        type: cmd.orderType,
        timeInForce: tif,
        postOnly: cmd.postOnly ?? false,
        reduceOnly: cmd.reduceOnly ?? false,
        terms: {
          symbol: cmd.symbol,
          side: cmd.side,
          type: cmd.orderType,
          qty: dec(cmd.quantity),
          limit,
          venue,
          timeInForce: tif,
          postOnly: cmd.postOnly ?? false,
          reduceOnly: cmd.reduceOnly ?? false
        },
        price: cmd.orderType === "limit" ? cmd.price : undefined,
        limit,
        quantity: cmd.quantity,
        qty: dec(cmd.quantity),
        filled: ZERO,
        notional: ZERO,
        status: "new",
        reportSeq: 0,
        reason: undefined,
        rejection: undefined,
        reserved: ZERO,
        reservedAsset: "",
        arrived: false,
        submittedTs: ts,
        updatedTs: ts
      }
      orders.set(o.clientOrderId, o)
      addOpen(o)
      tally(o.consumerId).orders++
      const trace = cmd.commandId
      if (tradable !== undefined && !tradable.has(o.symbol)) {
        return reject(o, new UnknownSymbol({ symbol: o.symbol, venue: PAPER_PROVIDER }), trace)
      }
      if (cmd.venue !== undefined && !carriers.includes(cmd.venue)) {
        return reject(o, new UnknownVenue({ venue: cmd.venue, symbol: o.symbol }), trace)
      }
      if (cmd.venue === undefined && carriers.length > 1) {
        return reject(o, new VenueRequired({ clientOrderId: o.clientOrderId, symbol: o.symbol, venues: carriers }), trace)
      }
      const view = views.get(o.venue, o.symbol)
      if (view === undefined) return reject(o, venueRejected(o, "no_market_data", `no market data for ${o.symbol}`), trace)
      if (assetsOfSymbol(o.symbol) === undefined) {
        return reject(o, venueRejected(o, "unknown_assets", `the base and quote assets of ${o.symbol} are unknown`), trace)
      }
      const v = venueOf(o.venue)
      const broken = checkRules(v.rules.get(o.symbol), { ...cmd, price: o.price }, midOf(view))
      if (broken !== undefined) return reject(o, broken, trace)
      if (v.latencyMs > 0) return { inFlight: o, delay: v.latencyMs }
      return arrive(o, trace)
    }

    /** The order reaches its venue: checked against the account and the book as they are now, then matched. */
    const arrive = (o: OrderState, trace: string): OrderView | OrderRejection => {
      o.arrived = true
      if (terminal(o.status)) return viewOf(o) // canceled on its way
      const view = views.get(o.venue, o.symbol)
      if (view === undefined) return reject(o, venueRejected(o, "no_market_data", `no market data for ${o.symbol}`), trace)
      if (o.type === "market" && view.stale) {
        return reject(o, venueRejected(o, "stale_book", `the book of ${o.symbol} is stale`), trace)
      }
      if (o.reduceOnly) {
        const problem = reduceOnlyProblem(o, o.qty)
        if (problem !== undefined) return reject(o, problem, trace)
      }
      if (o.postOnly && o.limit !== undefined && !view.stale) {
        const taken = wouldTake(o.side, o.limit, view)
        if (taken !== undefined) {
          return reject(
            o,
            new PostOnlyWouldTake({
              clientOrderId: o.clientOrderId,
              symbol: o.symbol,
              venue: o.venue,
              side: o.side,
              price: o.price!,
              bestOpposite: taken
            }),
            trace
          )
        }
      }
      const v = venueOf(o.venue)
      const assets = assetsOfSymbol(o.symbol)!
      const asset = o.side === "buy" ? assets.quote : assets.base
      // a market buy reserves nothing: it must afford some of the best ask (its whole quantity there is what it asks for)
      const bestAsk = o.side === "buy" && o.type === "market" ? parsed(view).book.bestAsk() : undefined
      const need = bestAsk === undefined
        ? reservationOf(o, o.qty, v)
        : dec(bestAsk.price).times(o.qty).times(v.account.fees.taker.plus(1))
      const refused = o.side === "buy" && o.type === "market"
        ? bestAsk !== undefined && affordableAt(o, v, dec(bestAsk.price), "taker").lte(0)
        : !v.account.reserve(asset, need)
      if (refused) {
        return reject(
          o,
          new InsufficientBalance({
            clientOrderId: o.clientOrderId,
            asset,
            required: toDecimal(need),
            available: toDecimal(v.account.available(asset))
          }),
          trace
        )
      }
      o.reserved = o.side === "buy" && o.type === "market" ? ZERO : need
      o.reservedAsset = asset
      report(o, trace)
      if (o.timeInForce === "FOK" && (view.stale || crossingQty(o, view).lt(o.qty))) {
        cancelWith(o, `fill or kill: ${toDecimal(view.stale ? ZERO : crossingQty(o, view))} of ${o.quantity} available`, trace)
        return viewOf(o)
      }
      const stop = view.stale ? undefined : match(o, view, trace, "taker")
      if (stop === "reduce_only") cancelWith(o, reducedAway(o), trace)
      else if (!terminal(o.status) && o.timeInForce !== "GTC") {
        cancelWith(
          o,
          stop === "balance"
            ? `insufficient ${asset}: ${toDecimal(o.filled)} of ${o.quantity} filled`
            : `insufficient liquidity: ${toDecimal(o.filled)} of ${o.quantity} filled`,
          trace
        )
      } else if (!terminal(o.status)) enqueueResting(o)
      return viewOf(o)
    }

    const findOpen = (
      cmd: { readonly clientOrderId: string; readonly consumerId: string }
    ): OrderState | OrderNotFound | OrderNotCancelable => {
      const o = orders.get(cmd.clientOrderId)
      if (o === undefined || o.consumerId !== cmd.consumerId) {
        return new OrderNotFound({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId })
      }
      if (terminal(o.status)) {
        return new OrderNotCancelable({
          clientOrderId: o.clientOrderId,
          consumerId: o.consumerId,
          orderId: o.orderId,
          status: o.status
        })
      }
      return o
    }

    const cancelSync = (cmd: CancelOrder): OrderView | OrderNotFound | OrderNotCancelable => {
      const o = findOpen(cmd)
      if ("_tag" in o) return o
      o.status = "canceled"
      counters.canceled++
      dequeueResting(o)
      report(o, cmd.commandId)
      return viewOf(o)
    }

    const amendSync = (cmd: AmendOrder): OrderView | OrderNotFound | OrderNotCancelable | OrderRejection => {
      const o = findOpen(cmd)
      if ("_tag" in o) return o
      const notAmendable = (text: string) =>
        new VenueRejected({
          venue: o.venue,
          clientOrderId: o.clientOrderId,
          symbol: o.symbol,
          code: "not_amendable",
          text,
          orderId: o.orderId
        })
      if (o.type !== "limit" || o.limit === undefined) return notAmendable("only a resting limit order can be amended")
      if (!o.arrived) return notAmendable("the order has not reached the venue yet")
      const qty = cmd.quantity === undefined ? o.qty : dec(cmd.quantity)
      const limit = cmd.price === undefined ? o.limit : dec(cmd.price)
      const quantity = cmd.quantity ?? o.quantity
      const price = cmd.price ?? o.price!
      if (qty.lte(o.filled)) {
        return new InvalidQuantity({
          clientOrderId: o.clientOrderId,
          symbol: o.symbol,
          quantity,
          rule: `an amended quantity must stay above the filled quantity ${toDecimal(o.filled)}`
        })
      }
      const v = venueOf(o.venue)
      const view = views.get(o.venue, o.symbol)
      const broken = checkRules(v.rules.get(o.symbol), { clientOrderId: o.clientOrderId, symbol: o.symbol, quantity, price }, undefined)
      if (broken !== undefined) return broken
      if (o.postOnly && view !== undefined && !view.stale) {
        const taken = wouldTake(o.side, limit, view)
        if (taken !== undefined) {
          return new PostOnlyWouldTake({
            clientOrderId: o.clientOrderId,
            symbol: o.symbol,
            venue: o.venue,
            side: o.side,
            price,
            bestOpposite: taken
          })
        }
      }
      if (o.reduceOnly && qty.gt(o.qty)) {
        const problem = reduceOnlyProblem(o, qty.minus(o.filled))
        if (problem !== undefined) return problem
      }
      // the reservation follows the new terms, or the amend is refused and the old one stays
      const need = reservationOf({ side: o.side, type: o.type, limit }, qty.minus(o.filled), v)
      v.account.release(o.reservedAsset, o.reserved)
      if (!v.account.reserve(o.reservedAsset, need)) {
        const available = v.account.available(o.reservedAsset)
        v.account.reserve(o.reservedAsset, o.reserved)
        return new InsufficientBalance({
          clientOrderId: o.clientOrderId,
          asset: o.reservedAsset,
          required: toDecimal(need),
          available: toDecimal(available)
        })
      }
      const losesPriority = !limit.eq(o.limit) || qty.gt(o.qty)
      const before = `price ${o.price} quantity ${o.quantity}`
      o.reserved = need
      o.limit = limit
      o.price = price
      o.qty = qty
      o.quantity = quantity
      counters.amended++
      report(o, cmd.commandId, { reason: `amended from ${before}` })
      if (losesPriority) {
        dequeueResting(o)
        enqueueResting(o)
      }
      if (view !== undefined && !view.stale) {
        if (match(o, view, cmd.commandId, "taker") === "reduce_only") cancelWith(o, reducedAway(o), cmd.commandId)
        if (terminal(o.status)) dequeueResting(o)
      }
      return viewOf(o)
    }

    const cancelAllSync = (scope: CancelScope, reason: string): Array<OrderView> => {
      const out: Array<OrderView> = []
      for (const o of [...open]) {
        if (scope.consumerId !== undefined && o.consumerId !== scope.consumerId) continue
        if (scope.venue !== undefined && o.venue !== scope.venue) continue
        cancelWith(o, reason, `cancel-all-${o.clientOrderId}`)
        out.push(viewOf(o))
      }
      return out
    }

    /** Updates the (venue, symbol) view from a market event; true when the view changed. */
    const applyMarket = (event: AnyEvent): boolean => {
      if (event._pool !== "Event" || event.payload === undefined) return false
      const symbol = event.symbol
      const venue = event.provider
      switch (event.payload._tag) {
        case "book_snapshot": {
          const book: BookSnapshot = event.payload
          views.set(venue, symbol, {
            source: "book",
            book: new OrderBook(symbol),
            stale: book.state === "stale",
            unparsed: { snapshot: book, deltas: [] },
            ticker: undefined
          })
          return true
        }
        case "book_delta": {
          const delta: BookDelta = event.payload
          const current = views.get(venue, symbol)
          if (current === undefined || current.source !== "book") return false
          const unparsed = current.unparsed ??= { snapshot: undefined, deltas: [] }
          unparsed.deltas.push(delta)
          if (unparsed.deltas.length >= MAX_UNPARSED_DELTAS) parsed(current)
          return true
        }
        case "ticker": {
          const t: Ticker = event.payload
          const current = views.get(venue, symbol)
          if (current !== undefined && current.source === "book") return false
          if (current !== undefined) current.ticker = t
          else views.set(venue, symbol, { source: "ticker", book: new OrderBook(symbol), stale: false, unparsed: undefined, ticker: t })
          return true
        }
        default:
          return false
      }
    }

    // -- the port -------------------------------------------------------------

    /** Waits the venue's latency (on the Effect Clock), then runs `f` (a critical section) and hands its reports over. */
    const afterLatency = <A>(venue: string, f: () => A): Effect.Effect<A> => {
      const delay = venueStates.get(venue)?.latencyMs ?? 0
      const run = Effect.sync(f).pipe(Effect.tap(() => flush))
      return delay > 0 ? Effect.zipRight(Effect.sleep(Duration.millis(delay)), run) : run
    }

    const submit = Effect.fn("ExecutionVenue.submit")(function*(order: SubmitOrder) {
      const first = submitSync(order)
      yield* flush
      let result: OrderView | OrderRejection
      if ("inFlight" in first) {
        const o = first.inFlight
        // a sender interrupted while its order travels takes the order back: it never reaches the venue, and
        // no open order is left behind without a fiber to deliver it
        yield* Effect.sleep(Duration.millis(first.delay)).pipe(
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              if (!terminal(o.status)) cancelWith(o, "canceled on its way to the venue: the sender was interrupted", order.commandId)
              return flush
            })
          )
        )
        result = arrive(o, order.commandId)
        yield* flush
      } else result = first
      if (isRejection(result)) return yield* Effect.fail(result)
      return result
    })

    const cancel = Effect.fn("ExecutionVenue.cancel")(function*(cmd: CancelOrder) {
      const o = orders.get(cmd.clientOrderId)
      const result = yield* afterLatency(o?.venue ?? "", () => cancelSync(cmd))
      if (result instanceof OrderNotFound || result instanceof OrderNotCancelable) return yield* result
      return result
    })

    const amend = Effect.fn("ExecutionVenue.amend")(function*(cmd: AmendOrder) {
      const o = orders.get(cmd.clientOrderId)
      const result = yield* afterLatency(o?.venue ?? "", () => amendSync(cmd))
      if (isRejection(result)) return yield* Effect.fail(result)
      if (result instanceof OrderNotFound || result instanceof OrderNotCancelable) return yield* result
      return result
    })

    const cancelAll = Effect.fn("ExecutionVenue.cancelAll")(function*(scope: CancelScope, reason: string) {
      const canceled = cancelAllSync(scope, reason)
      yield* flush
      return canceled
    })

    const query = Effect.fn("ExecutionVenue.query")(function*(cmd: QueryOrder) {
      const o = orders.get(cmd.clientOrderId)
      if (o === undefined || o.consumerId !== cmd.consumerId) {
        return yield* new OrderNotFound({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId })
      }
      return viewOf(o)
    })

    const unsafeOnMarketData = (event: AnyEvent): Effect.Effect<void> => {
      if (applyMarket(event)) {
        counters.marketUpdates++
        matchResting(event.provider, event.symbol, event.traceId)
      }
      return outbox.length > 0 ? flush : Effect.void
    }
    const onMarketData = (event: AnyEvent): Effect.Effect<void> => Effect.suspend(() => unsafeOnMarketData(event))

    const markPrice = (venue: string, symbol: string): Decimal | undefined => {
      const mid = midOf(views.get(venue, symbol))
      return mid === undefined ? undefined : toDecimal(mid)
    }

    const positionsOf = (table: ByVenue<PositionBook>): Array<Position> =>
      [...table.values()].map((p) => p.view(midOf(views.get(p.venue, p.symbol))))

    const portfolio = (): PortfolioSnapshot => {
      const consumers = new Set([...consumerPositions.keys(), ...openBy.keys()])
      return {
        balances: [...venueStates.values()].flatMap((v) => v.account.balances()),
        positions: positionsOf(positions),
        byConsumer: [...consumers].map((c) =>
          consumerPortfolio(c, positionsOf(consumerPositions.get(c) ?? new ByVenue()), openBy.get(c) ?? 0)
        )
      }
    }

    const exposure = (consumerId: string, symbol: string, named: string | undefined): ConsumerExposure => {
      let venue = named
      if (venue === undefined) {
        const quoting = carriersOf(symbol).filter((v) => midOf(views.get(v, symbol)) !== undefined)
        if (quoting.length === 1) venue = quoting[0]
      }
      const table = consumerPositions.get(consumerId)
      let position = ZERO
      if (table !== undefined) {
        if (venue !== undefined) position = table.get(venue, symbol)?.qty ?? ZERO
        else for (const m of table.venues.values()) position = position.plus(m.get(symbol)?.qty ?? ZERO)
      }
      return { venue, position: toDecimal(position), openOrders: openBy.get(consumerId) ?? 0 }
    }

    const stats = (): ExecutionVenueStats => {
      let restingCount = 0
      const restingBy = new Map<string, number>()
      for (const q of resting.values()) {
        restingCount += q.length
        for (const o of q) if (!terminal(o.status)) restingBy.set(o.consumerId, (restingBy.get(o.consumerId) ?? 0) + 1)
      }
      return {
        byConsumer: [...perConsumer].map(([consumerId, t]) => ({ consumerId, ...t, resting: restingBy.get(consumerId) ?? 0 })),
        orders: orders.size + forgotten,
        retained: orders.size,
        resting: restingCount,
        ...counters,
        reportsPending: outbox.length,
        symbols: views.size,
        restored,
        storeFailures
      }
    }

    const followRoutingVersion = (current: () => number): void => {
      routingVersion = current
    }

    return {
      submit,
      amend,
      cancel,
      cancelAll,
      query,
      onMarketData,
      unsafeOnMarketData,
      followRoutingVersion,
      stats,
      portfolio,
      exposure,
      markPrice
    } satisfies ExecutionVenueShape
  })

/** The paper venue with the given options. */
export const layerWith = (options: PaperVenueOptions = {}): Layer.Layer<ExecutionVenue, never, Pool | ExecReportSink> =>
  Layer.effect(ExecutionVenue, makePaperVenue(options))

/** The paper venue keeping its open orders in the `PaperStore` across restarts. */
export const layerStored = (
  options: PaperVenueOptions = {}
): Layer.Layer<ExecutionVenue, never, Pool | ExecReportSink | PaperStore> =>
  Layer.effect(ExecutionVenue, Effect.flatMap(PaperStore, (store) => makePaperVenue({ ...options, store })))

/** The paper venue: the embedded default. */
export const layer: Layer.Layer<ExecutionVenue, never, Pool | ExecReportSink> = layerWith()
