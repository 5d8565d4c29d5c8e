/**
 * The paper venue's account: balances with reservations, fees (maker for a
 * resting order's fills, taker at arrival), positions by the average-cost
 * method with realized and unrealized P&L, per venue and per consumer. Figures
 * are checked against cases computed by hand; a property test runs random
 * order sequences and checks that no balance goes negative and every
 * reservation is released.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { InsufficientBalance } from "../../schema/Rejection.js"
import type { OrderView } from "../../src/ExecutionVenue.js"
import { dec, ZERO } from "../../src/internal/decimal.js"
import { balanceOf, book, bookDelta, cancel, limit, market, type Services, SYM, trail, withPaper } from "./paperHarness.js"

/** One venue, fees 0.001 (maker) and 0.002 (taker): round figures to check by hand. */
const account = (balances: Record<string, string>) => ({
  venues: { "sim-a": { balances, fees: { maker: "0.001", taker: "0.002" } } }
})

const positionOf = (s: Services, consumerId?: string) => {
  const p = s.venue.portfolio()
  const positions = consumerId === undefined ? p.positions : p.byConsumer.find((c) => c.consumerId === consumerId)?.positions ?? []
  return positions.find((x) => x.venue === "sim-a" && x.symbol === SYM)
}

describe("paper account: fees, positions and P&L by hand", () => {
  it.effect("buy 2 @100 (taker), sell 1 @110 (maker, resting), mark 120", () =>
    withPaper(account({ USDT: "1000", BTC: "0" }), (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "5"]], [["100", "2"], ["105", "5"]])
        const bought = yield* s.venue.submit(market("b-1", "buy", "2", { venue: "sim-a" }))
        assert.deepStrictEqual([bought.status, bought.avgPrice], ["filled", "100"])
        // 200 + 0.002 x 200 = 200.4 paid
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["799.6", "799.6", "0"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "BTC"), ["2", "2", "0"])
        const resting = yield* s.venue.submit(limit("s-1", "sell", "1", "110", { venue: "sim-a" }))
        assert.strictEqual(resting.status, "new")
        assert.deepStrictEqual(balanceOf(s, "sim-a", "BTC"), ["2", "1", "1"], "the sell reserves its base quantity")
        // the market rises through 110: the resting sell fills as a maker
        yield* book(s, "sim-a", [["110", "3"]], [["111", "1"]])
        assert.deepStrictEqual(trail(s.received, "s-1"), ["1 new filled=0", "2 filled 1@110 filled=1"])
        // 110 - 0.001 x 110 = 109.89 received
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["909.49", "909.49", "0"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "BTC"), ["1", "1", "0"])
        yield* book(s, "sim-a", [["119", "1"]], [["121", "1"]])
        const p = positionOf(s)!
        assert.deepStrictEqual(
          [p.quantity, p.avgEntry, p.mark, p.realizedPnl, p.unrealizedPnl, p.fees, p.notional, p.quote],
          ["1", "100", "120", "10", "20", "0.51", "120", "USDT"]
        )
        const mine = s.venue.portfolio().byConsumer.find((c) => c.consumerId === "strat-a")!
        assert.deepStrictEqual([mine.realizedPnl, mine.unrealizedPnl, mine.fees, mine.openOrders], ["10", "20", "0.51", 0])
        assert.deepStrictEqual(mine.byQuote.map((q) => [q.quote, q.realizedPnl, q.unrealizedPnl, q.fees]), [["USDT", "10", "20", "0.51"]])
      })))

  it.effect("the average entry moves with each buy; a sell through zero realizes the old side and opens the rest at its price", () =>
    withPaper(account({ USDT: "10000", BTC: "5" }), (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "10"]], [["100", "1"], ["130", "2"]])
        yield* s.venue.submit(market("b-1", "buy", "3", { venue: "sim-a" }))
        // (100 x 1 + 130 x 2) / 3 = 120
        assert.deepStrictEqual([positionOf(s)!.quantity, positionOf(s)!.avgEntry], ["3", "120"])
        yield* s.venue.submit(market("s-1", "sell", "5", { venue: "sim-a" }))
        const p = positionOf(s)!
        // closes 3 at 90: (90 - 120) x 3 = -90; opens a short of 2 at 90
        assert.deepStrictEqual([p.quantity, p.avgEntry, p.realizedPnl], ["-2", "90", "-90"])
        // fees, all taker: 0.002 x (100 + 260) + 0.002 x 450 = 0.72 + 0.9
        assert.strictEqual(p.fees, "1.62")
        yield* book(s, "sim-a", [["79", "10"]], [["81", "10"]])
        // a short of 2 from 90, marked at 80: +20
        assert.deepStrictEqual([positionOf(s)!.mark, positionOf(s)!.unrealizedPnl], ["80", "20"])
        yield* s.venue.submit(market("b-2", "buy", "2", { venue: "sim-a" }))
        const flat = positionOf(s)!
        // covers 2 at 81: (81 - 90) x -2 = +18 more
        assert.deepStrictEqual([flat.quantity, flat.avgEntry, flat.realizedPnl, flat.unrealizedPnl], ["0", undefined, "-72", "0"])
      })))

  it.effect("positions are per consumer and summed for the account; balances are the venue's, shared", () =>
    withPaper(account({ USDT: "1000", BTC: "1" }), (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["100", "10"]])
        yield* s.venue.submit(market("a-1", "buy", "2", { venue: "sim-a", consumerId: "alpha" }))
        yield* s.venue.submit(market("b-1", "sell", "1", { venue: "sim-a", consumerId: "beta" }))
        yield* s.venue.submit(limit("b-2", "buy", "1", "50", { venue: "sim-a", consumerId: "beta" }))
        assert.deepStrictEqual([positionOf(s, "alpha")!.quantity, positionOf(s, "beta")!.quantity, positionOf(s)!.quantity], [
          "2",
          "-1",
          "1"
        ])
        const beta = s.venue.portfolio().byConsumer.find((c) => c.consumerId === "beta")!
        assert.strictEqual(beta.openOrders, 1)
        // 1000 - 200.4 + 99 - 0.198 = 898.402; beta's resting buy holds 50 x 1 x 1.002
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["898.402", "848.302", "50.1"])
        yield* s.venue.cancel(cancel("b-2", "beta"))
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["898.402", "898.402", "0"], "the cancel released it")
      })))
})

