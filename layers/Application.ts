/**
 * The composition root: from a validated configuration to the whole
 * application, and the runner that keeps it for the life of the process.
 *
 * `layerApplication(config)` picks the application layer the configuration
 * describes and puts the common parts on top:
 * - `bus: memory`: everything in this process (`Memory.ts`, or `Debug.ts`
 *   with `debug: true`);
 * - `bus: nats`, `role: feed`: providers, Orchestrator, Control Plane and
 *   paper venue, publishing on NATS (`Nats.ts`), no strategies;
 * - `bus: nats`, `role: strategy`: the strategies, fed over NATS;
 * then the providers, the strategy registry (readiness names a strategy that
 * failed, `/status.json` lists them by id), the status sampling and the
 * Prometheus exporter, and the operator endpoints when `http.enabled`.
 *
 * `runGateway({ config, strategies })` runs the program on it until
 * interrupted, then closes it and logs the leak report and the fibers left.
 * `bin/meltica.ts` hands this module to the CLI (`src/main.ts`); a program
 * that embeds the gateway calls `runGateway` itself.
 */
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Effect, Exit, Layer, Scope, Supervisor } from "effect"
import { ConfigIssue, InvalidConfig } from "../schema/Errors.js"
import type { GatewayConfig } from "../schema/Config.js"
import bboFollower from "../examples/bboFollower.js"
import paperTrader from "../examples/paperTrader.js"
import * as Config from "../src/Config.js"
import * as Gateway from "../src/Gateway.js"
import * as Http from "../src/Http.js"
import { DeadLetter } from "../src/DeadLetter.js"
import type { DispatcherSettings } from "../src/Dispatcher.js"
import { CommandPublisher } from "../src/nats/Commands.js"
import { NatsConfig, NatsConnection } from "../src/nats/Connection.js"
import { stageAndFlip } from "../src/nats/Operator.js"
import { deploymentRoles, serverConfig } from "../src/nats/Permissions.js"
import { Prometheus } from "../src/Prometheus.js"
import type { ExecReport } from "../src/Event.js"
import type { Pool } from "../src/Pool.js"
import { Providers } from "../src/Provider.js"
import { formatLeakReport, Recycler } from "../src/Recycler.js"
import { ReadinessChecks, StatusSampling, StrategiesSource, Status } from "../src/Status.js"
import type { PaperVenueConfig } from "../src/execution/Paper.js"
import { liveSettings } from "../src/execution/live/LiveExecution.js"
import { Risk, type RiskSettings } from "../src/execution/Risk.js"
import { idOfFile, loadStrategy } from "../src/strategy/Loader.js"
import { StrategyRegistry } from "../src/strategy/Registry.js"
import type { StrategySpec } from "../src/strategy/Runner.js"
import { gatewayScheduler } from "../src/internal/scheduler.js"
import { layerRecordingWithMerged } from "../src/record/Merged.js"
import { layerRawFrames, RawFrameFigures, type RawFrameOptions } from "../src/record/RawFrames.js"
import type { RecorderOptions, RecordingFigures } from "../src/record/Recorder.js"
import { layerDebug } from "./Debug.js"
import { layerMemory, type MemoryOptions } from "./Memory.js"
import { layerFeedHeartbeats, layerNatsFeed, layerNatsStrategy, type NatsOptions } from "./Nats.js"

/** The package's root: where the packaged examples are. */
export const PACKAGE_ROOT = dirname(dirname(fileURLToPath(import.meta.url)))

// ---------------------------------------------------------------------------
// Options from the configuration
// ---------------------------------------------------------------------------

/** Merged events are recorded: `record.merged` with a recording directory. */
const recordsMerged = (config: GatewayConfig): boolean => config.record.dir !== undefined && config.record.merged

/** The Dispatcher's settings from the configuration (both buses). */
const dispatcherOptions = (config: GatewayConfig): Partial<DispatcherSettings> => ({ ...config.dispatcher })

