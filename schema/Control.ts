/**
 * Canonical, versioned wire contract for control commands.
 *
 * A consumer sends commands on the Control Bus inside a `ControlEnvelope`
 * (`{ schemaVersion: 1, command }`). Every command carries a non-empty
 * `commandId` (echoed in its ControlAck and ControlResult) and the issuing
 * `consumerId`.
 *
 * Two layers of validation:
 * - structural, in the schemas below (missing fields, a bad window, a
 *   non-positive quantity, a limit order without a price, ...): a decode
 *   failure, turned into an `InvalidCommand` by `invalidCommandFromParseError`;
 * - semantic, in `validateCommand`, against what the gateway carries (unknown
 *   symbol, unknown provider).
 */
import { Array as Arr, Either, ParseResult, Schema } from "effect"
import {
  boundedArray,
  Decimal,
  MarketKind,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_PROVIDERS,
  MAX_REASON_LENGTH,
  OrderType,
  Side
} from "./Event.js"
import { jsonNestedDeeperThan } from "./Bounds.js"
import { InvalidCommand, MAX_ALSO, type Rejection, UnknownSymbol, UnknownVenue } from "./Rejection.js"
import DecimalJs from "decimal.js"

/** The version of the control contract. Bumped on any incompatible change. */
export const CONTROL_SCHEMA_VERSION = 1 as const

/** The most a merge window may last. */
export const MAX_WINDOW_MS = 60_000

/**
 * The largest command accepted, as JSON text (UTF-16 code units; a routing
 * table of a few hundred symbols fits). Larger input is rejected before it
 * is parsed.
 */
export const MAX_COMMAND_LENGTH = 64 * 1024
/** The deepest nesting of arrays and objects accepted in a command's JSON (a command needs 7). */
export const MAX_COMMAND_DEPTH = 16
/** Routes in one StageRouting. */
export const MAX_ROUTES = 512

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

/** A short, bounded rendering of a value for an error message (never the whole of a hostile input). */
export const show = (u: unknown, max = 64): string => {
  let text: string
  try {
    text = typeof u === "string" ? JSON.stringify(u.length > max ? u.slice(0, max) : u) : String(JSON.stringify(u))
  } catch {
    text = Array.isArray(u) ? "an array" : typeof u
  }
  return text.length > max ? `${text.slice(0, max)}...` : text
}

/** A non-empty string of at most `max` characters (ids: `MAX_ID_LENGTH`, names: `MAX_NAME_LENGTH`). */
const nonEmpty = (name: string, max: number = MAX_ID_LENGTH) =>
  Schema.String.pipe(
    Schema.filter((s) => s.length > 0 || `${name} must be a non-empty string`),
    Schema.filter((s) => s.length <= max || `${name} must be at most ${max} characters (got ${s.length})`)
  )

const CommandId = nonEmpty("commandId")
const ConsumerId = nonEmpty("consumerId")
const ClientOrderId = nonEmpty("clientOrderId")
const ProviderId = nonEmpty("provider", MAX_NAME_LENGTH)

/** A symbol the gateway carries, e.g. "BTC-USDT". */
export const SymbolId = nonEmpty("symbol", MAX_NAME_LENGTH)

const base = { commandId: CommandId, consumerId: ConsumerId }

/** A literal union with one clear message instead of one issue per literal. */
const oneOf = <L extends ReadonlyArray<string>>(name: string, literals: L) =>
  Schema.Literal(...(literals as unknown as readonly [L[number], ...Array<L[number]>])).annotations({
    message: (issue) => ({
      message: `${name} must be one of ${literals.join(", ")} (got ${show(issue.actual)})`,
      override: true
    })
  })

const distinct = (name: string) => (xs: ReadonlyArray<string>) => {
  const seen = new Set<string>()
  for (const x of xs) {
    if (seen.has(x)) return `${name} must be distinct (duplicate ${JSON.stringify(x)})`
    seen.add(x)
  }
  return true
}

/** The kinds a window can merge. */
export const MergeKind = oneOf("kind", ["ticker", "book_snapshot", "trade"] as const)
export type MergeKind = typeof MergeKind.Type

