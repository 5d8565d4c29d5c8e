/**
 * Errors that cross a boundary (a socket, a bus, a config file, an operator
 * endpoint). Each carries the context an operator needs to act on it.
 */
import { Schema } from "effect"

/** A frame from a venue or a bus that is not JSON, or not of a known shape. */
export class MalformedFrame extends Schema.TaggedError<MalformedFrame>()("MalformedFrame", {
  source: Schema.String,
  reason: Schema.String,
  raw: Schema.String
}) {}

/** An invalid control command: one of the typed rejections of `schema/Rejection.ts`. */
export { InvalidCommand } from "./Rejection.js"

/** One problem of a configuration, by path. */
export class ConfigIssue extends Schema.Class<ConfigIssue>("ConfigIssue")({
  path: Schema.String,
  message: Schema.String
}) {}

/** A configuration that cannot start the gateway: every problem is listed. */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  source: Schema.String,
  issues: Schema.Array(ConfigIssue)
}) {
  override get message(): string {
    return `invalid configuration (${this.source}):\n` +
      this.issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n")
  }
}
