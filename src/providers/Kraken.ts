/**
 * Kraken WebSocket v2: `book` (with its CRC32 over the top 10 levels),
 * `trade` and `ticker` (best bid/offer trigger), subscribed on every
 * (re)connect; an application `ping` keeps the connection alive.
 *
 * Kraken writes prices and quantities as JSON numbers; `JSON.parse` would turn
 * "0.10000000" into 0.1 and the checksum would never match. Every number is
 * kept as the venue wrote it: frames are parsed with `lossless-json`. Its
 * cost was measured against the exact alternatives (JSON.parse plus a scan
 * for number texts, a source-text reviver, quoting number tokens): none was
 * reliably faster, and the frame limit (256 KiB by default) bounds it to a
 * few milliseconds (BENCHMARKS.md, "Hostile frames"). Prices and quantities
 * must then be
 * `Decimal`s (no sign, no exponent, bounded digits), so a negative quantity
 * or "1e3000000" is refused before it reaches a book or a checksum.
 *
 * The v2 book has no sequence numbers: the checksum is the integrity check.
 * After every snapshot and update the local top 10 is checksummed; a mismatch
 * marks the book stale at once and resubscribes the symbol's book
 * (unsubscribe, subscribe with a snapshot), after which it is consistent again.
 * A refused book frame (it does not decode, or a snapshot holds a zero
 * quantity) does the same for every configured symbol it names: an update
 * was lost, so the book can no longer be trusted.
 */
import { Effect, Schema } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { WebSocketConstructor } from "@effect/platform/Socket"
import type { KrakenConfig } from "../../schema/ProviderConfig.js"
import { parse as parseLossless } from "lossless-json"
import { Decimal, Ticker, Trade } from "../../schema/Event.js"
import { isZeroDecimal, levelArray, levelProblem, PositiveDecimal } from "../internal/decimal.js"
import type { BookLevel } from "../OrderBook.js"
import { ChecksumMismatch, krakenChecksum } from "../OrderBook.js"
import type { ProviderShape } from "./internal/feed.js"
import type { SymbolBook } from "./internal/books.js"
import { goConsistent, goStale, integrityFailure, isoMillis, isRecord, parseJson, publishDelta } from "./internal/books.js"
import type { FeedServices } from "./internal/feed.js"
import { defaultMaxFrameBytes } from "./internal/feed.js"
import type { VenueRuntime } from "./internal/venue.js"
import { makeVenueProvider } from "./internal/venue.js"

const KRAKEN_WS_URL = "wss://ws.kraken.com/v2"

/** Numbers arrive as the exact strings the venue wrote; the checksum is a CRC32. */
const Checksum = Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 0xffff_ffff))
/** {price, qty}; a quantity of zero removes the level (updates only: a snapshot with one is refused). */
const Levels = levelArray<{ readonly price: Decimal; readonly qty: Decimal }>("levels", (u) =>
  isRecord(u) ? levelProblem(u.price, u.qty, true) : "expected {price, qty}")

const BookData = Schema.Struct({
  symbol: Schema.String,
  bids: Levels,
  asks: Levels,
  checksum: Checksum,
  timestamp: Schema.optional(Schema.String)
})
type BookData = typeof BookData.Type

const BookMessage = Schema.Struct({
  channel: Schema.Literal("book"),
  type: Schema.Literal("snapshot", "update"),
  data: Schema.Array(BookData)
})

const TradeMessage = Schema.Struct({
  channel: Schema.Literal("trade"),
  type: Schema.Literal("snapshot", "update"),
  data: Schema.Array(Schema.Struct({
    symbol: Schema.String,
    side: Schema.Literal("buy", "sell"),
    price: PositiveDecimal,
    qty: PositiveDecimal,
    trade_id: Schema.Union(Schema.String, Schema.Number),
    timestamp: Schema.String
  }))
})

