/**
 * The live execution engine: one venue's `LiveAdapter` (`LiveAdapter.ts`)
 * behind the `ExecutionVenue` port, so a strategy trades live exactly as it
 * trades on paper.
 *
 * Rules (the engine's, the same for every venue):
 * - Idempotency. Orders are keyed by `clientOrderId`, which goes into the
 *   venue's client order id field. A resubmission with the same terms answers
 *   with the order as it is and sends nothing; other terms, or another
 *   consumer, is a `DuplicateClientOrderId`. When the venue itself says the id
 *   is in use (a retry after a restart), the order is queried and adopted.
 * - Checks before sending: the venue's client id format, its instrument rules
 *   (tick size, lot size, minimum quantity and notional, trading status;
 *   loaded at start and refreshed), typed as on paper.
 * - Reports. Every transition becomes one `ExecReport` (critical, in order,
 *   `reportSeq` 1, 2, ...): `new` once the venue acknowledged the order, one
 *   `partially_filled`/`filled` per fill, `canceled`/`rejected` last, and an
 *   amend report (status unchanged) when the price or quantity changed. Fills
 *   are de-duplicated by the venue's trade id, so a fill seen on the private
 *   stream and again in a REST catch-up is reported once. When the venue says
 *   an order filled more than the fills we saw (a push without its trade, an
 *   order closed while we were away), its fills are fetched and the missing
 *   ones reported first, oldest first, before the order's final status.
 * - Unknown outcomes. A placement that timed out (or lost its connection) is
 *   never resent: the order is queried, every `queryIntervalMs`, until the
 *   venue answers; an order the venue still does not know once its receive
 *   window has passed can no longer arrive, and is rejected ("not_received").
 * - Reconciliation, after the private stream (re)connects: our fills since
 *   the last one seen (per symbol), the venue's open orders, and every order
 *   we hold open that the venue no longer lists (queried one by one) are
 *   applied by the same rules, so nothing that happened while we were away is
 *   lost or reported twice.
 * - Ordering. Stream updates are taken one at a time by one fiber; state
 *   changes are synchronous; reports go to the sink through one FIFO outbox
 *   (as in the paper venue), so the reports of an order never overtake each
 *   other whichever path (answer, stream, reconciliation) produced them.
 */
import { Effect, Queue, type Scope } from "effect"
import type { AmendOrder, CancelOrder, QueryOrder, SubmitOrder, TimeInForce } from "../../../schema/Control.js"
import { timeInForceOf } from "../../../schema/Control.js"
import type { Decimal, OrderStatus, OrderType, Side } from "../../../schema/Event.js"
import { ExecReportPayload } from "../../../schema/Event.js"
import {
  BelowMinimum,
  DuplicateClientOrderId,
  InvalidPrice,
  InvalidQuantity,
  OrderNotCancelable,
  OrderNotFound,
  type OrderRejection,
  UnknownSymbol,
  VenueRejected
} from "../../../schema/Rejection.js"
import type { AnyEvent } from "../../Event.js"
import {
  type CancelScope,
  type ConsumerExposure,
  type ConsumerPortfolio,
  ExecReportSink,
  type ExecutionVenueShape,
  type ExecutionVenueStats,
  type OrderView,
  type PortfolioSnapshot,
  type Position
} from "../../ExecutionVenue.js"
import { Dec, dec, toDecimal, ZERO } from "../../internal/decimal.js"
import { Pool } from "../../Pool.js"
import type { Instrument, LiveAdapter, LiveAdapterStats, LiveError, StreamUpdate, VenueAnswer, VenueFill, VenueOrder } from "./LiveAdapter.js"

export interface LiveVenueOptions {
  /** How often an order of unknown outcome is queried. Default 1 s. */
  readonly queryIntervalMs?: number
  /**
   * How long after sending an order the venue may still accept it (its
   * receive window plus network slack): past it, an order the venue does not
   * know is rejected as not received. Default 10 s.
   */
  readonly acceptWindowMs?: number
  /** How often the clock skew is measured again. Default 5 min. */
  readonly clockSyncIntervalMs?: number
  /** How often the instrument rules are loaded again. Default 15 min. */
  readonly instrumentsRefreshMs?: number
}

export interface LiveVenueStats {
  readonly venue: string
  readonly connected: boolean
  readonly orders: number
  readonly open: number
  readonly fills: number
  /** Fills seen again (stream and catch-up), reported once. */
  readonly duplicateFills: number
  readonly reconciliations: number
  /** Orders whose placement outcome was unknown and that were queried. */
  readonly outcomeQueries: number
  readonly rejected: number
  readonly adapter: LiveAdapterStats
}

/** A live venue: the port, plus what the router and the status page need. */
export interface LiveVenueShape extends ExecutionVenueShape {
  readonly venue: string
  /** True when this venue holds the consumer's order with this client id. */
  readonly owns: (consumerId: string, clientOrderId: string) => boolean
  /** Runs a reconciliation now (the private stream's `Connected` does too). */
  readonly reconcile: Effect.Effect<void>
  readonly liveStats: () => LiveVenueStats
}

type LiveStatus = OrderStatus | "pending"