/**
 * How many of a merge's providers a window needs to emit a merged event:
 * `all` of them, a `quorum` (at least `quorum` of them, a majority by
 * default) or `any` one. A window short of its policy is suppressed; one that
 * meets it with venues missing names them in the merged payload's `missing`.
 * See `src/internal/mergeWindow.ts`.
 */
export const MergePolicy = oneOf("policy", ["all", "quorum", "any"] as const)
export type MergePolicy = typeof MergePolicy.Type
/** A merged quote keeps flowing while any venue quotes, the missing ones named (README, "Merges"). */
export const DEFAULT_MERGE_POLICY: MergePolicy = "any"

const Quorum = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 1) || `quorum must be a positive integer (got ${n})`)
)

/** `quorum` goes with policy `quorum` only, and at most the number of providers. */
export const mergePolicyFits = (m: {
  readonly providers: ReadonlyArray<string>
  readonly policy?: MergePolicy | undefined
  readonly quorum?: number | undefined
}) =>
  m.quorum === undefined ||
  (m.policy !== "quorum"
    ? `quorum is only used with policy "quorum" (policy is ${m.policy ?? DEFAULT_MERGE_POLICY})`
    : m.quorum <= m.providers.length ||
      `quorum (${m.quorum}) must be at most the number of providers (${m.providers.length})`)

/**
 * The policy fields of a merge, both optional (absent: `DEFAULT_MERGE_POLICY`, a majority quorum; in a
 * `SubscribeMerged`, absent keeps the policy of the merge already running for the key).
 */
export const mergePolicyFields = {
  policy: Schema.optionalWith(MergePolicy, { exact: true }),
  quorum: Schema.optionalWith(Quorum, { exact: true })
}

/** A non-empty array of at most `max` items, with a clear message when it is empty or too long. */
const nonEmptyArray = <S extends Schema.Schema.Any>(item: S, name: string, max: number) =>
  boundedArray(item, name, max).pipe(
    Schema.filter(Arr.isNonEmptyReadonlyArray, { message: () => `${name} must not be empty` })
  )

const MarketKinds = nonEmptyArray(oneOf("kind", MarketKind.literals), "kinds", MarketKind.literals.length).pipe(
  Schema.filter(distinct("kinds"))
)

/** The providers of a merge: at least two, distinct. */
const MergeProviders = nonEmptyArray(ProviderId, "providers", MAX_PROVIDERS).pipe(
  Schema.filter((ps) => ps.length >= 2 || `providers must name at least 2 providers to merge (got ${ps.length})`),
  Schema.filter(distinct("providers"))
)

const WindowMs = Schema.Number.pipe(
  Schema.filter((n) =>
    (Number.isInteger(n) && n > 0 && n <= MAX_WINDOW_MS) ||
    `windowMs must be an integer in 1..${MAX_WINDOW_MS} (got ${n})`
  )
)

const MaxFragments = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n > 0) || `maxFragments must be a positive integer (got ${n})`)
)

/** A merge needs room for one fragment per provider, or a window would always close incomplete. */
const fragmentsFitProviders = (m: { readonly providers: ReadonlyArray<string>; readonly maxFragments: number }) =>
  m.maxFragments >= m.providers.length ||
  `maxFragments (${m.maxFragments}) must be at least the number of providers (${m.providers.length})`

/** Runs after `Decimal`'s pattern check, so the string always parses. */
const PositiveDecimal = (name: string) =>
  Decimal.pipe(Schema.filter((s) => new DecimalJs(s).gt(0) || `${name} must be greater than 0 (got ${s})`))

// ---------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------

/** Subscribe the consumer to market data of one symbol. */
export class Subscribe extends Schema.TaggedClass<Subscribe>()("Subscribe", {
  ...base,
  symbol: SymbolId,
  kinds: MarketKinds
}) {}

/** Remove the consumer's subscription to these kinds of one symbol. */
export class Unsubscribe extends Schema.TaggedClass<Unsubscribe>()("Unsubscribe", {
  ...base,
  symbol: SymbolId,
  kinds: MarketKinds
}) {}

