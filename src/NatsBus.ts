/**
 * The Data Bus on NATS, for a gateway split over several processes or machines.
 *
 * Two kinds of process:
 *
 * - The feed process runs the providers, the Orchestrator, the Control Plane
 *   and the execution venue. Its Dispatcher (`layerFeedDispatcher`) does not
 *   deliver market data locally: it publishes each event once on
 *   `md.<provider>.<symbol>.<kind>` (core NATS, at most once) and recycles it.
 *   Its Data Bus (`layerFeedDataBus`) carries critical events (execution
 *   reports, control acks and results) to consumers in other processes over
 *   JetStream, on `critical.<consumerId>`, and completes only once the server
 *   has stored them.
 *
 * - A strategy process runs consumers. Its Data Bus (`layerStrategyDataBus`)
 *   is the in-memory one (each consumer's `Mailbox`, with latest-wins market
 *   lane and lossless critical lane), plus, for each registered consumer, its
 *   durable JetStream consumer feeding the critical lane: a critical event is
 *   acknowledged once the consumer's lambda has run, so a crash redelivers it.
 *   Market data comes in through `MarketSubscriber` (one NATS subscription per
 *   route) into the local Dispatcher, which orders, fans out and coalesces as
 *   in memory. `NatsConsumers.start` starts a consumer and keeps the process's
 *   NATS interest in step with its routes.
 *
 * The Control Bus: `layerStrategyControlBus` sends commands over JetStream
 * (`control.commands.<consumerId>`, `Nats-Msg-Id` = client order id or command id);
 * `layerFeedCommands` runs the feed's Control Plane on them, acknowledging
 * each once handled. Replies come back on `critical.<consumerId>`.
 *
 * Pooled objects never cross a process: what arrives is decoded into an event
 * from the local pool and recycled locally.
 */
import { Effect, Either, Layer } from "effect"
import { createHash } from "node:crypto"
import { type ControlCommand, decodeControlJsonCommand } from "../schema/Control.js"
import type { EventKind } from "../schema/Event.js"
import { isCritical } from "../schema/Event.js"
import type { ConsumerHandle, ConsumerSpec } from "./Consumer.js"
import { Consumers } from "./Consumer.js"
import { ControlBus, type ControlBusShape, recordInvalidCommand } from "./ControlBus.js"
import { ControlPlane } from "./ControlPlane.js"
import { DataBus, type DataBusShape, type Endpoint, type MailboxStats } from "./DataBus.js"
import { DeadLetter } from "./DeadLetter.js"
import { Dispatcher, type DispatcherStats, type RouteKey } from "./Dispatcher.js"
import type { UnknownConsumer } from "./Errors.js"
import type { AnyEvent } from "./Event.js"
import { Histogram } from "./internal/histogram.js"
import { CommandConsumer, CommandPublisher } from "./nats/Commands.js"
import { CriticalPublisher, CriticalSubscriber } from "./nats/CriticalChannel.js"
import { ControlProgress } from "./nats/Heartbeat.js"
import { MarketPublisher, type MarketSubscribeFailed, MarketSubscriber } from "./nats/Market.js"
import { commandSubject } from "./nats/Subjects.js"
import { generationOf, Recycler } from "./Recycler.js"

const remoteStats = (consumerId: string): MailboxStats => ({
  consumerId,
  marketDepth: 0,
  criticalDepth: 0,
  criticalHighWaterMark: 0,
  offered: 0,
  coalesced: 0,
  criticalOffered: 0
})

/**
 * Strategy side: in-memory mailboxes, each registered consumer's critical
 * lane fed by its durable JetStream consumer for as long as it is registered.
 */
export const layerStrategyDataBus: Layer.Layer<DataBus, never, Recycler | CriticalSubscriber> = Layer.effect(
  DataBus,
  Effect.gen(function*() {
    const memory = yield* DataBus
    const critical = yield* CriticalSubscriber
    return {
      ...memory,
      register: (consumerId, options) =>
        memory.register(consumerId, options).pipe(Effect.tap((box) => critical.attach(consumerId, box)))
    } satisfies DataBusShape
  })
).pipe(Layer.provide(DataBus.layerMemory))

/**
 * Feed side: consumers registered in this process get in-memory mailboxes; a
 * consumer in another process is reached through JetStream, critical events
 * only (market data goes out once per event, by the feed Dispatcher). The
 * consumers heard of (named by a command or a critical event) are listed by
 * `mailboxes()`, so a routing flip acknowledges its new version to each.
 */
