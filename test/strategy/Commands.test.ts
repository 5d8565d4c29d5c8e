/**
 * A strategy's commands end to end through the in-memory Control Bus, the
 * Control Plane and the paper venue: each resolves with its typed outcome or
 * fails with its tagged rejection, matched by commandId; nothing is parsed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { layerTest, testConfig } from "../../layers/Test.js"
import * as Gateway from "../../src/Gateway.js"
import * as Strategy from "../../src/strategy/index.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { advance } from "../support/clock.js"

/** A strategy that hands its context to the test, and (optionally) waits for a result inside a handler. */
const probe = () => {
  let ctx: Strategy.StrategyContext | undefined
  const inHandler: Array<string> = []
  const strategy = Strategy.define({
    id: "probe",
    start: (c) =>
      Effect.sync(() => {
        ctx = c as Strategy.StrategyContext
      }).pipe(Effect.zipRight(c.subscribe("ETH-USDT", ["ticker"]))),
    on: {
      // waiting for a command's result here would wait on the handler itself
      ticker: (_e, c) =>
        inHandler.length > 0 ? Effect.void : c.query("none").pipe(
          Effect.either,
          Effect.map((r) => inHandler.push(Either.isLeft(r) ? r.left._tag : "resolved"))
        )
    }
  })
  return { strategy, ctx: () => ctx!, inHandler }
}

const tagOf = (r: Either.Either<unknown, Strategy.CommandError>) => (Either.isLeft(r) ? r.left._tag : "ok")

