import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, ParseResult, Schema } from "effect"
import { DEFAULT_MERGE_POLICY, MergeSpec } from "../schema/Control.js"
import type { Level } from "../schema/Event.js"
import {
  BookSnapshot,
  decimal,
  decodeWireJson,
  encodeWireJson,
  EVENT_SCHEMA_VERSION,
  MAX_PROVIDERS,
  MergedBook,
  MergedTicker,
  MergedTrades,
  Ticker,
  Trade
} from "../schema/Event.js"
import { validate } from "../src/Config.js"
import type { Event } from "../src/Event.js"
import type { MergeConfig, Outcome } from "../src/internal/mergeWindow.js"
import { MergeWindows, requiredProviders } from "../src/internal/mergeWindow.js"
import { Pool } from "../src/Pool.js"
import { Holdings, Recycler } from "../src/Recycler.js"

const layer = Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({ prewarm: 0 })))

const SYM = "BTC-USDT"

/**
 * A harness that plays the Orchestrator's part: fragments come from the pool,
 * and every fragment the engine hands back is recycled at once.
 */
const harness = Effect.gen(function*() {
  const pool = yield* Pool
  const owner = yield* Recycler
  const engine = new MergeWindows()
  // each fragment with the generation it was acquired in, recycled with it
  const held = new Holdings()
  const recycler = {
    unsafeRecycle: (f: Event) => owner.unsafeRecycle(f, held.letGo(f)),
    unsafeRecycleMany: (fs: ReadonlyArray<Event>) => {
      for (const f of fs) owner.unsafeRecycle(f, held.letGo(f))
    }
  }

  const fragment = (
    provider: string,
    kind: Event["kind"],
    payload: Event["payload"],
    ingestMs: number,
    symbol = SYM
  ): Event => {
    const e = pool.acquireEvent()
    e.provider = provider
    e.symbol = symbol
    e.kind = kind
    e.payload = payload
    e.ingestTs = ingestMs * 1000
    e.traceId = `${provider}-${ingestMs}`
    held.hold(e)
    return e
  }

  const ticker = (provider: string, bid: string, ask: string, ingestMs: number, qty = "1") =>
    fragment(provider, "ticker", Ticker.make({
      bidPrice: decimal(bid),
      bidQty: decimal(qty),
      askPrice: decimal(ask),
      askQty: decimal(qty),
      exchangeTs: ingestMs
    }), ingestMs)

  const book = (
    provider: string,
    bids: ReadonlyArray<readonly [string, string]>,
    asks: ReadonlyArray<readonly [string, string]>,
    ingestMs: number,
    state: "consistent" | "stale" = "consistent"
  ) => {
    const levels = (ls: ReadonlyArray<readonly [string, string]>): Array<Level> =>
      ls.map(([p, q]) => [decimal(p), decimal(q)] as const)
    return fragment(provider, "book_snapshot", BookSnapshot.make({ bids: levels(bids), asks: levels(asks), state }), ingestMs)
  }

  const trade = (provider: string, tradeId: string, price: string, exchangeTs: number, ingestMs: number) =>
    fragment(provider, "trade", Trade.make({
      tradeId,
      price: decimal(price),
      quantity: decimal("1"),
      side: "buy",
      exchangeTs
    }), ingestMs)

  /** Recycles what the engine hands back; returns the outcomes for inspection. */
  const settle = (outcomes: ReadonlyArray<Outcome>): ReadonlyArray<Outcome> => {
    for (const o of outcomes) {
      if (o._tag === "Merged" || o._tag === "Suppressed") recycler.unsafeRecycleMany(o.fragments)
      else recycler.unsafeRecycle(o.fragment)
    }
    return outcomes
  }
  const add = (e: Event, nowMs: number) => settle(engine.add(e, nowMs))
  const expire = (nowMs: number) => settle(engine.expire(nowMs))
  const outstanding = () => pool.stats().Event.outstanding

  return { engine, pool, recycler, ticker, book, trade, fragment, add, expire, settle, outstanding }
})

const run = <A>(f: (h: Effect.Effect.Success<typeof harness>) => A) =>
  Effect.scoped(harness.pipe(Effect.map(f), Effect.provide(layer)))

