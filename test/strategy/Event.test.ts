/**
 * The strategy's event union: one check on `kind` narrows the payload (checked
 * by the compiler: each `@ts-expect-error` below must be an error), merged
 * kinds are distinct, and the narrowing costs nothing at run time (the pooled
 * object itself, or one reused view for merged events).
 */
import { assert, describe, it } from "@effect/vitest"
import { decimal, MergedTicker, Ticker, VenueQuote } from "../../schema/Event.js"
import { Event, MergedEvent } from "../../src/Event.js"
import { isCriticalEvent, isMarket, isMerged, MergedView, quoteOf, type StrategyEvent, strategyEventOf } from "../../src/strategy/Event.js"

/** Compiled, never run for its result: what a handler can reach with one check. */
export const narrowing = (e: StrategyEvent): string => {
  // @ts-expect-error a payload's fields are not reachable before the check
  void e.payload.bidPrice
  if (e.kind === "ticker") {
    const bid: string = e.payload.bidPrice
    // @ts-expect-error a venue's ticker is not a merged one
    void e.payload.bestBid
    return bid
  }
  if (e.kind === "merged_ticker") {
    // @ts-expect-error a merged ticker has no venue bid, only the best of all
    void e.payload.bidPrice
    return `${e.payload.bestBid}@${e.payload.bestBidProvider} ${e.mergeId}`
  }
  if (e.kind === "exec_report") return e.payload.status
  if (e.kind === "control_result") return e.payload.outcome
  // @ts-expect-error only merged events carry a merge id
  void e.mergeId
  return e.kind
}

const ticker = Ticker.make({
  bidPrice: decimal("100.5"),
  bidQty: decimal("1"),
  askPrice: decimal("100.7"),
  askQty: decimal("2"),
  exchangeTs: 1
})

const merged = (bestBid: string) =>
  MergedTicker.make({
    bestBid: decimal(bestBid),
    bestBidProvider: "sim-a",
    bestAsk: decimal("101"),
    bestAskProvider: "sim-b",
    quotes: [VenueQuote.make({ provider: "sim-a", bidPrice: decimal(bestBid), bidQty: decimal("1"), askPrice: decimal("101"), askQty: decimal("1") })]
  })

describe("strategy events", () => {
  it("a venue's event reaches the strategy as the pooled object itself, narrowed by its kind", () => {
    const pooled = new Event()
    pooled.kind = "ticker"
    pooled.payload = ticker
    pooled.provider = "sim-a"
    const view = new MergedView()
    const e = strategyEventOf(pooled, view)!
    assert.strictEqual(e, pooled as unknown, "no copy")
    assert.strictEqual(narrowing(e), "100.5")
    assert.deepStrictEqual(quoteOf(e), { bid: "100.5", ask: "100.7" })
  })

  it("a merged event is a distinct kind, through one view reused for every merged event", () => {
    const view = new MergedView()
    const first = new MergedEvent()
    first.kind = "ticker"
    first.mergeId = "m-1"
    first.payload = merged("100.9")
    const second = new MergedEvent()
    second.kind = "ticker"
    second.mergeId = "m-2"
    second.payload = merged("100.8")
    const a = strategyEventOf(first, view)!
    assert.strictEqual(a.kind, "merged_ticker")
    assert.strictEqual(narrowing(a), "100.9@sim-a m-1")
    const b = strategyEventOf(second, view)!
    assert.strictEqual(b, a, "the same view object: nothing allocated per event")
    assert.strictEqual(narrowing(b), "100.8@sim-a m-2")
    assert.deepStrictEqual(quoteOf(b), { bid: "100.8", ask: "101" })
    assert.deepStrictEqual([isMerged(b), isMarket(b), isCriticalEvent(b)], [true, false, false])
  })

  it("the helpers sort kinds into market data, merged data and critical events", () => {
    const pooled = new Event()
    pooled.kind = "ticker"
    pooled.payload = ticker
    const e = strategyEventOf(pooled, new MergedView())!
    assert.deepStrictEqual([isMarket(e), isMerged(e), isCriticalEvent(e)], [true, false, false])
  })

  it("an event without a payload is not handed over", () => {
    assert.isUndefined(strategyEventOf(new Event(), new MergedView()))
  })
})
