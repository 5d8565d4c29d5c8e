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
 * only then. A crash leaves it unacknowledged, and the server redelivers it
 * after the ack wait. A consumer that stops gives back (`_giveBack`, a delayed
 * `nak`) what its mailbox still held and the event whose lambda it interrupted:
 * the server redelivers those at once, in order, to the next process on the
 * durable. Redeliveries of a message that already ran (its ack
 * lost in a server restart) or that is still queued are dropped by id here, so
 * within a process every critical event reaches the lambda exactly once.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Effect, Either, FiberSet, Schedule, type Scope } from "effect"
import { BATCH_CUT_BYTES, FrameWriter } from "../codec/Binary.js"
import type { MalformedFrame } from "../../schema/Errors.js"
import type { Mailbox } from "../DataBus.js"
import { DeadLetter } from "../DeadLetter.js"
import type { AnyEvent } from "../Event.js"
import { nowUs } from "../internal/histogram.js"
import { Pool } from "../Pool.js"
import { generationOf, Recycler } from "../Recycler.js"
import { NatsConnection } from "./Connection.js"
import { NatsPublishFailed, reasonOf } from "./Errors.js"
import { giveBack, runDurable } from "./internal/durable.js"
import { digestId } from "./internal/ids.js"
import { decodeMessage, encodeEvent, MalformedFrames } from "./internal/frames.js"
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
  data: string | Uint8Array,
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
  /** Critical events stored (in `messages` JetStream messages). */
  readonly published: number
  readonly messages: number
  /** Messages the server already had (a retry after a lost acknowledgement). */
  readonly duplicates: number
  readonly retries: number
  readonly refused: number
  /** Events the server refused for good (too large, a header over its limit): dropped, logged. */
  readonly unpublishable: number
  /** Clock milliseconds of the last unpublishable event (0: none). */
  readonly lastUnpublishableAt: number
  /** Events published and not yet stored, now (at most `criticalWindow`). */
  readonly inFlight: number
}

/** How long an unpublishable critical event keeps the feed not ready. */
const UNPUBLISHABLE_READINESS_MS = 60_000

/** One message's worth of a consumer's events: a binary frame, or one event's JSON text. */
interface Batch {
  readonly writer: FrameWriter | undefined
  text: string | undefined
  /** The `Nats-Msg-Id`s of its events (the message's id is derived from them). */
  readonly ids: Array<string>
}

/**
 * One consumer's lane: its batches waiting to go out, in order, and whether a
 * message of its events is in flight (at most one: the next waits for it, so
 * the stream holds the consumer's events in the order they were published,
 * whatever the retries).
 */
interface Lane {
  readonly owner: string
  readonly subject: string
  readonly batches: Array<Batch>
  sending: boolean
  /** Events taken for this lane, and events of it settled (stored or refused for good). */
  enqueued: number
  settled: number
}

