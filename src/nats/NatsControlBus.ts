/**
 * The Control Bus on NATS (imported as a module: `NatsControlBus.layerStrategy`,
 * `NatsControlBus.layerFeed`, beside `ControlBus.layerMemory`).
 *
 * A strategy process (`layerStrategy`) sends commands over JetStream on
 * `control.commands.<consumerId>` (`Nats-Msg-Id` = client order id or command
 * id); the feed process (`layerFeed`) runs its Control Plane on them,
 * acknowledging each once handled. Replies come back on `critical.<consumerId>`.
 */
import { Effect, Either, Layer } from "effect"
import { createHash } from "node:crypto"
import { type ControlCommand, decodeControlJsonCommand } from "../../schema/Control.js"
import { ControlBus, type ControlBusShape, recordInvalidCommand } from "../ControlBus.js"
import { ControlPlane } from "../ControlPlane.js"
import { DeadLetter } from "../DeadLetter.js"
import { Dispatcher, type RouteKey } from "../Dispatcher.js"
import { CommandConsumer, CommandPublisher } from "./Commands.js"
import { CriticalPublisher } from "./CriticalChannel.js"
import { ControlProgress } from "./Heartbeat.js"
import { MarketSubscriber } from "./Market.js"
import { commandSubject } from "./Subjects.js"

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
export const layerStrategy: Layer.Layer<
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
 * once handled and once what it produced is stored (its ack and result, and
 * any execution reports, on the consumer's critical stream: the critical
 * publisher pipelines, so handling returns before the server has them).
 */
export const layerFeed: Layer.Layer<never, never, CommandConsumer | ControlPlane | ControlProgress | CriticalPublisher> =
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const commands = yield* CommandConsumer
      const plane = yield* ControlPlane
      const critical = yield* CriticalPublisher
      // each command's start and end are tracked: a Control Plane stuck on one is not ready
      const progress = yield* ControlProgress
      yield* commands.run({
        handle: (command) => progress.track(Effect.zipRight(plane.handle(command), critical.whenStored)),
        reject: (invalid) => progress.track(Effect.zipRight(plane.reject(invalid), critical.whenStored))
      })
    })
  )
