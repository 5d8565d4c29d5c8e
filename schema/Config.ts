/**
 * The gateway configuration: what a YAML or JSON file (with environment
 * overrides and CLI flags on top) says the gateway runs.
 *
 * Every field has a default, so an empty file (or no file) is the embedded
 * default: three simulated venues on BTC-USDT, ETH-USDT and SOL-USDT, the
 * in-memory buses, the paper venue, production-mode pools, and the two example
 * strategies.
 *
 * Structural rules live in the schemas below; rules that relate one section to
 * another (a merge over a venue that is not configured, a symbol a venue does
 * not quote, two venues with one name) are in `crossCheck`, and both are
 * reported together by `src/Config.ts`.
 */
import { Schema } from "effect"
import { DEFAULT_MERGE_POLICY, MAX_WINDOW_MS, MergeKind, MergePolicy, mergePolicyFields, mergePolicyFits } from "./Control.js"
import { defaultSimulatedVenues, ProviderConfig } from "./ProviderConfig.js"
import { DEFAULT_CRITICAL_CAPACITY, DEFAULT_CRITICAL_HIGH_WATER, DEFAULT_EVENT_POOL_CAPACITY, DEFAULT_MARKET_LANE } from "./Sizing.js"

const PositiveInt = (name: string) =>
  Schema.Number.pipe(
    Schema.filter((n) => (Number.isInteger(n) && n > 0) || `${name} must be a positive integer (got ${n})`)
  )

const NonNegativeInt = (name: string) =>
  Schema.Number.pipe(
    Schema.filter((n) => (Number.isInteger(n) && n >= 0) || `${name} must be a non-negative integer (got ${n})`)
  )

/** An integer in `min..max`, with a message that names the setting and the bounds. */
const IntIn = (name: string, min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => (Number.isInteger(n) && n >= min && n <= max) || `${name} must be an integer in ${min}..${max} (got ${n})`)
  )

/** Objects per pool, events per mailbox lane: a bound far above any sane setting, well below what exhausts memory. */
const MAX_OBJECTS = 1_048_576

const Port = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 0 && n <= 65_535) || `port must be an integer in 0..65535 (got ${n})`)
)

/** One windowed merge the gateway runs from the start (see `src/internal/mergeWindow.ts`). */
export class MergeWindowConfig extends Schema.Class<MergeWindowConfig>("MergeWindowConfig")(
  Schema.Struct({
    symbol: Schema.String.pipe(Schema.nonEmptyString()),
    kind: MergeKind,
    providers: Schema.Array(Schema.String).pipe(
      Schema.filter((ps) => ps.length >= 2 || `a merge needs at least 2 providers (got ${ps.length})`),
      Schema.filter((ps) => new Set(ps).size === ps.length || "providers must be distinct")
    ),
    windowMs: Schema.Number.pipe(
      Schema.filter((n) =>
        (Number.isInteger(n) && n > 0 && n <= MAX_WINDOW_MS) ||
        `windowMs must be an integer in 1..${MAX_WINDOW_MS} (got ${n})`
      )
    ),
    maxFragments: PositiveInt("maxFragments"),
    /** How many venues a window needs to emit (`all`, `quorum`, `any`): see `schema/Control.ts` `MergePolicy`. */
    policy: Schema.optionalWith(MergePolicy, { default: () => DEFAULT_MERGE_POLICY }),
    /** With policy `quorum`: the venues needed (a majority when absent). */
    quorum: mergePolicyFields.quorum
  }).pipe(
    Schema.filter((m) =>
      m.maxFragments >= m.providers.length ||
      `maxFragments (${m.maxFragments}) must be at least the number of providers (${m.providers.length})`
    ),
    Schema.filter(mergePolicyFits)
  )
) {}

