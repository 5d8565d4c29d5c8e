/**
 * Coinbase Advanced Trade market data: `level2`, `market_trades`, `ticker`,
 * and `heartbeats` (without it Coinbase closes channels that go quiet),
 * subscribed on every (re)connect.
 *
 * Every message on a connection carries `sequence_num`, one more than the
 * previous message on that connection whatever its channel. A jump means a
 * message was lost, and since it may have been a level2 update every book is
 * marked stale at once and level2 is resubscribed, which sends fresh
 * snapshots.
 *
 * Public trades report the maker's side; the canonical trade carries the
 * aggressor's, so it is the opposite.
 *
 * A level2 message that does not decode (a missing field, a negative or
 * exponent quantity, a snapshot level of quantity zero, ...) is refused, and
 * the books of the products it names go stale at once and are resubscribed.
 * A message whose `sequence_num` is not an integer below 2^53 is refused
 * without moving the sequence, so the next message shows the gap.
 */
import { Effect, Schema } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { WebSocketConstructor } from "@effect/platform/Socket"
import type { CoinbaseConfig } from "../../schema/ProviderConfig.js"
import { Decimal, Ticker, Trade } from "../../schema/Event.js"
import { isZeroDecimal, levelArray, levelProblem, PositiveDecimal } from "../internal/decimal.js"
import type { BookLevel } from "../OrderBook.js"
import { CrossedBook, SequenceGap, staleReason } from "../OrderBook.js"
import type { ProviderShape } from "./internal/feed.js"
import type { SymbolBook } from "./internal/books.js"
import { goConsistent, goStale, isoMillis, isRecord, parseJson, publishDelta } from "./internal/books.js"
import type { FeedServices } from "./internal/feed.js"
import { defaultMaxFrameBytes, SafeInteger } from "./internal/feed.js"
import type { VenueRuntime } from "./internal/venue.js"
import { makeVenueProvider } from "./internal/venue.js"

const COINBASE_WS_URL = "wss://advanced-trade-ws.coinbase.com"

const Envelope = {
  timestamp: Schema.String,
  sequence_num: SafeInteger
}

interface Update {
  readonly side: "bid" | "offer"
  readonly event_time?: string
  readonly price_level: Decimal
  readonly new_quantity: Decimal
}

/** Level2 updates, checked by a plain loop (a snapshot holds the whole book). */
const Updates = levelArray<Update>("updates", (u) => {
  if (!isRecord(u)) return "expected an update"
  if (u.side !== "bid" && u.side !== "offer") return "side: expected \"bid\" or \"offer\""
  if (u.event_time !== undefined && typeof u.event_time !== "string") return "event_time: expected a string"
  return levelProblem(u.price_level, u.new_quantity, true)
})

const L2Message = Schema.Struct({
  channel: Schema.Literal("l2_data"),
  ...Envelope,
  events: Schema.Array(Schema.Struct({
    type: Schema.Literal("snapshot", "update"),
    product_id: Schema.String,
    /** A quantity of zero removes the level (updates only). */
    updates: Updates
  }))
})

const TradesMessage = Schema.Struct({
  channel: Schema.Literal("market_trades"),
  ...Envelope,
  events: Schema.Array(Schema.Struct({
    type: Schema.Literal("snapshot", "update"),
    trades: Schema.Array(Schema.Struct({
      trade_id: Schema.String,
      product_id: Schema.String,
      price: PositiveDecimal,
      size: PositiveDecimal,
      side: Schema.Literal("BUY", "SELL"),
      time: Schema.String
    }))
  }))
})

const TickerMessage = Schema.Struct({
  channel: Schema.Literal("ticker"),
  ...Envelope,
  events: Schema.Array(Schema.Struct({
    type: Schema.Literal("snapshot", "update"),
    tickers: Schema.Array(Schema.Struct({
      product_id: Schema.String,
      best_bid: PositiveDecimal,
      best_bid_quantity: Decimal,
      best_ask: PositiveDecimal,
      best_ask_quantity: Decimal
    }))
  }))
})

const decodeL2 = Schema.decodeUnknownEither(L2Message)
const decodeTrades = Schema.decodeUnknownEither(TradesMessage)
const decodeTicker = Schema.decodeUnknownEither(TickerMessage)

