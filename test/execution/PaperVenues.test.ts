/**
 * The paper venue keeps one book per (venue, symbol): an order fills against
 * the book of the venue it names, whatever the other venues quote, and an
 * order that names no venue where several quote the symbol is refused. The
 * latency model: an order reaches its venue after `latencyMs` on the Effect
 * Clock and fills against the book as it is then.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { UnknownVenue, VenueRequired } from "../../schema/Rejection.js"
import {
  book,
  bookDelta,
  cancel,
  limit,
  market,
  query,
  roomy,
  SYM,
  ticker,
  trail,
  withPaper
} from "./paperHarness.js"

/** Three venues quoting BTC-USDT far apart: sim-a around 100, sim-b around 200, sim-c around 300. */
const threeVenues = { venues: { "sim-a": roomy, "sim-b": roomy, "sim-c": roomy } }

describe("paper venue: one book per venue", () => {
  it.effect("20 market buys on sim-b fill at sim-b's price, whichever venue sent the last snapshot", () =>
    withPaper(threeVenues, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "100"]], [["101", "100"]])
        yield* book(s, "sim-b", [["199", "100"]], [["201", "100"]])
        yield* book(s, "sim-c", [["299", "100"]], [["301", "100"]])
        const prices = new Set<string>()
        for (let i = 0; i < 20; i++) {
          // the other venues keep quoting between the orders
          yield* book(s, i % 2 === 0 ? "sim-c" : "sim-a", [["299", "100"]], [["301", "100"]])
          const v = yield* s.venue.submit(market(`b-${i}`, "buy", "0.1", { venue: "sim-b" }))
          assert.deepStrictEqual([v.status, v.venue], ["filled", "sim-b"])
          prices.add(v.avgPrice!)
        }
        assert.deepStrictEqual([...prices], ["201"])
        const position = s.venue.portfolio().positions.find((p) => p.venue === "sim-b")!
        assert.deepStrictEqual([position.quantity, position.avgEntry], ["2", "201"])
        assert.isUndefined(s.venue.portfolio().positions.find((p) => p.venue !== "sim-b"), "no other venue traded")
      })))

  it.effect("a resting order fills on its own venue's market data only", () =>
    withPaper(threeVenues, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        yield* book(s, "sim-b", [["199", "1"]], [["201", "1"]])
        yield* s.venue.submit(limit("l-1", "buy", "1", "150", { venue: "sim-b" }))
        // sim-a's ask of 101 crosses 150, but the order rests on sim-b
        yield* bookDelta(s, "sim-a", [], [["100", "5"]])
        yield* ticker(s, "sim-c", "120", "130")
        assert.deepStrictEqual(trail(s.received, "l-1"), ["1 new filled=0"])
        yield* bookDelta(s, "sim-b", [], [["149", "0.4"]])
        yield* book(s, "sim-b", [["140", "1"]], [["145", "2"]])
        assert.deepStrictEqual(trail(s.received, "l-1"), [
          "1 new filled=0",
          "2 partially_filled 0.4@149 filled=0.4",
          "3 filled 0.6@145 filled=1"
        ])
      })))

  it.effect("the mark of a venue is its own mid (a one-sided book: that side)", () =>
    withPaper(threeVenues, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        yield* ticker(s, "sim-b", "199.5", "200.5")
        yield* book(s, "sim-c", [["299", "1"]], [])
        assert.deepStrictEqual(
          [s.venue.markPrice("sim-a", SYM), s.venue.markPrice("sim-b", SYM), s.venue.markPrice("sim-c", SYM)],
          ["100", "200", "299"]
        )
        assert.isUndefined(s.venue.markPrice("sim-a", "ETH-USDT"))
        assert.isUndefined(s.venue.markPrice("mtgox", SYM))
      })))

  it.effect("an order that names no venue where several quote the symbol is VenueRequired, listing them", () =>
    withPaper(threeVenues, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        yield* book(s, "sim-b", [["199", "1"]], [["201", "1"]])
        const err = yield* s.venue.submit(market("m-1", "buy", "1")).pipe(Effect.flip)
        assert.instanceOf(err, VenueRequired)
        const r = err as VenueRequired
        assert.deepStrictEqual([r.clientOrderId, r.symbol, [...r.venues].sort()], ["m-1", SYM, ["sim-a", "sim-b"]])
        assert.deepStrictEqual(trail(s.received, "m-1"), ["1 rejected filled=0"])
        assert.strictEqual(s.venue.portfolio().positions.length, 0)
      })))

  it.effect("an order that names no venue trades on the one venue that quotes its symbol", () =>
    withPaper(threeVenues, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-b", [["199", "1"]], [["201", "1"]])
        yield* book(s, "sim-a", [["9", "1"]], [["11", "1"]], "ETH-USDT")
        const v = yield* s.venue.submit(market("m-1", "buy", "1"))
        assert.deepStrictEqual([v.venue, v.status, v.avgPrice], ["sim-b", "filled", "201"])
      })))

  it.effect("a venue configured with its symbols is required by them before any market data; one that does not carry the symbol is UnknownVenue", () =>
    withPaper({
      venues: {
        "sim-a": { ...roomy, symbols: [SYM, "ETH-USDT"] },
        "sim-b": { ...roomy, symbols: [SYM] },
        "sim-c": { ...roomy, symbols: ["ETH-USDT"] }
      }
    }, (s) =>
      Effect.gen(function*() {
        const required = yield* s.venue.submit(market("m-1", "buy", "1")).pipe(Effect.flip)
        assert.strictEqual(required._tag, "VenueRequired")
        const wrong = yield* s.venue.submit(market("m-2", "buy", "1", { venue: "sim-c" })).pipe(Effect.flip)
        assert.instanceOf(wrong, UnknownVenue)
        assert.deepStrictEqual([(wrong as UnknownVenue).venue, (wrong as UnknownVenue).symbol], ["sim-c", SYM])
        const unknown = yield* s.venue.submit(market("m-3", "buy", "1", { venue: "mtgox" })).pipe(Effect.flip)
        assert.deepStrictEqual([unknown._tag, (unknown as UnknownVenue).venue], ["UnknownVenue", "mtgox"])
        const noData = yield* s.venue.submit(market("m-4", "buy", "1", { venue: "sim-a" })).pipe(Effect.flip)
        assert.deepStrictEqual([noData._tag, noData._tag === "VenueRejected" ? noData.code : ""], ["VenueRejected", "no_market_data"])
        assert.strictEqual(s.venue.stats().rejected, 4)
      })))

  it.effect("a resubmission naming another venue is a DuplicateClientOrderId; one naming none is the same order", () =>
    withPaper(threeVenues, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        yield* book(s, "sim-b", [["199", "1"]], [["201", "1"]])
        const first = yield* s.venue.submit(limit("l-1", "buy", "1", "90", { venue: "sim-a" }))
        const other = yield* s.venue.submit(limit("l-1", "buy", "1", "90", { venue: "sim-b" })).pipe(Effect.flip)
        assert.deepStrictEqual([other._tag, other._tag === "DuplicateClientOrderId" ? other.fields : []], [
          "DuplicateClientOrderId",
          ["venue"]
        ])
        const again = yield* s.venue.submit(limit("l-1", "buy", "1", "90", { venue: "sim-a" }))
        assert.deepStrictEqual(again, first)
      })))
})

