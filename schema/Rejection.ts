/**
 * Why a command was rejected: one tagged value per reason, on the wire and in
 * code alike.
 *
 * Each reason is a `Schema.TaggedError`: the Control Plane puts it in the
 * `ControlResult` it sends back (`rejection`, see `schema/Event.ts`), the wire
 * carries it as a tagged object (`{ _tag: "UnknownSymbol", symbol: ... }`),
 * and decoding it gives back an instance of the same class, which an SDK can
 * fail an Effect with as it is (`Effect.catchTag("InsufficientBalance", ...)`).
 * Nothing is ever turned into text and parsed back.
 *
 * Every field is bounded like the rest of the wire contract (`schema/Event.ts`)
 * and every reason carries the context an operator needs to act on it: the
 * order's ids, the symbol or venue, the figures that broke the rule. No reason
 * carries a credential.
 */
import { Schema } from "effect"
import { boundedArray, boundedString, MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_REASON_LENGTH } from "./Bounds.js"

const Id = (name: string) => boundedString(name, MAX_ID_LENGTH)
const Name = (name: string) => boundedString(name, MAX_NAME_LENGTH)
const Text = (name: string) => boundedString(name, MAX_REASON_LENGTH)
/**
 * A figure as the command or the venue wrote it (a decimal string, or the
 * offending text when it is not one): bounded, never parsed here.
 */
const Figure = (name: string) => boundedString(name, MAX_NAME_LENGTH)

/** Further rejections listed with the first one (`ControlResult.also`). */
export const MAX_ALSO = 16

// ---------------------------------------------------------------------------
// The command itself
// ---------------------------------------------------------------------------

/**
 * A command that does not decode (malformed JSON, an unknown command, a field
 * out of range): `reason` lists the problems by path (at most
 * `MAX_REASON_LENGTH / 2` characters, see `formatParseError`). The ids are the
 * raw command's when present and within bounds, else "unknown".
 */
export class InvalidCommand extends Schema.TaggedError<InvalidCommand>()("InvalidCommand", {
  commandId: Id("commandId"),
  command: Name("command"),
  consumerId: Id("consumerId"),
  reason: Text("reason")
}) {
  override get message(): string {
    return `invalid command ${this.command} ${this.commandId} of ${this.consumerId}: ${this.reason}`
  }
}

/** The command names a consumer that has no mailbox on the bus (a subscription before the consumer exists). */
export class UnknownConsumer extends Schema.TaggedError<UnknownConsumer>()("UnknownConsumer", {
  consumerId: Id("consumerId")
}) {
  override get message(): string {
    return `unknown consumer: ${this.consumerId}`
  }
}

// ---------------------------------------------------------------------------
// What a command names
// ---------------------------------------------------------------------------

/** A symbol the gateway does not carry, or (with `venue`) that this venue does not trade. */
export class UnknownSymbol extends Schema.TaggedError<UnknownSymbol>()("UnknownSymbol", {
  symbol: Name("symbol"),
  venue: Schema.optional(Name("venue"))
}) {
  override get message(): string {
    return this.venue === undefined
      ? `unknown symbol ${this.symbol}`
      : `unknown symbol ${this.symbol} on ${this.venue}`
  }
}

/** A venue (a provider) the gateway does not know; `symbol` when it was named for one (a route's feed). */
export class UnknownVenue extends Schema.TaggedError<UnknownVenue>()("UnknownVenue", {
  venue: Name("venue"),
  symbol: Schema.optional(Name("symbol"))
}) {
  override get message(): string {
    return this.symbol === undefined
      ? `unknown venue ${this.venue}`
      : `unknown venue ${this.venue} for ${this.symbol}`
  }
}

// ---------------------------------------------------------------------------
// An order's terms
// ---------------------------------------------------------------------------

/** A quantity the venue does not accept (`rule` says which rule it breaks: a lot size, a precision). */
export class InvalidQuantity extends Schema.TaggedError<InvalidQuantity>()("InvalidQuantity", {
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  quantity: Figure("quantity"),
  rule: Text("rule")
}) {
  override get message(): string {
    return `order ${this.clientOrderId} on ${this.symbol}: invalid quantity ${this.quantity} (${this.rule})`
  }
}

/** A price the venue does not accept (`rule`: a tick size, a band), or a missing or extra price. */
export class InvalidPrice extends Schema.TaggedError<InvalidPrice>()("InvalidPrice", {
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  price: Schema.optional(Figure("price")),
  rule: Text("rule")
}) {
  override get message(): string {
    return `order ${this.clientOrderId} on ${this.symbol}: invalid price ${this.price ?? "(none)"} (${this.rule})`
  }
}

