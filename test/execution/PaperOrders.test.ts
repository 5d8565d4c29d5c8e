/**
 * Order types on the paper venue: time in force (GTC, IOC, FOK), post-only,
 * reduce-only, amend, cancel-all, and the instrument rules (tick, lot, minimum
 * quantity and notional) checked before an order reaches the book.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  BelowMinimum,
  InvalidPrice,
  InvalidQuantity,
  PostOnlyWouldTake,
  ReduceOnlyWouldIncrease
} from "../../schema/Rejection.js"
import { amend, balanceOf, book, bookDelta, cancel, limit, market, query, roomy, SYM, trail, withPaper } from "./paperHarness.js"

const one = { venues: { "sim-a": roomy } }
const on = { venue: "sim-a" }

describe("paper orders: time in force", () => {
  it.effect("GTC: a limit order rests, then fills as the market moves through it", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        const v = yield* s.venue.submit(limit("g-1", "buy", "2", "100", on))
        assert.deepStrictEqual([v.status, v.timeInForce, v.leavesQty], ["new", "GTC", "2"])
        yield* bookDelta(s, "sim-a", [], [["100", "0.5"]])
        yield* book(s, "sim-a", [["98", "1"]], [["99", "4"]])
        assert.deepStrictEqual(trail(s.received, "g-1"), [
          "1 new filled=0",
          "2 partially_filled 0.5@100 filled=0.5",
          "3 filled 1.5@99 filled=2"
        ])
      })))

  it.effect("IOC: fills what crosses on arrival; the remainder is canceled and its reservation released", () =>
    withPaper({ venues: { "sim-a": { balances: { USDT: "1000" }, fees: { maker: "0", taker: "0" } } } }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["98", "1"]], [["99", "1"], ["100", "1"], ["101", "5"]])
        const v = yield* s.venue.submit(limit("i-1", "buy", "3", "100", { ...on, timeInForce: "IOC" }))
        assert.deepStrictEqual([v.status, v.filledQty, v.leavesQty, v.reason], [
          "canceled",
          "2",
          "0",
          "insufficient liquidity: 2 of 3 filled"
        ])
        assert.deepStrictEqual(trail(s.received, "i-1"), [
          "1 new filled=0",
          "2 partially_filled 1@99 filled=1",
          "3 partially_filled 1@100 filled=2",
          "4 canceled filled=2"
        ])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["801", "801", "0"])
        assert.strictEqual(s.venue.stats().resting, 0)
      })))

  it.effect("FOK: all or nothing: short of liquidity it fills nothing and is canceled; with enough it fills whole", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["98", "1"]], [["99", "1"], ["100", "1"], ["101", "5"]])
        const killed = yield* s.venue.submit(limit("f-1", "buy", "3", "100", { ...on, timeInForce: "FOK" }))
        assert.deepStrictEqual([killed.status, killed.filledQty, killed.reason], ["canceled", "0", "fill or kill: 2 of 3 available"])
        assert.deepStrictEqual(trail(s.received, "f-1"), ["1 new filled=0", "2 canceled filled=0"])
        const filled = yield* s.venue.submit(limit("f-2", "buy", "3", "101", { ...on, timeInForce: "FOK" }))
        assert.deepStrictEqual([filled.status, filled.filledQty, filled.avgPrice], ["filled", "3", "100"])
        const sell = yield* s.venue.submit(limit("f-3", "sell", "1", "98", { ...on, timeInForce: "FOK" }))
        assert.deepStrictEqual([sell.status, sell.avgPrice], ["filled", "98"])
      })))

  it.effect("a market order is IOC: what the book lacks is canceled", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["98", "1"]], [["99", "1"]])
        const v = yield* s.venue.submit(market("m-1", "buy", "2", on))
        assert.deepStrictEqual([v.timeInForce, v.status, v.filledQty], ["IOC", "canceled", "1"])
      })))
})

describe("paper orders: post-only and reduce-only", () => {
  it.effect("a post-only order that would take is refused with the price it crosses; one that rests fills later as a maker", () =>
    withPaper({ venues: { "sim-a": { balances: { USDT: "1000" }, fees: { maker: "0.001", taker: "0.002" } } } }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        const err = yield* s.venue.submit(limit("p-1", "buy", "1", "101", { ...on, postOnly: true })).pipe(Effect.flip)
        assert.instanceOf(err, PostOnlyWouldTake)
        const r = err as PostOnlyWouldTake
        assert.deepStrictEqual([r.venue, r.side, r.price, r.bestOpposite], ["sim-a", "buy", "101", "101"])
        assert.deepStrictEqual(trail(s.received, "p-1"), ["1 rejected filled=0"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["1000", "1000", "0"], "a refused order holds nothing")
        const rests = yield* s.venue.submit(limit("p-2", "buy", "1", "100", { ...on, postOnly: true }))
        assert.deepStrictEqual([rests.status, rests.postOnly], ["new", true])
        yield* bookDelta(s, "sim-a", [], [["100", "1"]])
        // a maker fill: 100 + 0.001 x 100
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["899.9", "899.9", "0"])
        const amended = yield* s.venue.submit(limit("p-3", "buy", "1", "90", { ...on, postOnly: true }))
        assert.strictEqual(amended.status, "new")
        const crossing = yield* s.venue.amend(amend("p-3", { price: "101" })).pipe(Effect.flip)
        assert.strictEqual(crossing._tag, "PostOnlyWouldTake", "an amend that would take is refused too")
      })))

  it.effect("a reduce-only order that would increase or flip the consumer's position is refused; one that reduces it trades", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        const flat = yield* s.venue.submit(market("r-1", "buy", "1", { ...on, reduceOnly: true })).pipe(Effect.flip)
        assert.instanceOf(flat, ReduceOnlyWouldIncrease)
        assert.deepStrictEqual([(flat as ReduceOnlyWouldIncrease).position, (flat as ReduceOnlyWouldIncrease).quantity], ["0", "1"])
        yield* s.venue.submit(market("r-2", "buy", "2", on))
        const more = yield* s.venue.submit(market("r-3", "buy", "1", { ...on, reduceOnly: true })).pipe(Effect.flip)
        assert.strictEqual(more._tag, "ReduceOnlyWouldIncrease")
        const flip = yield* s.venue.submit(limit("r-4", "sell", "3", "99", { ...on, reduceOnly: true })).pipe(Effect.flip)
        assert.deepStrictEqual([flip._tag, (flip as ReduceOnlyWouldIncrease).position], ["ReduceOnlyWouldIncrease", "2"])
        // another consumer's position is its own: flat, so its reduce-only sell is refused
        const other = yield* s.venue.submit(market("r-5", "sell", "1", { ...on, reduceOnly: true, consumerId: "strat-b" }))
          .pipe(Effect.flip)
        assert.strictEqual(other._tag, "ReduceOnlyWouldIncrease")
        const reduces = yield* s.venue.submit(market("r-6", "sell", "2", { ...on, reduceOnly: true }))
        assert.deepStrictEqual([reduces.status, reduces.reduceOnly], ["filled", true])
        const p = s.venue.portfolio().positions.find((x) => x.symbol === SYM)!
        assert.strictEqual(p.quantity, "0")
      })))
})

describe("paper orders: reduce-only orders resting together", () => {
  it.effect("they fill no more than the position holds when they fill: the one left over is canceled, the position flat", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        yield* s.venue.submit(market("long", "buy", "2", on))
        // each one alone reduces the long of 2; together they would sell 3
        yield* s.venue.submit(limit("r-1", "sell", "1.5", "110", { ...on, reduceOnly: true }))
        yield* s.venue.submit(limit("r-2", "sell", "1.5", "111", { ...on, reduceOnly: true }))
        yield* book(s, "sim-a", [["112", "10"]], [["113", "10"]])
        assert.deepStrictEqual(trail(s.received, "r-1"), ["1 new filled=0", "2 filled 1.5@112 filled=1.5"])
        assert.deepStrictEqual(trail(s.received, "r-2"), [
          "1 new filled=0",
          "2 partially_filled 0.5@112 filled=0.5",
          "3 canceled filled=0.5"
        ])
        const r2 = yield* s.venue.query(query("r-2"))
        assert.strictEqual(r2.reason, "reduce-only: the position on sim-a is closed (0.5 of 1.5 filled)")
        assert.strictEqual(s.venue.portfolio().positions[0]!.quantity, "0")
        assert.strictEqual(s.venue.stats().resting, 0)
      })))
})

describe("paper orders: amend", () => {
  it.effect("the price and the quantity of a resting order change; the report keeps its status with a new reportSeq", () =>
    withPaper({ venues: { "sim-a": { balances: { USDT: "1000" }, fees: { maker: "0", taker: "0" } } } }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "1"]], [["110", "1"]])
        yield* s.venue.submit(limit("a-1", "buy", "2", "100", on))
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["1000", "800", "200"])
        const v = yield* s.venue.amend(amend("a-1", { price: "95", quantity: "3" }))
        assert.deepStrictEqual([v.status, v.price, v.quantity, v.leavesQty, v.reports], ["new", "95", "3", "3", 2])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["1000", "715", "285"], "the reservation follows the new terms")
        const amendReport = s.received.filter((r) => r.payload.clientOrderId === "a-1")[1]!.payload
        assert.deepStrictEqual([amendReport.status, amendReport.reportSeq, amendReport.price, amendReport.quantity, amendReport.reason], [
          "new",
          2,
          "95",
          "3",
          "amended from price 100 quantity 2"
        ])
        yield* bookDelta(s, "sim-a", [], [["95", "1"]])
        const partly = yield* s.venue.amend(amend("a-1", { quantity: "2" }))
        assert.deepStrictEqual([partly.status, partly.filledQty, partly.leavesQty], ["partially_filled", "1", "1"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["905", "810", "95"])
      })))

  it.effect("a quantity at or below what filled is InvalidQuantity; a filled order is OrderNotCancelable; another's is not found", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "1"]], [["100", "1"]])
        const v = yield* s.venue.submit(limit("a-1", "buy", "3", "100", on))
        assert.strictEqual(v.filledQty, "1")
        const small = yield* s.venue.amend(amend("a-1", { quantity: "1" })).pipe(Effect.flip)
        assert.instanceOf(small, InvalidQuantity)
        assert.strictEqual((small as InvalidQuantity).rule, "an amended quantity must stay above the filled quantity 1")
        assert.deepStrictEqual(trail(s.received, "a-1").length, 2, "a refused amend changes nothing and reports nothing")
        yield* s.venue.submit(market("m-1", "buy", "1", on))
        const done = yield* s.venue.submit(limit("a-2", "sell", "1", "90", on))
        assert.strictEqual(done.status, "filled")
        const filled = yield* s.venue.amend(amend("a-2", { price: "91" })).pipe(Effect.flip)
        assert.deepStrictEqual([filled._tag, filled._tag === "OrderNotCancelable" ? filled.status : ""], ["OrderNotCancelable", "filled"])
        const foreign = yield* s.venue.amend(amend("a-1", { price: "99" }, "strat-b")).pipe(Effect.flip)
        assert.strictEqual(foreign._tag, "OrderNotFound")
        const mkt = yield* s.venue.amend(amend("m-1", { quantity: "2" })).pipe(Effect.flip)
        assert.strictEqual(mkt._tag, "OrderNotCancelable", "a market order never rests")
      })))

  it.effect("an amend loses time priority when the price changes or the quantity rises, and keeps it when the quantity falls", () =>
    withPaper(one, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "1"]], [["110", "1"]])
        yield* s.venue.submit(limit("first", "buy", "2", "100", on))
        yield* s.venue.submit(limit("second", "buy", "1", "100", on))
        yield* s.venue.amend(amend("first", { quantity: "1" }))
        yield* bookDelta(s, "sim-a", [], [["100", "1"]])
        assert.strictEqual(trail(s.received, "first").at(-1), "3 filled 1@100 filled=1", "a smaller quantity kept its place")
        yield* s.venue.submit(limit("third", "buy", "1", "100", on))
        yield* s.venue.amend(amend("second", { quantity: "2" }))
        yield* bookDelta(s, "sim-a", [], [["100", "1"]])
        assert.strictEqual(trail(s.received, "third").at(-1), "2 filled 1@100 filled=1", "a larger quantity went to the back")
        yield* s.venue.submit(limit("fourth", "buy", "1", "100", on))
        yield* s.venue.amend(amend("second", { price: "101" }))
        yield* s.venue.amend(amend("second", { price: "100" }))
        yield* bookDelta(s, "sim-a", [], [["100", "1"]])
        assert.strictEqual(trail(s.received, "fourth").at(-1), "2 filled 1@100 filled=1", "a price change went to the back")
      })))

  it.effect("an amended price that crosses fills at once; an amend beyond the balance is refused and keeps the order", () =>
    withPaper({ venues: { "sim-a": { balances: { USDT: "300" }, fees: { maker: "0", taker: "0" } } } }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "1"]], [["105", "1"]])
        yield* s.venue.submit(limit("a-1", "buy", "2", "100", on))
        const poor = yield* s.venue.amend(amend("a-1", { quantity: "4" })).pipe(Effect.flip)
        assert.deepStrictEqual([poor._tag, poor._tag === "InsufficientBalance" ? poor.required : ""], ["InsufficientBalance", "400"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["300", "100", "200"], "the old reservation stays")
        const crossed = yield* s.venue.amend(amend("a-1", { price: "106" }))
        assert.deepStrictEqual([crossed.status, crossed.filledQty, crossed.avgPrice], ["partially_filled", "1", "105"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["195", "89", "106"])
      })))
})

describe("paper orders: cancel-all", () => {
  it.effect("cancels the open orders in scope (a consumer, a venue, or all) with the reason, and answers with them", () =>
    withPaper({ venues: { "sim-a": roomy, "sim-b": roomy } }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "1"]], [["110", "1"]])
        yield* book(s, "sim-b", [["90", "1"]], [["110", "1"]])
        yield* s.venue.submit(limit("a-1", "buy", "1", "100", { venue: "sim-a", consumerId: "alpha" }))
        yield* s.venue.submit(limit("a-2", "buy", "1", "100", { venue: "sim-b", consumerId: "alpha" }))
        yield* s.venue.submit(limit("b-1", "buy", "1", "100", { venue: "sim-a", consumerId: "beta" }))
        yield* s.venue.submit(limit("b-2", "buy", "1", "100", { venue: "sim-b", consumerId: "beta" }))
        const alphaOnA = yield* s.venue.cancelAll({ consumerId: "alpha", venue: "sim-a" }, "kill switch")
        assert.deepStrictEqual(alphaOnA.map((v) => [v.clientOrderId, v.status, v.reason]), [["a-1", "canceled", "kill switch"]])
        const onB = yield* s.venue.cancelAll({ venue: "sim-b" }, "venue down")
        assert.deepStrictEqual(onB.map((v) => v.clientOrderId).sort(), ["a-2", "b-2"])
        const rest = yield* s.venue.cancelAll({}, "all")
        assert.deepStrictEqual(rest.map((v) => v.clientOrderId), ["b-1"])
        assert.deepStrictEqual(yield* s.venue.cancelAll({}, "again"), [])
        assert.deepStrictEqual(trail(s.received, "b-1"), ["1 new filled=0", "2 canceled filled=0"])
        assert.strictEqual(s.venue.stats().resting, 0)
        const again = yield* s.venue.cancel(cancel("a-1", "alpha")).pipe(Effect.flip)
        assert.strictEqual(again._tag, "OrderNotCancelable")
      })))
})

describe("paper orders: instrument rules", () => {
  const ruled = {
    venues: {
      "sim-a": { ...roomy, instruments: { [SYM]: { tickSize: "0.5", lotSize: "0.01", minQty: "0.02", minNotional: "10" } } }
    }
  }

  it.effect("tick, lot, minimum quantity and minimum notional are checked before the book, in that order", () =>
    withPaper(ruled, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        const tick = yield* s.venue.submit(limit("t-1", "buy", "0.2", "100.25", on)).pipe(Effect.flip)
        assert.instanceOf(tick, InvalidPrice)
        assert.deepStrictEqual([(tick as InvalidPrice).price, (tick as InvalidPrice).rule], ["100.25", "tick size 0.5"])
        const lot = yield* s.venue.submit(limit("t-2", "buy", "0.015", "100", on)).pipe(Effect.flip)
        assert.instanceOf(lot, InvalidQuantity)
        assert.strictEqual((lot as InvalidQuantity).rule, "lot size 0.01")
        const small = yield* s.venue.submit(limit("t-3", "buy", "0.01", "100", on)).pipe(Effect.flip)
        assert.instanceOf(small, BelowMinimum)
        assert.deepStrictEqual([(small as BelowMinimum).measure, (small as BelowMinimum).minimum], ["quantity", "0.02"])
        const notional = yield* s.venue.submit(limit("t-4", "buy", "0.05", "100", on)).pipe(Effect.flip)
        assert.deepStrictEqual([notional._tag, (notional as BelowMinimum).measure, (notional as BelowMinimum).value], [
          "BelowMinimum",
          "notional",
          "5"
        ])
        // a market order's notional is taken at the venue's mid (100): 0.09 x 100 = 9
        const mkt = yield* s.venue.submit(market("t-5", "buy", "0.09", on)).pipe(Effect.flip)
        assert.deepStrictEqual([mkt._tag, (mkt as BelowMinimum).value], ["BelowMinimum", "9"])
        for (const id of ["t-1", "t-2", "t-3", "t-4", "t-5"]) assert.deepStrictEqual(trail(s.received, id), ["1 rejected filled=0"])
        const ok = yield* s.venue.submit(limit("t-6", "buy", "0.1", "100.5", on))
        assert.strictEqual(ok.status, "new")
        const badAmend = yield* s.venue.amend(amend("t-6", { price: "100.2" })).pipe(Effect.flip)
        assert.strictEqual(badAmend._tag, "InvalidPrice")
        assert.strictEqual(s.venue.portfolio().balances.find((b) => b.asset === "USDT")!.reserved, "10.05")
      })))

  it.effect("a market buy cut short by the balance fills whole lots only", () =>
    withPaper({
      venues: {
        "sim-a": { balances: { USDT: "255" }, fees: { maker: "0", taker: "0" }, instruments: { [SYM]: { lotSize: "0.1" } } }
      }
    }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["100", "10"]])
        const v = yield* s.venue.submit(market("m-1", "buy", "3", on))
        assert.deepStrictEqual([v.status, v.filledQty], ["canceled", "2.5"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["5", "5", "0"])
      })))
})
