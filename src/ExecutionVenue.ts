/**
 * The execution venue port, and the paper venue that is its embedded default.
 *
 * Orders come in as `SubmitOrder` / `CancelOrder` / `QueryOrder` commands;
 * execution reports go out, one pooled `ExecReport` at a time, through the
 * `ExecReportSink` port (ownership passes to the sink). Reports are critical:
 * none is ever dropped, and the reports of one order reach the sink in order
 * (`reportSeq` 1, 2, 3, ...).
 *
 * ## The paper venue
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
 * - Submission. Orders are idempotent by `clientOrderId`: a resubmission
 *   returns the existing order (or its rejection again) and emits nothing. A
 *   `clientOrderId` in use by another consumer is refused without creating an
 *   order. An order on a symbol the venue does not trade (when `symbols` is
 *   configured), or with no market data yet, is `rejected` (one report, and the
 *   `OrderRejected` error); so is a market order against a stale book.
 *   Otherwise the order is acknowledged with a `new` report.
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
 *   report); a filled, canceled or rejected one is `OrderNotCancelable`.
 * - `avgPrice` is the fill-quantity-weighted mean of the fill prices, rounded
 *   half-even to 18 decimal places; every other figure is exact.
 *
 * State changes are synchronous critical sections; the reports they produce go
 * into one FIFO outbox that a single fiber at a time (a one-permit semaphore)
 * hands to the sink. A method returns once its own reports have been handed
 * over, so concurrent calls are safe and reports stay in order.
 */
import { Context, Effect, Layer, Schema } from "effect"
import type { CancelOrder, QueryOrder, SubmitOrder } from "../schema/Control.js"
import type { BookDelta, BookSnapshot, Decimal, Level, OrderStatus, OrderType, Side, Ticker } from "../schema/Event.js"
import { ExecReportPayload } from "../schema/Event.js"
import type { AnyEvent, ExecReport } from "./Event.js"
import { dec, Dec, toDecimal, ZERO } from "./internal/decimal.js"
import { type PaperStoreShape, PaperStore, StoredOrder } from "./execution/PaperStore.js"
import { Pool } from "./Pool.js"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** The venue refused an order (also reported as a `rejected` ExecReport when the order was created). */
export class OrderRejected extends Schema.TaggedError<OrderRejected>()("OrderRejected", {
  clientOrderId: Schema.String,
  consumerId: Schema.String,
  symbol: Schema.String,
  orderId: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `order ${this.clientOrderId} of ${this.consumerId} on ${this.symbol} rejected: ${this.reason}`
  }
}

/** No order of this consumer has this `clientOrderId`. */
export class OrderNotFound extends Schema.TaggedError<OrderNotFound>()("OrderNotFound", {
  clientOrderId: Schema.String,
  consumerId: Schema.String
}) {
  override get message(): string {
    return `order ${this.clientOrderId} of ${this.consumerId} not found`
  }
}

/** The order is already filled, canceled or rejected. */
export class OrderNotCancelable extends Schema.TaggedError<OrderNotCancelable>()("OrderNotCancelable", {
  clientOrderId: Schema.String,
  consumerId: Schema.String,
  orderId: Schema.String,
  status: Schema.String
}) {
  override get message(): string {
    return `order ${this.clientOrderId} of ${this.consumerId} cannot be canceled: it is ${this.status}`
  }
}

// ---------------------------------------------------------------------------
// Port
// ---------------------------------------------------------------------------

/** An immutable snapshot of an order. */
export interface OrderView {
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly side: Side
  readonly type: OrderType
  readonly status: OrderStatus
  /** Limit price (limit orders only). */
  readonly price?: Decimal
  readonly quantity: Decimal
  readonly filledQty: Decimal
  readonly leavesQty: Decimal
  /** Mean fill price, once something filled. */
  readonly avgPrice?: Decimal
  /** Execution reports emitted for the order so far. */
  readonly reports: number
  /** Why it was rejected or canceled by the venue. */
  readonly reason?: string
  /** Epoch microseconds. */
  readonly submittedTs: number
  /** Epoch microseconds. */
  readonly updatedTs: number
}

