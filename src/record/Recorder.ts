/**
 * The recorder: every canonical market-data event a provider ingests, written
 * to Parquet files (`Format.ts`) off the hot path.
 *
 * Rules:
 * - On the hot path `record` appends the event to a binary frame
 *   (`codec/Binary.ts`: a few hundred nanoseconds, no allocation per event, no
 *   I/O, no fiber); the provider's own sink runs right after. Frames are
 *   sealed at 2 MiB.
 * - A background fiber flushes every `flushIntervalMs` (on the Effect Clock),
 *   and at once when `maxRowsPerFile` rows are buffered: the frames go to the
 *   encoder thread (transferred, not copied), which decodes them and encodes
 *   one Parquet file per stream; each file is written under a `.tmp` name and
 *   renamed. So a crash (kill -9) loses at most what arrived since the last
 *   flush, and never leaves a half-written file under a final name.
 * - Memory is bounded: past `maxPendingBytes` of frames waiting for the
 *   encoder (a disk or an encoder slower than the feed), events are dropped
 *   from the recording and counted (`dropped`): the live path is never slowed
 *   to wait for the recorder.
 * - A failed write is typed (`RecordWriteFailed`), counted and logged; the
 *   rows of that file are lost, the gateway goes on. An event the codec cannot
 *   hold (a programming error upstream) is counted as `refused`.
 * - Closing the scope flushes what is buffered.
 */
