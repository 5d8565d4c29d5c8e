import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import {
  AmendOrder,
  CancelOrder,
  CONTROL_SCHEMA_VERSION,
  ControlCommand,
  decodeCommand,
  decodeControl,
  decodeControlCommand,
  decodeControlJson,
  decodeControlJsonCommand,
  encodeControlJson,
  envelope,
  FlipRouting,
  invalidCommandFromParseError,
  MergeSpec,
  QueryOrder,
  StageRouting,
  SubmitOrder,
  Subscribe,
  SubscribeMerged,
  rejectedAsInvalid,
  SymbolRoute,
  Unsubscribe,
  validateCommand
} from "../schema/Control.js"
import type { CommandRejected } from "../schema/Control.js"
import { encodeRejection, type Rejection, UnknownSymbol, UnknownVenue } from "../schema/Rejection.js"
import { InvalidCommand } from "../schema/Errors.js"
import { decimal, MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_REASON_LENGTH } from "../schema/Event.js"
import { commandMsgId } from "../src/nats/Commands.js"

const ctx = {
  knownSymbols: new Set(["BTC-USDT", "ETH-USDT"]),
  knownProviders: new Set(["binance", "kraken", "coinbase"])
}

const ids = { commandId: "cmd-1", consumerId: "strat-a" }

const good: ReadonlyArray<ControlCommand> = [
  Subscribe.make({ ...ids, symbol: "BTC-USDT", kinds: ["ticker", "trade"] }),
  Unsubscribe.make({ ...ids, symbol: "BTC-USDT", kinds: ["trade"] }),
  SubscribeMerged.make({
    ...ids,
    symbol: "BTC-USDT",
    kind: "book_snapshot",
    providers: ["binance", "kraken"],
    windowMs: 250,
    maxFragments: 4
  }),
  SubmitOrder.make({
    ...ids,
    clientOrderId: "o-1",
    symbol: "BTC-USDT",
    side: "buy",
    orderType: "limit",
    quantity: decimal("0.010"),
    price: decimal("64000.50")
  }),
  SubmitOrder.make({
    ...ids,
    clientOrderId: "o-2",
    symbol: "ETH-USDT",
    side: "sell",
    orderType: "market",
    quantity: decimal("0.001")
  }),
  SubmitOrder.make({
    ...ids,
    clientOrderId: "o-3",
    symbol: "BTC-USDT",
    side: "sell",
    orderType: "limit",
    quantity: decimal("0.5"),
    price: decimal("65000"),
    venue: "kraken",
    timeInForce: "GTC",
    postOnly: true,
    reduceOnly: true
  }),
  SubmitOrder.make({
    ...ids,
    clientOrderId: "o-4",
    symbol: "BTC-USDT",
    side: "buy",
    orderType: "limit",
    quantity: decimal("1"),
    price: decimal("64000"),
    venue: "binance",
    timeInForce: "FOK"
  }),
  SubmitOrder.make({
    ...ids,
    clientOrderId: "o-5",
    symbol: "BTC-USDT",
    side: "buy",
    orderType: "market",
    quantity: decimal("1"),
    timeInForce: "IOC"
  }),
  AmendOrder.make({ ...ids, clientOrderId: "o-1", price: decimal("64001") }),
  AmendOrder.make({ ...ids, clientOrderId: "o-1", quantity: decimal("0.02") }),
  AmendOrder.make({ ...ids, clientOrderId: "o-1", price: decimal("64001"), quantity: decimal("0.02") }),
  CancelOrder.make({ ...ids, clientOrderId: "o-1" }),
  QueryOrder.make({ ...ids, clientOrderId: "o-1" }),
  StageRouting.make({
    ...ids,
    routes: [
      SymbolRoute.make({
        symbol: "BTC-USDT",
        providers: ["binance", "kraken", "coinbase"],
        merges: [MergeSpec.make({ kind: "ticker", providers: ["binance", "kraken"], windowMs: 100, maxFragments: 2 })]
      }),
      SymbolRoute.make({ symbol: "ETH-USDT", providers: ["binance"], merges: [] })
    ]
  }),
  FlipRouting.make({ ...ids, expectedStagedId: "cmd-0" }),
  FlipRouting.make(ids)
]

