/**
 * Loading the gateway configuration: a YAML or JSON file (YAML is a superset of
 * JSON; one parser reads both), then environment overrides, then CLI flags,
 * validated by `schema/Config.ts`.
 *
 * A configuration that cannot start the gateway fails with one
 * `InvalidConfig` listing every problem by path and reason, so that nothing
 * starts half-configured.
 *
 * Environment overrides (read through Effect's `Config`, so a test can supply
 * its own `ConfigProvider`):
 *
 * | variable | sets |
 * |---|---|
 * | `RECYCLER_DEBUG_MODE` | `debug` (true / false / 1 / 0) |
 * | `MELTICA_HTTP_HOST` | `http.host` |
 * | `MELTICA_HTTP_PORT` | `http.port` |
 * | `MELTICA_BUS` | `bus` kind (`memory` / `nats`) |
 * | `MELTICA_NATS_URL` | `bus.url` |
 * | `MELTICA_NATS_ROLE` | `bus.role` (`feed` / `strategy`) |
 * | `MELTICA_STATUS_INTERVAL_MS` | `statusIntervalMs` |
 */
import { FileSystem } from "@effect/platform"
import { Config, Effect, Either, Option, ParseResult, Schema } from "effect"
import * as YAML from "yaml"
import { crossCheck, GatewayConfig, type NatsAuthSection } from "../schema/Config.js"
import { ConfigIssue, InvalidConfig } from "../schema/Errors.js"

export interface LoadOptions {
  /** A YAML or JSON file; without it, the embedded default. */
  readonly file?: string | undefined
  /** `--debug`: pool debug mode, whatever the file and environment say. */
  readonly debug?: boolean | undefined
}

type Raw = Record<string, unknown>

/** A configuration file larger than this is refused before it is read. */
export const MAX_CONFIG_BYTES = 1_048_576
/** YAML aliases one document may expand (an alias bomb expands a few lines into billions of nodes). */
export const MAX_YAML_ALIASES = 100

import { redactUrls } from "./internal/redact.js"

export { redactUrls }

const isRecord = (u: unknown): u is Raw => typeof u === "object" && u !== null && !Array.isArray(u)

/** `venues[1].symbols[0]` from a parse issue path. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`
    else {
      const name = String(key) === "_tag" ? "type" : String(key)
      out += out === "" ? name : `.${name}`
    }
  }
  return out === "" ? "(root)" : out
}

/** Files say `type: simulated` (venues) and `type: nats` (bus); the schemas' tag is `_tag`. */
const untype = (v: unknown): unknown => {
  if (!isRecord(v) || "_tag" in v || !("type" in v)) return v
  const { type, ...rest } = v
  return { _tag: type, ...rest }
}

const normalise = (raw: Raw): void => {
  if (Array.isArray(raw.venues)) raw.venues = raw.venues.map(untype)
  if ("bus" in raw) raw.bus = untype(raw.bus)
  // `strategies: [{ module, options }]` lists strategy files only: the examples' switches off
  if (Array.isArray(raw.strategies)) {
    raw.strategies = { bbo: { enabled: false }, orders: { enabled: false }, modules: raw.strategies }
  }
}

const decode = Schema.decodeUnknownEither(GatewayConfig, { errors: "all", onExcessProperty: "error" })

/** Every problem of a raw configuration, by path; the decoded configuration when there is none. */
export const validate = (
  raw: unknown,
  source: string,
  origins: ReadonlyMap<string, string> = new Map()
): Either.Either<GatewayConfig, InvalidConfig> => {
  const invalid = (issues: ReadonlyArray<{ path: string; message: string }>) =>
    Either.left(
      new InvalidConfig({
        source,
        issues: issues.map((i) => {
          const origin = origins.get(i.path)
          return ConfigIssue.make({
            path: origin === undefined ? i.path : `${i.path} (from ${origin})`,
            message: redactUrls(i.message)
          })
        })
      })
    )
  if (!isRecord(raw)) {
    const got = raw === null ? "null" : Array.isArray(raw) ? "a list" : typeof raw
    return invalid([{ path: "(root)", message: `expected a mapping of settings (got ${got})` }])
  }
  normalise(raw)
  const decoded = decode(raw)
  if (Either.isLeft(decoded)) {
    // An optional field with a default is `X | undefined` to the decoder: the
    // `undefined` member's complaint restates the real one and is left out.
    const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
      .filter((i) => !i.message.startsWith("Expected undefined, actual"))
      .map((i) => ({ path: formatPath(i.path), message: i.message }))
    return invalid(dedupe(issues))
  }
  const cross = crossCheck(decoded.right)
  return cross.length > 0 ? invalid(cross) : Either.right(decoded.right)
}

