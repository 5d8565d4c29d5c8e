/**
 * OKX v5 public: `books`, `trades` and `tickers`, subscribed on every
 * (re)connect; the text "ping" keeps the connection alive (the venue answers
 * "pong").
 *
 * Book integrity is the seqId chain: every update names the seqId of the
 * previous message in `prevSeqId`, so an update is in order exactly when its
 * prevSeqId is the last applied seqId. OKX retired the checksum (it sends 0;
 * a non-zero value is still checked) and no longer pushes an initial snapshot
 * on subscribe, so the book syncs from the REST snapshot
 * (`/api/v5/market/books`): updates are buffered while it is fetched; when the
 * snapshot carries a seqId, updates up to it are dropped and the next must
 * chain onto it; without one, updates older than the snapshot's `ts` are
 * dropped and the chain starts at the next update. A snapshot pushed on the
 * WebSocket (`action: "snapshot"`) is used as well.
 *
 * A book message that does not decode (a missing field, a negative or
 * exponent size, a seqId beyond 2^53 - 1, a snapshot level of size zero, ...)
 * is refused, and the book of the instrument it names goes stale at once and
 * resyncs: the seqId chain is broken.
 */
import { Effect, Schema } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { WebSocketConstructor } from "@effect/platform/Socket"
import type { OkxConfig } from "../../schema/ProviderConfig.js"
import { Decimal, Ticker, Trade } from "../../schema/Event.js"
import { PositiveDecimal, tupleLevels, zeroQuantityLevel } from "../internal/decimal.js"
import { ChecksumMismatch, CrossedBook, okxChecksum, SequenceGap } from "../OrderBook.js"
import type { ProviderShape } from "./internal/feed.js"
import type { RestSync, SymbolBook } from "./internal/books.js"
import { goConsistent, goStale, integrityFailure, isRecord, levels, makeRestSync, parseJson, publishDelta } from "./internal/books.js"
import type { FeedServices } from "./internal/feed.js"
import { defaultMaxFrameBytes, restSnapshotBytes, SafeInteger } from "./internal/feed.js"
import type { VenueRuntime } from "./internal/venue.js"
import { limitBody, makeVenueProvider } from "./internal/venue.js"

const OKX_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
const OKX_REST_URL = "https://www.okx.com"

/** [price, size, deprecated, orders]; a size of zero removes the level (updates only). */
const Levels = tupleLevels("levels", { zeroQty: true, extra: true })
const SnapshotLevels = tupleLevels("levels", { zeroQty: false, extra: true })
/** Epoch milliseconds as a string of digits. */
const Millis = Schema.String.pipe(Schema.pattern(/^[0-9]{1,15}$/))

const bookData = (levels: typeof Levels) =>
  Schema.Struct({
    asks: levels,
    bids: levels,
    ts: Millis,
    /** A signed CRC32 (0: none). */
    checksum: Schema.optionalWith(Schema.Int.pipe(Schema.between(-(2 ** 31), 2 ** 31 - 1)), { default: () => 0 }),
    /** -1 on a snapshot. */
    prevSeqId: Schema.optional(Schema.Int.pipe(Schema.between(-1, Number.MAX_SAFE_INTEGER))),
    seqId: Schema.optional(SafeInteger)
  })

const BookData = bookData(Levels)
type BookData = typeof BookData.Type

const Arg = Schema.Struct({ channel: Schema.String, instId: Schema.String })

const BookMessage = Schema.Struct({
  arg: Arg,
  action: Schema.Literal("snapshot", "update"),
  data: Schema.Array(BookData)
})

const TradesMessage = Schema.Struct({
  arg: Arg,
  data: Schema.Array(Schema.Struct({
    instId: Schema.String,
    tradeId: Schema.String,
    px: PositiveDecimal,
    sz: PositiveDecimal,
    side: Schema.Literal("buy", "sell"),
    ts: Millis
  }))
})

const TickersMessage = Schema.Struct({
  arg: Arg,
  data: Schema.Array(Schema.Struct({
    instId: Schema.String,
    bidPx: PositiveDecimal,
    bidSz: Decimal,
    askPx: PositiveDecimal,
    askSz: Decimal,
    ts: Millis
  }))
})

