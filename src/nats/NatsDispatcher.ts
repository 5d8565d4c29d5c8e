/**
 * The feed process's Dispatcher on NATS (`NatsDispatcher.layerFeed`): market
 * data is published once per event for whichever process listens, critical
 * events go to the consumer they name through the Data Bus. A strategy
 * process uses the in-memory Dispatcher (`Dispatcher.Default`). A
 * market-data-only feed uses `layerMarketFeed`, which stamps the Control
 * Plane feed's routing version on its market data.
 */
import { Effect, Layer } from "effect"
import type { EventKind } from "../../schema/Event.js"
import { isCritical } from "../../schema/Event.js"
import { DataBus } from "../DataBus.js"
import { Dispatcher, type DispatcherStats, type RouteKey } from "../Dispatcher.js"
import type { UnknownConsumer } from "../Errors.js"
import type { AnyEvent } from "../Event.js"
import { Histogram } from "../internal/histogram.js"
import { generationOf, Recycler } from "../Recycler.js"
import { MarketPublisher } from "./Market.js"
import { RoutingFollower } from "./Routing.js"

const routeId = (k: RouteKey) => `${k.merged ? "merged" : "raw"}|${k.symbol}|${k.kind}`

/**
 * Feed side: a Dispatcher that publishes each market-data event once on its
 * NATS subject (whoever listens) and sends each critical event to the
 * consumer it names through the Data Bus. Subscriptions are kept as a record
 * of who listens where (consumers live in other processes); they do not
 * change what is published.
 */
const makeFeed = (routingVersion: (() => number) | undefined) =>
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
      if (routingVersion !== undefined) e.routingVersion = routingVersion()
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
      unsafeDispatch: dispatchNow,
      subscribe,
      unsubscribe,
      removeConsumer,
      subscribersOf: (key) => [...(routes.get(routeId(key)) ?? [])],
      stats
    })
  })

export const layerFeed: Layer.Layer<Dispatcher, never, DataBus | MarketPublisher | Recycler> = Layer.effect(
  Dispatcher,
  makeFeed(undefined)
)

/**
 * A market-data-only feed's Dispatcher: as `layerFeed`, and each market-data
 * event is stamped with the Control Plane feed's routing version as last
 * announced (`Routing.ts`), since this process has no routing of its own.
 */
export const layerMarketFeed: Layer.Layer<Dispatcher, never, DataBus | MarketPublisher | Recycler | RoutingFollower> =
  Layer.effect(
    Dispatcher,
    Effect.flatMap(RoutingFollower, (follower) => makeFeed(follower.version))
  )
