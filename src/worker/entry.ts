/**
 * A strategy worker: the module a `worker_threads` worker runs (through
 * `bootstrap.mjs`) for a strategy declared `isolation: worker`.
 *
 * The worker runs the same consumer runtime as the main thread (its own
 * Pool, Recycler, in-memory mailbox, Dispatcher and `Consumers`), so an
 * isolated strategy keeps every guarantee of one in process by construction:
 * its mailbox coalesces market data latest-wins and keeps the critical lane
 * lossless, the consumer wrapper skips market data older than its minimum
 * routing version (moved by its ControlAcks), runs critical events first,
 * bounds each handler call with `eventTimeoutMs`, recycles every event
 * however its handler ends, and logs failures with trace id, consumer id and
 * kind.
 *
 * What differs is where events come from and where commands go:
 * - a reader fiber takes frames from the two shared rings (the critical one
 *   first), decodes each into an event from this worker's pool and hands it
 *   to the strategy's mailbox; a critical event carries its lane sequence,
 *   acknowledged in shared memory once its handler has run, so the main
 *   thread knows which critical events a crash would lose and replays them to
 *   the next worker;
 * - the Control Bus is the main thread's, reached by `postMessage`; the main
 *   thread checks that a command names this strategy's consumer id.
 *
 * Log records are forwarded to the main thread, which logs them with its own
 * logger (a worker has no say over the process's log format).
 */
import { parentPort, workerData } from "node:worker_threads"
import { Cause, Deferred, Effect, Either, Exit, HashMap, Layer, Logger } from "effect"
import { CONTROL_SCHEMA_VERSION, encodeControlJson } from "../../schema/Control.js"
import {
  type BinaryFrameError,
  decodeFrame,
  type EventSource,
  type FrameHandler,
  MalformedBinaryFrame
} from "../codec/Binary.js"
import { Consumers } from "../Consumer.js"
import { ControlBus } from "../ControlBus.js"
import { DataBus } from "../DataBus.js"
import { Dispatcher, DispatcherConfig } from "../Dispatcher.js"
import type { AnyEvent } from "../Event.js"
import { Pool } from "../Pool.js"
import { generationOf, Recycler } from "../Recycler.js"
import { gatewayScheduler } from "../internal/scheduler.js"
import { loadStrategy } from "../strategy/Loader.js"
import { causeReason, run } from "../strategy/Strategy.js"
import {
  FRAME_HEADER,
  type FromWorker,
  HEADER_DISPATCH_TS,
  HEADER_SEQ,
  STAT_BAD_FRAMES,
  STAT_FRAMES_READ,
  type ToWorker,
  type WorkerInit,
  writeConsumerFigures
} from "./protocol.js"
import { Bell, RingReader } from "./Ring.js"

const init = workerData as WorkerInit
const port = parentPort!
const post = (m: FromWorker): void => port.postMessage(m)

/** Critical events taken from the ring and not yet handled, at most: beyond, they wait in the ring. */
const CRITICAL_IN_HAND = 1_024
/** Undecodable frames logged per turn at most (every one is counted). */
const MAX_UNDECODED_LOGGED = 16
/** Frames read per turn before the reader lets the handlers run. */
const READ_BATCH = 512
/** How often the consumer's books are published for the main thread's `stats()`. */
const STATS_EVERY_MS = 20

const forwardLogs = Logger.make<unknown, void>(({ annotations, cause, logLevel, message }) => {
  const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
  const fields: Record<string, string> = {}
  for (const [k, v] of HashMap.toEntries(annotations)) fields[k] = typeof v === "string" ? v : JSON.stringify(v)
  post({
    _tag: "Log",
    level: logLevel._tag,
    message: text,
    cause: Cause.isEmpty(cause) ? undefined : Cause.pretty(cause),
    annotations: fields
  })
})

let commandsSent = 0
/** The Control Bus of the main thread, reached by message. */
const controlBus = Layer.succeed(ControlBus, {
  submit: (command) =>
    Effect.suspend(() => {
      const json = encodeControlJson({ schemaVersion: CONTROL_SCHEMA_VERSION, command })
      if (Either.isLeft(json)) return Effect.logError("command not encodable", Cause.fail(json.left))
      commandsSent++
      post({ _tag: "Command", json: json.right })
      return Effect.void
    }),
  submitJson: (raw) =>
    Effect.sync(() => {
      commandsSent++
      post({ _tag: "Command", json: raw })
    }),
  stats: () => ({ submitted: commandsSent, malformed: 0 })
})