/**
 * Subscribe the consumer to merged events of (symbol, kind) over a provider
 * set: see `src/internal/mergeWindow.ts` for the window semantics.
 */
export class SubscribeMerged extends Schema.TaggedClass<SubscribeMerged>()(
  "SubscribeMerged",
  Schema.Struct({
    ...base,
    symbol: SymbolId,
    kind: MergeKind,
    providers: MergeProviders,
    windowMs: WindowMs,
    maxFragments: MaxFragments,
    ...mergePolicyFields
  }).pipe(Schema.filter(fragmentsFitProviders), Schema.filter(mergePolicyFits))
) {}

// ---------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------

/**
 * How long a limit order works: `GTC` (good till canceled: rests until filled
 * or canceled), `IOC` (immediate or cancel: fills what crosses on arrival, the
 * rest is canceled), `FOK` (fill or kill: fills whole on arrival, or not at
 * all and is canceled). A market order is IOC by nature.
 */
export const TimeInForce = oneOf("timeInForce", ["GTC", "IOC", "FOK"] as const)
export type TimeInForce = typeof TimeInForce.Type

/**
 * Submit an order to the execution venue. Idempotent by `clientOrderId`: a
 * resubmission returns the existing order and never fills twice. A limit order
 * carries a price; a market order does not.
 *
 * The fields after `price` are optional on the wire, so a sender of the first
 * version of the contract stays valid:
 * - `venue`: the provider whose market the order trades on ("sim-b",
 *   "binance"). Required when several venues quote the symbol (else
 *   `VenueRequired`); a venue that does not carry the symbol is `UnknownVenue`.
 * - `timeInForce`: limit orders, GTC by default; a market order may only say IOC.
 * - `postOnly`: a GTC limit order that would take liquidity on arrival is
 *   refused (`PostOnlyWouldTake`) instead of filling.
 * - `reduceOnly`: an order that would increase or flip the consumer's position
 *   on (venue, symbol) is refused (`ReduceOnlyWouldIncrease`).
 */
export class SubmitOrder extends Schema.TaggedClass<SubmitOrder>()(
  "SubmitOrder",
  Schema.Struct({
    ...base,
    clientOrderId: ClientOrderId,
    symbol: SymbolId,
    side: oneOf("side", Side.literals),
    orderType: oneOf("orderType", OrderType.literals),
    quantity: PositiveDecimal("quantity"),
    price: Schema.optionalWith(PositiveDecimal("price"), { exact: true }),
    venue: Schema.optionalWith(ProviderId, { exact: true }),
    timeInForce: Schema.optionalWith(TimeInForce, { exact: true }),
    postOnly: Schema.optionalWith(Schema.Boolean, { exact: true }),
    reduceOnly: Schema.optionalWith(Schema.Boolean, { exact: true })
  }).pipe(
    Schema.filter((o) => {
      if (o.orderType === "limit" && o.price === undefined) return "a limit order requires a price"
      if (o.orderType === "market" && o.price !== undefined) return "a market order must not carry a price"
      if (o.orderType === "market" && o.timeInForce !== undefined && o.timeInForce !== "IOC") {
        return `a market order is immediate-or-cancel: timeInForce ${o.timeInForce} is not allowed`
      }
      if (o.postOnly === true && o.orderType !== "limit") return "postOnly goes with limit orders only"
      if (o.postOnly === true && o.timeInForce !== undefined && o.timeInForce !== "GTC") {
        return `postOnly goes with timeInForce GTC only (got ${o.timeInForce})`
      }
      return true
    })
  )
) {}

/** The time in force an order works with: its own, else GTC for a limit order, IOC for a market order. */
export const timeInForceOf = (o: { readonly orderType: OrderType; readonly timeInForce?: TimeInForce | undefined }): TimeInForce =>
  o.timeInForce ?? (o.orderType === "market" ? "IOC" : "GTC")

/**
 * Amend a resting limit order of this consumer: its `price`, its `quantity`
 * (the new total quantity, which must stay above what already filled), or
 * both (at least one). The order loses its time priority (it goes to the back
 * of its price level's queue) when its price changes or its quantity rises; a
 * quantity lowered at the same price keeps its place. Answered with the
 * updated order; an execution report with a new `reportSeq` says so (its
 * status stays `new` or `partially_filled`). An amended price that crosses
 * the market fills at once, as a new order would.
 */
