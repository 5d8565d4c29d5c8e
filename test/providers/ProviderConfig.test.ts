import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decodeProviderConfig, defaultSimulatedVenues } from "../../schema/ProviderConfig.js"

describe("ProviderConfig", () => {
  it.effect("decodes a venue with defaults filled in", () =>
    Effect.gen(function*() {
      const c = yield* decodeProviderConfig({ _tag: "binance", symbols: ["BTC-USDT"], wsUrl: "ws://127.0.0.1:1" })
      assert.strictEqual(c._tag, "binance")
      if (c._tag !== "binance") return
      assert.deepStrictEqual([c.depth, c.snapshotLimit, c.depthSpeed, c.backoff.initialMs, c.backoff.maxMs, c.stallTimeoutMs], [20, 1000, "100ms", 500, 30_000, 30_000])
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

  it("the embedded default is three simulated venues on the same symbols with different seeds", () => {
    const v = defaultSimulatedVenues()
    assert.deepStrictEqual(v.map((c) => [c.name, c.symbols, c.seed]), [
      ["sim-a", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], 1],
      ["sim-b", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], 2],
      ["sim-c", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], 3]
    ])
  })
})