export interface ExecutionVenueStats {
  readonly orders: number
  readonly resting: number
  readonly filled: number
  readonly canceled: number
  readonly rejected: number
  readonly fills: number
  /** Resubmissions answered with the existing order. */
  readonly duplicates: number
  /** Submissions refused because another consumer uses the clientOrderId. */
  readonly conflicts: number
  readonly reportsEmitted: number
  /** Reports produced but not yet handed to the sink. */
  readonly reportsPending: number
  /** Symbols with a market view. */
  readonly symbols: number
  /** Market data events that changed a view. */
  readonly marketUpdates: number
  /** Open orders restored from the store at start. */
  readonly restored: number
  /** Loads and saves of the store that failed (logged; the reports still went out). */
  readonly storeFailures: number
}

export interface ExecutionVenueShape {
  /** Idempotent by `clientOrderId`. */
  readonly submit: (order: SubmitOrder) => Effect.Effect<OrderView, OrderRejected>
  readonly cancel: (cmd: CancelOrder) => Effect.Effect<OrderView, OrderNotFound | OrderNotCancelable>
  readonly query: (cmd: QueryOrder) => Effect.Effect<OrderView, OrderNotFound>
  /** Feeds the venue's view of the book. Does not take ownership: the caller recycles the event. */
  readonly onMarketData: (event: AnyEvent) => Effect.Effect<void>
  /**
   * Where the current routing version is read: every report is stamped with
   * the version current when it was created (FR-014). The Orchestrator, which
   * owns the version, connects itself here; until then reports carry 0.
   */
  readonly followRoutingVersion: (current: () => number) => void
  readonly stats: () => ExecutionVenueStats
}

/** Where execution reports go. Ownership of each pooled report passes to the sink. */
export class ExecReportSink extends Context.Tag("meltica/ExecReportSink")<
  ExecReportSink,
  (report: ExecReport) => Effect.Effect<void>
>() {
  static readonly layer = (sink: (report: ExecReport) => Effect.Effect<void>): Layer.Layer<ExecReportSink> =>
    Layer.succeed(ExecReportSink, sink)
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
}

/** The `provider` of every report the paper venue emits. */
export const PAPER_PROVIDER = "paper"

// ---------------------------------------------------------------------------
// Paper venue
// ---------------------------------------------------------------------------

interface BookLevel {
  readonly price: Dec
  readonly priceStr: Decimal
  qty: Dec
}

interface MarketView {
  source: "book" | "ticker"
  provider: string
  /** Best first: bids descending, asks ascending. Current once `unparsed` is applied. */
  bids: Array<BookLevel>
  asks: Array<BookLevel>
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
  if (u.snapshot !== undefined) {
    view.bids = toLevels(u.snapshot.bids, true)
    view.asks = toLevels(u.snapshot.asks, false)
  }
  for (const d of u.deltas) {
    applyLevels(view.bids, d.bids, true)
    applyLevels(view.asks, d.asks, false)
  }
  return view
}

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

const toLevels = (levels: ReadonlyArray<Level>, descending: boolean): Array<BookLevel> => {
  const out: Array<BookLevel> = []
  for (const [p, q] of levels) {
    const qty = dec(q)
    if (qty.lte(0)) continue
    out.push({ price: dec(p), priceStr: p, qty })
  }
  out.sort((a, b) => descending ? b.price.comparedTo(a.price) : a.price.comparedTo(b.price))
  return out
}

/** Applies absolute level updates to one side, keeping it sorted best first. */
const applyLevels = (side: Array<BookLevel>, updates: ReadonlyArray<Level>, descending: boolean): void => {
  for (const [p, q] of updates) {
    const price = dec(p)
    const qty = dec(q)
    let i = 0
    while (i < side.length && (descending ? side[i]!.price.gt(price) : side[i]!.price.lt(price))) i++
    const same = i < side.length && side[i]!.price.eq(price)
    if (qty.lte(0)) {
      if (same) side.splice(i, 1)
    } else if (same) {
      side[i]!.qty = qty
    } else {
      side.splice(i, 0, { price, priceStr: p, qty })
    }
  }
}