export class PoolCapacities extends Schema.Class<PoolCapacities>("PoolCapacities")({
  // sized for what the default mailboxes let be in flight (schema/Sizing.ts)
  Event: Schema.optionalWith(IntIn("Event", 1, MAX_OBJECTS), { default: () => DEFAULT_EVENT_POOL_CAPACITY }),
  MergedEvent: Schema.optionalWith(IntIn("MergedEvent", 1, MAX_OBJECTS), { default: () => 2_048 }),
  ExecReport: Schema.optionalWith(IntIn("ExecReport", 1, MAX_OBJECTS), { default: () => 4_096 })
}) {}

export class PoolSection extends Schema.Class<PoolSection>("PoolSection")({
  capacity: Schema.optionalWith(PoolCapacities, { default: () => PoolCapacities.make({}) }),
  prewarm: Schema.optionalWith(NonNegativeInt("prewarm"), { default: () => 256 })
}) {}

/** Bounds of each consumer's two-lane mailbox. */
export class MailboxSection extends Schema.Class<MailboxSection>("MailboxSection")({
  marketCapacity: Schema.optionalWith(IntIn("marketCapacity", 1, MAX_OBJECTS), { default: () => DEFAULT_MARKET_LANE }),
  criticalHighWater: Schema.optionalWith(IntIn("criticalHighWater", 1, MAX_OBJECTS), { default: () => DEFAULT_CRITICAL_HIGH_WATER }),
  /** The critical lane's bound: past it a critical event is refused loudly (see `src/DataBus.ts`). */
  criticalCapacity: Schema.optionalWith(IntIn("criticalCapacity", 1, MAX_OBJECTS), { default: () => DEFAULT_CRITICAL_CAPACITY }),
  /** Longest one strategy handler call may take before it is interrupted (unset: no limit; a strategy's own wins). */
  eventTimeoutMs: Schema.optional(IntIn("eventTimeoutMs", 1, 3_600_000))
}) {}

export class DispatcherSection extends Schema.Class<DispatcherSection>("DispatcherSection")({
  /** How long a sequence gap may hold later events of its stream back. */
  latenessMs: Schema.optionalWith(IntIn("latenessMs", 0, 60_000), { default: () => 50 }),
  reorderBuffer: Schema.optionalWith(IntIn("reorderBuffer", 1, MAX_OBJECTS), { default: () => 1_024 }),
  fanoutConcurrency: Schema.optionalWith(IntIn("fanoutConcurrency", 1, 1_024), { default: () => 1 }),
  /** A sequence further than this from the next expected one is suspect (dropped and counted). */
  jumpWindow: Schema.optionalWith(IntIn("jumpWindow", 1, 1_000_000_000), { default: () => 100_000 }),
  /** Consistent suspects in a row that move a stream to a new numbering. */
  resyncAfter: Schema.optionalWith(IntIn("resyncAfter", 1, 1_000), { default: () => 4 }),
  /** Events timed per second for the dispatch-to-lambda and processing figures (0: one in every event). */
  latencySamplesPerSecond: Schema.optionalWith(IntIn("latencySamplesPerSecond", 0, 1_000_000), { default: () => 2_000 })
}) {}

export class HttpSection extends Schema.Class<HttpSection>("HttpSection")({
  host: Schema.optionalWith(
    Schema.String.pipe(Schema.filter((h) =>
      ["127.0.0.1", "localhost", "::1"].includes(h) ||
      `operator endpoints listen on loopback only: 127.0.0.1, localhost or ::1 (got ${JSON.stringify(h)})`
    )),
    { default: () => "127.0.0.1" }
  ),
  /** 0 picks a free port (logged at start). */
  port: Schema.optionalWith(Port, { default: () => 9464 }),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * Host names a request's Host header may carry besides the bound address
   * and localhost (a reverse proxy's name); any other is refused (DNS rebinding).
   */
  allowedHosts: Schema.optionalWith(
    Schema.Array(
      Schema.String.pipe(Schema.filter((h) =>
        /^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$/i.test(h) ||
        `allowedHosts holds host names, e.g. metrics.internal (got ${JSON.stringify(h)})`
      ))
    ).pipe(Schema.filter((hs) => hs.length <= 16 || `at most 16 allowedHosts (got ${hs.length})`)),
    { default: () => [] }
  ),
  /**
   * The environment variable holding the bearer token that `POST /kill-switch`
   * requires (the token itself is never in the file, nor logged); unset or
   * empty: the endpoint answers 503.
   */
  killSwitchTokenEnv: Schema.optionalWith(
    Schema.String.pipe(Schema.filter((v) =>
      /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) || `killSwitchTokenEnv must be an environment variable name (got ${JSON.stringify(v)})`
    )),
    { default: () => "MELTICA_KILL_SWITCH_TOKEN" }
  )
}) {}

