/**
 * Binance spot: `<symbol>@trade` (or `<symbol>@aggTrade`, `tradeStream`),
 * `<symbol>@bookTicker` and the diff depth stream `<symbol>@depth@100ms` on the
 * combined-stream endpoint, subscribed with SUBSCRIBE on every (re)connect. The server pings every 20 seconds and
 * closes each connection after 24 hours; the WebSocket client answers pings
 * with pongs, and the connection loop reconnects.
 *
 * Book synchronisation follows Binance's documented rules:
 *  1. buffer the diff events and fetch a REST depth snapshot;
 *  2. if the snapshot's lastUpdateId is below the first buffered event's U,
 *     fetch again;
 *  3. drop buffered events with u <= lastUpdateId; the first one applied must
 *     have U <= lastUpdateId + 1 <= u;
 *  4. afterwards each event must have U == previous u + 1 (an event with
 *     u <= the book's id is old and ignored); anything else is a gap, and the
 *     book goes stale and resyncs from step 1.
 *
 * A diff that does not decode (a missing field, a negative or exponent
 * quantity, a sequence number beyond 2^53 - 1, ...) is refused, and the book
 * of the symbol it names goes stale at once and resyncs: the chain is broken.
 * Zero quantities are removals, valid in diffs only; a snapshot level, a trade
 * or a price of zero is refused.
 *
 * Trades: a `trade` frame is one trade (its id `t`); an `aggTrade` frame is the
 * trades of one taker order at one price, aggregated (its id `a`, the
 * aggregate's; `f`..`l` the trade ids it covers). Both become the same
 * canonical trade; `m` (the buyer is the maker) makes it a sell. Live, only the
 * configured stream is subscribed; frames of either are understood, so a
 * capture recorded with the other (cryptofeed records `aggTrade`) imports with
 * its trades. Klines (`<symbol>@kline_*`) are not canonical events: refused as
 * `unknown_message`, counted and dead-lettered like any unknown stream.
 */
import { Effect, Schema } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { WebSocketConstructor } from "@effect/platform/Socket"
import type { BinanceConfig } from "../../schema/ProviderConfig.js"
import { Decimal, Ticker, Trade } from "../../schema/Event.js"
import { PositiveDecimal, tupleLevels } from "../internal/decimal.js"
import { CrossedBook, SequenceGap } from "../OrderBook.js"
import type { ProviderShape } from "./internal/feed.js"
import type { RestSync, SymbolBook } from "./internal/books.js"
import { goConsistent, goStale, integrityFailure, isRecord, levels, makeRestSync, parseJson, publishDelta } from "./internal/books.js"
import type { FeedServices } from "./internal/feed.js"
import { defaultMaxFrameBytes, restSnapshotBytes, SafeInteger } from "./internal/feed.js"
import type { VenueRuntime } from "./internal/venue.js"
import { limitBody, makeVenueProvider } from "./internal/venue.js"

const BINANCE_WS_URL = "wss://stream.binance.com:9443"
const BINANCE_REST_URL = "https://api.binance.com"

/** [price, quantity]; a quantity of zero removes the level (diffs only). */
const DiffLevels = tupleLevels("levels", { zeroQty: true })
const SnapshotLevels = tupleLevels("levels", { zeroQty: false })

const DepthUpdate = Schema.Struct({
  e: Schema.Literal("depthUpdate"),
  E: SafeInteger,
  s: Schema.String,
  U: SafeInteger,
  u: SafeInteger,
  b: DiffLevels,
  a: DiffLevels
})
type DepthUpdate = typeof DepthUpdate.Type

const TradeMessage = Schema.Struct({
  e: Schema.Literal("trade"),
  E: SafeInteger,
  s: Schema.String,
  t: SafeInteger,
  p: PositiveDecimal,
  q: PositiveDecimal,
  T: SafeInteger,
  /** Is the buyer the maker? Then the aggressor sold. */
  m: Schema.Boolean
})

const AggTradeMessage = Schema.Struct({
  e: Schema.Literal("aggTrade"),
  E: SafeInteger,
  s: Schema.String,
  /** The aggregate trade's id. */
  a: SafeInteger,
  p: PositiveDecimal,
  q: PositiveDecimal,
  /** The first and last trade ids aggregated. */
  f: SafeInteger,
  l: SafeInteger,
  T: SafeInteger,
  /** Is the buyer the maker? Then the aggressor sold. */
  m: Schema.Boolean
}).pipe(Schema.filter((t) => t.f <= t.l || `first trade id f (${t.f}) must not be above the last l (${t.l})`))

