/**
 * The paper venue: the execution venue's embedded default (the port is
 * `src/ExecutionVenue.ts`). It matches orders against its own view of each
 * symbol's book, an `OrderBook` (`src/OrderBook.ts`) fed by market data.
 *
 * - Market view. The venue keeps one view of each symbol's book, fed by
 *   `onMarketData` (it reads the event and keeps nothing of it: the caller
 *   still owns it and recycles it):
 *   - a `book_snapshot` replaces the view (the view then follows that
 *     provider); a stale snapshot marks the view stale;
 *   - a `book_delta` from the view's provider updates it (absolute quantities,
 *     "0" removes a level); deltas from other providers are ignored;
 *   - a `ticker` sets a one-level view (best bid and ask) for a symbol whose
 *     view does not come from a book;
 *   - merged events and execution reports are ignored.
 *   Fills consume the liquidity of the view, until market data replaces it.
 * - Submission. Orders are idempotent by `clientOrderId`: a resubmission with
 *   the same terms returns the existing order (or its rejection again) and
 *   emits nothing; with other terms (symbol, side, type, quantity, price) it is
 *   a `DuplicateClientOrderId` naming the terms that differ. A `clientOrderId`
 *   in use by another consumer is a `DuplicateClientOrderId` too, and neither
 *   creates an order. An order on a symbol the venue does not trade (when
 *   `symbols` is configured: `UnknownSymbol`), or with no market data yet
 *   (`VenueRejected`, code "no_market_data"), is `rejected` (one report, and
 *   the typed rejection); so is a market order against a stale book
 *   (`VenueRejected`, code "stale_book"). Otherwise the order is acknowledged
 *   with a `new` report.
 * - Market orders walk the opposite side of the book, best level first: one
 *   `partially_filled` report per level consumed, the last one `filled`. When
 *   the book runs out first, the remainder is canceled (immediate-or-cancel):
 *   a final `canceled` report with the reason, keeping what was filled.
 * - Limit orders fill at once against every level that crosses their price,
 *   then rest; a resting order is checked on each market data update of its
 *   symbol (oldest first) and fills, level by level, while the market crosses
 *   it. Fills happen at the book's price (a buy limit at 101 against an ask of
 *   100 fills at 100). A stale view fills nothing until it is consistent again.
 * - Cancel: a `new` or `partially_filled` order is canceled (a `canceled`
 *   report); a filled, canceled or rejected one is `OrderNotCancelable`; an
 *   order of another consumer, or none, is `OrderNotFound`.
 * - `avgPrice` is the fill-quantity-weighted mean of the fill prices, rounded
 *   half-even to 18 decimal places; every other figure is exact.
 *
 * State changes are synchronous critical sections; the reports they produce go
 * into one FIFO outbox that a single fiber at a time (a one-permit semaphore)
 * hands to the sink. A method returns once its own reports have been handed
 * over, so concurrent calls are safe and reports stay in order.
 */
import { Effect, Layer } from "effect"
import type { CancelOrder, QueryOrder, SubmitOrder } from "../../schema/Control.js"
import type { BookDelta, BookSnapshot, Decimal, Level, OrderStatus, OrderType, Side, Ticker } from "../../schema/Event.js"
import { ExecReportPayload } from "../../schema/Event.js"
import {
  DuplicateClientOrderId,
  OrderNotCancelable,
  OrderNotFound,
  type OrderRejection,
  UnknownSymbol,
  VenueRejected
} from "../../schema/Rejection.js"
import type { AnyEvent } from "../Event.js"
import { ExecReportSink, ExecutionVenue, type ExecutionVenueShape, type ExecutionVenueStats, type OrderView } from "../ExecutionVenue.js"
import { dec, Dec, toDecimal, ZERO } from "../internal/decimal.js"
import { type BookLevel, OrderBook } from "../OrderBook.js"
import { Pool } from "../Pool.js"
import { PaperStore, type PaperStoreShape, StoredOrder } from "./PaperStore.js"

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
}

export const DEFAULT_RETAIN_CLOSED = 10_000

/** The `provider` of every report the paper venue emits. */
export const PAPER_PROVIDER = "paper"

// ---------------------------------------------------------------------------
// Paper venue
// ---------------------------------------------------------------------------