export const MemoryBus = Schema.TaggedStruct("memory", {})
/**
 * What a process does when the buses run on NATS:
 * - `feed`: the providers, the Orchestrator, the Control Plane and the paper
 *   venue; publishes market data and critical events, takes commands.
 * - `strategy`: the Dispatcher and the consumers running the configured
 *   strategies, fed by a feed process over NATS.
 * - `operator`: not a gateway process: the identity `meltica route` uses to
 *   stage and flip the routing table (routing is taken only from the operator).
 */
export const NatsRole = Schema.Literal("feed", "strategy", "operator").annotations({
  message: (issue) => ({
    message: `role must be feed, strategy or operator (got ${JSON.stringify(issue.actual)})`,
    override: true
  })
})
export type NatsRole = typeof NatsRole.Type

/** A secret by reference: the file that holds it or the environment variable that does, never the value. */
export const SecretRef = Schema.Union(
  Schema.Struct({ file: Schema.String.pipe(Schema.nonEmptyString()) }),
  Schema.Struct({
    env: Schema.String.pipe(
      Schema.filter((v) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) || `env must be an environment variable name (got ${JSON.stringify(v)})`)
    )
  })
).annotations({
  message: () => ({ message: "a secret is given by reference, { file: <path> } or { env: <VARIABLE> }, never inline", override: true })
})

const FilePath = Schema.String.pipe(Schema.nonEmptyString())

/**
 * How the process authenticates to the NATS server (the server's own
 * mechanisms): `user` with `password`, or `token`, or `nkeySeed`, or
 * `credsFile` (JWT accounts); and `tls` with a CA and a client certificate.
 * See the README's Security section.
 */
export const NatsAuthSection = Schema.Struct({
  user: Schema.optional(Schema.String.pipe(Schema.nonEmptyString())),
  password: Schema.optional(SecretRef),
  token: Schema.optional(SecretRef),
  nkeySeed: Schema.optional(SecretRef),
  credsFile: Schema.optional(FilePath),
  tls: Schema.optional(Schema.Struct({
    caFile: Schema.optional(FilePath),
    certFile: Schema.optional(FilePath),
    keyFile: Schema.optional(FilePath)
  }).pipe(
    Schema.filter((t) => (t.certFile === undefined) === (t.keyFile === undefined) || "tls: certFile and keyFile go together")
  )),
  inboxPrefix: Schema.optional(
    Schema.String.pipe(Schema.filter((p) => /^[A-Za-z0-9_.~-]+$/.test(p) && !p.endsWith(".") || `inboxPrefix must be a subject without wildcards (got ${JSON.stringify(p)})`))
  )
}).pipe(
  Schema.filter((a) => {
    const mechanisms = (["password", "token", "nkeySeed", "credsFile"] as const).filter((k) => a[k] !== undefined)
    if (mechanisms.length > 1) return `auth: one of password, token, nkeySeed, credsFile (got ${mechanisms.join(" and ")})`
    if (a.password !== undefined && a.user === undefined) return "auth: a password needs a user"
    if (a.user !== undefined && a.password === undefined) return "auth: a user needs a password"
    return true
  })
)
export type NatsAuthSection = typeof NatsAuthSection.Type

