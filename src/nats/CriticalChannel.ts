/**
 * Critical events (ExecReport, ControlAck, ControlResult) over JetStream.
 *
 * Feed side, `CriticalPublisher`: each event goes to `critical.<consumerId>`
 * with a `Nats-Msg-Id` that names it: the digest of (consumer, client order id,
 * report sequence) for an execution report, of (consumer, command id) for an
 * ack or a result (`internal/ids.ts`: bounded, whatever the ids). A publish is
 * retried with the same id while the server is unreachable, so the server
 * keeps exactly one copy whatever the retries (within its dedup window), and
 * `publish` returns only once the event is stored: whoever waits on it (the
 * venue's outbox, the command consumer) has the event durable before it moves
 * on. A publish the server refuses (too large, a header over its limit: it
 * would be refused for ever) is not retried: it is counted as unpublishable,
 * logged, shown in `stats()` and readiness, and `publish` completes, so the
 * commands behind it go on.
 *
 * Strategy side, `CriticalSubscriber`: `attach(consumerId, mailbox)` runs the
 * consumer's durable JetStream consumer for the life of the scope. Each message
 * is decoded into an event from this process's pool and put in the consumer's
 * critical lane with an `_ack` hook; the consumer runtime calls the hook when
 * the lambda has run (succeeded, failed or died), so a message is acknowledged
 * only then. A crash or an interruption leaves it unacknowledged, and the
 * server redelivers it. Redeliveries of a message that already ran (its ack
 * lost in a server restart) or that is still queued are dropped by id here, so
 * within a process every critical event reaches the lambda exactly once.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Effect, Either, Schedule, type Scope } from "effect"
import type { MalformedFrame } from "../../schema/Errors.js"
import type { Mailbox } from "../DataBus.js"
import { DeadLetter } from "../DeadLetter.js"
import type { AnyEvent } from "../Event.js"
import { nowUs } from "../internal/histogram.js"
import { Pool } from "../Pool.js"
import { generationOf, Recycler } from "../Recycler.js"
import { NatsConnection } from "./Connection.js"
import { NatsPublishFailed, reasonOf } from "./Errors.js"
import { runDurable } from "./internal/durable.js"
import { digestId } from "./internal/ids.js"
import { decodeFrame, encodeEvent, MalformedFrames, toPooled } from "./internal/frames.js"
import { criticalStream, ensureStream, untilReady } from "./Streams.js"
import { CRITICAL_STREAM, criticalDurable, criticalSubject } from "./Subjects.js"

/** The consumer a critical event is for. */
const criticalOwner = (e: AnyEvent): string | undefined =>
  (e.payload as { readonly consumerId?: string } | undefined)?.consumerId

/** The `Nats-Msg-Id` of a critical event: the same event always gets the same id. */
const criticalId = (e: AnyEvent): string | undefined => {
  const p = e.payload as
    | { readonly _tag: string; readonly consumerId: string; readonly commandId?: string; readonly clientOrderId?: string; readonly reportSeq?: number }
    | undefined
  if (p === undefined) return undefined
  switch (p._tag) {
    case "exec_report":
      return digestId("exec", p.consumerId, p.clientOrderId ?? "", p.reportSeq ?? 0)
    case "control_ack":
      return digestId("ack", p.consumerId, p.commandId ?? "")
    case "control_result":
      return digestId("result", p.consumerId, p.commandId ?? "")
    default:
      return undefined
  }
}

/**
 * True for a publish failure that no retry can mend: the client refused the
 * message (larger than the server's max payload), or the server answered with
 * a JetStream API error other than "temporarily unavailable" (a header over its
 * limit, a subject no stream holds). Timeouts, no responders and a lost
 * connection are transient.
 */
const isPermanentPublishFailure = (u: unknown): boolean => {
  if (!(u instanceof Error)) return false
  // by name and shape: the client's error classes, whichever of its builds threw them
  if (typeof (u as { readonly status?: unknown }).status === "number" && u.name.endsWith("ApiError")) {
    return (u as unknown as { readonly status: number }).status < 500
  }
  // the server refuses the subject for this user (the client's request error wraps the violation):
  // no retry can succeed (see Permissions.ts)
  const cause = (u as { readonly cause?: unknown }).cause
  if (u.name === "PermissionViolationError" || (cause instanceof Error && cause.name === "PermissionViolationError")) return true
  return u.name === "InvalidArgumentError"
}

