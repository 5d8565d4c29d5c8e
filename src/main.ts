/**
 * The command line: parses the arguments and runs what they ask with the
 * application it is given (`bin/meltica.ts` gives it the composition root,
 * `layers/Application.ts`; `npm start` runs that file).
 *
 *   meltica [run] [--config <file>] [--debug] [--record <dir> [--record-raw]]
 *               [--strategy <file> [--strategy-options <json>] [--strategy-isolation process|worker]]...
 *   meltica check-config [--config <file>]
 *   meltica nats-config [--config <file>] [--port <n>] [--store-dir <dir>]
 *   meltica route --config <operator file>
 *   meltica kill-switch --engage|--release [--target <consumer id>|*] [--url <gateway>] [--config <file>]
 *   meltica import --capture <NDJSON file | raw frames> --out <dir> [--name <provider>] [--provider <raw provider>]
 *
 * Without `--config`, the embedded default runs: simulated venues, in-memory
 * buses, the paper venue, production-mode pools, the two example strategies.
 * `--strategy` adds a strategy from a file (its default export), with the
 * options of the `--strategy-options` at the same position, on a worker thread
 * of its own when the `--strategy-isolation` at that position says `worker`
 * (in the in-memory gateway and in a NATS strategy process). SIGINT / SIGTERM
 * stop it gracefully; it prints the leak report and the number of fibers
 * left, and exits 0.
 *
 * As a user meets it: help and errors are plain text when the output is not a
 * terminal; a mistyped option gets one line naming the nearest valid one; a
 * configuration error lists every problem; a port in use names the setting.
 *
 * `kill-switch` posts to a running gateway's `POST /kill-switch` (see
 * `Http.ts`): the URL is `--url`, else the configuration's `http.host` and
 * `http.port`; the bearer token is read from the environment variable the
 * configuration names (`http.killSwitchTokenEnv`, `MELTICA_KILL_SWITCH_TOKEN`
 * by default), never from the command line (which other users can read).
 */
import { stripVTControlCharacters } from "node:util"
import { AutoCorrect, CliConfig, Command, Options, ValidationError } from "@effect/cli"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Config as EffectConfig, Console, Effect, Either, Layer, Logger, Option, Redacted, Schema } from "effect"
import { GatewayConfig, RecordSection } from "../schema/Config.js"
import { ConfigIssue, InvalidConfig } from "../schema/Errors.js"
import * as Config from "./Config.js"
import { liveConfigIssues, liveSummary } from "./execution/live/LiveExecution.js"
import type { StrategySpec } from "./strategy/Runner.js"
import { type BacktestLayer, readVenueConfig, runBacktest, summaryLines } from "./backtest/Backtest.js"
import { importAll } from "./replay/Import.js"

