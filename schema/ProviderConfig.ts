/**
 * Provider configuration: which venues feed the gateway, with what symbols,
 * rates, endpoints and fault injection. The gateway configuration embeds a
 * list of these.
 *
 * Symbols are canonical ("BTC-USDT"); each adapter maps them to the venue's
 * own spelling ("BTCUSDT", "BTC/USDT", ...) unless `symbolMap` says otherwise.
 */
import { Schema } from "effect"

const VenueKind = Schema.Literal("simulated", "binance", "kraken", "okx", "coinbase")
export type VenueKind = typeof VenueKind.Type

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegative = Schema.Number.pipe(Schema.nonNegative())

/** An integer in `min..max`, with a message that names the setting and the bounds. */
const IntIn = (name: string, min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => (Number.isInteger(n) && n >= min && n <= max) || `${name} must be an integer in ${min}..${max} (got ${n})`)
  )
/** A timer setting: at most an hour (Node's timers overflow past 24.8 days; nothing here needs more than an hour). */
const Millis = (name: string) => IntIn(name, 1, 3_600_000)
/** Book levels per side: venues serve at most 5,000 (Binance's deepest REST snapshot). */
const Depth = (name: string) => IntIn(name, 1, 5_000)
/** Simulated events per second per symbol. */
const Rate = Schema.Number.pipe(
  Schema.filter((n) => (n >= 0 && n <= 100_000) || `a rate must be a number of events per second in 0..100000 (got ${n})`)
)

/** A URL whose scheme is one of `schemes` (e.g. "wss:"), with a host. */
const UrlOf = (name: string, schemes: ReadonlyArray<string>) =>
  Schema.String.pipe(
    Schema.filter((u) => {
      let url: URL
      try {
        url = new URL(u)
      } catch {
        return `${name} must be a ${schemes.map((s) => `${s}//`).join(" or ")} URL (got ${JSON.stringify(u)})`
      }
      return (schemes.includes(url.protocol) && url.host !== "") ||
        `${name} must be a ${schemes.map((s) => `${s}//`).join(" or ")} URL (got ${JSON.stringify(u)})`
    })
  )
const Probability = Schema.Number.pipe(Schema.between(0, 1))

/** A canonical symbol: BASE-QUOTE in upper case. */
const CanonicalSymbol = Schema.String.pipe(
  Schema.pattern(/^[A-Z0-9]+-[A-Z0-9]+$/, { message: () => "a canonical symbol is BASE-QUOTE, e.g. BTC-USDT" })
)

