/**
 * Control commands over JetStream, on `control.commands.<consumerId>` (a
 * strategy's) and `control.operator.<operatorId>` (routing, an operator's).
 *
 * Strategy side, `CommandPublisher`: a command is sent in its canonical wire
 * form (a `ControlEnvelope` as JSON) with a `Nats-Msg-Id` made from the
 * command's own ids (`commandMsgId`). It is retried with the same id until the
 * server has stored it, so a command is stored once whatever the retries; a
 * new command (a new command id) resubmitting a client order id is stored and
 * answered: the venue, idempotent by client order id, gives the existing order
 * back, or a `DuplicateClientOrderId` when the terms differ.
 *
 * Feed side, `CommandConsumer`: `run(handlers)` takes the commands in order
 * from the durable consumer `control-plane` and acknowledges each one only
 * once its handler has completed (its ack and result, and any execution
 * reports, are stored by then). A crash before that leaves it unacknowledged
 * and the server redelivers it; the venue is idempotent by client order id and
 * the replies carry the same ids, so a redelivery changes nothing twice. A
 * frame that is not a valid command is a typed `InvalidCommand`: counted,
 * dead-lettered, answered with a rejection when it names its consumer, and
 * acknowledged.
 *
 * Identity is the subject, which the server's permissions bind to a user
 * (see `src/nats/Permissions.ts`): a command whose `consumerId` is not the one
 * its subject names is refused as forged, and an operator command (StageRouting,
 * FlipRouting, a KillSwitch beyond the sender's own orders) is taken only from
 * an operator subject. Refused commands are
 * counted, logged, dead-lettered and acknowledged, and never answered (the
 * answer would go to the consumer the payload claims, not to the sender).
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Effect, Either, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import type { ControlCommand } from "../../schema/Control.js"
import {
  decodeControlJsonCommand,
  encodeControlJson,
  envelope,
  formatParseError,
  isOperatorKillSwitch
} from "../../schema/Control.js"
import type { InvalidCommand } from "../../schema/Errors.js"
import { CommandRefused } from "./Errors.js"
import { DeadLetter } from "../DeadLetter.js"
import { publishUntilStored } from "./CriticalChannel.js"
import { NatsConnection } from "./Connection.js"
import { PoisonCount, runDurable } from "./internal/durable.js"
import { digestId } from "./internal/ids.js"
import { commandsStream, ensureStream, untilReady } from "./Streams.js"
import {
  commandSubject,
  COMMANDS_DURABLE,
  COMMANDS_STREAM,
  CONTROL_SUBJECTS,
  isSender,
  operatorSubject,
  senderOf
} from "./Subjects.js"

/**
 * The `Nats-Msg-Id` of a command: the digest of (consumer, client order id,
 * command id) for `SubmitOrder`, of (consumer, command id) for anything else;
 * bounded whatever the ids (`internal/ids.ts`). The command id is part of an
 * order's id: JetStream drops a message whose id it has seen, so an id of the
 * client order id alone would drop a resubmission unanswered (its ControlResult
 * never comes, and a caller waiting on it waits for ever).
 */
export const commandMsgId = (command: ControlCommand): string =>
  command._tag === "SubmitOrder"
    ? digestId("order", command.consumerId, command.clientOrderId, command.commandId)
    : digestId("cmd", command.consumerId, command.commandId)

/**
 * Commands an operator only may send: those that change the routing table,
 * and a kill switch beyond the sender's own orders (the whole gateway's, or
 * another consumer's).
 */
export const isOperatorCommand = (command: ControlCommand): boolean =>
  command._tag === "StageRouting" || command._tag === "FlipRouting" ||
  (command._tag === "KillSwitch" && isOperatorKillSwitch(command))

/** The subject a command is sent on: the operator's for operator commands, else its consumer's. */
export const commandSubjectOf = (command: ControlCommand): string =>
  isOperatorCommand(command) ? operatorSubject(command.consumerId) : commandSubject(command.consumerId)

export interface CommandPublisherStats {
  readonly submitted: number
  readonly duplicates: number
  readonly retries: number
  /** Commands the server refused for good (too large for it): dropped, logged. */
  readonly failed: number
}

export class CommandPublisher extends Effect.Service<CommandPublisher>()("meltica/nats/CommandPublisher", {
  effect: Effect.gen(function*() {
    const { js } = yield* NatsConnection
    yield* untilReady("commands stream", ensureStream(commandsStream))
    // A secret of this run in every message id: JetStream de-duplicates ids across the whole
    // commands stream, whoever publishes, so an id another user could compute would let it have
    // this process's command dropped as a duplicate. Retries of a command in this run keep one id.
    const salt = randomBytes(16).toString("hex")
    let submitted = 0
    let duplicates = 0
    let retries = 0
    let failed = 0
    const onRetry = () => {
      retries++
    }

    /** Sends JSON text as it is (already a control envelope, or to be rejected by the feed) on `subject`. */
    const sendRaw = (text: string, msgId: string, subject: string): Effect.Effect<void> =>
      publishUntilStored(js, subject, text, msgId, onRetry).pipe(
        Effect.match({
          onSuccess: (ack) => {
            submitted++
            if (ack.duplicate) duplicates++
          },
          onFailure: (e) => e
        }),
        Effect.flatMap((e) => {
          if (e === undefined) return Effect.void
          failed++
          return Effect.logError("command refused by the server; dropped", e).pipe(
            Effect.annotateLogs({ subject, bytes: text.length })
          )
        })
      )

    /** Completes once the server has stored the command. */
    const submit = (command: ControlCommand): Effect.Effect<void> =>
      Effect.suspend(() => {
        const text = encodeControlJson(envelope(command))
        if (Either.isLeft(text)) {
          // a command value that does not fit its own schema is a programming error
          return Effect.dieMessage(`command ${command.commandId} does not encode: ${formatParseError(text.left)}`)
        }
        return sendRaw(text.right, digestId("cmd", salt, commandMsgId(command)), commandSubjectOf(command))
      })

    return {
      submit,
      sendRaw,
      stats: (): CommandPublisherStats => ({ submitted, duplicates, retries, failed })
    } as const
  })
}) {}