export const NatsBus = Schema.TaggedStruct("nats", {
  url: Schema.String.pipe(
    Schema.filter((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u) || `url must be a nats:// (or tls://, ws://, wss://) URL (got ${JSON.stringify(u)})`),
    // a URL is printed (logs, errors, check-config): credentials go in bus.auth, by reference
    Schema.filter((u) =>
      !/^[a-z]+:\/\/[^/@\s]*@/i.test(u) ||
      `url must not hold credentials: give them in bus.auth, by file or environment variable (got ${JSON.stringify(u)})`
    )
  ),
  role: NatsRole,
  auth: Schema.optional(NatsAuthSection),
  /**
   * How events are written on the wire: `binary` (compact versioned frames,
   * market data batched per stream; the default) or `json` (the canonical
   * JSON, one event per message, readable with any NATS client). Receivers
   * read both, so processes can be switched one at a time.
   */
  codec: Schema.optional(
    Schema.Literal("binary", "json").annotations({
      message: (issue) => ({ message: `codec must be binary or json (got ${JSON.stringify(issue.actual)})`, override: true })
    })
  )
})
export const BusSection = Schema.Union(MemoryBus, NatsBus)
export type BusSection = typeof BusSection.Type

/**
 * A limit in the quote asset or in the base asset: a positive decimal, written
 * as a string ("50000", "0.5") or a number in the file.
 */
const LimitDecimal = (name: string) =>
  Schema.Union(Schema.String, Schema.Number.pipe(Schema.filter((n) => Number.isFinite(n) || `${name} must be finite`))).pipe(
    Schema.transform(Schema.String, { strict: true, decode: (u) => String(u), encode: (s) => s }),
    Schema.filter((s) =>
      (/^(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,18})?$/.test(s) && /[1-9]/.test(s)) ||
      `${name} must be a positive decimal, e.g. "50000" or "0.5" (got ${JSON.stringify(s)})`
    )
  )

/**
 * Pre-trade risk limits of a strategy (`src/execution/Risk.ts`), checked before
 * an order reaches the venue; an absent limit does not apply:
 * - `maxOrderNotional`: price (a market order: the venue's mid) x quantity of one order, in the quote asset;
 * - `maxPosition`: the absolute position on one (venue, symbol) the order would leave, in the base asset;
 * - `maxOpenOrders`: orders working at once (0 refuses every order).
 */
export class RiskLimitsConfig extends Schema.Class<RiskLimitsConfig>("RiskLimitsConfig")({
  maxOrderNotional: Schema.optional(LimitDecimal("maxOrderNotional")),
  maxPosition: Schema.optional(LimitDecimal("maxPosition")),
  maxOpenOrders: Schema.optional(IntIn("maxOpenOrders", 0, 1_000_000))
}) {}

/** The strategy that follows the merged best bid/offer across venues. */
export class BboStrategyConfig extends Schema.Class<BboStrategyConfig>("BboStrategyConfig")({
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  symbol: Schema.optionalWith(Schema.String, { default: () => "BTC-USDT" }),
  /** Its risk limits, over the gateway's `risk` defaults. */
  risk: Schema.optional(RiskLimitsConfig)
}) {}

/** The strategy that places and cancels small paper orders. */
export class OrdersStrategyConfig extends Schema.Class<OrdersStrategyConfig>("OrdersStrategyConfig")({
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  symbol: Schema.optionalWith(Schema.String, { default: () => "BTC-USDT" }),
  quantity: Schema.optionalWith(
    Schema.String.pipe(
      Schema.pattern(/^(0|[1-9]\d{0,11})(\.\d{1,12})?$/, {
        message: () => "quantity must be a decimal string, e.g. \"0.001\" (at most 12 digits before and after the point)"
      }),
      Schema.filter((q) => /[1-9]/.test(q) || `quantity must be above 0 (got ${JSON.stringify(q)})`)
    ),
    { default: () => "0.001" }
  ),
  intervalMs: Schema.optionalWith(IntIn("intervalMs", 1, 3_600_000), { default: () => 1_000 }),
  /** Its risk limits, over the gateway's `risk` defaults. */
  risk: Schema.optional(RiskLimitsConfig)
}) {}

/**
 * A strategy from a file: `module` is the file whose default export is the
 * strategy (a path relative to the configuration file, or absolute), and
 * `options` what its options schema decodes (checked when it starts).
 */
