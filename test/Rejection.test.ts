import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { everyRejection } from "./fixtures/rejections.js"
import { MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_REASON_LENGTH } from "../schema/Event.js"
import {
  decodeRejection,
  encodeRejection,
  isRejection,
  Rejection,
  REJECTION_TAGS,
  UnknownConsumer,
  UnknownSymbol
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
    const m = (r: Rejection) => r.message
    assert.include(m(everyRejection[3]!), "mtgox")
    assert.include(m(everyRejection[7]!), "needs 650, has 12.5")
    assert.include(m(everyRejection[9]!), "paper-1")
    assert.include(m(everyRejection[12]!), "(no_market_data)")
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
