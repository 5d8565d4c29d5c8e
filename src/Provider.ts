/**
 * The Provider port: a provider turns one venue's feed into canonical events
 * acquired from the Pool, stamped with `ingestTs` (Clock) and a contiguous
 * per-stream `seqProvider`, and hands each to a sink that owns it from then on.
 *
 * Implementations: simulated venues (the embedded default) and adapters for
 * Binance spot, Kraken WebSocket v2, OKX and Coinbase Advanced Trade. Order
 * books are assembled provider-side (`OrderBook.ts`): consumers see a book
 * snapshot that is consistent or explicitly stale, never a silently wrong one.
 * Refused frames go to the `DeadLetter` queue.
 */
import { Context, Effect, Layer } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { WebSocketConstructor } from "@effect/platform/Socket"
import { NodeHttpClient, NodeSocket } from "@effect/platform-node"
import type { ProviderConfig, RealVenueConfig, SimulatedVenueConfig } from "../schema/ProviderConfig.js"
import { defaultSimulatedVenues } from "../schema/ProviderConfig.js"
import { DeadLetter } from "./DeadLetter.js"
import { Pool } from "./Pool.js"
import { makeBinance } from "./providers/Binance.js"
import { makeCoinbase } from "./providers/Coinbase.js"
import type { FeedServices, ProviderShape } from "./providers/internal/feed.js"
import { makeKraken } from "./providers/Kraken.js"
import { makeOkx } from "./providers/Okx.js"
import { makeSimulated } from "./providers/Simulated.js"
import { Recycler } from "./Recycler.js"

export type { BookStatus, ProviderShape, ProviderStats, ProviderStatus } from "./providers/internal/feed.js"
export type { SimulatedProvider } from "./providers/Simulated.js"

/** What the real venue adapters need from the platform. */
export type PlatformServices = HttpClient | WebSocketConstructor

const feedServices: Effect.Effect<FeedServices, never, Pool | Recycler | DeadLetter> = Effect.all({
  pool: Pool,
  recycler: Recycler,
  deadLetter: DeadLetter
})

/** One provider from its configuration. */
export const make = (
  config: ProviderConfig
): Effect.Effect<ProviderShape, never, Pool | Recycler | DeadLetter | PlatformServices> =>
  Effect.flatMap(feedServices, (services) => {
    switch (config._tag) {
      case "simulated":
        return Effect.succeed(makeSimulated(config, services))
      case "binance":
        return makeBinance(config, services)
      case "kraken":
        return makeKraken(config, services)
      case "okx":
        return makeOkx(config, services)
      case "coinbase":
        return makeCoinbase(config, services)
    }
  })

const isSimulated = (c: ProviderConfig): c is SimulatedVenueConfig => c._tag === "simulated"

export class Providers extends Context.Tag("meltica/Providers")<Providers, ReadonlyArray<ProviderShape>>() {
  /** Simulated venues only (default: sim-a, sim-b, sim-c on BTC-USDT, ETH-USDT, SOL-USDT). */
  static readonly layerSimulated = (
    configs: ReadonlyArray<SimulatedVenueConfig> = defaultSimulatedVenues()
  ): Layer.Layer<Providers, never, Pool | Recycler | DeadLetter> =>
    Layer.effect(
      Providers,
      Effect.map(feedServices, (services) => configs.map((c) => makeSimulated(c, services)))
    )

  /** Any mix of venues; the real ones need a WebSocket constructor and an HTTP client. */
  static readonly layer = (
    configs: ReadonlyArray<ProviderConfig>
  ): Layer.Layer<Providers, never, Pool | Recycler | DeadLetter | PlatformServices> =>
    Layer.effect(Providers, Effect.forEach(configs, make))

  /** Any mix of venues, with Node's WebSocket (`ws`) and HTTP client (undici). */
  static readonly layerNode = (
    configs: ReadonlyArray<ProviderConfig>
  ): Layer.Layer<Providers, never, Pool | Recycler | DeadLetter> =>
    configs.every(isSimulated)
      ? Providers.layerSimulated(configs)
      : Providers.layer(configs).pipe(Layer.provide(layerPlatformNode))
}

/** Node's WebSocket constructor and HTTP client, for the real venue adapters. */
export const layerPlatformNode: Layer.Layer<PlatformServices> = Layer.mergeAll(
  NodeSocket.layerWebSocketConstructor,
  NodeHttpClient.layerUndici
)

export type { RealVenueConfig }
