/**
 * A strategy on a worker thread, seen from the main thread: its consumer's
 * endpoint writes events into the worker's shared rings, its commands reach
 * the Control Bus, its crashes are reported and it is restarted.
 *
 * The main thread keeps ownership of pooled events: an event is encoded into
 * a ring (the binary wire codec, one frame per event, `src/codec/Binary.ts`)
 * and recycled at once; the worker decodes its own copy into its own pool
 * (`entry.ts`). No event crosses by structured clone.
 *
 * Delivery (the consumer's endpoint, in front of a main-thread mailbox):
 * - the fast path: nothing queued in the mailbox, room in the ring: the
 *   event is written at once, in the dispatcher's call, without a fiber;
 * - a critical event that cannot be written goes to the mailbox's critical
 *   lane (lossless up to its bound, as in process) and a pump fiber, one per
 *   worker, moves it to the ring as room comes; market data behind queued
 *   events goes to the mailbox too, so a stream stays in order;
 * - market data for a full ring with nothing queued is refused by `offer`,
 *   so the dispatcher hands it over through `deliver`, which suspends until
 *   the worker makes room or `handoverWaitMs` passes, then queues it in the
 *   mailbox's market lane, where the latest value of a stream wins. The
 *   dispatcher runs such hand-overs through `Effect.forEach` at
 *   `fanoutConcurrency`: ten full rings cost one wait at concurrency 10 and
 *   ten waits in a row at concurrency 1. The wait bounds how long one slow
 *   worker holds the dispatcher: past it, coalescing takes over.
 *
 * Crashes: a worker that ends without being asked to is reported
 * (`WorkerCrashed`) and restarted after a backoff, up to `maxRestarts`
 * (`WorkerGaveUp`: the strategy stops, and what is then sent to it is
 * refused loudly, as for a closed mailbox). Market data in the rings is kept
 * for the next worker. Every critical frame is kept in the main thread until
 * the worker acknowledges that its handler ran; those the dead worker had
 * taken and not handled are replayed to the next one first, so nothing is
 * lost from the critical lane (the one in flight at the crash may run twice).
 * A critical event that must be acknowledged where it came from (a NATS
 * strategy process acknowledges a JetStream message once the lambda has run)
 * is acknowledged when the worker acknowledges its frame, not when it is
 * written: a process that dies before the worker handled it gets it again.
 *
 * Commands come by `postMessage` (a few per second, where a clone costs
 * microseconds); one that names another consumer than the worker's is
 * refused and counted (`ForeignCommand`): the thread the command came from
 * is its identity, not what it claims.
 *
 * Shutdown: queued events are flushed to the rings, the worker is told to
 * stop (it handles what it holds, then stops its strategy) and awaited; one
 * that does not exit in time is terminated. No worker, fiber or pooled event
 * is left.
 */
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import {
  Cause,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberSet,
  LogLevel,
  Queue,
  Scope
} from "effect"
import { decodeControlJsonCommand } from "../../schema/Control.js"
import { isCritical } from "../../schema/Event.js"
import { FrameWriter } from "../codec/Binary.js"
import { ControlBus } from "../ControlBus.js"
import { DataBus, type Endpoint, type Mailbox, type MailboxOptions } from "../DataBus.js"
import { Dispatcher } from "../Dispatcher.js"
import { DeliveryError } from "../Errors.js"
import type { AnyEvent } from "../Event.js"
import { type Generation, generationOf, Recycler } from "../Recycler.js"
import { StrategyStartFailed } from "../strategy/Errors.js"
import { loadStrategy, resolveModule } from "../strategy/Loader.js"
import type { Topology } from "../strategy/Strategy.js"
import { ForeignCommand, RingWriteFailed, WorkerCrashed, WorkerGaveUp } from "./Errors.js"
import {
  FRAME_HEADER,
  type FromWorker,
  HEADER_DISPATCH_TS,
  HEADER_SEQ,
  STAT_BAD_FRAMES,
  STAT_FRAMES_READ,
  type ConsumerFigures,
  readConsumerFigures,
  STAT_SLOTS,
  type ToWorker,
  type WorkerInit,
  type WorkerLog
} from "./protocol.js"
import { Bell, makeRingMemory, RingWriter } from "./Ring.js"

