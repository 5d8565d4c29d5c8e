/**
 * Consumers in a strategy process on NATS: `Consumers.start`, plus the
 * process's NATS interest (one subscription per route) kept in step with the
 * routes the consumer holds.
 */
import { Effect } from "effect"
import type { ConsumerHandle, ConsumerSpec } from "../Consumer.js"
import { Consumers } from "../Consumer.js"
import type { RouteKey } from "../Dispatcher.js"
import type { UnknownConsumer } from "../Errors.js"
import { type MarketSubscribeFailed, MarketSubscriber } from "./Market.js"

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