const TickerMessage = Schema.Struct({
  channel: Schema.Literal("ticker"),
  type: Schema.Literal("snapshot", "update"),
  data: Schema.Array(Schema.Struct({
    symbol: Schema.String,
    bid: PositiveDecimal,
    bid_qty: Decimal,
    ask: PositiveDecimal,
    ask_qty: Decimal,
    timestamp: Schema.optional(Schema.String)
  }))
})

const decodeBook = Schema.decodeUnknownEither(BookMessage)
const decodeTrade = Schema.decodeUnknownEither(TradeMessage)
const decodeTicker = Schema.decodeUnknownEither(TickerMessage)

/** Exact parse: every JSON number becomes its source text. */
export const parseKraken = (text: string) => parseJson(text, (t) => parseLossless(t, null, (n: string) => n))

const krakenSymbol = (config: KrakenConfig, canonical: string): string =>
  config.symbolMap[canonical] ?? canonical.replace("-", "/")

const toLevels = (ls: ReadonlyArray<{ readonly price: string; readonly qty: string }>): Array<BookLevel> =>
  ls.map((l) => ({ price: l.price, qty: l.qty }))

export const makeKraken = (
  config: KrakenConfig,
  services: FeedServices
): Effect.Effect<ProviderShape, never, HttpClient | WebSocketConstructor> => {
  const name = config.name ?? "kraken"
  const depth = Math.min(config.depth, config.bookDepth)
  let reqId = 0

  return makeVenueProvider<never>({
    name,
    config,
    url: config.wsUrl ?? KRAKEN_WS_URL,
    keepalive: JSON.stringify({ method: "ping" }),
    venueSymbol: (s) => krakenSymbol(config, s),
    maxDepth: config.bookDepth,
    depth,
    maxFrameBytes: config.maxFrameBytes ?? defaultMaxFrameBytes.kraken,
    checksum: krakenChecksum,
    session: ({ all: books, byVenue }) => {
      const venueSymbols = books.map((sb) => sb.venueSymbol)

      const subscribeBook = (symbols: ReadonlyArray<string>) =>
        JSON.stringify({
          method: "subscribe",
          params: { channel: "book", symbol: symbols, depth: config.bookDepth, snapshot: true },
          req_id: ++reqId
        })

      const resubscribe = (rt: VenueRuntime, sb: SymbolBook<never>): Effect.Effect<void> =>
        Effect.suspend(() => {
          sb.phase = "buffering"
          // after the backoff delay (from the second attempt since the book was consistent) and a budget token
          return rt.later(
            `resubscribe:${sb.symbol}`,
            sb.attempts++,
            Effect.suspend(() =>
              rt.send(JSON.stringify({
                method: "unsubscribe",
                params: { channel: "book", symbol: [sb.venueSymbol], depth: config.bookDepth },
                req_id: ++reqId
              }))
            ).pipe(Effect.zipRight(Effect.suspend(() => rt.send(subscribeBook([sb.venueSymbol])))), Effect.asVoid)
          )
        })

      const verify = (rt: VenueRuntime, sb: SymbolBook<never>, venueChecksum: number): Effect.Effect<boolean> => {
        const local = krakenChecksum(sb.book)
        if (local === venueChecksum) return Effect.succeed(true)
        return integrityFailure(rt, sb, new ChecksumMismatch({ provider: name, symbol: sb.symbol, expected: venueChecksum, computed: local })).pipe(
          Effect.zipRight(resubscribe(rt, sb)),
          Effect.as(false)
        )
      }

      /**
       * A book frame that cannot be used: refused, and every configured book
       * it names goes stale and is resubscribed (an update was lost).
       */
      const refuseBook = (rt: VenueRuntime, msg: Record<string, unknown>, raw: string, detail: string): Effect.Effect<void> => {
        const named = new Set<SymbolBook<never>>()
        if (Array.isArray(msg.data)) {
          for (const d of msg.data) {
            const sb = isRecord(d) && typeof d.symbol === "string" ? byVenue.get(d.symbol) : undefined
            if (sb !== undefined) named.add(sb)
          }
        }
        return rt.emitter.malformed("schema", raw, detail).pipe(
          Effect.zipRight(Effect.forEach(named, (sb) =>
            goStale(rt, sb, `malformed book frame: ${detail.slice(0, 120)}`).pipe(Effect.zipRight(resubscribe(rt, sb))), { discard: true }))
        )
      }

      const onBook = (rt: VenueRuntime, type: "snapshot" | "update", d: BookData, raw: string): Effect.Effect<void> => {
        const sb = byVenue.get(d.symbol)
        if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
        if (type === "snapshot") {
          sb.book.reset(toLevels(d.bids), toLevels(d.asks))
          return verify(rt, sb, d.checksum).pipe(
            Effect.flatMap((ok) => ok ? goConsistent(rt, sb, depth, krakenChecksum) : Effect.void)
          )
        }
        if (sb.phase !== "synced") return Effect.void
        const bids = toLevels(d.bids)
        const asks = toLevels(d.asks)
        sb.book.apply(bids, asks)
        return verify(rt, sb, d.checksum).pipe(
          Effect.flatMap((ok) => ok ? publishDelta(rt, sb, depth, { checksum: d.checksum }) : Effect.void)
        )
      }

      const onFrame = (rt: VenueRuntime, raw: string): Effect.Effect<void> => {
        const parsed = parseKraken(raw)
        if (!parsed.ok) return rt.emitter.malformed("invalid_json", raw, parsed.error)
        const msg = parsed.value
        if (!isRecord(msg)) return rt.emitter.malformed("unknown_message", raw)
        if (typeof msg.method === "string") {
          if (msg.success === false) {
            rt.counters.venueErrors++
            return rt.emitter.malformed("venue_error", raw, typeof msg.error === "string" ? msg.error : undefined)
          }
          return Effect.void
        }
        switch (msg.channel) {
          case "heartbeat":
          case "status":
            return Effect.void
          case "book": {
            const d = decodeBook(msg)
            if (d._tag === "Left") return refuseBook(rt, msg, raw, d.left.message)
            if (d.right.type === "snapshot") {
              for (const item of d.right.data) {
                const zero = item.bids.find((l) => isZeroDecimal(l.qty)) ?? item.asks.find((l) => isZeroDecimal(l.qty))
                if (zero !== undefined) return refuseBook(rt, msg, raw, `snapshot level ${zero.price} has quantity 0`)
              }
            }
            return Effect.forEach(d.right.data, (item) => onBook(rt, d.right.type, item, raw), { discard: true })
          }
          case "trade": {
            const d = decodeTrade(msg)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            return Effect.forEach(d.right.data, (t) => {
              const sb = byVenue.get(t.symbol)
              if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
              return rt.emitter.emit(sb.symbol, "trade", Trade.make({
                tradeId: String(t.trade_id),
                price: t.price,
                quantity: t.qty,
                side: t.side,
                exchangeTs: isoMillis(t.timestamp, rt.emitter.nowMillis())
              }, true))
            }, { discard: true })
          }
          case "ticker": {
            const d = decodeTicker(msg)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            return Effect.forEach(d.right.data, (t) => {
              const sb = byVenue.get(t.symbol)
              if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
              return rt.emitter.emit(sb.symbol, "ticker", Ticker.make({
                bidPrice: t.bid,
                bidQty: t.bid_qty,
                askPrice: t.ask,
                askQty: t.ask_qty,
                exchangeTs: isoMillis(t.timestamp, rt.emitter.nowMillis())
              }, true))
            }, { discard: true })
          }
          default:
            return rt.emitter.malformed("unknown_message", raw)
        }
      }

      return {
        subscriptions: () => [
          subscribeBook(venueSymbols),
          JSON.stringify({ method: "subscribe", params: { channel: "trade", symbol: venueSymbols, snapshot: false }, req_id: ++reqId }),
          JSON.stringify({ method: "subscribe", params: { channel: "ticker", symbol: venueSymbols, event_trigger: "bbo" }, req_id: ++reqId })
        ],
        onFrame
      }
    }
  }, services)
}