export interface CommandHandlers {
  readonly handle: (command: ControlCommand) => Effect.Effect<void>
  readonly reject: (invalid: InvalidCommand) => Effect.Effect<void>
}

export interface CommandConsumerStats {
  readonly handled: number
  readonly invalid: number
  /** Refused: the payload's consumer id is not the one the subject names (or the subject names none). */
  readonly forged: number
  /** Refused: a routing command from a strategy subject. */
  readonly unauthorized: number
  readonly redelivered: number
  /** Malformed commands terminated (never redelivered), and messages whose handling died (see `runDurable`). */
  readonly terminated: number
}

export class CommandConsumer extends Effect.Service<CommandConsumer>()("meltica/nats/CommandConsumer", {
  effect: Effect.gen(function*() {
    const connection = yield* NatsConnection
    const deadLetter = yield* Effect.serviceOption(DeadLetter)
    yield* untilReady("commands stream", ensureStream(commandsStream))
    let handled = 0
    let invalid = 0
    let redelivered = 0
    let forged = 0
    let unauthorized = 0
    let terminated = 0
    const poisoned = new PoisonCount()
    const utf8 = new TextDecoder()

    /** Refused for who sent it: counted, logged, dead-lettered, acknowledged, not answered. */
    const refuse = (msg: JsMsg, text: string, refusal: CommandRefused["refusal"], command: ControlCommand) => {
      const refused = new CommandRefused({
        refusal,
        subject: msg.subject,
        command: command._tag,
        commandId: command.commandId,
        consumerId: command.consumerId
      })
      const letter = deadLetter._tag === "Some"
        ? deadLetter.value.record(`nats:${msg.subject}`, refused.message, text)
        : Effect.void
      const logged = Effect.logWarning("control command refused", refused).pipe(
        Effect.annotateLogs({
          refusal,
          subject: msg.subject,
          command: command._tag,
          command_id: command.commandId,
          consumer_id: command.consumerId
        })
      )
      return Effect.all([letter, logged, ack(msg)], { discard: true })
    }

    const ack = (msg: JsMsg) =>
      Effect.sync(() => {
        try {
          msg.ack()
        } catch {
          // connection closed: the server redelivers the command, which is idempotent
        }
      })

    /** A malformed command is poison: redelivering it cannot help, so it is terminated rather than acknowledged. */
    const term = (msg: JsMsg) =>
      Effect.sync(() => {
        try {
          msg.term()
          terminated++
        } catch {
          // connection closed: the server redelivers it, and it is rejected again
        }
      })

    const onMessage = (handlers: CommandHandlers) => (msg: JsMsg): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (msg.redelivered) redelivered++
        const text = utf8.decode(msg.data)
        const decoded = decodeControlJsonCommand(text)
        const sender = senderOf(msg.subject)
        if (Either.isRight(decoded)) {
          const command = decoded.right
          if (sender === undefined || !isSender(sender, command.consumerId)) {
            forged++
            return refuse(msg, text, "forged", command)
          }
          if (sender.role !== "operator" && isOperatorCommand(command)) {
            unauthorized++
            return refuse(msg, text, "unauthorized", command)
          }
          handled++
          return handlers.handle(command).pipe(
            Effect.catchAllCause((cause) =>
              Effect.logError("command handler died", cause).pipe(
                Effect.annotateLogs({ command: command._tag, command_id: command.commandId, consumer_id: command.consumerId })
              )
            ),
            Effect.zipRight(ack(msg))
          )
        }
        invalid++
        const rejection = decoded.left
        const letter = deadLetter._tag === "Some"
          ? deadLetter.value.record("nats:control.commands", rejection.reason, text)
          : Effect.void
        const logged = Effect.logWarning("invalid control command", rejection).pipe(
          Effect.annotateLogs({ consumer_id: rejection.consumerId, command_id: rejection.commandId })
        )
        // answered only when the subject names the consumer the rejection is for
        const answer = sender === undefined || !isSender(sender, rejection.consumerId)
          ? Effect.void
          : handlers.reject(rejection)
        return Effect.all([letter, logged, answer, term(msg)], { discard: true })
      })

    /** Takes commands for the life of the scope. */
    const run = (handlers: CommandHandlers): Effect.Effect<void, never, Scope.Scope> =>
      runDurable({
        stream: COMMANDS_STREAM,
        durable: COMMANDS_DURABLE,
        filterSubject: CONTROL_SUBJECTS,
        onMessage: onMessage(handlers),
        poisoned
      }).pipe(Effect.provideService(NatsConnection, connection))

    return {
      run,
      stats: (): CommandConsumerStats => ({
        handled,
        invalid,
        forged,
        unauthorized,
        redelivered,
        terminated: terminated + poisoned.count
      })
    } as const
  })
}) {}