/** Reconnect backoff: exponential from `initialMs` by `factor`, capped at `maxMs`, with a random jitter. */
export class Backoff extends Schema.Class<Backoff>("Backoff")(Schema.Struct({
  initialMs: Schema.optionalWith(Millis("initialMs"), { default: () => 500 }),
  maxMs: Schema.optionalWith(Millis("maxMs"), { default: () => 30_000 }),
  factor: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 2 }),
  /** Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 0.2 })
}).pipe(
  Schema.filter((b) => b.initialMs <= b.maxMs || `initialMs (${b.initialMs}) must not be above maxMs (${b.maxMs})`)
)) {}

/** Faults a simulated venue injects at random (per generator tick), for demos and soak tests. */
export class SimulatedFaults extends Schema.Class<SimulatedFaults>("SimulatedFaults")({
  gap: Schema.optionalWith(Probability, { default: () => 0 }),
  badChecksum: Schema.optionalWith(Probability, { default: () => 0 }),
  malformed: Schema.optionalWith(Probability, { default: () => 0 }),
  disconnect: Schema.optionalWith(Probability, { default: () => 0 })
}) {}

/**
 * What a venue adapter may ask of the venue: every request (connection
 * attempt, REST snapshot, resubscription) takes a token from a bucket of
 * `burst` tokens refilled at `perMinute`. A "too many requests" answer
 * without a Retry-After stops all requests for `rateLimitedMs`.
 */
export class RequestBudget extends Schema.Class<RequestBudget>("RequestBudget")({
  burst: Schema.optionalWith(IntIn("burst", 1, 1_000), { default: () => 10 }),
  perMinute: Schema.optionalWith(IntIn("perMinute", 1, 6_000), { default: () => 60 }),
  rateLimitedMs: Schema.optionalWith(Millis("rateLimitedMs"), { default: () => 60_000 })
}) {}

export class SimulatedVenueConfig extends Schema.TaggedClass<SimulatedVenueConfig>()("simulated", {
  name: Schema.String.pipe(Schema.nonEmptyString()),
  symbols: Schema.NonEmptyArray(CanonicalSymbol),
  seed: Schema.optionalWith(Schema.Int, { default: () => 1 }),
  /** Events per second, per symbol. */
  tradesPerSecond: Schema.optionalWith(Rate, { default: () => 5 }),
  tickersPerSecond: Schema.optionalWith(Rate, { default: () => 5 }),
  deltasPerSecond: Schema.optionalWith(Rate, { default: () => 10 }),
  /** Periodic consistent book snapshot. */
  snapshotIntervalMs: Schema.optionalWith(Millis("snapshotIntervalMs"), { default: () => 5_000 }),
  /** Generator resolution: events due within a tick are produced together. */
  tickMs: Schema.optionalWith(Millis("tickMs"), { default: () => 10 }),
  /** Levels per side in the venue book and in emitted snapshots. */
  depth: Schema.optionalWith(Depth("depth"), { default: () => 20 }),
  /** Delay of a resync (the REST snapshot round trip of a real venue). */
  resyncDelayMs: Schema.optionalWith(NonNegative, { default: () => 50 }),
  /** Downtime after an injected disconnect. */
  reconnectDelayMs: Schema.optionalWith(NonNegative, { default: () => 200 }),
  /** Largest raw frame parsed, in UTF-8 bytes (frames injected as text); a larger one is refused unparsed. */
  maxFrameBytes: Schema.optional(PositiveInt),
  faults: Schema.optionalWith(SimulatedFaults, { default: () => SimulatedFaults.make({}) })
}) {}

const venueFields = {
  /** The provider's name on events ("binance", "kraken-eu", ...). Defaults to the venue kind. */
  name: Schema.optional(Schema.String.pipe(Schema.nonEmptyString())),
  symbols: Schema.NonEmptyArray(CanonicalSymbol),
  /** Canonical symbol -> the venue's own symbol, where the default mapping does not fit. */
  symbolMap: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** WebSocket endpoint (ws:// or wss://); defaults to the venue's public endpoint. */
  wsUrl: Schema.optional(UrlOf("wsUrl", ["ws:", "wss:"])),
  /** REST endpoint for book snapshots (http:// or https://); defaults to the venue's public endpoint. */
  restUrl: Schema.optional(UrlOf("restUrl", ["http:", "https:"])),
  /** Levels per side kept in the book and in emitted snapshots. */
  depth: Schema.optionalWith(Depth("depth"), { default: () => 20 }),
  /** Periodic consistent snapshot of each book. */
  snapshotIntervalMs: Schema.optionalWith(Millis("snapshotIntervalMs"), { default: () => 5_000 }),
  /** No frame for this long: the connection is considered dead and is replaced. */
  stallTimeoutMs: Schema.optionalWith(Millis("stallTimeoutMs"), { default: () => 30_000 }),
  /** Application-level keepalive ping, where the venue has one. */
  pingIntervalMs: Schema.optionalWith(Millis("pingIntervalMs"), { default: () => 20_000 }),
  openTimeoutMs: Schema.optionalWith(Millis("openTimeoutMs"), { default: () => 10_000 }),
  backoff: Schema.optionalWith(Backoff, { default: () => Backoff.make({}) }),
  /** Requests to the venue: a token bucket every connection attempt, snapshot and resubscription draws from. */
  requestBudget: Schema.optionalWith(RequestBudget, { default: () => RequestBudget.make({}) }),
  /** Buffered diffs per symbol while a snapshot is fetched, before the sync restarts. */
  maxBuffered: Schema.optionalWith(PositiveInt, { default: () => 10_000 }),
  /**
   * Largest WebSocket frame or REST snapshot body parsed, in UTF-8 bytes;
   * a larger one is refused unparsed (counted, dead-lettered). Defaults per
   * venue: 128 KiB (Binance), 256 KiB (Kraken, OKX); Binance and OKX at least
   * 128 bytes per level of `snapshotLimit`; 2 MiB (Coinbase, whose level2 snapshot is
   * the whole book); see `defaultMaxFrameBytes` in src/providers/internal/feed.ts.
   */
  maxFrameBytes: Schema.optional(PositiveInt)
}

export class BinanceConfig extends Schema.TaggedClass<BinanceConfig>()("binance", {
  ...venueFields,
  /** Levels requested from the REST depth snapshot (Binance allows up to 5000). */
  snapshotLimit: Schema.optionalWith(Depth("snapshotLimit"), { default: () => 1000 }),
  /** Diff depth stream speed. */
  depthSpeed: Schema.optionalWith(Schema.Literal("100ms", "1000ms"), { default: () => "100ms" as const }),
  /**
   * The trade stream subscribed: `trade` (every trade) or `aggTrade` (trades of
   * one taker order at one price, aggregated; its id is the aggregate's).
   */
  tradeStream: Schema.optionalWith(Schema.Literal("trade", "aggTrade"), { default: () => "trade" as const })
}) {}

export class KrakenConfig extends Schema.TaggedClass<KrakenConfig>()("kraken", {
  ...venueFields,
  /** Subscribed book depth (Kraken: 10, 25, 100, 500, 1000). */
  bookDepth: Schema.optionalWith(Schema.Literal(10, 25, 100, 500, 1000), { default: () => 10 as const })
}) {}

export class OkxConfig extends Schema.TaggedClass<OkxConfig>()("okx", {
  ...venueFields,
  /** Levels requested from the REST books snapshot. */
  snapshotLimit: Schema.optionalWith(Depth("snapshotLimit"), { default: () => 400 })
}) {}

export class CoinbaseConfig extends Schema.TaggedClass<CoinbaseConfig>()("coinbase", {
  ...venueFields
}) {}

export const ProviderConfig = Schema.Union(SimulatedVenueConfig, BinanceConfig, KrakenConfig, OkxConfig, CoinbaseConfig)
export type ProviderConfig = typeof ProviderConfig.Type
export type ProviderConfigEncoded = typeof ProviderConfig.Encoded

export type RealVenueConfig = BinanceConfig | KrakenConfig | OkxConfig | CoinbaseConfig

/** The embedded default: three simulated venues quoting the same symbols. */
export const defaultSimulatedVenues = (
  symbols: ReadonlyArray<string> = ["BTC-USDT", "ETH-USDT", "SOL-USDT"],
  seed = 1
): ReadonlyArray<SimulatedVenueConfig> =>
  ["sim-a", "sim-b", "sim-c"].map((name, i) =>
    SimulatedVenueConfig.make({ name, symbols: symbols as [string, ...Array<string>], seed: seed + i })
  )

/** Compiled once: unknown input -> provider configuration (defaults filled in). */
export const decodeProviderConfig = Schema.decodeUnknown(ProviderConfig, { errors: "all" })

/** A fault a simulated venue can be told to inject. */
export const Fault = Schema.Literal("gap", "bad_checksum", "malformed", "disconnect")
export type Fault = typeof Fault.Type