export class AmendOrder extends Schema.TaggedClass<AmendOrder>()(
  "AmendOrder",
  Schema.Struct({
    ...base,
    clientOrderId: ClientOrderId,
    price: Schema.optionalWith(PositiveDecimal("price"), { exact: true }),
    quantity: Schema.optionalWith(PositiveDecimal("quantity"), { exact: true })
  }).pipe(
    Schema.filter((a) => a.price !== undefined || a.quantity !== undefined || "an amend changes the price, the quantity or both")
  )
) {}

/** Cancel a working order of this consumer. */
export class CancelOrder extends Schema.TaggedClass<CancelOrder>()("CancelOrder", {
  ...base,
  clientOrderId: ClientOrderId
}) {}

/** Ask for the current state of an order of this consumer. */
export class QueryOrder extends Schema.TaggedClass<QueryOrder>()("QueryOrder", {
  ...base,
  clientOrderId: ClientOrderId
}) {}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

/** A merge to run for a route's symbol: the same parameters as `SubscribeMerged`. */
export class MergeSpec extends Schema.Class<MergeSpec>("MergeSpec")(
  Schema.Struct({
    kind: MergeKind,
    providers: MergeProviders,
    windowMs: WindowMs,
    maxFragments: MaxFragments,
    ...mergePolicyFields
  }).pipe(Schema.filter(fragmentsFitProviders), Schema.filter(mergePolicyFits))
) {}

/**
 * One symbol's routing: the providers that feed it, and the merges that run
 * over some of them (a merge's providers are a subset of the route's, and at
 * most one merge per kind).
 */
export class SymbolRoute extends Schema.Class<SymbolRoute>("SymbolRoute")(
  Schema.Struct({
    symbol: SymbolId,
    providers: nonEmptyArray(ProviderId, "providers", MAX_PROVIDERS).pipe(Schema.filter(distinct("providers"))),
    merges: Schema.optionalWith(boundedArray(MergeSpec, "merges", MergeKind.literals.length), { default: () => [] })
  }).pipe(
    Schema.filter((r) => {
      const kinds = distinct("merge kinds")(r.merges.map((m) => m.kind))
      if (kinds !== true) return `route ${r.symbol}: ${kinds}`
      const feeds = new Set(r.providers)
      for (const m of r.merges) {
        const outside = m.providers.filter((p) => !feeds.has(p))
        if (outside.length > 0) {
          return `route ${r.symbol}: the ${m.kind} merge uses providers that do not feed the symbol: ${
            outside.join(", ")
          }`
        }
      }
      return true
    })
  )
) {}

/**
 * Stage a new routing table. The table is complete: after the flip, exactly
 * these symbols are routed, from exactly these providers, with exactly these
 * merges. Staging again replaces what was staged; nothing changes until the
 * flip. The staged table is identified by this command's `commandId`.
 */
export class StageRouting extends Schema.TaggedClass<StageRouting>()("StageRouting", {
  ...base,
  routes: nonEmptyArray(SymbolRoute, "routes", MAX_ROUTES).pipe(
    Schema.filter((rs) => distinct("route symbols")(rs.map((r) => r.symbol)))
  )
}) {}

/**
 * Atomically switch to the staged routing table, bumping the routing version.
 * With `expectedStagedId`, the flip is rejected unless the staged table is the
 * one staged by the `StageRouting` command with that `commandId`.
 */
export class FlipRouting extends Schema.TaggedClass<FlipRouting>()("FlipRouting", {
  ...base,
  expectedStagedId: Schema.optionalWith(nonEmpty("expectedStagedId"), { exact: true })
}) {}

// ---------------------------------------------------------------------------
// Kill switch
// ---------------------------------------------------------------------------

/** The kill switch's scope for the whole gateway. */
export const KILL_SWITCH_ALL = "*"