const dedupe = <A extends { path: string; message: string }>(issues: ReadonlyArray<A>): ReadonlyArray<A> => {
  const seen = new Set<string>()
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Parses YAML or JSON text; a syntax error is reported with its line and column. */
export const parseText = (text: string, source: string): Either.Either<unknown, InvalidConfig> => {
  const refused = (message: string) =>
    Either.left(new InvalidConfig({ source, issues: [ConfigIssue.make({ path: "(file)", message })] }))
  if (text.length > MAX_CONFIG_BYTES) {
    return refused(`the configuration is ${text.length} characters, above the limit of ${MAX_CONFIG_BYTES}`)
  }
  let doc: YAML.Document.Parsed
  try {
    doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  } catch (e) {
    // deep nesting can exhaust the parser's stack
    return refused(`cannot parse: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`)
  }
  if (doc.errors.length > 0) {
    return Either.left(
      new InvalidConfig({
        source,
        issues: doc.errors.map((e) => {
          const at = e.linePos?.[0]
          return ConfigIssue.make({
            path: at === undefined ? "(file)" : `(line ${at.line}, column ${at.col})`,
            message: e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")
          })
        })
      })
    )
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown
  } catch (e) {
    const message = e instanceof Error ? e.message.split("\n")[0]! : String(e)
    return refused(
      /alias/i.test(message)
        ? `too many YAML alias expansions (at most ${MAX_YAML_ALIASES}; an alias bomb?): ${message}`
        : `cannot read the document: ${message}`
    )
  }
  return Either.right(value === null || value === undefined ? {} : value)
}

interface Override {
  readonly variable: string
  readonly path: ReadonlyArray<string>
  readonly parse: (s: string) => Either.Either<unknown, string>
}

const bool = (s: string): Either.Either<unknown, string> => {
  const v = s.trim().toLowerCase()
  if (v === "true" || v === "1" || v === "yes") return Either.right(true)
  if (v === "false" || v === "0" || v === "no") return Either.right(false)
  return Either.left(`expected true or false (got ${JSON.stringify(s)})`)
}

/** Digits only: " 8080 " or "8080abc" is a mistake to report, not a number to guess at. */
const int = (s: string): Either.Either<unknown, string> =>
  /^-?\d{1,15}$/.test(s) ? Either.right(Number(s)) : Either.left(`expected an integer, digits only (got ${JSON.stringify(s)})`)

const str = (s: string): Either.Either<unknown, string> => Either.right(s)

const overrides: ReadonlyArray<Override> = [
  { variable: "RECYCLER_DEBUG_MODE", path: ["debug"], parse: bool },
  { variable: "MELTICA_HTTP_HOST", path: ["http", "host"], parse: str },
  { variable: "MELTICA_HTTP_PORT", path: ["http", "port"], parse: int },
  { variable: "MELTICA_BUS", path: ["bus", "_tag"], parse: str },
  { variable: "MELTICA_NATS_URL", path: ["bus", "url"], parse: str },
  { variable: "MELTICA_NATS_ROLE", path: ["bus", "role"], parse: str },
  { variable: "MELTICA_STATUS_INTERVAL_MS", path: ["statusIntervalMs"], parse: int }
]

const setPath = (raw: Raw, path: ReadonlyArray<string>, value: unknown): void => {
  let node: Raw = raw
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (isRecord(next)) node = next
    else node = node[key] = {}
  }
  node[path[path.length - 1]!] = value
}

/** The environment's overrides applied to `raw`; a value that cannot be read is a problem of its own. */
const applyEnvironment = (raw: Raw) =>
  Effect.gen(function*() {
    const origins = new Map<string, string>()
    const problems: Array<ConfigIssue> = []
    for (const o of overrides) {
      const value = yield* Config.option(Config.string(o.variable)).pipe(Effect.orElseSucceed(() => Option.none<string>()))
      if (Option.isNone(value)) continue
      const parsed = o.parse(value.value)
      const path = formatPath(o.path)
      if (Either.isLeft(parsed)) {
        problems.push(ConfigIssue.make({ path: `${path} (from ${o.variable})`, message: parsed.left }))
        continue
      }
      if (o.path[0] === "bus" && o.path[1] === "_tag" && isRecord(raw.bus) && raw.bus._tag !== parsed.right) {
        raw.bus = {}
      }
      setPath(raw, o.path, parsed.right)
      origins.set(path, o.variable)
    }
    return { origins, problems }
  })

