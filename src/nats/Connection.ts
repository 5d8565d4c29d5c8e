/**
 * The NATS connection: one per process, held for the life of its scope.
 *
 * `connect` is the acquisition and `drain` (then `close`) the release, so the
 * connection's lifetime is the layer's. Reconnects are the client's: it keeps
 * trying for ever, buffering what is published meanwhile; status changes are
 * logged and counted.
 *
 * Authentication uses the server's own mechanisms (`NatsAuth`): user and
 * password, token, NKey seed, `.creds` file (JWT accounts), TLS with a CA and
 * a client certificate. Secrets are given by reference (a file path or an
 * environment variable name) and read only when connecting: they never reach
 * a URL, a log line, a metric or an error (an error names the file or the
 * variable, never its content).
 */
import { readFileSync } from "node:fs"
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import {
  connect,
  credsAuthenticator,
  type NatsConnection as Client,
  type NodeConnectionOptions,
  nkeyAuthenticator,
  PermissionViolationError,
  type Status
} from "@nats-io/transport-node"
import { Config, Context, Effect, Either, Layer, Redacted } from "effect"
import { NatsConnectFailed, reasonOf } from "./Errors.js"
import { token } from "./Subjects.js"
import { redactUrls } from "../internal/redact.js"

/** A secret by reference: the file that holds it, or the environment variable that does. */
export type SecretRef = { readonly file: string } | { readonly env: string }

/** How this process proves who it is to the server. At most one of password, token, nkeySeed, credsFile. */
export interface NatsAuth {
  /** The user name (with `password`). */
  readonly user?: string | undefined
  readonly password?: SecretRef | undefined
  readonly token?: SecretRef | undefined
  /** An NKey user seed (`SU...`). */
  readonly nkeySeed?: SecretRef | undefined
  /** A `.creds` file (user JWT and NKey seed) for a JWT account. */
  readonly credsFile?: string | undefined
  readonly tls?: {
    readonly caFile?: string | undefined
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
  } | undefined
  /**
   * The prefix of this connection's reply subjects. Default: `_INBOX.<user>`
   * with a user, else `_INBOX`. The server configuration lets each user
   * subscribe only under its own prefix, so no one reads another's replies.
   */
  readonly inboxPrefix?: string | undefined
}

/** The inbox prefix a connection with `auth` uses. */
export const inboxPrefixOf = (auth: NatsAuth | undefined): string =>
  auth?.inboxPrefix ?? (auth?.user === undefined ? "_INBOX" : `_INBOX.${token(auth.user)}`)

export interface NatsSettings {
  /** Server URLs, e.g. "nats://127.0.0.1:4222". */
  readonly servers: ReadonlyArray<string>
  /** The connection's name as the server shows it. */
  readonly name: string
  readonly reconnectTimeWaitMs: number
  /** JetStream API requests and publish acknowledgements. */
  readonly requestTimeoutMs: number
  /** How long a delivered critical event or command may stay unacknowledged before it is redelivered. */
  readonly ackWaitMs: number
  /** Critical events or commands delivered and not yet acknowledged, per durable consumer. */
  readonly maxAckPending: number
  /** The server drops a message whose Nats-Msg-Id it has seen within this window. */
  readonly duplicateWindowMs: number
  /** How long JetStream keeps critical events and commands. */
  readonly maxAgeMs: number
  /** Market-data messages held between the client and the dispatcher; beyond it they are dropped and counted. */
  readonly marketBuffer: number
  /**
   * How events are written on the wire: `binary` (`src/codec/Binary.ts`, the
   * default) or `json` (the canonical JSON, one event per message, for humans
   * and debugging). A receiver reads both (a binary frame's first byte is
   * never a JSON text's), so processes can switch one at a time.
   */
  readonly codec: "binary" | "json"
  /**
   * Market data: events of one stream (one subject) batched in one message,
   * at most this many. A batch goes out when full, or when the current turn
   * of the event loop ends (`setImmediate`): the latency it adds is bounded
   * by the turn, never by a timer.
   */
  readonly marketBatchMax: number
  /**
   * Critical events published and not yet stored, across consumers: beyond
   * it a publish waits. Each consumer's events go out in order, one message
   * (a batch of its pending events) in flight per consumer.
   */
  readonly criticalWindow: number
  /** Critical events of one consumer batched in one JetStream message, at most. */
  readonly criticalBatchMax: number
  /** Critical-event ids remembered per consumer to drop redeliveries of what already ran. */
  readonly dedupMemory: number
  /** Credentials and TLS; none: an unauthenticated connection. */
  readonly auth?: NatsAuth | undefined
  /**
   * Whether this process creates and updates the JetStream streams. A strategy
   * process of a gateway does not (the feed does, and the generated permissions
   * let only the feed): it waits until the feed has created them.
   */
  readonly manageStreams?: boolean | undefined
}

