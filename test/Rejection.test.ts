import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { everyRejection } from "./fixtures/rejections.js"
import {
  ControlResultPayload,
  decodeWireJson,
  EVENT_SCHEMA_VERSION,
  encodeWireJson,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_REASON_LENGTH,
  type WireAny
} from "../schema/Event.js"
import {
  decodeRejection,
  encodeRejection,
  isRejection,
  RejectedAsText,
  Rejection,
  REJECTION_TAGS,
  UnknownConsumer,
  UnknownSymbol,
  UnknownVenue
} from "../schema/Rejection.js"

describe("Rejection", () => {
  it("the table covers every reason of the union", () => {
    assert.deepStrictEqual(everyRejection.map((r) => r._tag), [...REJECTION_TAGS])
  })

  it("every reason crosses the wire as a tagged object and comes back as an instance of its class", () => {
    for (const r of everyRejection) {
      const wire = JSON.parse(JSON.stringify(encodeRejection(r)))
      assert.strictEqual(wire._tag, r._tag)
      const back = decodeRejection(wire)
      assert.isTrue(Either.isRight(back), r._tag)
      const value = Either.getOrThrow(back)
      assert.strictEqual(value.constructor, r.constructor)
      assert.isTrue(isRejection(value))
      assert.strictEqual(value.message, r.message)
      assert.deepStrictEqual(encodeRejection(value), encodeRejection(r))
    }
  })

  it.effect("a decoded reason fails an Effect as it is, and catchTag narrows it", () =>
    Effect.gen(function*() {
      const wire = { _tag: "InsufficientBalance", clientOrderId: "o-1", asset: "USDT", required: "650", available: "1" }
      const decoded = Either.getOrThrow(decodeRejection(wire))
      const caught = yield* Effect.fail(decoded).pipe(
        Effect.catchTag("InsufficientBalance", (e) => Effect.succeed(`${e.asset} ${e.required}`)),
        Effect.catchAll(() => Effect.succeed("other"))
      )
      assert.strictEqual(caught, "USDT 650")
    }))

  it("messages name the context an operator needs", () => {
    const m = (tag: Rejection["_tag"]) => everyRejection.find((r) => r._tag === tag)!.message
    assert.include(m("UnknownVenue"), "mtgox")
    assert.include(m("InsufficientBalance"), "needs 650, has 12.5")
    assert.include(m("DuplicateClientOrderId"), "paper-1")
    assert.include(m("VenueRejected"), "(no_market_data)")
    assert.include(m("VenueRequired"), "sim-a, sim-b")
    assert.include(m("PostOnlyWouldTake"), "crosses 100.5")
    assert.include(m("ReduceOnlyWouldIncrease"), "position 0.5")
  })

  describe("hostile wire values are refused, never taken in", () => {
    const hostile: ReadonlyArray<readonly [string, unknown]> = [
      ["not an object", "UnknownSymbol"],
      ["null", null],
      ["no tag", { symbol: "BTC-USDT" }],
      ["an unknown tag", { _tag: "Launch", symbol: "BTC-USDT" }],
      ["a missing field", { _tag: "OrderNotFound", clientOrderId: "o-1" }],
      ["a wrong type", { _tag: "UnknownSymbol", symbol: 42 }],
      ["an oversized id", { _tag: "OrderNotFound", clientOrderId: "x".repeat(MAX_ID_LENGTH + 1), consumerId: "s" }],
      ["an oversized name", { _tag: "UnknownVenue", venue: "v".repeat(MAX_NAME_LENGTH + 1) }],
      ["oversized text", { _tag: "RejectedAsText", text: "t".repeat(MAX_REASON_LENGTH + 1) }],
      ["a bad literal", { _tag: "BelowMinimum", clientOrderId: "o", symbol: "s", measure: "mass", value: "1", minimum: "2" }],
      ["a bad status", { _tag: "OrderNotCancelable", clientOrderId: "o", consumerId: "s", orderId: "p", status: "gone" }],
      [
        "too many fields named",
        { _tag: "DuplicateClientOrderId", clientOrderId: "o", conflict: "other_terms", fields: Array(9).fill("side") }
      ]
    ]
    for (const [name, input] of hostile) {
      it(name, () => {
        const r = decodeRejection(input)
        assert.isTrue(Either.isLeft(r))
      })
    }
  })

  it("constructing a reason out of bounds is refused at once", () => {
    assert.throws(() => new UnknownSymbol({ symbol: "s".repeat(MAX_NAME_LENGTH + 1) }))
  })

  it("the union is the Schema the wire uses", () => {
    assert.isTrue(Schema.is(Rejection)(new UnknownConsumer({ consumerId: "x" })))
    assert.isFalse(Schema.is(Rejection)({ _tag: "UnknownConsumer", consumerId: "x" }))
  })
})