/**
 * Retried, with capped backoff, while the failure is transient (the server
 * away or slow); `duplicate` when the server already had the id. Fails with a
 * `NatsPublishFailed` at once when the failure is permanent.
 */
export const publishUntilStored = (
  js: NatsConnection["js"],
  subject: string,
  data: string,
  msgId: string,
  onRetry: () => void
): Effect.Effect<{ readonly duplicate: boolean; readonly seq: number }, NatsPublishFailed> => {
  let permanent = false
  return Effect.tryPromise({
    try: () => js.publish(subject, data, { msgID: msgId }),
    catch: (e) => {
      permanent = isPermanentPublishFailure(e)
      return new NatsPublishFailed({ subject, msgId, reason: reasonOf(e).slice(0, 512) })
    }
  }).pipe(
    Effect.tapError((e) =>
      permanent
        ? Effect.void
        : Effect.zipRight(Effect.sync(onRetry), Effect.logDebug("jetstream publish failed; retrying", e))
    ),
    Effect.retry({
      schedule: Schedule.exponential("25 millis", 2).pipe(Schedule.union(Schedule.spaced("500 millis"))),
      while: () => !permanent
    }),
    Effect.map((ack) => ({ duplicate: ack.duplicate, seq: ack.seq }))
  )
}

export interface CriticalPublisherStats {
  readonly published: number
  readonly duplicates: number
  readonly retries: number
  readonly refused: number
  /** Events the server refused for good (too large, a header over its limit): dropped, logged. */
  readonly unpublishable: number
  /** Clock milliseconds of the last unpublishable event (0: none). */
  readonly lastUnpublishableAt: number
}

/** How long an unpublishable critical event keeps the feed not ready. */
const UNPUBLISHABLE_READINESS_MS = 60_000

export class CriticalPublisher extends Effect.Service<CriticalPublisher>()("meltica/nats/CriticalPublisher", {
  effect: Effect.gen(function*() {
    const connection = yield* NatsConnection
    const recycler = yield* Recycler
    yield* untilReady("critical stream", ensureStream(criticalStream))
    let published = 0
    let duplicates = 0
    let retries = 0
    let refused = 0
    let unpublishable = 0
    let lastUnpublishableAt = 0
    const clock = yield* Effect.clock
    const onRetry = () => {
      retries++
    }

    /** Takes ownership of `e`; completes once the server has stored it. */
    const publish = (e: AnyEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const gen = generationOf(e)
        const owner = criticalOwner(e)
        const id = criticalId(e)
        const encoded = encodeEvent(e)
        const traceId = e.traceId
        const kind = e.kind
        recycler.unsafeRecycle(e, gen)
        if (owner === undefined || id === undefined || Either.isLeft(encoded)) {
          refused++
          return Effect.logError("critical event cannot be published").pipe(
            Effect.annotateLogs({
              trace_id: traceId,
              kind,
              reason: Either.isLeft(encoded) ? encoded.left : "no owner or id"
            })
          )
        }
        return publishUntilStored(connection.js, criticalSubject(owner), encoded.right, id, onRetry).pipe(
          Effect.match({
            onSuccess: (ack) => {
              published++
              if (ack.duplicate) duplicates++
            },
            onFailure: (e) => e
          }),
          Effect.flatMap((e) => {
            if (e === undefined) return Effect.void
            unpublishable++
            lastUnpublishableAt = clock.unsafeCurrentTimeMillis()
            return Effect.logError("critical event refused by the server; dropped", e).pipe(
              Effect.annotateLogs({ trace_id: traceId, kind, consumer_id: owner })
            )
          })
        )
      })

    return {
      publish,
      /** Readiness: not ready for a while after a critical event could not be stored. */
      readinessReasons: (): ReadonlyArray<string> =>
        lastUnpublishableAt > 0 && clock.unsafeCurrentTimeMillis() - lastUnpublishableAt < UNPUBLISHABLE_READINESS_MS
          ? [`nats: ${unpublishable} critical event(s) refused by the server (the last within ${UNPUBLISHABLE_READINESS_MS / 1000} s)`]
          : [],
      stats: (): CriticalPublisherStats => ({
        published,
        duplicates,
        retries,
        refused,
        unpublishable,
        lastUnpublishableAt
      })
    } as const
  })
}) {}