import { Context, Data, Effect, Either, Layer, Queue } from "effect"
import type { Scope } from "effect"
import { mkdir, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import type { MarketKind } from "../../schema/Event.js"
import { isCritical } from "../../schema/Event.js"
import { FrameWriter, MAX_FRAME_RECORDS } from "../codec/Binary.js"
import type { Event } from "../Event.js"
import { flushInBackground } from "../internal/flusher.js"
import { workerCalls } from "../internal/workerCalls.js"
import { Providers, type ProviderShape } from "../Provider.js"
import { checksumOf, type CorruptRecording, type EncodedFile, type EncodedFrames, encodeFrames, pathOf } from "./Format.js"

export class RecordWriteFailed extends Data.TaggedError("RecordWriteFailed")<{
  readonly file: string
  readonly rows: number
  readonly reason: string
}> {
  override get message(): string {
    return `recording file ${this.file} (${this.rows} rows) not written: ${this.reason}`
  }
}

export interface RecorderOptions {
  /** The recording's directory (created if missing). */
  readonly dir: string
  /** At most this much is lost on a crash (default 1,000 ms). */
  readonly flushIntervalMs?: number
  /** The buffer is flushed as soon as it holds this many rows (default 100,000). */
  readonly maxRowsPerFile?: number
  /** Kinds recorded (default: all market kinds). */
  readonly kinds?: ReadonlyArray<MarketKind>
  /** Encode files on a worker thread, off the event loop (default true; on this thread when false or when the thread fails). */
  readonly encodeOnWorker?: boolean
  /** Bytes of frames waiting for the encoder beyond which events are dropped from the recording (default 256 MiB). */
  readonly maxPendingBytes?: number
}

export interface RecorderStats {
  readonly events: number
  readonly files: number
  /** Rows in the files written. */
  readonly rowsWritten: number
  readonly bytes: number
  readonly writeFailures: number
  /** Rows buffered, not yet written. */
  readonly buffered: number
  /** Events not recorded because the encoder was `maxPendingBytes` behind. */
  readonly dropped: number
  /** Events the binary codec could not hold (and records the encoder could not decode). */
  readonly refused: number
}

export interface Recorder {
  /** Appends the event to the buffer. Does not take ownership. */
  readonly record: (event: Event) => void
  /** Writes every buffered row now. */
  readonly flush: Effect.Effect<void>
  /** The providers, each recording what it hands to its sink. */
  readonly wrap: (providers: ReadonlyArray<ProviderShape>) => ReadonlyArray<ProviderShape>
  readonly stats: () => RecorderStats
}

/** Frames are sealed (and a new one begun) at this size. */
const SEAL_BYTES = 2 * 1_048_576

type Encoder = (frames: ReadonlyArray<Uint8Array>) => Effect.Effect<EncodedFrames, string>

const encodeHere: Encoder = (frames) => Effect.try({ try: () => encodeFrames(frames), catch: String })

const BOOTSTRAP = new URL("../worker/bootstrap.mjs", import.meta.url)
const ENCODER = new URL("./encodeWorker.ts", import.meta.url)

/**
 * Parquet encoding on a worker thread for the life of the scope: the event
 * loop hands over the frames' buffers (transferred, not copied); decoding,
 * column layout, compression, statistics and page layout run beside the
 * gateway. If the thread fails, pending files fail (counted as write
 * failures) and later ones are encoded here.
 */
const workerEncoder: Effect.Effect<Encoder, never, Scope.Scope> = workerCalls({
  start: () => new Worker(fileURLToPath(BOOTSTRAP), { workerData: { entry: ENCODER.href } }),
  post: (worker, id, frames: ReadonlyArray<Uint8Array>) => worker.postMessage({ id, frames }, frames.map((f) => f.buffer as ArrayBuffer)),
  answer: (m: { readonly id: number; readonly result?: EncodedFrames; readonly error?: string }) =>
    m.result !== undefined ? Either.right(m.result) : Either.left(m.error ?? "no answer"),
  here: encodeHere
})

/** A recorder writing under `options.dir` for the life of the scope. */
export const makeRecorder = (options: RecorderOptions): Effect.Effect<Recorder, never, Scope.Scope> =>
  Effect.gen(function*() {
    // acquired first, so released after the final flush
    const encode = options.encodeOnWorker === false ? encodeHere : yield* workerEncoder
    const flushIntervalMs = options.flushIntervalMs ?? 1_000
    const maxRows = options.maxRowsPerFile ?? 100_000
    const maxPending = options.maxPendingBytes ?? 256 * 1_048_576
    const kinds = new Set<string>(options.kinds ?? ["trade", "ticker", "book_snapshot", "book_delta"])
    const wake = yield* Queue.sliding<void>(1)
    const writer = new FrameWriter(SEAL_BYTES + 65_536)
    let sealed: Array<Uint8Array> = []
    let sealedBytes = 0
    let inFlightBytes = 0
    let events = 0
    let files = 0
    let rowsWritten = 0
    let bytes = 0
    let writeFailures = 0
    let buffered = 0
    let dropped = 0
    let refused = 0
    let counter = 0

    const seal = (): void => {
      if (writer.records === 0) return
      const frame = writer.finish()
      sealed.push(frame)
      sealedBytes += frame.byteLength
      writer.begin()
    }

    const record = (e: Event): void => {
      if (e._pool !== "Event" || isCritical(e.kind) || !kinds.has(e.kind) || e.payload === undefined) return
      if (sealedBytes + inFlightBytes + writer.length > maxPending) {
        dropped++
        return
      }
      try {
        writer.add(e)
      } catch {
        refused++
        return
      }
      events++
      if (++buffered === maxRows) Queue.unsafeOffer(wake, undefined)
      if (writer.length >= SEAL_BYTES || writer.records === MAX_FRAME_RECORDS) seal()
    }

    const writeOne = (file: EncodedFile): Effect.Effect<void> =>
      Effect.gen(function*() {
        const parts = pathOf(file, ++counter, checksumOf(file.bytes))
        const dir = join(options.dir, ...parts.slice(0, -1))
        const final = join(dir, parts[parts.length - 1])
        yield* Effect.tryPromise({
          try: async () => {
            await mkdir(dir, { recursive: true })
            await writeFile(`${final}.tmp`, file.bytes)
            await rename(`${final}.tmp`, final)
          },
          catch: (e) => new RecordWriteFailed({ file: final, rows: file.rows, reason: e instanceof Error ? e.message : String(e) })
        })
        files++
        rowsWritten += file.rows
        bytes += file.bytes.byteLength
      }).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => writeFailures++).pipe(Effect.zipRight(Effect.logError("recording write failed", e)))
        )
      )

    const written = (result: EncodedFrames): Effect.Effect<void> =>
      Effect.forEach(result.files, writeOne, { discard: true }).pipe(
        Effect.zipRight(
          result.refused === 0 ? Effect.void : Effect.sync(() => (refused += result.refused)).pipe(
            Effect.zipRight(Effect.logError("recorded events the encoder could not decode").pipe(
              Effect.annotateLogs({ refused: result.refused, first: result.errors[0] ?? "" })
            ))
          )
        )
      )

    // one flush at a time: the periodic one, a full buffer's, the final one
    const lock = yield* Effect.makeSemaphore(1)
    // uninterruptible: rows taken out of the buffer are always written (or counted as failed)
    const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.suspend(() => {
      seal()
      if (sealed.length === 0) return Effect.void
      const frames = sealed
      const size = sealedBytes
      const rows = buffered
      sealed = []
      sealedBytes = 0
      buffered = 0
      inFlightBytes += size
      return encode(frames).pipe(
        Effect.matchEffect({
          onFailure: (reason) =>
            Effect.sync(() => writeFailures++).pipe(
              Effect.zipRight(Effect.logError("recording write failed", new RecordWriteFailed({ file: options.dir, rows, reason })))
            ),
          onSuccess: written
        }),
        Effect.ensuring(Effect.sync(() => (inFlightBytes -= size)))
      )
    })).pipe(Effect.uninterruptible)

    yield* flushInBackground(wake, flushIntervalMs, flush)

    const wrap = (providers: ReadonlyArray<ProviderShape>): ReadonlyArray<ProviderShape> =>
      providers.map((p) => ({
        ...p,
        run: (sink) =>
          p.run((e) => {
            record(e)
            return sink(e)
          })
      }))

    return {
      record,
      flush,
      wrap,
      stats: () => ({ events, files, rowsWritten, bytes, writeFailures, buffered, dropped, refused })
    }
  })