export class StrategyModuleConfig extends Schema.Class<StrategyModuleConfig>("StrategyModuleConfig")({
  module: Schema.String.pipe(Schema.nonEmptyString({ message: () => "module must be the path of a strategy file" })),
  options: Schema.optional(Schema.Unknown),
  /** Its risk limits, over the gateway's `risk` defaults (applied to the id the file's strategy has). */
  risk: Schema.optional(RiskLimitsConfig),
  /**
   * `worker`: the strategy runs on a worker thread of its own, fed through
   * shared memory (`src/worker/`); `process` (the default): on the main thread.
   */
  isolation: Schema.optional(Schema.Literal("process", "worker").annotations({
    message: (issue) => ({
      message: `isolation must be process or worker (got ${JSON.stringify(issue.actual)})`,
      override: true
    })
  }))
}) {}

/**
 * The strategies to run: the two examples' switches (`bbo`, `orders`) and
 * strategy files (`modules`). A list (`strategies: [{ module, options }]`)
 * is the same as `modules` with both examples off (`src/Config.ts` reads it so).
 */
export class StrategiesSection extends Schema.Class<StrategiesSection>("StrategiesSection")({
  bbo: Schema.optionalWith(BboStrategyConfig, { default: () => BboStrategyConfig.make({}) }),
  orders: Schema.optionalWith(OrdersStrategyConfig, { default: () => OrdersStrategyConfig.make({}) }),
  modules: Schema.optionalWith(Schema.Array(StrategyModuleConfig), { default: () => [] })
}) {}

export const defaultMerges = (): ReadonlyArray<MergeWindowConfig> =>
  ["BTC-USDT", "ETH-USDT"].map((symbol) =>
    MergeWindowConfig.make({ symbol, kind: "ticker", providers: ["sim-a", "sim-b", "sim-c"], windowMs: 250, maxFragments: 3 })
  )

/**
 * A decimal of the paper section, written as a string ("100000", "0.0005") or
 * a number in the file: at most 20 integer and 18 fractional digits, within
 * `[min, max]` (each optional), positive when `positive`.
 */
const PaperDecimal = (name: string, bounds: { readonly positive?: boolean; readonly max?: number } = {}) =>
  Schema.Union(Schema.String, Schema.Number.pipe(Schema.filter((n) => Number.isFinite(n) || `${name} must be finite`))).pipe(
    Schema.transform(Schema.String, { strict: true, decode: (u) => String(u), encode: (s) => s }),
    Schema.filter((s) =>
      /^(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,18})?$/.test(s) ||
      `${name} must be a non-negative decimal, e.g. "100000" or "0.0005" (got ${JSON.stringify(s)})`
    ),
    Schema.filter((s) => bounds.positive !== true || /[1-9]/.test(s) || `${name} must be above 0 (got ${s})`),
    Schema.filter((s) => bounds.max === undefined || Number(s) <= bounds.max || `${name} must be at most ${bounds.max} (got ${s})`)
  )

/** A fee rate: a fraction of the notional, at most 0.1 (10%). */
const FeeRate = (name: string) => PaperDecimal(name, { max: 0.1 })

/** The instrument rules of one symbol on one venue (`src/execution/Instruments.ts`); an absent rule does not apply. */
export class PaperInstrumentConfig extends Schema.Class<PaperInstrumentConfig>("PaperInstrumentConfig")({
  /** Prices are whole multiples of it. */
  tickSize: Schema.optional(PaperDecimal("tickSize", { positive: true })),
  /** Quantities are whole multiples of it. */
  lotSize: Schema.optional(PaperDecimal("lotSize", { positive: true })),
  minQty: Schema.optional(PaperDecimal("minQty", { positive: true })),
  /** Price x quantity at least this (a market order: the venue's mid x quantity), in the quote asset. */
  minNotional: Schema.optional(PaperDecimal("minNotional", { positive: true }))
}) {}