export interface WorkerSettings {
  /** Bytes of the market-data ring (a power of two). */
  readonly marketRingBytes: number
  /** Bytes of the critical ring (a power of two). */
  readonly criticalRingBytes: number
  /** How long a hand-over to a full market ring waits for room before the event is queued (coalescing). */
  readonly handoverWaitMs: number
  /** Restarts after crashes before the strategy is given up. */
  readonly maxRestarts: number
  /** Wait before the first restart; doubled at each crash. */
  readonly restartBackoffMs: number
  /** How long a stopping worker may take to exit before it is terminated. */
  readonly stopTimeoutMs: number
}

export const defaultWorkerSettings: WorkerSettings = {
  marketRingBytes: 1 << 20,
  criticalRingBytes: 1 << 18,
  handoverWaitMs: 5,
  maxRestarts: 5,
  restartBackoffMs: 100,
  stopTimeoutMs: 5_000
}

/** A strategy to run on a worker: a file whose default export is the strategy. */
export interface IsolatedStrategySpec {
  readonly module: string
  /** The consumer id, over the strategy's own (two runs of one file side by side need two). */
  readonly id?: string
  readonly options?: unknown
  /** The directory `module` is relative to (default: the working directory). */
  readonly base?: string
  readonly mailbox?: Partial<MailboxOptions>
  readonly eventTimeoutMs?: number
  readonly topology?: Topology
  /** The strategy may engage its own kill switch only (a NATS strategy process: see `RunSettings.ownKillSwitchOnly`). */
  readonly ownKillSwitchOnly?: boolean
  readonly settings?: Partial<WorkerSettings>
}

/** A worker's figures: the main thread's side, and its consumer's books as the worker last published them. */
export interface WorkerStats extends ConsumerFigures {
  readonly consumerId: string
  readonly running: boolean
  readonly crashes: number
  readonly restarts: number
  /** Frames written to the rings, by lane. */
  readonly marketFrames: number
  readonly criticalFrames: number
  /** Writes that found the ring full (the event then waited or was queued). */
  readonly ringFull: number
  /** Hand-overs that suspended on a full ring, and those of them that ran out of time and queued. */
  readonly handoverWaits: number
  readonly handoverTimeouts: number
  /** Hand-overs and pump moves to this worker suspended on a full ring, now and at most. */
  readonly waitingNow: number
  readonly maxConcurrentWaits: number
  /** Critical frames kept until the worker acknowledges them, now. */
  readonly criticalUnacked: number
  /** Critical events acknowledged where they came from once the worker handled them (JetStream), and those waiting for it now. */
  readonly sourceAcks: number
  readonly sourceAcksPending: number
  readonly replayed: number
  readonly writeFailures: number
  readonly commands: number
  readonly foreignCommands: number
  readonly badFrames: number
  /** Ring frames the worker has taken (decoded or refused). */
  readonly framesRead: number
  /** Events on their way to the worker's lambda: frames in the rings not read yet, and events in the worker's mailbox. */
  readonly lag: number
}

export interface RunningWorker {
  readonly id: string
  readonly stats: () => WorkerStats
  /** The worker's thread id, while it runs (a test may crash it). */
  readonly threadId: () => number | undefined
  /** Terminates the worker thread as a crash would (tests). */
  readonly crash: Effect.Effect<void>
  /** Stops the strategy and its worker. */
  readonly stop: Effect.Effect<void>
  /**
   * Writes `bytes` as the codec part of one ring frame of `lane`, behind a
   * well-formed ring header, as the main thread writes every frame (tests:
   * what a worker does with a frame that does not decode). False when the
   * ring has no room now.
   */
  readonly unsafeWriteFrame: (lane: "market" | "critical", bytes: Uint8Array) => boolean
}