interface MarketView {
  source: "book" | "ticker"
  provider: string
  /** The levels, current once `unparsed` is applied; fills take liquidity out of it. */
  readonly book: OrderBook
  stale: boolean
  /**
   * Market data not yet turned into levels: a snapshot (replacing the levels)
   * and the deltas after it. Parsing waits until an order needs the book, so
   * the market-data path (which runs before every dispatch) stays cheap.
   */
  unparsed: { snapshot: BookSnapshot | undefined; readonly deltas: Array<BookDelta> } | undefined
}

/** Order numbers reserved in the store at a time (see `PaperStore`). */
const ORDER_ID_BLOCK = 1_024

/** Deltas held unparsed before they are applied anyway, so that memory stays bounded. */
const MAX_UNPARSED_DELTAS = 256

/** Brings a view's levels up to date with the market data it holds unparsed. */
const parsed = (view: MarketView): MarketView => {
  const u = view.unparsed
  if (u === undefined) return view
  view.unparsed = undefined
  if (u.snapshot !== undefined) view.book.reset(levelsOf(u.snapshot.bids), levelsOf(u.snapshot.asks))
  for (const d of u.deltas) view.book.apply(levelsOf(d.bids), levelsOf(d.asks))
  return view
}

const levelsOf = (levels: ReadonlyArray<Level>): Array<BookLevel> => levels.map(([price, qty]) => ({ price, qty }))

interface OrderState {
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly side: Side
  readonly type: OrderType
  readonly price: Decimal | undefined
  readonly limit: Dec | undefined
  readonly quantity: Decimal
  readonly qty: Dec
  filled: Dec
  notional: Dec
  status: OrderStatus
  reportSeq: number
  reason: string | undefined
  /** Why it was rejected: answered again to a resubmission with the same terms. */
  rejection: OrderRejection | undefined
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

const AVG_PRICE_DP = 18

const terminal = (s: OrderStatus): s is "filled" | "canceled" | "rejected" =>
  s === "filled" || s === "canceled" || s === "rejected"

/** A venue answer is a rejection when it is tagged (an `OrderView` never is). */
const isRejection = (r: OrderView | OrderRejection): r is OrderRejection => "_tag" in r

/** The terms of `cmd` that differ from those of the order already under its clientOrderId. */
const differingTerms = (o: OrderState, cmd: SubmitOrder): Array<string> => {
  const differ: Array<string> = []
  if (o.symbol !== cmd.symbol) differ.push("symbol")
  if (o.side !== cmd.side) differ.push("side")
  if (o.type !== cmd.orderType) differ.push("orderType")
  if (!o.qty.eq(dec(cmd.quantity))) differ.push("quantity")
  const price = cmd.orderType === "limit" ? cmd.price : undefined
  if ((o.limit === undefined) !== (price === undefined) || (o.limit !== undefined && !o.limit.eq(dec(price!)))) {
    differ.push("price")
  }
  return differ
}

const viewOf = (o: OrderState): OrderView => {
  const base = {
    orderId: o.orderId,
    clientOrderId: o.clientOrderId,
    consumerId: o.consumerId,
    symbol: o.symbol,
    side: o.side,
    type: o.type,
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
    /** Client order ids of closed orders, oldest first (a Map keeps insertion order). */
    const closed = new Map<string, true>()
    const retainClosed = Math.max(0, options.retainClosed ?? DEFAULT_RETAIN_CLOSED)
    let forgotten = 0
    const resting = new Map<string, Array<OrderState>>()
    const views = new Map<string, MarketView>()
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
      reportsEmitted: 0,
      marketUpdates: 0
    }
    /** Orders, fills and rejections per consumer (one entry per consumer that ever ordered). */
    const perConsumer = new Map<string, { orders: number; fills: number; rejected: number }>()
    const tally = (consumerId: string) => {
      let t = perConsumer.get(consumerId)
      if (t === undefined) perConsumer.set(consumerId, t = { orders: 0, fills: 0, rejected: 0 })
      return t
    }

    // -- reports ------------------------------------------------------------

    const report = (
      o: OrderState,
      traceId: string,
      extra: { readonly lastFillPrice?: Decimal; readonly lastFillQty?: Decimal } = {}
    ): void => {
      const ts = nowMicros()
      o.reportSeq++
      o.updatedTs = ts
      if (store !== undefined) dirty.add(o)
      if (terminal(o.status) && !closed.has(o.clientOrderId)) {
        closed.set(o.clientOrderId, true)
        if (closed.size > retainClosed) {
          const oldest = closed.keys().next().value!
          closed.delete(oldest)
          orders.delete(oldest)
          forgotten++
        }
      }
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
        ...extra,
        ...(o.reason === undefined ? {} : { reason: o.reason })
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
        side: o.side,
        type: o.type,
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
        const o: OrderState = {
          orderId: s.orderId,
          clientOrderId: s.clientOrderId,
          consumerId: s.consumerId,
          symbol: s.symbol,
          side: s.side,
          type: s.type,
          price: s.price as Decimal | undefined,
          limit: s.type === "limit" && s.price !== undefined ? dec(s.price) : undefined,
          quantity: s.quantity as Decimal,
          qty: dec(s.quantity),
          filled: dec(s.filled),
          notional: dec(s.notional),
          status: s.status,
          reportSeq: s.reportSeq,
          reason: undefined,
          rejection: undefined,
          submittedTs: s.submittedTs,
          updatedTs: s.updatedTs
        }
        orders.set(o.clientOrderId, o)
        tally(o.consumerId).orders++
        kept.add(o.clientOrderId)
        const queue = resting.get(o.symbol)
        if (queue === undefined) resting.set(o.symbol, [o])
        else queue.push(o)
        restored++
      }
      if (restored > 0) {
        yield* Effect.logInfo("paper venue restored its open orders").pipe(
          Effect.annotateLogs({ store: store.name, orders: restored })
        )
      }
    }

