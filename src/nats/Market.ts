/**
 * Market data over core NATS: at most once, one message per event.
 *
 * Feed side, `MarketPublisher`: each event is encoded in the canonical wire
 * schema and published once on `md.<provider>.<symbol>.<kind>` (merged events
 * on `md.merged.<symbol>.<kind>`), whoever listens; the pooled event is
 * recycled at once. Nothing waits on the server: while the client reconnects
 * it buffers, and what it cannot deliver is lost (market data is at most once).
 * Every event goes out stamped with this process's feed epoch (a run id made
 * at start), so that a strategy process resets a stream's ordering when the
 * feed restarts and numbers its sequences from 1 again.
 *
 * Strategy side, `MarketSubscriber`: the process listens only on the subjects
 * its consumers' routes need (one NATS subscription per route, shared by every
 * consumer of the route, dropped with the last one). Each message is decoded
 * into an event from this process's pool and handed to the local Dispatcher,
 * which orders, fans out and coalesces (latest wins) exactly as in memory.
 * Between the client and the dispatcher sits a bounded buffer; when it is full
 * a message is dropped and counted. A frame that does not decode is a typed
 * `MalformedFrame`: counted, logged and dead-lettered; the next one goes on.
 */
import type { Msg, Subscription } from "@nats-io/transport-node"
import { Chunk, Data, Effect, Either, Queue } from "effect"
import { randomBytes } from "node:crypto"
import type { MalformedFrame } from "../../schema/Errors.js"
import { DeadLetter } from "../DeadLetter.js"
import { Dispatcher, type RouteKey } from "../Dispatcher.js"
import type { AnyEvent } from "../Event.js"
import { Pool } from "../Pool.js"
import { generationOf, Recycler } from "../Recycler.js"
import { NatsConnection } from "./Connection.js"
import { reasonOf } from "./Errors.js"
import { decodeFrame, encodeEvent, MalformedFrames, toPooled } from "./internal/frames.js"
import { isMergedSubject, marketSubject, routeSubject } from "./Subjects.js"

export interface MarketPublisherStats {
  readonly published: number
  /** Events that did not fit the wire schema, or that the client refused (connection closed). */
  readonly failed: number
}

/** A feed run's epoch: its start time and a random part, unique per process run. */
const makeEpoch = (nowMs: number): string => `${nowMs.toString(36)}-${randomBytes(6).toString("hex")}`

export class MarketPublisher extends Effect.Service<MarketPublisher>()("meltica/nats/MarketPublisher", {
  effect: Effect.gen(function*() {
    const { nc } = yield* NatsConnection
    const recycler = yield* Recycler
    const epoch = makeEpoch(yield* Effect.clockWith((c) => c.currentTimeMillis))
    let published = 0
    let failed = 0
    let lastFailure = ""

    /** Takes ownership of `e`: publishes it once and recycles it. Returns whether it went out. */
    const unsafePublish = (e: AnyEvent): boolean => {
      const gen = generationOf(e)
      e.epoch ??= epoch
      const encoded = encodeEvent(e)
      let ok = false
      if (Either.isRight(encoded)) {
        try {
          nc.publish(marketSubject(e), encoded.right)
          ok = true
        } catch (u) {
          lastFailure = reasonOf(u)
        }
      } else lastFailure = encoded.left
      recycler.unsafeRecycle(e, gen)
      if (ok) published++
      else failed++
      return ok
    }

    return {
      unsafePublish,
      publish: (e: AnyEvent): Effect.Effect<void> =>
        Effect.suspend(() =>
          unsafePublish(e)
            ? Effect.void
            : Effect.logWarning("market data not published").pipe(Effect.annotateLogs({ reason: lastFailure }))
        ),
      /** This run's feed epoch, stamped on every event published. */
      epoch,
      stats: (): MarketPublisherStats => ({ published, failed })
    } as const
  })
}) {}

/** A route's subscription could not be made (the connection is closed). */
export class MarketSubscribeFailed extends Data.TaggedError("MarketSubscribeFailed")<{
  readonly subject: string
  readonly reason: string
}> {}

export interface MarketSubscriberStats {
  readonly received: number
  readonly dispatched: number
  /** Dropped because the buffer before the dispatcher was full. */
  readonly dropped: number
  readonly malformed: number
  readonly subjects: number
}

interface Interest {
  readonly sub: Subscription
  readonly consumers: Set<string>
}

const routeId = (key: RouteKey) => `${key.merged ? "merged" : "raw"}|${key.symbol}|${key.kind}`