const BOOTSTRAP = new URL("./bootstrap.mjs", import.meta.url)
const ENTRY = new URL(`./entry${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href

type Inbox = FromWorker | { readonly _tag: "Exit"; readonly run: number; readonly code: number } | {
  readonly _tag: "Error"
  readonly run: number
  readonly reason: string
}

/**
 * One codec writer for every worker of the process, and the last event it
 * encoded: a fan-out of one shared event to ten workers encodes it once. The
 * key is the object and its ownership period (bumped at every acquire), so
 * a recycled and reused object is encoded afresh.
 */
const codec = new FrameWriter()
let encodedEvent: AnyEvent | undefined
let encodedGen = -1
let encodedFrame: Uint8Array = new Uint8Array(0)
/** The event's codec frame: a view valid until the next call. Throws on an event the codec refuses. */
const encode = (e: AnyEvent): Uint8Array => {
  if (e === encodedEvent && e._gen === encodedGen) return encodedFrame
  encodedEvent = undefined
  encodedFrame = codec.begin().add(e).finishView()
  encodedEvent = e
  encodedGen = e._gen
  return encodedFrame
}

const firstLine = (e: unknown): string => {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  return text.split("\n", 1)[0]!.slice(0, 300)
}

const levels: Record<WorkerLog["level"], LogLevel.LogLevel> = {
  All: LogLevel.All,
  Fatal: LogLevel.Fatal,
  Error: LogLevel.Error,
  Warning: LogLevel.Warning,
  Info: LogLevel.Info,
  Debug: LogLevel.Debug,
  Trace: LogLevel.Trace,
  None: LogLevel.None
}

/**
 * Runs the strategy of `spec.module` on a worker thread for the life of the
 * scope. Fails when the module does not load or the strategy does not start.
 */
export const runIsolated = (
  spec: IsolatedStrategySpec
): Effect.Effect<
  RunningWorker,
  StrategyStartFailed | import("../strategy/Errors.js").StrategyModuleFailed,
  Scope.Scope | DataBus | ControlBus | Dispatcher | Recycler
> =>
  Effect.gen(function*() {
    const settings: WorkerSettings = { ...defaultWorkerSettings, ...spec.settings }
    const bus = yield* DataBus
    const control = yield* ControlBus
    const dispatcher = yield* Dispatcher
    const recycler = yield* Recycler
    const recycle = recycler.unsafeRecycle
    const base = spec.base ?? process.cwd()
    const file = resolveModule(spec.module, base)
    // the definition is read here too: its id names the consumer before the worker runs
    const definition = yield* loadStrategy(file, base)
    const id = spec.id ?? definition.id
    const parent = yield* Effect.scope
    const scope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
    const fibers = yield* FiberSet.make<unknown, never>().pipe(Scope.extend(scope))

    const criticalMemory = makeRingMemory(settings.criticalRingBytes)
    const marketMemory = makeRingMemory(settings.marketRingBytes)
    const critical = new RingWriter(criticalMemory)
    const market = new RingWriter(marketMemory)
    const bells = Bell.memory(3)
    const wake = new Bell(bells, 0)
    const room = new Bell(bells, 1)
    const acked = new Bell(bells, 2)
    const shared = new SharedArrayBuffer(STAT_SLOTS * 8)
    const workerStats = new Float64Array(shared)
    const criticalView = new DataView(criticalMemory.buffer)
    const marketView = new DataView(marketMemory.buffer)
    const criticalBase = criticalMemory.buffer.byteLength - criticalMemory.capacity
    const marketBase = marketMemory.buffer.byteLength - marketMemory.capacity
    const originUs = performance.timeOrigin * 1000

    // The worker is woken once per turn of the main thread, not once per
    // frame: a sleeping worker costs a futex wake (microseconds) per ring of
    // the bell, so a burst of frames written in one turn rings it once, when
    // the turn's synchronous work ends (a microtask). A busy worker is not
    // sleeping and is never rung.
    let wakeQueued = false
    const ringWake = () => {
      wakeQueued = false
      wake.ring()
    }
    const queueWake = () => {
      if (wakeQueued) return
      wakeQueued = true
      queueMicrotask(ringWake)
    }

    // critical frames written and not yet acknowledged, oldest first, with
    // the acknowledgement their event owes to where it came from, if any
    const unacked: Array<{ readonly seq: number; readonly frame: Uint8Array; readonly ack: (() => void) | undefined }> = []
    let unackedHead = 0
    let criticalSeq = 0
    let sourceAcks = 0
    let sourceAcksPending = 0
    const trimAcked = () => {
      const upTo = critical.acked
      while (unackedHead < unacked.length && unacked[unackedHead]!.seq <= upTo) {
        const ack = unacked[unackedHead++]!.ack
        if (ack !== undefined) {
          sourceAcksPending--
          sourceAcks++
          ack()
        }
      }
      if (unackedHead > 1_024 && unackedHead * 2 > unacked.length) {
        unacked.splice(0, unackedHead)
        unackedHead = 0
      }
    }

    let closed = false
    let pumpHolding = false
    let waiting = 0
    let maxConcurrentWaits = 0
    let handoverWaits = 0
    let handoverTimeouts = 0
    let writeFailures = 0
    let commands = 0
    let foreignCommands = 0
    let crashes = 0
    let restarts = 0
    let replayed = 0
    let running = false
    let gaveUp = false

    const failures = yield* Queue.unbounded<RingWriteFailed>()
    yield* FiberSet.run(
      fibers,
      Effect.forever(Effect.flatMap(Queue.take(failures), (f) =>
        Effect.logError("event not written to a strategy worker: recycled", Cause.fail(f)).pipe(
          Effect.annotateLogs({ consumer_id: id, trace_id: f.traceId, kind: f.kind })
        )))
    )

    /**
     * Writes `e` to its lane's ring and recycles it; false when the ring has
     * no room now (nothing written, `e` still held). `gen` is the generation
     * it is held in; absent (a hand-over from the dispatcher), it is read only
     * once the event is taken: reading a shared event's generation is what
     * takes it (`Pool.generationOf`), so a refused offer must not read it.
     */
    const write = (e: AnyEvent, gen: Generation | undefined): boolean => {
      const crit = isCritical(e.kind)
      const ring = crit ? critical : market
      let frame: Uint8Array
      try {
        frame = encode(e)
      } catch (u) {
        return refuseWrite(e, gen, firstLine(u))
      }
      const size = FRAME_HEADER + frame.length
      if (size > ring.maxFrame) return refuseWrite(e, gen, `a frame of ${size} bytes, the ring takes ${ring.maxFrame}`)
      const seq = crit ? criticalSeq + 1 : 0
      const ts = e._dispatchTs > 0 ? e._dispatchTs + originUs : 0
      const view = crit ? criticalView : marketView
      const at = crit ? criticalBase : marketBase
      let wroteAt = -1
      const ok = ring.tryWrite(size, (bytes, offset) => {
        view.setFloat64(at + offset + HEADER_DISPATCH_TS, ts, true)
        view.setUint32(at + offset + HEADER_SEQ, seq, true)
        view.setUint32(at + offset + HEADER_SEQ + 4, 0, true)
        bytes.set(frame, offset + FRAME_HEADER)
        wroteAt = offset
      })
      if (!ok) return false
      if (crit) {
        criticalSeq = seq
        const ack = e._ack
        unacked.push({ seq, frame: new Uint8Array(criticalMemory.buffer, criticalBase + wroteAt, size).slice(), ack })
        if (ack !== undefined) {
          sourceAcksPending++
          wakeAcker()
        }
        trimAcked()
      }
      queueWake()
      recycle(e, gen ?? generationOf(e))
      return true
    }

    const refuseWrite = (e: AnyEvent, gen: Generation | undefined, reason: string): true => {
      writeFailures++
      Queue.unsafeOffer(failures, new RingWriteFailed({ consumerId: id, traceId: e.traceId, kind: e.kind, reason }))
      // done with, as an event whose handler failed is: reported, and not delivered again (it would fail again)
      e._ack?.()
      recycle(e, gen ?? generationOf(e))
      return true
    }

    /**
     * Completes when the worker has made room in `ring`, or after `ms`. The
     * wait is on the worker thread, so it is in real time: the bell's own
     * timeout (no timer fiber, nothing left behind by an interruption).
     */
    const waitRoom = (ring: RingWriter, ms: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        const armed = room.arm()
        waiting++
        if (waiting > maxConcurrentWaits) maxConcurrentWaits = waiting
        if (ring.used < ring.capacity / 2) {
          // room was made between the refusal and the arming
          if (--waiting === 0) room.disarm()
          return Effect.void
        }
        return Effect.promise(() => room.sleep(armed, ms)).pipe(
          Effect.ensuring(Effect.sync(() => {
            if (--waiting === 0) room.disarm()
          }))
        )
      })

    const endpoint = (mailbox: Mailbox): Endpoint => {
      const offer = (e: AnyEvent): boolean => {
        if (closed) {
          mailbox.offer(e) // refused and recycled by the closed mailbox, counted there
          return true
        }
        if (mailbox.size === 0 && !pumpHolding && write(e, undefined)) return true
        if (isCritical(e.kind) || mailbox.size > 0 || pumpHolding) {
          mailbox.offer(e)
          return true
        }
        return false
      }
      const deliver = (e: AnyEvent): Effect.Effect<void, DeliveryError> =>
        Effect.suspend(() => {
          if (gaveUp) {
            mailbox.offer(e)
            return Effect.fail(new DeliveryError({ consumerId: id, reason: `the strategy worker stopped after ${crashes} crashes` }))
          }
          if (offer(e)) return Effect.void
          handoverWaits++
          const wait = waitRoom(market, settings.handoverWaitMs)
          return Effect.map(wait, () => {
            if (!offer(e)) {
              handoverTimeouts++
              mailbox.offer(e)
            }
          })
        })
      return { consumerId: id, offer, deliver }
    }

    const mailbox = yield* bus.register(id, spec.mailbox, endpoint).pipe(Scope.extend(scope))

    /** Moves what the mailbox queued (critical first) into the rings as room comes. */
    let held: { e: AnyEvent; gen: Generation } | undefined
    const pump: Effect.Effect<never> = Effect.forever(
      Effect.zipRight(
        mailbox.awaitEvent,
        Effect.suspend(function loop(): Effect.Effect<void> {
          if (held === undefined) {
            const e = mailbox.poll()
            if (e === undefined) return Effect.void
            held = { e, gen: mailbox.polledGeneration }
            pumpHolding = true
          }
          if (write(held.e, held.gen)) {
            held = undefined
            pumpHolding = false
            return Effect.suspend(loop)
          }
          return Effect.zipRight(waitRoom(isCritical(held.e.kind) ? critical : market, 1_000), Effect.suspend(loop))
        })
      )
    ).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          if (held !== undefined) recycle(held.e, held.gen)
          held = undefined
          pumpHolding = false
        })
      )
    )
    const pumpFiber = yield* FiberSet.run(fibers, pump)

    /**
     * Passes the worker's acknowledgements on to where the events came from
     * (`trimAcked`), while some are owed: the worker rings the `acked` bell
     * after each, so an acknowledgement costs no polling; with none owed, the
     * fiber waits for the next such event to be written.
     */
    let ackerIdle: (() => void) | undefined
    const wakeAcker = () => {
      const resume = ackerIdle
      ackerIdle = undefined
      resume?.()
    }
    const acker: Effect.Effect<never> = Effect.forever(Effect.suspend(() => {
      trimAcked()
      if (sourceAcksPending === 0) {
        return Effect.async<void>((resume) => {
          ackerIdle = () => resume(Effect.void)
          return Effect.sync(() => (ackerIdle = undefined))
        })
      }
      const armed = acked.arm()
      trimAcked()
      if (sourceAcksPending === 0) {
        acked.disarm()
        return Effect.void
      }
      return Effect.ensuring(Effect.promise(() => acked.sleep(armed, 1_000)), Effect.sync(() => acked.disarm()))
    }))
    yield* FiberSet.run(fibers, acker)

    // ---- the worker thread ----
    const inbox = yield* Queue.unbounded<Inbox>()
    let worker: Worker | undefined
    let run = 0
    let stopping = false
    const started = yield* Deferred.make<void, StrategyStartFailed>()
    const exited = yield* Deferred.make<void>()
    let lastError = ""

    const spawn = (replay: ReadonlyArray<Uint8Array>) =>
      Effect.sync(() => {
        const thisRun = ++run
        const init: WorkerInit = {
          entry: ENTRY,
          consumerId: id,
          module: file,
          options: spec.options,
          mailbox: spec.mailbox ?? {},
          eventTimeoutMs: spec.eventTimeoutMs,
          topology: spec.topology,
          ownKillSwitchOnly: spec.ownKillSwitchOnly === true,
          critical: criticalMemory,
          market: marketMemory,
          bells,
          stats: shared,
          mainTimeOrigin: performance.timeOrigin,
          replay,
          restarts
        }
        lastError = ""
        const w = new Worker(fileURLToPath(BOOTSTRAP), { workerData: init })
        w.on("message", (m: FromWorker) => Queue.unsafeOffer(inbox, m))
        w.on("error", (e) => Queue.unsafeOffer(inbox, { _tag: "Error", run: thisRun, reason: firstLine(e) }))
        w.on("exit", (code) => Queue.unsafeOffer(inbox, { _tag: "Exit", run: thisRun, code }))
        worker = w
      })

    /** The critical frames the dead worker took and never acknowledged: those not still in the ring. */
    const toReplay = (): Array<Uint8Array> => {
      trimAcked()
      const pending = unacked.slice(unackedHead)
      const inRing = (critical.framesWritten - critical.framesRead) >>> 0
      return pending.slice(0, Math.max(0, pending.length - inRing)).map((p) => p.frame)
    }

    const relog = (m: WorkerLog) =>
      Effect.logWithLevel(levels[m.level], m.message).pipe(
        Effect.annotateLogs({ ...m.annotations, worker: id, ...(m.cause === undefined ? {} : { cause: m.cause }) })
      )

    const onCommand = (json: string): Effect.Effect<void> => {
      commands++
      const decoded = decodeControlJsonCommand(json)
      const claimed = Either.isRight(decoded) ? decoded.right.consumerId : decoded.left.consumerId
      if (claimed !== id && claimed !== "unknown") {
        foreignCommands++
        const command = Either.isRight(decoded) ? decoded.right._tag : decoded.left.command
        const refused = new ForeignCommand({ consumerId: id, claimed, command })
        return Effect.logWarning("command refused", Cause.fail(refused)).pipe(Effect.annotateLogs({ consumer_id: id, claimed }))
      }
      return Either.isRight(decoded) ? control.submit(decoded.right) : control.submitJson(json)
    }

    const crashed = (code: number) =>
      Effect.gen(function*() {
        running = false
        worker = undefined
        crashes++
        const replay = toReplay()
        const error = new WorkerCrashed({
          consumerId: id,
          exitCode: code,
          reason: lastError === "" ? "the thread ended" : lastError,
          crashes,
          replayed: replay.length
        })
        yield* Effect.logError("strategy worker crashed", Cause.fail(error)).pipe(
          Effect.annotateLogs({ consumer_id: id, exit_code: code, crashes, replayed: replay.length })
        )
        if (!(yield* Deferred.isDone(started))) {
          yield* Deferred.fail(started, new StrategyStartFailed({ strategyId: id, module: spec.module, reason: error.message }))
          yield* Deferred.succeed(exited, undefined)
          return
        }
        if (restarts >= settings.maxRestarts) {
          gaveUp = true
          closed = true
          yield* Fiber.interrupt(pumpFiber)
          mailbox.close() // what is queued, and what comes from now on, is refused loudly and recycled
          const given = new WorkerGaveUp({ consumerId: id, crashes })
          yield* Effect.logError("strategy worker given up", Cause.fail(given)).pipe(Effect.annotateLogs({ consumer_id: id }))
          yield* Deferred.succeed(exited, undefined)
          return
        }
        yield* Effect.sleep(Duration.millis(settings.restartBackoffMs * 2 ** restarts))
        if (stopping) return yield* Deferred.succeed(exited, undefined)
        restarts++
        replayed += replay.length
        yield* spawn(replay)
      })

    const supervise: Effect.Effect<never> = Effect.forever(
      Effect.flatMap(Queue.take(inbox), (m): Effect.Effect<void> => {
        switch (m._tag) {
          case "Started":
            running = true
            return Deferred.succeed(started, undefined)
          case "StartFailed":
            lastError = m.reason
            return Deferred.isDone(started).pipe(
              Effect.flatMap((done) =>
                done
                  ? Effect.logError("strategy worker did not restart its strategy").pipe(
                    Effect.annotateLogs({ consumer_id: id, reason: m.reason })
                  )
                  : Deferred.fail(started, new StrategyStartFailed({ strategyId: id, module: spec.module, reason: m.reason }))
              )
            )
          case "Command":
            return onCommand(m.json)
          case "Log":
            return relog(m)
          case "Stopped":
            return Effect.void
          case "Error":
            if (m.run === run) lastError = m.reason
            return Effect.void
          case "Exit":
            if (m.run !== run) return Effect.void
            if (stopping) {
              worker = undefined
              running = false
              return Deferred.succeed(exited, undefined)
            }
            return crashed(m.code)
        }
      })
    )
    yield* FiberSet.run(fibers, supervise)

    const terminate = Effect.suspend(() => {
      const w = worker
      return w === undefined ? Effect.void : Effect.promise(() => w.terminate()).pipe(Effect.asVoid)
    })

    // Finalizers run last-added first: flush and stop the worker, then the
    // fibers (the FiberSet's), then the mailbox (it recycles what is left).
    yield* Scope.addFinalizer(
      scope,
      Effect.gen(function*() {
        // what the mailbox still holds goes to the rings first (bounded by the stop timeout, in real time)
        const deadline = performance.now() + settings.stopTimeoutMs
        while ((mailbox.size > 0 || pumpHolding) && running && performance.now() < deadline) {
          yield* waitRoom(critical, 5)
        }
        closed = true
        stopping = true
        yield* Fiber.interrupt(pumpFiber)
        // a sleeping acker is released now rather than at its timeout
        acked.ring()
        const w = worker
        if (w !== undefined && !gaveUp) {
          w.postMessage({ _tag: "Stop" } satisfies ToWorker)
          yield* Deferred.await(exited).pipe(
            Effect.timeoutTo({ duration: settings.stopTimeoutMs, onSuccess: () => true, onTimeout: () => false }),
            Effect.flatMap((exitedInTime) =>
              exitedInTime
                ? Effect.void
                : Effect.zipRight(
                  Effect.logWarning("strategy worker did not stop in time: terminated").pipe(Effect.annotateLogs({ consumer_id: id })),
                  terminate
                )
            )
          )
        }
        // the acknowledgements of what the worker handled last are passed on before the acker stops
        trimAcked()
        // the worker's last log records
        const rest = yield* Queue.takeAll(inbox)
        for (const m of rest) if (m._tag === "Log") yield* relog(m)
      })
    )
    // runs first: no new event is routed to the worker while it stops
    yield* Scope.addFinalizer(scope, dispatcher.removeConsumer(id))

    yield* spawn([])
    yield* Deferred.await(started).pipe(
      Effect.tapErrorCause(() =>
        Effect.zipRight(Effect.sync(() => (stopping = true)), Effect.zipRight(terminate, Scope.close(scope, Exit.void)))
      )
    )

    const read = (slot: number) => workerStats[slot]!
    return {
      id,
      threadId: () => worker?.threadId,
      crash: terminate,
      stop: Scope.close(scope, Exit.void),
      unsafeWriteFrame: (lane, bytes) => {
        const ring = lane === "critical" ? critical : market
        const view = lane === "critical" ? criticalView : marketView
        const at = lane === "critical" ? criticalBase : marketBase
        const size = FRAME_HEADER + bytes.length
        const seq = lane === "critical" ? criticalSeq + 1 : 0
        let wroteAt = -1
        const ok = ring.tryWrite(size, (data, offset) => {
          view.setFloat64(at + offset + HEADER_DISPATCH_TS, 0, true)
          view.setUint32(at + offset + HEADER_SEQ, seq, true)
          view.setUint32(at + offset + HEADER_SEQ + 4, 0, true)
          data.set(bytes, offset + FRAME_HEADER)
          wroteAt = offset
        })
        if (!ok) return false
        if (lane === "critical") {
          // kept as every critical frame is, so that a crash's replay counts it
          criticalSeq = seq
          unacked.push({ seq, frame: new Uint8Array(criticalMemory.buffer, criticalBase + wroteAt, size).slice(), ack: undefined })
        }
        queueWake()
        return true
      },
      stats: (): WorkerStats => {
        trimAcked()
        const figures = readConsumerFigures(workerStats)
        return {
          consumerId: id,
          running,
          crashes,
          restarts,
          marketFrames: market.framesWritten,
          criticalFrames: critical.framesWritten,
          ringFull: market.full + critical.full,
          handoverWaits,
          handoverTimeouts,
          waitingNow: waiting,
          maxConcurrentWaits,
          criticalUnacked: unacked.length - unackedHead,
          sourceAcks,
          sourceAcksPending,
          replayed,
          writeFailures,
          commands,
          foreignCommands,
          ...figures,
          badFrames: read(STAT_BAD_FRAMES),
          framesRead: read(STAT_FRAMES_READ),
          lag: Math.max(0, market.framesWritten + critical.framesWritten - read(STAT_FRAMES_READ)) + figures.lag
        }
      }
    } satisfies RunningWorker
  })
