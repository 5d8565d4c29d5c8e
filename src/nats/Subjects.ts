/**
 * NATS subjects, stream and durable names.
 *
 * - Market data, core NATS, at most once: `md.<provider>.<symbol>.<kind>`;
 *   the Orchestrator's merged events: `md.merged.<symbol>.<kind>`.
 * - Critical events for one consumer, JetStream: `critical.<consumerId>`.
 * - Control commands, JetStream: `control.commands`.
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
export const MERGED_PREFIX = `${MARKET_PREFIX}.${MERGED}.`

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

export const COMMANDS_SUBJECT = "control.commands"

export const CRITICAL_STREAM = "MELTICA_CRITICAL"
export const COMMANDS_STREAM = "MELTICA_COMMANDS"

/** The durable consumer that holds one consumer's place in its critical stream. */
export const criticalDurable = (consumerId: string): string => `critical-${token(consumerId)}`

/** The durable consumer through which the feed process takes commands. */
export const COMMANDS_DURABLE = "control-plane"
