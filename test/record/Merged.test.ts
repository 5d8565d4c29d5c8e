/**
 * `record.merged`: the Orchestrator's merged events recorded beside the
 * venues' streams, under the provider name `merged`, in the same format; a
 * backtest on such a recording replays the venues' streams only, and the
 * merged streams alone when asked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Scope, TestClock } from "effect"
import { layerBacktest } from "../../layers/Application.js"
import { layerTest, testConfig, TEST_VENUES } from "../../layers/Test.js"
import { MergeWindowConfig, RecordSection } from "../../schema/Config.js"
import { BookSnapshot, decimal, MergedBook, MergedLevel, MergedTicker, MergedTrades, Ticker, Trade, VenueQuote, VenueTrade } from "../../schema/Event.js"
import { runBacktest } from "../../src/backtest/Backtest.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import { Event, MergedEvent } from "../../src/Event.js"
import * as Gateway from "../../src/Gateway.js"
import { Orchestrator } from "../../src/Orchestrator.js"
import { MergedRecording, recordedPayloads, withMergedTap } from "../../src/record/Merged.js"
import { makeRecorder } from "../../src/record/Recorder.js"
import type { RecordedEvent } from "../../src/record/Format.js"
import { openRecording } from "../../src/replay/Reader.js"
import * as Strategy from "../../src/strategy/index.js"
import { tempDir } from "./support.js"

const d = decimal

/** A ticker merge on BTC-USDT and a trade merge on ETH-USDT over the three test venues. */
const merges = [
  MergeWindowConfig.make({ symbol: "BTC-USDT", kind: "ticker", providers: [...TEST_VENUES], windowMs: 100, maxFragments: 3 }),
  MergeWindowConfig.make({ symbol: "ETH-USDT", kind: "trade", providers: [...TEST_VENUES], windowMs: 100, maxFragments: 50 })
]

/** Runs the test gateway for 1.5 s of TestClock time with `record`; the Orchestrator's count of merged events. */
const runGateway = (record: RecordSection) =>
  Effect.gen(function*() {
    const config = testConfig({ merges, record })
    return yield* Effect.gen(function*() {
      const orchestrator = yield* Orchestrator
      const fiber = yield* Gateway.run(config, { strategies: [] }).pipe(Effect.scoped, Effect.fork)
      for (let t = 0; t < 1_500; t += 10) yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(fiber)
      return orchestrator.stats().merged
    }).pipe(Effect.provide(layerTest(config)))
  })

const readAll = (dir: string, providers?: ReadonlyArray<string>) =>
  Effect.promise(() => openRecording(dir, providers === undefined ? {} : { providers }).readAll())

const listens = Strategy.define({
  id: "listener",
  start: (ctx) => ctx.subscribe("BTC-USDT", ["ticker"])
})

/** What a layer under the tap was given as its Dispatcher. */
class Given extends Context.Tag("test/Given")<Given, Dispatcher>() {}