export const layerFeedDataBus: Layer.Layer<DataBus, never, Recycler | CriticalPublisher> = Layer.effect(
  DataBus,
  Effect.gen(function*() {
    const memory = yield* DataBus
    const critical = yield* CriticalPublisher
    const recycler = yield* Recycler
    const remote = new Set<string>()
    let undeliverable = 0

    const deliverRemote = (consumerId: string, e: AnyEvent): Effect.Effect<void> => {
      if (isCritical(e.kind)) {
        remote.add(consumerId)
        return critical.publish(e)
      }
      undeliverable++
      recycler.unsafeRecycle(e, generationOf(e))
      return Effect.void
    }

    const endpoint = (consumerId: string): Endpoint => {
      const local = memory.endpoint(consumerId)
      if (local !== undefined) return local
      remote.add(consumerId)
      return { consumerId, offer: () => false, deliver: (e) => deliverRemote(consumerId, e) }
    }

    return {
      register: memory.register,
      endpoint,
      publish: (consumerId, e) =>
        memory.endpoint(consumerId) !== undefined ? memory.publish(consumerId, e) : deliverRemote(consumerId, e),
      mailboxes: () => {
        const local = memory.mailboxes()
        const here = new Set(local.map((m) => m.consumerId))
        return [...local, ...[...remote].filter((id) => !here.has(id)).map(remoteStats)]
      },
      stats: () => ({ undeliverable: memory.stats().undeliverable + undeliverable })
    } satisfies DataBusShape
  })
).pipe(Layer.provide(DataBus.layerMemory))

const routeId = (k: RouteKey) => `${k.merged ? "merged" : "raw"}|${k.symbol}|${k.kind}`

/**
 * Feed side: a Dispatcher that publishes each market-data event once on its
 * NATS subject (whoever listens) and sends each critical event to the
 * consumer it names through the Data Bus. Subscriptions are kept as a record
 * of who listens where (consumers live in other processes); they do not
 * change what is published.
 */
export const layerFeedDispatcher: Layer.Layer<Dispatcher, never, DataBus | MarketPublisher | Recycler> = Layer.effect(
  Dispatcher,
  Effect.gen(function*() {
    const bus = yield* DataBus
    const market = yield* MarketPublisher
    const recycler = yield* Recycler
    const routes = new Map<string, Set<string>>()
    const byConsumer = new Map<string, Set<string>>()
    let dispatched = 0
    let deliveries = 0
    let failures = 0

    const dispatch = (e: AnyEvent): Effect.Effect<void> => Effect.suspend(() => dispatchNow(e))

    const dispatchNow = (e: AnyEvent): Effect.Effect<void> => {
      dispatched++
      if (isCritical(e.kind)) {
        const owner = (e.payload as { readonly consumerId?: string } | undefined)?.consumerId
        if (owner === undefined) {
          const traceId = e.traceId
          const kind: EventKind = e.kind
          recycler.unsafeRecycle(e, generationOf(e))
          return Effect.logError("critical event without an owner").pipe(Effect.annotateLogs({ trace_id: traceId, kind }))
        }
        deliveries++
        return bus.publish(owner, e)
      }
      if (market.unsafePublish(e)) deliveries++
      else failures++
      return Effect.void
    }

    const subscribe = (consumerId: string, key: RouteKey): Effect.Effect<void, UnknownConsumer> =>
      Effect.sync(() => {
        bus.endpoint(consumerId)
        const id = routeId(key)
        let subs = routes.get(id)
        if (subs === undefined) routes.set(id, subs = new Set())
        subs.add(consumerId)
        let mine = byConsumer.get(consumerId)
        if (mine === undefined) byConsumer.set(consumerId, mine = new Set())
        mine.add(id)
      })

    const unsubscribe = (consumerId: string, key: RouteKey): Effect.Effect<void> =>
      Effect.sync(() => {
        const id = routeId(key)
        routes.get(id)?.delete(consumerId)
        byConsumer.get(consumerId)?.delete(id)
      })

    const removeConsumer = (consumerId: string): Effect.Effect<void> =>
      Effect.sync(() => {
        for (const id of byConsumer.get(consumerId) ?? []) routes.get(id)?.delete(consumerId)
        byConsumer.delete(consumerId)
      })

    const empty = new Histogram()
    const stats = (): DispatcherStats => ({
      dispatched,
      deliveries,
      noSubscriber: 0,
      fanouts: 0,
      deliveryFailures: failures,
      gapsSkipped: 0,
      gapEvents: 0,
      duplicates: 0,
      late: 0,
      buffered: 0,
      suspectJumps: 0,
      resyncs: 0,
      epochResets: 0,
      fanoutDuration: empty.summary(),
      maxParallelism: 1
    })

    return Dispatcher.make({
      dispatch,
      subscribe,
      unsubscribe,
      removeConsumer,
      subscribersOf: (key) => [...(routes.get(routeId(key)) ?? [])],
      stats
    })
  })
)

/** A consumer started by `NatsConsumers`: its route changes also move the process's NATS interest. */
export interface NatsConsumerHandle extends Omit<ConsumerHandle, "subscribe"> {
  readonly subscribe: (key: RouteKey) => Effect.Effect<void, UnknownConsumer | MarketSubscribeFailed>
}

/**
 * Strategy side: starts consumers as `Consumers.start` does, and listens on
 * the NATS subjects of their routes for as long as they hold them.
 */
