/**
 * NATS subjects, stream and durable names.
 *
 * - Market data, core NATS, at most once: `md.<provider>.<symbol>.<kind>`;
 *   the Orchestrator's merged events: `md.merged.<symbol>.<kind>`.
 * - Critical events for one consumer, JetStream: `critical.<consumerId>`.
 * - Control commands, JetStream: a strategy's on `control.commands.<consumerId>`,
 *   an operator's on `control.operator.<operatorId>`. The subject is the
 *   sender's identity: the server's permissions let each user publish only on
 *   its own subjects, and the feed takes the consumer id from the subject
 *   (`senderOf`), never from the payload alone.
 * - Feed heartbeats, core NATS: `feed.heartbeat.<provider>`.
 * - The Control Plane feed's routing version, core NATS: `feed.routing`.
 *
 * A token keeps `[A-Za-z0-9_-]` as it is and writes any other UTF-8 byte as
 * `~HH` (so `.`, `*`, `>` and spaces never reach a subject, and two different
 * names never share a token). A provider literally named `merged` is written
 * `~merged`, which no escape produces, so it cannot collide with the merged
 * streams.
 */
import type { MarketKind } from "../../schema/Event.js"
import type { RouteKey } from "../Dispatcher.js"
import type { AnyEvent } from "../Event.js"

const plain = /^[A-Za-z0-9_-]+$/
const encoder = new TextEncoder()

/** One subject token for an arbitrary name. */
export const token = (name: string): string => {
  if (plain.test(name)) return name
  let out = ""
  for (const ch of name) {
    if (/[A-Za-z0-9_-]/.test(ch)) out += ch
    else for (const b of encoder.encode(ch)) out += "~" + b.toString(16).toUpperCase().padStart(2, "0")
  }
  return out === "" ? "~" : out
}

const MERGED = "merged"
export const MARKET_PREFIX = "md"
const MERGED_PREFIX = `${MARKET_PREFIX}.${MERGED}.`

const providerToken = (provider: string): string => (provider === MERGED ? `~${MERGED}` : token(provider))

/** The subject a market-data event is published on. */
export const marketSubject = (e: AnyEvent): string =>
  e._pool === "MergedEvent"
    ? `${MERGED_PREFIX}${token(e.symbol)}.${e.kind}`
    : `${MARKET_PREFIX}.${providerToken(e.provider)}.${token(e.symbol)}.${e.kind}`

/** The subject a route listens on: every provider's stream of (symbol, kind), or the merged one. */
export const routeSubject = (key: RouteKey): string =>
  key.merged
    ? `${MERGED_PREFIX}${token(key.symbol)}.${key.kind}`
    : `${MARKET_PREFIX}.*.${token(key.symbol)}.${key.kind satisfies MarketKind}`

/** True for a subject of the merged streams (which a raw route's wildcard also matches). */
export const isMergedSubject = (subject: string): boolean => subject.startsWith(MERGED_PREFIX)

export const CRITICAL_PREFIX = "critical"
export const criticalSubject = (consumerId: string): string => `${CRITICAL_PREFIX}.${token(consumerId)}`

const COMMANDS_PREFIX = "control.commands"
const OPERATOR_PREFIX = "control.operator"
/** Every control subject: what the commands stream holds and the feed's durable consumer takes. */
export const CONTROL_SUBJECTS = "control.>"

/** The subject a strategy's commands go on: only that consumer's user may publish there. */
export const commandSubject = (consumerId: string): string => `${COMMANDS_PREFIX}.${token(consumerId)}`

/** The subject an operator's commands go on: only the operator user may publish there. */
export const operatorSubject = (operatorId: string): string => `${OPERATOR_PREFIX}.${token(operatorId)}`

/** Who sent a command, as its subject says: a strategy (consumer) or an operator, by subject token. */
export interface CommandSender {
  readonly role: "strategy" | "operator"
  /** The sender's id as a subject token (`token(id)`). */
  readonly token: string
}

/** The sender named by a control subject; undefined for any other subject (no identity). */
export const senderOf = (subject: string): CommandSender | undefined => {
  const parts = subject.split(".")
  if (parts.length !== 3 || parts[0] !== "control" || parts[2] === "") return undefined
  if (parts[1] === "commands") return { role: "strategy", token: parts[2]! }
  if (parts[1] === "operator") return { role: "operator", token: parts[2]! }
  return undefined
}

/** True when `id` is the one the sender's subject names. */
export const isSender = (sender: CommandSender, id: string): boolean => token(id) === sender.token

export const HEARTBEAT_PREFIX = "feed.heartbeat"
/** The subject a feed's heartbeat for one provider goes on. */
export const heartbeatSubject = (provider: string): string => `${HEARTBEAT_PREFIX}.${providerToken(provider)}`
export const HEARTBEAT_SUBJECTS = `${HEARTBEAT_PREFIX}.*`

/** Core NATS: the routing version of the feed that runs the Control Plane (`Routing.ts`). */
export const ROUTING_SUBJECT = "feed.routing"

export const CRITICAL_STREAM = "MELTICA_CRITICAL"
export const COMMANDS_STREAM = "MELTICA_COMMANDS"

/** The durable consumer that holds one consumer's place in its critical stream. */
export const criticalDurable = (consumerId: string): string => `critical-${token(consumerId)}`

/** The durable consumer through which the feed process takes commands. */
export const COMMANDS_DURABLE = "control-plane"