describe("merged events recorded (record.merged)", () => {
  it.scoped("the tap records a merged event, then dispatches every event unchanged, in order; nothing once detached", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const reached: Array<string> = []
      const inner = Layer.succeed(Dispatcher, Dispatcher.make({
        dispatch: (e: Event | MergedEvent) => Effect.sync(() => void reached.push(`${e._pool} ${e.traceId}`))
      } as unknown as Parameters<typeof Dispatcher.make>[0]))
      // the Orchestrator's place: a layer that takes the Dispatcher; the recording layer's: MergedRecording, one instance
      const app = Layer.merge(withMergedTap(Layer.effect(Given, Dispatcher)), MergedRecording.layer).pipe(Layer.provide(inner))
      const context = yield* Layer.build(app)
      const dispatcher = Context.get(context, Given)
      const attached = yield* Scope.make()
      const recorder = yield* makeRecorder({ dir, encodeOnWorker: false })
      yield* Context.get(context, MergedRecording).attach(recorder).pipe(Scope.extend(attached))

      const merged = (traceId: string, ingestTs: number) => {
        const m = new MergedEvent()
        m.provider = "merged"
        m.symbol = "BTC-USDT"
        m.kind = "ticker"
        m.traceId = traceId
        m.ingestTs = ingestTs
        m.payload = MergedTicker.make({
          bestBid: d("100.5"),
          bestBidProvider: "a",
          bestAsk: d("100.7"),
          bestAskProvider: "a",
          quotes: [VenueQuote.make({ provider: "a", bidPrice: d("100.5"), bidQty: d("1"), askPrice: d("100.7"), askQty: d("2") })]
        })
        return m
      }
      const venue = new Event()
      venue.traceId = "v1"
      yield* dispatcher.dispatch(merged("m1", 1_700_000_000_000_000))
      yield* dispatcher.dispatch(venue)
      yield* Scope.close(attached, { _tag: "Success", value: undefined } as never)
      yield* dispatcher.dispatch(merged("m2", 1_700_000_000_500_000))
      yield* recorder.flush
      assert.deepStrictEqual(reached, ["MergedEvent m1", "Event v1", "MergedEvent m2"])
      const rows = yield* readAll(dir)
      assert.deepStrictEqual<unknown>(rows.map((r) => [r.provider, r.symbol, r.kind, r.ingestTs, { ...r.payload }]), [
        ["merged", "BTC-USDT", "ticker", 1_700_000_000_000_000, { _tag: "ticker", bidPrice: "100.5", bidQty: "1", askPrice: "100.7", askQty: "2", exchangeTs: 1_700_000_000_000 }]
      ])
    }))

  it("a merged ticker, book and trades become the canonical rows the merged stream states", () => {
    const ts = 1_700_000_000_123_456
    const ticker = MergedTicker.make({
      bestBid: d("100.5"),
      bestBidProvider: "b",
      bestAsk: d("100.7"),
      bestAskProvider: "a",
      quotes: [
        VenueQuote.make({ provider: "a", bidPrice: d("100.4"), bidQty: d("1"), askPrice: d("100.7"), askQty: d("2") }),
        VenueQuote.make({ provider: "b", bidPrice: d("100.5"), bidQty: d("3"), askPrice: d("100.8"), askQty: d("4") })
      ]
    })
    assert.deepStrictEqual(recordedPayloads(ticker, ts), [
      Ticker.make({ bidPrice: d("100.5"), bidQty: d("3"), askPrice: d("100.7"), askQty: d("2"), exchangeTs: 1_700_000_000_123 })
    ])
    const book = MergedBook.make({
      bids: [MergedLevel.make({ price: d("10"), totalQty: d("3.5"), venues: [{ provider: "a", quantity: d("1") }, { provider: "b", quantity: d("2.5") }] })],
      asks: [MergedLevel.make({ price: d("11"), totalQty: d("1"), venues: [{ provider: "a", quantity: d("1") }] })],
      missing: ["c"]
    })
    assert.deepStrictEqual(recordedPayloads(book, ts), [
      BookSnapshot.make({ bids: [[d("10"), d("3.5")]], asks: [[d("11"), d("1")]], state: "consistent" })
    ])
    const trades = MergedTrades.make({
      trades: [
        VenueTrade.make({ provider: "a", trade: Trade.make({ tradeId: "7", price: d("10"), quantity: d("1"), side: "buy", exchangeTs: 5 }) }),
        VenueTrade.make({ provider: "b", trade: Trade.make({ tradeId: "7", price: d("10.1"), quantity: d("2"), side: "sell", exchangeTs: 6 }) })
      ]
    })
    assert.deepStrictEqual(recordedPayloads(trades, ts), [
      Trade.make({ tradeId: "a:7", price: d("10"), quantity: d("1"), side: "buy", exchangeTs: 5 }),
      Trade.make({ tradeId: "b:7", price: d("10.1"), quantity: d("2"), side: "sell", exchangeTs: 6 })
    ])
    // a merged ticker whose best venue has no quote (not made by the merge engine) is not recorded
    assert.deepStrictEqual(recordedPayloads(MergedTicker.make({ ...ticker, bestBidProvider: "z" }), ts), [])
  })

  it.scoped("the gateway records its merged events under `merged`, beside the venues; a backtest replays the venues only unless asked", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const merged = yield* runGateway(RecordSection.make({ dir, merged: true, flushIntervalMs: 200 }))
      const all = yield* readAll(dir)
      const byProvider = new Map<string, Array<RecordedEvent>>()
      for (const e of all) byProvider.set(e.provider, [...(byProvider.get(e.provider) ?? []), e])
      assert.deepStrictEqual([...byProvider.keys()].sort(), [...TEST_VENUES, "merged"].sort())
      const rows = byProvider.get("merged")!
      const tickers = rows.filter((e) => e.kind === "ticker")
      const trades = rows.filter((e) => e.kind === "trade")
      assert.deepStrictEqual([...new Set(rows.map((e) => `${e.symbol}/${e.kind}`))].sort(), ["BTC-USDT/ticker", "ETH-USDT/trade"])
      // one row per merged ticker; a merged trade event's rows share its time
      assert.isAbove(tickers.length, 10)
      assert.isAbove(trades.length, 5)
      assert.strictEqual(tickers.length + new Set(trades.map((e) => e.ingestTs)).size, merged)
      // every merged trade row is a venue's trade, recorded beside it under its own provider
      const venueTrades = new Map(all.filter((e) => e.provider !== "merged" && e.kind === "trade" && e.symbol === "ETH-USDT")
        .map((e) => [`${e.provider}:${(e.payload as Trade).tradeId}`, e.payload as Trade]))
      for (const e of trades) {
        const t = e.payload as Trade
        const own = venueTrades.get(t.tradeId)
        assert.isDefined(own, t.tradeId)
        assert.deepStrictEqual([t.price, t.quantity, t.side, t.exchangeTs], [own!.price, own!.quantity, own!.side, own!.exchangeTs])
      }

      const venueRows = all.length - rows.length
      const backtest = (providers?: ReadonlyArray<string>) =>
        runBacktest({ data: dir, strategies: [{ strategy: listens }], ...(providers === undefined ? {} : { providers }) }, layerBacktest)
      // by default: the venues' streams, not the merged ones made from them
      const venues = yield* backtest()
      assert.deepStrictEqual(venues.venues.map((v) => v.name), [...TEST_VENUES])
      assert.strictEqual(venues.replay.events, venueRows)
      // on request: the merged streams alone
      const mergedOnly = yield* backtest(["merged"])
      assert.deepStrictEqual(mergedOnly.venues.map((v) => v.name), ["merged"])
      assert.strictEqual(mergedOnly.replay.events, rows.length)
    }), 60_000)

  it.scoped("without record.merged only the venues' streams are recorded", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const merged = yield* runGateway(RecordSection.make({ dir, flushIntervalMs: 200 }))
      assert.isAbove(merged, 10)
      const providers = new Set((yield* readAll(dir)).map((e) => e.provider))
      assert.deepStrictEqual([...providers].sort(), [...TEST_VENUES])
    }), 60_000)
})