/** What the command line runs: the composition root's entry points. */
export interface Application {
  /** Runs what the configuration describes (with the extra strategies) until interrupted. */
  readonly run: (run: {
    readonly config: GatewayConfig
    readonly strategies: ReadonlyArray<StrategySpec>
    readonly base?: string
    /** `--live`: venues whose config says `mode: live` trade live. */
    readonly live?: boolean
  }) => Effect.Effect<void, unknown>
  /** Stages and flips the configured routing table as the operator; the new routing version. */
  readonly route: (config: GatewayConfig, source: string) => Effect.Effect<number, unknown>
  /** A nats-server configuration with per-role users and permissions for the configuration's deployment. */
  readonly natsServerConfig: (
    config: GatewayConfig,
    extra: ReadonlyArray<StrategySpec>,
    server: { readonly port: number; readonly storeDir: string }
  ) => Effect.Effect<string, unknown>
  /** The application layer a backtest runs on (`meltica backtest`). */
  readonly backtestLayer?: BacktestLayer
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const configOption = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withDescription("a YAML or JSON configuration file (default: the embedded default: simulated venues, in-memory buses)"),
  Options.optional
)
const debugOption = Options.boolean("debug").pipe(
  Options.withDescription("pool debug mode: a use after recycle fails at once, and the leak report shows acquire stacks (slower)")
)
const strategyOption = Options.text("strategy").pipe(
  Options.withDescription(
    "a strategy file whose default export is the strategy (repeatable); runs next to the configured strategies"
  ),
  Options.repeated
)
const strategyOptionsOption = Options.text("strategy-options").pipe(
  Options.withDescription(
    "the options of the --strategy at the same position, as JSON, e.g. '{\"symbol\":\"ETH-USDT\"}' (repeatable)"
  ),
  Options.repeated
)
const strategyIsolationOption = Options.text("strategy-isolation").pipe(
  Options.withDescription(
    "where the --strategy at the same position runs: process (the default) or worker (a worker thread of its own) (repeatable)"
  ),
  Options.repeated
)
const recordOption = Options.text("record").pipe(
  Options.withDescription("record the canonical market data the providers ingest into this directory (Parquet; overrides record.dir)"),
  Options.optional
)
const recordRawOption = Options.boolean("record-raw").pipe(
  Options.withDescription(
    "also record the venues' raw frames (received and sent, REST snapshots, with their times) under the recording's raw/, for meltica import (record.rawFrames)"
  )
)
/** The configuration with `--record-raw`: raw frames recorded, which needs a recording directory. */
const withRawFrames = (config: GatewayConfig, raw: boolean): Effect.Effect<GatewayConfig, InvalidConfig> =>
  !raw ? Effect.succeed(config) : config.record.dir === undefined
    ? Effect.fail(new InvalidConfig({
      source: "command line",
      issues: [ConfigIssue.make({ path: "--record-raw", message: "needs a recording directory: --record DIR or record.dir" })]
    }))
    : Effect.succeed(new GatewayConfig({ ...config, record: new RecordSection({ ...config.record, rawFrames: true }) }))
/** The configuration with `--record DIR` as its recording directory. */
const withRecordDir = (config: GatewayConfig, dir: Option.Option<string>): GatewayConfig =>
  Option.isNone(dir) ? config : new GatewayConfig({ ...config, record: new RecordSection({ ...config.record, dir: dir.value }) })
const liveOption = Options.boolean("live").pipe(
  Options.withDescription(
    "trade live on the venues whose configuration says mode: live (without it every order goes to the paper venue)"
  )
)
const portOption = Options.integer("port").pipe(
  Options.withDefault(4222),
  Options.withDescription("the port nats-server listens on")
)
const engageOption = Options.boolean("engage").pipe(
  Options.withDescription("engage the kill switch: cancel every open order in scope and refuse new ones")
)
const releaseOption = Options.boolean("release").pipe(Options.withDescription("release the kill switch of the scope"))
const targetOption = Options.text("target").pipe(
  Options.withDescription("the scope: a strategy's consumer id, or * for the whole gateway (the default)"),
  Options.optional
)
const urlOption = Options.text("url").pipe(
  Options.withDescription("the gateway's operator endpoints, e.g. http://127.0.0.1:9464 (default: from the configuration's http section)"),
  Options.optional
)
const storeDirOption = Options.text("store-dir").pipe(
  Options.withDefault("./nats-data"),
  Options.withDescription("JetStream's store directory")
)

/** Every flag of every command, for the nearest-flag hint (aliases included). */
const FLAGS: ReadonlyArray<string> = [
  "--config",
  "-c",
  "--debug",
  "--strategy",
  "--strategy-options",
  "--strategy-isolation",
  "--live",
  "--port",
  "--store-dir",
  "--engage",
  "--release",
  "--target",
  "--url",
  "--help",
  "-h",
  "--version",
  "--wizard",
  "--completions",
  "--log-level",
  "--capture",
  "--out",
  "--name",
  "--provider",
  "--record",
  "--record-raw",
  "--data",
  "--from",
  "--to",
  "--speed",
  "--venue-config"
]

