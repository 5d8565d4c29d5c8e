/**
 * Entry point: `npm start` (`tsx src/main.ts`).
 *
 *   meltica [run] [--config <file>] [--debug]   run the gateway (the default command)
 *   meltica check-config [--config <file>]       validate a configuration and print its summary
 *
 * Without `--config`, the embedded default runs: simulated venues, in-memory
 * buses, the paper venue, production-mode pools, the two example strategies.
 * With `bus: nats` the process is a feed or a strategy process (`role`), and
 * the two talk over the NATS server at `url`.
 * SIGINT / SIGTERM stop it gracefully; it prints the leak report and the
 * number of fibers left, and exits 0.
 */
import { Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Exit, Layer, Logger, Option, Scope, Supervisor } from "effect"
import { makeBboFollower } from "../examples/bboFollower.js"
import { makePaperTrader } from "../examples/paperTrader.js"
import { layerDebug } from "../layers/Debug.js"
import { layerMemory } from "../layers/Memory.js"
import type { GatewayConfig } from "../schema/Config.js"
import * as Config from "./Config.js"
import * as Gateway from "./Gateway.js"
import * as Http from "./Http.js"
import type { Prometheus } from "./Prometheus.js"
import type { Status } from "./Status.js"
import { ConfigIssue, InvalidConfig } from "../schema/Errors.js"
import { NatsConfig, NatsConnection } from "./nats/Connection.js"
import { CommandPublisher } from "./nats/Commands.js"
import { stageAndFlip } from "./nats/Operator.js"
import { deploymentRoles, serverConfig } from "./nats/Permissions.js"
import { formatLeakReport, Recycler } from "./Recycler.js"

/** The example strategies, as the configuration enables them. */
const strategiesOf = (config: GatewayConfig): ReadonlyArray<Gateway.Strategy<unknown>> => {
  const out: Array<Gateway.Strategy<unknown>> = []
  const { bbo, orders } = config.strategies
  if (bbo.enabled) {
    const merge = config.merges.find((m) => m.symbol === bbo.symbol && m.kind === "ticker")!
    out.push(
      makeBboFollower("bbo-follower", {
        symbol: bbo.symbol,
        providers: merge.providers as unknown as readonly [string, string, ...Array<string>],
        windowMs: merge.windowMs,
        maxFragments: merge.maxFragments
      }).strategy
    )
  }
  if (orders.enabled) {
    out.push(
      makePaperTrader("paper-trader", { symbol: orders.symbol, quantity: orders.quantity, intervalMs: orders.intervalMs })
        .strategy
    )
  }
  return out
}

/** The operator endpoints on top of an application layer, when enabled. */
const withHttp = <ROut, E>(config: GatewayConfig, core: Layer.Layer<ROut | Prometheus | Status, E>) =>
  config.http.enabled
    ? Http.layer({ host: config.http.host, port: config.http.port, allowedHosts: config.http.allowedHosts }).pipe(
      Layer.provideMerge(core)
    )
    : core

/**
 * What the configuration runs: the application layer (with providers,
 * metrics and the operator endpoints) and the program on it.
 * - `bus: memory`: everything in this process, Memory (or Debug);
 * - `bus: nats`, `role: feed`: providers, Orchestrator, Control Plane and
 *   paper venue, publishing on NATS; no strategies here;
 * - `bus: nats`, `role: strategy`: the configured strategies, fed over NATS.
 */
const runGateway = (config: GatewayConfig) => {
  if (config.bus._tag === "memory") {
    const options = Gateway.memoryOptions(config)
    const base = config.debug ? layerDebug(options) : layerMemory(options)
    return runOn(
      config,
      withHttp(config, Gateway.layerOn(config, base)),
      Gateway.run(config, { strategies: strategiesOf(config) })
    )
  }
  if (config.bus.role === "feed") {
    const elsewhere = strategiesOf(config).map((s) => s.id)
    return runOn(
      config,
      withHttp(config, Gateway.layerNatsFeedOn(config)),
      Effect.zipRight(
        elsewhere.length === 0 ? Effect.void : Effect.logInfo("strategies run in the strategy processes, not in the feed")
          .pipe(Effect.annotateLogs({ strategies: elsewhere.join(",") })),
        Gateway.run(config, { strategies: [] })
      )
    )
  }
  return runOn(
    config,
    withHttp(config, Gateway.layerNatsStrategyOn(config)),
    Gateway.runStrategies(config, { strategies: strategiesOf(config) })
  )
}

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

const configOption = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withDescription("a YAML or JSON configuration file (default: the embedded default)"),
  Options.optional
)
const debugOption = Options.boolean("debug").pipe(
  Options.withDescription("pool debug mode: poisoning views and a leak report with acquire stacks")
)