export interface CriticalSubscriberStats {
  /** Messages put in a consumer's critical lane. */
  readonly delivered: number
  /** The same, by kind (exec_report, control_ack, control_result). */
  readonly deliveredByKind: Readonly<Record<string, number>>
  /** Redeliveries dropped because the event already ran or is still queued. */
  readonly redeliveriesDropped: number
  readonly acked: number
  readonly ackFailures: number
  readonly malformed: number
}

const MSG_ID = "Nats-Msg-Id"

export class CriticalSubscriber extends Effect.Service<CriticalSubscriber>()("meltica/nats/CriticalSubscriber", {
  effect: Effect.gen(function*() {
    const connection = yield* NatsConnection
    const pool = yield* Pool
    const malformed = new MalformedFrames(yield* Effect.serviceOption(DeadLetter))
    const dedupMemory = connection.settings.dedupMemory
    yield* untilReady("critical stream", ensureStream(criticalStream))
    let delivered = 0
    const deliveredByKind: Record<string, number> = {}
    /** Per attached consumer: whether its durable consumer's pull session is consuming now. */
    const consuming = new Map<string, boolean>()
    let redeliveriesDropped = 0
    let acked = 0
    let ackFailures = 0

    const settle = (msg: JsMsg, how: "ack" | "term"): void => {
      try {
        if (how === "ack") msg.ack()
        else msg.term()
        acked++
      } catch {
        ackFailures++
      }
    }

    /** Runs the consumer's durable JetStream consumer into its mailbox, for the life of the scope. */
    const attach = (consumerId: string, box: Mailbox): Effect.Effect<void, never, Scope.Scope> => {
      const done = new Set<string>()
      const queued = new Set<string>()
      const remember = (id: string) => {
        done.add(id)
        if (done.size > dedupMemory) done.delete(done.values().next().value!)
      }
      const onMessage = (msg: JsMsg): Effect.Effect<void> =>
        Effect.suspend(() => {
          const id = msg.headers?.get(MSG_ID) || `seq:${msg.seq}`
          if (done.has(id)) {
            redeliveriesDropped++
            settle(msg, "ack")
            return Effect.void
          }
          if (queued.has(id)) {
            redeliveriesDropped++
            return Effect.void
          }
          const decoded = decodeFrame(`nats:${msg.subject}`, msg.data)
          if (Either.isLeft(decoded)) {
            settle(msg, "term")
            return malformed.record(decoded.left)
          }
          const e = toPooled(pool, decoded.right)
          queued.add(id)
          e._ack = () => {
            queued.delete(id)
            remember(id)
            settle(msg, "ack")
          }
          e._dispatchTs = nowUs()
          delivered++
          deliveredByKind[e.kind] = (deliveredByKind[e.kind] ?? 0) + 1
          box.offer(e)
          return Effect.void
        })
      consuming.set(consumerId, false)
      return Effect.addFinalizer(() => Effect.sync(() => consuming.delete(consumerId))).pipe(
        Effect.zipRight(runDurable({
          stream: CRITICAL_STREAM,
          durable: criticalDurable(consumerId),
          filterSubject: criticalSubject(consumerId),
          onMessage,
          onSession: (live) => {
            if (consuming.has(consumerId)) consuming.set(consumerId, live)
          }
        })),
        Effect.provideService(NatsConnection, connection)
      )
    }

    return {
      attach,
      /** Each attached consumer, and whether its durable consumer is consuming now. */
      sessions: (): ReadonlyMap<string, boolean> => consuming,
      malformed: (): ReadonlyArray<MalformedFrame> => malformed.recent,
      stats: (): CriticalSubscriberStats => ({
        delivered,
        deliveredByKind: { ...deliveredByKind },
        redeliveriesDropped,
        acked,
        ackFailures,
        malformed: malformed.count
      })
    } as const
  })
}) {}
