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

export const reasonOf = (u: unknown): string => (u instanceof Error ? `${u.name}: ${u.message}` : String(u))
