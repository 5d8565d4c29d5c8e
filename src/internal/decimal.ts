/**
 * Exact decimal arithmetic for prices and quantities.
 *
 * Prices and quantities travel as the exchange's own strings (`Decimal` in
 * `schema/Event.ts`). Arithmetic goes through a private decimal.js constructor
 * with enough precision that sums and products of exchange values are exact;
 * results are written back in plain (never exponential) notation. Where no
 * arithmetic happens, callers keep the original string.
 */
import DecimalJs from "decimal.js"
import type { Decimal } from "../../schema/Event.js"

/** A decimal.js constructor private to this codebase (the global one is never reconfigured). */
export const Dec = DecimalJs.clone({
  precision: 64,
  rounding: DecimalJs.ROUND_HALF_EVEN,
  toExpNeg: -64,
  toExpPos: 64
})
export type Dec = InstanceType<typeof Dec>

export const ZERO: Dec = new Dec(0)

/** Parses an exact decimal string (a validated `Decimal`, or any numeric string). */
export const dec = (s: string): Dec => new Dec(s)

/** A decimal.js value as a canonical `Decimal` string: plain notation, no trailing zeros. */
export const toDecimal = (d: Dec): Decimal => d.toFixed() as Decimal

/** Sum of exact decimal strings, as a `Decimal`. */
export const sum = (values: Iterable<string>): Decimal => {
  let acc = ZERO
  for (const v of values) acc = acc.plus(v)
  return toDecimal(acc)
}

/** Numeric comparison of two decimal strings: -1, 0 or 1. */
export const compare = (a: string, b: string): -1 | 0 | 1 => new Dec(a).comparedTo(b) as -1 | 0 | 1

/** True when the decimal string is strictly greater than zero. */
export const isPositive = (s: string): boolean => new Dec(s).gt(0)

/** True when the decimal string is zero ("0", "0.000", "-0"). */
export const isZero = (s: string): boolean => new Dec(s).isZero()