describe("paper venue: latency", () => {
  const slow = { venues: { "sim-a": { ...roomy, latencyMs: 50 }, "sim-b": roomy } }

  it.effect("an order reaches its venue after latencyMs and fills against the book as it is then", () =>
    withPaper(slow, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["100", "1"]])
        const fiber = yield* Effect.fork(s.venue.submit(market("m-1", "buy", "1", { venue: "sim-a" })))
        yield* TestClock.adjust("49 millis")
        assert.deepStrictEqual(trail(s.received, "m-1"), [], "nothing happens before the order arrives")
        const inFlight = yield* s.venue.query(query("m-1"))
        assert.deepStrictEqual([inFlight.status, inFlight.reports], ["new", 0])
        // the market moves while the order travels
        yield* book(s, "sim-a", [["104", "1"]], [["105", "1"]])
        yield* TestClock.adjust("1 millis")
        const v = yield* Fiber.join(fiber)
        assert.deepStrictEqual([v.status, v.avgPrice], ["filled", "105"])
        assert.deepStrictEqual(trail(s.received, "m-1"), ["1 new filled=0", "2 filled 1@105 filled=1"])
      })))

  it.effect("a limit order that crossed when sent but not when it arrives rests; a venue without latency answers at once", () =>
    withPaper(slow, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["100", "1"]])
        yield* book(s, "sim-b", [["99", "1"]], [["100", "1"]])
        const fiber = yield* Effect.fork(s.venue.submit(limit("l-1", "buy", "1", "100", { venue: "sim-a" })))
        yield* Effect.yieldNow()
        yield* book(s, "sim-a", [["101", "1"]], [["102", "1"]])
        yield* TestClock.adjust("50 millis")
        const v = yield* Fiber.join(fiber)
        assert.deepStrictEqual([v.status, v.filledQty], ["new", "0"])
        const fast = yield* s.venue.submit(limit("l-2", "buy", "1", "100", { venue: "sim-b" }))
        assert.deepStrictEqual([fast.status, fast.avgPrice], ["filled", "100"])
      })))

  it.effect("a sender interrupted while its order travels leaves no open order behind", () =>
    withPaper(slow, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["100", "1"]])
        const fiber = yield* Effect.fork(s.venue.submit(limit("l-1", "buy", "1", "90", { venue: "sim-a" })))
        yield* TestClock.adjust("10 millis")
        yield* Fiber.interrupt(fiber)
        const v = yield* s.venue.query(query("l-1"))
        assert.deepStrictEqual([v.status, v.reason], ["canceled", "canceled on its way to the venue: the sender was interrupted"])
        yield* TestClock.adjust("100 millis")
        assert.deepStrictEqual(trail(s.received, "l-1"), ["1 canceled filled=0"])
        assert.deepStrictEqual([s.venue.stats().resting, s.venue.portfolio().byConsumer[0]?.openOrders ?? 0], [0, 0])
      })))

  it.effect("a cancel travels too: the order can fill before the cancel arrives", () =>
    withPaper(slow, (s) =>
      Effect.gen(function*() {
        yield* book(s, "sim-a", [["99", "1"]], [["101", "1"]])
        const placed = yield* Effect.fork(s.venue.submit(limit("l-1", "buy", "1", "100", { venue: "sim-a" })))
        yield* TestClock.adjust("50 millis")
        assert.strictEqual((yield* Fiber.join(placed)).status, "new")
        const canceling = yield* Effect.fork(s.venue.cancel(cancel("l-1")).pipe(Effect.flip))
        yield* Effect.yieldNow()
        yield* book(s, "sim-a", [["99", "1"]], [["100", "1"]])
        yield* TestClock.adjust("50 millis")
        const refused = yield* Fiber.join(canceling)
        assert.deepStrictEqual([refused._tag, refused._tag === "OrderNotCancelable" ? refused.status : ""], [
          "OrderNotCancelable",
          "filled"
        ])
      })))
})