/**
 * One venue's paper account and market (`src/execution/Paper.ts`). Every key
 * is optional: the defaults are 100,000 USDT, 1 BTC and 10 ETH, fees 0.0002
 * (maker) and 0.0005 (taker), no latency, no instrument rules.
 */
export class PaperVenueSection extends Schema.Class<PaperVenueSection>("PaperVenueSection")({
  /** Starting balance per asset. Given, it replaces the default balances whole. */
  balances: Schema.optional(Schema.Record({ key: Schema.String, value: PaperDecimal("balance") })),
  fees: Schema.optional(Schema.Struct({ maker: FeeRate("fees.maker"), taker: FeeRate("fees.taker") })),
  /** The time an order (an amend, a cancel) takes to reach the venue; it fills against the book as it is then. */
  latencyMs: Schema.optional(IntIn("latencyMs", 0, 60_000)),
  /** Instrument rules per symbol. */
  instruments: Schema.optional(Schema.Record({ key: Schema.String, value: PaperInstrumentConfig }))
}) {}

/**
 * The paper venue. `retainClosed`: how many closed orders it remembers for
 * idempotency and queries. `stateFile`: where an in-memory gateway (`bus: memory`)
 * keeps its open orders across restarts; unset, none are kept (its strategies
 * restart with it). A NATS feed always keeps them in the JetStream key-value
 * bucket `meltica_paper`. `venues`: each configured venue's account, fees,
 * latency and instrument rules, by venue name (a venue not named here trades
 * with the defaults of `PaperVenueSection`).
 */
export class PaperSection extends Schema.Class<PaperSection>("PaperSection")({
  stateFile: Schema.optional(Schema.String.pipe(Schema.nonEmptyString({ message: () => "stateFile must be a file path" }))),
  /** Closed orders kept for idempotency and queries (the oldest forgotten first; open orders never). */
  retainClosed: Schema.optionalWith(IntIn("retainClosed", 1, 10_000_000), { default: () => 10_000 }),
  venues: Schema.optionalWith(Schema.Record({ key: Schema.String, value: PaperVenueSection }), { default: () => ({}) })
}) {}

/**
 * Live trading, per venue (`src/execution/live/LiveExecution.ts`, README
 * "Going live"). A venue trades live only when its `mode` is `live` AND the
 * gateway runs with `--live`; otherwise its orders go to the paper venue.
 * Credentials are references (`{ env: NAME }` or `{ file: path }`, a file
 * readable by its owner only), never values: `apiKey` and, by venue,
 * `secret` (Binance HMAC, OKX, Kraken), `privateKey` (Binance Ed25519 PEM,
 * Coinbase ES256 PEM), `passphrase` (OKX). `testnet`: the venue's test
 * endpoints (Binance spot testnet, OKX demo trading, Coinbase sandbox).
 * `dryRun`: order requests are signed and logged, not sent.
 * `cancelAllOnShutdown`: the venue's open orders are canceled when the
 * gateway stops.
 */
export const LiveMode = Schema.Literal("paper", "live").annotations({
  message: (issue) => ({
    message: `mode must be paper or live (got ${JSON.stringify(issue.actual)})`,
    override: true
  })
})
export type LiveMode = typeof LiveMode.Type

export class LiveVenueSection extends Schema.Class<LiveVenueSection>("LiveVenueSection")({
  mode: Schema.optionalWith(LiveMode, { default: () => "paper" as const }),
  testnet: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  apiKey: Schema.optional(SecretRef),
  secret: Schema.optional(SecretRef),
  privateKey: Schema.optional(SecretRef),
  passphrase: Schema.optional(SecretRef),
  dryRun: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  cancelAllOnShutdown: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Binance's recvWindow (at most 60,000). */
  recvWindowMs: Schema.optional(IntIn("recvWindowMs", 1, 60_000)),
  /** An order request without an answer after this is queried, never resent. */
  timeoutMs: Schema.optional(IntIn("timeoutMs", 100, 120_000)),
  /** Endpoint overrides (a proxy, a local mock). */
  restUrl: Schema.optional(Schema.String.pipe(Schema.nonEmptyString())),
  wsUrl: Schema.optional(Schema.String.pipe(Schema.nonEmptyString()))
}) {}