const source = (file: Option.Option<string>) => Option.getOrElse(file, () => "embedded default")

const loadConfig = (file: Option.Option<string>, debug: boolean) => Config.load({ file: Option.getOrUndefined(file), debug })

const ISOLATIONS: ReadonlyArray<string> = ["process", "worker"]

/**
 * `--strategy` files with the `--strategy-options` and `--strategy-isolation`
 * at the same positions: the options decoded from JSON, the isolation
 * `process` or `worker`.
 */
export const strategySpecs = (
  modules: ReadonlyArray<string>,
  options: ReadonlyArray<string>,
  isolations: ReadonlyArray<string> = []
): Effect.Effect<ReadonlyArray<StrategySpec>, InvalidConfig> => {
  const issues: Array<ConfigIssue> = []
  for (const [flag, n] of [["--strategy-options", options.length], ["--strategy-isolation", isolations.length]] as const) {
    if (n > modules.length) {
      issues.push(ConfigIssue.make({
        path: flag,
        message: `${n} ${flag} for ${modules.length} --strategy: each goes with the --strategy at its position`
      }))
    }
  }
  const specs = modules.map((module, i): StrategySpec => {
    const isolation = isolations[i]
    let placed: StrategySpec = { module }
    if (isolation !== undefined) {
      if (isolation === "process" || isolation === "worker") placed = { module, isolation }
      else {
        issues.push(ConfigIssue.make({
          path: `--strategy-isolation (${module})`,
          message: `isolation must be ${ISOLATIONS.join(" or ")} (got ${JSON.stringify(isolation.slice(0, 64))})`
        }))
      }
    }
    const text = options[i]
    if (text === undefined) return placed
    try {
      return { ...placed, options: JSON.parse(text) as unknown }
    } catch (e) {
      issues.push(ConfigIssue.make({
        path: `--strategy-options (${module})`,
        message: `not JSON: ${e instanceof Error ? e.message : String(e)}`
      }))
      return placed
    }
  })
  return issues.length > 0 ? Effect.fail(new InvalidConfig({ source: "command line", issues })) : Effect.succeed(specs)
}

// ---------------------------------------------------------------------------
// The kill switch of a running gateway
// ---------------------------------------------------------------------------

/** The gateway did not apply the kill switch: where it was asked, the HTTP status when one came, and why. */
export class KillSwitchRequestFailed extends Schema.TaggedError<KillSwitchRequestFailed>()("KillSwitchRequestFailed", {
  url: Schema.String,
  status: Schema.optional(Schema.Number),
  reason: Schema.String
}) {
  override get message(): string {
    return this.status === undefined
      ? `kill switch not applied: cannot reach ${this.url}: ${this.reason}`
      : `kill switch not applied: ${this.url} answered ${this.status}: ${this.reason}`
  }
}

/** What the gateway answers: the kill switch's state after the change (see `execution/Risk.ts`). */
export const KillSwitchAnswer = Schema.Struct({
  engaged: Schema.Boolean,
  target: Schema.String,
  canceled: Schema.Number,
  state: Schema.Struct({ global: Schema.Boolean, consumers: Schema.Array(Schema.String) })
})
export type KillSwitchAnswer = typeof KillSwitchAnswer.Type
const decodeKillSwitchAnswer = Schema.decodeUnknownEither(Schema.parseJson(KillSwitchAnswer))