const loadConfig = (file: Option.Option<string>, debug: boolean) => Config.load({ file: Option.getOrUndefined(file), debug })

const runCommand = Command.make("run", { config: configOption, debug: debugOption }, ({ config, debug }) =>
  Effect.flatMap(loadConfig(config, debug), (c) => Effect.zipRight(refuseOperator(c, config), runGateway(c)))).pipe(
    Command.withDescription("run the gateway until SIGINT or SIGTERM")
  )

const checkConfigCommand = Command.make(
  "check-config",
  { config: configOption, debug: debugOption },
  ({ config, debug }) =>
    loadConfig(config, debug).pipe(
      Effect.flatMap((c) => Console.log(`configuration OK (${Option.getOrElse(config, () => "embedded default")})\n${Config.summary(c)}`))
    )
).pipe(Command.withDescription("validate a configuration, list every problem, and exit"))

const natsConfigCommand = Command.make(
  "nats-config",
  {
    config: configOption,
    port: Options.integer("port").pipe(Options.withDefault(4222), Options.withDescription("the port nats-server listens on")),
    storeDir: Options.text("store-dir").pipe(
      Options.withDefault("./nats-data"),
      Options.withDescription("JetStream's store directory")
    )
  },
  ({ config, port, storeDir }) =>
    loadConfig(config, false).pipe(
      Effect.flatMap((c) =>
        Console.log(serverConfig(deploymentRoles(strategiesOf(c).map((s) => s.id)), { port, storeDir }))
      )
    )
).pipe(Command.withDescription(
  "print a nats-server configuration with per-role users and permissions (feed, strategies, operator) for this configuration"
))

/** An operator configuration (`bus.role: operator`) runs no gateway: it is for `meltica route`. */
const refuseOperator = (config: GatewayConfig, file: Option.Option<string>): Effect.Effect<void, InvalidConfig> =>
  config.bus._tag === "nats" && config.bus.role === "operator"
    ? Effect.fail(
      new InvalidConfig({
        source: Option.getOrElse(file, () => "embedded default"),
        issues: [ConfigIssue.make({
          path: "bus.role",
          message: "an operator configuration runs no gateway: use it with `meltica route` (or choose feed or strategy)"
        })]
      })
    )
    : Effect.void

/** Stages and flips the configured routing table as the operator (`bus: nats`, `role: operator`). */
const routeCommand = Command.make(
  "route",
  { config: configOption },
  ({ config }) =>
    Effect.gen(function*() {
      const c = yield* loadConfig(config, false)
      if (c.bus._tag !== "nats" || c.bus.role !== "operator") {
        return yield* new InvalidConfig({
          source: Option.getOrElse(config, () => "embedded default"),
          issues: [ConfigIssue.make({ path: "bus", message: "route needs bus: { type: nats, role: operator, url, auth }" })]
        })
      }
      const nats = NatsConfig.layer({ servers: [c.bus.url], name: "meltica-operator", auth: c.bus.auth, manageStreams: false })
      const version = yield* stageAndFlip(Gateway.routesOf(c)).pipe(
        Effect.provide(CommandPublisher.Default.pipe(Layer.provideMerge(NatsConnection.Default), Layer.provide(nats)))
      )
      yield* Console.log(`routing table flipped in: routing version ${version}`)
    })
).pipe(Command.withDescription(
  "stage and flip the configured routing table as the operator identity (bus.role: operator), and print the new version"
))

const root = Command.make("meltica", { config: configOption, debug: debugOption }, ({ config, debug }) =>
  Effect.flatMap(loadConfig(config, debug), (c) => Effect.zipRight(refuseOperator(c, config), runGateway(c)))).pipe(
    Command.withDescription("Meltica gateway: real-time event distribution for trading systems"),
    Command.withSubcommands([runCommand, checkConfigCommand, natsConfigCommand, routeCommand])
  )

const cli = Command.run(root, { name: "meltica", version: "0.1.0" })

/** JSON lines when the output is not a terminal, pretty lines when it is. */
const logger = process.stdout.isTTY ? Logger.pretty : Logger.json

cli(process.argv).pipe(
  Effect.catchTag("InvalidConfig", (e) =>
    Console.error(e.message).pipe(Effect.zipRight(Effect.sync(() => {
      process.exitCode = 1
    })))),
  // one line naming the setting to change, not a stack
  Effect.catchTag("HttpListenFailed", (e) =>
    Console.error(e.message).pipe(Effect.zipRight(Effect.sync(() => {
      process.exitCode = 1
    })))),
  Effect.provide(Layer.mergeAll(NodeContext.layer, logger)),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
