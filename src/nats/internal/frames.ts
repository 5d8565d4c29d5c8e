/**
 * Wire frames <-> pooled events, and what happens to a frame that does not
 * decode.
 *
 * A decoded frame becomes an event acquired from this process's pool (pooled
 * objects never cross processes). A frame that does not decode is a typed
 * `MalformedFrame`: counted, logged, kept among the recent errors, and sent to
 * the dead-letter queue when the process has one.
 */
import { Effect, Either, Option, ParseResult } from "effect"
import { decodeWireJson, encodeWireJson, type WireAny } from "../../../schema/Event.js"
import { formatParseError } from "../../../schema/Control.js"
import { MalformedFrame } from "../../../schema/Errors.js"
import type { DeadLetter } from "../../DeadLetter.js"
import type { AnyEvent } from "../../Event.js"
import type { Pool } from "../../Pool.js"

const utf8 = new TextDecoder()

/** The JSON text of an event in the canonical wire schema; the reason when the event does not fit it. */
export const encodeEvent = (e: AnyEvent): Either.Either<string, string> =>
  Either.try({
    try: () => encodeWireJson(e.toWire()),
    catch: (u) => (u instanceof ParseResult.ParseError ? formatParseError(u) : String(u))
  })

export const decodeFrame = (source: string, data: Uint8Array): Either.Either<WireAny, MalformedFrame> => {
  const text = utf8.decode(data)
  return Either.mapLeft(
    decodeWireJson(text),
    (error) => new MalformedFrame({ source, reason: formatParseError(error), raw: text })
  )
}

/** A pooled event holding the decoded frame. */
export const toPooled = (pool: Pool, w: WireAny): AnyEvent => {
  switch (w._tag) {
    case "Event": {
      const e = pool.acquireEvent()
      e.fill(w)
      return e
    }
    case "MergedEvent": {
      const e = pool.acquireMerged()
      e.fill(w)
      return e
    }
    case "ExecReport": {
      const e = pool.acquireExecReport()
      e.fill(w)
      return e
    }
  }
}

const RECENT = 32

/** Counts, keeps and dead-letters malformed frames. */
export class MalformedFrames {
  count = 0
  readonly recent: Array<MalformedFrame> = []
  constructor(private readonly deadLetter: Option.Option<DeadLetter>) {}

  record(error: MalformedFrame): Effect.Effect<void> {
    this.count++
    this.recent.push(error)
    if (this.recent.length > RECENT) this.recent.shift()
    const log = Effect.logWarning("malformed frame dropped", error).pipe(
      Effect.annotateLogs({ source: error.source })
    )
    return Option.isSome(this.deadLetter)
      ? Effect.zipRight(this.deadLetter.value.record(error.source, "malformed_frame", error.raw), log)
      : log
  }
}
