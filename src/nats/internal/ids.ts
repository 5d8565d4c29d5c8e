/**
 * `Nats-Msg-Id`s. JetStream refuses a message whose headers exceed 64 KB, and
 * an id is chosen from what a payload says (a client order id, a command id),
 * so an id is never the raw input: it is a readable prefix and the SHA-256 of
 * its parts (51 characters whatever the input). The same parts always give the
 * same id, so retries and redeliveries still de-duplicate.
 */
import { createHash } from "node:crypto"

export const digestId = (prefix: string, ...parts: ReadonlyArray<string | number>): string =>
  `${prefix}:${createHash("sha256").update(parts.join("\u0000")).digest("base64url")}`