interface LiveOrder {
  venueOrderId: string | undefined
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly side: Side
  readonly type: OrderType
  readonly timeInForce: TimeInForce
  readonly postOnly: boolean
  readonly reduceOnly: boolean
  price: Decimal | undefined
  quantity: Decimal
  status: LiveStatus
  filled: Dec
  notional: Dec
  fees: Dec
  readonly tradeIds: Set<string>
  reportSeq: number
  reason: string | undefined
  rejection: OrderRejection | undefined
  readonly submittedTs: number
  updatedTs: number
  /** The venue time of the last amendment applied: an older amend push is stale. */
  amendedMs: number
  /** When the placement went out (ms), for the receive window. */
  readonly sentMs: number
  readonly traceId: string
}

const isOpen = (s: LiveStatus) => s === "pending" || s === "new" || s === "partially_filled"
const isTerminal = (s: LiveStatus) => s === "filled" || s === "canceled" || s === "rejected"
const AVG_PRICE_DP = 18

/** A rejection to give a strategy when the venue could not be asked (not its refusal). */
const notSent = (venue: string, o: { readonly clientOrderId: string; readonly symbol: string }, e: LiveError): VenueRejected =>
  new VenueRejected({
    venue,
    clientOrderId: o.clientOrderId,
    symbol: o.symbol,
    code: e._tag === "RequestNotSent" && e.reason === "dry-run"
      ? "dry_run"
      : e._tag === "VenueRateLimited"
      ? "rate_limited"
      : e._tag === "AuthenticationFailed"
      ? "authentication_failed"
      : e._tag === "ClockSkewTooLarge"
      ? "clock_skew"
      : "not_sent",
    text: e.message.slice(0, 500)
  })

const gridProblem = (value: Dec, step: Decimal | undefined): boolean =>
  step !== undefined && !dec(step).isZero() && !value.mod(dec(step)).isZero()

/** The instrument rules an order breaks, typed as the paper venue types them. */
export const instrumentRejection = (
  venue: string,
  order: { readonly clientOrderId: string; readonly symbol: string; readonly quantity: Decimal; readonly price?: Decimal | undefined },
  instrument: Instrument | undefined,
  mark: Decimal | undefined
): OrderRejection | undefined => {
  if (instrument === undefined) return new UnknownSymbol({ symbol: order.symbol, venue })
  const { clientOrderId, symbol } = order
  if (!instrument.trading) {
    return new VenueRejected({ venue, clientOrderId, symbol, code: "not_trading", text: `${symbol} does not trade on ${venue} now` })
  }
  const qty = dec(order.quantity)
  if (order.price !== undefined && gridProblem(dec(order.price), instrument.tickSize)) {
    return new InvalidPrice({ clientOrderId, symbol, price: order.price, rule: `a multiple of the tick size ${instrument.tickSize}` })
  }
  if (gridProblem(qty, instrument.lotSize)) {
    return new InvalidQuantity({ clientOrderId, symbol, quantity: order.quantity, rule: `a multiple of the lot size ${instrument.lotSize}` })
  }
  if (instrument.minQty !== undefined && qty.lt(dec(instrument.minQty))) {
    return new BelowMinimum({ clientOrderId, symbol, measure: "quantity", value: order.quantity, minimum: instrument.minQty })
  }
  const px = order.price ?? mark
  if (instrument.minNotional !== undefined && px !== undefined) {
    const notional = qty.mul(dec(px))
    if (notional.lt(dec(instrument.minNotional))) {
      return new BelowMinimum({ clientOrderId, symbol, measure: "notional", value: toDecimal(notional), minimum: instrument.minNotional })
    }
  }
  return undefined
}