const errnoOf = (e: unknown): string => (e as NodeJS.ErrnoException | undefined)?.code ?? "unreadable"

/** Reads a secret's value; the error names the reference, never the value. */
const readSecret = (what: string, ref: SecretRef): Effect.Effect<Redacted.Redacted<string>, string> =>
  "file" in ref
    ? Effect.try({
      try: () => Redacted.make(readFileSync(ref.file, "utf8").trim()),
      catch: (e) => `cannot read the ${what} file ${ref.file}: ${errnoOf(e)}`
    })
    : Config.redacted(ref.env).pipe(
      Effect.mapError(() => `the ${what} environment variable ${ref.env} is not set`)
    )

const readFile = (what: string, file: string): Effect.Effect<Uint8Array, string> =>
  Effect.try({
    try: () => new Uint8Array(readFileSync(file)),
    catch: (e) => `cannot read the ${what} file ${file}: ${errnoOf(e)}`
  })

/** A `.creds` file holds a user JWT and an NKey seed, each between its own markers: checked now, naming the file. */
const readCreds = (file: string): Effect.Effect<Uint8Array, string> =>
  Effect.flatMap(readFile("creds", file), (bytes) => {
    const text = new TextDecoder().decode(bytes)
    return /-+BEGIN NATS USER JWT-+\s*\S+\s*-+END NATS USER JWT-+/.test(text) &&
        /-+BEGIN USER NKEY SEED-+\s*\S+\s*-+END USER NKEY SEED-+/.test(text)
      ? Effect.succeed(bytes)
      : Effect.fail(`the creds file ${file} is not a NATS .creds file (a user JWT and an NKey seed, each between its markers)`)
  })

/** The client's connection options for `auth`: secrets read now, by reference. */
const authOptions = (auth: NatsAuth | undefined): Effect.Effect<Partial<NodeConnectionOptions>, string> =>
  Effect.gen(function*() {
    if (auth === undefined) return {}
    const out: { -readonly [K in keyof NodeConnectionOptions]?: NodeConnectionOptions[K] } = {
      inboxPrefix: inboxPrefixOf(auth)
    }
    if (auth.user !== undefined) out.user = auth.user
    if (auth.password !== undefined) out.pass = Redacted.value(yield* readSecret("password", auth.password))
    if (auth.token !== undefined) out.token = Redacted.value(yield* readSecret("token", auth.token))
    if (auth.nkeySeed !== undefined) {
      const seed = Redacted.value(yield* readSecret("nkey seed", auth.nkeySeed))
      out.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed))
    }
    if (auth.credsFile !== undefined) out.authenticator = credsAuthenticator(yield* readCreds(auth.credsFile))
    if (auth.tls !== undefined) {
      const tls: { caFile?: string; certFile?: string; keyFile?: string } = {}
      for (const key of ["caFile", "certFile", "keyFile"] as const) {
        const file = auth.tls[key]
        if (file === undefined) continue
        yield* readFile(`TLS ${key}`, file) // fails at once, naming the file
        tls[key] = file
      }
      out.tls = tls
    }
    return out
  })

const defaultNatsSettings: NatsSettings = {
  servers: ["nats://127.0.0.1:4222"],
  name: "meltica",
  reconnectTimeWaitMs: 250,
  requestTimeoutMs: 2_000,
  ackWaitMs: 30_000,
  maxAckPending: 1_024,
  duplicateWindowMs: 120_000,
  maxAgeMs: 24 * 3_600_000,
  marketBuffer: 65_536,
  codec: "binary",
  marketBatchMax: 256,
  criticalWindow: 4_096,
  criticalBatchMax: 256,
  dedupMemory: 100_000
}