describe("strategy commands", () => {
  it.effect("submit, query and cancel resolve with the order; every refusal is its tagged rejection", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const p = probe()
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [{ strategy: p.strategy }] }).pipe(Effect.scoped, Effect.fork)
          for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
          const ctx = p.ctx()
          yield* advance(1_000)

          const resting = yield* ctx.submit({ clientOrderId: "rest-1", symbol: "BTC-USDT", venue: "sim-a", side: "buy", type: "limit", quantity: "0.001", price: "1" })
          const queried = yield* ctx.query("rest-1")
          const canceled = yield* ctx.cancel("rest-1")
          const filled = yield* ctx.submit({ clientOrderId: "mkt-1", symbol: "BTC-USDT", venue: "sim-b", side: "buy", type: "market", quantity: "0.001" })
          const refusals = {
            cancelFilled: yield* Effect.either(ctx.cancel("mkt-1")),
            queryUnknown: yield* Effect.either(ctx.query("never-sent")),
            unknownSymbol: yield* Effect.either(ctx.submit({ symbol: "DOGE-USDT", side: "buy", type: "market", quantity: "1" })),
            negativeQuantity: yield* Effect.either(ctx.submit({ symbol: "BTC-USDT", side: "buy", type: "market", quantity: "-1" })),
            limitWithoutPrice: yield* Effect.either(ctx.submit({ symbol: "BTC-USDT", side: "buy", type: "limit", quantity: "1" })),
            badPrice: yield* Effect.either(ctx.submit({ symbol: "BTC-USDT", side: "buy", type: "limit", quantity: "1", price: "1e3" })),
            otherTerms: yield* Effect.either(ctx.submit({ clientOrderId: "mkt-1", symbol: "BTC-USDT", venue: "sim-b", side: "sell", type: "market", quantity: "0.001" })),
            noVenue: yield* Effect.either(ctx.submit({ symbol: "BTC-USDT", side: "buy", type: "market", quantity: "0.001" })),
            unknownVenue: yield* Effect.either(ctx.submit({ symbol: "BTC-USDT", venue: "mtgox", side: "buy", type: "market", quantity: "0.001" }))
          }
          yield* advance(200)
          yield* Fiber.interrupt(fiber)
          return { resting, queried, canceled, filled, refusals }
        })
      )
      const { canceled, filled, queried, refusals, resting } = result

      assert.instanceOf(resting, Strategy.OrderAccepted)
      assert.deepStrictEqual([resting.clientOrderId, resting.status, resting.order.type], ["rest-1", "new", "limit"])
      assert.deepStrictEqual([queried.orderId, queried.status], [resting.orderId, "new"])
      assert.deepStrictEqual([canceled.orderId, canceled.status], [resting.orderId, "canceled"])
      assert.strictEqual(filled.status, "filled")
      assert.strictEqual(filled.order.filledQty, "0.001")
      assert.deepStrictEqual([resting.order.venue, filled.order.venue, filled.order.timeInForce], ["sim-a", "sim-b", "IOC"])

      const tags = Object.fromEntries(Object.entries(refusals).map(([k, r]) => [k, tagOf(r)]))
      assert.deepStrictEqual(tags, {
        cancelFilled: "OrderNotCancelable",
        queryUnknown: "OrderNotFound",
        unknownSymbol: "UnknownSymbol",
        negativeQuantity: "InvalidQuantity",
        limitWithoutPrice: "InvalidPrice",
        badPrice: "InvalidPrice",
        otherTerms: "DuplicateClientOrderId",
        noVenue: "VenueRequired",
        unknownVenue: "UnknownVenue"
      })
      const dup = refusals.otherTerms
      if (Either.isLeft(dup) && dup.left._tag === "DuplicateClientOrderId") assert.include(dup.left.fields, "side")
      const symbol = refusals.unknownSymbol
      if (Either.isLeft(symbol) && symbol.left._tag === "UnknownSymbol") assert.strictEqual(symbol.left.symbol, "DOGE-USDT")
      assert.deepStrictEqual(p.inHandler, ["AwaitInHandler"], "a handler waiting on a result fails at once instead of stalling")
      assert.strictEqual(left, 0)
    }))

  it.effect("amend resolves with the amended order (price, quantity); each refusal is its tagged rejection", () =>
    Effect.gen(function*() {
      const config = testConfig()
      const p = probe()
      const { left, result } = yield* runAndCountLeftFibers(
        layerTest(config),
        Effect.gen(function*() {
          const fiber = yield* Gateway.run(config, { strategies: [{ strategy: p.strategy }] }).pipe(Effect.scoped, Effect.fork)
          for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
          const ctx = p.ctx()
          yield* advance(1_000)

          yield* ctx.submit({ clientOrderId: "am-1", symbol: "BTC-USDT", venue: "sim-a", side: "buy", type: "limit", quantity: "0.001", price: "1" })
          const repriced = yield* ctx.amend("am-1", { price: "2" })
          const resized = yield* ctx.amend("am-1", { quantity: "0.003" })
          const both = yield* ctx.amend("am-1", { price: "1.5", quantity: "0.002" })
          const queried = yield* ctx.query("am-1")
          yield* ctx.submit({ clientOrderId: "am-mkt", symbol: "BTC-USDT", venue: "sim-b", side: "buy", type: "market", quantity: "0.001" })
          const refusals = {
            filled: yield* Effect.either(ctx.amend("am-mkt", { price: "3" })),
            unknown: yield* Effect.either(ctx.amend("never-sent", { price: "3" })),
            negativeQuantity: yield* Effect.either(ctx.amend("am-1", { quantity: "-1" })),
            badPrice: yield* Effect.either(ctx.amend("am-1", { price: "1e3" })),
            nothing: yield* Effect.either(ctx.amend("am-1", {}))
          }
          yield* ctx.cancel("am-1")
          const canceled = yield* Effect.either(ctx.amend("am-1", { price: "3" }))
          yield* advance(200)
          yield* Fiber.interrupt(fiber)
          return { repriced, resized, both, queried, refusals: { ...refusals, canceled } }
        })
      )
      const { both, queried, refusals, repriced, resized } = result
      assert.deepStrictEqual([repriced.price, repriced.quantity, repriced.status], ["2", "0.001", "new"])
      assert.deepStrictEqual([resized.price, resized.quantity], ["2", "0.003"])
      assert.deepStrictEqual([both.price, both.quantity], ["1.5", "0.002"])
      assert.deepStrictEqual([queried.price, queried.quantity, queried.orderId], ["1.5", "0.002", repriced.orderId])
      const tags = Object.fromEntries(Object.entries(refusals).map(([k, r]) => [k, tagOf(r)]))
      assert.deepStrictEqual(tags, {
        filled: "OrderNotCancelable",
        unknown: "OrderNotFound",
        negativeQuantity: "InvalidQuantity",
        badPrice: "InvalidPrice",
        nothing: "InvalidCommand",
        canceled: "OrderNotCancelable"
      })
      assert.strictEqual(left, 0)
    }))
})
