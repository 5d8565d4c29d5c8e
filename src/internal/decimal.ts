/**
 * Exact decimal arithmetic for prices and quantities.
 *
 * Prices and quantities travel as the exchange's own strings (`Decimal` in
 * `schema/Event.ts`). Arithmetic goes through a private decimal.js constructor
 * with enough precision that sums and products of exchange values are exact;
 * results are written back in plain (never exponential) notation. Where no
 * arithmetic happens, callers keep the original string.
 *
 * At every boundary a value is a `Decimal` first (plain notation, no sign,
 * no exponent, at most 20 integer and 18 fraction digits: see
 * `schema/Event.ts`), so nothing here ever expands "1e3000000" into three
 * million digits. Zero has a meaning of its own: a book delta level with
 * quantity zero removes the level; anywhere else (a price, a trade, a
 * snapshot level) a zero is refused (`PositiveDecimal`).
 */
import DecimalJs from "decimal.js"
import { Schema } from "effect"
import { Decimal } from "../../schema/Event.js"

/** A decimal.js constructor private to this codebase (the global one is never reconfigured). */
export const Dec = DecimalJs.clone({
  precision: 64,
  rounding: DecimalJs.ROUND_HALF_EVEN,
  toExpNeg: -64,
  toExpPos: 64
})
export type Dec = InstanceType<typeof Dec>

export const ZERO: Dec = new Dec(0)

/** Parses an exact decimal string (a validated `Decimal`: plain notation, bounded digits). */
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

const ZERO_TEXT = /^0(?:\.0+)?$/

/**
 * True when a validated `Decimal` is zero ("0", "0.000"). A string test: no
 * decimal.js value is built, so it is cheap enough for every level of a frame.
 */
export const isZeroDecimal = (s: string): boolean => ZERO_TEXT.test(s)

/** A `Decimal` greater than zero: prices, trade quantities, snapshot levels. */
export const PositiveDecimal = Decimal.pipe(
  Schema.filter((s) => !isZeroDecimal(s) || "must be greater than 0")
)

/** A book level on the wire, [price, quantity]. Zero is a removal, valid only in a delta. */
export type WireLevel = readonly [string, string, ...Array<unknown>]

/** The first level whose quantity is zero (a removal), if any: refused in a snapshot. */
export const zeroQuantityLevel = (levels: ReadonlyArray<WireLevel>): WireLevel | undefined => {
  for (const l of levels) if (isZeroDecimal(l[1])) return l
  return undefined
}
