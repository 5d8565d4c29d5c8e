/**
 * A simulated venue: the embedded default feed.
 *
 * Two halves, as with a real exchange. The venue side keeps the true book in
 * integer ticks and moves it by a seeded random walk; it publishes trades,
 * tickers and book diffs (each with a venue sequence number and a Kraken-style
 * CRC32 of its top 10 levels). The adapter side builds its own `OrderBook`
 * from those diffs with the same integrity checks as the real adapters: a
 * missing sequence number or a checksum that disagrees marks the book stale at
 * once, and a fresh venue snapshot (after `resyncDelayMs`) makes it consistent
 * again.
 *
 * Everything is paced by the Clock, so TestClock drives it; the same seed
 * yields the same events. Faults are injected on demand (`inject`) or at
 * random (`faults` in the configuration), and raw wire frames on demand
 * (`injectFrame`): those go through the adapter's whole decode path (frame
 * limit, JSON, schema with `Decimal` levels and integer sequence numbers,
 * known symbol, then the sequence and checksum checks). A refused frame that
 * names a symbol makes that book stale (an update was lost), and it resyncs.
 */
import { Effect, Schema } from "effect"
import { Decimal } from "../../schema/Event.js"
import { tupleLevels } from "../internal/decimal.js"
import type { SimulatedVenueConfig } from "../../schema/ProviderConfig.js"
import type { Fault } from "../../schema/ProviderConfig.js"
import type { EventPayload, MarketKind } from "../../schema/Event.js"
import { Ticker, Trade } from "../../schema/Event.js"
import type { BookLevel } from "../OrderBook.js"
import { deltaPayload, krakenChecksum, OrderBook, staleSnapshot } from "../OrderBook.js"
import type { ProviderShape, ProviderStatus } from "./internal/feed.js"
import type { FeedServices, Sink } from "./internal/feed.js"
import { isRecord, parseJson, venueStatus } from "./internal/books.js"
import { Counters, defaultMaxFrameBytes, frameProblem, makeEmitter, SafeInteger } from "./internal/feed.js"
import type { Rng } from "./internal/random.js"
import { formatUnits, makeRng } from "./internal/random.js"

/** Price and size grid of a simulated instrument. */
export interface Instrument {
  /** Starting price, in ticks of 10^-priceDp. */
  readonly startTicks: number
  readonly priceDp: number
  readonly qtyDp: number
  /** Level size range, in units of 10^-qtyDp. */
  readonly minQty: number
  readonly maxQty: number
}

const instruments: Readonly<Record<string, Instrument>> = {
  "BTC-USDT": { startTicks: 6_500_000, priceDp: 2, qtyDp: 5, minQty: 50, maxQty: 150_000 },
  "BTC-USD": { startTicks: 6_500_000, priceDp: 2, qtyDp: 5, minQty: 50, maxQty: 150_000 },
  "ETH-USDT": { startTicks: 320_000, priceDp: 2, qtyDp: 4, minQty: 10, maxQty: 400_000 },
  "ETH-USD": { startTicks: 320_000, priceDp: 2, qtyDp: 4, minQty: 10, maxQty: 400_000 },
  "SOL-USDT": { startTicks: 150_000, priceDp: 3, qtyDp: 2, minQty: 1, maxQty: 50_000 },
  "XRP-USDT": { startTicks: 52_000, priceDp: 4, qtyDp: 1, minQty: 10, maxQty: 1_000_000 }
}

const defaultInstrument: Instrument = { startTicks: 10_000, priceDp: 2, qtyDp: 3, minQty: 1, maxQty: 100_000 }

/** A frame of the simulated wire protocol, as the adapter side decodes it. */
const SimFrame = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("delta"),
    symbol: Schema.String,
    seq: SafeInteger,
    checksum: Schema.Int.pipe(Schema.between(0, 0xffff_ffff)),
    /** [price, quantity]; a quantity of zero removes the level. */
    bids: tupleLevels("bids", { zeroQty: true }),
    asks: tupleLevels("asks", { zeroQty: true })
  }),
  Schema.Struct({ type: Schema.Literal("heartbeat") })
)
const decodeSimFrame = Schema.decodeUnknownEither(SimFrame)

