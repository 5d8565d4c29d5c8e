/**
 * The JetStream streams and durable consumers the buses use.
 *
 * - `MELTICA_CRITICAL` holds `critical.>`: every consumer's execution reports,
 *   control acks and results. One durable consumer per gateway consumer
 *   (`critical-<id>`, filtered on `critical.<id>`) keeps its place.
 * - `MELTICA_COMMANDS` holds `control.>` (`control.commands.<consumerId>`,
 *   `control.operator.<operatorId>`); the feed process's durable
 *   consumer `control-plane` takes them in order.
 *
 * Both are file-backed, keep messages for `maxAgeMs`, and drop a message
 * whose `Nats-Msg-Id` they saw within `duplicateWindowMs`. Durable consumers
 * deliver everything not yet acknowledged, with explicit acks.
 */
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { Effect, Schedule } from "effect"
import type { NatsSettings } from "./Connection.js"
import { NatsConnection } from "./Connection.js"
import { NatsSetupFailed, reasonOf } from "./Errors.js"
import { COMMANDS_STREAM, CONTROL_SUBJECTS, CRITICAL_PREFIX, CRITICAL_STREAM } from "./Subjects.js"

const nanos = (ms: number): number => ms * 1_000_000

/** The server refused a request for the user's permissions (the client reports it as a timeout or a violation). */
const isPermissionDenied = (e: unknown): boolean =>
  e instanceof Error && /permission|timeout/i.test(`${e.name} ${e.message}`)

export interface StreamSpec {
  readonly name: string
  readonly subjects: ReadonlyArray<string>
}

export const criticalStream: StreamSpec = { name: CRITICAL_STREAM, subjects: [`${CRITICAL_PREFIX}.>`] }
export const commandsStream: StreamSpec = { name: COMMANDS_STREAM, subjects: [CONTROL_SUBJECTS] }

/** Retries a JetStream set-up step while the server is away, for ever, logging each failure. */
export const untilReady = <A, R>(what: string, effect: Effect.Effect<A, NatsSetupFailed, R>) =>
  effect.pipe(
    Effect.tapError((e) => Effect.logWarning(`${what}: retrying`, e)),
    Effect.retry(Schedule.exponential("50 millis", 2).pipe(Schedule.union(Schedule.spaced("1 second"))))
  )

/** True when the stream already has every setting of `config` (no update needed). */
const upToDate = (existing: object, config: Readonly<Record<string, unknown>>): boolean => {
  const have = existing as Readonly<Record<string, unknown>>
  return Object.entries(config).every(([k, v]) => JSON.stringify(have[k]) === JSON.stringify(v))
}

/** Creates the stream if it does not exist, else brings its limits up to date (only when they differ). */
export const ensureStream = Effect.fn("Nats.ensureStream")(function*(spec: StreamSpec) {
  const { jsm, settings } = yield* NatsConnection
  const config = {
    subjects: [...spec.subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(settings.maxAgeMs),
    duplicate_window: nanos(settings.duplicateWindowMs),
    num_replicas: 1
  }
  yield* Effect.tryPromise({
    try: async () => {
      const existing = await jsm.streams.info(spec.name).then((i) => i.config, () => undefined)
      if (existing === undefined && settings.manageStreams === false) {
        throw new Error("the stream does not exist yet: the feed process creates it")
      }
      if (existing === undefined) await jsm.streams.add({ name: spec.name, ...config })
      else if (settings.manageStreams === false) return
      else if (!upToDate(existing, config)) {
        // a user whose permissions do not cover stream management (a strategy, under
        // the generated server configuration) uses the stream as the feed set it up
        await jsm.streams.update(spec.name, config).catch((e) => isPermissionDenied(e) ? undefined : Promise.reject(e))
      }
    },
    catch: (e) => new NatsSetupFailed({ stream: spec.name, reason: reasonOf(e) })
  })
})

/** Creates the durable consumer if it does not exist; an existing one keeps its place. */
export const ensureDurable = (
  jsm: NatsConnection["jsm"],
  settings: NatsSettings,
  stream: string,
  durable: string,
  filterSubject: string
): Effect.Effect<void, NatsSetupFailed> =>
  Effect.tryPromise({
    try: async () => {
      const exists = await jsm.consumers.info(stream, durable).then(() => true, () => false)
      const config = {
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(settings.ackWaitMs),
        max_ack_pending: settings.maxAckPending,
        filter_subject: filterSubject
      }
      if (exists) await jsm.consumers.update(stream, durable, config)
      else await jsm.consumers.add(stream, { ...config, durable_name: durable, deliver_policy: DeliverPolicy.All })
    },
    catch: (e) => new NatsSetupFailed({ stream, consumer: durable, reason: reasonOf(e) })
  })