const terminal = (s: OrderStatus): boolean => s === "filled" || s === "canceled" || s === "rejected"

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
          submittedTs: s.submittedTs,
          updatedTs: s.updatedTs
        }
        orders.set(o.clientOrderId, o)
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
      const view = parsed(market)
      const levels = o.side === "buy" ? view.asks : view.bids
      while (o.filled.lt(o.qty) && levels.length > 0) {
        const best = levels[0]!
        if (o.limit !== undefined && (o.side === "buy" ? best.price.gt(o.limit) : best.price.lt(o.limit))) break
        const fill = Dec.min(best.qty, o.qty.minus(o.filled))
        best.qty = best.qty.minus(fill)
        if (best.qty.lte(0)) levels.shift()
        o.filled = o.filled.plus(fill)
        o.notional = o.notional.plus(best.price.times(fill))
        o.status = o.filled.eq(o.qty) ? "filled" : "partially_filled"
        counters.fills++
        if (o.status === "filled") counters.filled++
        report(o, traceId, { lastFillPrice: best.priceStr, lastFillQty: toDecimal(fill) })
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

    const reject = (o: OrderState, reason: string, traceId: string): OrderRejected => {
      o.status = "rejected"
      o.reason = reason
      counters.rejected++
      report(o, traceId)
      return new OrderRejected({
        clientOrderId: o.clientOrderId,
        consumerId: o.consumerId,
        symbol: o.symbol,
        orderId: o.orderId,
        reason
      })
    }

    // -- commands (synchronous critical sections) ---------------------------

    const submitSync = (cmd: SubmitOrder): OrderView | OrderRejected => {
      const existing = orders.get(cmd.clientOrderId)
      if (existing !== undefined) {
        if (existing.consumerId !== cmd.consumerId) {
          counters.conflicts++
          return new OrderRejected({
            clientOrderId: cmd.clientOrderId,
            consumerId: cmd.consumerId,
            symbol: cmd.symbol,
            reason: "clientOrderId is already used by another consumer"
          })
        }
        counters.duplicates++
        return existing.status === "rejected"
          ? new OrderRejected({
            clientOrderId: existing.clientOrderId,
            consumerId: existing.consumerId,
            symbol: existing.symbol,
            orderId: existing.orderId,
            reason: existing.reason ?? "rejected"
          })
          : viewOf(existing)
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
        submittedTs: ts,
        updatedTs: ts
      }
      orders.set(o.clientOrderId, o)
      const trace = cmd.commandId
      if (tradable !== undefined && !tradable.has(o.symbol)) return reject(o, `unknown symbol ${o.symbol}`, trace)
      const view = views.get(o.symbol)
      if (view === undefined) return reject(o, `no market data for ${o.symbol}`, trace)
      if (o.type === "market" && view.stale) return reject(o, `the book of ${o.symbol} is stale`, trace)
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
            bids: [],
            asks: [],
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
          views.set(symbol, {
            source: "ticker",
            provider: event.provider,
            bids: toLevels([[t.bidPrice, t.bidQty]], true),
            asks: toLevels([[t.askPrice, t.askQty]], false),
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
      if (result instanceof OrderRejected) return yield* result
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
      for (const q of resting.values()) open += q.length
      return {
        orders: orders.size,
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

export class ExecutionVenue extends Context.Tag("meltica/ExecutionVenue")<ExecutionVenue, ExecutionVenueShape>() {
  /** The paper venue with the given options. */
  static readonly layerPaperWith = (
    options: PaperVenueOptions = {}
  ): Layer.Layer<ExecutionVenue, never, Pool | ExecReportSink> => Layer.effect(ExecutionVenue, makePaperVenue(options))

  /** The paper venue keeping its open orders in the `PaperStore` across restarts. */
  static readonly layerPaperStored = (
    options: PaperVenueOptions = {}
  ): Layer.Layer<ExecutionVenue, never, Pool | ExecReportSink | PaperStore> =>
    Layer.effect(ExecutionVenue, Effect.flatMap(PaperStore, (store) => makePaperVenue({ ...options, store })))

  /** The paper venue: the embedded default. */
  static readonly layerPaper: Layer.Layer<ExecutionVenue, never, Pool | ExecReportSink> = ExecutionVenue
    .layerPaperWith()
}
