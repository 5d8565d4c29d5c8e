/**
 * The paper venue's accounts: one spot account per venue (shared by every
 * strategy trading there, as on a real exchange), with a balance per asset,
 * and positions with their P&L per (venue, symbol) and per (consumer, venue,
 * symbol).
 *
 * Rules (the paper venue, `Paper.ts`, applies them):
 * - A balance has a `total` and a `reserved` part; `available` = total -
 *   reserved is never negative, and neither is total: an order reserves what
 *   it may spend before it works (a buy: quote = price x quantity x (1 + fee
 *   rate); a sell: the base quantity), a fill releases its share of the
 *   reservation and pays the actual cost, and an order that closes releases
 *   what it still holds.
 * - Fees are paid in the quote asset: the maker rate on fills of a resting
 *   order, the taker rate on fills at arrival.
 * - Positions use the average-cost method: a fill that adds to a position (or
 *   opens one) moves the average entry price; a fill that reduces it realizes
 *   (exit - average entry) x quantity closed (signed by the position's side);
 *   a fill that flips it closes the old side, then opens the rest at the fill
 *   price. Unrealized P&L marks the open quantity to the venue's mid.
 */
import type { Balance, ConsumerPortfolio, Position, QuoteTotals } from "../ExecutionVenue.js"
import { Dec, dec, toDecimal, ZERO } from "../internal/decimal.js"

/** Maker and taker fee rates, as fractions of the notional (0.0005 is 5 basis points). */
export interface FeeRates {
  readonly maker: Dec
  readonly taker: Dec
}

/** The starting balances of a venue's account when the configuration names none. */
export const DEFAULT_BALANCES: Readonly<Record<string, string>> = { USDT: "100000", BTC: "1", ETH: "10" }
/** The fee rates of a venue when the configuration names none. */
export const DEFAULT_FEES = { maker: "0.0002", taker: "0.0005" } as const

/** Quote assets recognised at the end of a symbol written without a separator ("BTCUSDT"). */
const QUOTE_SUFFIXES = ["USDT", "USDC", "FDUSD", "BUSD", "USD", "EUR", "GBP", "BTC", "ETH"] as const

/** A symbol's base and quote assets: "BTC-USDT" (or "BTC/USDT", "BTC_USDT", "BTCUSDT") -> BTC, USDT. */
export const assetsOf = (symbol: string): { readonly base: string; readonly quote: string } | undefined => {
  const parts = symbol.split(/[-/_]/)
  if (parts.length === 2 && parts[0]!.length > 0 && parts[1]!.length > 0) return { base: parts[0]!, quote: parts[1]! }
  for (const q of QUOTE_SUFFIXES) {
    if (symbol.length > q.length && symbol.endsWith(q)) return { base: symbol.slice(0, -q.length), quote: q }
  }
  return undefined
}

interface Holding {
  total: Dec
  reserved: Dec
}

/** One venue's spot account. */
export class Account {
  private readonly holdings = new Map<string, Holding>()

  constructor(readonly venue: string, balances: Readonly<Record<string, string>>, readonly fees: FeeRates) {
    for (const [asset, amount] of Object.entries(balances)) this.holdings.set(asset, { total: dec(amount), reserved: ZERO })
  }

  private holding(asset: string): Holding {
    let h = this.holdings.get(asset)
    if (h === undefined) this.holdings.set(asset, h = { total: ZERO, reserved: ZERO })
    return h
  }

  /** What is free to spend: total - reserved. */
  available(asset: string): Dec {
    const h = this.holdings.get(asset)
    return h === undefined ? ZERO : h.total.minus(h.reserved)
  }

  /** Reserves `amount` when that much is available; false (and nothing reserved) otherwise. */
  reserve(asset: string, amount: Dec): boolean {
    if (amount.lte(0)) return true
    if (this.available(asset).lt(amount)) return false
    const h = this.holding(asset)
    h.reserved = h.reserved.plus(amount)
    return true
  }

  /** Gives back a reservation (at most what is reserved). */
  release(asset: string, amount: Dec): void {
    if (amount.lte(0)) return
    const h = this.holding(asset)
    h.reserved = Dec.max(ZERO, h.reserved.minus(amount))
  }

  /**
   * Pays `amount` out of the available balance. The callers reserve first,
   * so this never drives a balance below zero; if it would, the payment is
   * capped at what is available and the shortfall is returned (0 normally),
   * so that an invariant break shows in the counters instead of a negative
   * balance.
   */
  debit(asset: string, amount: Dec): Dec {
    const h = this.holding(asset)
    const free = h.total.minus(h.reserved)
    const paid = Dec.min(free, amount)
    h.total = h.total.minus(paid)
    return amount.minus(paid)
  }