    // -- matching -----------------------------------------------------------

    /** Fills `o` against the opposite side while levels cross (`limit` undefined: any level). */
    const match = (o: OrderState, market: MarketView, traceId: string): void => {
      const book = parsed(market).book
      const side = o.side === "buy" ? "ask" : "bid"
      while (o.filled.lt(o.qty)) {
        const best = side === "ask" ? book.bestAsk() : book.bestBid()
        if (best === undefined) break
        const price = dec(best.price)
        if (o.limit !== undefined && (o.side === "buy" ? price.gt(o.limit) : price.lt(o.limit))) break
        const available = dec(best.qty)
        const fill = Dec.min(available, o.qty.minus(o.filled))
        const left = available.minus(fill)
        // the level keeps the venue's price string; what is left of it stays, none removes it
        book.set(side, best.price, left.lte(0) ? "0" : toDecimal(left))
        o.filled = o.filled.plus(fill)
        o.notional = o.notional.plus(price.times(fill))
        o.status = o.filled.eq(o.qty) ? "filled" : "partially_filled"
        counters.fills++
        tally(o.consumerId).fills++
        if (o.status === "filled") counters.filled++
        report(o, traceId, { lastFillPrice: best.price as Decimal, lastFillQty: toDecimal(fill) })
      }
    }

