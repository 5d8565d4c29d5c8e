/**
 * Example strategy: follows the consolidated best bid/offer of one symbol
 * across venues.
 *
 * It asks for a merged ticker stream: the Orchestrator collects one ticker per
 * venue in each window and emits one `merged_ticker` event naming the best
 * bid and the best ask and the venue of each, with every venue's quote
 * attached. The strategy keeps the latest consolidated quote and counts how
 * often the best price moved from one venue to another.
 *
 * Options: `symbol` (default BTC-USDT); the merge's venues and window default
 * to the configured ticker merge of the symbol.
 *
 *   npm start -- --strategy examples/bboFollower.ts --strategy-options '{"symbol":"ETH-USDT"}'
 */
import { Data, Effect, Schema } from "effect"
import * as Strategy from "../src/strategy/index.js"

export const BboFollowerOptions = Schema.Struct({
  symbol: Schema.optionalWith(Schema.String, { default: () => "BTC-USDT" }),
  /** At least two venues; absent: the configured ticker merge's. */
  providers: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(2))),
  windowMs: Schema.optional(Schema.Int.pipe(Schema.positive())),
  maxFragments: Schema.optional(Schema.Int.pipe(Schema.positive()))
})

export interface BboState {
  /** Merged quotes received. */
  updates: number
  bestBid: string | undefined
  bestBidProvider: string | undefined
  bestAsk: string | undefined
  bestAskProvider: string | undefined
  /** Venues quoted in the latest merged event. */
  venues: ReadonlyArray<string>
  /** Times the best bid or the best ask moved to another venue. */
  venueSwitches: number
  subscribed: boolean
}

/** No ticker merge is configured for the symbol, and the options name no venues. */
export class NoMergeForSymbol extends Data.TaggedError("NoMergeForSymbol")<{ readonly symbol: string }> {
  override get message(): string {
    return `no ticker merge is configured for ${this.symbol}: configure one, or give providers in the options`
  }
}

export default Strategy.define({
  id: "bbo-follower",
  description: "follows the consolidated best bid/offer of one symbol across venues",
  options: BboFollowerOptions,
  init: (): BboState => ({
    updates: 0,
    bestBid: undefined,
    bestBidProvider: undefined,
    bestAsk: undefined,
    bestAskProvider: undefined,
    venues: [],
    venueSwitches: 0,
    subscribed: false
  }),
  start: (ctx) =>
    Effect.gen(function*() {
      const { symbol } = ctx.options
      const merge = ctx.topology.merges.find((m) => m.symbol === symbol && m.kind === "ticker")
      const providers = ctx.options.providers ?? merge?.providers
      if (providers === undefined || providers.length < 2) return yield* new NoMergeForSymbol({ symbol })
      yield* ctx.subscribeMerged({
        symbol,
        kind: "ticker",
        providers: providers as readonly [string, string, ...Array<string>],
        windowMs: ctx.options.windowMs ?? merge?.windowMs ?? 250,
        maxFragments: ctx.options.maxFragments ?? merge?.maxFragments ?? providers.length
      })
      ctx.state.subscribed = true
    }),
  on: {
    merged_ticker: (event, ctx) => {
      const bbo = event.payload
      const s = ctx.state
      const switched = s.updates > 0 &&
        (bbo.bestBidProvider !== s.bestBidProvider || bbo.bestAskProvider !== s.bestAskProvider)
      s.updates++
      s.bestBid = bbo.bestBid
      s.bestBidProvider = bbo.bestBidProvider
      s.bestAsk = bbo.bestAsk
      s.bestAskProvider = bbo.bestAskProvider
      s.venues = bbo.quotes.map((q) => q.provider)
      if (switched) s.venueSwitches++
      return s.updates % 100 === 1
        ? ctx.log("consolidated best bid/offer", {
          symbol: event.symbol,
          bid: `${bbo.bestBid}@${bbo.bestBidProvider}`,
          ask: `${bbo.bestAsk}@${bbo.bestAskProvider}`,
          merge_id: event.mergeId
        }, event)
        : Effect.void
    }
  }
})
