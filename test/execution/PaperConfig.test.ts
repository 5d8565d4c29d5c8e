/**
 * The `paper.venues` section of the configuration: each venue's account,
 * fees, latency and instrument rules, checked by path; a venue named there
 * must be a configured venue quoting the symbols it sets rules for; and what
 * it says reaches the paper venue of the application.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { paperVenues } from "../../layers/Application.js"
import * as Config from "../../src/Config.js"
import { book, market, withPaper } from "./paperHarness.js"

const venues = [
  { type: "simulated", name: "sim-a", symbols: ["BTC-USDT", "ETH-USDT"] },
  { type: "simulated", name: "sim-b", symbols: ["BTC-USDT"] }
]
const problems = (paper: unknown): ReadonlyArray<string> =>
  Either.match(Config.validate({ venues, merges: [], strategies: { bbo: { enabled: false } }, paper }, "test"), {
    onLeft: (e) => e.issues.map((i) => `${i.path}: ${i.message}`),
    onRight: () => []
  })

describe("config: paper.venues", () => {
  it("every key is optional; balances, fees and rules take strings or numbers", () => {
    assert.deepStrictEqual(problems({}), [])
    assert.deepStrictEqual(problems({ venues: { "sim-a": {} } }), [])
    assert.deepStrictEqual(
      problems({
        venues: {
          "sim-a": {
            balances: { USDT: 5000, BTC: "0.25" },
            fees: { maker: 0, taker: "0.001" },
            latencyMs: 40,
            instruments: { "BTC-USDT": { tickSize: "0.01", lotSize: 0.0001, minQty: "0.0001", minNotional: 5 } }
          }
        }
      }),
      []
    )
  })

  it("hostile and wrong values are refused by path", () => {
    const cases: ReadonlyArray<readonly [unknown, string | ReadonlyArray<string>]> = [
      [{ venues: { "sim-a": { balances: { USDT: "-5" } } } }, `paper.venues.sim-a.balances.USDT: balance must be a non-negative decimal, e.g. "100000" or "0.0005" (got "-5")`],
      [{ venues: { "sim-a": { balances: { USDT: "1e9" } } } }, `paper.venues.sim-a.balances.USDT: balance must be a non-negative decimal, e.g. "100000" or "0.0005" (got "1e9")`],
      [{ venues: { "sim-a": { balances: { USDT: Infinity } } } }, [
        "paper.venues.sim-a.balances.USDT: Expected string, actual Infinity",
        "paper.venues.sim-a.balances.USDT: balance must be finite"
      ]],
      [{ venues: { "sim-a": { fees: { maker: "0.0002", taker: "0.5" } } } }, "paper.venues.sim-a.fees.taker: fees.taker must be at most 0.1 (got 0.5)"],
      [{ venues: { "sim-a": { fees: { maker: "0.0002" } } } }, "paper.venues.sim-a.fees.taker: is missing"],
      [{ venues: { "sim-a": { latencyMs: -1 } } }, "paper.venues.sim-a.latencyMs: latencyMs must be an integer in 0..60000 (got -1)"],
      [{ venues: { "sim-a": { latencyMs: 1.5 } } }, "paper.venues.sim-a.latencyMs: latencyMs must be an integer in 0..60000 (got 1.5)"],
      [{ venues: { "sim-a": { instruments: { "BTC-USDT": { tickSize: "0" } } } } }, "paper.venues.sim-a.instruments.BTC-USDT.tickSize: tickSize must be above 0 (got 0)"],
      [{ venues: { "sim-a": { instruments: { "BTC-USDT": { lotSize: "abc" } } } } }, `paper.venues.sim-a.instruments.BTC-USDT.lotSize: lotSize must be a non-negative decimal, e.g. "100000" or "0.0005" (got "abc")`],
      [{ venues: { "sim-z": {} } }, "paper.venues.sim-z: unknown venue \"sim-z\" (configured: sim-a, sim-b)"],
      [{ venues: { "sim-b": { instruments: { "ETH-USDT": { tickSize: "0.01" } } } } }, "paper.venues.sim-b.instruments.ETH-USDT: venue \"sim-b\" does not quote ETH-USDT"]
    ]
    for (const [paper, expected] of cases) {
      assert.deepStrictEqual(problems(paper), typeof expected === "string" ? [expected] : expected, JSON.stringify(paper))
    }
  })

  it.effect("what the section says reaches the paper venue: every configured venue, with its symbols and account", () =>
    Effect.gen(function*() {
      const config = Either.getOrThrow(Config.validate({
        venues,
        merges: [],
        strategies: { bbo: { enabled: false } },
        paper: { venues: { "sim-b": { balances: { USDT: 300 }, fees: { maker: 0, taker: 0 }, latencyMs: 0 } } }
      }, "test"))
      const options = paperVenues(config)
      assert.deepStrictEqual(Object.keys(options), ["sim-a", "sim-b"])
      assert.deepStrictEqual(options["sim-a"]!.symbols, ["BTC-USDT", "ETH-USDT"])
      assert.isUndefined(options["sim-a"]!.balances, "a venue not named trades with the default account")
      yield* withPaper({ venues: options }, (s) =>
        Effect.gen(function*() {
          const required = yield* s.venue.submit(market("m-0", "buy", "1")).pipe(Effect.flip)
          assert.strictEqual(required._tag, "VenueRequired", "both venues quote BTC-USDT before any market data")
          yield* book(s, "sim-b", [["99", "10"]], [["100", "10"]])
          const v = yield* s.venue.submit(market("m-1", "buy", "5", { venue: "sim-b" }))
          assert.deepStrictEqual([v.status, v.filledQty], ["canceled", "3"], "sim-b's 300 USDT buy 3 at 100")
          const balances = s.venue.portfolio().balances.map((b) => `${b.venue} ${b.asset} ${b.total}`)
          assert.deepStrictEqual(balances, [
            "sim-a USDT 100000",
            "sim-a BTC 1",
            "sim-a ETH 10",
            "sim-b USDT 0",
            "sim-b BTC 3"
          ])
        }))
    }))
})