/** Posts the kill switch to a gateway's operator endpoints (`url`, e.g. http://127.0.0.1:9464). */
export const requestKillSwitch = (request: {
  readonly url: string
  readonly token: Redacted.Redacted<string>
  readonly engage: boolean
  readonly target?: string | undefined
}): Effect.Effect<KillSwitchAnswer, KillSwitchRequestFailed, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const url = `${request.url.replace(/\/+$/, "")}/kill-switch`
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(
      HttpClientRequest.post(url).pipe(
        HttpClientRequest.bearerToken(request.token),
        HttpClientRequest.bodyUnsafeJson({ engage: request.engage, ...(request.target === undefined ? {} : { target: request.target }) })
      )
    ).pipe(Effect.mapError((e) => new KillSwitchRequestFailed({ url, reason: e.message })))
    const body = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
    if (response.status !== 200) {
      return yield* new KillSwitchRequestFailed({ url, status: response.status, reason: body.trim().slice(0, 512) })
    }
    const answer = decodeKillSwitchAnswer(body)
    return Either.isRight(answer)
      ? answer.right
      : yield* new KillSwitchRequestFailed({ url, status: response.status, reason: "not a kill switch answer" })
  }).pipe(Effect.scoped)

/** The operator endpoints' URL a configuration's `http` section gives. */
export const operatorUrl = (http: GatewayConfig["http"]): string =>
  `http://${http.host.includes(":") ? `[${http.host}]` : http.host}:${http.port}`

