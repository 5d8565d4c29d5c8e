/**
 * Example strategy: follows the consolidated best bid/offer of one symbol
 * across venues.
 *
 * It asks the Control Bus for a merged ticker stream (`SubscribeMerged`): the
 * Orchestrator collects one ticker per venue in each window and emits one
 * `MergedEvent` whose `merged_ticker` payload names the best bid and the best
 * ask and the venue of each, with every venue's quote attached. The strategy
 * keeps the latest consolidated quote and counts how often the best price
 * moved from one venue to another.
 */
import { Effect } from "effect"
import { SubscribeMerged } from "../schema/Control.js"
import type { MergedTicker } from "../schema/Event.js"
import type { Strategy } from "../src/Gateway.js"

export interface BboFollowerOptions {
  readonly symbol: string
  readonly providers: readonly [string, string, ...Array<string>]
  readonly windowMs: number
  readonly maxFragments: number
}

export interface BboState {
  /** Merged quotes received. */
  readonly updates: number
  readonly bestBid: string | undefined
  readonly bestBidProvider: string | undefined
  readonly bestAsk: string | undefined
  readonly bestAskProvider: string | undefined
  /** Venues quoted in the latest merged event. */
  readonly venues: ReadonlyArray<string>
  /** Times the best bid or the best ask moved to another venue. */
  readonly venueSwitches: number
  readonly subscribed: boolean
  readonly rejections: ReadonlyArray<string>
}

export const makeBboFollower = (id: string, options: BboFollowerOptions) => {
  let state: BboState = {
    updates: 0,
    bestBid: undefined,
    bestBidProvider: undefined,
    bestAsk: undefined,
    bestAskProvider: undefined,
    venues: [],
    venueSwitches: 0,
    subscribed: false,
    rejections: []
  }

  const strategy: Strategy = {
    id,
    start: (ctx) =>
      ctx.submit(SubscribeMerged.make({
        ...ctx.ids(),
        symbol: options.symbol,
        kind: "ticker",
        providers: options.providers,
        windowMs: options.windowMs,
        maxFragments: options.maxFragments
      })),
    handle: (event, ctx) => {
      if (event._pool === "MergedEvent" && event.payload?._tag === "merged_ticker") {
        const bbo: MergedTicker = event.payload
        const switched = state.updates > 0 &&
          (bbo.bestBidProvider !== state.bestBidProvider || bbo.bestAskProvider !== state.bestAskProvider)
        state = {
          ...state,
          updates: state.updates + 1,
          bestBid: bbo.bestBid,
          bestBidProvider: bbo.bestBidProvider,
          bestAsk: bbo.bestAsk,
          bestAskProvider: bbo.bestAskProvider,
          venues: bbo.quotes.map((q) => q.provider),
          venueSwitches: state.venueSwitches + (switched ? 1 : 0)
        }
        return state.updates % 100 === 1
          ? ctx.log(event, "consolidated best bid/offer", {
            symbol: event.symbol,
            bid: `${bbo.bestBid}@${bbo.bestBidProvider}`,
            ask: `${bbo.bestAsk}@${bbo.bestAskProvider}`,
            merge_id: event.mergeId
          })
          : Effect.void
      }
      if (event.kind === "control_result" && event._pool === "Event" && event.payload?._tag === "control_result") {
        const result = event.payload
        if (result.command !== "SubscribeMerged") return Effect.void
        if (result.outcome === "ok") {
          state = { ...state, subscribed: true }
          return Effect.void
        }
        state = { ...state, rejections: [...state.rejections, result.rejection?.message ?? "rejected"] }
        return ctx.log(event, "merged subscription rejected", { rejection: result.rejection?._tag })
      }
      return Effect.void
    }
  }

  return { strategy, state: (): BboState => state } as const
}