    const matchResting = (symbol: string, traceId: string): void => {
      const queue = resting.get(symbol)
      const view = views.get(symbol)
      if (queue === undefined || view === undefined || view.stale) return
      for (const o of queue) match(o, view, traceId)
      const open = queue.filter((o) => !terminal(o.status))
      if (open.length === 0) resting.delete(symbol)
      else resting.set(symbol, open)
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

    const venueRejected = (o: OrderState, code: string, text: string): VenueRejected =>
      new VenueRejected({ venue: PAPER_PROVIDER, clientOrderId: o.clientOrderId, symbol: o.symbol, code, text, orderId: o.orderId })

    // -- commands (synchronous critical sections) ---------------------------

    const submitSync = (cmd: SubmitOrder): OrderView | OrderRejection => {
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
        const differ = differingTerms(existing, cmd)
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
      const o: OrderState = {
        orderId: `${prefix}${++nextOrder}`,
        clientOrderId: cmd.clientOrderId,
        consumerId: cmd.consumerId,
        symbol: cmd.symbol,
        side: cmd.side,
        type: cmd.orderType,
        price: cmd.orderType === "limit" ? cmd.price : undefined,
        limit: cmd.orderType === "limit" && cmd.price !== undefined ? dec(cmd.price) : undefined,
        quantity: cmd.quantity,
        qty: dec(cmd.quantity),
        filled: ZERO,
        notional: ZERO,
        status: "new",
        reportSeq: 0,
        reason: undefined,
        rejection: undefined,
        submittedTs: ts,
        updatedTs: ts
      }
      orders.set(o.clientOrderId, o)
      tally(o.consumerId).orders++
      const trace = cmd.commandId
      if (tradable !== undefined && !tradable.has(o.symbol)) {
        return reject(o, new UnknownSymbol({ symbol: o.symbol, venue: PAPER_PROVIDER }), trace)
      }
      const view = views.get(o.symbol)
      if (view === undefined) return reject(o, venueRejected(o, "no_market_data", `no market data for ${o.symbol}`), trace)
      if (o.type === "market" && view.stale) {
        return reject(o, venueRejected(o, "stale_book", `the book of ${o.symbol} is stale`), trace)
      }
      report(o, trace)
      if (!view.stale) match(o, view, trace)
      if (o.type === "market" && o.status !== "filled") {
        o.status = "canceled"
        o.reason = `insufficient liquidity: ${toDecimal(o.filled)} of ${o.quantity} filled`
        counters.canceled++
        report(o, trace)
      } else if (o.type === "limit" && !terminal(o.status)) {
        const queue = resting.get(o.symbol)
        if (queue === undefined) resting.set(o.symbol, [o])
        else queue.push(o)
      }
      return viewOf(o)
    }

    const cancelSync = (cmd: CancelOrder): OrderView | OrderNotFound | OrderNotCancelable => {
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
      o.status = "canceled"
      counters.canceled++
      const queue = resting.get(o.symbol)
      if (queue !== undefined) {
        const open = queue.filter((x) => x !== o)
        if (open.length === 0) resting.delete(o.symbol)
        else resting.set(o.symbol, open)
      }
      report(o, cmd.commandId)
      return viewOf(o)
    }

    /** Updates the symbol's view from a market event; true when the view changed. */
    const applyMarket = (event: AnyEvent): boolean => {
      if (event._pool !== "Event" || event.payload === undefined) return false
      const symbol = event.symbol
      const current = views.get(symbol)
      switch (event.payload._tag) {
        case "book_snapshot": {
          const book: BookSnapshot = event.payload
          views.set(symbol, {
            source: "book",
            provider: event.provider,
            book: new OrderBook(symbol),
            stale: book.state === "stale",
            unparsed: { snapshot: book, deltas: [] }
          })
          return true
        }
        case "book_delta": {
          const delta: BookDelta = event.payload
          if (current === undefined || current.source !== "book" || current.provider !== event.provider) return false
          const unparsed = current.unparsed ??= { snapshot: undefined, deltas: [] }
          unparsed.deltas.push(delta)
          if (unparsed.deltas.length >= MAX_UNPARSED_DELTAS) parsed(current)
          return true
        }
        case "ticker": {
          const t: Ticker = event.payload
          if (current !== undefined && current.source === "book") return false
          const quote = new OrderBook(symbol)
          quote.reset([{ price: t.bidPrice, qty: t.bidQty }], [{ price: t.askPrice, qty: t.askQty }])
          views.set(symbol, {
            source: "ticker",
            provider: event.provider,
            book: quote,
            stale: false,
            unparsed: undefined
          })
          return true
        }
        default:
          return false
      }
    }

    // -- the port -------------------------------------------------------------

    const submit = Effect.fn("ExecutionVenue.submit")(function*(order: SubmitOrder) {
      const result = submitSync(order)
      yield* flush
      if (isRejection(result)) return yield* Effect.fail(result)
      return result
    })

    const cancel = Effect.fn("ExecutionVenue.cancel")(function*(cmd: CancelOrder) {
      const result = cancelSync(cmd)
      yield* flush
      if (result instanceof OrderNotFound || result instanceof OrderNotCancelable) return yield* result
      return result
    })

    const query = Effect.fn("ExecutionVenue.query")(function*(cmd: QueryOrder) {
      const o = orders.get(cmd.clientOrderId)
      if (o === undefined || o.consumerId !== cmd.consumerId) {
        return yield* new OrderNotFound({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId })
      }
      return viewOf(o)
    })

    const onMarketData = (event: AnyEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (applyMarket(event)) {
          counters.marketUpdates++
          matchResting(event.symbol, event.traceId)
        }
        return outbox.length > 0 ? flush : Effect.void
      })

    const stats = (): ExecutionVenueStats => {
      let open = 0
      const restingBy = new Map<string, number>()
      for (const q of resting.values()) {
        open += q.length
        for (const o of q) if (!terminal(o.status)) restingBy.set(o.consumerId, (restingBy.get(o.consumerId) ?? 0) + 1)
      }
      return {
        byConsumer: [...perConsumer].map(([consumerId, t]) => ({ consumerId, ...t, resting: restingBy.get(consumerId) ?? 0 })),
        orders: orders.size + forgotten,
        retained: orders.size,
        resting: open,
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

    return { submit, cancel, query, onMarketData, followRoutingVersion, stats } satisfies ExecutionVenueShape
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
