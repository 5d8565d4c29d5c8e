/**
 * Critical events (ExecReport, ControlAck, ControlResult) over JetStream.
 *
 * Feed side, `CriticalPublisher`: each event goes to `critical.<consumerId>`
 * with a `Nats-Msg-Id` that names it (`exec:<consumer>:<clientOrderId>:<reportSeq>`,
 * `ack:<consumer>:<commandId>`, `result:<consumer>:<commandId>`). A publish is
 * retried with the same id until the server acknowledges it, so the server
 * keeps exactly one copy whatever the retries (within its dedup window), and
 * `publish` returns only once the event is stored: whoever waits on it (the
 * venue's outbox, the command consumer) has the event durable before it moves on.
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
import { Recycler } from "../Recycler.js"
import { NatsConnection } from "./Connection.js"
import { NatsPublishFailed, reasonOf } from "./Errors.js"
import { runDurable } from "./internal/durable.js"
import { decodeFrame, encodeEvent, MalformedFrames, toPooled } from "./internal/frames.js"
import { criticalStream, ensureStream, untilReady } from "./Streams.js"
import { CRITICAL_STREAM, criticalDurable, criticalSubject } from "./Subjects.js"

/** The consumer a critical event is for. */
export const criticalOwner = (e: AnyEvent): string | undefined =>
  (e.payload as { readonly consumerId?: string } | undefined)?.consumerId

/** The `Nats-Msg-Id` of a critical event: the same event always gets the same id. */
export const criticalId = (e: AnyEvent): string | undefined => {
  const p = e.payload as
    | { readonly _tag: string; readonly consumerId: string; readonly commandId?: string; readonly clientOrderId?: string; readonly reportSeq?: number }
    | undefined
  if (p === undefined) return undefined
  switch (p._tag) {
    case "exec_report":
      return `exec:${p.consumerId}:${p.clientOrderId}:${p.reportSeq}`
    case "control_ack":
      return `ack:${p.consumerId}:${p.commandId}`
    case "control_result":
      return `result:${p.consumerId}:${p.commandId}`
    default:
      return undefined
  }
}

/** Retried, with capped backoff, until the server acknowledges; `duplicate` when it already had the id. */
export const publishUntilStored = (
  js: NatsConnection["js"],
  subject: string,
  data: string,
  msgId: string,
  onRetry: () => void
): Effect.Effect<{ readonly duplicate: boolean; readonly seq: number }> =>
  Effect.tryPromise({
    try: () => js.publish(subject, data, { msgID: msgId }),
    catch: (e) => new NatsPublishFailed({ subject, msgId, reason: reasonOf(e) })
  }).pipe(
    Effect.tapError((e) => Effect.zipRight(Effect.sync(onRetry), Effect.logDebug("jetstream publish failed; retrying", e))),
    Effect.retry(Schedule.exponential("25 millis", 2).pipe(Schedule.union(Schedule.spaced("500 millis")))),
    Effect.map((ack) => ({ duplicate: ack.duplicate, seq: ack.seq })),
    Effect.orDie
  )

export interface CriticalPublisherStats {
  readonly published: number
  readonly duplicates: number
  readonly retries: number
  readonly refused: number
}

export class CriticalPublisher extends Effect.Service<CriticalPublisher>()("meltica/nats/CriticalPublisher", {
  effect: Effect.gen(function*() {
    const connection = yield* NatsConnection
    const recycler = yield* Recycler
    yield* untilReady("critical stream", ensureStream(criticalStream))
    let published = 0
    let duplicates = 0
    let retries = 0
    let refused = 0
    const onRetry = () => {
      retries++
    }

    /** Takes ownership of `e`; completes once the server has stored it. */
    const publish = (e: AnyEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const owner = criticalOwner(e)
        const id = criticalId(e)
        const encoded = encodeEvent(e)
        const traceId = e.traceId
        const kind = e.kind
        recycler.unsafeRecycle(e)
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
          Effect.map((ack) => {
            published++
            if (ack.duplicate) duplicates++
          })
        )
      })

    return {
      publish,
      stats: (): CriticalPublisherStats => ({ published, duplicates, retries, refused })
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
