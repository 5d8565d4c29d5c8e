/**
 * Market data over core NATS: at most once, in batches per stream.
 *
 * Feed side, `MarketPublisher`: each event goes on `md.<provider>.<symbol>.<kind>`
 * (merged events on `md.merged.<symbol>.<kind>`), whoever listens; the pooled
 * event is recycled at once. With the binary codec (the default) the events
 * of one subject (one stream) are written into one frame (`src/codec/Binary.ts`)
 * and published as one message when the frame holds `marketBatchMax` events
 * or when the current turn of the event loop ends (`setImmediate`), whichever
 * comes first: a stream's events stay in order within and across messages,
 * and the delay a batch adds is bounded by the turn, never by a timer. With
 * `codec: json` each event is one message of canonical JSON. Nothing waits on
 * the server: while the client reconnects it buffers, and what it cannot
 * deliver is lost (market data is at most once). Every event goes out stamped
 * with this process's feed epoch (a run id made at start), so that a strategy
 * process resets a stream's ordering when the feed restarts and numbers its
 * sequences from 1 again.
 *
 * Strategy side, `MarketSubscriber`: the process listens only on the subjects
 * its consumers' routes need (one NATS subscription per route, shared by every
 * consumer of the route, dropped with the last one). Each message is decoded
 * (binary or JSON, told apart by its first byte) into events from this
 * process's pool, handed in order to the local Dispatcher, which orders, fans
 * out and coalesces (latest wins) exactly as in memory. Between the client
 * and the dispatcher sits a bounded buffer of messages; when it is full a
 * message is dropped and its events counted. A frame, or a record of one,
 * that does not decode is a typed `MalformedFrame`: counted, logged and
 * dead-lettered; the records around it and the next message go on.
 */
import type { Msg, Subscription } from "@nats-io/transport-node"
import { Chunk, Data, Effect, Either, Queue } from "effect"
import { randomBytes } from "node:crypto"
import type { MalformedFrame } from "../../schema/Errors.js"
import { DeadLetter } from "../DeadLetter.js"
import { Dispatcher, type RouteKey } from "../Dispatcher.js"
import type { AnyEvent } from "../Event.js"
import { BATCH_CUT_BYTES, FrameWriter, isBinaryFrame } from "../codec/Binary.js"
import { Pool } from "../Pool.js"
import { generationOf, Recycler } from "../Recycler.js"
import { NatsConnection } from "./Connection.js"
import { reasonOf } from "./Errors.js"
import { decodeMessage, encodeEvent, MalformedFrames } from "./internal/frames.js"
import { isMergedSubject, marketSubject, routeSubject } from "./Subjects.js"

export interface MarketPublisherStats {
  /** Events that went out (in `messages` NATS messages). */
  readonly published: number
  readonly messages: number
  /** Events that did not fit the wire schema, or that the client refused (connection closed). */
  readonly failed: number
}

/** A feed run's epoch: its start time and a random part, unique per process run. */
const makeEpoch = (nowMs: number): string => `${nowMs.toString(36)}-${randomBytes(6).toString("hex")}`

/** One subject's batch: its frame being written. */
interface Batch {
  readonly subject: string
  readonly writer: FrameWriter
}

