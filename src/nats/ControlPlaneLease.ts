/**
 * Exactly one feed process takes commands.
 *
 * The Control Plane consumes the one durable JetStream consumer `control-plane`;
 * two feeds pulling from it would each get part of the commands (a strategy's
 * orders split between two paper venues, its reports from either or lost
 * between them). So a feed that runs the Control Plane first takes a lease: the
 * key `control-plane` in the key-value bucket `meltica_control`, whose entries
 * live `staleAfterMs` (the bucket's time to live, set by whoever creates it).
 *
 * - Taking it: `create` succeeds only when the key is absent (never taken,
 *   released, or expired). A feed that finds it held retries until the lease
 *   could have expired (`staleAfterMs` and two heartbeat intervals), so a feed
 *   restarted after a crash takes over once its predecessor's lease runs out;
 *   past that the holder is alive and this feed fails with `ControlPlaneTaken`
 *   (naming the holder) before it takes any command.
 * - Holding it: renewed every heartbeat interval by a compare-and-set on its
 *   revision. A renewal that finds another holder means this feed stalled
 *   longer than the lease (another feed took over): it is logged as an error
 *   and the feed reports not ready (`lost`), for an operator to stop it.
 * - Releasing it: deleted (only if still ours) when the scope closes, so a
 *   feed stopped cleanly is replaced at once.
 */
import { Kvm } from "@nats-io/kv"
import { Effect, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import { NatsConnection } from "./Connection.js"
import { ControlPlaneTaken, NatsSetupFailed, reasonOf } from "./Errors.js"
import { HeartbeatConfig } from "./Heartbeat.js"
import { CONTROL_BUCKET } from "./Permissions.js"
import { untilReady } from "./Streams.js"

const KEY = "control-plane"

/** Something else went wrong taking the lease (the server away): retried. */
class NotTaken extends Error {}

export interface ControlPlaneLeaseState {
  /** Who holds it (this process: its connection name and a random part). */
  readonly holder: string
  /** Another feed took the lease over while this one held it. */
  readonly lost: () => boolean
}

/**
 * Takes the Control Plane's lease for the life of the scope, or fails with
 * `ControlPlaneTaken` once another live feed has held it for longer than a
 * lease lives.
 */
export const acquire = Effect.gen(function*() {
  const { nc, settings } = yield* NatsConnection
  const { intervalMs, staleAfterMs } = yield* HeartbeatConfig
  const kv = yield* untilReady(
    `key-value bucket ${CONTROL_BUCKET}`,
    Effect.tryPromise({
      try: () => new Kvm(nc).create(CONTROL_BUCKET, { history: 1, ttl: staleAfterMs }),
      catch: (e) => new NatsSetupFailed({ stream: `KV_${CONTROL_BUCKET}`, reason: reasonOf(e) })
    })
  ).pipe(Effect.orDie) // retried until the server answers: it never fails
  const holder = `${settings.name ?? "feed"}-${randomBytes(4).toString("hex")}`
  const waitMs = staleAfterMs + 2 * intervalMs
  let seen = "?"

  const take = Effect.tryPromise({
    try: async () => {
      try {
        return await kv.create(KEY, holder)
      } catch (u) {
        const current = await kv.get(KEY).catch(() => null)
        if (current !== null && current.operation === "PUT") seen = current.string()
        throw new NotTaken(reasonOf(u))
      }
    },
    catch: (u) => u
  })
  let revision = yield* take.pipe(
    Effect.retry(Schedule.spaced(`${Math.max(50, Math.min(intervalMs, 500))} millis`).pipe(Schedule.upTo(waitMs))),
    Effect.catchAll(() => Effect.fail(new ControlPlaneTaken({ bucket: CONTROL_BUCKET, holder: seen, waitedMs: waitMs })))
  )
  let lost = false

  const renew = Effect.tryPromise(() => kv.update(KEY, holder, revision)).pipe(
    Effect.tap((r) => Effect.sync(() => (revision = r))),
    Effect.catchAll((e) =>
      Effect.promise(() => kv.get(KEY).catch(() => null)).pipe(
        Effect.flatMap((current) => {
          if (current !== null && current.operation === "PUT" && current.string() !== holder) {
            if (lost) return Effect.void
            lost = true
            return Effect.logError("control plane lease taken over by another feed").pipe(
              Effect.annotateLogs({ holder, taken_by: current.string() })
            )
          }
          if (current === null || current.operation !== "PUT") {
            // expired (this feed stalled) and nobody else took it: take it again
            return Effect.tryPromise(() => kv.create(KEY, holder)).pipe(
              Effect.tap((r) => Effect.sync(() => (revision = r))),
              Effect.ignore
            )
          }
          return Effect.logWarning("control plane lease: renewal failed, retrying", e)
        })
      )
    )
  )
  yield* renew.pipe(Effect.repeat(Schedule.spaced(`${intervalMs} millis`)), Effect.forkScoped)
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => kv.delete(KEY, { previousSeq: revision }).catch(() => undefined))
  )
  return { holder, lost: () => lost } satisfies ControlPlaneLeaseState
})

/** The lease as a service: the feed's Control Plane is built on top of it, so it takes no command without it. */
export class ControlPlaneLease extends Effect.Service<ControlPlaneLease>()("meltica/nats/ControlPlaneLease", {
  scoped: acquire
}) {}