const RestBooks = Schema.Struct({
  code: Schema.String,
  msg: Schema.optional(Schema.String),
  /** A REST snapshot: every level has a size. */
  data: Schema.NonEmptyArray(bookData(SnapshotLevels))
})

const decodeBook = Schema.decodeUnknownEither(BookMessage)
const decodeTrades = Schema.decodeUnknownEither(TradesMessage)
const decodeTickers = Schema.decodeUnknownEither(TickersMessage)
const decodeRest = Schema.decodeUnknownEither(Schema.parseJson(RestBooks))

const okxSymbol = (config: OkxConfig, canonical: string): string => config.symbolMap[canonical] ?? canonical

export const makeOkx = (
  config: OkxConfig,
  services: FeedServices
): Effect.Effect<ProviderShape, never, HttpClient | WebSocketConstructor> => {
  const name = config.name ?? "okx"
  const restBase = (config.restUrl ?? OKX_REST_URL).replace(/\/+$/, "")
  const depth = config.depth
  const maxFrameBytes = config.maxFrameBytes ?? Math.max(defaultMaxFrameBytes.okx, restSnapshotBytes(config.snapshotLimit))

  return makeVenueProvider<BookData>({
    name,
    config,
    url: config.wsUrl ?? OKX_WS_URL,
    keepalive: "ping",
    venueSymbol: (s) => okxSymbol(config, s),
    depth,
    maxFrameBytes,
    session: ({ all: books, byVenue }) => {
      /** Applies one update to a synced book, or says why it cannot be applied. */
      const applyUpdate = (sb: SymbolBook<BookData>, d: BookData): SequenceGap | ChecksumMismatch | CrossedBook | undefined => {
        const last = sb.book.lastSeq
        if (last !== undefined && d.prevSeqId !== last) {
          return new SequenceGap({ provider: name, symbol: sb.symbol, expected: `prevSeqId=${last}`, received: `prevSeqId=${d.prevSeqId} seqId=${d.seqId}` })
        }
        sb.book.apply(levels(d.bids), levels(d.asks))
        sb.book.lastSeq = d.seqId
        if (d.checksum !== 0) {
          const local = okxChecksum(sb.book)
          if (local !== d.checksum) return new ChecksumMismatch({ provider: name, symbol: sb.symbol, expected: d.checksum, computed: local })
        }
        if (sb.book.isCrossed()) {
          return new CrossedBook({ provider: name, symbol: sb.symbol, bestBid: sb.book.bestBid()!.price, bestAsk: sb.book.bestAsk()!.price })
        }
        return undefined
      }

      /** Installs a snapshot, applies what was buffered after it, and publishes the book. */
      const install = (rt: VenueRuntime, sb: SymbolBook<BookData>, snap: BookData, pending: ReadonlyArray<BookData>): Effect.Effect<void> => {
        sb.book.reset(levels(snap.bids), levels(snap.asks))
        sb.book.lastSeq = snap.seqId
        sb.buffer = []
        sb.phase = "synced"
        for (const d of pending) {
          const e = applyUpdate(sb, d)
          if (e === undefined) continue
          if (e._tag === "SequenceGap") rt.counters.gaps++
          return sync.restart(rt, sb)
        }
        return goConsistent(rt, sb, depth)
      }

      const sync: RestSync<BookData> = makeRestSync<BookData, typeof RestBooks.Type>({
        maxBuffered: config.maxBuffered,
        url: (sb) => `${restBase}/api/v5/market/books?instId=${sb.venueSymbol}&sz=${config.snapshotLimit}`,
        decode: limitBody(maxFrameBytes, decodeRest),
        install: (rt, sb, rest) => {
          const snap = rest.data[0]
          const pending = snap.seqId !== undefined
            ? sb.buffer.filter((d) => d.seqId === undefined || d.seqId > snap.seqId!)
            : sb.buffer.filter((d) => Number(d.ts) > Number(snap.ts))
          return install(rt, sb, snap, pending)
        }
      })

      const onBook = (rt: VenueRuntime, action: "snapshot" | "update", sb: SymbolBook<BookData>, d: BookData): Effect.Effect<void> => {
        if (action === "snapshot") {
          sb.generation++
          sb.fetching = false
          return install(rt, sb, d, [])
        }
        if (sb.phase !== "synced") return sync.buffer(rt, sb, d)
        const e = applyUpdate(sb, d)
        if (e === undefined) {
          return publishDelta(rt, sb, depth, {
            first: d.seqId,
            last: d.seqId,
            ...(d.checksum === 0 ? {} : { checksum: d.checksum })
          })
        }
        return integrityFailure(rt, sb, e).pipe(Effect.zipRight(sync.buffer(rt, sb, d)))
      }

      /** A book message that cannot be used: refused; the book it names goes stale and resyncs. */
      const refuseBook = (rt: VenueRuntime, msg: Record<string, unknown>, raw: string, detail: string): Effect.Effect<void> => {
        const instId = isRecord(msg.arg) ? msg.arg.instId : undefined
        const sb = typeof instId === "string" ? byVenue.get(instId) : undefined
        return rt.emitter.malformed("schema", raw, detail).pipe(
          Effect.zipRight(sb === undefined ? Effect.void : goStale(rt, sb, `malformed book message: ${detail.slice(0, 120)}`).pipe(
            Effect.zipRight(sync.restart(rt, sb))
          ))
        )
      }

      const onFrame = (rt: VenueRuntime, raw: string): Effect.Effect<void> => {
        if (raw === "pong") return Effect.void
        const parsed = parseJson(raw)
        if (!parsed.ok) return rt.emitter.malformed("invalid_json", raw, parsed.error)
        const msg = parsed.value
        if (!isRecord(msg)) return rt.emitter.malformed("unknown_message", raw)
        if (typeof msg.event === "string") {
          if (msg.event === "error") {
            rt.counters.venueErrors++
            return rt.emitter.malformed("venue_error", raw, typeof msg.msg === "string" ? msg.msg : undefined)
          }
          return Effect.void
        }
        const channel = isRecord(msg.arg) ? msg.arg.channel : undefined
        switch (channel) {
          case "books": {
            const d = decodeBook(msg)
            if (d._tag === "Left") return refuseBook(rt, msg, raw, d.left.message)
            const sb = byVenue.get(d.right.arg.instId)
            if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
            if (d.right.action === "snapshot") {
              for (const item of d.right.data) {
                const zero = zeroQuantityLevel(item.bids) ?? zeroQuantityLevel(item.asks)
                if (zero !== undefined) return refuseBook(rt, msg, raw, `snapshot level ${zero[0]} has size 0`)
              }
            }
            return Effect.forEach(d.right.data, (item) => onBook(rt, d.right.action, sb, item), { discard: true })
          }
          case "trades": {
            const d = decodeTrades(msg)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            return Effect.forEach(d.right.data, (t) => {
              const sb = byVenue.get(t.instId)
              if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
              return rt.emitter.emit(sb.symbol, "trade", Trade.make({ tradeId: t.tradeId, price: t.px, quantity: t.sz, side: t.side, exchangeTs: Number(t.ts) }, true))
            }, { discard: true })
          }
          case "tickers": {
            const d = decodeTickers(msg)
            if (d._tag === "Left") return rt.emitter.malformed("schema", raw, d.left.message)
            return Effect.forEach(d.right.data, (t) => {
              const sb = byVenue.get(t.instId)
              if (sb === undefined) return rt.emitter.malformed("unknown_symbol", raw)
              return rt.emitter.emit(sb.symbol, "ticker", Ticker.make({ bidPrice: t.bidPx, bidQty: t.bidSz, askPrice: t.askPx, askQty: t.askSz, exchangeTs: Number(t.ts) }, true))
            }, { discard: true })
          }
          default:
            return rt.emitter.malformed("unknown_message", raw)
        }
      }

      const args = books.flatMap((sb) => [
        { channel: "books", instId: sb.venueSymbol },
        { channel: "trades", instId: sb.venueSymbol },
        { channel: "tickers", instId: sb.venueSymbol }
      ])

      return {
        subscriptions: () => [JSON.stringify({ op: "subscribe", args })],
        onFrame,
        restSync: sync
      }
    }
  }, services)
}
