/**
 * The Control Bus: carries consumers' commands to the Control Plane, one at a
 * time and in the order they were sent.
 *
 * `ControlBus` is a port: `layerMemory` is the embedded default. A command
 * that does not decode (malformed JSON, an unknown command, a field out of
 * range) is counted, dead-lettered, and answered with a typed rejection when
 * its consumer can be told; it changes nothing else.
 */
import { Context, Effect, Either, Layer, Option, Queue } from "effect"
import type { ControlCommand } from "../schema/Control.js"
import { decodeControlJsonCommand } from "../schema/Control.js"
import type { InvalidCommand } from "../schema/Errors.js"
import { ControlPlane } from "./ControlPlane.js"
import { DeadLetter } from "./DeadLetter.js"

/** A command that does not decode: dead-lettered (when a dead-letter queue is present) and logged. */
export const recordInvalidCommand = (
  deadLetter: Option.Option<DeadLetter>,
  invalid: InvalidCommand,
  raw: string
): Effect.Effect<void> =>
  Effect.zipRight(
    Option.isSome(deadLetter) ? deadLetter.value.record("control", invalid.reason, raw) : Effect.void,
    Effect.logWarning("invalid control command").pipe(
      Effect.annotateLogs({ consumer_id: invalid.consumerId, command_id: invalid.commandId, reason: invalid.reason })
    )
  )

export interface ControlBusStats {
  readonly submitted: number
  readonly malformed: number
}

export interface ControlBusShape {
  /** Sends a command; its ack and result arrive on the consumer's critical lane. */
  readonly submit: (command: ControlCommand) => Effect.Effect<void>
  /** Sends a command in its wire form (a `ControlEnvelope` as JSON). */
  readonly submitJson: (raw: string) => Effect.Effect<void>
  readonly stats: () => ControlBusStats
}

export class ControlBus extends Context.Tag("meltica/ControlBus")<ControlBus, ControlBusShape>() {
  /** In this process: a queue drained by one fiber, so commands apply in order. */
  static readonly layerMemory: Layer.Layer<ControlBus, never, ControlPlane> = Layer.scoped(
    ControlBus,
    Effect.gen(function*() {
      const plane = yield* ControlPlane
      const deadLetter = yield* Effect.serviceOption(DeadLetter)
      const inbox = yield* Queue.unbounded<
        { readonly _tag: "Command"; readonly command: ControlCommand } | {
          readonly _tag: "Invalid"
          readonly invalid: InvalidCommand
        }
      >()
      let submitted = 0
      let malformed = 0

      yield* Queue.take(inbox).pipe(
        Effect.flatMap((m) => (m._tag === "Command" ? plane.handle(m.command) : plane.reject(m.invalid))),
        Effect.forever,
        Effect.forkScoped
      )
      // commands already accepted are applied before the bus goes away
      yield* Effect.addFinalizer(() =>
        Queue.takeAll(inbox).pipe(
          Effect.flatMap(Effect.forEach((m) => (m._tag === "Command" ? plane.handle(m.command) : plane.reject(m.invalid)), {
            discard: true
          }))
        )
      )

      const submit = (command: ControlCommand) =>
        Effect.suspend(() => {
          submitted++
          return Queue.offer(inbox, { _tag: "Command", command })
        })

      const submitJson = (raw: string) =>
        Effect.suspend(() => {
          const decoded = decodeControlJsonCommand(raw)
          if (Either.isRight(decoded)) return submit(decoded.right)
          malformed++
          const invalid = decoded.left
          // a rejection can only be sent to a consumer the command names
          const answer = invalid.consumerId === "unknown"
            ? Effect.void
            : Queue.offer(inbox, { _tag: "Invalid", invalid })
          return Effect.zipRight(recordInvalidCommand(deadLetter, invalid, raw), answer)
        })

      return { submit, submitJson, stats: () => ({ submitted, malformed }) }
    })
  )
}
