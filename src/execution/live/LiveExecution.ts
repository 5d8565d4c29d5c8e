/**
 * Going live: which venues trade live, their credentials, and the execution
 * venue the Control Plane sees (the router over the paper venue and the live
 * venues, `Router.ts`).
 *
 * Safety rules:
 * - A venue trades live only when its config says `live.venues.<name>.mode:
 *   live` AND the gateway runs with `--live`. Without the flag such a venue
 *   trades on paper, and a warning says so at start.
 * - Credentials are read by reference at start (`Secrets.ts`); a missing or
 *   unreadable one stops the start with every problem listed (names and
 *   references only). `meltica check-config` lists the same problems without
 *   starting anything (`liveConfigIssues`).
 * - The clock skew to each live venue is measured before its first order; a
 *   skew past the venue's receive window stops the start (typed
 *   `ClockSkewTooLarge`).
 * - `cancelAllOnShutdown` (default true): the venue's open orders are
 *   canceled when the gateway's scope closes.
 *
 * Venue kinds register their adapter in `liveAdapterFactories`; a live venue
 * of a kind without one is a configuration problem.
 */
import { Data, Effect, Layer, type Redacted, type Scope } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { WebSocketConstructor } from "@effect/platform/Socket"
import type { GatewayConfig, LiveVenueSection } from "../../../schema/Config.js"
import { ConfigIssue, InvalidConfig } from "../../../schema/Errors.js"
import { type ExecReportSink, ExecutionVenue, type ExecutionVenueShape } from "../../ExecutionVenue.js"
import type { Pool } from "../../Pool.js"
import { BINANCE_TESTNET_REST_URL, BINANCE_TESTNET_WS_API_URL, makeBinanceAdapter } from "../Binance.js"
import { coinbaseLiveAdapter } from "../Coinbase.js"
import { krakenLiveAdapter, krakenSectionProblems } from "../Kraken.js"
import { makeOkxAdapter } from "../Okx.js"
import type { LiveAdapter } from "./LiveAdapter.js"
import { type LiveVenueShape, makeLiveVenue } from "./LiveVenue.js"
import { makeRouter } from "./Router.js"
import { describeRef, readSecret, type SecretRef, secretProblem, type SecretUnavailable } from "./Secrets.js"

export type CredentialName = "apiKey" | "secret" | "privateKey" | "passphrase"

/** One live venue as configured: its name, kind, symbols and `live.venues` entry. */
export interface LiveVenueSpec {
  readonly name: string
  readonly kind: string
  readonly symbols: ReadonlyArray<string>
  readonly section: LiveVenueSection
}

/** The credentials a kind needs: every group must be satisfied by one of its names. */
export const requiredCredentials: Readonly<Record<string, ReadonlyArray<ReadonlyArray<CredentialName>>>> = {
  binance: [["apiKey"], ["secret", "privateKey"]],
  okx: [["apiKey"], ["secret"], ["passphrase"]],
  kraken: [["apiKey"], ["secret"]],
  coinbase: [["apiKey"], ["privateKey"]]
}

/** A live venue's credentials, read. */
export type Credentials = Partial<Record<CredentialName, Redacted.Redacted<string>>>

export type LiveAdapterFactory = (
  spec: LiveVenueSpec,
  credentials: Credentials
) => Effect.Effect<LiveAdapter, never, HttpClient | WebSocketConstructor>

/** The adapters by venue kind. */
export const liveAdapterFactories = new Map<string, LiveAdapterFactory>([
  [
    "binance",
    (spec, c) =>
      makeBinanceAdapter({
        venue: spec.name,
        symbols: spec.symbols,
        apiKey: c.apiKey!,
        key: c.secret !== undefined ? { _tag: "hmac", secret: c.secret } : { _tag: "ed25519", privateKey: c.privateKey! },
        dryRun: spec.section.dryRun,
        ...(spec.section.recvWindowMs === undefined ? {} : { recvWindowMs: spec.section.recvWindowMs }),
        ...(spec.section.timeoutMs === undefined ? {} : { timeoutMs: spec.section.timeoutMs }),
        ...(spec.section.restUrl !== undefined
          ? { restUrl: spec.section.restUrl }
          : spec.section.testnet
          ? { restUrl: BINANCE_TESTNET_REST_URL }
          : {}),
        ...(spec.section.wsUrl !== undefined
          ? { wsApiUrl: spec.section.wsUrl }
          : spec.section.testnet
          ? { wsApiUrl: BINANCE_TESTNET_WS_API_URL }
          : {})
      })
  ],
  [
    "okx",
    (spec, c) =>
      makeOkxAdapter({
        venue: spec.name,
        symbols: spec.symbols,
        apiKey: c.apiKey!,
        secret: c.secret!,
        passphrase: c.passphrase!,
        demo: spec.section.testnet,
        dryRun: spec.section.dryRun,
        ...(spec.section.timeoutMs === undefined ? {} : { timeoutMs: spec.section.timeoutMs }),
        ...(spec.section.restUrl === undefined ? {} : { restUrl: spec.section.restUrl }),
        ...(spec.section.wsUrl === undefined ? {} : { wsUrl: spec.section.wsUrl })
      })
  ],
  ["kraken", krakenLiveAdapter],
  ["coinbase", coinbaseLiveAdapter]
])