/** One line for a kill switch answer. */
export const describeKillSwitch = (a: KillSwitchAnswer): string => {
  const scope = a.target === "*" ? "the whole gateway" : a.target
  const now = a.state.global
    ? "engaged for the whole gateway"
    : a.state.consumers.length > 0
    ? `engaged for ${a.state.consumers.join(", ")}`
    : "off"
  return a.engaged
    ? `kill switch engaged for ${scope}: ${a.canceled} open order(s) canceled, new orders refused (now ${now})`
    : `kill switch released for ${scope} (now ${now})`
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

const makeCli = (app: Application) => {
  const runWith = (
    { config, debug, live, record, recordRaw, strategy, strategyIsolation, strategyOptions }: {
      readonly config: Option.Option<string>
      readonly debug: boolean
      readonly live: boolean
      readonly record: Option.Option<string>
      readonly recordRaw: boolean
      readonly strategy: ReadonlyArray<string>
      readonly strategyOptions: ReadonlyArray<string>
      readonly strategyIsolation: ReadonlyArray<string>
    }
  ) =>
    Effect.gen(function*() {
      const specs = yield* strategySpecs(strategy, strategyOptions, strategyIsolation)
      const c = yield* withRawFrames(withRecordDir(yield* loadConfig(config, debug), record), recordRaw)
      // the configuration's strategy files are relative to it; the command line's to the working directory
      const base = Option.match(config, { onNone: () => process.cwd(), onSome: (f) => dirnameOf(f) })
      const fromCli = specs.map((s) => ("module" in s ? { ...s, module: absolute(s.module) } : s))
      return yield* app.run({ config: c, strategies: fromCli, base, live })
    })

  const runOptions = {
    config: configOption,
    debug: debugOption,
    live: liveOption,
    record: recordOption,
    recordRaw: recordRawOption,
    strategy: strategyOption,
    strategyOptions: strategyOptionsOption,
    strategyIsolation: strategyIsolationOption
  }

  const runCommand = Command.make("run", runOptions, runWith).pipe(
    Command.withDescription("run the gateway (or the NATS process the configuration names) until SIGINT or SIGTERM")
  )

  const checkConfigCommand = Command.make(
    "check-config",
    { config: configOption, debug: debugOption },
    ({ config, debug }) =>
      loadConfig(config, debug).pipe(
        Effect.flatMap((c) => {
          // live venues' credentials: every missing or unreadable reference, by name, never a value
          const live = liveConfigIssues(c)
          return live.length > 0
            ? Effect.fail(new InvalidConfig({ source: source(config), issues: live.map((i) => ConfigIssue.make(i)) }))
            : Console.log(`configuration OK (${source(config)})\n${Config.summary(c)}${liveSummary(c)}`)
        })
      )
  ).pipe(Command.withDescription("validate a configuration, list every problem, and exit"))

  const natsConfigCommand = Command.make(
    "nats-config",
    { config: configOption, port: portOption, storeDir: storeDirOption, strategy: strategyOption },
    ({ config, port, storeDir, strategy }) =>
      Effect.gen(function*() {
        const c = yield* loadConfig(config, false)
        yield* Console.log(yield* app.natsServerConfig(c, strategy.map((m) => ({ module: absolute(m) })), { port, storeDir }))
      })
  ).pipe(Command.withDescription(
    "print a nats-server configuration with per-role users and permissions (feed, strategies, operator) for this configuration"
  ))

  const routeCommand = Command.make(
    "route",
    { config: configOption },
    ({ config }) =>
      Effect.gen(function*() {
        const c = yield* loadConfig(config, false)
        const version = yield* app.route(c, source(config))
        yield* Console.log(`routing table flipped in: routing version ${version}`)
      })
  ).pipe(Command.withDescription(
    "stage and flip the configured routing table as the operator identity (bus.role: operator), and print the new version"
  ))

  const killSwitchCommand = Command.make(
    "kill-switch",
    { config: configOption, engage: engageOption, release: releaseOption, target: targetOption, url: urlOption },
    ({ config, engage, release, target, url }) =>
      Effect.gen(function*() {
        if (engage === release) return yield* fail("meltica kill-switch: say --engage or --release (one of them)", 2)
        const c = yield* loadConfig(config, false)
        const tokenEnv = c.http.killSwitchTokenEnv
        const token = yield* EffectConfig.option(EffectConfig.redacted(tokenEnv)).pipe(
          Effect.map(Option.filter((t) => Redacted.value(t).length > 0)),
          Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
        )
        if (Option.isNone(token)) {
          return yield* fail(`meltica kill-switch: set the environment variable ${tokenEnv} to the gateway's kill switch token`, 1)
        }
        const answer = yield* requestKillSwitch({
          url: Option.getOrElse(url, () => operatorUrl(c.http)),
          token: token.value,
          engage,
          target: Option.getOrUndefined(target)
        }).pipe(Effect.provide(FetchHttpClient.layer))
        yield* Console.log(describeKillSwitch(answer))
      })
  ).pipe(Command.withDescription(
    "engage or release the kill switch of a running gateway (POST /kill-switch, the token from the environment)"
  ))

  const importCommand = Command.make(
    "import",
    {
      capture: Options.text("capture").pipe(Options.withDescription(
        "a raw capture of venue frames: NDJSON (recv frames and http REST bodies with receive times), or the raw frames of a recording made with --record-raw (its directory, its raw/, or one .frames.pq file)"
      )),
      out: Options.text("out").pipe(Options.withDescription("the recording's directory (created; files are added to it)")),
      name: Options.text("name").pipe(Options.withDescription("the provider name in the recording (default: the recorded provider's, else binance or okx)"), Options.optional),
      provider: Options.text("provider").pipe(Options.withDescription("of raw frames holding several providers, import only this one (default: all)"), Options.optional)
    },
    ({ capture, name, out, provider }) =>
      Effect.gen(function*() {
        const results = yield* importAll({ capture, out, name: Option.getOrUndefined(name), provider: Option.getOrUndefined(provider) })
        for (const s of results[0]?.skipped ?? []) yield* Console.error(s.message)
        for (const r of results) {
          const refused = Object.entries(r.refused).map(([k, n]) => `${k} ${n}`).join(", ")
          yield* Console.log(
            `imported ${r.frames} frames and ${r.snapshots} snapshots of ${r.name} (${r.venue}: ${Object.keys(r.symbols).join(", ")}) into ${out}: ` +
              `${r.recorder.rowsWritten} events in ${r.recorder.files} files; gaps ${r.provider.gaps}, checksum mismatches ${r.provider.checksumMismatches}, ` +
              `resyncs ${r.provider.resyncs}, refused frames ${r.provider.malformed}, refused rows ${r.unreadable}${refused === "" ? "" : ` (${refused})`}`
          )
        }
      })
  ).pipe(Command.withDescription("turn a raw capture of venue frames into a recording, through the real venue adapter"))

  const backtestCommand = Command.make(
    "backtest",
    {
      data: Options.text("data").pipe(Options.withDescription("the recording's directory")),
      strategy: strategyOption,
      strategyOptions: strategyOptionsOption,
      from: Options.text("from").pipe(Options.withDescription("ISO 8601 time to start from (inclusive)"), Options.optional),
      to: Options.text("to").pipe(Options.withDescription("ISO 8601 time to stop at (exclusive)"), Options.optional),
      speed: Options.float("speed").pipe(Options.withDescription("replay speed (1 = recorded time; default: as fast as possible)"), Options.optional),
      venueConfig: Options.text("venue-config").pipe(Options.withDescription("a gateway configuration: paper accounts, fees, latency, risk"), Options.optional),
      out: Options.text("out").pipe(Options.withDefault("./backtest-report"), Options.withDescription("where report.json and report.html go")),
      provider: Options.text("provider").pipe(
        Options.repeated,
        Options.withDescription("replay only this provider's streams, repeated for several (default: every venue's but the merged streams; --provider merged replays those)")
      )
    },
    ({ data, from, out, provider, speed, strategy, strategyOptions, to, venueConfig }) =>
      Effect.gen(function*() {
        if (app.backtestLayer === undefined) return yield* fail("meltica backtest: not available in this build", 1)
        if (strategy.length === 0) return yield* fail("meltica backtest: name a strategy file with --strategy", 2)
        const specs = (yield* strategySpecs(strategy, strategyOptions)).map((s) => ("module" in s ? { ...s, module: absolute(s.module) } : s))
        const time = (o: Option.Option<string>, flag: string) =>
          Option.match(o, {
            onNone: () => Effect.succeed(undefined),
            onSome: (t) => {
              const ms = Date.parse(t)
              return Number.isNaN(ms)
                ? Effect.fail(new InvalidConfig({ source: "command line", issues: [ConfigIssue.make({ path: flag, message: `${t} is not an ISO 8601 time` })] }))
                : Effect.succeed(ms * 1000)
            }
          })
        const raw = Option.isSome(venueConfig) ? yield* readVenueConfig(venueConfig.value) : undefined
        const report = yield* runBacktest({
          data,
          strategies: specs,
          base: process.cwd(),
          from: yield* time(from, "--from"),
          to: yield* time(to, "--to"),
          speed: Option.getOrUndefined(speed),
          venueConfig: raw,
          out,
          providers: provider.length === 0 ? undefined : provider
        }, app.backtestLayer)
        for (const line of summaryLines(report)) yield* Console.log(line)
      })
  ).pipe(Command.withDescription("run a strategy on a recording against the paper venue; writes report.json and report.html"))

  const root = Command.make("meltica", runOptions, runWith).pipe(
    Command.withDescription("Meltica gateway: real-time event distribution for trading systems (runs the gateway by default)"),
    Command.withSubcommands([runCommand, checkConfigCommand, natsConfigCommand, routeCommand, killSwitchCommand, importCommand, backtestCommand])
  )
  return Command.run(root, { name: "meltica", version: "0.1.0" })
}

const dirnameOf = (file: string) => {
  const i = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"))
  return absolute(i < 0 ? "." : file.slice(0, i) || "/")
}
const absolute = (path: string) => (path.startsWith("/") ? path : `${process.cwd()}/${path}`)

// ---------------------------------------------------------------------------
// Plain text, mistyped flags, one-line errors
// ---------------------------------------------------------------------------

/** The nearest known flag to a mistyped one, when it is near enough to be what was meant. */
export const nearestFlag = (flag: string): string | undefined => {
  const name = flag.split("=", 1)[0]!
  let best: { readonly flag: string; readonly distance: number } | undefined
  for (const known of FLAGS) {
    const distance = AutoCorrect.levensteinDistance(name, known, CliConfig.defaultConfig)
    if (best === undefined || distance < best.distance) best = { flag: known, distance }
  }
  // near enough: two edits in a long flag, a third of a longer one; a one-letter flag is too short to guess from
  const nearEnough = (d: number) => d <= Math.floor(name.length / 3) || (d <= 2 && name.length > 4)
  return best !== undefined && nearEnough(best.distance) ? best.flag : undefined
}

/** The flags followed by a value (the value may itself start with "-", e.g. a negative number). */
const VALUE_FLAGS: ReadonlyArray<string> = [
  "--config", "-c", "--strategy", "--strategy-options", "--strategy-isolation", "--port", "--store-dir", "--target", "--url", "--log-level", "--completions",
  "--record", "--capture", "--out", "--name", "--provider"
]

/** The first argument that looks like a flag and is none of ours, if any. */
export const unknownFlag = (args: ReadonlyArray<string>): string | undefined => {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") return undefined
    if (!arg.startsWith("-") || arg === "-") continue
    const name = arg.split("=", 1)[0]!
    if (!FLAGS.includes(name)) return name
    if (VALUE_FLAGS.includes(name) && !arg.includes("=")) i++
  }
  return undefined
}

