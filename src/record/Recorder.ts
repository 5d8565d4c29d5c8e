/**
 * The recorder: every canonical market-data event a provider ingests, written
 * to Parquet files (`Format.ts`) off the hot path.
 *
 * Rules:
 * - On the hot path `record` copies five fields and a payload reference into
 *   the stream's column buffers (no allocation per event besides array
 *   growth, no I/O, no fiber); the provider's own sink runs right after.
 * - A background fiber flushes every `flushIntervalMs` (on the Effect Clock),
 *   and at once when a stream holds `maxRowsPerFile` rows: each stream's
 *   buffer becomes one complete file, encoded, written under a `.tmp` name
 *   and renamed. So a crash (kill -9) loses at most what arrived since the
 *   last flush, and never leaves a half-written file under a final name.
 * - A failed write is typed (`RecordWriteFailed`), counted and logged; the
 *   rows of that file are lost, the gateway goes on.
 * - Closing the scope flushes what is buffered.
 */
import { Context, Data, Duration, Effect, Either, Fiber, Layer, Queue } from "effect"
import type { Scope } from "effect"
import { mkdir, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import type { MarketKind } from "../../schema/Event.js"
import { isCritical } from "../../schema/Event.js"
import type { Event } from "../Event.js"
import { Providers, type ProviderShape } from "../Provider.js"
import { checksumOf, type CorruptRecording, type EncodeRequest, encodeRequestOf, encodeRows, fileName, type StreamRows } from "./Format.js"

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
  /** A stream's buffer is flushed at once when it holds this many rows (default 100,000). */
  readonly maxRowsPerFile?: number
  /** Kinds recorded (default: all market kinds). */
  readonly kinds?: ReadonlyArray<MarketKind>
  /** Encode files on a worker thread, off the event loop (default true; on this thread when false or when the thread fails). */
  readonly encodeOnWorker?: boolean
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
}

export interface Recorder {
  /** Copies the event's fields into the buffers. Does not take ownership. */
  readonly record: (event: Event) => void
  /** Writes every buffered row now. */
  readonly flush: Effect.Effect<void>
  /** The providers, each recording what it hands to its sink. */
  readonly wrap: (providers: ReadonlyArray<ProviderShape>) => ReadonlyArray<ProviderShape>
  readonly stats: () => RecorderStats
}

/** A stream's buffers; a flush takes the arrays and leaves new empty ones. */
type Buffers = { -readonly [K in keyof StreamRows]: StreamRows[K] }

const newRows = (provider: string, symbol: string, kind: MarketKind): Buffers => ({
  provider,
  symbol,
  kind,
  ingestTs: [],
  seq: [],
  epoch: [],
  payload: []
})

const ENCODER = new URL("./encodeWorker.mjs", import.meta.url)

/**
 * A request with every column of one repeated value (provider, symbol, kind,
 * and the columns of other kinds, all null) sent as that value and a length:
 * copying it to the thread costs per value, and most columns are such.
 */
const compact = (request: EncodeRequest) => ({
  ...request,
  columnData: request.columnData.map((c) => {
    const d = c.data
    const v = d[0]
    for (let i = 1; i < d.length; i++) if (d[i] !== v) return c
    return { name: c.name, type: c.type, nullable: c.nullable, fill: v, length: d.length }
  })
})

/**
 * Parquet encoding on a worker thread for the life of the scope: the event
 * loop only lays out the columns (`encodeRequestOf`) and copies them to the
 * thread; compression, statistics and page layout (most of a flush's cost,
 * `bench/replay.ts`) run beside the gateway. If the thread fails, pending
 * files fail (counted as write failures) and later ones are encoded here.
 */
const workerEncoder: Effect.Effect<(rows: StreamRows) => Effect.Effect<Uint8Array, string>, never, Scope.Scope> = Effect.gen(function*() {
  const pending = new Map<number, (answer: Either.Either<Uint8Array, string>) => void>()
  let broken = false
  let next = 0
  const worker = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const w = new Worker(fileURLToPath(ENCODER))
      w.unref()
      const fail = (reason: string) => {
        broken = true
        for (const k of pending.values()) k(Either.left(reason))
        pending.clear()
      }
      w.on("message", (m: { readonly id: number; readonly bytes?: ArrayBuffer; readonly error?: string }) => {
        const k = pending.get(m.id)
        pending.delete(m.id)
        k?.(m.bytes !== undefined ? Either.right(new Uint8Array(m.bytes)) : Either.left(m.error ?? "no answer"))
      })
      w.on("error", (e) => fail(`the encoder thread failed: ${e.message}`))
      w.on("exit", (code) => fail(`the encoder thread exited (code ${code})`))
      return w
    }),
    (w) => Effect.promise(() => w.terminate())
  )
  return (rows) =>
    broken
      ? Effect.try({ try: () => encodeRows(rows), catch: String })
      : Effect.async<Uint8Array, string>((resume) => {
        const id = ++next
        pending.set(id, (a) => resume(Either.isRight(a) ? Effect.succeed(a.right) : Effect.fail(a.left)))
        worker.postMessage({ id, ...compact(encodeRequestOf(rows)) })
      })
})

