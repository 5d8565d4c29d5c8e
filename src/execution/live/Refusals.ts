/**
 * What the venues' adapters share when they read a venue's numbers and put a
 * venue's refusal in our terms (the codes themselves are per venue).
 */
import DecimalJs from "decimal.js"
import { DECIMAL_PATTERN } from "../../../schema/Event.js"
import type { Side } from "../../../schema/Event.js"
import { InsufficientBalance } from "../../../schema/Rejection.js"

/**
 * A decimal as a venue writes it (a string or a JSON number) to our canonical
 * text; undefined when it is not a plain, finite, non-negative decimal.
 */
export const decimalText = (u: unknown): string | undefined => {
  if (typeof u !== "string" && typeof u !== "number") return undefined
  // plain notation within our bounds only (no sign, no exponent): "1e400" is not a quantity
  if (!DECIMAL_PATTERN.test(String(u))) return undefined
  try {
    const d = new DecimalJs(u)
    return d.isFinite() && !d.isNegative() ? d.toFixed() : undefined
  } catch {
    return undefined
  }
}

/** The order a refusal is about, as our command named it. */
export interface RefusedOrder {
  readonly venue: string
  readonly clientOrderId: string
  /** "BASE-QUOTE". */
  readonly symbol: string
  readonly side: Side
  readonly quantity: string
  readonly price?: string | undefined
}

/**
 * The venue found too little of the asset the order spends: the quote asset
 * for a buy (price times quantity when the price is known), the base asset
 * for a sell. What is available is not in the venue's answer.
 */
export const insufficientBalance = (o: RefusedOrder): InsufficientBalance => {
  const [base, quote] = o.symbol.split("-")
  return new InsufficientBalance({
    clientOrderId: o.clientOrderId,
    asset: (o.side === "buy" ? quote : base) ?? o.symbol,
    required: o.side === "buy" && o.price !== undefined ? new DecimalJs(o.price).mul(o.quantity).toFixed() : o.quantity,
    available: "unknown"
  })
}