/** A recorder's figures when nothing records. */
export const noRecorderStats: RecorderStats = { events: 0, files: 0, rowsWritten: 0, bytes: 0, writeFailures: 0, buffered: 0, dropped: 0, refused: 0 }

/**
 * The recording figures that `/metrics` exports (`Status.ts`): the recorder's
 * (at 0 when nothing records) and the recording files a replay skipped.
 */
export class RecordingFigures extends Context.Tag("meltica/RecordingFigures")<RecordingFigures, {
  readonly recorder: () => RecorderStats
  readonly skipped: () => ReadonlyArray<CorruptRecording>
}>() {}

/**
 * The providers of `providers`, each recording what it hands on into
 * `options.dir` when `options` is given (the `record:` section, `--record`),
 * and the recording figures (at 0 when nothing records).
 */
export const layerRecording = (options: RecorderOptions | undefined) =>
<E, R>(providers: Layer.Layer<Providers, E, R>): Layer.Layer<Providers | RecordingFigures, E, R> =>
  Layer.scopedContext(Effect.gen(function*() {
    const inner = yield* Providers
    if (options === undefined) {
      return Context.make(Providers, inner).pipe(
        Context.add(RecordingFigures, { recorder: () => noRecorderStats, skipped: () => [] })
      )
    }
    const recorder = yield* makeRecorder(options)
    yield* Effect.logInfo("recording the providers' events").pipe(Effect.annotateLogs({ dir: options.dir }))
    return Context.make(Providers, recorder.wrap(inner)).pipe(
      Context.add(RecordingFigures, { recorder: recorder.stats, skipped: () => [] })
    )
  })).pipe(Layer.provide(providers))