describe("paper account: reservations and balances", () => {
  it.effect("a buy limit beyond the available quote, or a sell beyond the base, is InsufficientBalance and holds nothing", () =>
    withPaper(account({ USDT: "100", BTC: "0.5" }), (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["101", "10"]])
        const buy = yield* s.venue.submit(limit("l-1", "buy", "1", "100", { venue: "sim-a" })).pipe(Effect.flip)
        assert.instanceOf(buy, InsufficientBalance)
        assert.deepStrictEqual([(buy as InsufficientBalance).asset, (buy as InsufficientBalance).required], ["USDT", "100.2"])
        const sell = yield* s.venue.submit(market("m-1", "sell", "1", { venue: "sim-a" })).pipe(Effect.flip)
        assert.deepStrictEqual([sell._tag, (sell as InsufficientBalance).asset, (sell as InsufficientBalance).available], [
          "InsufficientBalance",
          "BTC",
          "0.5"
        ])
        assert.deepStrictEqual(trail(s.received, "l-1"), ["1 rejected filled=0"])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["100", "100", "0"])
        // at most 100 / (1 + 0.002) at 99.8 fits exactly
        const fits = yield* s.venue.submit(limit("l-2", "buy", "1", "99.8", { venue: "sim-a" }))
        assert.strictEqual(fits.status, "new")
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["100", "0.0004", "99.9996"])
      })))

  it.effect("a market buy stops where the money runs out and cancels the rest with the reason; nothing goes negative", () =>
    withPaper({ venues: { "sim-a": { balances: { USDT: "250" }, fees: { maker: "0", taker: "0" } } } }, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "10"]], [["100", "2"], ["125", "5"]])
        const v = yield* s.venue.submit(market("m-1", "buy", "5", { venue: "sim-a" }))
        assert.deepStrictEqual([v.status, v.filledQty, v.reason], ["canceled", "2.4", "insufficient USDT: 2.4 of 5 filled"])
        assert.deepStrictEqual(trail(s.received, "m-1"), [
          "1 new filled=0",
          "2 partially_filled 2@100 filled=2",
          "3 partially_filled 0.4@125 filled=2.4",
          "4 canceled filled=2.4"
        ])
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["0", "0", "0"])
        const broke = yield* s.venue.submit(market("m-2", "buy", "1", { venue: "sim-a" })).pipe(Effect.flip)
        assert.strictEqual(broke._tag, "InsufficientBalance")
      })))

  it.effect("a partly filled buy keeps the reservation of its rest; the fill at a better price gives back the difference", () =>
    withPaper(account({ USDT: "1000" }), (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["90", "1"]], [["110", "1"]])
        yield* s.venue.submit(limit("l-1", "buy", "2", "100", { venue: "sim-a" }))
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["1000", "799.6", "200.4"])
        yield* bookDelta(s, "sim-a", [], [["95", "1"]])
        // 95 + 0.001 x 95 = 95.095 paid (maker); 100.2 of the reservation released
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["904.905", "804.705", "100.2"])
        yield* s.venue.cancel(cancel("l-1"))
        assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["904.905", "904.905", "0"])
      })))
})

// ---------------------------------------------------------------------------
// Property: random order sequences
// ---------------------------------------------------------------------------