/** The console with ANSI styling removed, for output that is not a terminal. */
const plainConsole = (c: Console.Console): Console.Console => {
  const plain = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? stripVTControlCharacters(a) : a))
  return {
    ...c,
    log: (...args) => c.log(...plain(args)),
    error: (...args) => c.error(...plain(args)),
    info: (...args) => c.info(...plain(args)),
    warn: (...args) => c.warn(...plain(args)),
    unsafe: {
      ...c.unsafe,
      log: (...args) => c.unsafe.log(...plain(args)),
      error: (...args) => c.unsafe.error(...plain(args)),
      info: (...args) => c.unsafe.info(...plain(args)),
      warn: (...args) => c.unsafe.warn(...plain(args))
    }
  }
}

const fail = (message: string, code: number) =>
  Console.error(message).pipe(Effect.zipRight(Effect.sync(() => {
    process.exitCode = code
  })))

/** Errors a user can act on: one message, no stack. */
const userError = (e: unknown): string | undefined => {
  if (typeof e !== "object" || e === null) return undefined
  const tag = (e as { readonly _tag?: unknown })._tag
  return tag === "InvalidConfig" || tag === "HttpListenFailed" || tag === "StrategyModuleFailed" ||
      tag === "KillSwitchRequestFailed" || tag === "ImportFailed"
    ? (e as { readonly message: string }).message
    : undefined
}

/** Runs the command line with the application; `argv` as `process.argv`. */
export const main = (app: Application, argv: ReadonlyArray<string> = process.argv) => {
  /** JSON lines when the output is not a terminal, pretty lines when it is. */
  const logger = process.stdout.isTTY ? Logger.pretty : Logger.json
  const args = argv.slice(2)
  const mistyped = unknownFlag(args)
  const program = mistyped !== undefined
    ? Effect.suspend(() => {
      const near = nearestFlag(mistyped)
      return fail(
        `meltica: unknown option ${mistyped}${near === undefined ? "" : ` (did you mean ${near}?)`}; see meltica --help`,
        2
      )
    })
    : makeCli(app)(argv).pipe(
      Effect.catchAll((e) => {
        // the command line's own errors were printed with their help already
        if (ValidationError.isValidationError(e)) return Effect.sync(() => (process.exitCode = 2))
        const message = userError(e)
        return message === undefined ? Effect.fail(e) : fail(message, 1)
      })
    )
  const plain = process.stdout.isTTY && process.stderr.isTTY
    ? program
    : Console.consoleWith((c) => Effect.withConsole(program, plainConsole(c)))
  plain.pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, logger)),
    NodeRuntime.runMain({ disablePrettyLogger: true })
  )
}
