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
import {
  type BinaryFrameError,
  decodeFrame as decodeBinaryFrame,
  type EventSource,
  isBinaryFrame
} from "../../codec/Binary.js"

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

/** The bytes of a binary frame kept with its error: its first bytes, in base64. */
const MAX_BINARY_KEPT = 3_072

const binaryKept = (data: Uint8Array): string =>
  `base64:${Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, MAX_BINARY_KEPT)).toString("base64")}`

/** A binary frame's error as the boundary's typed `MalformedFrame` (what the JSON path gives). */
export const malformedBinary = (source: string, error: BinaryFrameError, data: Uint8Array): MalformedFrame =>
  new MalformedFrame({ source, reason: error.message, raw: binaryKept(data) })

/**
 * Decodes one message, a binary frame of events (`src/codec/Binary.ts`) or
 * one event's JSON text, told apart by the first byte: each event, taken from
 * `pool`, is pushed on `out` in order; each record that does not decode is
 * pushed on `bad` (the good records around it are kept).
 */
export const decodeMessage = (
  source: string,
  data: Uint8Array,
  pool: EventSource,
  out: Array<AnyEvent>,
  bad: Array<MalformedFrame>
): void => {
  if (isBinaryFrame(data)) {
    decodeBinaryFrame(data, pool, {
      onEvent: (e) => out.push(e),
      onError: (error) => bad.push(malformedBinary(source, error, data))
    })
    return
  }
  const decoded = decodeFrame(source, data)
  if (Either.isLeft(decoded)) bad.push(decoded.left)
  else out.push(toPooled(pool, decoded.right))
}

/** A pooled event holding the decoded frame. */
export const toPooled = (pool: EventSource, w: WireAny): AnyEvent => {
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