type Op =
  | { readonly op: "limit"; readonly side: "buy" | "sell"; readonly qty: number; readonly price: number }
  | { readonly op: "market"; readonly side: "buy" | "sell"; readonly qty: number }
  | { readonly op: "cancel"; readonly which: number }
  | { readonly op: "amend"; readonly which: number; readonly qty: number; readonly price: number }
  | { readonly op: "move"; readonly mid: number; readonly depth: number }

const side = fc.constantFrom("buy" as const, "sell" as const)
const qty = fc.integer({ min: 1, max: 40 }) // tenths
const price = fc.integer({ min: 90, max: 110 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("limit" as const), side, qty, price }),
  fc.record({ op: fc.constant("market" as const), side, qty }),
  fc.record({ op: fc.constant("cancel" as const), which: fc.nat(20) }),
  fc.record({ op: fc.constant("amend" as const), which: fc.nat(20), qty, price }),
  fc.record({ op: fc.constant("move" as const), mid: price, depth: fc.integer({ min: 1, max: 30 }) })
)

const START = { USDT: "1000", BTC: "2" }
const FEES = { maker: "0.001", taker: "0.002" }

describe("paper account: random order sequences", () => {
  it.effect.prop(
    "no balance goes negative, reservations equal what the open orders hold, and all of it is released at the end",
    [fc.array(opArb, { minLength: 1, maxLength: 40 })],
    ([ops]) =>
      withPaper({ venues: { "sim-a": { balances: START, fees: FEES } } }, (s) =>
        Effect.gen(function*() {
          const ids: Array<string> = []
          let n = 0
          const check = (after: string) => {
            const p = s.venue.portfolio()
            for (const b of p.balances) {
              for (const f of [b.total, b.available, b.reserved]) {
                assert.isFalse(dec(f).isNegative(), `${b.asset} ${f} after ${after}`)
              }
            }
            // what the open orders hold: a buy its limit x leaves x (1 + 0.002), a sell its leaves
            let quote = ZERO
            let base = ZERO
            return Effect.forEach(ids, (id) => s.venue.query({ _tag: "QueryOrder", commandId: `q-${id}`, consumerId: "strat-a", clientOrderId: id } as never), { discard: false }).pipe(
              Effect.map((views: ReadonlyArray<OrderView>) => {
                for (const v of views) {
                  if (v.status !== "new" && v.status !== "partially_filled") continue
                  if (v.side === "sell") base = base.plus(v.leavesQty)
                  else quote = quote.plus(dec(v.price!).times(v.leavesQty).times("1.002"))
                }
                const reserved = (asset: string) => dec(p.balances.find((b) => b.asset === asset)?.reserved ?? "0")
                assert.isTrue(reserved("USDT").eq(quote), `USDT reserved ${reserved("USDT")} = ${quote} after ${after}`)
                assert.isTrue(reserved("BTC").eq(base), `BTC reserved ${reserved("BTC")} = ${base} after ${after}`)
                // the base balance moved by exactly the position
                const btc = dec(p.balances.find((b) => b.asset === "BTC")!.total)
                const position = dec(p.positions[0]?.quantity ?? "0")
                assert.isTrue(btc.minus(START.BTC).eq(position), `BTC ${btc} = 2 + position ${position}`)
              })
            )
          }
          yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
          for (const op of ops) {
            const id = `o-${++n}`
            switch (op.op) {
              case "limit":
                ids.push(id)
                yield* Effect.either(s.venue.submit(limit(id, op.side, String(op.qty / 10), String(op.price), { venue: "sim-a" })))
                break
              case "market":
                ids.push(id)
                yield* Effect.either(s.venue.submit(market(id, op.side, String(op.qty / 10), { venue: "sim-a" })))
                break
              case "cancel":
                if (ids.length > 0) yield* Effect.either(s.venue.cancel(cancel(ids[op.which % ids.length]!)))
                break
              case "amend":
                if (ids.length > 0) {
                  yield* Effect.either(s.venue.amend({
                    _tag: "AmendOrder",
                    commandId: `a-${id}`,
                    consumerId: "strat-a",
                    clientOrderId: ids[op.which % ids.length]!,
                    quantity: String(op.qty / 10),
                    price: String(op.price)
                  } as never))
                }
                break
              case "move": {
                const q = String(op.depth / 10)
                yield* book(s, "sim-a", [[String(op.mid - 1), q]], [[String(op.mid + 1), q]])
                break
              }
            }
            yield* check(`${op.op} ${id}`)
          }
          const canceled = yield* s.venue.cancelAll({}, "end of the sequence")
          for (const v of canceled) assert.deepStrictEqual([v.status, v.reason], ["canceled", "end of the sequence"])
          for (const b of s.venue.portfolio().balances) assert.strictEqual(b.reserved, "0", `${b.asset} released`)
          assert.strictEqual(s.venue.stats().balanceShortfalls, 0)
        })),
    { fastCheck: { numRuns: 60 } }
  )
})
