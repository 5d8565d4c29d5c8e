/**
 * The bounds of the wire contract: every string and array on the wire has a
 * documented maximum. Kept apart from the schemas so that every schema module
 * (events, rejections, commands) can use them without importing one another.
 */
import { Schema } from "effect"

/** Ids: commandId, consumerId, clientOrderId, orderId, tradeId, mergeId, feed epoch (UTF-16 code units). */
export const MAX_ID_LENGTH = 128
/** Trace ids (they embed an id and a prefix). */
export const MAX_TRACE_ID_LENGTH = 256
/** Names: symbols, providers, command names. */
export const MAX_NAME_LENGTH = 64
/** Free text: reasons, stale reasons. */
export const MAX_REASON_LENGTH = 2_048
/** Price levels per side of a book, snapshot or delta, venue or merged. */
export const MAX_BOOK_LEVELS = 5_000
/** Providers named by one event or command (merge sources, quotes, a route's providers). */
export const MAX_PROVIDERS = 32
/** Trades in one merged window. */
export const MAX_TRADES = 10_000

/**
 * A string of at most `max` characters. The message names the limit and the
 * length, never the value: a 300 KB id does not travel on into logs and replies.
 */
export const boundedString = (name: string, max: number) =>
  Schema.String.pipe(
    Schema.filter((s) => s.length <= max || `${name} must be at most ${max} characters (got ${s.length})`)
  )

/** An array of at most `max` items; the message names the limit and the length, never the items. */
export const boundedArray = <S extends Schema.Schema.Any>(item: S, name: string, max: number) =>
  Schema.Array(item).pipe(
    Schema.filter((xs) => xs.length <= max || `${name} must hold at most ${max} items (got ${xs.length})`)
  )

/**
 * True when JSON text nests arrays and objects deeper than `max`: one scan
 * without recursion, strings skipped (escapes included), so a value nested
 * 10,000 deep is refused before anything parses or formats it. Every JSON
 * boundary uses it (venue frames, commands, NATS frames).
 */
export const jsonNestedDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // a backslash escapes the next character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > max) return true
    } else if (c === 93 || c === 125) depth--
  }
  return false
}
