/**
 * The Data Bus on NATS, for a gateway split over several processes or machines
 * (imported as a module: `NatsDataBus.layerFeed`, `NatsDataBus.layerStrategy`,
 * beside `DataBus.layerMemory`).
 *
 * Two kinds of process:
 *
 * - The feed process runs the providers, the Orchestrator, the Control Plane
 *   and the execution venue. Its Dispatcher (`NatsDispatcher.layerFeed`) does
 *   not deliver market data locally: it publishes each event once on
 *   `md.<provider>.<symbol>.<kind>` (core NATS, at most once) and recycles it.
 *   Its Data Bus (`layerFeed`) carries critical events (execution reports,
 *   control acks and results) to consumers in other processes over
 *   JetStream, on `critical.<consumerId>`, and completes only once the server
 *   has stored them.
 *
 * - A strategy process runs consumers. Its Data Bus (`layerStrategy`) is the
 *   in-memory one (each consumer's `Mailbox`, with latest-wins market lane and
 *   lossless critical lane), plus, for each registered consumer, its durable
 *   JetStream consumer feeding the critical lane: a critical event is
 *   acknowledged once the consumer's lambda has run, so a crash redelivers it.
 *   Market data comes in through `MarketSubscriber` (one NATS subscription per
 *   route) into the local Dispatcher, which orders, fans out and coalesces as
 *   in memory. `NatsConsumers.start` starts a consumer and keeps the process's
 *   NATS interest in step with its routes.
 *
 * The Control Bus is in `NatsControlBus`. Pooled objects never cross a
 * process: what arrives is decoded into an event from the local pool and
 * recycled locally.
 */
import { Effect, Layer } from "effect"
import { isCritical } from "../../schema/Event.js"
import { DataBus, type DataBusShape, type Endpoint, type MailboxStats } from "../DataBus.js"
import type { AnyEvent } from "../Event.js"
import { generationOf, Recycler } from "../Recycler.js"
import { CriticalPublisher, CriticalSubscriber } from "./CriticalChannel.js"

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
export const layerStrategy: Layer.Layer<DataBus, never, Recycler | CriticalSubscriber> = Layer.effect(
  DataBus,
  Effect.gen(function*() {
    const memory = yield* DataBus
    const critical = yield* CriticalSubscriber
    return {
      ...memory,
      // `endpoint`: a consumer that delivers in front of its mailbox (a strategy worker's rings) keeps it here too,
      // and its critical events from JetStream go through it as the Dispatcher's do (into a worker's ring at once
      // when there is room, else into the mailbox's critical lane, in order)
      register: (consumerId, options, endpoint) =>
        memory.register(consumerId, options, endpoint).pipe(Effect.tap((box) => {
          const at = endpoint === undefined ? undefined : memory.endpoint(consumerId)
          return critical.attach(
            consumerId,
            at === undefined ? box : {
              offer: (e) => {
                if (!at.offer(e)) box.offer(e)
              }
            }
          )
        }))
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
export const layerFeed: Layer.Layer<DataBus, never, Recycler | CriticalPublisher> = Layer.effect(
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