  credit(asset: string, amount: Dec): void {
    const h = this.holding(asset)
    h.total = h.total.plus(amount)
  }

  balances(): Array<Balance> {
    return [...this.holdings].map(([asset, h]) => ({
      venue: this.venue,
      asset,
      total: toDecimal(h.total),
      available: toDecimal(h.total.minus(h.reserved)),
      reserved: toDecimal(h.reserved)
    }))
  }
}

/**
 * A position by the average-cost method (see the rules at the top). It keeps
 * the cost of the open quantity (average entry x |quantity|) rather than the
 * average itself, so that a fill that adds to the position, or closes it
 * whole, costs no division.
 */
export class PositionBook {
  /** Signed base quantity. */
  qty: Dec = ZERO
  /** What the open quantity cost: average entry x |qty| (zero when flat). */
  cost: Dec = ZERO
  realized: Dec = ZERO
  fees: Dec = ZERO

  constructor(readonly venue: string, readonly symbol: string, readonly base: string, readonly quote: string) {}

  /** The average entry price of the open quantity (zero when flat). */
  get avg(): Dec {
    return this.qty.isZero() ? ZERO : this.cost.div(this.qty.abs())
  }

  /** Applies one fill: `side` of `qty` at `price`, paying `fee`. */
  fill(side: "buy" | "sell", qty: Dec, price: Dec, fee: Dec): void {
    this.fees = this.fees.plus(fee)
    const signed = side === "buy" ? qty : qty.neg()
    if (this.qty.isZero() || this.qty.isPositive() === signed.isPositive()) {
      this.cost = this.cost.plus(price.times(qty))
      this.qty = this.qty.plus(signed)
      return
    }
    const open = this.qty.abs()
    const closing = Dec.min(qty, open)
    const direction = this.qty.isPositive() ? 1 : -1
    // the cost of what closes: all of it, or its share
    const closedCost = closing.eq(open) ? this.cost : this.cost.times(closing).div(open)
    this.realized = this.realized.plus(price.times(closing).minus(closedCost).times(direction))
    this.cost = this.cost.minus(closedCost)
    this.qty = this.qty.plus(signed)
    // flipped: the rest opens at the fill price
    if (qty.gt(open)) this.cost = price.times(qty.minus(open))
  }

  unrealized(mark: Dec | undefined): Dec {
    if (mark === undefined || this.qty.isZero()) return ZERO
    return this.qty.isPositive() ? mark.times(this.qty).minus(this.cost) : this.cost.minus(mark.times(this.qty.abs()))
  }

  view(mark: Dec | undefined): Position {
    return {
      venue: this.venue,
      symbol: this.symbol,
      base: this.base,
      quote: this.quote,
      quantity: toDecimal(this.qty),
      ...(this.qty.isZero() ? {} : { avgEntry: toDecimal(this.avg.toDecimalPlaces(AVG_DP)) }),
      ...(mark === undefined ? {} : { mark: toDecimal(mark), notional: toDecimal(this.qty.abs().times(mark)) }),
      realizedPnl: toDecimal(this.realized.toDecimalPlaces(AVG_DP)),
      unrealizedPnl: toDecimal(this.unrealized(mark).toDecimalPlaces(AVG_DP)),
      fees: toDecimal(this.fees)
    }
  }
}

/** Decimal places of an average entry price and of the figures derived from it. */
const AVG_DP = 18

/** A consumer's portfolio from its positions: totals over all of them, and per quote asset. */
export const consumerPortfolio = (
  consumerId: string,
  positions: ReadonlyArray<Position>,
  openOrders: number
): ConsumerPortfolio => {
  const byQuote = new Map<string, { r: Dec; u: Dec; f: Dec }>()
  let r = ZERO
  let u = ZERO
  let f = ZERO
  for (const p of positions) {
    const t = byQuote.get(p.quote) ?? { r: ZERO, u: ZERO, f: ZERO }
    t.r = t.r.plus(p.realizedPnl)
    t.u = t.u.plus(p.unrealizedPnl)
    t.f = t.f.plus(p.fees)
    byQuote.set(p.quote, t)
    r = r.plus(p.realizedPnl)
    u = u.plus(p.unrealizedPnl)
    f = f.plus(p.fees)
  }
  const totals: Array<QuoteTotals> = [...byQuote].map(([quote, t]) => ({
    quote,
    realizedPnl: toDecimal(t.r),
    unrealizedPnl: toDecimal(t.u),
    fees: toDecimal(t.f)
  }))
  return {
    consumerId,
    positions,
    realizedPnl: toDecimal(r),
    unrealizedPnl: toDecimal(u),
    fees: toDecimal(f),
    byQuote: totals,
    openOrders
  }
}
