/**
 * A durable, acknowledged JetStream consumer, run for the life of a scope.
 *
 * The client's `consume` pulls messages (it re-pulls after a reconnect and
 * when heartbeats go missing) and hands each one to a queue; one fiber takes
 * them in order and runs `onMessage`, which decides when each is
 * acknowledged. Unacknowledged messages are redelivered by the server after
 * `ackWaitMs`, so what `onMessage` does not finish is never lost. A message
 * whose handling dies (a defect) is poison: redelivering it would die again
 * and hold one of the consumer's ack-pending slots for ever, so it is
 * terminated (`term`), counted in `poisoned` and logged with a bounded
 * description of the defect (never the formatted cause of a hostile input).
 * Every message taken thus ends acknowledged or terminated. Messages pulled
 * but not yet handed to `onMessage` when the scope closes are given back
 * (`nak`): the server redelivers them at once (to the next process on the same
 * durable) rather than after `ackWaitMs`. Should the
 * pull session end (the consumer deleted, the stream recreated), the durable
 * consumer is set up again and the session restarted, with backoff.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Cause, Effect, Queue, Schedule, type Scope } from "effect"
import { NatsConnection } from "../Connection.js"
import { NatsSetupFailed, reasonOf } from "../Errors.js"
import { ensureDurable, untilReady } from "../Streams.js"

export interface DurableSpec {
  readonly stream: string
  readonly durable: string
  readonly filterSubject: string
  /** Runs for each message, in delivery order; it owns the message's acknowledgement. */
  readonly onMessage: (msg: JsMsg) => Effect.Effect<void>
  /** Told true when a pull session is consuming, false when it ends (then again true once restarted). */
  readonly onSession?: (consuming: boolean) => void
  /** Counts the messages terminated because their handling died. */
  readonly poisoned?: PoisonCount
}

/** Messages terminated because their handling died. */
export class PoisonCount {
  count = 0
}

/** A defect in one line of at most 300 characters. */
const describeDefect = (cause: Cause.Cause<unknown>): string => {
  let text: string
  try {
    const u = Cause.squash(cause)
    text = u instanceof Error ? `${u.name}: ${u.message}` : typeof u === "string" ? u : "a non-error defect"
  } catch {
    text = "an undescribable defect"
  }
  return text.length > 300 ? `${text.slice(0, 300)}...` : text
}

/**
 * Gives a message back for redelivery now rather than after its ack wait. A
 * nak with a delay goes the way of an expired ack wait: redelivered in stream
 * order. An immediate nak with no pull waiting (nats-server 2.9) drops the
 * message from the redelivery queue until its ack wait and can deliver
 * another one twice. Throws when the connection is closed.
 */
export const giveBack = (msg: JsMsg): void => msg.nak(1)

export const runDurable = (spec: DurableSpec): Effect.Effect<void, never, NatsConnection | Scope.Scope> =>
  Effect.gen(function*() {
    const { js, jsm, settings } = yield* NatsConnection
    const inbox = yield* Queue.unbounded<JsMsg>()
    // runs last, once the session and the handling fiber have stopped: nothing more arrives
    yield* Effect.addFinalizer(() =>
      Queue.takeAll(inbox).pipe(
        Effect.flatMap((left) =>
          Effect.sync(() => {
            for (const msg of left) {
              try {
                giveBack(msg)
              } catch {
                // connection closed: redelivered after the ack wait instead
              }
            }
          })
        ),
        Effect.zipRight(Queue.shutdown(inbox))
      )
    )
    yield* Queue.take(inbox).pipe(
      Effect.flatMap((msg) =>
        spec.onMessage(msg).pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.suspend(() => {
              try {
                msg.term()
              } catch {
                // connection closed: it comes back, and is terminated then
              }
              if (spec.poisoned !== undefined) spec.poisoned.count++
              return Effect.logError("durable consumer message handling died; message terminated").pipe(
                Effect.annotateLogs({
                  durable: spec.durable,
                  subject: msg.subject,
                  stream_seq: msg.seq,
                  defect: describeDefect(cause)
                })
              )
            })
          )
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    const setup = untilReady(
      `durable consumer ${spec.durable}`,
      ensureDurable(jsm, settings, spec.stream, spec.durable, spec.filterSubject)
    )
    const session = Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          js.consumers.get(spec.stream, spec.durable).then((c) =>
            c.consume({
              max_messages: Math.max(1, Math.min(settings.maxAckPending, 256)),
              callback: (m) => {
                Queue.unsafeOffer(inbox, m)
              }
            })
          ),
        catch: (e) => new NatsSetupFailed({ stream: spec.stream, consumer: spec.durable, reason: reasonOf(e) })
      }),
      (messages) => Effect.promise(() => messages.close()).pipe(Effect.timeout("2 seconds"), Effect.ignore)
    )
    const consuming = (live: boolean) => Effect.sync(() => spec.onSession?.(live))
    const once = setup.pipe(
      Effect.zipRight(session),
      Effect.tap(() => consuming(true)),
      Effect.flatMap((messages) => Effect.promise(() => messages.closed())),
      Effect.scoped,
      Effect.ensuring(consuming(false)),
      Effect.flatMap((ended) =>
        Effect.logWarning("durable consumer session ended; restarting").pipe(
          Effect.annotateLogs({ durable: spec.durable, reason: ended instanceof Error ? reasonOf(ended) : "closed" })
        )
      ),
      Effect.catchAll((e) => Effect.logWarning("durable consumer session failed; restarting", e))
    )
    yield* once.pipe(
      Effect.repeat(Schedule.exponential("100 millis", 2).pipe(Schedule.union(Schedule.spaced("2 seconds")))),
      Effect.forkScoped
    )
  })