export class NatsConsumers extends Effect.Service<NatsConsumers>()("meltica/NatsConsumers", {
  effect: Effect.gen(function*() {
    const consumers = yield* Consumers
    const market = yield* MarketSubscriber

    const start = Effect.fn("NatsConsumers.start")(function*<E>(spec: ConsumerSpec<E>) {
      const { subscriptions, ...rest } = spec
      const handle = yield* consumers.start(rest)
      const subscribe = (key: RouteKey) => Effect.zipRight(handle.subscribe(key), market.subscribe(spec.id, key))
      const stop = Effect.zipRight(handle.stop, market.removeConsumer(spec.id))
      yield* Effect.forEach(subscriptions ?? [], subscribe, { discard: true }).pipe(Effect.tapErrorCause(() => stop))
      yield* market.flush
      return {
        ...handle,
        subscribe,
        unsubscribe: (key: RouteKey) => Effect.zipRight(handle.unsubscribe(key), market.unsubscribe(spec.id, key)),
        stop
      } satisfies NatsConsumerHandle
    })

    return { start } as const
  })
}) {}

/**
 * Strategy side: the Control Bus over JetStream. Commands go to the feed
 * process's Control Plane on `control.commands.<consumerId>` (stored once, whatever the
 * retries); its ControlAck and ControlResult come back on the consumer's
 * critical lane. Subscribe, SubscribeMerged and Unsubscribe are also applied
 * here, where the consumer lives: its route in the local Dispatcher and the
 * process's NATS interest. A command that does not decode is counted and
 * dead-lettered here, and still forwarded as it is, so the Control Plane
 * answers the consumer it names with the typed rejection.
 */
export const layerStrategyControlBus: Layer.Layer<
  ControlBus,
  never,
  CommandPublisher | Dispatcher | MarketSubscriber
> = Layer.effect(
  ControlBus,
  Effect.gen(function*() {
    const publisher = yield* CommandPublisher
    const dispatcher = yield* Dispatcher
    const market = yield* MarketSubscriber
    const deadLetter = yield* Effect.serviceOption(DeadLetter)
    let submitted = 0
    let malformed = 0

    const routesOf = (cmd: ControlCommand): ReadonlyArray<RouteKey> => {
      switch (cmd._tag) {
        case "Subscribe":
        case "Unsubscribe":
          return cmd.kinds.map((kind) => ({ symbol: cmd.symbol, kind, merged: false }))
        case "SubscribeMerged":
          return [{ symbol: cmd.symbol, kind: cmd.kind, merged: true }]
        default:
          return []
      }
    }

    const applyLocally = (cmd: ControlCommand): Effect.Effect<void> => {
      const routes = routesOf(cmd)
      if (routes.length === 0) return Effect.void
      return Effect.forEach(routes, (key) =>
        cmd._tag === "Unsubscribe"
          ? Effect.zipRight(dispatcher.unsubscribe(cmd.consumerId, key), market.unsubscribe(cmd.consumerId, key))
          : Effect.zipRight(dispatcher.subscribe(cmd.consumerId, key), market.subscribe(cmd.consumerId, key)), {
        discard: true
      }).pipe(
        Effect.zipRight(market.flush),
        Effect.catchAll((e) =>
          Effect.logWarning("subscription not applied in this process", e).pipe(
            Effect.annotateLogs({ consumer_id: cmd.consumerId, command_id: cmd.commandId })
          )
        )
      )
    }

    const submit = (command: ControlCommand): Effect.Effect<void> =>
      Effect.suspend(() => {
        submitted++
        return Effect.zipRight(applyLocally(command), publisher.submit(command))
      })

    const submitJson = (raw: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        const decoded = decodeControlJsonCommand(raw)
        if (Either.isRight(decoded)) return submit(decoded.right)
        malformed++
        // forwarded on the named consumer's subject, so the feed answers it; naming none, there is no one to answer
        const forward = decoded.left.consumerId === "unknown"
          ? Effect.void
          : publisher.sendRaw(
            raw,
            `invalid:${createHash("sha1").update(raw).digest("hex")}`,
            commandSubject(decoded.left.consumerId)
          )
        return Effect.zipRight(recordInvalidCommand(deadLetter, decoded.left, raw), forward)
      })

    return { submit, submitJson, stats: () => ({ submitted, malformed }) } satisfies ControlBusShape
  })
)

/**
 * Feed side: the Control Plane takes the commands of every strategy process
 * from JetStream, in order, for the life of the layer; each is acknowledged
 * once handled (its ack and result stored on the consumer's critical stream).
 */
export const layerFeedCommands: Layer.Layer<never, never, CommandConsumer | ControlPlane | ControlProgress> = Layer
  .scopedDiscard(
    Effect.gen(function*() {
      const commands = yield* CommandConsumer
      const plane = yield* ControlPlane
      // each command's start and end are tracked: a Control Plane stuck on one is not ready
      const progress = yield* ControlProgress
      yield* commands.run({
        handle: (command) => progress.track(plane.handle(command)),
        reject: (invalid) => progress.track(plane.reject(invalid))
      })
    })
  )