/** What the configuration asks of the in-memory application layer. */
export const memoryOptions = (config: GatewayConfig, live = false): MemoryOptions => ({
  symbols: [...new Set(config.venues.flatMap((v) => v.symbols))],
  providers: config.venues.map((v) => v.name ?? v._tag),
  pool: { capacity: config.pool.capacity, prewarm: config.pool.prewarm, debug: config.debug },
  dispatcher: dispatcherOptions(config),
  paperStateFile: config.paper.stateFile,
  paperRetainClosed: config.paper.retainClosed,
  paperVenues: paperVenues(config),
  risk: riskSettings(config),
  live: liveSettings(config, live),
  recordMerged: recordsMerged(config)
})

/**
 * The risk limits a configuration sets: its `risk` defaults, and the two
 * examples' own (by their ids). A strategy file's own limits go by the id of
 * the strategy it exports, known once it is loaded: `applyStrategyRisk`.
 */
export const riskSettings = (config: GatewayConfig): RiskSettings => {
  const { bbo, orders } = config.strategies
  return {
    defaults: config.risk,
    byConsumer: {
      ...(bbo.risk === undefined ? {} : { [bboFollower.id]: bbo.risk }),
      ...(orders.risk === undefined ? {} : { [paperTrader.id]: orders.risk })
    }
  }
}

/**
 * Sets the limits of each strategy file that has its own (`strategies.modules[].risk`),
 * under the id its strategy has. A file that does not load is skipped here
 * (the runner reports it, and it runs nothing).
 */
export const applyStrategyRisk = (config: GatewayConfig, base = process.cwd()) =>
  Effect.gen(function*() {
    const risk = yield* Risk
    yield* Effect.forEach(config.strategies.modules, (m) =>
      m.risk === undefined ? Effect.void : loadStrategy(m.module, base).pipe(
        Effect.map((s) => risk.setLimits(s.id === "" ? idOfFile(m.module) : s.id, m.risk!)),
        Effect.ignore
      ), { discard: true })
  })

/** Every configured venue's paper account and market: the symbols it quotes, and its `paper.venues` entry. */
export const paperVenues = (config: GatewayConfig): Record<string, PaperVenueConfig> =>
  Object.fromEntries(config.venues.map((v) => {
    const name = v.name ?? v._tag
    return [name, { symbols: v.symbols, ...config.paper.venues[name] }]
  }))

/** The NATS settings of a `bus: nats` configuration. */
export const natsOptions = (config: GatewayConfig): NatsOptions => ({
  pool: { capacity: config.pool.capacity, prewarm: config.pool.prewarm, debug: config.debug },
  dispatcher: dispatcherOptions(config),
  ...(config.bus._tag === "nats"
    ? {
      nats: {
        servers: [config.bus.url],
        name: `meltica-${config.bus.role}`,
        auth: config.bus.auth,
        ...(config.bus.codec === undefined ? {} : { codec: config.bus.codec }),
        // the feed creates and updates the streams; a strategy process waits for them
        manageStreams: config.bus.role === "feed"
      }
    }
    : {})
})

/**
 * The strategies the configuration runs: the examples its switches enable
 * (with their options), then its strategy files.
 */
