/**
 * Example strategy: follows two venues' quotes of one symbol and trades the
 * gap between them on the paper venue.
 *
 * It subscribes to the raw tickers of the symbol and keeps each of the two
 * venues' latest best bid and ask (a ticker names its venue in `provider`).
 * When one venue's bid is above the other's ask by at least `minEdgeBps`
 * (basis points of the ask), the quotes cross: it buys `quantity` and sells it
 * back at once (two market orders on the paper venue, so it stays flat; orders
 * addressed to a venue come with the paper account), at most once every
 * `cooldownMs`.
 *
 * The orders go out from a task beside the handlers (`ctx.fork`): a handler
 * that waited for an order's outcome would wait on itself, since outcomes
 * arrive through the handlers. Each outcome comes back typed: the accepted
 * order, or a tagged rejection counted by its tag.
 *
 *   npm start -- --strategy examples/crossVenue.ts --strategy-options '{"venues":["sim-a","sim-b"]}'
 */
import DecimalJs from "decimal.js"
import { Data, Effect, Schema } from "effect"
import * as Strategy from "../src/strategy/index.js"

export const CrossVenueOptions = Schema.Struct({
  symbol: Schema.optionalWith(Schema.String, { default: () => "BTC-USDT" }),
  /** The two venues to follow; absent: the first two the gateway carries. */
  venues: Schema.optional(Schema.Tuple(Schema.String, Schema.String)),
  quantity: Schema.optionalWith(Schema.String, { default: () => "0.001" }),
  /** How far one venue's bid must be above the other's ask, in basis points of the ask (may be negative to trade on any quote). */
  minEdgeBps: Schema.optionalWith(Schema.Number.pipe(Schema.between(-10_000, 10_000)), { default: () => 5 }),
  cooldownMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 3_600_000)), { default: () => 1_000 })
})

interface Quote {
  bid: string
  ask: string
}

export interface CrossVenueState {
  /** The two venues followed. */
  venues: readonly [string, string] | undefined
  /** Tickers received per venue followed. */
  quotes: Record<string, number>
  /** The latest quote of each venue. */
  latest: Map<string, Quote>
  /** Times the quotes crossed by the edge. */
  crossings: number
  /** Round trips started (a buy, then a sell). */
  trades: number
  /** Orders accepted by the venue. */
  accepted: number
  /** Fills reported. */
  fills: number
  /** Refusals by rejection tag. */
  rejections: Record<string, number>
  /** The widest edge seen, in basis points. */
  bestEdgeBps: number | undefined
  /** When the last round trip started (clock milliseconds). */
  lastTradeAt: number
  busy: boolean
}

/** Fewer than two venues to follow. */
export class TwoVenuesNeeded extends Data.TaggedError("TwoVenuesNeeded")<{ readonly symbol: string }> {
  override get message(): string {
    return `crossVenue follows two venues of ${this.symbol}: configure two, or name them in the options (venues)`
  }
}

/** The edge of selling at `bid` what was bought at `ask`, in basis points of the ask. */
const edgeBps = (bid: string, ask: string): number => new DecimalJs(bid).minus(ask).div(ask).mul(10_000).toNumber()

export default Strategy.define({
  id: "cross-venue",
  description: "trades on the paper venue when two venues' quotes cross",
  options: CrossVenueOptions,
  init: (): CrossVenueState => ({
    venues: undefined,
    quotes: {},
    latest: new Map(),
    crossings: 0,
    trades: 0,
    accepted: 0,
    fills: 0,
    rejections: {},
    bestEdgeBps: undefined,
    lastTradeAt: Number.NEGATIVE_INFINITY,
    busy: false
  }),
  start: (ctx) =>
    Effect.gen(function*() {
      const venues = ctx.options.venues ?? (ctx.topology.providers.length >= 2
        ? [ctx.topology.providers[0]!, ctx.topology.providers[1]!] as const
        : undefined)
      if (venues === undefined) return yield* new TwoVenuesNeeded({ symbol: ctx.options.symbol })
      ctx.state.venues = venues
      for (const v of venues) ctx.state.quotes[v] = 0
      yield* ctx.subscribe(ctx.options.symbol, ["ticker"])
    }),
  on: {
    ticker: (event, ctx) =>
      Effect.gen(function*() {
        const s = ctx.state
        const venues = s.venues
        if (venues === undefined || (event.provider !== venues[0] && event.provider !== venues[1])) return
        s.quotes[event.provider] = (s.quotes[event.provider] ?? 0) + 1
        s.latest.set(event.provider, { bid: event.payload.bidPrice, ask: event.payload.askPrice })
        const a = s.latest.get(venues[0])
        const b = s.latest.get(venues[1])
        if (a === undefined || b === undefined) return
        const edge = Math.max(edgeBps(a.bid, b.ask), edgeBps(b.bid, a.ask))
        if (s.bestEdgeBps === undefined || edge > s.bestEdgeBps) s.bestEdgeBps = edge
        if (edge < ctx.options.minEdgeBps) return
        s.crossings++
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        if (s.busy || now - s.lastTradeAt < ctx.options.cooldownMs) return
        s.busy = true
        s.lastTradeAt = now
        s.trades++
        const { quantity, symbol } = ctx.options
        const order = (side: "buy" | "sell") =>
          ctx.submit({ symbol, side, type: "market", quantity }).pipe(
            Effect.tap(() => Effect.sync(() => s.accepted++)),
            Effect.catchAll((e) => Effect.sync(() => (s.rejections[e._tag] = (s.rejections[e._tag] ?? 0) + 1)))
          )
        yield* ctx.fork(
          order("buy").pipe(
            Effect.zipRight(order("sell")),
            Effect.ensuring(Effect.sync(() => (s.busy = false)))
          )
        )
        yield* ctx.log("quotes crossed: round trip on the paper venue", { edge_bps: edge.toFixed(2) }, event)
      }),
    exec_report: (event, ctx) =>
      Effect.sync(() => {
        if (event.payload.lastFillQty !== undefined) ctx.state.fills++
      })
  }
})
