/**
 * The NATS connection: one per process, held for the life of its scope.
 *
 * `connect` is the acquisition and `drain` (then `close`) the release, so the
 * connection's lifetime is the layer's. Reconnects are the client's: it keeps
 * trying for ever, buffering what is published meanwhile; status changes are
 * logged and counted.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection as Client, type Status } from "@nats-io/transport-node"
import { Config, Context, Effect, Layer } from "effect"
import { NatsConnectFailed, reasonOf } from "./Errors.js"

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
  /** Critical-event ids remembered per consumer to drop redeliveries of what already ran. */
  readonly dedupMemory: number
}

export const defaultNatsSettings: NatsSettings = {
  servers: ["nats://127.0.0.1:4222"],
  name: "meltica",
  reconnectTimeWaitMs: 250,
  requestTimeoutMs: 2_000,
  ackWaitMs: 30_000,
  maxAckPending: 1_024,
  duplicateWindowMs: 120_000,
  maxAgeMs: 24 * 3_600_000,
  marketBuffer: 65_536,
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
}

export class NatsConnection extends Effect.Service<NatsConnection>()("meltica/NatsConnection", {
  scoped: Effect.gen(function*() {
    const settings = yield* NatsConfig
    const servers = [...settings.servers]
    const nc: Client = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connect({
            servers,
            name: settings.name,
            maxReconnectAttempts: -1,
            reconnectTimeWait: settings.reconnectTimeWaitMs,
            reconnectJitter: 50,
            timeout: settings.requestTimeoutMs
          }),
        catch: (e) => new NatsConnectFailed({ servers: servers.join(","), reason: reasonOf(e) })
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
      catch: (e) => new NatsConnectFailed({ servers: servers.join(","), reason: reasonOf(e) })
    })

    let disconnects = 0
    let reconnects = 0
    let errors = 0
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
      stats: (): ConnectionStats => ({ connected: up && !nc.isClosed(), disconnects, reconnects, errors })
    } as const
  })
}) {}
