/**
 * Errors at the NATS boundary. Each names what an operator needs: the server,
 * the subject or stream, and the client's own reason.
 */
import { Schema } from "effect"

/** The client could not connect (the servers it tried, and why). */
export class NatsConnectFailed extends Schema.TaggedError<NatsConnectFailed>()("NatsConnectFailed", {
  servers: Schema.String,
  reason: Schema.String
}) {}

/** A JetStream stream or durable consumer could not be set up. */
export class NatsSetupFailed extends Schema.TaggedError<NatsSetupFailed>()("NatsSetupFailed", {
  stream: Schema.String,
  consumer: Schema.optional(Schema.String),
  reason: Schema.String
}) {}

/** A JetStream publish that the server did not acknowledge. */
export class NatsPublishFailed extends Schema.TaggedError<NatsPublishFailed>()("NatsPublishFailed", {
  subject: Schema.String,
  msgId: Schema.String,
  reason: Schema.String
}) {}

/**
 * A command refused for who sent it, on the feed: its consumer id is not the
 * one its subject names (`forged`), or it changes the routing table and did not
 * come from an operator subject (`unauthorized`). Counted, logged and
 * dead-lettered as this value, and never answered (an answer would go to the
 * consumer the payload claims, not to the sender).
 */
export class CommandRefused extends Schema.TaggedError<CommandRefused>()("CommandRefused", {
  refusal: Schema.Literal("forged", "unauthorized"),
  subject: Schema.String,
  command: Schema.String,
  commandId: Schema.String,
  consumerId: Schema.String
}) {
  override get message(): string {
    return this.refusal === "forged"
      ? `${this.command} ${this.commandId}: consumer id ${this.consumerId} does not match the subject ${this.subject}`
      : `${this.command} ${this.commandId}: taken from an operator only (sent on ${this.subject})`
  }
}

export const reasonOf = (u: unknown): string => (u instanceof Error ? `${u.name}: ${u.message}` : String(u))
