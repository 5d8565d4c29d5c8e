/**
 * The test application layer: the in-memory default, deterministic simulated
 * venues, the providers and the metrics, without the HTTP endpoints.
 *
 * Everything is paced by Effect's Clock, so under `TestClock` nothing moves
 * until the test says so (`TestClock.adjust`), and the same seeds give the
 * same events every run. A strategy is tested by running it with
 * `Gateway.run` (or `Strategy.run`, `src/strategy/`) against this layer and
 * reading its state.
 */
import { Layer } from "effect"
import { GatewayConfig, MergeWindowConfig } from "../schema/Config.js"
import { SimulatedVenueConfig } from "../schema/ProviderConfig.js"
import { layerOn, memoryOptions } from "./Application.js"
import { layerMemory } from "./Memory.js"

export const TEST_VENUES = ["sim-a", "sim-b", "sim-c"] as const

/** Three simulated venues with fixed seeds on the given symbols. */
export const testVenues = (symbols: ReadonlyArray<string> = ["BTC-USDT", "ETH-USDT"]) =>
  TEST_VENUES.map((name, i) =>
    SimulatedVenueConfig.make({
      name,
      symbols: symbols as [string, ...Array<string>],
      seed: 100 + i,
      tickMs: 10,
      tradesPerSecond: 5,
      tickersPerSecond: 20,
      deltasPerSecond: 10,
      resyncDelayMs: 20
    })
  )

/** A complete configuration for tests: test venues, a ticker merge on BTC-USDT, no HTTP. */
export const testConfig = (overrides: Partial<ConstructorParameters<typeof GatewayConfig>[0]> = {}) =>
  GatewayConfig.make({
    venues: testVenues(),
    merges: [
      MergeWindowConfig.make({ symbol: "BTC-USDT", kind: "ticker", providers: [...TEST_VENUES], windowMs: 100, maxFragments: 3 })
    ],
    statusIntervalMs: 1_000,
    ...overrides
  })

/** The application layer for a test configuration. */
export const layerTest = (config: GatewayConfig = testConfig()) => layerOn(config, layerMemory(memoryOptions(config)))

/** The same, with the pool in debug mode (use-after-recycle fails at once). */
export const layerTestDebug = (config: GatewayConfig = testConfig()) =>
  layerOn(config, layerMemory({ ...memoryOptions(config), pool: { ...memoryOptions(config).pool, debug: true } }))

export type TestServices = Layer.Layer.Success<ReturnType<typeof layerTest>>