const coinbaseSymbol = (config: CoinbaseConfig, canonical: string): string => config.symbolMap[canonical] ?? canonical

export const makeCoinbase = (
  config: CoinbaseConfig,
  services: FeedServices
): Effect.Effect<ProviderShape, never, HttpClient | WebSocketConstructor> => {
  const name = config.name ?? "coinbase"
  const depth = config.depth

  return makeVenueProvider<never>({
    name,
    config,
    url: config.wsUrl ?? COINBASE_WS_URL,
    venueSymbol: (s) => coinbaseSymbol(config, s),
    depth,
    maxFrameBytes: config.maxFrameBytes ?? defaultMaxFrameBytes.coinbase,
    session: ({ all: books, byVenue }) => {
      const products = books.map((sb) => sb.venueSymbol)
      /** The last sequence_num seen on the current connection. */
      let lastSequence: number | undefined

      const subscribe = (channel: string, productIds?: ReadonlyArray<string>) =>
        JSON.stringify(productIds === undefined ? { type: "subscribe", channel } : { type: "subscribe", product_ids: productIds, channel })

      /** Marks the books stale at once and resubscribes their level2 for fresh snapshots. */
      const resync = (rt: VenueRuntime, targets: ReadonlyArray<SymbolBook<never>>, reason: string): Effect.Effect<void> =>
        Effect.forEach(targets, (sb) => goStale(rt, sb, reason), { discard: true }).pipe(
          Effect.zipRight(Effect.logWarning("book integrity lost; resubscribing level2").pipe(
            Effect.annotateLogs({ provider: name, reason, symbols: targets.map((sb) => sb.symbol).join(",") })
          )),
          Effect.zipRight(Effect.suspend(() => {
            // after the backoff delay (from the second attempt since the books were consistent) and a budget token
            const attempt = Math.max(0, ...targets.map((sb) => sb.attempts))
            for (const sb of targets) {
              sb.phase = "buffering"
              sb.attempts = attempt + 1
            }
            const ids = targets.map((sb) => sb.venueSymbol)
            return rt.later(
              `resubscribe:${ids.join(",")}`,
              attempt,
              rt.send(JSON.stringify({ type: "unsubscribe", product_ids: ids, channel: "level2" })).pipe(
                Effect.zipRight(rt.send(subscribe("level2", ids))),
                Effect.asVoid
              )
            )
          })),
          Effect.asVoid
        )

      const onL2 = (rt: VenueRuntime, msg: typeof L2Message.Type, raw: string): Effect.Effect<void> =>
        Effect.forEach(msg.events, (ev) => {
          const sb = byVenue.get(ev.product_id)
          if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
          const bids: Array<BookLevel> = []
          const asks: Array<BookLevel> = []
          for (const u of ev.updates) (u.side === "bid" ? bids : asks).push({ price: u.price_level, qty: u.new_quantity })
          if (ev.type === "snapshot") {
            sb.book.reset(bids, asks)
            sb.book.lastSeq = msg.sequence_num
            return goConsistent(rt, sb, depth)
          }
          if (sb.phase !== "synced") return Effect.void
          sb.book.apply(bids, asks)
          sb.book.lastSeq = msg.sequence_num
          if (sb.book.isCrossed()) {
            const e = new CrossedBook({ provider: name, symbol: sb.symbol, bestBid: sb.book.bestBid()!.price, bestAsk: sb.book.bestAsk()!.price })
            rt.counters.crossedBooks++
            return resync(rt, [sb], staleReason(e))
          }
          return publishDelta(rt, sb, depth, { first: msg.sequence_num, last: msg.sequence_num })
        }, { discard: true })

      const onFrame = (rt: VenueRuntime, raw: string): Effect.Effect<void> => {
        const parsed = parseJson(raw)
        if (!parsed.ok) return rt.emitter.malformed("invalid_json", raw, parsed.error)
        const msg = parsed.value
        if (!isRecord(msg)) return rt.emitter.malformed("unknown_message", raw)
        if (msg.type === "error") {
          rt.counters.venueErrors++
          return rt.emitter.malformed("venue_error", raw, typeof msg.message === "string" ? msg.message : undefined)
        }
        const seq = typeof msg.sequence_num === "number" ? msg.sequence_num : undefined
        if (seq !== undefined && !(Number.isSafeInteger(seq) && seq >= 0)) {
          return dispatchRefused(rt, msg, raw, `sequence_num ${seq} is not an integer between 0 and 2^53 - 1`)
        }
        let gap: Effect.Effect<void> = Effect.void
        if (seq !== undefined) {
          if (lastSequence !== undefined && seq !== lastSequence + 1) {
            const e = new SequenceGap({ provider: name, symbol: "*", expected: `sequence_num=${lastSequence + 1}`, received: `sequence_num=${seq}` })
            rt.counters.gaps++
            gap = resync(rt, books, staleReason(e))
          }
          lastSequence = seq
        }
        return Effect.zipRight(gap, dispatch(rt, msg, raw))
      }

      /**
       * A message that cannot be used: refused; if it is level2, the books of
       * the products it names go stale and are resubscribed.
       */
      const dispatchRefused = (rt: VenueRuntime, msg: Record<string, unknown>, raw: string, detail: string): Effect.Effect<void> => {
        const named = new Set<SymbolBook<never>>()
        if (msg.channel === "l2_data" && Array.isArray(msg.events)) {
          for (const ev of msg.events) {
            const sb = isRecord(ev) && typeof ev.product_id === "string" ? byVenue.get(ev.product_id) : undefined
            if (sb !== undefined) named.add(sb)
          }
        }
        return rt.emitter.malformed("schema", raw, detail).pipe(
          Effect.zipRight(named.size === 0 ? Effect.void : resync(rt, [...named], `malformed level2 message: ${detail.slice(0, 120)}`))
        )
      }

      const dispatch = (rt: VenueRuntime, msg: Record<string, unknown>, raw: string): Effect.Effect<void> => {
        switch (msg.channel) {
          case "heartbeats":
          case "subscriptions":
            return Effect.void
          case "l2_data": {
            const d = decodeL2(msg)
            if (d._tag === "Left") return dispatchRefused(rt, msg, raw, d.left.message)
            for (const ev of d.right.events) {
              const zero = ev.type === "snapshot" ? ev.updates.find((u) => isZeroDecimal(u.new_quantity)) : undefined
              if (zero !== undefined) return dispatchRefused(rt, msg, raw, `snapshot level ${zero.price_level} has quantity 0`)
            }
            return onL2(rt, d.right, raw)
          }
          case "market_trades": {
            const d = decodeTrades(msg)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            return Effect.forEach(d.right.events, (ev) =>
              // the snapshot replays recent history, not live trades
              ev.type === "snapshot" ? Effect.void : Effect.forEach(ev.trades, (t) => {
                const sb = byVenue.get(t.product_id)
                if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
                return rt.emitter.emit(sb.symbol, "trade", Trade.make({
                  tradeId: t.trade_id,
                  price: t.price,
                  quantity: t.size,
                  side: t.side === "BUY" ? "sell" : "buy",
                  exchangeTs: isoMillis(t.time, rt.emitter.nowMillis())
                }, true))
              }, { discard: true }), { discard: true })
          }
          case "ticker": {
            const d = decodeTicker(msg)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            const ts = isoMillis(d.right.timestamp, rt.emitter.nowMillis())
            return Effect.forEach(d.right.events, (ev) =>
              Effect.forEach(ev.tickers, (t) => {
                const sb = byVenue.get(t.product_id)
                if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
                return rt.emitter.emit(sb.symbol, "ticker", Ticker.make({
                  bidPrice: t.best_bid,
                  bidQty: t.best_bid_quantity,
                  askPrice: t.best_ask,
                  askQty: t.best_ask_quantity,
                  exchangeTs: ts
                }, true))
              }, { discard: true }), { discard: true })
          }
          default:
            return rt.emitter.malformed("unknown_message", raw)
        }
      }

      return {
        subscriptions: () => [
          subscribe("heartbeats"),
          subscribe("level2", products),
          subscribe("market_trades", products),
          subscribe("ticker", products)
        ],
        onFrame,
        onConnected: () => {
          lastSequence = undefined
        }
      }
    }
  }, services)
}