export class NatsConfig extends Context.Tag("meltica/NatsConfig")<NatsConfig, NatsSettings>() {
  static readonly layer = (settings: Partial<NatsSettings> = {}): Layer.Layer<NatsConfig> =>
    Layer.succeed(NatsConfig, { ...defaultNatsSettings, ...settings })

  /** Defaults, with the servers from `NATS_URL` (comma-separated). */
  static readonly Default: Layer.Layer<NatsConfig> = Layer.effect(
    NatsConfig,
    Config.string("NATS_URL").pipe(
      Config.withDefault(defaultNatsSettings.servers.join(",")),
      Effect.orElseSucceed(() => defaultNatsSettings.servers.join(",")),
      Effect.map((url) => ({ ...defaultNatsSettings, servers: url.split(",").map((s) => s.trim()) }))
    )
  )
}

export interface ConnectionStats {
  /** False from a disconnect until the client has reconnected, and once the connection is closed. */
  readonly connected: boolean
  readonly disconnects: number
  readonly reconnects: number
  readonly errors: number
  /** Publications and subscriptions the server refused for this user's permissions. */
  readonly permissionDenied: number
}

export class NatsConnection extends Effect.Service<NatsConnection>()("meltica/NatsConnection", {
  scoped: Effect.gen(function*() {
    const settings = yield* NatsConfig
    const servers = [...settings.servers]
    const auth = yield* Effect.either(authOptions(settings.auth))
    if (Either.isLeft(auth)) return yield* new NatsConnectFailed({ servers: redactUrls(servers.join(",")), reason: auth.left })
    const nc: Client = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connect({
            ...auth.right,
            servers,
            name: settings.name,
            maxReconnectAttempts: -1,
            reconnectTimeWait: settings.reconnectTimeWaitMs,
            reconnectJitter: 50,
            timeout: settings.requestTimeoutMs
          }),
        catch: (e) => new NatsConnectFailed({ servers: redactUrls(servers.join(",")), reason: reasonOf(e) })
      }),
      (nc) =>
        Effect.tryPromise(() => nc.drain()).pipe(
          Effect.timeout("5 seconds"),
          Effect.orElse(() => Effect.promise(() => nc.close())),
          Effect.ignore
        )
    )
    const js: JetStreamClient = jetstream(nc, { timeout: settings.requestTimeoutMs })
    const jsm: JetStreamManager = yield* Effect.tryPromise({
      try: () => jetstreamManager(nc, { timeout: settings.requestTimeoutMs, checkAPI: false }),
      catch: (e) => new NatsConnectFailed({ servers: redactUrls(servers.join(",")), reason: reasonOf(e) })
    })

    let disconnects = 0
    let reconnects = 0
    let errors = 0
    let permissionDenied = 0
    let up = true
    const onStatus = (s: Status): Effect.Effect<void> => {
      switch (s.type) {
        case "disconnect":
          disconnects++
          up = false
          return Effect.logWarning("nats disconnected").pipe(Effect.annotateLogs({ server: s.server }))
        case "reconnect":
          reconnects++
          up = true
          return Effect.logInfo("nats reconnected").pipe(Effect.annotateLogs({ server: s.server }))
        case "error":
          errors++
          if (s.error instanceof PermissionViolationError) {
            permissionDenied++
            return Effect.logWarning("nats refused for this user's permissions").pipe(
              Effect.annotateLogs({ operation: s.error.operation, subject: s.error.subject })
            )
          }
          return Effect.logWarning("nats server error").pipe(Effect.annotateLogs({ error: reasonOf(s.error) }))
        default:
          return Effect.void
      }
    }
    // a plain loop over the iterator: interrupting it must not wait on the iterator's `return`
    const statuses = nc.status()[Symbol.asyncIterator]()
    yield* Effect.promise(() => statuses.next()).pipe(
      Effect.flatMap((r) => (r.done === true ? Effect.interrupt : onStatus(r.value))),
      Effect.forever,
      Effect.forkScoped
    )

    return {
      settings,
      nc,
      js,
      jsm,
      stats: (): ConnectionStats => ({
        connected: up && !nc.isClosed(),
        disconnects,
        reconnects,
        errors,
        permissionDenied
      })
    } as const
  })
}) {}