/** Every venue the `live` section names, with its configured kind and symbols. */
export const liveVenueSpecs = (config: GatewayConfig): ReadonlyArray<LiveVenueSpec> =>
  Object.entries(config.live.venues).flatMap(([name, section]) => {
    const venue = config.venues.find((v) => (v.name ?? v._tag) === name)
    return venue === undefined ? [] : [{ name, kind: venue._tag, symbols: venue.symbols, section }]
  })

export interface LiveConfigIssue {
  readonly path: string
  readonly message: string
}

/**
 * What would stop a live venue from starting: a kind without an adapter, a
 * credential missing from the config, a reference that does not resolve (the
 * variable unset, the file missing or readable by others). Names and
 * references only, never a value.
 */
export const liveConfigIssues = (config: GatewayConfig, env: NodeJS.ProcessEnv = process.env): ReadonlyArray<LiveConfigIssue> =>
  liveVenueSpecs(config).filter((spec) => spec.section.mode === "live").flatMap((spec) => specIssues(spec, env))

const specIssues = (spec: LiveVenueSpec, env: NodeJS.ProcessEnv): ReadonlyArray<LiveConfigIssue> => {
  const issues: Array<LiveConfigIssue> = []
  {
    const base = `live.venues.${spec.name}`
    const groups = requiredCredentials[spec.kind]
    if (groups === undefined || !liveAdapterFactories.has(spec.kind)) {
      issues.push({ path: `${base}.mode`, message: `no live adapter for ${spec.kind} venues` })
      return issues
    }
    for (const group of groups) {
      const given = group.filter((n) => spec.section[n] !== undefined)
      if (given.length === 0) {
        issues.push({ path: `${base}.${group.join("|")}`, message: `missing: ${group.join(" or ")} ({ env: NAME } or { file: path })` })
        continue
      }
      for (const name of given) {
        const ref = spec.section[name] as SecretRef
        const problem = secretProblem(ref, env)
        if (problem !== undefined) issues.push({ path: `${base}.${name}`, message: `${describeRef(ref)}: ${problem}` })
      }
    }
    // Kraken has no spot testnet: `testnet: true` (the default) is a problem, not a silent trip to production
    if (spec.kind === "kraken") {
      for (const p of krakenSectionProblems(spec.section).filter((x) => x.startsWith("testnet"))) {
        issues.push({ path: `${base}.testnet`, message: p.slice("testnet: ".length) })
      }
    }
  }
  return issues
}

/** The live section in a few lines for `check-config` (modes, endpoints, credential references; never a value). */
export const liveSummary = (config: GatewayConfig): string => {
  const specs = liveVenueSpecs(config)
  if (specs.length === 0) return ""
  const lines = specs.map((s) => {
    const refs = (["apiKey", "secret", "privateKey", "passphrase"] as const)
      .flatMap((n) => (s.section[n] === undefined ? [] : [`${n} ${describeRef(s.section[n] as SecretRef)}`]))
    return `  ${s.name} (${s.kind}): mode ${s.section.mode}${s.section.mode === "live" ? " (with --live)" : ""}, ${
      s.section.testnet ? "testnet" : "production"
    }${s.section.dryRun ? ", dry-run" : ""}${s.section.cancelAllOnShutdown ? ", cancel-all on shutdown" : ""}; ${
      refs.length === 0 ? "no credentials" : refs.join(", ")
    }`
  })
  return `\nlive venues:\n${lines.join("\n")}`
}