/**
 * Engage (`engage: true`) or release (`false`) the kill switch. Engaging
 * cancels every open order in scope and refuses new orders and amends of it
 * (`KillSwitchEngaged`) until it is released; releasing a scope leaves the
 * others as they are. `target`: absent, the sender's own orders; `"*"`, the
 * whole gateway; a consumer id, that consumer's. A scope other than one's own
 * is an operator action: over NATS it is taken only from an operator subject
 * (`src/nats/Commands.ts`); in memory any local consumer may send it. Answered
 * with `{ engaged, target, canceled, state }` (`execution/Risk.ts`).
 */
export class KillSwitch extends Schema.TaggedClass<KillSwitch>()("KillSwitch", {
  ...base,
  engage: Schema.Boolean,
  target: Schema.optionalWith(nonEmpty("target"), { exact: true })
}) {}

/** The scope a kill switch command acts on: its target, else its sender. */
export const killSwitchTarget = (cmd: KillSwitch): string => cmd.target ?? cmd.consumerId

/** True when the command acts beyond its sender's own orders: an operator's action. */
export const isOperatorKillSwitch = (cmd: KillSwitch): boolean => killSwitchTarget(cmd) !== cmd.consumerId

// ---------------------------------------------------------------------------
// Union, envelope, decoders
// ---------------------------------------------------------------------------

export const ControlCommand = Schema.Union(
  Subscribe,
  Unsubscribe,
  SubscribeMerged,
  SubmitOrder,
  AmendOrder,
  CancelOrder,
  QueryOrder,
  StageRouting,
  FlipRouting,
  KillSwitch
)
export type ControlCommand = typeof ControlCommand.Type
export type ControlCommandTag = ControlCommand["_tag"]

/** What crosses the wire: a command with the contract version. */
export const ControlEnvelope = Schema.Struct({
  schemaVersion: Schema.Literal(CONTROL_SCHEMA_VERSION).annotations({
    message: (issue) => ({
      message: `unsupported schemaVersion ${show(issue.actual)} (expected ${CONTROL_SCHEMA_VERSION})`,
      override: true
    })
  }),
  command: ControlCommand
}).annotations({
  message: (issue) => ({
    message: `expected a control envelope { schemaVersion, command } (got ${show(issue.actual)})`,
    override: false
  })
})
export type ControlEnvelope = typeof ControlEnvelope.Type

const jsonProblem = (issue: ParseResult.ParseIssue): string => {
  const inner = issue._tag === "Transformation" ? issue.issue : issue
  return inner._tag === "Type" && inner.message !== undefined ? inner.message : "not a JSON text"
}

/** JSON text, with a clear message when it is not JSON. */
const JsonText = Schema.parseJson().annotations({
  message: (issue) => ({
    message: `malformed JSON: ${jsonProblem(issue)}`,
    override: true
  })
})

/**
 * Why a command's JSON text is refused before it is parsed: longer than
 * `MAX_COMMAND_LENGTH`, or nested deeper than `MAX_COMMAND_DEPTH` (found by a
 * scan without recursion, so no input can overflow the stack here or later,
 * when its error is formatted).
 */
export const commandTextProblem = (text: string): string | undefined =>
  jsonTextProblem(text, "command", MAX_COMMAND_LENGTH, MAX_COMMAND_DEPTH)

/**
 * Why JSON text is refused before it is parsed: longer than `maxLength`, or
 * nested deeper than `maxDepth` (a scan without recursion). Any JSON boundary
 * can use it: commands here, event frames in `src/nats/internal/frames.ts`.
 */
export const jsonTextProblem = (
  text: string,
  what: string,
  maxLength: number,
  maxDepth: number
): string | undefined => {
  if (text.length > maxLength) {
    return `${what} too large: ${text.length} characters (at most ${maxLength})`
  }
  return jsonNestedDeeperThan(text, maxDepth) ? `${what} nested deeper than ${maxDepth} levels` : undefined
}