/** The venue side of one symbol: the true book in ticks. */
class VenueBook {
  readonly bids: Array<number> = [] // ticks, best (highest) first
  readonly asks: Array<number> = [] // ticks, best (lowest) first
  readonly qty = new Map<number, number>()
  readonly truth: OrderBook
  seq = 0
  tradeId = 0

  constructor(readonly symbol: string, readonly inst: Instrument, readonly depth: number, readonly rng: Rng) {
    this.truth = new OrderBook(symbol)
    const mid = Math.round(inst.startTicks * (1 + (rng.next() - 0.5) * 0.002))
    const changes: Array<[("bid" | "ask"), number, number]> = []
    let b = mid - 1
    let a = mid + 1
    for (let i = 0; i < depth; i++) {
      this.add("bid", b, this.size(), changes)
      this.add("ask", a, this.size(), changes)
      b -= rng.int(1, 3)
      a += rng.int(1, 3)
    }
    this.applyTruth(changes)
  }

  size(): number {
    return this.rng.int(this.inst.minQty, this.inst.maxQty)
  }

  price(ticks: number): string {
    return formatUnits(ticks, this.inst.priceDp)
  }

  quantity(units: number): string {
    return formatUnits(units, this.inst.qtyDp)
  }

  private add(side: "bid" | "ask", tick: number, units: number, changes: Array<[("bid" | "ask"), number, number]>) {
    const list = side === "bid" ? this.bids : this.asks
    if (!this.qty.has(tick)) {
      let i = 0
      while (i < list.length && (side === "bid" ? list[i] > tick : list[i] < tick)) i++
      list.splice(i, 0, tick)
    }
    this.qty.set(tick, units)
    changes.push([side, tick, units])
  }

  private remove(side: "bid" | "ask", index: number, changes: Array<[("bid" | "ask"), number, number]>) {
    const list = side === "bid" ? this.bids : this.asks
    const [tick] = list.splice(index, 1)
    this.qty.delete(tick)
    changes.push([side, tick, 0])
  }

  private applyTruth(changes: ReadonlyArray<[("bid" | "ask"), number, number]>): {
    bids: Array<BookLevel>
    asks: Array<BookLevel>
  } {
    const bids: Array<BookLevel> = []
    const asks: Array<BookLevel> = []
    for (const [side, tick, units] of changes) {
      const level = { price: this.price(tick), qty: units === 0 ? "0" : this.quantity(units) }
      this.truth.set(side, level.price, level.qty)
      ;(side === "bid" ? bids : asks).push(level)
    }
    return { bids, asks }
  }

  /** One random change of the book, as the venue would publish it. */
  step(): { seq: number; bids: Array<BookLevel>; asks: Array<BookLevel>; checksum: number } {
    const rng = this.rng
    const changes: Array<[("bid" | "ask"), number, number]> = []
    const side: "bid" | "ask" = rng.chance(0.5) ? "bid" : "ask"
    const list = side === "bid" ? this.bids : this.asks
    const spread = this.asks[0] - this.bids[0]
    const r = rng.next()
    if (spread > 8 || (r < 0.15 && spread > 1)) {
      // a new best level inside the spread
      this.add(side, side === "bid" ? this.bids[0] + 1 : this.asks[0] - 1, this.size(), changes)
    } else if (r < 0.3 && list.length > 2) {
      // the best level is taken out
      this.remove(side, 0, changes)
    } else {
      // size changes somewhere in the top of the book
      const i = rng.int(0, Math.min(list.length, 10) - 1)
      this.add(side, list[i], this.size(), changes)
    }
    // keep `depth` levels per side
    for (const s of ["bid", "ask"] as const) {
      const l = s === "bid" ? this.bids : this.asks
      while (l.length < this.depth) {
        const worst = l[l.length - 1]
        this.add(s, s === "bid" ? worst - rng.int(1, 3) : worst + rng.int(1, 3), this.size(), changes)
      }
      while (l.length > this.depth) this.remove(s, l.length - 1, changes)
    }
    const { asks, bids } = this.applyTruth(changes)
    return { seq: ++this.seq, bids, asks, checksum: krakenChecksum(this.truth) }
  }