const BookTickerMessage = Schema.Struct({
  u: SafeInteger,
  s: Schema.String,
  b: PositiveDecimal,
  B: Decimal,
  a: PositiveDecimal,
  A: Decimal
})

const DepthSnapshot = Schema.Struct({
  lastUpdateId: SafeInteger,
  bids: SnapshotLevels,
  asks: SnapshotLevels
})

const decodeDepth = Schema.decodeUnknownEither(DepthUpdate)
const decodeTrade = Schema.decodeUnknownEither(TradeMessage)
const decodeAggTrade = Schema.decodeUnknownEither(AggTradeMessage)
const decodeBookTicker = Schema.decodeUnknownEither(BookTickerMessage)
const decodeSnapshot = Schema.decodeUnknownEither(Schema.parseJson(DepthSnapshot))

const binanceSymbol = (config: BinanceConfig, canonical: string): string =>
  config.symbolMap[canonical] ?? canonical.replace("-", "").toUpperCase()

export const makeBinance = (
  config: BinanceConfig,
  services: FeedServices
): Effect.Effect<ProviderShape, never, HttpClient | WebSocketConstructor> => {
  const name = config.name ?? "binance"
  const wsBase = (config.wsUrl ?? BINANCE_WS_URL).replace(/\/+$/, "")
  const restBase = (config.restUrl ?? BINANCE_REST_URL).replace(/\/+$/, "")
  const depth = config.depth
  const maxFrameBytes = config.maxFrameBytes ?? Math.max(defaultMaxFrameBytes.binance, restSnapshotBytes(config.snapshotLimit))
  let requestId = 0

  return makeVenueProvider<DepthUpdate>({
    name,
    config,
    url: `${wsBase}/stream`,
    venueSymbol: (s) => binanceSymbol(config, s),
    depth,
    maxFrameBytes,
    session: ({ all: books, byVenue }) => {
      const streams = books.flatMap((sb) => {
        const s = sb.venueSymbol.toLowerCase()
        return [`${s}@${config.tradeStream}`, `${s}@bookTicker`, `${s}@depth@${config.depthSpeed}`]
      })

      /** Applies one diff to a synced book, or reports why it cannot be applied. */
      const applyDiff = (sb: SymbolBook<DepthUpdate>, ev: DepthUpdate): SequenceGap | CrossedBook | "old" | "applied" => {
        const last = sb.book.lastSeq!
        if (ev.u <= last) return "old"
        if (ev.U > last + 1) {
          return new SequenceGap({ provider: name, symbol: sb.symbol, expected: `U <= ${last + 1}`, received: `U=${ev.U} u=${ev.u}` })
        }
        sb.book.apply(levels(ev.b), levels(ev.a))
        sb.book.lastSeq = ev.u
        if (sb.book.isCrossed()) {
          return new CrossedBook({ provider: name, symbol: sb.symbol, bestBid: sb.book.bestBid()!.price, bestAsk: sb.book.bestAsk()!.price })
        }
        return "applied"
      }

      const sync: RestSync<DepthUpdate> = makeRestSync<DepthUpdate, typeof DepthSnapshot.Type>({
        maxBuffered: config.maxBuffered,
        url: (sb) => `${restBase}/api/v3/depth?symbol=${sb.venueSymbol}&limit=${config.snapshotLimit}`,
        decode: limitBody(maxFrameBytes, decodeSnapshot),
        install: (rt, sb, snap) => {
          const first = sb.buffer[0]
          if (first !== undefined && snap.lastUpdateId < first.U) return sync.start(rt, sb)
          sb.book.reset(levels(snap.bids), levels(snap.asks))
          sb.book.lastSeq = snap.lastUpdateId
          const pending = sb.buffer
          sb.buffer = []
          sb.phase = "synced"
          for (const ev of pending) {
            const r = applyDiff(sb, ev)
            if (r === "old" || r === "applied") continue
            // the buffered diffs do not chain onto the snapshot: start over
            rt.counters.gaps++
            return sync.restart(rt, sb)
          }
          return goConsistent(rt, sb, depth)
        }
      })

      const onDepth = (rt: VenueRuntime, sb: SymbolBook<DepthUpdate>, ev: DepthUpdate): Effect.Effect<void> => {
        if (sb.phase === "synced") {
          const r = applyDiff(sb, ev)
          if (r === "old") return Effect.void
          if (r === "applied") {
            return publishDelta(rt, sb, depth, { first: ev.U, last: ev.u })
          }
          return integrityFailure(rt, sb, r).pipe(Effect.zipRight(sync.buffer(rt, sb, ev)))
        }
        return sync.buffer(rt, sb, ev)
      }

      /** A refused diff for this book: stale at once, and a fresh sync. */
      const refuseDiff = (rt: VenueRuntime, sb: SymbolBook<DepthUpdate>, detail: string): Effect.Effect<void> =>
        goStale(rt, sb, `malformed diff: ${detail.slice(0, 120)}`).pipe(Effect.zipRight(sync.restart(rt, sb)))

      const onFrame = (rt: VenueRuntime, raw: string): Effect.Effect<void> => {
        const parsed = parseJson(raw)
        if (!parsed.ok) return rt.emitter.malformed("invalid_json", raw, parsed.error)
        const msg = parsed.value
        if (!isRecord(msg)) return rt.emitter.malformed("unknown_message", raw)
        if ("result" in msg && "id" in msg) return Effect.void
        if ("code" in msg || "error" in msg) {
          rt.counters.venueErrors++
          return rt.emitter.malformed("venue_error", raw)
        }
        const stream = typeof msg.stream === "string" ? msg.stream : undefined
        const data = stream === undefined ? msg : msg.data
        const kind = stream !== undefined
          ? stream.includes("@depth") ? "depth" : stream.endsWith("@trade") ? "trade" : stream.endsWith("@aggTrade") ? "aggTrade" : stream.endsWith("@bookTicker") ? "bookTicker" : undefined
          : isRecord(data) && data.e === "depthUpdate" ? "depth" : isRecord(data) && data.e === "trade" ? "trade" : isRecord(data) && data.e === "aggTrade" ? "aggTrade" : isRecord(data) && "b" in data && "A" in data ? "bookTicker" : undefined
        switch (kind) {
          case "depth": {
            const d = decodeDepth(data)
            if (d._tag === "Left") {
              // the diff chain of the symbol it names is broken: that book resyncs
              const sb = isRecord(data) && typeof data.s === "string" ? byVenue.get(data.s) : undefined
              return rt.emitter.malformed("schema", raw, d.left.message).pipe(
                Effect.zipRight(sb === undefined ? Effect.void : refuseDiff(rt, sb, d.left.message))
              )
            }
            const sb = byVenue.get(d.right.s)
            return sb === undefined ? rt.emitter.malformed("unknown_symbol", raw) : onDepth(rt, sb, d.right)
          }
          case "trade": {
            const d = decodeTrade(data)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            const sb = byVenue.get(d.right.s)
            if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
            const t = d.right
            return rt.emitter.emit(sb.symbol, "trade", Trade.make({ tradeId: String(t.t), price: t.p, quantity: t.q, side: t.m ? "sell" : "buy", exchangeTs: t.T }, true))
          }
          case "aggTrade": {
            const d = decodeAggTrade(data)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            const sb = byVenue.get(d.right.s)
            if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
            const t = d.right
            return rt.emitter.emit(sb.symbol, "trade", Trade.make({ tradeId: String(t.a), price: t.p, quantity: t.q, side: t.m ? "sell" : "buy", exchangeTs: t.T }, true))
          }
          case "bookTicker": {
            const d = decodeBookTicker(data)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            const sb = byVenue.get(d.right.s)
            if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
            const t = d.right
            const exchangeTs = isRecord(data) && typeof data.E === "number" ? data.E : rt.emitter.nowMillis()
            return rt.emitter.emit(sb.symbol, "ticker", Ticker.make({ bidPrice: t.b, bidQty: t.B, askPrice: t.a, askQty: t.A, exchangeTs }, true))
          }
          default:
            return rt.emitter.malformed("unknown_message", raw)
        }
      }

      return {
        subscriptions: () => [JSON.stringify({ method: "SUBSCRIBE", params: streams, id: ++requestId })],
        onFrame,
        restSync: sync
      }
    }
  }, services)
}