/** An order smaller than the venue's minimum, by quantity or by notional. */
export class BelowMinimum extends Schema.TaggedError<BelowMinimum>()("BelowMinimum", {
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  measure: Schema.Literal("quantity", "notional"),
  value: Figure("value"),
  minimum: Figure("minimum")
}) {
  override get message(): string {
    return `order ${this.clientOrderId} on ${this.symbol}: ${this.measure} ${this.value} is below the minimum ${this.minimum}`
  }
}

/** The account cannot pay for the order. */
export class InsufficientBalance extends Schema.TaggedError<InsufficientBalance>()("InsufficientBalance", {
  clientOrderId: Id("clientOrderId"),
  asset: Name("asset"),
  required: Figure("required"),
  available: Figure("available")
}) {
  override get message(): string {
    return `order ${this.clientOrderId}: insufficient ${this.asset} (needs ${this.required}, has ${this.available})`
  }
}

/**
 * The order names no venue, and several venues quote its symbol: `venues`
 * lists them (an order says which market it trades on, as on a real exchange).
 */
export class VenueRequired extends Schema.TaggedError<VenueRequired>()("VenueRequired", {
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  venues: boundedArray(Name("venue"), "venues", 64)
}) {
  override get message(): string {
    return `order ${this.clientOrderId} on ${this.symbol} must name its venue (one of ${this.venues.join(", ")})`
  }
}

/**
 * A post-only limit order that would take liquidity on arrival: its `price`
 * crosses the venue's best opposite price `bestOpposite`.
 */
export class PostOnlyWouldTake extends Schema.TaggedError<PostOnlyWouldTake>()("PostOnlyWouldTake", {
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  venue: Name("venue"),
  side: Schema.Literal("buy", "sell"),
  price: Figure("price"),
  bestOpposite: Figure("bestOpposite")
}) {
  override get message(): string {
    return `post-only order ${this.clientOrderId} on ${this.symbol}@${this.venue} would take: ${this.side} at ${this.price} crosses ${this.bestOpposite}`
  }
}

/**
 * A reduce-only order that would increase (or flip) the consumer's position
 * on (venue, symbol): `position` is the signed position before the order.
 */
export class ReduceOnlyWouldIncrease extends Schema.TaggedError<ReduceOnlyWouldIncrease>()("ReduceOnlyWouldIncrease", {
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  venue: Name("venue"),
  side: Schema.Literal("buy", "sell"),
  quantity: Figure("quantity"),
  position: Figure("position")
}) {
  override get message(): string {
    return `reduce-only order ${this.clientOrderId} on ${this.symbol}@${this.venue} would increase the position ${this.position} (${this.side} ${this.quantity})`
  }
}

/** A risk limit the order would break: `limit` names it (e.g. "max_order_notional", "max_position"). */
export class RiskLimit extends Schema.TaggedError<RiskLimit>()("RiskLimit", {
  clientOrderId: Id("clientOrderId"),
  limit: Name("limit"),
  value: Figure("value"),
  maximum: Figure("maximum")
}) {
  override get message(): string {
    return `order ${this.clientOrderId}: ${this.limit} would be ${this.value} (at most ${this.maximum})`
  }
}

/**
 * The kill switch is engaged over the order's consumer: `scope` is "*" when
 * it is engaged for the whole gateway, else the consumer's id. No order or
 * amend of the scope reaches the venue until it is released.
 */
export class KillSwitchEngaged extends Schema.TaggedError<KillSwitchEngaged>()("KillSwitchEngaged", {
  clientOrderId: Id("clientOrderId"),
  consumerId: Id("consumerId"),
  scope: Id("scope")
}) {
  override get message(): string {
    return `order ${this.clientOrderId} of ${this.consumerId} refused: the kill switch is engaged for ${
      this.scope === "*" ? "the whole gateway" : this.scope
    }`
  }
}

/**
 * The `clientOrderId` is already in use with other terms: by another
 * consumer (`conflict: "other_consumer"`), or by this consumer's earlier
 * order whose terms differ (`"other_terms"`, `fields` names the terms that
 * differ). A resubmission with the same terms is not a rejection: it answers
 * with the existing order.
 */
export class DuplicateClientOrderId extends Schema.TaggedError<DuplicateClientOrderId>()("DuplicateClientOrderId", {
  clientOrderId: Id("clientOrderId"),
  conflict: Schema.Literal("other_consumer", "other_terms"),
  fields: boundedArray(Name("field"), "fields", 8),
  orderId: Schema.optional(Id("orderId"))
}) {
  override get message(): string {
    return this.conflict === "other_consumer"
      ? `clientOrderId ${this.clientOrderId} is already used by another consumer`
      : `clientOrderId ${this.clientOrderId} is already used by order ${this.orderId ?? "?"} with other ${
        this.fields.join(", ")
      }`
  }
}

// ---------------------------------------------------------------------------
// Orders that exist (or not)
// ---------------------------------------------------------------------------