  trade(nowMs: number): Trade {
    const rng = this.rng
    const buy = rng.chance(0.5)
    const tick = buy ? this.asks[0] : this.bids[0]
    const avail = this.qty.get(tick) ?? this.inst.minQty
    const units = Math.max(1, Math.min(avail, rng.int(this.inst.minQty, Math.max(this.inst.minQty, Math.floor(avail / 2)))))
    return Trade.make({
      tradeId: `${++this.tradeId}`,
      price: this.price(tick) as Decimal,
      quantity: this.quantity(units) as Decimal,
      side: buy ? "buy" : "sell",
      exchangeTs: nowMs
    }, true)
  }

  ticker(nowMs: number): Ticker {
    const b = this.bids[0]
    const a = this.asks[0]
    return Ticker.make({
      bidPrice: this.price(b) as Decimal,
      bidQty: this.quantity(this.qty.get(b)!) as Decimal,
      askPrice: this.price(a) as Decimal,
      askQty: this.quantity(this.qty.get(a)!) as Decimal,
      exchangeTs: nowMs
    }, true)
  }
}

/** One symbol, both halves. */
interface SymbolState {
  readonly symbol: string
  readonly venue: VenueBook
  readonly book: OrderBook
  dueTrades: number
  dueTickers: number
  dueDeltas: number
  /** When a stale book is resynchronised (epoch ms). */
  resyncAt: number | undefined
}

export interface SimulatedProvider extends ProviderShape {
  /** Injects a fault at the next generator tick: into one symbol, or the first one. */
  readonly inject: (fault: Fault, symbol?: string) => Effect.Effect<void>
  /** Delivers a raw wire frame to the adapter side at the next generator tick. */
  readonly injectFrame: (raw: string) => Effect.Effect<void>
}

type Out = readonly [symbol: string, kind: MarketKind, payload: EventPayload]