/** The same bounds for an already parsed value: depth, and nodes visited (iteratively). */
export const commandValueProblem = (value: unknown): string | undefined => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  let nodes = 0
  while (stack.length > 0) {
    const [u, depth] = stack.pop()!
    if (typeof u === "string" && u.length > MAX_COMMAND_LENGTH) {
      return `command too large: a string of ${u.length} characters (at most ${MAX_COMMAND_LENGTH})`
    }
    if (typeof u !== "object" || u === null) continue
    if (depth > MAX_COMMAND_DEPTH) return `command nested deeper than ${MAX_COMMAND_DEPTH} levels`
    const children = Array.isArray(u) ? u : Object.values(u)
    nodes += children.length
    if (nodes > MAX_COMMAND_LENGTH) return `command too large: more than ${MAX_COMMAND_LENGTH} values`
    for (const child of children) stack.push([child, depth + 1])
  }
  return undefined
}

/** JSON text within the size and depth bounds. */
const BoundedText = Schema.String.pipe(Schema.filter((text) => commandTextProblem(text) ?? true))

const ControlEnvelopeJson = Schema.compose(BoundedText, Schema.compose(JsonText, ControlEnvelope))

/** Every problem of an input is reported, not just the first. */
const allErrors = { errors: "all", onExcessProperty: "ignore" } as const

/** Compiled once: JSON text -> envelope. */
export const decodeControlJson = Schema.decodeUnknownEither(ControlEnvelopeJson, allErrors)
/** Compiled once: envelope -> JSON text. */
export const encodeControlJson = Schema.encodeEither(ControlEnvelopeJson)
/** Compiled once: an already parsed value -> envelope. */
export const decodeControl = Schema.decodeUnknownEither(ControlEnvelope, allErrors)
/** Compiled once: a bare command (no envelope) -> command. */
export const decodeCommand = Schema.decodeUnknownEither(ControlCommand, allErrors)
/** Compiled once: command -> its encoded (plain object) form. */
export const encodeCommand = Schema.encodeEither(ControlCommand)

/** Wraps a command in the current envelope. */
export const envelope = (command: ControlCommand): ControlEnvelope => ({
  schemaVersion: CONTROL_SCHEMA_VERSION,
  command
})

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

/** Issues listed in a formatted parse error; the rest are counted. */
const MAX_ISSUES = 16

/**
 * A parse error as one line: `path: message; path: message`, at most
 * `MAX_ISSUES` issues and `MAX_REASON_LENGTH / 2` characters, so that it fits
 * in a rejection's reason whatever the input.
 */
export const formatParseError = (error: ParseResult.ParseError): string =>
  joinProblems(
    ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
      issue.path.length === 0 ? issue.message : `${issue.path.map((p) => String(p).slice(0, 32)).join(".")}: ${issue.message}`
    )
  )

/** Problems as one line: at most `MAX_ISSUES` listed, the rest counted, at most `MAX_REASON_LENGTH / 2` characters. */
const joinProblems = (problems: ReadonlyArray<string>): string => {
  const more = problems.length > MAX_ISSUES ? `; and ${problems.length - MAX_ISSUES} more` : ""
  const text = problems.slice(0, MAX_ISSUES).join("; ") + more
  const max = MAX_REASON_LENGTH / 2
  return text.length > max ? `${text.slice(0, max)}...` : text
}