export class CriticalPublisher extends Effect.Service<CriticalPublisher>()("meltica/nats/CriticalPublisher", {
  scoped: Effect.gen(function*() {
    const connection = yield* NatsConnection
    const recycler = yield* Recycler
    yield* untilReady("critical stream", ensureStream(criticalStream))
    const { codec, criticalBatchMax, criticalWindow } = connection.settings
    const binary = codec === "binary"
    const batchMax = binary ? Math.max(1, criticalBatchMax) : 1
    const window = Math.max(1, criticalWindow)
    const senders = yield* FiberSet.make<void, never>()
    const runSender = yield* FiberSet.runtime(senders)<never>()
    let published = 0
    let messages = 0
    let duplicates = 0
    let retries = 0
    let refused = 0
    let unpublishable = 0
    let lastUnpublishableAt = 0
    let inFlight = 0
    const clock = yield* Effect.clock
    const onRetry = () => {
      retries++
    }
    const lanes = new Map<string, Lane>()
    /** Woken whenever events settle: publishers waiting for room, `whenStored` waiting for its lanes. */
    let waiters: Array<() => void> = []
    const wake = () => {
      const ws = waiters
      waiters = []
      for (const w of ws) w()
    }
    const nextSettle = Effect.async<void>((resume) => {
      const w = () => resume(Effect.void)
      waiters.push(w)
      return Effect.sync(() => {
        const i = waiters.indexOf(w)
        if (i >= 0) waiters.splice(i, 1)
      })
    })

    /** Sends the lane's batches, one message at a time, until none wait. */
    const drain = (lane: Lane): Effect.Effect<void> =>
      Effect.whileLoop({
        while: () => lane.batches.length > 0,
        body: () =>
          Effect.suspend(() => {
            const batch = lane.batches.shift()!
            const n = batch.ids.length
            const data = batch.writer !== undefined ? batch.writer.finishView() : batch.text!
            // the same events always make the same message id: a retry is de-duplicated by the server
            const msgId = n === 1 ? batch.ids[0]! : digestId("batch", ...batch.ids)
            return publishUntilStored(connection.js, lane.subject, data, msgId, onRetry).pipe(
              Effect.match({
                onSuccess: (ack) => {
                  published += n
                  messages++
                  if (ack.duplicate) duplicates++
                  return undefined
                },
                onFailure: (e) => e
              }),
              Effect.flatMap((e) => {
                lane.settled += n
                inFlight -= n
                wake()
                if (e === undefined) return Effect.void
                unpublishable += n
                lastUnpublishableAt = clock.unsafeCurrentTimeMillis()
                return Effect.logError("critical events refused by the server; dropped", e).pipe(
                  Effect.annotateLogs({ consumer_id: lane.owner, events: n })
                )
              })
            )
          }),
        step: () => {}
      }).pipe(
        Effect.ensuring(Effect.sync(() => {
          lane.sending = false
        }))
      )

    const laneOf = (owner: string): Lane => {
      let lane = lanes.get(owner)
      if (lane === undefined) {
        lanes.set(owner, lane = { owner, subject: criticalSubject(owner), batches: [], sending: false, enqueued: 0, settled: 0 })
      }
      return lane
    }

    /** The lane's open batch (the last one, while it has room), or a new one. */
    const openBatch = (lane: Lane): Batch => {
      const last = lane.batches[lane.batches.length - 1]
      if (
        last !== undefined && last.writer !== undefined && last.ids.length < batchMax &&
        last.writer.length < BATCH_CUT_BYTES
      ) return last
      const batch: Batch = { writer: binary ? new FrameWriter(1_024) : undefined, text: undefined, ids: [] }
      lane.batches.push(batch)
      return batch
    }

    /**
     * Takes ownership of `e` and puts it in its consumer's lane; completes at
     * once while fewer than `criticalWindow` events are unstored, else once
     * there is room. `whenStored` says when it is stored.
     */
    const publish = (e: AnyEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const gen = generationOf(e)
        const owner = criticalOwner(e)
        const id = criticalId(e)
        const traceId = e.traceId
        const kind = e.kind
        let problem: string | undefined = owner === undefined || id === undefined ? "no owner or id" : undefined
        let lane: Lane | undefined
        if (problem === undefined) {
          lane = laneOf(owner!)
          if (binary) {
            let batch = openBatch(lane)
            try {
              batch.writer!.add(e)
              if (batch.writer!.length > BATCH_CUT_BYTES && batch.ids.length > 0) {
                // too large to join the others: it travels alone (refused alone, if the server refuses it)
                batch.writer!.undoLast()
                batch = { writer: new FrameWriter(1_024), text: undefined, ids: [] }
                lane.batches.push(batch)
                batch.writer!.add(e)
              }
              batch.ids.push(id!)
            } catch (u) {
              problem = reasonOf(u)
              if (batch.ids.length === 0) lane.batches.pop()
            }
          } else {
            const encoded = encodeEvent(e)
            if (Either.isLeft(encoded)) problem = encoded.left
            else lane.batches.push({ writer: undefined, text: encoded.right, ids: [id!] })
          }
        }
        recycler.unsafeRecycle(e, gen)
        if (problem !== undefined || lane === undefined) {
          refused++
          return Effect.logError("critical event cannot be published").pipe(
            Effect.annotateLogs({ trace_id: traceId, kind, reason: problem ?? "no lane" })
          )
        }
        lane.enqueued++
        inFlight++
        // the lane's sender runs on its own fiber (one per lane while it has events, not one per event)
        const start = lane.sending ? Effect.void : Effect.sync(() => {
          lane.sending = true
          runSender(drain(lane))
        })
        return Effect.zipRight(
          start,
          Effect.whileLoop({ while: () => inFlight > window, body: () => nextSettle, step: () => {} })
        )
      })

    /** Completes once every event published before it is settled: stored, or refused for good. */
    const whenStored: Effect.Effect<void> = Effect.suspend(() => {
      const targets = [...lanes.values()].filter((l) => l.settled < l.enqueued).map((l) => [l, l.enqueued] as const)
      return Effect.whileLoop({
        while: () => targets.some(([l, n]) => l.settled < n),
        body: () => nextSettle,
        step: () => {}
      })
    })

    return {
      publish,
      whenStored,
      /** Readiness: not ready for a while after a critical event could not be stored. */
      readinessReasons: (): ReadonlyArray<string> =>
        lastUnpublishableAt > 0 && clock.unsafeCurrentTimeMillis() - lastUnpublishableAt < UNPUBLISHABLE_READINESS_MS
          ? [`nats: ${unpublishable} critical event(s) refused by the server (the last within ${UNPUBLISHABLE_READINESS_MS / 1000} s)`]
          : [],
      stats: (): CriticalPublisherStats => ({
        published,
        messages,
        duplicates,
        retries,
        refused,
        unpublishable,
        lastUnpublishableAt,
        inFlight
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
  /** Messages given back for redelivery at once: an event of theirs was dropped unrun (its consumer stopped). */
  readonly givenBack: number
  readonly malformed: number
}

const MSG_ID = "Nats-Msg-Id"

export class CriticalSubscriber extends Effect.Service<CriticalSubscriber>()("meltica/nats/CriticalSubscriber", {
  effect: Effect.gen(function*() {
    const connection = yield* NatsConnection
    const pool = yield* Pool
    const recycler = yield* Recycler
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
    let givenBack = 0

    const settle = (msg: JsMsg, how: "ack" | "term" | "nak"): void => {
      try {
        if (how === "ack") msg.ack()
        else if (how === "term") msg.term()
        else {
          giveBack(msg)
          givenBack++
          return
        }
        acked++
      } catch {
        ackFailures++
      }
    }

    /** Runs the consumer's durable JetStream consumer into its mailbox, for the life of the scope. */
    const attach = (consumerId: string, box: Pick<Mailbox, "offer">): Effect.Effect<void, never, Scope.Scope> => {
      const done = new Set<string>()
      const queued = new Set<string>()
      const remember = (id: string) => {
        done.add(id)
        if (done.size > dedupMemory) done.delete(done.values().next().value!)
      }
      const onMessage = (msg: JsMsg): Effect.Effect<void> =>
        Effect.suspend(() => {
          const msgId = msg.headers?.get(MSG_ID) || `seq:${msg.seq}`
          if (queued.has(msgId)) {
            // still running from its first delivery: that one acknowledges it
            redeliveriesDropped++
            return Effect.void
          }
          const events: Array<AnyEvent> = []
          const bad: Array<MalformedFrame> = []
          decodeMessage(`nats:${msg.subject}`, msg.data, pool, events, bad)
          const letters = bad.length === 0 ? Effect.void : Effect.forEach(bad, (b) => malformed.record(b), { discard: true })
          if (events.length === 0) {
            settle(msg, "term")
            return letters
          }
          // the message is acknowledged once each of its events not run before has run;
          // given back (at once, for all of them) if one is dropped unrun: its consumer stopped
          let remaining = 0
          let settled = false
          const finish = () => {
            if (--remaining === 0 && !settled) {
              settled = true
              queued.delete(msgId)
              settle(msg, "ack")
            }
          }
          const giveBackMessage = () => {
            if (settled) return
            settled = true
            queued.delete(msgId)
            settle(msg, "nak")
          }
          const fresh: Array<AnyEvent> = []
          for (let i = 0; i < events.length; i++) {
            const e = events[i]!
            // an event's own id: the same event in another message (a feed that re-sent it) runs once
            const id = criticalId(e) ?? `${msgId}#${i}`
            if (done.has(id) || queued.has(id)) {
              redeliveriesDropped++
              recycler.unsafeRecycle(e, generationOf(e))
              continue
            }
            queued.add(id)
            remaining++
            e._ack = () => {
              queued.delete(id)
              remember(id)
              finish()
            }
            e._giveBack = () => {
              queued.delete(id)
              giveBackMessage()
            }
            fresh.push(e)
          }
          if (remaining === 0) {
            settle(msg, "ack")
            return letters
          }
          queued.add(msgId)
          const now = nowUs()
          for (const e of fresh) {
            e._dispatchTs = now
            delivered++
            deliveredByKind[e.kind] = (deliveredByKind[e.kind] ?? 0) + 1
            box.offer(e)
          }
          return letters
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
        givenBack,
        malformed: malformed.count
      })
    } as const
  })
}) {}
