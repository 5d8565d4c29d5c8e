/**
 * Instrument rules per (venue, symbol): what a venue accepts of an order's
 * price and quantity, checked before the order reaches the book.
 *
 * - `tickSize`: the price is a whole multiple of it (else `InvalidPrice`);
 * - `lotSize`: the quantity is a whole multiple of it (else `InvalidQuantity`);
 * - `minQty`: the quantity is at least this (else `BelowMinimum`, quantity);
 * - `minNotional`: price x quantity is at least this (else `BelowMinimum`,
 *   notional); a market order's notional is taken at the venue's mark (its
 *   mid), so without a mark it is not checked here (the order is refused for
 *   want of market data anyway).
 * The first broken rule, in this order, is the answer.
 */
import { BelowMinimum, InvalidPrice, InvalidQuantity } from "../../schema/Rejection.js"
import { type Dec, dec, toDecimal } from "../internal/decimal.js"

/** The rules as configured: decimal strings, each optional. */
export interface InstrumentRulesConfig {
  readonly tickSize?: string | undefined
  readonly lotSize?: string | undefined
  readonly minQty?: string | undefined
  readonly minNotional?: string | undefined
}

/** The rules, parsed once. */
export interface InstrumentRules {
  readonly tickSize?: Dec
  readonly lotSize?: Dec
  readonly minQty?: Dec
  readonly minNotional?: Dec
}

export const parseRules = (c: InstrumentRulesConfig): InstrumentRules => ({
  ...(c.tickSize === undefined ? {} : { tickSize: dec(c.tickSize) }),
  ...(c.lotSize === undefined ? {} : { lotSize: dec(c.lotSize) }),
  ...(c.minQty === undefined ? {} : { minQty: dec(c.minQty) }),
  ...(c.minNotional === undefined ? {} : { minNotional: dec(c.minNotional) })
})

const multipleOf = (x: Dec, step: Dec): boolean => step.lte(0) || x.mod(step).isZero()

/** The first rule the order breaks, or undefined. `mark` prices a market order's notional. */
export const checkRules = (
  rules: InstrumentRules | undefined,
  order: {
    readonly clientOrderId: string
    readonly symbol: string
    readonly quantity: string
    readonly price?: string | undefined
  },
  mark: Dec | undefined
): InvalidPrice | InvalidQuantity | BelowMinimum | undefined => {
  if (rules === undefined) return undefined
  const { clientOrderId, symbol } = order
  const qty = dec(order.quantity)
  const price = order.price === undefined ? undefined : dec(order.price)
  if (price !== undefined && rules.tickSize !== undefined && !multipleOf(price, rules.tickSize)) {
    return new InvalidPrice({ clientOrderId, symbol, price: order.price!, rule: `tick size ${toDecimal(rules.tickSize)}` })
  }
  if (rules.lotSize !== undefined && !multipleOf(qty, rules.lotSize)) {
    return new InvalidQuantity({ clientOrderId, symbol, quantity: order.quantity, rule: `lot size ${toDecimal(rules.lotSize)}` })
  }
  if (rules.minQty !== undefined && qty.lt(rules.minQty)) {
    return new BelowMinimum({
      clientOrderId,
      symbol,
      measure: "quantity",
      value: order.quantity,
      minimum: toDecimal(rules.minQty)
    })
  }
  const at = price ?? mark
  if (rules.minNotional !== undefined && at !== undefined) {
    const notional = at.times(qty)
    if (notional.lt(rules.minNotional)) {
      return new BelowMinimum({
        clientOrderId,
        symbol,
        measure: "notional",
        value: toDecimal(notional),
        minimum: toDecimal(rules.minNotional)
      })
    }
  }
  return undefined
}