export const makeSimulated = (config: SimulatedVenueConfig, services: FeedServices): SimulatedProvider => {
  const name = config.name
  let counters = new Counters()
  let symbols: ReadonlyArray<SymbolState> = []
  let connected = false
  const pending: Array<{ fault: Fault; symbol: string | undefined } | { raw: string }> = []
  const maxFrameBytes = config.maxFrameBytes ?? defaultMaxFrameBytes.simulated

  const status: Effect.Effect<ProviderStatus> = Effect.sync(() => venueStatus(name, connected, symbols, counters))

  const run = (sink: Sink): Effect.Effect<never, never, never> =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      counters = new Counters()
      const emitter = makeEmitter(name, services, counters, clock, sink)
      const rng = makeRng(config.seed, name)
      const states: Array<SymbolState> = config.symbols.map((symbol) => ({
        symbol,
        venue: new VenueBook(symbol, instruments[symbol] ?? defaultInstrument, config.depth, makeRng(config.seed, `${name}|${symbol}`)),
        book: new OrderBook(symbol, config.depth),
        dueTrades: 0,
        dueTickers: 0,
        dueDeltas: 0,
        resyncAt: undefined
      }))
      symbols = states
      const depth = config.depth
      const perTick = config.tickMs / 1000
      let reconnectAt: number | undefined = undefined
      let nextRefresh = clock.unsafeCurrentTimeMillis() + config.snapshotIntervalMs

      const sync = (s: SymbolState, out: Array<Out>) => {
        const truth = s.venue.truth
        s.book.reset(truth.levels("bid"), truth.levels("ask"))
        s.book.lastSeq = s.venue.seq
        s.book.markConsistent()
        s.resyncAt = undefined
        out.push([s.symbol, "book_snapshot", s.book.snapshot(depth, krakenChecksum(s.book))])
      }

      const goStale = (s: SymbolState, reason: string, now: number, out: Array<Out>) => {
        s.book.markStale(reason)
        s.book.clear()
        s.resyncAt = connected ? now + config.resyncDelayMs : undefined
        out.push([s.symbol, "book_snapshot", staleSnapshot(reason)])
      }

      /** The adapter side receiving one diff. */
      const receive = (
        s: SymbolState,
        frame: { seq: number; bids: ReadonlyArray<BookLevel>; asks: ReadonlyArray<BookLevel>; checksum: number },
        now: number,
        out: Array<Out>
      ) => {
        counters.frames++
        if (s.book.state !== "consistent") return
        const expected = s.book.lastSeq! + 1
        if (frame.seq !== expected) {
          counters.gaps++
          goStale(s, `gap: expected ${expected}, received ${frame.seq}`, now, out)
          return
        }
        s.book.apply(frame.bids, frame.asks)
        s.book.lastSeq = frame.seq
        const local = krakenChecksum(s.book)
        if (local !== frame.checksum) {
          counters.checksumMismatches++
          goStale(s, `checksum mismatch: venue ${frame.checksum}, local ${local}`, now, out)
          return
        }
        out.push([s.symbol, "book_delta", deltaPayload(frame.bids, frame.asks, { first: frame.seq, last: frame.seq, checksum: frame.checksum })])
      }

      const disconnect = (now: number, out: Array<Out>) => {
        if (!connected) return
        connected = false
        counters.disconnects++
        reconnectAt = now + config.reconnectDelayMs
        for (const s of states) goStale(s, "disconnected", now, out)
      }

      const applyFault = (fault: Fault, s: SymbolState, now: number, out: Array<Out>): Effect.Effect<void> => {
        switch (fault) {
          case "gap": {
            s.venue.step() // published by the venue, lost on the way
            if (connected) receive(s, s.venue.step(), now, out)
            return Effect.void
          }
          case "bad_checksum": {
            const frame = s.venue.step()
            if (connected) receive(s, { ...frame, checksum: (frame.checksum ^ 0x5a5a5a5a) >>> 0 }, now, out)
            return Effect.void
          }
          case "malformed": {
            const raw = `{"type":"delta","symbol":"${s.symbol}","seq":${s.venue.seq + 1},"bids":[["1.0"`
            return receiveRaw(raw, now, out)
          }
          case "disconnect": {
            disconnect(now, out)
            return Effect.void
          }
        }
      }

      /**
       * The decode path of a raw frame (only injected frames arrive as text).
       * A refused frame that names a configured symbol leaves that book stale.
       */
      const receiveRaw = (raw: string, now: number, out: Array<Out>): Effect.Effect<void> => {
        counters.frames++
        const problem = frameProblem(raw, maxFrameBytes)
        if (problem !== undefined) return emitter.malformed(problem.reason, raw, problem.detail)
        const parsed = parseJson(raw)
        if (!parsed.ok) return emitter.malformed("invalid_json", raw, parsed.error)
        const json = parsed.value
        const decoded = decodeSimFrame(json)
        if (decoded._tag === "Left") {
          const named = isRecord(json) && typeof json.symbol === "string" ? states.find((x) => x.symbol === json.symbol) : undefined
          if (named !== undefined && connected && named.book.state === "consistent") {
            goStale(named, `malformed frame: ${decoded.left.message.slice(0, 120)}`, now, out)
          }
          return emitter.malformed("schema", raw, decoded.left.message)
        }
        const frame = decoded.right
        if (frame.type === "heartbeat") return Effect.void
        const s = states.find((x) => x.symbol === frame.symbol)
        if (s === undefined) return emitter.malformed("unknown_symbol", raw)
        if (connected) {
          // receive counts the frame itself
          counters.frames--
          receive(s, {
            seq: frame.seq,
            checksum: frame.checksum,
            bids: frame.bids.map(([price, qty]) => ({ price, qty })),
            asks: frame.asks.map(([price, qty]) => ({ price, qty }))
          }, now, out)
        }
        return Effect.void
      }

      const step = (): Effect.Effect<void> => {
        const now = clock.unsafeCurrentTimeMillis()
        const out: Array<Out> = []
        const side: Array<Effect.Effect<void>> = []
        if (!connected && reconnectAt !== undefined && now >= reconnectAt) {
          connected = true
          reconnectAt = undefined
          counters.reconnects++
          counters.connects++
          for (const s of states) s.resyncAt = now + config.resyncDelayMs
        }
        while (pending.length > 0) {
          const next = pending.shift()!
          if ("raw" in next) {
            side.push(receiveRaw(next.raw, now, out))
            continue
          }
          const s = states.find((x) => x.symbol === next.symbol) ?? states[0]
          side.push(applyFault(next.fault, s, now, out))
        }
        const f = config.faults
        if (f.disconnect > 0 && rng.chance(f.disconnect)) disconnect(now, out)
        for (const s of states) {
          if (connected && s.resyncAt !== undefined && now >= s.resyncAt) {
            counters.resyncs++
            sync(s, out)
          }
          if (f.gap > 0 && rng.chance(f.gap)) side.push(applyFault("gap", s, now, out))
          if (f.badChecksum > 0 && rng.chance(f.badChecksum)) side.push(applyFault("bad_checksum", s, now, out))
          if (f.malformed > 0 && rng.chance(f.malformed)) side.push(applyFault("malformed", s, now, out))
          s.dueDeltas += config.deltasPerSecond * perTick
          s.dueTrades += config.tradesPerSecond * perTick
          s.dueTickers += config.tickersPerSecond * perTick
          for (; s.dueDeltas >= 1; s.dueDeltas--) {
            const frame = s.venue.step()
            if (connected) receive(s, frame, now, out)
          }
          for (; s.dueTrades >= 1; s.dueTrades--) {
            const trade = s.venue.trade(now)
            if (connected) {
              counters.frames++
              out.push([s.symbol, "trade", trade])
            }
          }
          for (; s.dueTickers >= 1; s.dueTickers--) {
            if (connected) {
              counters.frames++
              out.push([s.symbol, "ticker", s.venue.ticker(now)])
            }
          }
        }
        if (now >= nextRefresh) {
          nextRefresh = now + config.snapshotIntervalMs
          for (const s of states) {
            if (s.book.state === "consistent") out.push([s.symbol, "book_snapshot", s.book.snapshot(depth, krakenChecksum(s.book))])
          }
        }
        const emits = Effect.forEach(out, ([symbol, kind, payload]) => emitter.emit(symbol, kind, payload), { discard: true })
        return side.length === 0 ? emits : Effect.zipRight(Effect.all(side, { discard: true }), emits)
      }

      connected = true
      counters.connects++
      const initial: Array<Out> = []
      for (const s of states) sync(s, initial)
      yield* Effect.forEach(initial, ([symbol, kind, payload]) => emitter.emit(symbol, kind, payload), { discard: true })
      return yield* Effect.sleep(config.tickMs).pipe(Effect.zipRight(Effect.suspend(step)), Effect.forever)
    }).pipe(Effect.ensuring(Effect.sync(() => {
      connected = false
    })))

  return {
    name,
    symbols: config.symbols,
    run,
    status,
    stats: () => counters.snapshot(),
    inject: (fault, symbol) => Effect.sync(() => void pending.push({ fault, symbol })),
    injectFrame: (raw) => Effect.sync(() => void pending.push({ raw }))
  }
}