/**
 * The configuration the gateway runs: the file (or the embedded default),
 * the environment, then the flags. Fails with every problem at once.
 */
export const load = Effect.fn("Config.load")(function*(options: LoadOptions = {}) {
  const source = options.file ?? "embedded default"
  let raw: unknown = {}
  if (options.file !== undefined) {
    const fs = yield* FileSystem.FileSystem
    const file = options.file
    const cannotRead = (e: { readonly message: string }) =>
      new InvalidConfig({
        source,
        issues: [ConfigIssue.make({ path: "(file)", message: `cannot read ${file}: ${e.message}` })]
      })
    const info = yield* fs.stat(file).pipe(Effect.mapError(cannotRead))
    if (info.size > BigInt(MAX_CONFIG_BYTES)) {
      return yield* new InvalidConfig({
        source,
        issues: [ConfigIssue.make({ path: "(file)", message: `${file} is ${info.size} bytes, above the limit of ${MAX_CONFIG_BYTES}` })]
      })
    }
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) =>
        new InvalidConfig({
          source,
          issues: [ConfigIssue.make({ path: "(file)", message: `cannot read ${file}: ${e.message}` })]
        })
      )
    )
    raw = yield* parseText(text, source)
  }
  if (!isRecord(raw)) return yield* validate(raw, source)
  const { origins, problems } = yield* applyEnvironment(raw)
  if (options.debug === true) raw.debug = true
  const result = validate(raw, source, origins)
  if (problems.length > 0) {
    const rest = Either.isLeft(result) ? result.left.issues : []
    return yield* new InvalidConfig({ source, issues: [...problems, ...rest] })
  }
  return yield* result
})

/** How the NATS connection authenticates, by mechanism and reference (never a secret). */
const authSummary = (auth: NatsAuthSection | undefined): string => {
  if (auth === undefined) return "no authentication"
  const ref = (r: { readonly file: string } | { readonly env: string }) => ("file" in r ? `file ${r.file}` : `env ${r.env}`)
  const how = auth.password !== undefined
    ? `user ${auth.user} with password from ${ref(auth.password)}`
    : auth.token !== undefined
    ? `token from ${ref(auth.token)}`
    : auth.nkeySeed !== undefined
    ? `nkey seed from ${ref(auth.nkeySeed)}`
    : auth.credsFile !== undefined
    ? `creds file ${auth.credsFile}`
    : "no credentials"
  return auth.tls === undefined ? how : `${how}, tls${auth.tls.certFile === undefined ? "" : " with client certificate"}`
}

/** The configuration as a one-screen summary (for `check-config` and the start-up log). */
export const summary = (config: GatewayConfig): string => {
  const venues = config.venues.map((v) => `${v.name ?? v._tag} (${v._tag}: ${v.symbols.join(", ")})`).join("; ")
  const merges = config.merges.map((m) => `${m.symbol} ${m.kind} over ${m.providers.join("+")} / ${m.windowMs} ms`).join("; ")
  return [
    `venues: ${venues}`,
    `merges: ${merges === "" ? "none" : merges}`,
    `bus: ${config.bus._tag === "nats" ? `nats ${redactUrls(config.bus.url)}, ${config.bus.role} process, ${authSummary(config.bus.auth)}` : "memory"}`,
    `http: ${config.http.enabled ? `${config.http.host}:${config.http.port}` : "disabled"}`,
    `pool: Event ${config.pool.capacity.Event}, MergedEvent ${config.pool.capacity.MergedEvent}, ` +
    `ExecReport ${config.pool.capacity.ExecReport}; debug ${config.debug}`,
    `mailbox: market lane ${config.mailbox.marketCapacity}, critical high water ${config.mailbox.criticalHighWater}`,
    `dispatcher: lateness ${config.dispatcher.latenessMs} ms, reorder buffer ${config.dispatcher.reorderBuffer}`
  ].join("\n")
}