export class MarketSubscriber extends Effect.Service<MarketSubscriber>()("meltica/nats/MarketSubscriber", {
  scoped: Effect.gen(function*() {
    const { nc, settings } = yield* NatsConnection
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const malformed = new MalformedFrames(yield* Effect.serviceOption(DeadLetter))
    const inbox = yield* Queue.bounded<Msg>(settings.marketBuffer)
    const interests = new Map<string, Interest>()
    const byConsumer = new Map<string, Map<string, RouteKey>>()
    let received = 0
    let dispatched = 0
    let dropped = 0

    const handle = (msg: Msg): Effect.Effect<void> => {
      const decoded = decodeFrame(`nats:${msg.subject}`, msg.data)
      if (Either.isLeft(decoded)) return malformed.record(decoded.left)
      dispatched++
      return dispatcher.dispatch(toPooled(pool, decoded.right))
    }

    // a defect in one batch (none is expected: decoding is total) is logged and the loop goes on
    yield* Queue.takeBetween(inbox, 1, 1_024).pipe(
      Effect.flatMap((msgs) =>
        Effect.forEach(Chunk.toReadonlyArray(msgs), handle, { discard: true }).pipe(
          Effect.catchAllDefect((defect) =>
            Effect.logError("market-data batch handling died; going on").pipe(
              Effect.annotateLogs({ defect: String(defect instanceof Error ? defect.message : typeof defect).slice(0, 300) })
            )
          )
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    const listen = (key: RouteKey): Either.Either<Subscription, MarketSubscribeFailed> => {
      const subject = routeSubject(key)
      const merged = key.merged
      return Either.try({
        try: () =>
          nc.subscribe(subject, {
            callback: (err, msg) => {
              if (err !== null) return
              // a raw route's wildcard also matches the merged streams: those have their own route
              if (!merged && isMergedSubject(msg.subject)) return
              received++
              if (!Queue.unsafeOffer(inbox, msg)) dropped++
            }
          }),
        catch: (u) => new MarketSubscribeFailed({ subject, reason: reasonOf(u) })
      })
    }

    /** Listens on the route's subject for this consumer (the subscription is shared by the route's consumers). */
    const subscribe = (consumerId: string, key: RouteKey): Effect.Effect<void, MarketSubscribeFailed> =>
      Effect.suspend(() => {
        const id = routeId(key)
        let interest = interests.get(id)
        if (interest === undefined) {
          const sub = listen(key)
          if (Either.isLeft(sub)) return Effect.fail(sub.left)
          interests.set(id, interest = { sub: sub.right, consumers: new Set() })
        }
        interest.consumers.add(consumerId)
        let mine = byConsumer.get(consumerId)
        if (mine === undefined) byConsumer.set(consumerId, mine = new Map())
        mine.set(id, key)
        return Effect.void
      })

    const release = (consumerId: string, id: string): void => {
      const interest = interests.get(id)
      if (interest === undefined) return
      interest.consumers.delete(consumerId)
      if (interest.consumers.size === 0) {
        interests.delete(id)
        try {
          interest.sub.unsubscribe()
        } catch {
          // the connection is already closed: the subscription went with it
        }
      }
    }

    const unsubscribe = (consumerId: string, key: RouteKey): Effect.Effect<void> =>
      Effect.sync(() => {
        const id = routeId(key)
        byConsumer.get(consumerId)?.delete(id)
        release(consumerId, id)
      })

    const removeConsumer = (consumerId: string): Effect.Effect<void> =>
      Effect.sync(() => {
        const mine = byConsumer.get(consumerId)
        byConsumer.delete(consumerId)
        if (mine !== undefined) for (const id of mine.keys()) release(consumerId, id)
      })

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const i of interests.values()) {
          try {
            i.sub.unsubscribe()
          } catch {
            // closed with the connection
          }
        }
        interests.clear()
        byConsumer.clear()
      }).pipe(Effect.zipRight(Queue.shutdown(inbox)))
    )

    return {
      subscribe,
      unsubscribe,
      removeConsumer,
      /** Completes once the server has every subscription made so far (a round trip). */
      flush: Effect.tryPromise(() => nc.flush()).pipe(Effect.ignore),
      subjects: (): ReadonlyArray<string> => [...interests.values()].map((i) => i.sub.getSubject()),
      malformed: (): ReadonlyArray<MalformedFrame> => malformed.recent,
      stats: (): MarketSubscriberStats => ({
        received,
        dispatched,
        dropped,
        malformed: malformed.count,
        subjects: interests.size
      })
    } as const
  })
}) {}