export class LiveSection extends Schema.Class<LiveSection>("LiveSection")({
  venues: Schema.optionalWith(Schema.Record({ key: Schema.String, value: LiveVenueSection }), { default: () => ({}) })
}) {}

/**
 * Recording (`src/record/Recorder.ts`): every canonical market-data event the
 * providers ingest, written as Parquet under `dir`. Off unless `dir` is set
 * (here or with `meltica run --record DIR`). A file is written per stream at
 * every flush (rotation by time) and whenever a stream holds `maxRowsPerFile`
 * rows (rotation by size); a crash loses at most `flushIntervalMs`.
 */
export class RecordSection extends Schema.Class<RecordSection>("RecordSection")({
  dir: Schema.optional(Schema.String.pipe(Schema.nonEmptyString())),
  kinds: Schema.optionalWith(Schema.Array(Schema.Literal("trade", "ticker", "book_snapshot", "book_delta")), {
    default: () => ["trade", "ticker", "book_snapshot", "book_delta"] as const
  }),
  flushIntervalMs: Schema.optionalWith(IntIn("record.flushIntervalMs", 10, 3_600_000), { default: () => 1_000 }),
  maxRowsPerFile: Schema.optionalWith(IntIn("record.maxRowsPerFile", 1, 10_000_000), { default: () => 100_000 }),
  /** Encode the files on a worker thread (a spare core takes the cost) or, when false, on the event loop. */
  encodeOnWorker: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * Also record the Orchestrator's merged events, under the provider name
   * `merged` (`src/record/Merged.ts`); a backtest replays them only when asked.
   */
  merged: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * Also record the venue adapters' raw traffic (frames received and sent,
   * REST snapshot bodies, with their times) under `dir/raw`, for
   * `meltica import` (`src/record/RawFrames.ts`; also `--record-raw`).
   */
  rawFrames: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

export class GatewayConfig extends Schema.Class<GatewayConfig>("GatewayConfig")({
  venues: Schema.optionalWith(
    Schema.Array(ProviderConfig).pipe(Schema.filter((vs) => vs.length > 0 || "at least one venue is required")),
    { default: () => defaultSimulatedVenues() }
  ),
  merges: Schema.optionalWith(Schema.Array(MergeWindowConfig), { default: defaultMerges }),
  pool: Schema.optionalWith(PoolSection, { default: () => PoolSection.make({}) }),
  mailbox: Schema.optionalWith(MailboxSection, { default: () => MailboxSection.make({}) }),
  dispatcher: Schema.optionalWith(DispatcherSection, { default: () => DispatcherSection.make({}) }),
  http: Schema.optionalWith(HttpSection, { default: () => HttpSection.make({}) }),
  bus: Schema.optionalWith(BusSection, { default: () => MemoryBus.make({}) }),
  /** Pool debug mode: poisoning views and a leak report with acquire stacks. */
  debug: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** How often the status line is printed (at most hourly). */
  statusIntervalMs: Schema.optionalWith(IntIn("statusIntervalMs", 1, 3_600_000), { default: () => 5_000 }),
  strategies: Schema.optionalWith(StrategiesSection, { default: () => StrategiesSection.make({}) }),
  paper: Schema.optionalWith(PaperSection, { default: () => PaperSection.make({}) }),
  /** Risk limits of every strategy that sets none of its own (a strategy's own limits win, one by one). */
  risk: Schema.optionalWith(RiskLimitsConfig, { default: () => RiskLimitsConfig.make({}) }),
  /** Live trading per venue (off unless `mode: live` and `--live`). */
  live: Schema.optionalWith(LiveSection, { default: () => LiveSection.make({}) }),
  /** Recording of the ingested market data (off unless `record.dir` or `--record`). */
  record: Schema.optionalWith(RecordSection, { default: () => RecordSection.make({}) })
}) {}

export type GatewayConfigEncoded = typeof GatewayConfig.Encoded

/** One problem that relates sections to each other. */
export interface CrossIssue {
  readonly path: string
  readonly message: string
}

/**
 * The rules between sections, over a decoded configuration: venue names are
 * unique; a merge runs over configured venues that quote its symbol; a
 * strategy trades a symbol some venue quotes; a NATS strategy process has a
 * strategy to run.
 */
export const crossCheck = (config: GatewayConfig): ReadonlyArray<CrossIssue> => {
  const issues: Array<CrossIssue> = []
  const names = config.venues.map((v) => v.name ?? v._tag)
  const quotes = new Map<string, ReadonlySet<string>>()
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i) {
      issues.push({ path: `venues[${i}].name`, message: `duplicate venue name ${JSON.stringify(name)} (also venues[${names.indexOf(name)}])` })
    } else quotes.set(name, new Set(config.venues[i]!.symbols))
  })
  const allSymbols = new Set(config.venues.flatMap((v) => v.symbols))
  const seen = new Map<string, number>()
  config.merges.forEach((m, i) => {
    const key = `${m.symbol}|${m.kind}`
    const first = seen.get(key)
    if (first !== undefined) {
      issues.push({ path: `merges[${i}]`, message: `a second ${m.kind} merge for ${m.symbol} (also merges[${first}])` })
    } else seen.set(key, i)
    m.providers.forEach((p, j) => {
      const symbols = quotes.get(p)
      if (symbols === undefined) {
        issues.push({ path: `merges[${i}].providers[${j}]`, message: `unknown venue ${JSON.stringify(p)} (configured: ${[...quotes.keys()].join(", ")})` })
      } else if (!symbols.has(m.symbol)) {
        issues.push({ path: `merges[${i}].providers[${j}]`, message: `venue ${JSON.stringify(p)} does not quote ${m.symbol}` })
      }
    })
  })
  const capacities = config.pool.capacity
  for (const pool of ["Event", "MergedEvent", "ExecReport"] as const) {
    if (config.pool.prewarm > capacities[pool]) {
      issues.push({
        path: "pool.prewarm",
        message: `prewarm (${config.pool.prewarm}) is above pool.capacity.${pool} (${capacities[pool]}): every pool is prewarmed with that many objects`
      })
      break
    }
  }
  const strategies = config.strategies
  if (strategies.bbo.enabled && !config.merges.some((m) => m.symbol === strategies.bbo.symbol && m.kind === "ticker")) {
    issues.push({ path: "strategies.bbo.symbol", message: `no ticker merge is configured for ${strategies.bbo.symbol}` })
  }
  if (strategies.orders.enabled && !allSymbols.has(strategies.orders.symbol)) {
    issues.push({ path: "strategies.orders.symbol", message: `no venue quotes ${strategies.orders.symbol}` })
  }
  for (const [venue, paper] of Object.entries(config.paper.venues)) {
    const symbols = quotes.get(venue)
    if (symbols === undefined) {
      issues.push({ path: `paper.venues.${venue}`, message: `unknown venue ${JSON.stringify(venue)} (configured: ${[...quotes.keys()].join(", ")})` })
      continue
    }
    for (const symbol of Object.keys(paper.instruments ?? {})) {
      if (!symbols.has(symbol)) {
        issues.push({ path: `paper.venues.${venue}.instruments.${symbol}`, message: `venue ${JSON.stringify(venue)} does not quote ${symbol}` })
      }
    }
  }
  for (const venue of Object.keys(config.live.venues)) {
    const i = names.indexOf(venue)
    if (i < 0) {
      issues.push({ path: `live.venues.${venue}`, message: `unknown venue ${JSON.stringify(venue)} (configured: ${[...quotes.keys()].join(", ")})` })
    } else if (config.venues[i]!._tag === "simulated") {
      issues.push({ path: `live.venues.${venue}`, message: `venue ${JSON.stringify(venue)} is simulated: it trades on paper only` })
    }
  }
  return issues
}