export const configuredStrategies = (config: GatewayConfig): ReadonlyArray<StrategySpec> => {
  const { bbo, modules, orders } = config.strategies
  return [
    ...(bbo.enabled ? [{ strategy: bboFollower, options: { symbol: bbo.symbol } }] : []),
    ...(orders.enabled
      ? [{ strategy: paperTrader, options: { symbol: orders.symbol, quantity: orders.quantity, intervalMs: orders.intervalMs } }]
      : []),
    ...modules.map((m) => ({ module: m.module, options: m.options, ...(m.isolation === undefined ? {} : { isolation: m.isolation }) }))
  ]
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/** The strategy registry and what it tells readiness and the status snapshot. */
const strategyRegistry = StrategyRegistry.Default

const strategiesSource = Layer.effect(
  StrategiesSource,
  Effect.map(StrategyRegistry, (registry) => ({ list: registry.list }))
)

/** Readiness in a process with no checks of its own: the strategies that failed. */
const strategyReadiness = Layer.effect(
  ReadinessChecks,
  Effect.map(StrategyRegistry, (registry) => ({ reasons: registry.readinessReasons }))
)

/** Readiness of a process with checks of its own (the NATS layers'): theirs, then the strategies that failed. */
const strategyReadinessOver = Layer.effect(
  ReadinessChecks,
  Effect.gen(function*() {
    const inner = yield* ReadinessChecks
    const registry = yield* StrategyRegistry
    return { reasons: () => [...inner.reasons(), ...registry.readinessReasons()] }
  })
)

/**
 * An application layer with the providers, the strategy registry, the status
 * sampling and the exporter on top. `readiness` adds the strategies' reasons
 * (over the base's own checks when it has some).
 */
const withStatus = <ROut, E, R>(
  base: Layer.Layer<ROut, E, R>,
  readiness: Layer.Layer<ReadinessChecks, never, StrategyRegistry | NoInfer<ROut>>
) =>
  Prometheus.Default.pipe(
    Layer.provideMerge(Status.Default),
    Layer.provideMerge(Layer.merge(readiness, strategiesSource)),
    Layer.provideMerge(strategyRegistry),
    Layer.provideMerge(base)
  )

/** The configuration's recorder options, when `record.dir` is set (the `record:` section, `--record`). */
export const recorderOptions = (config: GatewayConfig): RecorderOptions | undefined =>
  config.record.dir === undefined ? undefined : {
    dir: config.record.dir,
    kinds: config.record.kinds,
    flushIntervalMs: config.record.flushIntervalMs,
    maxRowsPerFile: config.record.maxRowsPerFile,
    encodeOnWorker: config.record.encodeOnWorker
  }

/** The configured venues' providers, recording what they ingest when the configuration says so, and the recording figures. */
const recordingProviders = (config: GatewayConfig) => {
  // one layer, built once: its providers go on through the recorder, its figures to /metrics
  const raw = layerRawFrames(rawFrameOptions(config))(Providers.layerNode(config.venues))
  return Layer.merge(
    Layer.project(raw, RawFrameFigures, RawFrameFigures, (figures) => figures),
    layerRecordingWithMerged(recorderOptions(config), recordsMerged(config))(raw)
  )
}

/** The configuration's raw-frame options, when `record.dir` is set and `record.rawFrames` is on (`--record-raw`). */
export const rawFrameOptions = (config: GatewayConfig): RawFrameOptions | undefined =>
  config.record.dir === undefined || !config.record.rawFrames ? undefined : {
    dir: config.record.dir,
    flushIntervalMs: config.record.flushIntervalMs,
    maxRowsPerFile: config.record.maxRowsPerFile,
    encodeOnWorker: config.record.encodeOnWorker
  }

/** The in-memory application layer (`Memory.ts`, `Debug.ts`, ...) with providers and status on top. */
export const layerOn = <E>(
  config: GatewayConfig,
  base: Layer.Layer<Layer.Layer.Success<ReturnType<typeof layerMemory>>, E>,
  providers: Layer.Layer<Providers | RecordingFigures, never, Pool | Recycler | DeadLetter> = recordingProviders(config)
) => withStatus(providers.pipe(Layer.provideMerge(base)), strategyReadiness)

/** A backtest's application layer (`src/backtest/Backtest.ts`): in memory, the replay's providers, every execution report observed. */
export const layerBacktest = (
  config: GatewayConfig,
  providers: Layer.Layer<Providers | RecordingFigures, never, Pool | Recycler | DeadLetter>,
  onReport: (report: ExecReport) => void
) =>
  layerOn(config, layerMemory({ ...memoryOptions(config), onReport }), providers).pipe(
    // samples only on request: on the replay's virtual clock a periodic sample would run every recorded second
    Layer.provide(Layer.succeed(StatusSampling, { everyMs: undefined }))
  )

/** The NATS feed process (`role: feed`): providers, Orchestrator, Control Plane, paper venue, heartbeats. */
export const layerNatsFeedOn = (config: GatewayConfig) => {
  const { providers, symbols } = memoryOptions(config)
  return withStatus(
    layerFeedHeartbeats.pipe(
      Layer.provideMerge(recordingProviders(config)),
      Layer.provideMerge(layerNatsFeed({ ...natsOptions(config), symbols, providers, paperRetainClosed: config.paper.retainClosed, paperVenues: paperVenues(config), risk: riskSettings(config), recordMerged: recordsMerged(config) }))
    ),
    strategyReadinessOver
  )
}

/** A NATS strategy process (`role: strategy`): no providers of its own. */
export const layerNatsStrategyOn = (config: GatewayConfig) =>
  withStatus(Layer.succeed(Providers, []).pipe(Layer.provideMerge(layerNatsStrategy(natsOptions(config)))), strategyReadinessOver)

/** The operator endpoints on top of an application layer, when enabled. */
const withHttp = <A, E, R>(config: GatewayConfig, core: Layer.Layer<A | Prometheus | Status | DeadLetter, E, R>) =>
  config.http.enabled
    ? Http.layer({
      host: config.http.host,
      port: config.http.port,
      allowedHosts: config.http.allowedHosts,
      killSwitchTokenEnv: config.http.killSwitchTokenEnv
    }).pipe(
      Layer.provideMerge(core)
    )
    : core

/** The in-memory application layer of a configuration (`Debug.ts` in debug mode), without the endpoints. */
export const layerMemoryApplication = (config: GatewayConfig, live = false) =>
  layerOn(config, config.debug ? layerDebug(memoryOptions(config, live)) : layerMemory(memoryOptions(config, live)))

/** The whole application layer a configuration describes, with the operator endpoints when enabled. */
export const layerApplication = (config: GatewayConfig) => {
  if (config.bus._tag === "memory") return applicationMemory(config)
  if (config.bus.role === "feed") return applicationNatsFeed(config)
  return applicationNatsStrategy(config)
}

/** The whole in-process gateway (`bus: memory`); `live`: the `--live` flag (see `execution/live/LiveExecution.ts`). */
export const applicationMemory = (config: GatewayConfig, live = false) => withHttp(config, layerMemoryApplication(config, live))
/** The whole NATS feed process (`role: feed`). */
export const applicationNatsFeed = (config: GatewayConfig) => withHttp(config, layerNatsFeedOn(config))
/** The whole NATS strategy process (`role: strategy`). */
export const applicationNatsStrategy = (config: GatewayConfig) => withHttp(config, layerNatsStrategyOn(config))

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

export interface GatewayRun {
  readonly config: GatewayConfig
  /** Strategies run besides the configured ones (values, or files). */
  readonly strategies?: ReadonlyArray<StrategySpec>
  /** The directory the configuration's strategy files are relative to (default: the working directory). */
  readonly base?: string
  /** `--live`: venues whose config says `mode: live` trade live (else on paper). */
  readonly live?: boolean
}

/** An operator configuration runs no gateway: it is for `meltica route`. */
const refuseOperator = (config: GatewayConfig, source: string): Effect.Effect<void, InvalidConfig> =>
  config.bus._tag === "nats" && config.bus.role === "operator"
    ? Effect.fail(
      new InvalidConfig({
        source,
        issues: [ConfigIssue.make({
          path: "bus.role",
          message: "an operator configuration runs no gateway: use it with `meltica route` (or choose feed or strategy)"
        })]
      })
    )
    : Effect.void

/**
 * Runs what the configuration describes until interrupted: the application
 * layer, and on it the gateway (`bus: memory` or the NATS feed) or the
 * strategy process. Closing it logs the leak report and the fibers left.
 */
export const runGateway = (run: GatewayRun) =>
  Effect.gen(function*() {
    const { config } = run
    yield* refuseOperator(config, run.base ?? "configuration")
    const strategies = [...configuredStrategies(config), ...(run.strategies ?? [])]
    const options = { strategies, ...(run.base === undefined ? {} : { base: run.base }) }
    const risk = applyStrategyRisk(config, run.base)
    if (config.bus._tag === "memory") {
      return yield* runOn(config, applicationMemory(config, run.live === true), Effect.zipRight(risk, Gateway.run(config, options)))
    }
    if (config.bus.role === "feed") {
      if (run.live === true && Object.values(config.live.venues).some((v) => v.mode === "live")) {
        yield* Effect.logWarning("live trading runs in the in-memory gateway (bus: memory) only: this NATS feed trades on paper")
      }
      return yield* runOn(
        config,
        applicationNatsFeed(config),
        Effect.zipRight(
          strategies.length === 0 ? Effect.void : Effect.logInfo("strategies run in the strategy processes, not in the feed")
            .pipe(Effect.annotateLogs({ strategies: strategies.length })),
          // the strategies' limits are checked here, in front of the venue
          Effect.zipRight(risk, Gateway.run(config, { ...options, strategies: [] }))
        )
      )
    }
    if (strategies.length === 0) {
      // the configuration's strategies and the command line's together: either may be empty
      return yield* new InvalidConfig({
        source: run.base ?? "configuration",
        issues: [ConfigIssue.make({
          path: "bus.role",
          message: "a strategy process runs strategies: enable one in the configuration (strategies) or give --strategy"
        })]
      })
    }
    return yield* runOn(config, applicationNatsStrategy(config), Gateway.runStrategies(config, options))
  }).pipe(Effect.withScheduler(gatewayScheduler)) // src/internal/scheduler.ts: setImmediate, not a 1 ms timer, past Effect's bound

/**
 * Builds the application layer in its own scope, runs the program on it until
 * interrupted, then closes the scope and logs the leak report and the fibers
 * left.
 */
const runOn = <ROut, E, E2>(
  config: GatewayConfig,
  layer: Layer.Layer<ROut | Recycler, E>,
  program: Effect.Effect<never, E2, ROut | Recycler | Scope.Scope>
) =>
  Effect.gen(function*() {
    const supervisor = yield* Supervisor.track
    yield* Effect.logInfo("starting gateway").pipe(Effect.annotateLogs({ config: Config.summary(config) }))
    const scope = yield* Scope.make()
    let recycler: Recycler | undefined
    // Built and run in an interruptible region, so that every fiber the
    // layers fork can be interrupted when the scope closes.
    yield* Effect.gen(function*() {
      const context = yield* Layer.buildWithScope(layer, scope).pipe(Effect.supervised(supervisor))
      recycler = Context.get(context, Recycler)
      return yield* program.pipe(
        Effect.scoped,
        Effect.provide(context),
        Effect.supervised(supervisor)
      )
    }).pipe(
      Effect.onExit((exit) =>
        Effect.gen(function*() {
          yield* Effect.logInfo("shutting down").pipe(
            Effect.annotateLogs({ reason: Exit.isInterrupted(exit) ? "signal" : "failure" })
          )
          yield* Scope.close(scope, exit)
          const alive = (yield* supervisor.value).filter((f) => f.unsafePoll() === null)
          if (recycler !== undefined) {
            const report = recycler.leakReport()
            yield* Effect.logInfo(formatLeakReport(report)).pipe(
              Effect.annotateLogs({ outstanding: report.total, fibers_left: alive.length })
            )
          }
          yield* Effect.logInfo(`fibers left: ${alive.length}`)
        })
      )
    )
  })

/** Stages and flips the configured routing table as the operator (`bus: nats`, `role: operator`); the new version. */
export const routeAsOperator = (config: GatewayConfig, source: string) =>
  Effect.gen(function*() {
    if (config.bus._tag !== "nats" || config.bus.role !== "operator") {
      return yield* new InvalidConfig({
        source,
        issues: [ConfigIssue.make({ path: "bus", message: "route needs bus: { type: nats, role: operator, url, auth }" })]
      })
    }
    const nats = NatsConfig.layer({ servers: [config.bus.url], name: "meltica-operator", auth: config.bus.auth, manageStreams: false })
    return yield* stageAndFlip(Gateway.routesOf(config)).pipe(
      Effect.provide(CommandPublisher.Default.pipe(Layer.provideMerge(NatsConnection.Default), Layer.provide(nats)))
    )
  })

/** The ids of the strategies a configuration (and the extra ones) runs: a file's is its default export's (or its name). */
export const strategyIds = (config: GatewayConfig, extra: ReadonlyArray<StrategySpec> = [], base = process.cwd()) =>
  Effect.forEach([...configuredStrategies(config), ...extra], (spec) =>
    "strategy" in spec ? Effect.succeed(spec.strategy.id) : Effect.map(loadStrategy(spec.module, base), (s) => s.id))

/** A nats-server configuration with a user per role (feed, each strategy, operator) and its permissions. */
export const natsServerConfig = (
  config: GatewayConfig,
  extra: ReadonlyArray<StrategySpec>,
  server: { readonly port: number; readonly storeDir: string }
) => Effect.map(strategyIds(config, extra), (ids) => serverConfig(deploymentRoles(ids), server))

