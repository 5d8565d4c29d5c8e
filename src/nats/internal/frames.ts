/**
 * Wire frames <-> pooled events, and what happens to a frame that does not
 * decode.
 *
 * A decoded frame becomes an event acquired from this process's pool (pooled
 * objects never cross processes). A frame that does not decode is a typed
 * `MalformedFrame`: counted, logged, kept among the recent errors, and sent to
 * the dead-letter queue when the process has one. A frame longer than
 * `MAX_FRAME_LENGTH` or nested deeper than `MAX_FRAME_DEPTH` is refused before
 * it is parsed (no input can overflow the stack in the decoder or in the
 * formatting of its error), and a malformed frame keeps at most
 * `MAX_RAW_KEPT` characters of its text.
 */
import { Effect, Either, Option, ParseResult } from "effect"
import { decodeWireJson, encodeWireJson, type WireAny } from "../../../schema/Event.js"
import { formatParseError, jsonTextProblem } from "../../../schema/Control.js"
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

/** The longest frame decoded (the NATS server's default max payload, 1 MiB). */
const MAX_FRAME_LENGTH = 1_048_576
/** The deepest nesting in a frame (a merged book, the deepest event, needs 6). */
const MAX_FRAME_DEPTH = 32
/** The characters of a malformed frame kept with its error. */
const MAX_RAW_KEPT = 4_096

const rawKept = (text: string) => (text.length > MAX_RAW_KEPT ? text.slice(0, MAX_RAW_KEPT) : text)

export const decodeFrame = (source: string, data: Uint8Array): Either.Either<WireAny, MalformedFrame> => {
  if (data.length > MAX_FRAME_LENGTH * 3) {
    return Either.left(new MalformedFrame({ source, reason: `frame too large: ${data.length} bytes`, raw: "" }))
  }
  const text = utf8.decode(data)
  const problem = jsonTextProblem(text, "frame", MAX_FRAME_LENGTH, MAX_FRAME_DEPTH)
  if (problem !== undefined) return Either.left(new MalformedFrame({ source, reason: problem, raw: rawKept(text) }))
  return Either.mapLeft(
    decodeWireJson(text),
    (error) => new MalformedFrame({ source, reason: formatParseError(error), raw: rawKept(text) })
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
