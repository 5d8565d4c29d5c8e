/**
 * Example strategy: follows two venues' quotes of one symbol and trades the
 * gap between them on the paper venue.
 *
 * It subscribes to the raw tickers of the symbol and keeps each of the two
 * venues' latest best bid and ask (a ticker names its venue in `provider`).
 * When one venue's bid is above the other's ask by at least `minEdgeBps`
 * (basis points of the ask), the quotes cross: it buys `quantity` on the cheap
 * venue and sells it on the rich one, two market orders each addressed to its
 * venue (each fills against that venue's book and account, with its fees), at
 * most once every `cooldownMs`. Its positions (long where it buys, short where
 * it sells) and its P&L are the paper venue's: `ctx.portfolio()` after each
 * round trip, `/status.json` and the status page's portfolio panels.
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

/** Orders sent per venue, by side. */
export interface VenueLegs {
  buys: number
  sells: number
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
  /** Orders sent to each venue. */
  legs: Record<string, VenueLegs>
  /** The strategy's portfolio after the latest round trip (undefined where the process has no venue). */
  portfolio: Strategy.StrategyPortfolio | undefined
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
    busy: false,
    legs: {},
    portfolio: undefined
  }),
  start: (ctx) =>
    Effect.gen(function*() {
      const venues = ctx.options.venues ?? (ctx.topology.providers.length >= 2
        ? [ctx.topology.providers[0]!, ctx.topology.providers[1]!] as const
        : undefined)
      if (venues === undefined) return yield* new TwoVenuesNeeded({ symbol: ctx.options.symbol })
      ctx.state.venues = venues
      for (const v of venues) {
        ctx.state.quotes[v] = 0
        ctx.state.legs[v] = { buys: 0, sells: 0 }
      }
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
        // selling on the first venue what the second sells cheaper, or the other way round
        const firstRich = edgeBps(a.bid, b.ask)
        const secondRich = edgeBps(b.bid, a.ask)
        const [cheap, rich, edge] = firstRich >= secondRich
          ? [venues[1], venues[0], firstRich] as const
          : [venues[0], venues[1], secondRich] as const
        if (s.bestEdgeBps === undefined || edge > s.bestEdgeBps) s.bestEdgeBps = edge
        if (edge < ctx.options.minEdgeBps) return
        s.crossings++
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        if (s.busy || now - s.lastTradeAt < ctx.options.cooldownMs) return
        s.busy = true
        s.lastTradeAt = now
        s.trades++
        const { quantity, symbol } = ctx.options
        const order = (side: "buy" | "sell", venue: string) =>
          Effect.suspend(() => {
            const legs = s.legs[venue]!
            if (side === "buy") legs.buys++
            else legs.sells++
            return ctx.submit({ symbol, side, type: "market", quantity, venue })
          }).pipe(
            Effect.tap(() => Effect.sync(() => s.accepted++)),
            Effect.catchAll((e) => Effect.sync(() => (s.rejections[e._tag] = (s.rejections[e._tag] ?? 0) + 1)))
          )
        yield* ctx.fork(
          order("buy", cheap).pipe(
            Effect.zipRight(order("sell", rich)),
            Effect.tap(() => {
              const p = ctx.portfolio()
              s.portfolio = p
              return p === undefined ? Effect.void : ctx.log("round trip done", {
                realized_pnl: p.realizedPnl,
                unrealized_pnl: p.unrealizedPnl,
                fees: p.fees,
                positions: p.positions.map((x) => `${x.symbol}@${x.venue} ${x.quantity}`).join(", ")
              })
            }),
            Effect.ensuring(Effect.sync(() => (s.busy = false)))
          )
        )
        yield* ctx.log("quotes crossed: buy on the cheap venue, sell on the rich one", {
          edge_bps: edge.toFixed(2),
          buy_on: cheap,
          sell_on: rich
        }, event)
      }),
    exec_report: (event, ctx) =>
      Effect.sync(() => {
        if (event.payload.lastFillQty !== undefined) ctx.state.fills++
      })
  }
})