export const makeLiveVenue = (
  adapter: LiveAdapter,
  options: LiveVenueOptions = {}
): Effect.Effect<LiveVenueShape, never, Pool | ExecReportSink | Scope.Scope> =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const sink = yield* ExecReportSink
    const clock = yield* Effect.clock
    const lock = yield* Effect.makeSemaphore(1)
    const venue = adapter.venue
    const queryIntervalMs = options.queryIntervalMs ?? 1_000
    const acceptWindowMs = options.acceptWindowMs ?? 10_000
    const nowMicros = () => Number(clock.unsafeCurrentTimeNanos() / 1000n)
    const nowMs = () => clock.unsafeCurrentTimeMillis()

    const orders = new Map<string, LiveOrder>()
    const byVenueId = new Map<string, LiveOrder>()
    /** The newest fill time seen per symbol (ms): the catch-up after a reconnect starts there. */
    const lastFillMs = new Map<string, number>()
    const instruments = new Map<string, Instrument>()
    const marks = new Map<string, Decimal>()
    let routingVersion: () => number = () => 0
    let connected = false
    let traceSeq = 0
    const counters = { fills: 0, duplicateFills: 0, reconciliations: 0, outcomeQueries: 0, rejected: 0, reports: 0, canceled: 0, filled: 0, duplicates: 0, conflicts: 0, amended: 0 }
    const outbox: Array<{ payload: ExecReportPayload; symbol: string; traceId: string; ts: number }> = []

    // -- reports ------------------------------------------------------------

    const report = (o: LiveOrder, extra: { lastFillPrice?: Decimal; lastFillQty?: Decimal } = {}): void => {
      const ts = nowMicros()
      o.reportSeq++
      o.updatedTs = ts
      const status: OrderStatus = o.status === "pending" ? "new" : o.status
      outbox.push({
        payload: ExecReportPayload.make({
          orderId: o.venueOrderId ?? `${venue}:${o.clientOrderId}`,
          clientOrderId: o.clientOrderId,
          consumerId: o.consumerId,
          side: o.side,
          orderType: o.type,
          status,
          quantity: o.quantity,
          filledQty: toDecimal(o.filled),
          reportSeq: o.reportSeq,
          ...(o.price === undefined ? {} : { price: o.price }),
          ...extra,
          ...(o.reason === undefined ? {} : { reason: o.reason.slice(0, 500) })
        }),
        symbol: o.symbol,
        traceId: o.traceId,
        ts
      })
    }

    const flush: Effect.Effect<void> = Effect.uninterruptible(Effect.whileLoop({
      while: () => outbox.length > 0,
      body: () =>
        Effect.suspend(() => {
          const next = outbox.shift()!
          const r = pool.acquireExecReport()
          r.payload = next.payload
          r.symbol = next.symbol
          r.provider = venue
          r.traceId = next.traceId
          r.ingestTs = next.ts
          r.routingVersion = routingVersion()
          counters.reports++
          return sink(r)
        }),
      step: () => {}
    }))

    /** Runs a state change and hands its reports over, one caller at a time. */
    const locked = <A, E>(f: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      lock.withPermits(1)(Effect.ensuring(f, flush))

    // -- applying what the venue says -----------------------------------------

    const view = (o: LiveOrder): OrderView => ({
      orderId: o.venueOrderId ?? `${venue}:${o.clientOrderId}`,
      clientOrderId: o.clientOrderId,
      consumerId: o.consumerId,
      symbol: o.symbol,
      venue,
      side: o.side,
      type: o.type,
      timeInForce: o.timeInForce,
      postOnly: o.postOnly,
      reduceOnly: o.reduceOnly,
      status: o.status === "pending" ? "new" : o.status,
      quantity: o.quantity,
      filledQty: toDecimal(o.filled),
      leavesQty: isOpen(o.status) ? toDecimal(Dec.max(ZERO, dec(o.quantity).sub(o.filled))) : "0" as Decimal,
      reports: o.reportSeq,
      submittedTs: o.submittedTs,
      updatedTs: o.updatedTs,
      ...(o.price === undefined ? {} : { price: o.price }),
      ...(o.filled.isZero() ? {} : { avgPrice: toDecimal(o.notional.div(o.filled).toDecimalPlaces(AVG_PRICE_DP)) }),
      ...(o.reason === undefined ? {} : { reason: o.reason })
    })

    const acknowledge = (o: LiveOrder, venueOrderId: string | undefined): void => {
      if (venueOrderId !== undefined && o.venueOrderId !== venueOrderId) {
        o.venueOrderId = venueOrderId
        byVenueId.set(venueOrderId, o)
      }
      if (o.status === "pending") {
        o.status = "new"
        report(o)
      }
    }

    const applyFill = (o: LiveOrder, f: VenueFill): void => {
      if (o.tradeIds.has(f.tradeId)) {
        counters.duplicateFills++
        return
      }
      if (!isOpen(o.status)) return
      acknowledge(o, f.venueOrderId)
      o.tradeIds.add(f.tradeId)
      const qty = dec(f.quantity)
      o.filled = o.filled.add(qty)
      o.notional = o.notional.add(qty.mul(dec(f.price)))
      if (f.fee !== undefined) o.fees = o.fees.add(dec(f.fee))
      o.status = o.filled.gte(dec(o.quantity)) ? "filled" : "partially_filled"
      if (o.status === "filled") counters.filled++
      counters.fills++
      lastFillMs.set(o.symbol, Math.max(lastFillMs.get(o.symbol) ?? 0, f.tsMs))
      recordPosition(o, f)
      report(o, { lastFillPrice: f.price, lastFillQty: f.quantity })
    }

    /** Applies the venue's view of an order: acknowledgement, amend, missing fills (fetched), final status. */
    const applyOrder = (
      o: LiveOrder,
      vo: VenueOrder,
      fills: ReadonlyArray<VenueFill>,
      source: "answer" | "stream" = "answer"
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (vo.status === "rejected" && o.status === "pending") {
          if (vo.venueOrderId !== "") {
            o.venueOrderId = vo.venueOrderId
            byVenueId.set(vo.venueOrderId, o)
          }
          o.status = "rejected"
          o.reason = vo.reason ?? "rejected by the venue"
          counters.rejected++
          report(o)
          return
        }
        acknowledge(o, vo.venueOrderId === "" ? undefined : vo.venueOrderId)
        if (isOpen(o.status) && (vo.status === "new" || vo.status === "partially_filled") &&
          (source === "answer" || (vo.amended === true && vo.updatedMs > o.amendedMs))) {
          const priceChanged = vo.price !== undefined && o.price !== undefined && !dec(vo.price).eq(dec(o.price))
          const qtyChanged = !dec(vo.quantity).eq(dec(o.quantity))
          if (priceChanged || qtyChanged) {
            if (priceChanged) o.price = vo.price
            o.quantity = vo.quantity
            o.amendedMs = Math.max(o.amendedMs, vo.updatedMs)
            counters.amended++
            report(o)
          }
        }
        for (const f of fills) applyFill(o, f)
        if (dec(vo.filledQty).gt(o.filled) && o.venueOrderId !== undefined) {
          // the venue counts fills we have not seen: fetch them, report the missing ones first
          const all = yield* adapter.orderFills(o.symbol, o.venueOrderId).pipe(
            Effect.tapError((e) => Effect.logWarning("live venue: fills of an order could not be fetched").pipe(
              Effect.annotateLogs({ venue, clientOrderId: o.clientOrderId, error: e.message })
            )),
            Effect.orElseSucceed((): ReadonlyArray<VenueFill> => [])
          )
          for (const f of [...all].sort((a, b) => a.tsMs - b.tsMs)) applyFill(o, f)
        }
        if (isOpen(o.status) && (vo.status === "canceled" || vo.status === "rejected")) {
          if (vo.status === "canceled") {
            // an amend lowering the quantity to what filled closes the order without a fill
            if (!o.filled.isZero() && o.filled.gte(dec(vo.quantity))) o.quantity = vo.quantity
            counters.canceled++
          } else counters.rejected++
          o.status = vo.status
          o.reason = vo.reason ?? (vo.status === "canceled" ? "canceled at the venue" : "rejected by the venue")
          report(o)
        } else if (isOpen(o.status) && vo.status === "filled" && dec(vo.filledQty).gt(o.filled)) {
          yield* Effect.logWarning("live venue: an order is filled at the venue beyond the fills it listed").pipe(
            Effect.annotateLogs({ venue, clientOrderId: o.clientOrderId, venueFilled: vo.filledQty, seen: toDecimal(o.filled) })
          )
        }
      })

    const orderOf = (vo: { readonly clientOrderId?: string | undefined; readonly venueOrderId: string }): LiveOrder | undefined =>
      (vo.clientOrderId === undefined || vo.clientOrderId === "" ? undefined : orders.get(vo.clientOrderId)) ??
        byVenueId.get(vo.venueOrderId)

    const applyAnswer = (o: LiveOrder, a: VenueAnswer) => applyOrder(o, a.order, a.fills)

    // -- positions (average cost, per (venue, symbol) and per consumer) ---------

    interface Book { qty: Dec; cost: Dec; realized: Dec; fees: Dec }
    const account = new Map<string, Book>()
    const perConsumer = new Map<string, Map<string, Book>>()
    const bookOf = (m: Map<string, Book>, symbol: string): Book => {
      let b = m.get(symbol)
      if (b === undefined) m.set(symbol, b = { qty: ZERO, cost: ZERO, realized: ZERO, fees: ZERO })
      return b
    }
    const applyToBook = (b: Book, side: Side, qty: Dec, price: Dec, fee: Dec): void => {
      const signed = side === "buy" ? qty : qty.neg()
      b.fees = b.fees.add(fee)
      if (b.qty.isZero() || b.qty.isNeg() === signed.isNeg()) {
        b.qty = b.qty.add(signed)
        b.cost = b.cost.add(signed.mul(price))
        return
      }
      const avg = b.cost.div(b.qty)
      const closing = Dec.min(qty, b.qty.abs())
      b.realized = b.realized.add(closing.mul(price.sub(avg)).mul(b.qty.isNeg() ? -1 : 1))
      const rest = qty.sub(closing)
      b.qty = b.qty.add(signed)
      b.cost = b.qty.isZero() ? ZERO : rest.isZero() ? avg.mul(b.qty) : b.qty.mul(price)
    }
    const recordPosition = (o: LiveOrder, f: VenueFill): void => {
      const fee = f.fee !== undefined && (f.feeAsset === undefined || o.symbol.endsWith(`-${f.feeAsset}`)) ? dec(f.fee) : ZERO
      applyToBook(bookOf(account, o.symbol), o.side, dec(f.quantity), dec(f.price), fee)
      let m = perConsumer.get(o.consumerId)
      if (m === undefined) perConsumer.set(o.consumerId, m = new Map())
      applyToBook(bookOf(m, o.symbol), o.side, dec(f.quantity), dec(f.price), fee)
    }
    const positionOf = (symbol: string, b: Book): Position => {
      const [base = symbol, quote = ""] = symbol.split("-")
      const mark = marks.get(symbol)
      const avg = b.qty.isZero() ? undefined : b.cost.div(b.qty)
      const unrealized = mark !== undefined && avg !== undefined ? dec(mark).sub(avg).mul(b.qty) : ZERO
      return {
        venue,
        symbol,
        base,
        quote,
        quantity: toDecimal(b.qty),
        realizedPnl: toDecimal(b.realized),
        unrealizedPnl: toDecimal(unrealized),
        fees: toDecimal(b.fees),
        ...(avg === undefined ? {} : { avgEntry: toDecimal(avg.toDecimalPlaces(AVG_PRICE_DP)) }),
        ...(mark === undefined ? {} : { mark, notional: toDecimal(b.qty.abs().mul(dec(mark))) })
      }
    }
    /**
     * Each consumer's orders that were open when last looked at: `exposure`
     * drops the closed ones as it counts (an order never opens again), so a
     * count costs the consumer's own orders, not the venue's.
     */
    const working = new Map<string, Set<LiveOrder>>()
    const workingOf = (consumerId: string): Set<LiveOrder> => {
      let w = working.get(consumerId)
      if (w === undefined) working.set(consumerId, w = new Set())
      return w
    }
    const exposure = (consumerId: string, symbol: string, named: string | undefined): ConsumerExposure => {
      let openOrders = 0
      const w = working.get(consumerId)
      if (w !== undefined) {
        for (const o of w) {
          if (isOpen(o.status)) openOrders++
          else w.delete(o)
        }
      }
      // this venue's position only: an order it trades names it
      const mine = named === undefined || named === venue
      const position = mine ? perConsumer.get(consumerId)?.get(symbol)?.qty ?? ZERO : ZERO
      return { venue: named ?? (mine && marks.has(symbol) ? venue : undefined), position: toDecimal(position), openOrders }
    }

    const portfolio = (): PortfolioSnapshot => {
      const byConsumer: Array<ConsumerPortfolio> = []
      for (const [consumerId, m] of perConsumer) {
        const positions = [...m].map(([s, b]) => positionOf(s, b))
        const byQuote = new Map<string, { realized: Dec; unrealized: Dec; fees: Dec }>()
        for (const p of positions) {
          const t = byQuote.get(p.quote) ?? { realized: ZERO, unrealized: ZERO, fees: ZERO }
          byQuote.set(p.quote, { realized: t.realized.add(dec(p.realizedPnl)), unrealized: t.unrealized.add(dec(p.unrealizedPnl)), fees: t.fees.add(dec(p.fees)) })
        }
        const sum = (k: "realized" | "unrealized" | "fees") => toDecimal([...byQuote.values()].reduce((a, t) => a.add(t[k]), ZERO))
        let openOrders = 0
        for (const o of orders.values()) if (o.consumerId === consumerId && isOpen(o.status)) openOrders++
        byConsumer.push({
          consumerId,
          positions,
          realizedPnl: sum("realized"),
          unrealizedPnl: sum("unrealized"),
          fees: sum("fees"),
          byQuote: [...byQuote].map(([quote, t]) => ({ quote, realizedPnl: toDecimal(t.realized), unrealizedPnl: toDecimal(t.unrealized), fees: toDecimal(t.fees) })),
          openOrders
        })
      }
      return { balances: [], positions: [...account].map(([s, b]) => positionOf(s, b)), byConsumer }
    }

    // -- unknown outcomes -------------------------------------------------------

    /** The placement's outcome is unknown: query until the venue answers; past the accept window, not received. */
    const resolveUnknown = (o: LiveOrder): Effect.Effect<void> =>
      Effect.gen(function*() {
        counters.outcomeQueries++
        for (;;) {
          const answer = yield* Effect.either(adapter.query(o.symbol, o.clientOrderId))
          if (answer._tag === "Right") {
            yield* locked(applyOrder(o, answer.right, []))
            return
          }
          const known = answer.left._tag === "VenueOrderUnknown"
          if (known && nowMs() - o.sentMs > acceptWindowMs) {
            yield* locked(Effect.sync(() => {
              if (o.status !== "pending") return
              o.status = "rejected"
              o.reason = "not received by the venue (no answer, and unknown to it past its receive window)"
              o.rejection = new VenueRejected({ venue, clientOrderId: o.clientOrderId, symbol: o.symbol, code: "not_received", text: o.reason })
              counters.rejected++
              report(o)
            }))
            return
          }
          if (o.status !== "pending") return
          yield* Effect.sleep(queryIntervalMs)
        }
      })

    // -- the port ---------------------------------------------------------------

    const termsDiffer = (o: LiveOrder, s: SubmitOrder): ReadonlyArray<string> => {
      const out: Array<string> = []
      if (o.symbol !== s.symbol) out.push("symbol")
      if (o.side !== s.side) out.push("side")
      if (o.type !== s.orderType) out.push("orderType")
      if (!dec(o.quantity).eq(dec(s.quantity)) && o.reportSeq <= 1) out.push("quantity")
      if ((o.price === undefined) !== (s.price === undefined) || (o.price !== undefined && s.price !== undefined && !dec(o.price).eq(dec(s.price)) && o.reportSeq <= 1)) out.push("price")
      return out
    }

    const submit = (s: SubmitOrder): Effect.Effect<OrderView, OrderRejection> =>
      Effect.gen(function*() {
        const existing = orders.get(s.clientOrderId)
        if (existing !== undefined) {
          if (existing.consumerId !== s.consumerId) {
            counters.conflicts++
            return yield* new DuplicateClientOrderId({ clientOrderId: s.clientOrderId, conflict: "other_consumer", fields: [] })
          }
          const differ = termsDiffer(existing, s)
          if (differ.length > 0) {
            return yield* new DuplicateClientOrderId({
              clientOrderId: s.clientOrderId,
              conflict: "other_terms",
              fields: differ,
              ...(existing.venueOrderId === undefined ? {} : { orderId: existing.venueOrderId })
            })
          }
          counters.duplicates++
          if (existing.rejection !== undefined) return yield* existing.rejection
          return view(existing)
        }
        const ts = nowMicros()
        const o: LiveOrder = {
          venueOrderId: undefined,
          clientOrderId: s.clientOrderId,
          consumerId: s.consumerId,
          symbol: s.symbol,
          side: s.side,
          type: s.orderType,
          timeInForce: timeInForceOf(s),
          postOnly: s.postOnly === true,
          reduceOnly: s.reduceOnly === true,
          price: s.price,
          quantity: s.quantity,
          status: "pending",
          filled: ZERO,
          notional: ZERO,
          fees: ZERO,
          tradeIds: new Set(),
          amendedMs: 0,
          reportSeq: 0,
          reason: undefined,
          rejection: undefined,
          submittedTs: ts,
          updatedTs: ts,
          sentMs: nowMs(),
          traceId: `${venue}-${s.commandId}-${++traceSeq}`
        }
        orders.set(o.clientOrderId, o)
        workingOf(o.consumerId).add(o)
        // refused before it leaves (the venue's id format, its instrument rules): one rejected report, as on paper
        const idProblem = adapter.clientOrderIdProblem(s.clientOrderId)
        const refused = idProblem !== undefined
          ? new VenueRejected({ venue, clientOrderId: s.clientOrderId, symbol: s.symbol, code: "client_order_id_format", text: idProblem })
          : instrumentRejection(venue, { clientOrderId: s.clientOrderId, symbol: s.symbol, quantity: s.quantity, price: s.price }, instruments.get(s.symbol), marks.get(s.symbol))
        if (refused !== undefined) {
          yield* locked(Effect.sync(() => {
            o.status = "rejected"
            o.rejection = refused
            o.reason = refused.message
            counters.rejected++
            report(o)
          }))
          return yield* refused
        }
        const placed = yield* Effect.either(adapter.place({
          clientOrderId: o.clientOrderId,
          symbol: o.symbol,
          side: o.side,
          type: o.type,
          quantity: o.quantity,
          price: o.price,
          timeInForce: o.timeInForce,
          postOnly: o.postOnly
        }))
        if (placed._tag === "Right") {
          yield* locked(applyAnswer(o, placed.right))
        } else {
          const e = placed.left
          switch (e._tag) {
            case "OrderRefused":
              yield* locked(Effect.sync(() => {
                o.status = "rejected"
                o.rejection = e.rejection
                o.reason = e.rejection.message
                counters.rejected++
                report(o)
              }))
              break
            case "VenueDuplicate":
            case "OutcomeUnknown":
              yield* resolveUnknown(o)
              break
            default:
              yield* locked(Effect.sync(() => {
                o.status = "rejected"
                o.rejection = notSent(venue, o, e)
                o.reason = o.rejection.message
                counters.rejected++
                report(o)
              }))
          }
        }
        if (o.rejection !== undefined) return yield* o.rejection
        if (o.status === "rejected") {
          return yield* new VenueRejected({ venue, clientOrderId: o.clientOrderId, symbol: o.symbol, code: "rejected", text: (o.reason ?? "rejected").slice(0, 500), ...(o.venueOrderId === undefined ? {} : { orderId: o.venueOrderId }) })
        }
        return view(o)
      })

    const mine = (consumerId: string, clientOrderId: string): Effect.Effect<LiveOrder, OrderNotFound> => {
      const o = orders.get(clientOrderId)
      return o === undefined || o.consumerId !== consumerId
        ? Effect.fail(new OrderNotFound({ clientOrderId, consumerId }))
        : Effect.succeed(o)
    }

    const notCancelable = (o: LiveOrder) =>
      new OrderNotCancelable({
        clientOrderId: o.clientOrderId,
        consumerId: o.consumerId,
        orderId: o.venueOrderId ?? `${venue}:${o.clientOrderId}`,
        status: o.status as "filled" | "canceled" | "rejected"
      })

    /** After a cancel or amend the venue answered with "unknown" or "closed", or no answer: ask it. */
    const refresh = (o: LiveOrder): Effect.Effect<void> =>
      adapter.query(o.symbol, o.clientOrderId).pipe(
        Effect.flatMap((vo) => locked(applyOrder(o, vo, []))),
        Effect.catchAll((e) => Effect.logWarning("live venue: order query failed").pipe(
          Effect.annotateLogs({ venue, clientOrderId: o.clientOrderId, error: e.message })
        ))
      )

    const cancelOrder = (o: LiveOrder): Effect.Effect<OrderView, OrderNotCancelable> =>
      Effect.gen(function*() {
        if (isTerminal(o.status)) return yield* notCancelable(o)
        const answer = yield* Effect.either(adapter.cancel(o.symbol, o.clientOrderId))
        if (answer._tag === "Right") yield* locked(applyAnswer(o, answer.right))
        else {
          yield* Effect.logWarning("live venue: cancel not confirmed; querying the order").pipe(
            Effect.annotateLogs({ venue, clientOrderId: o.clientOrderId, error: answer.left.message })
          )
          yield* refresh(o)
          if (isTerminal(o.status) && o.status !== "canceled") return yield* notCancelable(o)
        }
        return view(o)
      })

    const cancel = (cmd: CancelOrder): Effect.Effect<OrderView, OrderNotFound | OrderNotCancelable> =>
      Effect.flatMap(mine(cmd.consumerId, cmd.clientOrderId), cancelOrder)

    const amend = (cmd: AmendOrder): Effect.Effect<OrderView, OrderNotFound | OrderNotCancelable | OrderRejection> =>
      Effect.gen(function*() {
        const o = yield* mine(cmd.consumerId, cmd.clientOrderId)
        if (isTerminal(o.status)) return yield* notCancelable(o)
        const reject = (code: string, text: string) =>
          new VenueRejected({ venue, clientOrderId: o.clientOrderId, symbol: o.symbol, code, text })
        if (o.type !== "limit") return yield* reject("amend_unsupported", "only a resting limit order can be amended")
        const priceChange = cmd.price !== undefined && o.price !== undefined && !dec(cmd.price).eq(dec(o.price))
        const qty = cmd.quantity === undefined ? undefined : dec(cmd.quantity)
        if (qty !== undefined && qty.lte(o.filled)) {
          return yield* new InvalidQuantity({ clientOrderId: o.clientOrderId, symbol: o.symbol, quantity: cmd.quantity!, rule: `above the filled quantity ${toDecimal(o.filled)}` })
        }
        const a = adapter.amendable
        if ((priceChange && !a.price) || (qty !== undefined && qty.gt(dec(o.quantity)) && !a.quantityUp) ||
          (qty !== undefined && qty.lt(dec(o.quantity)) && !a.quantityDown)) {
          return yield* reject("amend_unsupported", `${venue} cannot amend this change (price: ${a.price}, quantity up: ${a.quantityUp}, down: ${a.quantityDown})`)
        }
        const refused = instrumentRejection(venue, { clientOrderId: o.clientOrderId, symbol: o.symbol, quantity: cmd.quantity ?? o.quantity, price: cmd.price ?? o.price }, instruments.get(o.symbol), marks.get(o.symbol))
        if (refused !== undefined) return yield* refused
        const answer = yield* Effect.either(adapter.amend(o.symbol, o.clientOrderId, { price: priceChange ? cmd.price : undefined, quantity: cmd.quantity }))
        if (answer._tag === "Right") {
          yield* locked(applyAnswer(o, answer.right))
          return view(o)
        }
        const e = answer.left
        if (e._tag === "OrderRefused") return yield* e.rejection
        if (e._tag === "VenueOrderUnknown" || e._tag === "VenueOrderClosed" || e._tag === "OutcomeUnknown") {
          yield* refresh(o)
          if (isTerminal(o.status)) return yield* notCancelable(o)
          if (e._tag === "OutcomeUnknown") return view(o)
        }
        return yield* notSent(venue, o, e)
      })

    const query = (cmd: QueryOrder): Effect.Effect<OrderView, OrderNotFound> =>
      Effect.map(mine(cmd.consumerId, cmd.clientOrderId), view)

    const cancelAll = (scope: CancelScope, _reason: string): Effect.Effect<ReadonlyArray<OrderView>> =>
      Effect.gen(function*() {
        if (scope.venue !== undefined && scope.venue !== venue) return []
        const targets = [...orders.values()].filter((o) =>
          isOpen(o.status) && (scope.consumerId === undefined || o.consumerId === scope.consumerId)
        )
        const results = yield* Effect.forEach(targets, (o) => Effect.either(cancelOrder(o)), { concurrency: 4 })
        return results.flatMap((r) => r._tag === "Right" && r.right.status === "canceled" ? [r.right] : [])
      })

    const onMarketData = (event: AnyEvent): Effect.Effect<void> =>
      Effect.sync(() => {
        if (event._pool !== "Event" || event.provider !== venue || event.payload === undefined) return
        const p = event.payload
        if (p._tag === "ticker") marks.set(event.symbol, toDecimal(dec(p.bidPrice).add(dec(p.askPrice)).div(2)))
      })

    // -- the private stream and reconciliation ----------------------------------

    const reconcile: Effect.Effect<void> = Effect.gen(function*() {
      const symbols = [...new Set([...orders.values()].map((o) => o.symbol))]
      // 1. fills since the last seen, per symbol
      for (const symbol of symbols) {
        const since = lastFillMs.get(symbol) ?? Math.min(...[...orders.values()].filter((o) => o.symbol === symbol).map((o) => o.sentMs))
        const fills = yield* adapter.fillsSince(symbol, since).pipe(
          Effect.tapError((e) => Effect.logWarning("live venue: fills catch-up failed").pipe(Effect.annotateLogs({ venue, symbol, error: e.message }))),
          Effect.orElseSucceed((): ReadonlyArray<VenueFill> => [])
        )
        yield* locked(Effect.sync(() => {
          for (const f of [...fills].sort((a, b) => a.tsMs - b.tsMs)) {
            const o = orderOf(f)
            if (o !== undefined) applyFill(o, f)
          }
        }))
      }
      // 2. the venue's open orders
      const open = yield* adapter.openOrders(symbols).pipe(
        Effect.tapError((e) => Effect.logWarning("live venue: open orders query failed").pipe(Effect.annotateLogs({ venue, error: e.message }))),
        Effect.orElseSucceed((): ReadonlyArray<VenueOrder> => [])
      )
      const listed = new Set<string>()
      for (const vo of open) {
        const o = orderOf(vo)
        if (o === undefined) continue
        listed.add(o.clientOrderId)
        yield* locked(applyOrder(o, vo, []))
      }
      // 3. ours still open that the venue no longer lists: closed while we were away
      // (a pending order younger than the accept window is still being resolved by its own submission)
      for (const o of [...orders.values()]) {
        if (!isOpen(o.status) || listed.has(o.clientOrderId)) continue
        if (o.status !== "pending") yield* refresh(o)
        else if (nowMs() - o.sentMs > acceptWindowMs) yield* resolveUnknown(o)
      }
      counters.reconciliations++
    }).pipe(Effect.withSpan("LiveVenue.reconcile"))

    const updates = yield* Effect.acquireRelease(Queue.unbounded<StreamUpdate>(), Queue.shutdown)
    const handle = (u: StreamUpdate): Effect.Effect<void> => {
      switch (u._tag) {
        case "Connected":
          connected = true
          return reconcile
        case "Disconnected":
          connected = false
          return Effect.logWarning("live venue: private stream down; reconciling when it is back").pipe(
            Effect.annotateLogs({ venue, reason: u.reason })
          )
        case "Order": {
          const o = orderOf(u.order)
          if (o === undefined) return Effect.void
          return locked(applyOrder(o, u.order, u.fill === undefined ? [] : [u.fill], "stream"))
        }
      }
    }
    yield* Queue.take(updates).pipe(Effect.flatMap(handle), Effect.forever, Effect.forkScoped)
    yield* adapter.privateStream((u) => Queue.unsafeOffer(updates, u)).pipe(Effect.forkScoped)

    const loadInstruments = adapter.instruments.pipe(
      Effect.tap((list) => Effect.sync(() => {
        instruments.clear()
        for (const i of list) instruments.set(i.symbol, i)
      })),
      Effect.tapError((e) => Effect.logWarning("live venue: instruments could not be loaded").pipe(Effect.annotateLogs({ venue, error: e.message }))),
      Effect.ignore
    )
    const syncClock = adapter.syncClock.pipe(
      Effect.tapError((e) => Effect.logError("live venue: clock check failed").pipe(Effect.annotateLogs({ venue, error: e.message }))),
      Effect.ignore
    )
    yield* loadInstruments
    yield* Effect.sleep(options.instrumentsRefreshMs ?? 15 * 60_000).pipe(Effect.zipRight(loadInstruments), Effect.forever, Effect.forkScoped)
    yield* Effect.sleep(options.clockSyncIntervalMs ?? 5 * 60_000).pipe(Effect.zipRight(syncClock), Effect.forever, Effect.forkScoped)

    const stats = (): ExecutionVenueStats => {
      let resting = 0
      const per = new Map<string, { orders: number; fills: number; rejected: number; resting: number }>()
      for (const o of orders.values()) {
        const t = per.get(o.consumerId) ?? { orders: 0, fills: 0, rejected: 0, resting: 0 }
        t.orders++
        t.fills += o.tradeIds.size
        if (o.status === "rejected") t.rejected++
        if (isOpen(o.status)) {
          t.resting++
          if (o.status !== "pending") resting++
        }
        per.set(o.consumerId, t)
      }
      return {
        orders: orders.size,
        retained: orders.size,
        resting,
        filled: counters.filled,
        canceled: counters.canceled,
        rejected: counters.rejected,
        fills: counters.fills,
        duplicates: counters.duplicates,
        amended: counters.amended,
        balanceShortfalls: 0,
        conflicts: counters.conflicts,
        reportsEmitted: counters.reports,
        reportsPending: outbox.length,
        symbols: instruments.size,
        marketUpdates: 0,
        restored: 0,
        storeFailures: 0,
        byConsumer: [...per].map(([consumerId, t]) => ({ consumerId, ...t }))
      }
    }

    const liveStats = (): LiveVenueStats => {
      let open = 0
      for (const o of orders.values()) if (isOpen(o.status)) open++
      return {
        venue,
        connected,
        orders: orders.size,
        open,
        fills: counters.fills,
        duplicateFills: counters.duplicateFills,
        reconciliations: counters.reconciliations,
        outcomeQueries: counters.outcomeQueries,
        rejected: counters.rejected,
        adapter: adapter.stats()
      }
    }

    return {
      venue,
      submit,
      cancel,
      amend,
      query,
      cancelAll,
      portfolio,
      exposure,
      markPrice: (v, symbol) => (v === venue ? marks.get(symbol) : undefined),
      onMarketData,
      followRoutingVersion: (current) => {
        routingVersion = current
      },
      stats,
      owns: (consumerId, clientOrderId) => orders.get(clientOrderId)?.consumerId === consumerId,
      reconcile,
      liveStats
    } satisfies LiveVenueShape
  })