/** A live venue could not start: every problem, by path (never a secret). */
export class LiveStartupFailed extends Data.TaggedError("LiveStartupFailed")<{
  readonly issues: ReadonlyArray<LiveConfigIssue>
}> {
  override get message(): string {
    return `live trading cannot start: ${this.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`
  }
}

export interface LiveExecutionSettings {
  /** `--live` was given. */
  readonly enabled: boolean
  readonly venues: ReadonlyArray<LiveVenueSpec>
  readonly env?: NodeJS.ProcessEnv | undefined
}

export const liveSettings = (config: GatewayConfig, enabled: boolean): LiveExecutionSettings => ({
  enabled,
  venues: liveVenueSpecs(config)
})

const readCredentials = (spec: LiveVenueSpec, env: NodeJS.ProcessEnv): Effect.Effect<Credentials, SecretUnavailable> =>
  Effect.gen(function*() {
    const out: { -readonly [K in CredentialName]?: Redacted.Redacted<string> } = {}
    for (const name of ["apiKey", "secret", "privateKey", "passphrase"] as const) {
      const ref = spec.section[name]
      if (ref !== undefined) out[name] = yield* readSecret(spec.name, name, ref, env)
    }
    return out
  })

/** The live venues the settings turn on, each started (clock checked, stream running) in the current scope. */
export const makeLiveVenues = (
  settings: LiveExecutionSettings
): Effect.Effect<ReadonlyArray<LiveVenueShape>, LiveStartupFailed, Pool | ExecReportSink | HttpClient | WebSocketConstructor | Scope.Scope> =>
  Effect.gen(function*() {
    const wanted = settings.venues.filter((v) => v.section.mode === "live")
    if (wanted.length === 0) return []
    if (!settings.enabled) {
      yield* Effect.logWarning("live trading is off: these venues say mode: live, but the gateway runs without --live; their orders go to the paper venue").pipe(
        Effect.annotateLogs({ venues: wanted.map((v) => v.name).join(", ") })
      )
      return []
    }
    const env = settings.env ?? process.env
    const issues = wanted.flatMap((spec) => specIssues(spec, env))
    if (issues.length > 0) return yield* new LiveStartupFailed({ issues })
    const venues: Array<LiveVenueShape> = []
    for (const spec of wanted) {
      const credentials = yield* readCredentials(spec, env).pipe(
        Effect.mapError((e) => new LiveStartupFailed({ issues: [{ path: `live.venues.${spec.name}.${e.name}`, message: `${e.ref}: ${e.reason}` }] }))
      )
      const adapter = yield* liveAdapterFactories.get(spec.kind)!(spec, credentials)
      yield* adapter.syncClock.pipe(
        Effect.mapError((e) => new LiveStartupFailed({ issues: [{ path: `live.venues.${spec.name}`, message: e.message }] }))
      )
      const venue = yield* makeLiveVenue(adapter)
      if (spec.section.cancelAllOnShutdown) {
        yield* Effect.addFinalizer(() =>
          venue.cancelAll({}, "gateway shutdown").pipe(
            Effect.tap((canceled) => Effect.logInfo("live venue: open orders canceled at shutdown").pipe(
              Effect.annotateLogs({ venue: spec.name, canceled: canceled.length })
            ))
          )
        )
      }
      yield* Effect.logWarning("LIVE TRADING: orders for this venue go to the exchange").pipe(
        Effect.annotateLogs({ venue: spec.name, testnet: spec.section.testnet, dryRun: spec.section.dryRun })
      )
      venues.push(venue)
    }
    return venues
  })

/**
 * The execution venue over a paper venue layer: the router when some venue
 * trades live, the paper venue itself otherwise. A live venue that cannot
 * start fails the layer with an `InvalidConfig` listing every problem by path
 * (the gateway reports configuration problems so), never a secret.
 */
export const layerOver = <E, R>(
  paper: Layer.Layer<ExecutionVenue, E, R>,
  settings: LiveExecutionSettings
): Layer.Layer<ExecutionVenue, E | InvalidConfig, R | Pool | ExecReportSink | HttpClient | WebSocketConstructor> =>
  Layer.scoped(
    ExecutionVenue,
    Effect.gen(function*() {
      const inner: ExecutionVenueShape = yield* ExecutionVenue
      const live = yield* makeLiveVenues(settings).pipe(
        Effect.mapError((e) => new InvalidConfig({ source: "live trading", issues: e.issues.map((i) => ConfigIssue.make(i)) }))
      )
      return live.length === 0 ? inner : makeRouter(inner, live)
    })
  ).pipe(Layer.provide(paper))