/** An encoded command with the envelope, as a consumer would send it. */
const wire = (command: Record<string, unknown>, schemaVersion: unknown = 1) =>
  JSON.stringify({ schemaVersion, command })

const submit = (over: Record<string, unknown>) =>
  wire({
    _tag: "SubmitOrder",
    ...ids,
    clientOrderId: "o-9",
    symbol: "BTC-USDT",
    side: "buy",
    orderType: "limit",
    quantity: "1",
    price: "100",
    ...over
  })

const merged = (over: Record<string, unknown>) =>
  wire({
    _tag: "SubscribeMerged",
    ...ids,
    symbol: "BTC-USDT",
    kind: "ticker",
    providers: ["binance", "kraken"],
    windowMs: 100,
    maxFragments: 2,
    ...over
  })

const route = (over: Record<string, unknown>) =>
  wire({ _tag: "StageRouting", ...ids, routes: [{ symbol: "BTC-USDT", providers: ["binance", "kraken"], ...over }] })

interface BadCase {
  readonly name: string
  readonly input: string
  /** The expected rejection: command name, ids, and the exact reason. */
  readonly command: string
  readonly commandId: string
  readonly consumerId: string
  readonly reason: string
}

const bad: ReadonlyArray<BadCase> = [
  {
    name: "malformed JSON",
    input: "{\"schemaVersion\": 1, \"command\": ",
    command: "unknown",
    commandId: "unknown",
    consumerId: "unknown",
    reason: "malformed JSON: Unexpected end of JSON input"
  },
  {
    name: "not an envelope",
    input: "[1,2]",
    command: "unknown",
    commandId: "unknown",
    consumerId: "unknown",
    reason: "expected a control envelope { schemaVersion, command } (got [1,2])"
  },
  {
    name: "wrong schemaVersion",
    input: wire({ _tag: "QueryOrder", ...ids, clientOrderId: "o-1" }, 2),
    command: "QueryOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "schemaVersion: unsupported schemaVersion 2 (expected 1)"
  },
  {
    name: "missing schemaVersion",
    input: JSON.stringify({ command: { _tag: "QueryOrder", ...ids, clientOrderId: "o-1" } }),
    command: "QueryOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "schemaVersion: is missing"
  },
  {
    name: "unknown tag",
    input: wire({ _tag: "Liquidate", ...ids }),
    command: "Liquidate",
    commandId: "cmd-1",
    consumerId: "strat-a",
    // every command of the union, in its order
    reason: `command._tag: Expected ${ControlCommand.members.map((m) => `"${m._tag}"`).join(" | ")}, actual "Liquidate"`
  },
  {
    name: "missing fields (all reported)",
    input: wire({ _tag: "Subscribe", commandId: "cmd-1" }),
    command: "Subscribe",
    commandId: "cmd-1",
    consumerId: "unknown",
    reason: "command.consumerId: is missing; command.symbol: is missing; command.kinds: is missing"
  },
  {
    name: "empty commandId",
    input: wire({ _tag: "CancelOrder", commandId: "", consumerId: "strat-a", clientOrderId: "o-1" }),
    command: "CancelOrder",
    commandId: "unknown",
    consumerId: "strat-a",
    reason: "command.commandId: commandId must be a non-empty string"
  },
  {
    name: "empty kinds",
    input: wire({ _tag: "Subscribe", ...ids, symbol: "BTC-USDT", kinds: [] }),
    command: "Subscribe",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.kinds: kinds must not be empty"
  },
  {
    name: "unknown kind",
    input: wire({ _tag: "Unsubscribe", ...ids, symbol: "BTC-USDT", kinds: ["candles"] }),
    command: "Unsubscribe",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.kinds.0: kind must be one of trade, ticker, book_snapshot, book_delta (got \"candles\")"
  },
  {
    name: "window of zero",
    input: merged({ windowMs: 0 }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.windowMs: windowMs must be an integer in 1..60000 (got 0)"
  },
  {
    name: "window too long",
    input: merged({ windowMs: 60_001 }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.windowMs: windowMs must be an integer in 1..60000 (got 60001)"
  },
  {
    name: "fractional window",
    input: merged({ windowMs: 12.5 }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.windowMs: windowMs must be an integer in 1..60000 (got 12.5)"
  },
  {
    name: "merge of one provider",
    input: merged({ providers: ["binance"] }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.providers: providers must name at least 2 providers to merge (got 1)"
  },
  {
    name: "duplicate providers",
    input: merged({ providers: ["binance", "binance"] }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.providers: providers must be distinct (duplicate \"binance\")"
  },
  {
    name: "maxFragments of zero",
    input: merged({ maxFragments: 0 }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.maxFragments: maxFragments must be a positive integer (got 0)"
  },
  {
    name: "maxFragments below the provider count",
    input: merged({ providers: ["binance", "kraken", "coinbase"], maxFragments: 2 }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: maxFragments (2) must be at least the number of providers (3)"
  },
  {
    name: "merge of a kind that cannot merge",
    input: merged({ kind: "book_delta" }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.kind: kind must be one of ticker, book_snapshot, trade (got \"book_delta\")"
  },
  {
    name: "zero quantity",
    input: submit({ quantity: "0" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.quantity: quantity must be greater than 0 (got 0)"
  },
  {
    name: "negative quantity",
    input: submit({ quantity: "-0.5" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.quantity: a decimal in plain notation: up to 20 integer and 18 fraction digits, no sign or exponent"
  },
  {
    name: "quantity as a float number",
    input: submit({ quantity: 0.1 }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.quantity: Expected string, actual 0.1"
  },
  {
    name: "quantity not a decimal",
    input: submit({ quantity: "1,5" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.quantity: a decimal in plain notation: up to 20 integer and 18 fraction digits, no sign or exponent"
  },
  {
    name: "zero price",
    input: submit({ price: "0.000" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.price: price must be greater than 0 (got 0.000)"
  },
  {
    name: "limit without price",
    input: submit({ price: undefined }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: a limit order requires a price"
  },
  {
    name: "market with price",
    input: submit({ orderType: "market" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: a market order must not carry a price"
  },
  {
    name: "market order good till canceled",
    input: submit({ orderType: "market", price: undefined, timeInForce: "GTC" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: a market order is immediate-or-cancel: timeInForce GTC is not allowed"
  },
  {
    name: "market order fill or kill",
    input: submit({ orderType: "market", price: undefined, timeInForce: "FOK" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: a market order is immediate-or-cancel: timeInForce FOK is not allowed"
  },
  {
    name: "unknown time in force",
    input: submit({ timeInForce: "GTD" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.timeInForce: timeInForce must be one of GTC, IOC, FOK (got \"GTD\")"
  },
  {
    name: "post-only market order",
    input: submit({ orderType: "market", price: undefined, postOnly: true }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: postOnly goes with limit orders only"
  },
  {
    name: "post-only immediate-or-cancel order",
    input: submit({ postOnly: true, timeInForce: "IOC" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: postOnly goes with timeInForce GTC only (got IOC)"
  },
  {
    name: "reduceOnly not a boolean",
    input: submit({ reduceOnly: "yes" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.reduceOnly: Expected boolean, actual \"yes\""
  },
  {
    name: "empty venue",
    input: submit({ venue: "" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.venue: provider must be a non-empty string"
  },
  {
    name: "amend that changes nothing",
    input: wire({ _tag: "AmendOrder", ...ids, clientOrderId: "o-1" }),
    command: "AmendOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command: an amend changes the price, the quantity or both"
  },
  {
    name: "amend to a zero quantity",
    input: wire({ _tag: "AmendOrder", ...ids, clientOrderId: "o-1", quantity: "0" }),
    command: "AmendOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.quantity: quantity must be greater than 0 (got 0)"
  },
  {
    name: "unknown side",
    input: submit({ side: "short" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.side: side must be one of buy, sell (got \"short\")"
  },
  {
    name: "empty routing table",
    input: wire({ _tag: "StageRouting", ...ids, routes: [] }),
    command: "StageRouting",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.routes: routes must not be empty"
  },
  {
    name: "route merging a provider that does not feed the symbol",
    input: route({ merges: [{ kind: "trade", providers: ["binance", "coinbase"], windowMs: 50, maxFragments: 10 }] }),
    command: "StageRouting",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.routes.0: route BTC-USDT: the trade merge uses providers that do not feed the symbol: coinbase"
  },
  {
    name: "route with two merges of one kind",
    input: route({
      merges: [
        { kind: "ticker", providers: ["binance", "kraken"], windowMs: 50, maxFragments: 2 },
        { kind: "ticker", providers: ["kraken", "binance"], windowMs: 90, maxFragments: 2 }
      ]
    }),
    command: "StageRouting",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.routes.0: route BTC-USDT: merge kinds must be distinct (duplicate \"ticker\")"
  },
  {
    name: "a symbol routed twice",
    input: wire({
      _tag: "StageRouting",
      ...ids,
      routes: [{ symbol: "BTC-USDT", providers: ["binance"] }, { symbol: "BTC-USDT", providers: ["kraken"] }]
    }),
    command: "StageRouting",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.routes: route symbols must be distinct (duplicate \"BTC-USDT\")"
  },
  {
    name: "empty expectedStagedId",
    input: wire({ _tag: "FlipRouting", ...ids, expectedStagedId: "" }),
    command: "FlipRouting",
    commandId: "cmd-1",
    consumerId: "strat-a",
    reason: "command.expectedStagedId: expectedStagedId must be a non-empty string"
  }
]

/** Inputs that decode but name what the gateway does not carry: every problem, as a tagged rejection. */
interface SemanticCase {
  readonly name: string
  readonly input: string
  readonly command: string
  readonly commandId: string
  readonly consumerId: string
  readonly rejections: ReadonlyArray<Rejection>
}

const semanticallyBad: ReadonlyArray<SemanticCase> = [
  {
    name: "unknown symbol",
    input: wire({ _tag: "Subscribe", ...ids, symbol: "DOGE-USDT", kinds: ["trade"] }),
    command: "Subscribe",
    commandId: "cmd-1",
    consumerId: "strat-a",
    rejections: [new UnknownSymbol({ symbol: "DOGE-USDT" })]
  },
  {
    name: "order on an unknown symbol",
    input: submit({ symbol: "DOGE-USDT" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    rejections: [new UnknownSymbol({ symbol: "DOGE-USDT" })]
  },
  {
    name: "order on an unknown venue",
    input: submit({ venue: "bitmex" }),
    command: "SubmitOrder",
    commandId: "cmd-1",
    consumerId: "strat-a",
    rejections: [new UnknownVenue({ venue: "bitmex", symbol: "BTC-USDT" })]
  },
  {
    name: "unknown provider",
    input: merged({ providers: ["binance", "bitmex"] }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    rejections: [new UnknownVenue({ venue: "bitmex" })]
  },
  {
    name: "unknown symbol and providers, all reported",
    input: merged({ symbol: "DOGE-USDT", providers: ["ftx", "bitmex"] }),
    command: "SubscribeMerged",
    commandId: "cmd-1",
    consumerId: "strat-a",
    rejections: [
      new UnknownSymbol({ symbol: "DOGE-USDT" }),
      new UnknownVenue({ venue: "ftx" }),
      new UnknownVenue({ venue: "bitmex" })
    ]
  },
  {
    name: "routing table naming an unknown provider",
    input: route({ providers: ["binance", "bitmex"] }),
    command: "StageRouting",
    commandId: "cmd-1",
    consumerId: "strat-a",
    rejections: [new UnknownVenue({ venue: "bitmex", symbol: "BTC-USDT" })]
  }
]

/** The whole path a Control Bus takes: decode, then validate. */
const accept = (text: string): Either.Either<ControlCommand, CommandRejected> =>
  Either.flatMap(Either.mapLeft(decodeControlJsonCommand(text), rejectedAsInvalid), (cmd) => validateCommand(cmd, ctx))

describe("Control schema", () => {
  describe("good commands round-trip", () => {
    for (const cmd of good) {
      it(`${cmd._tag}${"orderType" in cmd ? ` (${cmd.orderType})` : ""}`, () => {
        const text = Either.getOrThrow(encodeControlJson(envelope(cmd)))
        const parsed = JSON.parse(text)
        assert.strictEqual(parsed.schemaVersion, CONTROL_SCHEMA_VERSION)
        assert.strictEqual(parsed.command._tag, cmd._tag)
        const back = Either.getOrThrow(decodeControlJson(text))
        assert.deepStrictEqual(back.command, cmd)
        assert.strictEqual(Object.getPrototypeOf(back.command), Object.getPrototypeOf(cmd), "a class instance")
        assert.deepStrictEqual(Either.getOrThrow(accept(text)), cmd, "valid against the gateway")
      })
    }

    it("keeps decimal strings exactly as sent", () => {
      const text = submit({ quantity: "0.0100", price: "64000.50" })
      const cmd = Either.getOrThrow(decodeControlJsonCommand(text))
      assert.strictEqual(cmd._tag, "SubmitOrder")
      if (cmd._tag !== "SubmitOrder") return
      assert.strictEqual(cmd.quantity, "0.0100")
      assert.strictEqual(cmd.price, "64000.50")
    })

    it("a route without merges decodes with an empty merge list", () => {
      const text = route({})
      const cmd = Either.getOrThrow(decodeControlJsonCommand(text))
      assert.strictEqual(cmd._tag, "StageRouting")
      if (cmd._tag !== "StageRouting") return
      assert.deepStrictEqual(cmd.routes[0].merges, [])
    })

    it("decodes an already parsed envelope and a bare command", () => {
      const cmd = good[3]!
      const encoded = JSON.parse(Either.getOrThrow(encodeControlJson(envelope(cmd))))
      assert.deepStrictEqual(Either.getOrThrow(decodeControl(encoded)).command, cmd)
      assert.deepStrictEqual(Either.getOrThrow(decodeControlCommand(encoded)), cmd)
      assert.deepStrictEqual(Either.getOrThrow(decodeCommand(encoded.command)), cmd)
    })
  })

  /** The command is refused with exactly the expected typed rejection. */
  const assertRejection = (
    result: Either.Either<unknown, CommandRejected>,
    c: { readonly command: string; readonly commandId: string; readonly consumerId: string; readonly reason: string }
  ) => {
    assert.isTrue(Either.isLeft(result), "rejected")
    if (Either.isRight(result)) return
    const invalid = result.left.rejection
    assert.instanceOf(invalid, InvalidCommand)
    assert.deepStrictEqual(result.left.also, [])
    if (!(invalid instanceof InvalidCommand)) return
    assert.deepStrictEqual(
      {
        command: invalid.command,
        commandId: invalid.commandId,
        consumerId: invalid.consumerId,
        reason: invalid.reason
      },
      { command: c.command, commandId: c.commandId, consumerId: c.consumerId, reason: c.reason }
    )
  }

  describe("structural rejections", () => {
    for (const c of bad) {
      it(c.name, () => {
        const result = accept(c.input)
        assertRejection(result, c)
      })
    }
  })

  describe("semantic rejections", () => {
    for (const c of semanticallyBad) {
      it(c.name, () => {
        const decoded = decodeControlJsonCommand(c.input)
        assert.isTrue(Either.isRight(decoded), "structurally valid")
        const result = accept(c.input)
        assert.isTrue(Either.isLeft(result), "rejected")
        if (Either.isRight(result)) return
        const r = result.left
        assert.deepStrictEqual([r.command, r.commandId, r.consumerId], [c.command, c.commandId, c.consumerId])
        assert.deepStrictEqual(
          [r.rejection, ...r.also].map((x) => encodeRejection(x)),
          c.rejections.map((x) => encodeRejection(x)),
          "every problem, in order, as a tagged value"
        )
        assert.strictEqual(r.dropped, 0)
      })
    }

    it("a routing table of 512 unknown symbols: the first rejection, 16 more, and a count of the rest", () => {
      const routes = Array.from({ length: 512 }, (_, i) => ({ symbol: `UNKNOWN-${i}`, providers: ["binance"] }))
      const result = accept(JSON.stringify({ schemaVersion: 1, command: { _tag: "StageRouting", ...ids, routes } }))
      assert.isTrue(Either.isLeft(result))
      if (Either.isRight(result)) return
      assert.deepStrictEqual(encodeRejection(result.left.rejection), { _tag: "UnknownSymbol", symbol: "UNKNOWN-0" })
      assert.strictEqual(result.left.also.length, 16)
      assert.deepStrictEqual(encodeRejection(result.left.also[15]!), { _tag: "UnknownSymbol", symbol: "UNKNOWN-16" })
      assert.strictEqual(result.left.dropped, 512 - 17)
    })

    it("commands that name no symbol or provider are always valid", () => {
      for (const cmd of good.filter((c) => ["AmendOrder", "CancelOrder", "QueryOrder", "FlipRouting"].includes(c._tag))) {
        const empty = { knownSymbols: new Set<string>(), knownProviders: new Set<string>() }
        assert.isTrue(Either.isRight(validateCommand(cmd, empty)), cmd._tag)
      }
    })
  })

  describe("invalidCommandFromParseError", () => {
    const error = (u: unknown) => {
      const r = decodeControl(u)
      assert.isTrue(Either.isLeft(r))
      return (r as Either.Left<import("effect/ParseResult").ParseError, unknown>).left
    }

    it("takes the ids from a raw envelope, a bare command or JSON text", () => {
      const raw = { schemaVersion: 1, command: { _tag: "CancelOrder", commandId: "c-7", consumerId: "s-7" } }
      const fromEnvelope = invalidCommandFromParseError(raw, error(raw))
      assert.deepStrictEqual(
        [fromEnvelope.commandId, fromEnvelope.command, fromEnvelope.consumerId, fromEnvelope.reason],
        ["c-7", "CancelOrder", "s-7", "command.clientOrderId: is missing"]
      )
      const fromBare = invalidCommandFromParseError(raw.command, error(raw))
      assert.deepStrictEqual([fromBare.commandId, fromBare.consumerId], ["c-7", "s-7"])
      const fromText = invalidCommandFromParseError(JSON.stringify(raw), error(raw))
      assert.deepStrictEqual([fromText.commandId, fromText.consumerId], ["c-7", "s-7"])
    })

    it("falls back to \"unknown\" when the raw input has no usable ids", () => {
      for (const raw of [42, null, "not json", { command: { commandId: 5, consumerId: "" } }]) {
        const e = invalidCommandFromParseError(raw, error(raw))
        assert.deepStrictEqual([e.commandId, e.command, e.consumerId], ["unknown", "unknown", "unknown"])
        assert.isAbove(e.reason.length, 0)
      }
    })

    it("is a Schema.TaggedError that itself crosses the wire", () => {
      const e = Either.getLeft(decodeControlJsonCommand(merged({ windowMs: -5 })))
      assert.isTrue(e._tag === "Some")
      if (e._tag !== "Some") return
      const encoded = Schema.encodeSync(InvalidCommand)(e.value)
      assert.deepStrictEqual(Schema.decodeUnknownSync(InvalidCommand)(encoded), e.value)
    })
  })

  describe("hostile input: bounded ids, sizes and depth; a typed rejection with a bounded reason, never a throw", () => {
    const wrap = (command: unknown) => JSON.stringify({ schemaVersion: 1, command })
    const query = (o: Record<string, unknown>) => ({ _tag: "QueryOrder", ...ids, clientOrderId: "o-1", ...o })
    const big = (n: number) => "x".repeat(n)
    const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
    const table: ReadonlyArray<{
      readonly name: string
      readonly input: string
      /** What the rejection names: the ids are taken only when within their bounds. */
      readonly commandId: string
      readonly consumerId: string
      readonly reason: RegExp
    }> = [
      {
        name: "a 300 KB commandId",
        input: wrap(query({ commandId: big(300_000) })),
        commandId: "unknown",
        consumerId: "unknown",
        reason: /command too large/
      },
      {
        name: "a commandId one over the maximum",
        input: wrap(query({ commandId: big(MAX_ID_LENGTH + 1) })),
        commandId: "unknown",
        consumerId: "strat-a",
        reason: new RegExp(`commandId must be at most ${MAX_ID_LENGTH} characters \\(got ${MAX_ID_LENGTH + 1}\\)`)
      },
      {
        name: "a consumerId of 10,000 characters",
        input: wrap(query({ consumerId: big(10_000) })),
        commandId: "cmd-1",
        consumerId: "unknown",
        reason: /consumerId must be at most/
      },
      {
        name: "a clientOrderId of 1,000 characters",
        input: wrap(query({ clientOrderId: big(1_000) })),
        commandId: "cmd-1",
        consumerId: "strat-a",
        reason: /clientOrderId must be at most/
      },
      {
        name: "a symbol one over the maximum",
        input: wrap({ _tag: "Subscribe", ...ids, symbol: big(MAX_NAME_LENGTH + 1), kinds: ["ticker"] }),
        commandId: "cmd-1",
        consumerId: "strat-a",
        reason: /symbol must be at most 64 characters/
      },
      {
        name: "a kinds array of 5 (more than there are kinds)",
        input: wrap({ _tag: "Subscribe", ...ids, symbol: "BTC-USDT", kinds: ["ticker", "trade", "book_snapshot", "book_delta", "ticker"] }),
        commandId: "cmd-1",
        consumerId: "strat-a",
        reason: /kinds must hold at most 4 items \(got 5\)/
      },
      {
        name: "33 merge providers",
        input: wrap({
          _tag: "SubscribeMerged",
          ...ids,
          symbol: "BTC-USDT",
          kind: "ticker",
          providers: Array.from({ length: 33 }, (_, i) => `p${i}`),
          windowMs: 100,
          maxFragments: 40
        }),
        commandId: "cmd-1",
        consumerId: "strat-a",
        reason: /providers must hold at most 32 items/
      },
      {
        name: "a command nested 10,000 deep",
        input: wrap(JSON.parse("[]")).replace("[]", nested(10_000)),
        commandId: "unknown",
        consumerId: "unknown",
        reason: /nested deeper than 16 levels/
      },
      {
        name: "a bare array nested 10,000 deep",
        input: nested(10_000),
        commandId: "unknown",
        consumerId: "unknown",
        reason: /nested deeper than 16 levels/
      },
      {
        name: "an id that is an object nested 10,000 deep",
        input: wrap(query({})).replace(`"cmd-1"`, `${"{\"a\":".repeat(10_000)}1${"}".repeat(10_000)}`),
        commandId: "unknown",
        consumerId: "unknown",
        reason: /nested deeper than 16 levels/
      },
      {
        name: "a 1 MB body",
        input: wrap(query({ note: big(1_000_000) })),
        commandId: "unknown",
        consumerId: "unknown",
        reason: /command too large: 1\d{6} characters/
      },
      {
        name: "a wrong literal of 100 KB (the reason shows a bounded excerpt)",
        input: wrap({ _tag: "SubmitOrder", ...ids, clientOrderId: "o", symbol: "BTC-USDT", side: big(60_000), orderType: "market", quantity: "1" }),
        commandId: "cmd-1",
        consumerId: "strat-a",
        reason: /^command\.side: side must be one of buy, sell \(got "x{10,}\.\.\.\)$/
      }
    ]
    for (const c of table) {
      it(c.name, () => {
        const result = decodeControlJsonCommand(c.input)
        assert.isTrue(Either.isLeft(result), "rejected")
        if (Either.isRight(result)) return
        assert.instanceOf(result.left, InvalidCommand)
        assert.strictEqual(result.left.commandId, c.commandId)
        assert.strictEqual(result.left.consumerId, c.consumerId)
        assert.match(result.left.reason, c.reason)
        assert.isAtMost(result.left.reason.length, MAX_REASON_LENGTH)
      })
    }

    it("many bad items give a reason that lists a few and counts the rest", () => {
      const routes = Array.from({ length: 200 }, (_, i) => ({ symbol: `S${i}`, providers: [] }))
      const result = decodeControlJsonCommand(wrap({ _tag: "StageRouting", ...ids, routes }))
      assert.isTrue(Either.isLeft(result))
      if (Either.isRight(result)) return
      assert.match(result.left.reason, /and 184 more$/)
      assert.isAtMost(result.left.reason.length, MAX_REASON_LENGTH)
    })

    it("a parsed value nested 10,000 deep is rejected without recursion", () => {
      let deep: unknown = 1
      for (let i = 0; i < 10_000; i++) deep = [deep]
      const result = decodeControlCommand({ schemaVersion: 1, command: deep })
      assert.isTrue(Either.isLeft(result))
      if (Either.isRight(result)) return
      assert.match(result.left.reason, /nested deeper than 16 levels/)
    })

    it("ids at their maximum length are accepted, and their Nats-Msg-Id is a bounded digest", () => {
      const cmd = SubmitOrder.make({
        commandId: big(MAX_ID_LENGTH),
        consumerId: "c".repeat(MAX_ID_LENGTH),
        clientOrderId: "o".repeat(MAX_ID_LENGTH),
        symbol: "S".repeat(MAX_NAME_LENGTH),
        side: "buy",
        orderType: "market",
        quantity: decimal("1")
      })
      const text = Either.getOrThrow(encodeControlJson(envelope(cmd)))
      assert.deepStrictEqual(Either.getOrThrow(decodeControlJsonCommand(text)), cmd)
      const id = commandMsgId(cmd)
      assert.match(id, /^order:[A-Za-z0-9_-]{43}$/)
      assert.notInclude(id, "ooo")
      assert.notStrictEqual(commandMsgId(SubmitOrder.make({ ...cmd, consumerId: "other" })), id, "per consumer")
    })

    it("an order's Nats-Msg-Id is the same for a retry of the command, another for a new command resubmitting it", () => {
      const cmd = good[3]!
      assert.strictEqual(cmd._tag, "SubmitOrder")
      assert.strictEqual(commandMsgId(cmd), commandMsgId(Either.getOrThrow(decodeControlJsonCommand(Either.getOrThrow(encodeControlJson(envelope(cmd)))))))
      assert.notStrictEqual(commandMsgId({ ...cmd, commandId: "cmd-2" } as ControlCommand), commandMsgId(cmd), "answered, not dropped")
    })
  })
})
