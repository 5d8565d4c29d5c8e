import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decodeProviderConfig, defaultSimulatedVenues } from "../../schema/ProviderConfig.js"

describe("ProviderConfig", () => {
  it.effect("decodes a venue with defaults filled in", () =>
    Effect.gen(function*() {
      const c = yield* decodeProviderConfig({ _tag: "binance", symbols: ["BTC-USDT"], wsUrl: "ws://127.0.0.1:1" })
      assert.strictEqual(c._tag, "binance")
      if (c._tag !== "binance") return
      assert.deepStrictEqual([c.depth, c.snapshotLimit, c.depthSpeed, c.tradeStream, c.backoff.initialMs, c.backoff.maxMs, c.stallTimeoutMs], [20, 1000, "100ms", "trade", 500, 30_000, 30_000])
      assert.strictEqual(c.restUrl, undefined)
    }))

  it.effect("lists every problem of an invalid configuration", () =>
    Effect.gen(function*() {
      const r = yield* Effect.either(decodeProviderConfig({ _tag: "kraken", symbols: ["btc/usd"], bookDepth: 7 }))
      assert.isTrue(Either.isLeft(r))
      const message = Either.isLeft(r) ? r.left.message : ""
      assert.match(message, /BASE-QUOTE/)
      assert.match(message, /bookDepth/)
    }))

  const refused: ReadonlyArray<readonly [what: string, input: Record<string, unknown>, message: RegExp]> = [
    ["a WebSocket URL that is not a URL", { _tag: "binance", symbols: ["BTC-USDT"], wsUrl: "not a url" }, /wsUrl must be a ws:\/\/ or wss:\/\/ URL \(got "not a url"\)/],
    ["a WebSocket URL over http", { _tag: "okx", symbols: ["BTC-USDT"], wsUrl: "http://127.0.0.1:1" }, /wsUrl must be a ws:\/\/ or wss:\/\/ URL/],
    ["a REST URL on file://", { _tag: "binance", symbols: ["BTC-USDT"], restUrl: "file:///etc/passwd" }, /restUrl must be a http:\/\/ or https:\/\/ URL/],
    ["a book depth of 10,000,000", { _tag: "kraken", symbols: ["BTC-USD"], depth: 10_000_000 }, /depth must be an integer in 1\.\.5000 \(got 10000000\)/],
    ["a Binance trade stream that is not trade or aggTrade", { _tag: "binance", symbols: ["BTC-USDT"], tradeStream: "kline_1m" }, /tradeStream[\s\S]*"trade" \| "aggTrade"/],
    ["a snapshot limit of 100,000", { _tag: "binance", symbols: ["BTC-USDT"], snapshotLimit: 100_000 }, /snapshotLimit must be an integer in 1\.\.5000/],
    ["a backoff starting above its maximum", { _tag: "coinbase", symbols: ["BTC-USD"], backoff: { initialMs: 60_000, maxMs: 1_000 } }, /initialMs \(60000\) must not be above maxMs \(1000\)/],
    ["a stall timeout of 3e9 ms", { _tag: "okx", symbols: ["BTC-USDT"], stallTimeoutMs: 3e9 }, /stallTimeoutMs must be an integer in 1\.\.3600000/],
    ["a simulated rate of 1e9 per second", { _tag: "simulated", name: "s", symbols: ["BTC-USDT"], tradesPerSecond: 1e9 }, /a rate must be a number of events per second in 0\.\.100000/]
  ]
  for (const [what, input, message] of refused) {
    it.effect(`refuses ${what}`, () =>
      Effect.gen(function*() {
        const r = yield* Effect.either(decodeProviderConfig(input))
        assert.isTrue(Either.isLeft(r), what)
        assert.match(Either.isLeft(r) ? r.left.message : "", message)
      }))
  }

  it.effect("accepts ws/wss and http/https endpoints", () =>
    Effect.gen(function*() {
      const c = yield* decodeProviderConfig({ _tag: "binance", symbols: ["BTC-USDT"], wsUrl: "wss://stream.example.com:9443/ws", restUrl: "https://api.example.com" })
      assert.strictEqual(c._tag === "binance" ? c.restUrl : undefined, "https://api.example.com")
    }))

  it("the embedded default is three simulated venues on the same symbols with different seeds", () => {
    const v = defaultSimulatedVenues()
    assert.deepStrictEqual(v.map((c) => [c.name, c.symbols, c.seed]), [
      ["sim-a", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], 1],
      ["sim-b", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], 2],
      ["sim-c", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], 3]
    ])
  })
})
