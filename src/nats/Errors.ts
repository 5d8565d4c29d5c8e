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

/**
 * A feed that would run the Control Plane found another feed holding it (the
 * lease in the key-value bucket `bucket`, held by `holder`) for longer than
 * the lease's time to live: exactly one feed process takes commands, so this
 * one does not start. Run it as a market-data-only feed, or stop the other.
 */
export class ControlPlaneTaken extends Schema.TaggedError<ControlPlaneTaken>()("ControlPlaneTaken", {
  bucket: Schema.String,
  holder: Schema.String,
  waitedMs: Schema.Number
}) {
  override get message(): string {
    return `another feed process (${this.holder}) runs the Control Plane (lease in bucket ${this.bucket}, waited ${this.waitedMs} ms): ` +
      "exactly one feed takes commands; run this one as a market-data-only feed, or stop the other"
  }
}

export const reasonOf = (u: unknown): string => (u instanceof Error ? `${u.name}: ${u.message}` : String(u))