export class MarketPublisher extends Effect.Service<MarketPublisher>()("meltica/nats/MarketPublisher", {
  scoped: Effect.gen(function*() {
    const { nc, settings } = yield* NatsConnection
    const recycler = yield* Recycler
    const epoch = makeEpoch(yield* Effect.clockWith((c) => c.currentTimeMillis))
    const binary = settings.codec === "binary"
    const batchMax = Math.max(1, settings.marketBatchMax)
    let published = 0
    let messages = 0
    let failed = 0
    let lastFailure = ""

    const batches = new Map<string, Batch>()
    /** Subjects with events waiting, in the order their first event came. */
    const pending: Array<Batch> = []
    let scheduled: ReturnType<typeof setImmediate> | undefined

    const send = (subject: string, data: Uint8Array | string, events: number): boolean => {
      try {
        nc.publish(subject, data)
        messages++
        published += events
        return true
      } catch (u) {
        lastFailure = reasonOf(u)
        failed += events
        return false
      }
    }

    const flushBatch = (b: Batch): boolean => {
      const n = b.writer.records
      if (n === 0) return true
      const frame = b.writer.finish()
      b.writer.begin()
      return send(b.subject, frame, n)
    }

    /** Publishes every batch waiting. */
    const flush = (): void => {
      if (scheduled !== undefined) {
        clearImmediate(scheduled)
        scheduled = undefined
      }
      for (const b of pending) flushBatch(b)
      pending.length = 0
    }

    /** Takes ownership of `e`: publishes it (now, or with its stream's batch) and recycles it. Returns whether it was taken. */
    const unsafePublish = (e: AnyEvent): boolean => {
      const gen = generationOf(e)
      e.epoch ??= epoch
      let ok = false
      if (binary) {
        const subject = marketSubject(e)
        let b = batches.get(subject)
        if (b === undefined) batches.set(subject, b = { subject, writer: new FrameWriter(1_024) })
        try {
          if (b.writer.records === 0) pending.push(b)
          b.writer.add(e)
          if (b.writer.length > BATCH_CUT_BYTES && b.writer.records > 1) {
            // the batch goes out without this event, which starts the next one
            b.writer.undoLast()
            flushBatch(b)
            pending.push(b)
            b.writer.add(e)
          }
          ok = true
        } catch (u) {
          lastFailure = reasonOf(u)
          failed++
        }
        recycler.unsafeRecycle(e, gen)
        if (ok && b.writer.records >= batchMax) ok = flushBatch(b)
        else if (ok && scheduled === undefined) scheduled = setImmediate(flush)
        return ok
      }
      const encoded = encodeEvent(e)
      const subject = marketSubject(e)
      recycler.unsafeRecycle(e, gen)
      if (Either.isRight(encoded)) ok = send(subject, encoded.right, 1)
      else {
        lastFailure = encoded.left
        failed++
      }
      return ok
    }

    // what is still batched goes out before the connection drains
    yield* Effect.addFinalizer(() => Effect.sync(flush))

    return {
      unsafePublish,
      publish: (e: AnyEvent): Effect.Effect<void> =>
        Effect.suspend(() =>
          unsafePublish(e)
            ? Effect.void
            : Effect.logWarning("market data not published").pipe(Effect.annotateLogs({ reason: lastFailure }))
        ),
      /** Publishes the batches waiting now (they go out at the end of the turn anyway). */
      flush: Effect.sync(flush),
      /** This run's feed epoch, stamped on every event published. */
      epoch,
      stats: (): MarketPublisherStats => ({ published, messages, failed })
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
  /** Events dropped because the buffer before the dispatcher was full. */
  readonly dropped: number
  readonly malformed: number
  readonly subjects: number
}

interface Interest {
  readonly sub: Subscription
  readonly consumers: Set<string>
}

/** The events a message holds (a binary frame's header says; a JSON message holds one). */
const eventsIn = (data: Uint8Array): number =>
  isBinaryFrame(data) && data.length >= 6 ? Math.max(1, data[2]! | (data[3]! << 8) | (data[4]! << 16)) : 1

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

    const events: Array<AnyEvent> = []
    const bad: Array<MalformedFrame> = []
    let next = 0
    const dispatchNext = (): Effect.Effect<void> => dispatcher.dispatch(events[next++]!)
    const more = () => next < events.length

    /** Decodes the messages taken, then hands their events to the dispatcher in order (one loop, no fiber per event). */
    const handle = (msgs: Chunk.Chunk<Msg>): Effect.Effect<void> =>
      Effect.suspend(() => {
        events.length = 0
        bad.length = 0
        next = 0
        for (const msg of msgs) decodeMessage(`nats:${msg.subject}`, msg.data, pool, events, bad)
        dispatched += events.length
        const dispatchAll = Effect.whileLoop({ while: more, body: dispatchNext, step: () => {} })
        return bad.length === 0
          ? dispatchAll
          : Effect.zipRight(Effect.forEach(bad.splice(0), (e) => malformed.record(e), { discard: true }), dispatchAll)
      })

    // a defect in one batch (none is expected: decoding is total) is logged and the loop goes on
    yield* Queue.takeBetween(inbox, 1, 1_024).pipe(
      Effect.flatMap((msgs) =>
        handle(msgs).pipe(
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
              if (!Queue.unsafeOffer(inbox, msg)) dropped += eventsIn(msg.data)
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