const runtime = Consumers.Default.pipe(
  Layer.provideMerge(Dispatcher.DefaultWithoutDependencies),
  Layer.provideMerge(DispatcherConfig.layer()),
  Layer.provideMerge(DataBus.layerMemory),
  Layer.provideMerge(Recycler.DefaultWithoutDependencies),
  Layer.provideMerge(Pool.layer()),
  Layer.provideMerge(controlBus)
)

const program = Effect.gen(function*() {
  const pool = yield* Pool
  const bus = yield* DataBus
  const consumers = yield* Consumers
  const recycler = yield* Recycler
  const id = init.consumerId
  const stop = yield* Deferred.make<void>()
  port.on("message", (m: ToWorker) => {
    if (m._tag === "Stop") Deferred.unsafeDone(stop, Exit.void)
  })

  const critical = new RingReader(init.critical)
  const market = new RingReader(init.market)
  const wake = new Bell(init.bells, 0)
  const room = new Bell(init.bells, 1)
  const acked = new Bell(init.bells, 2)
  const stats = new Float64Array(init.stats)
  // main-thread epoch microseconds -> this thread's `nowUs`
  const epochToLocalUs = performance.timeOrigin * 1000
  const source: EventSource = pool
  const critData = new DataView(init.critical.buffer, 0)
  const marketData = new DataView(init.market.buffer, 0)

  // A ring frame is exactly one whole event. Anything else (a frame shorter
  // than its header, a codec frame that does not decode, a bad record, bytes
  // after the record, no record, or more than one) is refused whole: counted,
  // logged (the first error of the frame), and whatever it decoded recycled.
  // The frames after it are read as usual: the ring's own framing (its length
  // prefix) says where the next one starts.
  let decoded: AnyEvent | undefined
  let records = 0
  let frameError: BinaryFrameError | undefined
  let badFrames = 0
  const handler: FrameHandler = {
    onEvent: (e) => {
      records++
      if (decoded === undefined) decoded = e
      else recycler.unsafeRecycle(e, generationOf(e))
    },
    onError: (error) => {
      frameError ??= error
    }
  }
  /** Frames refused since the last turn, logged by the reader (at most `MAX_UNDECODED_LOGGED` a turn; every one counted). */
  const undecoded: Array<{ readonly error: BinaryFrameError; readonly lane: string; readonly bytes: number }> = []
  const refuse = (error: BinaryFrameError, isCritical: boolean, bytes: number) => {
    badFrames++
    if (undecoded.length < MAX_UNDECODED_LOGGED) undecoded.push({ error, lane: isCritical ? "critical" : "market", bytes })
  }
  const logUndecoded = Effect.suspend(() =>
    undecoded.length === 0
      ? Effect.void
      : Effect.forEach(
        undecoded.splice(0),
        ({ bytes, error, lane }) =>
          Effect.logError("ring frame did not decode: skipped", Cause.fail(error)).pipe(
            Effect.annotateLogs({ lane, frame_bytes: bytes, bad_frames: badFrames })
          ),
        { discard: true }
      ).pipe(Effect.annotateLogs({ consumer_id: id }))
  )

  /** Decodes one ring frame (header + codec frame) and hands its event to the mailbox. */
  const take = (bytes: Uint8Array, view: DataView, base: number, offset: number, length: number, isCritical: boolean) => {
    if (length < FRAME_HEADER) {
      refuse(
        new MalformedBinaryFrame({ reason: `a ring frame of ${length} bytes is shorter than its ${FRAME_HEADER}-byte header`, record: -1, offset: 0 }),
        isCritical,
        length
      )
      return
    }
    const ts = view.getFloat64(base + offset + HEADER_DISPATCH_TS, true)
    const seq = view.getUint32(base + offset + HEADER_SEQ, true)
    decoded = undefined
    records = 0
    frameError = undefined
    decodeFrame(bytes.subarray(offset + FRAME_HEADER, offset + length), source, handler)
    const e = decoded as AnyEvent | undefined
    if (frameError !== undefined || records !== 1) {
      if (e !== undefined) recycler.unsafeRecycle(e, generationOf(e))
      const error = frameError ??
        new MalformedBinaryFrame({ reason: `${records} records in a ring frame, where one event is expected`, record: -1, offset: 2 })
      refuse(error, isCritical, length)
      return
    }
    if (e === undefined) return
    e._dispatchTs = ts > 0 ? ts - epochToLocalUs : 0
    if (isCritical) {
      e._ack = () => {
        critical.ack(seq)
        acked.ring()
      }
    }
    const endpoint = bus.endpoint(id)
    if (endpoint === undefined || !endpoint.offer(e)) recycler.unsafeRecycle(e, generationOf(e))
  }

  // the data region starts after the ring header: `offset` is relative to it
  const RING_HEADER_BYTES = init.critical.buffer.byteLength - init.critical.capacity

  /** Critical frames the previous run took and never handled: first. */
  const replay = () => {
    for (const frame of init.replay) {
      take(frame, new DataView(frame.buffer, frame.byteOffset, frame.byteLength), 0, 0, frame.length, true)
    }
  }

  // The books are published at most every STATS_EVERY_MS (a summary of the
  // consumer's histograms costs microseconds: never once per event). An idle
  // worker publishes when it goes idle and once more a period later (what it
  // took is handled by then), then every second.
  let lastStats = 0
  let unpublished = false
  const publishStats = (force: boolean) => {
    const now = performance.now()
    if (!force && now - lastStats < STATS_EVERY_MS) return
    lastStats = now
    const handle = consumers.get(id)
    stats[STAT_BAD_FRAMES] = badFrames
    stats[STAT_FRAMES_READ] = critical.framesRead + market.framesRead
    if (handle === undefined) return
    writeConsumerFigures(stats, handle.stats())
  }

  const criticalInHand = () => bus.mailboxes().find((m) => m.consumerId === id)?.criticalDepth ?? 0

  /** One turn: critical frames first (while few are in hand), then market frames; the count read. */
  const readTurn = (): number => {
    let n = 0
    if (criticalInHand() < CRITICAL_IN_HAND) {
      for (let len = critical.peek(); len >= 0 && n < READ_BATCH; len = critical.peek()) {
        take(critical.bytes, critData, RING_HEADER_BYTES, critical.offset, len, true)
        critical.consume()
        n++
      }
    }
    for (let len = market.peek(); len >= 0 && n < READ_BATCH; len = market.peek()) {
      take(market.bytes, marketData, RING_HEADER_BYTES, market.offset, len, false)
      market.consume()
      n++
    }
    if (n > 0) room.ring()
    return n
  }

  let replayed = false
  const reader: Effect.Effect<never> = Effect.suspend(() => {
    if (bus.endpoint(id) === undefined) return Effect.zipRight(Effect.sleep(1), reader) // the mailbox opens in `run`
    if (!replayed) {
      replayed = true
      replay()
    }
    if (readTurn() > 0) {
      unpublished = true
      publishStats(false)
      return Effect.zipRight(Effect.zipRight(logUndecoded, Effect.yieldNow()), reader)
    }
    const followUp = unpublished
    unpublished = false
    publishStats(false)
    const armed = wake.arm()
    if (critical.used > 0 || market.used > 0) {
      wake.disarm()
      return reader
    }
    return Effect.zipRight(
      Effect.ensuring(
        Effect.promise(() => wake.sleep(armed, followUp ? STATS_EVERY_MS : 1_000)),
        Effect.sync(() => wake.disarm())
      ),
      reader
    )
  })

  const strategy = yield* loadStrategy(init.module, "/")
  const scope = yield* Effect.scope
  yield* Effect.forkIn(reader, scope)

  const running = yield* run({ ...strategy, id }, {
    options: init.options,
    mailbox: init.mailbox,
    module: init.module,
    ...(init.eventTimeoutMs === undefined ? {} : { eventTimeoutMs: init.eventTimeoutMs }),
    ...(init.topology === undefined ? {} : { topology: init.topology }),
    ...(init.ownKillSwitchOnly ? { ownKillSwitchOnly: true } : {})
  })
  post({ _tag: "Started" })
  yield* Deferred.await(stop)
  // drain: what the rings and the mailbox hold is handled before the strategy stops (bounded)
  const deadline = performance.now() + 2_000
  while (performance.now() < deadline) {
    const lag = running.consumer.stats().lag
    if (lag === 0 && critical.used === 0 && market.used === 0) break
    yield* Effect.sleep(1)
  }
  publishStats(true)
  yield* running.stop
  publishStats(true)
})

Effect.runFork(
  program.pipe(
    Effect.scoped,
    Effect.provide(runtime),
    Effect.catchAllCause((cause) => Effect.sync(() => post({ _tag: "StartFailed", reason: causeReason(cause) }))),
    Effect.zipRight(Effect.sync(() => post({ _tag: "Stopped" }))),
    Effect.provide(Logger.replace(Logger.defaultLogger, forwardLogs)),
    Effect.ensuring(Effect.sync(() => port.close())),
    // the gateway's scheduler (src/internal/scheduler.ts), as on the main thread
    Effect.withScheduler(gatewayScheduler)
  )
)
