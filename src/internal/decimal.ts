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
import { Decimal, DECIMAL_PATTERN } from "../../schema/Event.js"

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

/** Numeric comparison of two decimal strings: -1, 0 or 1. */
export const compare = (a: string, b: string): -1 | 0 | 1 => new Dec(a).comparedTo(b) as -1 | 0 | 1

/** True when the decimal string is zero ("0", "0.000", "-0"). */
export const isZero = (s: string): boolean => new Dec(s).isZero()

const ZERO_TEXT = /^0(?:\.0+)?$/

/**
 * True when a validated `Decimal` is zero ("0", "0.000"). A string test: no
 * decimal.js value is built, so it is cheap enough for every level of a frame.
 */
export const isZeroDecimal = (s: string): boolean => ZERO_TEXT.test(s)

/** Why `u` is not a `Decimal` (a plain string test, no Schema machinery), or undefined when it is one. */
const decimalProblem = (u: unknown): string | undefined =>
  typeof u !== "string"
    ? `expected a decimal string, got ${u === null ? "null" : Array.isArray(u) ? "an array" : typeof u}`
    : DECIMAL_PATTERN.test(u)
    ? undefined
    : `${JSON.stringify(u.length > 40 ? `${u.slice(0, 40)}...` : u)} is not a plain decimal (up to 20 integer and 18 fraction digits, no sign or exponent)`

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

/**
 * Why [price, quantity] is not a book level, or undefined: both `Decimal`s,
 * the price above zero, the quantity zero only where it removes a level.
 */
export const levelProblem = (price: unknown, qty: unknown, zeroQty: boolean): string | undefined => {
  const p = decimalProblem(price)
  if (p !== undefined) return `price: ${p}`
  const q = decimalProblem(qty)
  if (q !== undefined) return `quantity: ${q}`
  if (isZeroDecimal(price as string)) return "price: must be greater than 0"
  if (!zeroQty && isZeroDecimal(qty as string)) return "quantity: must be greater than 0"
  return undefined
}

/**
 * An array of book levels, checked by a plain loop: a frame at the venue's
 * size limit holds tens of thousands of levels, and a Schema per level costs
 * tens of times more than a string test (see BENCHMARKS.md, "Hostile
 * frames"). `check` says why one element is not a level.
 */
export const levelArray = <L>(identifier: string, check: (u: unknown) => string | undefined): Schema.Schema<ReadonlyArray<L>> => {
  const firstProblem = (u: ReadonlyArray<unknown>): string | undefined => {
    for (let i = 0; i < u.length; i++) {
      const p = check(u[i])
      if (p !== undefined) return `[${i}] ${p}`
    }
    return undefined
  }
  return Schema.declare((u): u is ReadonlyArray<L> => Array.isArray(u) && firstProblem(u) === undefined, {
    identifier,
    message: (issue) => {
      const u = issue.actual
      return Array.isArray(u) ? `${identifier}${firstProblem(u) ?? ""}` : `${identifier}: expected an array`
    }
  })
}

/**
 * Levels written as arrays: [price, quantity] (`extra`: followed by strings,
 * as OKX's [price, size, "0", orders]).
 */
export const tupleLevels = (identifier: string, options: { readonly zeroQty: boolean; readonly extra?: boolean }) =>
  levelArray<readonly [Decimal, Decimal, ...Array<string>]>(identifier, (u) => {
    if (!Array.isArray(u) || u.length < 2 || (options.extra !== true && u.length !== 2)) {
      return options.extra === true ? "expected [price, quantity, ...strings]" : "expected [price, quantity]"
    }
    for (let i = 2; i < u.length; i++) if (typeof u[i] !== "string") return `element ${i}: expected a string`
    return levelProblem(u[0], u[1], options.zeroQty)
  })