/** A recorder writing under `options.dir` for the life of the scope. */
export const makeRecorder = (options: RecorderOptions): Effect.Effect<Recorder, never, Scope.Scope> =>
  Effect.gen(function*() {
    // acquired first, so released after the final flush
    const encode = options.encodeOnWorker === false
      ? (rows: StreamRows) => Effect.try({ try: () => encodeRows(rows), catch: String })
      : yield* workerEncoder
    const flushIntervalMs = options.flushIntervalMs ?? 1_000
    const maxRows = options.maxRowsPerFile ?? 100_000
    const kinds = new Set<string>(options.kinds ?? ["trade", "ticker", "book_snapshot", "book_delta"])
    /** Buffers by provider, symbol and kind (nested: no key string built per event); `all` in creation order. */
    const streams = new Map<string, Map<string, Map<string, Buffers>>>()
    const all: Array<Buffers> = []
    const wake = yield* Queue.sliding<void>(1)
    let events = 0
    let files = 0
    let rowsWritten = 0
    let bytes = 0
    let writeFailures = 0
    let buffered = 0
    let counter = 0

    const record = (e: Event): void => {
      if (e._pool !== "Event" || isCritical(e.kind) || !kinds.has(e.kind) || e.payload === undefined) return
      let bySymbol = streams.get(e.provider)
      if (bySymbol === undefined) streams.set(e.provider, bySymbol = new Map())
      let byKind = bySymbol.get(e.symbol)
      if (byKind === undefined) bySymbol.set(e.symbol, byKind = new Map())
      let rows = byKind.get(e.kind)
      if (rows === undefined) {
        byKind.set(e.kind, rows = newRows(e.provider, e.symbol, e.kind as MarketKind))
        all.push(rows)
      }
      rows.ingestTs.push(e.ingestTs)
      rows.seq.push(e.seqProvider)
      rows.epoch.push(e.epoch)
      rows.payload.push(e.payload)
      events++
      buffered++
      if (rows.ingestTs.length === maxRows) Queue.unsafeOffer(wake, undefined)
    }

    const writeOne = (rows: StreamRows): Effect.Effect<void> =>
      Effect.gen(function*() {
        const n = ++counter
        const encoded = yield* encode(rows).pipe(
          Effect.mapError((reason) => new RecordWriteFailed({ file: `${rows.provider}/${rows.symbol}/${rows.kind}`, rows: rows.ingestTs.length, reason }))
        )
        const parts = fileName(rows, n, checksumOf(encoded))
        const dir = join(options.dir, ...parts.slice(0, -1))
        const final = join(dir, parts[parts.length - 1])
        yield* Effect.tryPromise({
          try: async () => {
            await mkdir(dir, { recursive: true })
            await writeFile(`${final}.tmp`, encoded)
            await rename(`${final}.tmp`, final)
          },
          catch: (e) => new RecordWriteFailed({ file: final, rows: rows.ingestTs.length, reason: e instanceof Error ? e.message : String(e) })
        })
        files++
        rowsWritten += rows.ingestTs.length
        bytes += encoded.byteLength
      }).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => writeFailures++).pipe(Effect.zipRight(Effect.logError("recording write failed", e)))
        )
      )

    // one flush at a time: the periodic one, a full buffer's, the final one
    const lock = yield* Effect.makeSemaphore(1)
    // uninterruptible: rows taken out of the buffers are always written (or counted as failed)
    const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.suspend(() => {
      const batch: Array<StreamRows> = []
      for (const r of all) {
        if (r.ingestTs.length === 0) continue
        batch.push({ ...r })
        r.ingestTs = []
        r.seq = []
        r.epoch = []
        r.payload = []
      }
      buffered = 0
      return Effect.forEach(batch, writeOne, { discard: true })
    })).pipe(Effect.uninterruptible)

    const flusher = yield* Queue.take(wake).pipe(
      Effect.timeout(Duration.millis(flushIntervalMs)),
      Effect.ignore,
      Effect.zipRight(flush),
      Effect.forever,
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => Fiber.interrupt(flusher).pipe(Effect.zipRight(flush)))

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
      stats: () => ({ events, files, rowsWritten, bytes, writeFailures, buffered })
    }
  })

/** A recorder's figures when nothing records. */
export const noRecorderStats: RecorderStats = { events: 0, files: 0, rowsWritten: 0, bytes: 0, writeFailures: 0, buffered: 0 }

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