/** No order of this consumer has this `clientOrderId`. */
export class OrderNotFound extends Schema.TaggedError<OrderNotFound>()("OrderNotFound", {
  clientOrderId: Id("clientOrderId"),
  consumerId: Id("consumerId")
}) {
  override get message(): string {
    return `order ${this.clientOrderId} of ${this.consumerId} not found`
  }
}

/** The order is already filled, canceled or rejected. */
export class OrderNotCancelable extends Schema.TaggedError<OrderNotCancelable>()("OrderNotCancelable", {
  clientOrderId: Id("clientOrderId"),
  consumerId: Id("consumerId"),
  orderId: Id("orderId"),
  /** The statuses an order cannot be canceled in. */
  status: Schema.Literal("filled", "canceled", "rejected")
}) {
  override get message(): string {
    return `order ${this.clientOrderId} of ${this.consumerId} cannot be canceled: it is ${this.status}`
  }
}

/**
 * The venue refused the order for a reason of its own: `code` is the venue's
 * (for the paper venue: "no_market_data", "stale_book"), `text` its words.
 * `orderId` when the venue had created the order (a `rejected` execution
 * report went out for it).
 */
export class VenueRejected extends Schema.TaggedError<VenueRejected>()("VenueRejected", {
  venue: Name("venue"),
  clientOrderId: Id("clientOrderId"),
  symbol: Name("symbol"),
  code: Name("code"),
  text: Text("text"),
  orderId: Schema.optional(Id("orderId"))
}) {
  override get message(): string {
    return `order ${this.clientOrderId} on ${this.symbol} rejected by ${this.venue} (${this.code}): ${this.text}`
  }
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

/**
 * A flip with nothing staged, or (with `expectedStagedId`) whose staged table
 * is not the one the flip expects.
 */
export class NothingStaged extends Schema.TaggedError<NothingStaged>()("NothingStaged", {
  expectedStagedId: Schema.optional(Id("expectedStagedId"))
}) {
  override get message(): string {
    return this.expectedStagedId === undefined
      ? "no routing table is staged"
      : `the staged routing table is not ${this.expectedStagedId}`
  }
}

// ---------------------------------------------------------------------------
// Older peers
// ---------------------------------------------------------------------------

/**
 * A rejection from a peer on the first version of the event contract, which
 * gave its reason as text only: the text, kept as it came. Never produced by
 * this gateway.
 */
export class RejectedAsText extends Schema.TaggedError<RejectedAsText>()("RejectedAsText", {
  text: Text("text")
}) {
  override get message(): string {
    return this.text
  }
}

// ---------------------------------------------------------------------------
// The union
// ---------------------------------------------------------------------------

/** Every reason a command can be rejected for. One check on `_tag` narrows it. */
export const Rejection = Schema.Union(
  InvalidCommand,
  UnknownConsumer,
  UnknownSymbol,
  UnknownVenue,
  InvalidQuantity,
  InvalidPrice,
  BelowMinimum,
  InsufficientBalance,
  VenueRequired,
  PostOnlyWouldTake,
  ReduceOnlyWouldIncrease,
  RiskLimit,
  KillSwitchEngaged,
  DuplicateClientOrderId,
  OrderNotFound,
  OrderNotCancelable,
  VenueRejected,
  NothingStaged,
  RejectedAsText
)
export type Rejection = typeof Rejection.Type
export type RejectionTag = Rejection["_tag"]

/** The reasons an order can be refused for at submission, by a venue. */
export type OrderRejection =
  | UnknownSymbol
  | UnknownVenue
  | InvalidQuantity
  | InvalidPrice
  | BelowMinimum
  | InsufficientBalance
  | VenueRequired
  | PostOnlyWouldTake
  | ReduceOnlyWouldIncrease
  | RiskLimit
  | KillSwitchEngaged
  | DuplicateClientOrderId
  | VenueRejected

/** The tags of `OrderRejection`. */
export const ORDER_REJECTION_TAGS: ReadonlySet<RejectionTag> = new Set<OrderRejection["_tag"]>([
  "UnknownSymbol",
  "UnknownVenue",
  "InvalidQuantity",
  "InvalidPrice",
  "BelowMinimum",
  "InsufficientBalance",
  "VenueRequired",
  "PostOnlyWouldTake",
  "ReduceOnlyWouldIncrease",
  "RiskLimit",
  "KillSwitchEngaged",
  "DuplicateClientOrderId",
  "VenueRejected"
])

/** Every tag of the union, in its order. */
export const REJECTION_TAGS: ReadonlyArray<RejectionTag> = Rejection.members.map((m) => m._tag)

const isRejectionValue = Schema.is(Rejection)

/** True for a value of the union (an instance of one of its classes). */
export const isRejection = (u: unknown): u is Rejection => isRejectionValue(u)

/** Compiled once: a rejection <-> its wire form. */
export const encodeRejection = Schema.encodeSync(Rejection)
export const decodeRejection = Schema.decodeUnknownEither(Rejection)