describe("ControlResult on the wire", () => {
  const envelope = (schemaVersion: number, payload: Record<string, unknown>) => ({
    _tag: "Event",
    schemaVersion,
    traceId: "result-c-1",
    provider: "control",
    symbol: "",
    ingestTs: 1_000,
    routingVersion: 3,
    kind: "control_result",
    payload
  })
  const ids = { _tag: "control_result", commandId: "c-1", command: "SubmitOrder", consumerId: "s" }
  const decodeResult = (frame: unknown) => {
    const r = decodeWireJson(JSON.stringify(frame))
    if (Either.isLeft(r)) return Either.left(r.left)
    const p = r.right.payload
    return p._tag === "control_result" ? Either.right(p) : Either.left(new Error(`not a result: ${p._tag}`))
  }

  it("version 2 carries every reason as a tagged value, written and read back intact", () => {
    for (const r of everyRejection) {
      const payload = ControlResultPayload.make({
        commandId: "c-1",
        command: "SubmitOrder",
        consumerId: "s",
        outcome: "rejected",
        rejection: r,
        also: [new UnknownVenue({ venue: "ftx" })]
      })
      const text = encodeWireJson({ ...envelope(EVENT_SCHEMA_VERSION, {}), payload } as WireAny)
      const raw = JSON.parse(text)
      assert.strictEqual(raw.schemaVersion, 2)
      assert.deepStrictEqual(raw.payload.rejection, encodeRejection(r), "a tagged object, not text")
      assert.isUndefined(raw.payload.reason)
      const back = Either.getOrThrow(decodeResult(raw))
      assert.strictEqual(back.rejection!.constructor, r.constructor, r._tag)
      assert.deepStrictEqual(encodeRejection(back.rejection!), encodeRejection(r))
      assert.deepStrictEqual(back.also!.map((x) => x._tag), ["UnknownVenue"])
    }
  })

  it("a version 1 rejection (text reason) still decodes: the text, kept as a RejectedAsText", () => {
    const text = "order rejected: order o-1 of s on BTC-USDT rejected: no market data for BTC-USDT"
    const back = Either.getOrThrow(decodeResult(envelope(1, { ...ids, outcome: "rejected", reason: text })))
    assert.strictEqual(back.outcome, "rejected")
    assert.instanceOf(back.rejection, RejectedAsText)
    assert.strictEqual((back.rejection as RejectedAsText).text, text)
    assert.instanceOf(back, ControlResultPayload)
  })

  it("a version 1 rejection without a reason, and a version 1 ok result with its detail, still decode", () => {
    const bare = Either.getOrThrow(decodeResult(envelope(1, { ...ids, outcome: "rejected" })))
    assert.deepStrictEqual(encodeRejection(bare.rejection!), { _tag: "RejectedAsText", text: "rejected" })
    const ok = Either.getOrThrow(decodeResult(envelope(1, { ...ids, outcome: "ok", detail: { routingVersion: 4 } })))
    assert.deepStrictEqual([ok.outcome, ok.rejection, ok.detail], ["ok", undefined, { routingVersion: 4 }])
  })

  describe("results that contradict themselves, or an unknown version, are refused", () => {
    const table: ReadonlyArray<readonly [string, unknown]> = [
      ["rejected without a rejection (version 2)", envelope(2, { ...ids, outcome: "rejected" })],
      ["ok with a rejection", envelope(2, { ...ids, outcome: "ok", rejection: { _tag: "UnknownConsumer", consumerId: "x" } })],
      ["a rejection of an unknown tag", envelope(2, { ...ids, outcome: "rejected", rejection: { _tag: "Nope" } })],
      [
        "a rejection out of bounds",
        envelope(2, { ...ids, outcome: "rejected", rejection: { _tag: "UnknownVenue", venue: "v".repeat(65) } })
      ],
      [
        "too many further rejections",
        envelope(2, {
          ...ids,
          outcome: "rejected",
          rejection: { _tag: "UnknownVenue", venue: "a" },
          also: Array(17).fill({ _tag: "UnknownVenue", venue: "b" })
        })
      ],
      ["a version 1 reason out of bounds", envelope(1, { ...ids, outcome: "rejected", reason: "r".repeat(2_049) })],
      ["version 3", envelope(3, { ...ids, outcome: "ok" })]
    ]
    for (const [name, frame] of table) {
      it(name, () => {
        assert.isTrue(Either.isLeft(decodeResult(frame)))
      })
    }
  })
})