const field = (o: Record<string, unknown>, key: string, max: number): string | undefined => {
  const v = o[key]
  return typeof v === "string" && v.length > 0 && v.length <= max ? v : undefined
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The raw command inside raw input: JSON text or a parsed value, an envelope or a bare command. */
const rawCommand = (raw: unknown): Record<string, unknown> | undefined => {
  let value = raw
  if (typeof raw === "string") {
    if (commandTextProblem(raw) !== undefined) return undefined
    try {
      value = JSON.parse(raw)
    } catch {
      return undefined
    }
  }
  if (!isRecord(value) || commandValueProblem(value) !== undefined) return undefined
  return isRecord(value["command"]) ? value["command"] : value
}

/**
 * The `InvalidCommand` for raw input that failed to decode: the reason is the
 * formatted parse issue; the command id, command name and consumer id are
 * taken from the raw command when present and within their bounds, else
 * "unknown" (input over the size or depth bounds is not looked into).
 */
export const invalidCommandFromParseError = (raw: unknown, error: ParseResult.ParseError): InvalidCommand => {
  const cmd = rawCommand(raw) ?? {}
  return new InvalidCommand({
    commandId: field(cmd, "commandId", MAX_ID_LENGTH) ?? "unknown",
    command: field(cmd, "_tag", MAX_NAME_LENGTH) ?? "unknown",
    consumerId: field(cmd, "consumerId", MAX_ID_LENGTH) ?? "unknown",
    reason: formatParseError(error)
  })
}

/** Decodes an envelope from JSON text; a failure is the typed rejection. */
export const decodeControlJsonCommand = (text: string): Either.Either<ControlCommand, InvalidCommand> =>
  Either.match(decodeControlJson(text), {
    onLeft: (error) => Either.left(invalidCommandFromParseError(text, error)),
    onRight: (env) => Either.right(env.command)
  })

/** Decodes an envelope from a parsed value; a failure is the typed rejection. */
export const decodeControlCommand = (raw: unknown): Either.Either<ControlCommand, InvalidCommand> => {
  const problem = commandValueProblem(raw)
  if (problem !== undefined) {
    return Either.left(new InvalidCommand({ commandId: "unknown", command: "unknown", consumerId: "unknown", reason: problem }))
  }
  return Either.match(decodeControl(raw), {
    onLeft: (error) => Either.left(invalidCommandFromParseError(raw, error)),
    onRight: (env) => Either.right(env.command)
  })
}

/** What the gateway carries, for the semantic checks. */
export interface ValidationContext {
  readonly knownSymbols: ReadonlySet<string>
  readonly knownProviders: ReadonlySet<string>
}

/**
 * A command refused with its reasons as tagged values: the first one, and the
 * others (at most `MAX_ALSO`; `dropped` counts any beyond).
 */
export interface CommandRejected {
  readonly commandId: string
  readonly command: string
  readonly consumerId: string
  readonly rejection: Rejection
  readonly also: ReadonlyArray<Rejection>
  readonly dropped: number
}

/** The rejection of a command that did not decode: its one reason. */
export const rejectedAsInvalid = (invalid: InvalidCommand): CommandRejected => ({
  commandId: invalid.commandId,
  command: invalid.command,
  consumerId: invalid.consumerId,
  rejection: invalid,
  also: [],
  dropped: 0
})

/**
 * The semantic checks a schema cannot make: every symbol and every provider a
 * command names must be known to the gateway (`UnknownSymbol`,
 * `UnknownVenue`). All problems are reported, not just the first.
 */
export const validateCommand = (
  cmd: ControlCommand,
  ctx: ValidationContext
): Either.Either<ControlCommand, CommandRejected> => {
  const problems: Array<Rejection> = []
  const symbol = (s: string) => {
    if (!ctx.knownSymbols.has(s)) problems.push(new UnknownSymbol({ symbol: s }))
  }
  const providers = (ps: ReadonlyArray<string>, route?: string) => {
    for (const p of ps) {
      if (!ctx.knownProviders.has(p)) {
        problems.push(new UnknownVenue({ venue: p, ...(route === undefined ? {} : { symbol: route }) }))
      }
    }
  }
  switch (cmd._tag) {
    case "Subscribe":
    case "Unsubscribe":
      symbol(cmd.symbol)
      break
    case "SubmitOrder":
      symbol(cmd.symbol)
      if (cmd.venue !== undefined) providers([cmd.venue], cmd.symbol)
      break
    case "SubscribeMerged":
      symbol(cmd.symbol)
      providers(cmd.providers)
      break
    case "StageRouting":
      for (const r of cmd.routes) {
        symbol(r.symbol)
        providers(r.providers, r.symbol)
      }
      break
    case "AmendOrder":
    case "CancelOrder":
    case "QueryOrder":
    case "FlipRouting":
    case "KillSwitch":
      break
  }
  const [first, ...rest] = problems
  return first === undefined ? Either.right(cmd) : Either.left({
    commandId: cmd.commandId,
    command: cmd._tag,
    consumerId: cmd.consumerId,
    rejection: first,
    also: rest.slice(0, MAX_ALSO),
    dropped: Math.max(0, rest.length - MAX_ALSO)
  })
}