const cfg = (over: Partial<MergeConfig> = {}): MergeConfig => ({
  symbol: SYM,
  kind: "ticker",
  providers: ["binance", "kraken"],
  windowMs: 100,
  maxFragments: 2,
  // the rules below are written for a merge that needs every venue; the
  // policies have their own section
  policy: "all",
  ...over
})

const tags = (os: ReadonlyArray<Outcome>) => os.map((o) => o._tag)

const only = <T extends Outcome["_tag"]>(os: ReadonlyArray<Outcome>, tag: T): Extract<Outcome, { _tag: T }> => {
  const found = os.filter((o) => o._tag === tag)
  assert.strictEqual(found.length, 1, `exactly one ${tag} in ${tags(os).join(",")}`)
  return found[0] as Extract<Outcome, { _tag: T }>
}

describe("MergeWindows", () => {
  it.effect("a complete window closes on its fragment count and merges", () =>
    run(({ add, engine, outstanding, ticker }) => {
      engine.configure(cfg())
      assert.deepStrictEqual(add(ticker("binance", "100.10", "100.30", 1_000), 1_000), [])
      assert.strictEqual(engine.heldFragments(), 1)
      assert.strictEqual(outstanding(), 1, "the engine holds the open window's fragment")
      const out = add(ticker("kraken", "100.2", "100.40", 1_010), 1_010)
      const merged = only(out, "Merged")
      assert.strictEqual(merged.closedBy, "count")
      assert.strictEqual(merged.openedAtMs, 1_000)
      assert.strictEqual(merged.closedAtMs, 1_010)
      assert.strictEqual(merged.mergeId, `${SYM}|ticker|1000|1`)
      assert.deepStrictEqual(merged.sourceProviders, ["binance", "kraken"])
      assert.strictEqual(merged.fragments.length, 2)
      const p = merged.payload as MergedTicker
      assert.deepStrictEqual(
        [p.bestBid, p.bestBidProvider, p.bestAsk, p.bestAskProvider],
        ["100.2", "kraken", "100.30", "binance"]
      )
      assert.strictEqual(outstanding(), 0, "every fragment recycled the moment the window closed")
      assert.strictEqual(engine.openWindows(), 0)
      assert.strictEqual(engine.nextDeadline(), undefined)
    }))

  it.effect("a partial window is suppressed at its deadline, naming the missing providers", () =>
    run(({ add, engine, expire, outstanding, ticker }) => {
      engine.configure(cfg({ providers: ["binance", "kraken", "okx"], maxFragments: 3 }))
      add(ticker("kraken", "1", "2", 500), 500)
      assert.strictEqual(engine.nextDeadline(), 600)
      assert.deepStrictEqual(expire(599), [], "not before the deadline")
      assert.strictEqual(outstanding(), 1)
      const s = only(expire(600), "Suppressed")
      assert.deepStrictEqual(s.missing, ["binance", "okx"])
      assert.deepStrictEqual([s.closedBy, s.openedAtMs, s.closedAtMs], ["deadline", 500, 600])
      assert.strictEqual(s.fragments.length, 1)
      assert.strictEqual(outstanding(), 0)
      assert.strictEqual(engine.nextDeadline(), undefined)
    }))

  it.effect("a window past its deadline is closed by the next fragment of its key, before that fragment is placed", () =>
    run(({ add, engine, ticker }) => {
      engine.configure(cfg())
      add(ticker("binance", "1", "2", 0), 0)
      const out = add(ticker("kraken", "1", "2", 150), 150)
      assert.deepStrictEqual(tags(out), ["Suppressed"])
      const s = only(out, "Suppressed")
      assert.strictEqual(s.closedAtMs, 100, "closed at its deadline, not when noticed")
      assert.deepStrictEqual(s.missing, ["kraken"])
      assert.strictEqual(engine.nextDeadline(), 250, "the fragment opened the next window")
      assert.strictEqual(engine.heldFragments(), 1)
    }))

  it.effect("several keys expire in deadline order", () =>
    run(({ add, engine, expire, ticker, trade }) => {
      engine.configure(cfg({ windowMs: 50 }))
      engine.configure(cfg({ kind: "trade", windowMs: 20, maxFragments: 10 }))
      add(ticker("binance", "1", "2", 0), 0)
      add(trade("kraken", "t1", "1", 5, 5), 5)
      assert.strictEqual(engine.nextDeadline(), 25)
      const out = expire(1_000)
      assert.deepStrictEqual(out.map((o) => o._tag === "Suppressed" ? o.kind : o._tag), ["trade", "ticker"])
    }))

  describe("late fragments", () => {
    it.effect("a fragment taken in before the close of its key's last window is late", () =>
      run(({ add, engine, expire, outstanding, ticker }) => {
        engine.configure(cfg())
        add(ticker("binance", "1", "2", 0), 0)
        expire(100)
        const stale = ticker("kraken", "1", "2", 99)
        const late = add(stale, 101)
        assert.deepStrictEqual(tags(late), ["Late"])
        assert.strictEqual(only(late, "Late").fragment, stale)
        assert.strictEqual(engine.openWindows(), 0, "a late fragment never opens a window")
        assert.strictEqual(outstanding(), 0)
      }))

    it.effect("a fragment not older than the close opens the next window", () =>
      run(({ add, engine, expire, ticker }) => {
        engine.configure(cfg())
        add(ticker("binance", "1", "2", 0), 0)
        expire(100)
        assert.deepStrictEqual(add(ticker("kraken", "1", "2", 100), 101), [])
        const merged = only(add(ticker("binance", "1", "2", 105), 105), "Merged")
        assert.strictEqual(merged.mergeId, `${SYM}|ticker|101|2`)
      }))

    it.effect("the close of a count-closed window is the time it filled", () =>
      run(({ add, engine, ticker }) => {
        engine.configure(cfg())
        add(ticker("binance", "1", "2", 10), 10)
        add(ticker("kraken", "1", "2", 20), 20)
        assert.deepStrictEqual(tags(add(ticker("binance", "1", "2", 19), 21)), ["Late"])
        assert.deepStrictEqual(add(ticker("binance", "1", "2", 20), 22), [])
      }))
  })

  describe("one fragment per provider for tickers and books", () => {
    it.effect("the latest fragment of a provider replaces the earlier one, which comes back at once", () =>
      run(({ add, engine, outstanding, ticker }) => {
        engine.configure(cfg({ maxFragments: 2 }))
        const first = ticker("binance", "1", "3", 0)
        add(first, 0)
        const out = add(ticker("binance", "2", "3", 5), 5)
        assert.deepStrictEqual(tags(out), ["Replaced"], "a replacement does not count towards maxFragments")
        assert.strictEqual(only(out, "Replaced").fragment, first)
        assert.strictEqual(outstanding(), 1)
        const merged = only(add(ticker("kraken", "1.5", "4", 8), 8), "Merged")
        assert.instanceOf(merged.payload, MergedTicker)
        const p = merged.payload as MergedTicker
        assert.deepStrictEqual([p.bestBid, p.bestBidProvider], ["2", "binance"], "the replacement's quote is merged")
        assert.strictEqual(outstanding(), 0)
      }))

    it.effect("a fragment older than the one held is the one that comes back", () =>
      run(({ add, engine, ticker }) => {
        engine.configure(cfg())
        add(ticker("binance", "5", "6", 50), 50)
        const older = ticker("binance", "4", "6", 40)
        const out = add(older, 51)
        assert.strictEqual(only(out, "Replaced").fragment, older)
        const merged = only(add(ticker("kraken", "1", "9", 52), 52), "Merged")
        assert.strictEqual((merged.payload as MergedTicker).bestBid, "5")
      }))
  })

  describe("composition", () => {
    it.effect("tickers: best bid is the highest, best ask the lowest, strings kept, ties to the first provider", () =>
      run(({ add, engine, ticker }) => {
        engine.configure(cfg({ providers: ["binance", "kraken", "okx"], maxFragments: 3 }))
        add(ticker("binance", "100.10", "100.300", 0, "0.5"), 0)
        add(ticker("kraken", "100.2", "100.30", 1, "2"), 1)
        // 18 fraction digits (the most a decimal may have): equal to 100.2 as a float, below it exactly
        const merged = only(add(ticker("okx", "100.199999999999999999", "100.31", 2, "7"), 2), "Merged")
        const p = merged.payload as MergedTicker
        assert.deepStrictEqual(
          [p.bestBid, p.bestBidProvider, p.bestAsk, p.bestAskProvider],
          ["100.2", "kraken", "100.300", "binance"]
        )
        assert.deepStrictEqual(p.quotes.map((q) => [q.provider, q.bidPrice, q.bidQty, q.askPrice]), [
          ["binance", "100.10", "0.5", "100.300"],
          ["kraken", "100.2", "2", "100.30"],
          ["okx", "100.199999999999999999", "7", "100.31"]
        ])
      }))

    it.effect("book snapshots: levels aggregated by price with exact sums and per-venue quantities", () =>
      run(({ add, book, engine }) => {
        engine.configure(cfg({ kind: "book_snapshot" }))
        add(
          book("binance", [["100.0", "0.10"], ["99.5", "1.50"], ["98", "0"]], [["101", "0.1"], ["102.5", "3"]], 0),
          0
        )
        const merged = only(
          add(book("kraken", [["100", "0.20"], ["99", "2"]], [["101.00", "0.2"], ["101.5", "0.000000000000000001"]], 3), 3),
          "Merged"
        )
        assert.instanceOf(merged.payload, MergedBook)
        const p = merged.payload as MergedBook
        const view = (ls: MergedBook["bids"]) =>
          ls.map((l) => [l.price, l.totalQty, l.venues.map((v) => `${v.provider}:${v.quantity}`).join(" ")])
        assert.deepStrictEqual(view(p.bids), [
          ["100.0", "0.3", "binance:0.10 kraken:0.20"],
          ["99.5", "1.50", "binance:1.50"],
          ["99", "2", "kraken:2"]
        ], "bids descending; zero-quantity levels skipped")
        assert.deepStrictEqual(view(p.asks), [
          ["101", "0.3", "binance:0.1 kraken:0.2"],
          ["101.5", "0.000000000000000001", "kraken:0.000000000000000001"],
          ["102.5", "3", "binance:3"]
        ], "asks ascending")
      }))

    it.effect("book snapshots: a provider whose latest snapshot is stale counts as missing", () =>
      run(({ add, book, engine, outstanding }) => {
        engine.configure(cfg({ kind: "book_snapshot" }))
        add(book("binance", [["1", "1"]], [["2", "1"]], 10), 10)
        const out = add(book("kraken", [["1", "1"]], [["2", "1"]], 11, "stale"), 11)
        const s = only(out, "Suppressed")
        assert.deepStrictEqual(s.missing, ["kraken"])
        assert.strictEqual(s.fragments.length, 2)
        assert.strictEqual(outstanding(), 0)
      }))

    it.effect("trades: accumulate, exchange-time order, ties by provider order then arrival", () =>
      run(({ add, engine, expire, trade }) => {
        engine.configure(cfg({ kind: "trade", maxFragments: 100 }))
        add(trade("kraken", "k1", "10.5", 7, 0), 0)
        add(trade("binance", "b1", "10.4", 9, 1), 1)
        add(trade("kraken", "k2", "10.6", 5, 2), 2)
        add(trade("kraken", "k3", "10.6", 7, 3), 3)
        add(trade("binance", "b2", "10.40", 7, 4), 4)
        assert.strictEqual(tags(add(trade("binance", "b3", "10.4", 7, 5), 5)).length, 0, "trades never replace")
        const merged = only(expire(100), "Merged")
        assert.instanceOf(merged.payload, MergedTrades)
        const p = merged.payload as MergedTrades
        assert.deepStrictEqual(
          p.trades.map((t) => `${t.provider}:${t.trade.tradeId}@${t.trade.exchangeTs}:${t.trade.price}`),
          [
            "kraken:k2@5:10.6",
            "binance:b2@7:10.40",
            "binance:b3@7:10.4",
            "kraken:k1@7:10.5",
            "kraken:k3@7:10.6",
            "binance:b1@9:10.4"
          ]
        )
        assert.strictEqual(merged.fragments.length, 6)
      }))

    it.effect("trades: a window closes on its count of trade fragments", () =>
      run(({ add, engine, trade }) => {
        engine.configure(cfg({ kind: "trade", maxFragments: 3 }))
        assert.deepStrictEqual(add(trade("binance", "b1", "1", 1, 1), 1), [])
        assert.deepStrictEqual(add(trade("binance", "b2", "1", 2, 2), 2), [])
        const out = add(trade("binance", "b3", "1", 3, 3), 3)
        const s = only(out, "Suppressed")
        assert.deepStrictEqual([s.closedBy, s.missing], ["count", ["kraken"]], "all from one venue: incomplete")
      }))
  })

  describe("fragments the engine does not take", () => {
    it.effect("unconfigured keys, unexpected providers and mismatched payloads are ignored, still owned by the caller", () =>
      run(({ add, engine, fragment, outstanding, ticker, trade }) => {
        engine.configure(cfg())
        const other = ticker("binance", "1", "2", 0)
        other.symbol = "ETH-USDT"
        const unconfiguredKind = trade("binance", "t", "1", 0, 0)
        const stranger = ticker("okx", "1", "2", 0)
        const mismatched = fragment("kraken", "ticker", Trade.make({
          tradeId: "x",
          price: decimal("1"),
          quantity: decimal("1"),
          side: "sell",
          exchangeTs: 0
        }), 0)
        const delta = fragment("binance", "book_delta", undefined, 0)
        const reasons = [other, unconfiguredKind, stranger, mismatched, delta].map((f) => {
          const [o] = engine.add(f, 0)
          assert.strictEqual(o!._tag, "Ignored")
          assert.strictEqual((o as Extract<Outcome, { _tag: "Ignored" }>).fragment, f)
          return (o as Extract<Outcome, { _tag: "Ignored" }>).reason
        })
        assert.deepStrictEqual(reasons, [
          "unconfigured",
          "unconfigured",
          "unexpected_provider",
          "malformed",
          "unconfigured"
        ])
        assert.strictEqual(engine.openWindows(), 0)
        assert.strictEqual(outstanding(), 5, "the caller still owns them")
        add(other, 0)
        add(unconfiguredKind, 0)
        add(stranger, 0)
        add(mismatched, 0)
        add(delta, 0)
        assert.strictEqual(outstanding(), 0)
      }))
  })

  describe("lifecycle", () => {
    it.effect("drain returns every held fragment and emits nothing", () =>
      run(({ add, engine, outstanding, recycler, ticker, trade }) => {
        engine.configure(cfg({ providers: ["binance", "kraken", "okx"], maxFragments: 3 }))
        engine.configure(cfg({ kind: "trade", maxFragments: 10 }))
        add(ticker("binance", "1", "2", 0), 0)
        add(ticker("okx", "1", "2", 0), 0)
        add(trade("kraken", "t", "1", 0, 0), 0)
        assert.strictEqual(outstanding(), 3)
        const drained = engine.drain()
        assert.strictEqual(drained.length, 3)
        recycler.unsafeRecycleMany(drained)
        assert.strictEqual(outstanding(), 0)
        assert.strictEqual(engine.nextDeadline(), undefined)
        assert.deepStrictEqual(engine.expire(1_000_000), [], "nothing left to emit")
        assert.isTrue(engine.has(SYM, "ticker"), "configuration survives a drain")
      }))

    it.effect("configure is idempotent; a changed config or a removal hands back the open window's fragments", () =>
      run(({ add, engine, outstanding, recycler, ticker }) => {
        assert.isFalse(engine.has(SYM, "ticker"))
        assert.deepStrictEqual(engine.configure(cfg()), [])
        add(ticker("binance", "1", "2", 0), 0)
        assert.deepStrictEqual(engine.configure(cfg()), [], "same parameters: the open window stays")
        assert.strictEqual(engine.openWindows(), 1)
        const discarded = engine.configure(cfg({ windowMs: 500, maxFragments: 3 }))
        assert.strictEqual(discarded.length, 1)
        recycler.unsafeRecycleMany(discarded)
        assert.strictEqual(engine.openWindows(), 0)
        assert.deepStrictEqual(engine.configs().map((c) => c.windowMs), [500])
        add(ticker("kraken", "1", "2", 1), 1)
        const removed = engine.remove(SYM, "ticker")
        assert.strictEqual(removed.length, 1)
        recycler.unsafeRecycleMany(removed)
        assert.isFalse(engine.has(SYM, "ticker"))
        assert.deepStrictEqual(engine.remove(SYM, "ticker"), [])
        assert.strictEqual(outstanding(), 0)
      }))
  })
  describe("completeness policies, one venue down", () => {
    const three = { providers: ["binance", "kraken", "okx"], maxFragments: 3 } as const
    /** Two windows in which okx never quotes; returns the outcomes of each close. */
    const okxDown = (
      h: Effect.Effect.Success<typeof harness>,
      over: Partial<MergeConfig>
    ): Array<ReadonlyArray<Outcome>> => {
      h.engine.configure(cfg({ ...three, ...over }))
      const closes: Array<ReadonlyArray<Outcome>> = []
      for (const t0 of [0, 100]) {
        h.add(h.ticker("binance", "100.1", "100.5", t0), t0)
        h.add(h.ticker("kraken", "100.2", "100.4", t0 + 1), t0 + 1)
        closes.push(h.expire(t0 + 100))
      }
      return closes
    }

    it.effect("all: every window is suppressed, naming the venue that is down", () =>
      run((h) => {
        const closes = okxDown(h, { policy: "all" })
        for (const out of closes) assert.deepStrictEqual(only(out, "Suppressed").missing, ["okx"])
        assert.strictEqual(h.outstanding(), 0)
      }))

    it.effect("quorum (a majority by default): two of three venues emit, the missing one named", () =>
      run((h) => {
        const closes = okxDown(h, { policy: "quorum" })
        for (const out of closes) {
          const m = only(out, "Merged")
          assert.deepStrictEqual(m.missing, ["okx"])
          assert.deepStrictEqual(m.sourceProviders, ["binance", "kraken"])
          const p = m.payload as MergedTicker
          assert.deepStrictEqual(p.missing, ["okx"])
          assert.deepStrictEqual(p.quotes.map((q) => q.provider), ["binance", "kraken"], "only present venues quoted")
          assert.deepStrictEqual([p.bestBid, p.bestBidProvider, p.bestAsk, p.bestAskProvider], ["100.2", "kraken", "100.4", "kraken"])
        }
        assert.strictEqual(h.outstanding(), 0)
      }))

    it.effect("quorum: one venue of three is short of a majority; an explicit quorum of 3 is all", () =>
      run((h) => {
        const closes = okxDown(h, { policy: "quorum", quorum: 3 })
        for (const out of closes) assert.deepStrictEqual(only(out, "Suppressed").missing, ["okx"])
        h.engine.configure(cfg({ ...three, policy: "quorum" }))
        h.add(h.ticker("binance", "1", "2", 300), 300)
        assert.deepStrictEqual(only(h.expire(400), "Suppressed").missing, ["kraken", "okx"])
      }))

    it.effect("quorum: an explicit quorum of 2 of 4 emits with two venues down", () =>
      run((h) => {
        h.engine.configure(cfg({ providers: ["binance", "kraken", "okx", "bybit"], maxFragments: 4, policy: "quorum", quorum: 2 }))
        h.add(h.ticker("okx", "1", "3", 0), 0)
        h.add(h.ticker("binance", "2", "4", 0), 0)
        const m = only(h.expire(100), "Merged")
        assert.deepStrictEqual(m.missing, ["kraken", "bybit"])
        assert.deepStrictEqual(m.sourceProviders, ["binance", "okx"], "configuration order")
      }))

    it.effect("any: one venue alone emits, the others named; a complete window names none", () =>
      run((h) => {
        h.engine.configure(cfg({ ...three, policy: "any" }))
        h.add(h.ticker("kraken", "1", "2", 0), 0)
        const m = only(h.expire(100), "Merged")
        assert.deepStrictEqual((m.payload as MergedTicker).missing, ["binance", "okx"])
        assert.strictEqual(m.closedBy, "deadline", "the window waits its duration for the others")
        h.add(h.ticker("binance", "1", "2", 200), 200)
        h.add(h.ticker("kraken", "1", "2", 200), 200)
        const full = only(h.add(h.ticker("okx", "1", "2", 200), 200), "Merged")
        assert.deepStrictEqual(full.missing, [])
        assert.deepStrictEqual((full.payload as MergedTicker).missing, [])
      }))

    it.effect("no policy configured: any (the default), so a merged quote keeps flowing with a venue down", () =>
      run((h) => {
        const { policy: _, ...noPolicy } = cfg(three)
        h.engine.configure(noPolicy)
        h.add(h.ticker("binance", "1", "2", 0), 0)
        h.add(h.ticker("kraken", "1", "2", 0), 0)
        assert.deepStrictEqual(only(h.expire(100), "Merged").missing, ["okx"])
      }))

    it.effect("books: a stale venue is left out of the merged levels and named missing; all stale is suppressed", () =>
      run((h) => {
        h.engine.configure(cfg({ kind: "book_snapshot", policy: "any" }))
        h.add(h.book("binance", [["1", "1"]], [["2", "1"]], 10), 10)
        const m = only(h.add(h.book("kraken", [["1", "5"]], [["2", "5"]], 11, "stale"), 11), "Merged")
        const p = m.payload as MergedBook
        assert.deepStrictEqual(p.missing, ["kraken"])
        assert.deepStrictEqual(p.bids.map((l) => [l.price, l.totalQty]), [["1", "1"]], "the stale book's levels are not summed")
        h.add(h.book("binance", [["1", "1"]], [["2", "1"]], 20, "stale"), 20)
        const s = only(h.add(h.book("kraken", [["1", "1"]], [["2", "1"]], 21, "stale"), 21), "Suppressed")
        assert.deepStrictEqual(s.missing, ["binance", "kraken"])
        assert.strictEqual(h.outstanding(), 0)
      }))

    it.effect("trades: any emits one venue's trades, naming the silent venue", () =>
      run((h) => {
        h.engine.configure(cfg({ kind: "trade", maxFragments: 3, policy: "any" }))
        h.add(h.trade("binance", "b1", "1", 1, 1), 1)
        h.add(h.trade("binance", "b2", "1", 2, 2), 2)
        const m = only(h.add(h.trade("binance", "b3", "1", 3, 3), 3), "Merged")
        assert.deepStrictEqual((m.payload as MergedTrades).missing, ["kraken"])
        assert.strictEqual((m.payload as MergedTrades).trades.length, 3)
      }))

    it.effect("changing the policy is a new configuration: the open window is handed back", () =>
      run((h) => {
        h.engine.configure(cfg({ policy: "all" }))
        h.add(h.ticker("binance", "1", "2", 0), 0)
        assert.deepStrictEqual(h.engine.configure(cfg({ policy: "all" })), [], "same policy: the window stays")
        const discarded = h.engine.configure(cfg({ policy: "any" }))
        assert.strictEqual(discarded.length, 1)
        h.recycler.unsafeRecycleMany(discarded)
        assert.strictEqual(h.outstanding(), 0)
      }))
  })

  describe("the missing venues on the wire", () => {
    const frame = (payload: Record<string, unknown>, schemaVersion: number = EVENT_SCHEMA_VERSION) => JSON.stringify({
      _tag: "MergedEvent",
      schemaVersion,
      traceId: "merge-1",
      provider: "merged",
      symbol: SYM,
      ingestTs: 1,
      routingVersion: 1,
      kind: "ticker",
      mergeId: `${SYM}|ticker|0|1`,
      sourceProviders: ["binance"],
      payload
    })
    const quote = { provider: "binance", bidPrice: "1", bidQty: "1", askPrice: "2", askQty: "1" }
    const ticker = { _tag: "merged_ticker", bestBid: "1", bestBidProvider: "binance", bestAsk: "2", bestAskProvider: "binance", quotes: [quote] }

    it("a partial merge's missing venues survive encoding and decoding", () =>
      run(({ add, engine, expire, ticker: tick }) => {
        engine.configure(cfg({ policy: "any" }))
        add(tick("binance", "1", "2", 0), 0)
        const m = only(expire(100), "Merged")
        const text = encodeWireJson({
          _tag: "MergedEvent",
          schemaVersion: EVENT_SCHEMA_VERSION,
          traceId: "t",
          provider: "merged",
          symbol: SYM,
          ingestTs: 1,
          routingVersion: 1,
          kind: "ticker",
          mergeId: m.mergeId,
          sourceProviders: m.sourceProviders,
          payload: m.payload
        })
        const back = Either.getOrThrow(decodeWireJson(text))
        assert.strictEqual(back._tag, "MergedEvent")
        assert.deepStrictEqual((back.payload as MergedTicker).missing, ["kraken"])
      }))

    it("a frame from before the field decodes, without it; a list beyond the bound is refused", () => {
      const old = Either.getOrThrow(decodeWireJson(frame(ticker, 1)))
      assert.isUndefined((old.payload as MergedTicker).missing)
      const tooMany = Array.from({ length: MAX_PROVIDERS + 1 }, (_, i) => `venue-${i}`)
      const refused = decodeWireJson(frame({ ...ticker, missing: tooMany }))
      assert.isTrue(Either.isLeft(refused))
      const text = Either.isLeft(refused) ? ParseResult.TreeFormatter.formatErrorSync(refused.left) : ""
      assert.include(text, `missing must hold at most ${MAX_PROVIDERS} items (got ${MAX_PROVIDERS + 1})`)
      assert.isTrue(Either.isLeft(decodeWireJson(frame({ ...ticker, missing: ["x".repeat(65)] }))), "names bounded")
      assert.isTrue(Either.isLeft(decodeWireJson(frame({ ...ticker, missing: "binance" }))), "a list, not a string")
    })
  })

  describe("the policy in a command and in the configuration", () => {
    const decodeMerge = Schema.decodeUnknownEither(MergeSpec)
    const base = { kind: "ticker", providers: ["sim-a", "sim-b", "sim-c"], windowMs: 100, maxFragments: 3 }
    /** The configuration as an operator's file reaches it: the messages `check-config` prints. */
    const configIssues = (merge: Record<string, unknown>): string =>
      Either.match(validate({ merges: [{ symbol: "BTC-USDT", ...merge }] }, "test"), {
        onLeft: (e) => e.issues.map((i) => `${i.path}: ${i.message}`).join("\n"),
        onRight: () => ""
      })
    const commandIssues = (merge: Record<string, unknown>): string =>
      Either.match(decodeMerge(merge), { onLeft: (e) => ParseResult.TreeFormatter.formatErrorSync(e), onRight: () => "" })

    it("decodes each policy; absent, a command leaves it to the engine's default and the configuration states it", () => {
      for (const policy of ["all", "quorum", "any"] as const) {
        assert.strictEqual(Either.getOrThrow(decodeMerge({ ...base, policy })).policy, policy)
      }
      assert.strictEqual(Either.getOrThrow(decodeMerge({ ...base, policy: "quorum", quorum: 3 })).quorum, 3)
      assert.isUndefined(Either.getOrThrow(decodeMerge(base)).policy)
      const configured = Either.getOrThrow(validate({ merges: [{ symbol: "BTC-USDT", ...base }] }, "test"))
      assert.strictEqual(configured.merges[0]!.policy, DEFAULT_MERGE_POLICY)
      const quorum = Either.getOrThrow(validate({ merges: [{ symbol: "BTC-USDT", ...base, policy: "quorum", quorum: 2 }] }, "test"))
      assert.deepStrictEqual([quorum.merges[0]!.policy, quorum.merges[0]!.quorum], ["quorum", 2])
      assert.strictEqual(DEFAULT_MERGE_POLICY, "any")
      assert.strictEqual(requiredProviders({ symbol: "X", ...base, kind: "ticker", policy: "quorum" }), 2)
      assert.strictEqual(requiredProviders({ symbol: "X", ...base, kind: "ticker", providers: ["a", "b"], policy: "quorum" }), 2)
    })

    const hostile: ReadonlyArray<readonly [string, Record<string, unknown>, RegExp]> = [
      ["unknown policy", { policy: "most" }, /policy must be one of all, quorum, any/],
      ["policy not a string", { policy: 3 }, /policy must be one of/],
      ["a 100 KB policy", { policy: "x".repeat(100_000) }, /policy must be one of/],
      ["quorum without policy quorum", { policy: "all", quorum: 2 }, /quorum is only used with policy "quorum"/],
      ["quorum with no policy", { quorum: 2 }, /quorum is only used with policy "quorum" \(policy is any\)/],
      ["quorum above the providers", { policy: "quorum", quorum: 4 }, /quorum \(4\) must be at most the number of providers \(3\)/],
      ["quorum 0", { policy: "quorum", quorum: 0 }, /quorum must be a positive integer \(got 0\)/],
      ["quorum fractional", { policy: "quorum", quorum: 1.5 }, /quorum must be a positive integer/],
      ["quorum as text", { policy: "quorum", quorum: "2" }, /Expected number, actual "2"/]
    ]
    for (const [name, over, message] of hostile) {
      it(`refuses ${name}, in a command and in the configuration`, () => {
        for (const text of [commandIssues({ ...base, ...over }), configIssues({ ...base, ...over })]) {
          assert.match(text, message)
          assert.isBelow(text.length, 2_000, "the message never carries a hostile value whole")
        }
      })
    }
  })
})
