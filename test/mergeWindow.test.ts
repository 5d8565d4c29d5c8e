import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Level } from "../schema/Event.js"
import { BookSnapshot, decimal, MergedBook, MergedTicker, MergedTrades, Ticker, Trade } from "../schema/Event.js"
import type { Event } from "../src/Event.js"
import type { MergeConfig, Outcome } from "../src/internal/mergeWindow.js"
import { MergeWindows } from "../src/internal/mergeWindow.js"
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
})
