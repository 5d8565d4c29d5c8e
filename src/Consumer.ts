/**
 * The consumer runtime: strategies are lambdas `(event) => Effect<void, E>`.
 *
 * Each consumer runs in its own fiber, owned by the runtime's `FiberSet`, and
 * drains its mailbox in batches. The wrapper around the lambda:
 * - skips market data whose `routingVersion` is older than the consumer's
 *   minimum accepted version (counted); critical kinds always reach the lambda;
 * - moves the minimum accepted version when a ControlAck for this consumer
 *   says so;
 * - recycles every event however the lambda ends: success, failure, defect
 *   (the seeds' panic) or interruption. Success, failure and defect recycle
 *   the event as the lambda's effect completes; one finalizer around the
 *   drain loop recycles the event in flight and the rest of the batch when the
 *   fiber is interrupted, so the guarantee costs no finalizer per event;
 * - logs a failure or defect with trace_id, consumer id, event kind and the
 *   full cause, counts it, and goes on with the next event.
 *
 * A slow consumer only slows itself: its mailbox coalesces market data and
 * keeps every critical event up to the critical lane's bound (`DataBus.ts`).
 *
 * A lambda that never returns would hold its consumer forever while its
 * critical lane fills. `eventTimeout` (optional, per consumer) bounds each
 * lambda call: past it the call is interrupted and ends as a `LambdaTimedOut`
 * failure, which goes the failure path above (event recycled, counted as a
 * failure and as a timeout, logged with its context) and the consumer goes on
 * with the next event. It costs no fiber and no timer per event: the loop
 * then runs in a child fiber watched by a per-consumer watchdog that sleeps
 * until the call in flight reaches its deadline (a clock read per call, a
 * timer per timeout period; `npm run bench:timeout` measures it).
 */
import { Cause, Data, Duration, Effect, ExecutionStrategy, Exit, Fiber, FiberSet, Scope } from "effect"
import { constTrue } from "effect/Function"
import type { EventKind } from "../schema/Event.js"
import { isCritical } from "../schema/Event.js"
import { DataBus, type Mailbox, type MailboxOptions } from "./DataBus.js"
import { Dispatcher, type RouteKey } from "./Dispatcher.js"
import type { UnknownConsumer } from "./Errors.js"
import type { AnyEvent } from "./Event.js"
import { Histogram, type LatencySummary, nowUs, WindowedHistogram } from "./internal/histogram.js"
import { FAILED, inlineFailure, runInline, SUCCEEDED } from "./internal/inlineEffect.js"
import { type Generation, Recycler } from "./Recycler.js"

/** Lets other fibers run after a full batch. */
const yieldTurn = Effect.yieldNow()

/** The period of the recent-latency window: a summary covers one to two of them. */
const RECENT_PERIOD_US = 10_000_000

export interface ConsumerSpec<E = never> {
  readonly id: string
  /** The strategy. The event is lent for the duration of the returned effect only. */
  readonly handle: (event: AnyEvent) => Effect.Effect<unknown, E>
  readonly subscriptions?: ReadonlyArray<RouteKey>
  readonly minVersion?: number
  readonly mailbox?: Partial<MailboxOptions>
  /** Events taken from the mailbox per drain. */
  readonly batchSize?: number
  /** Longest a lambda call may take; past it the call is interrupted and fails with `LambdaTimedOut`. Off by default. */
  readonly eventTimeout?: Duration.DurationInput
}

/** A lambda call ran past its consumer's `eventTimeout` and was interrupted. */
class LambdaTimedOut extends Data.TaggedError("LambdaTimedOut")<{
  readonly consumerId: string
  readonly traceId: string
  readonly kind: EventKind
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `consumer ${this.consumerId}: the lambda ran past its ${this.timeoutMs} ms timeout on ${this.kind} ${this.traceId}`
  }
}

export interface ConsumerStats {
  readonly id: string
  readonly minVersion: number
  readonly processed: number
  readonly failures: number
  /** Of `failures`: lambda calls interrupted at the consumer's `eventTimeout`. */
  readonly timeouts: number
  readonly skippedStale: number
  readonly criticalProcessed: number
  /** Dispatch hand-over to lambda start, microseconds (over the dispatcher's latency sample), since start. */
  readonly dispatchToLambda: LatencySummary
  /**
   * Of `dispatchToLambda`, the critical lane's events (execution reports, control acks and results): a strategy's
   * own command's ack and reports are handed over while the command is still being processed, and wait for the
   * rest of it.
   */
  readonly criticalDispatchToLambda: LatencySummary
  /** The same over the last 10 to 20 seconds. */
  readonly recentDispatchToLambda: LatencySummary
  /** The venue adapter's ingest (`ingestTs`) to lambda start, microseconds (over the same sample), since start. */
  readonly ingestToLambda: LatencySummary
  /** Lambda run time, microseconds (over the same sample). */
  readonly processing: LatencySummary
  /** Events delivered and not yet taken by the lambda: queued in the mailbox. */
  readonly lag: number
}

export interface ConsumerHandle {
  readonly id: string
  readonly stats: () => ConsumerStats
  readonly minVersion: () => number
  readonly setMinVersion: (version: number) => void
  readonly subscribe: (key: RouteKey) => Effect.Effect<void, UnknownConsumer>
  readonly unsubscribe: (key: RouteKey) => Effect.Effect<void>
  /** Stops the consumer: no more deliveries, queued events recycled. */
  readonly stop: Effect.Effect<void>
}

/** Timed events whose figures are kept before they are recorded in bulk. */
const SAMPLE_SLOTS = 64

/**
 * A consumer's latency figures. The drain loop keeps a timed event's figures
 * as five numbers (`started`, `finished`) and they reach the histograms in
 * bulk: when the slots are full, and before every read (`flush`). The loop
 * then stays small enough for the JIT to compile the strategy's own effect
 * into it; with the histograms' code in it, the compiler's inlining budget ran
 * out before (`bench:fanout`).
 */
class ConsumerLatency {
  readonly dispatchToLambda = new Histogram()
  readonly criticalDispatchToLambda = new Histogram()
  readonly recentDispatchToLambda = new WindowedHistogram(RECENT_PERIOD_US)
  readonly ingestToLambda = new Histogram()
  readonly processing = new Histogram()
  /**
   * Per slot: lambda start, dispatch-to-lambda, ingest-to-lambda (NaN: none), processing (NaN: not yet), in
   * microseconds; and 1 for a critical event, else 0.
   */
  private readonly slots = new Float64Array(SAMPLE_SLOTS * 5)
  private used = 0

  /** A sampled event's lambda starts at `start`. */
  started(start: number, sinceDispatch: number, ingest: number, critical: boolean): void {
    if (this.used === SAMPLE_SLOTS) this.flush()
    const i = this.used++ * 5
    this.slots[i] = start
    this.slots[i + 1] = sinceDispatch
    this.slots[i + 2] = ingest
    this.slots[i + 3] = Number.NaN
    this.slots[i + 4] = critical ? 1 : 0
  }

  /** The last sampled event's lambda ended after `us` (one lambda at a time per consumer). */
  finished(us: number): void {
    // no slot used: a read flushed them while the lambda ran
    if (this.used === 0) this.processing.record(us)
    else this.slots[this.used * 5 - 2] = us
  }

  /** Records the kept samples; answers this. */
  flush(): this {
    const slots = this.slots
    for (let i = 0; i < this.used * 5; i += 5) {
      this.dispatchToLambda.record(slots[i + 1]!)
      if (slots[i + 4] === 1) this.criticalDispatchToLambda.record(slots[i + 1]!)
      this.recentDispatchToLambda.record(slots[i + 1]!, slots[i]!)
      const ingest = slots[i + 2]!
      if (ingest === ingest) this.ingestToLambda.record(ingest) // not NaN
      const processing = slots[i + 3]!
      if (processing === processing) this.processing.record(processing)
    }
    this.used = 0
    return this
  }
}

/** The context an operator needs about a lambda that failed or died. */
export interface FailureContext {
  readonly consumerId: string
  readonly traceId: string
  readonly kind: EventKind
}

export class Consumers extends Effect.Service<Consumers>()("meltica/Consumers", {
  scoped: Effect.gen(function*() {
    const bus = yield* DataBus
    const dispatcher = yield* Dispatcher
    const recycler = yield* Recycler
    const recycle = recycler.unsafeRecycle
    const runtimeScope = yield* Effect.scope
    const fibers = yield* FiberSet.make<void>()
    const handles = new Map<string, ConsumerHandle>()
    const clock = yield* Effect.clock

    const reportFailure = (ctx: FailureContext, cause: Cause.Cause<unknown>) =>
      Effect.logError("consumer lambda failed", cause).pipe(
        Effect.annotateLogs({ consumer_id: ctx.consumerId, trace_id: ctx.traceId, kind: ctx.kind })
      )

    const runLoop = <E>(spec: ConsumerSpec<E>, box: Mailbox, state: {
      minVersion: number
      processed: number
      failures: number
      timeouts: number
      skippedStale: number
      criticalProcessed: number
      readonly latency: ConsumerLatency
    }): Effect.Effect<void> => {
      const batchSize = spec.batchSize ?? 256
      // events taken from the mailbox in this turn: after `batchSize` the loop lets other fibers run
      let taken = 0
      // The event in flight: one at a time per consumer, so its context lives
      // here rather than in closures made per event; the interruption
      // finalizer below recycles it. Events wait in the mailbox until then.
      let inFlight: AnyEvent | undefined
      let inFlightGen = 0 as Generation
      let inFlightCritical = false
      let inFlightStart = 0
      // a remote critical delivery's way back to its source, should its lambda be interrupted
      let inFlightGiveBack: (() => void) | undefined
      // with an event timeout: when the call in flight started (the clock's milliseconds)
      const timeoutMs = spec.eventTimeout === undefined ? 0 : Duration.toMillis(Duration.decode(spec.eventTimeout))
      let callStartMs = 0

      /** Success bookkeeping of one event: acknowledged, recycled, counted, timed. */
      const done = (e: AnyEvent, gen: Generation, critical: boolean, start: number): void => {
        e._ack?.()
        recycle(e, gen)
        state.processed++
        if (critical) state.criticalProcessed++
        if (start > 0) state.latency.finished(nowUs() - start)
      }

      /** The in-flight event's lambda succeeded (the loop's step, with its result). */
      const complete = (): void => {
        const e = inFlight
        if (e === undefined) return // nothing was in flight: a wait, a yield, a turn done in place
        inFlight = undefined
        done(e, inFlightGen, inFlightCritical, inFlightStart)
      }

      /** The in-flight event's lambda failed or died: recycle, count; the report is for the loop to run. */
      const failed = (cause: Cause.Cause<E>): Effect.Effect<void> => {
        const e = inFlight!
        inFlight = undefined
        const context: FailureContext = { consumerId: spec.id, traceId: e.traceId, kind: e.kind }
        e._ack?.()
        recycle(e, inFlightGen)
        state.failures++
        if (inFlightCritical) state.criticalProcessed++
        return reportFailure(context, cause)
      }

      /** More to do in this turn: the mailbox holds an event and the turn has room. */
      const more = (): boolean => taken < batchSize && box.size > 0

      /**
       * What follows a turn done in place: the wait, at once, when it emptied
       * the mailbox (one step of the runtime fewer per wake-up); otherwise the
       * loop comes round (to yield after a full batch).
       */
      const next = (): Effect.Effect<unknown> => {
        if (box.size > 0) return Effect.void
        taken = 0
        return box.awaitEvent
      }

      /** Takes the latencies of an event the dispatcher sampled; answers when its lambda starts. */
      const timed = (e: AnyEvent, critical: boolean): number => {
        const start = nowUs()
        const sinceDispatch = start - e._dispatchTs
        // ingestTs is the clock's epoch microseconds; the dispatcher measured the lag to the hand-over once for all subscribers
        const ingest = e.ingestTs <= 0
          ? Number.NaN
          : e._ingestLagUs >= 0
          ? e._ingestLagUs + sinceDispatch
          : Number(clock.unsafeCurrentTimeNanos() / 1000n) - e.ingestTs
        state.latency.started(start, sinceDispatch, ingest, critical)
        return start
      }

      /**
       * One step of the consumer's loop. With the mailbox empty, it waits for
       * an event; after a full batch, it lets other fibers run; otherwise it
       * takes events from the mailbox (a critical one first) and runs the
       * lambdas whose effect is one synchronous step in place, one after
       * another (`internal/inlineEffect.ts`): nothing can interrupt them, so
       * their event is never in flight. The first effect that needs the
       * runtime is handed to it with its event in flight (its failure caught),
       * and the loop's step completes that event (success bookkeeping).
       */
      const body = (): Effect.Effect<unknown> => {
        if (box.size === 0) {
          taken = 0
          return box.awaitEvent
        }
        if (taken >= batchSize) {
          taken = 0
          return yieldTurn
        }
        for (;;) {
          const e = box.poll()!
          const gen = box.polledGeneration
          taken++
          const critical = isCritical(e.kind)
          if (critical) {
            if (e.kind === "control_ack") {
              const ack = e.payload as { readonly consumerId: string; readonly appliesToVersion: number }
              if (ack.consumerId === spec.id && ack.appliesToVersion > state.minVersion) {
                state.minVersion = ack.appliesToVersion
              }
            }
          } else if (e.routingVersion < state.minVersion) {
            state.skippedStale++
            recycle(e, gen)
            if (more()) continue
            return next()
          }
          // timed when the dispatcher sampled this event for latency
          const start = e._dispatchTs > 0 ? timed(e, critical) : 0
          if (timeoutMs > 0) callStartMs = clock.unsafeCurrentTimeMillis()
          let effect: Effect.Effect<unknown, E>
          try {
            effect = spec.handle(e)
          } catch (defect) {
            effect = Effect.die(defect)
          }
          const ran = runInline(effect)
          if (ran === SUCCEEDED) {
            done(e, gen, critical, start)
            if (more()) continue
            return next()
          }
          inFlight = e
          inFlightGen = gen
          inFlightCritical = critical
          inFlightGiveBack = critical ? box.polledGiveBack : undefined
          inFlightStart = start
          if (ran === FAILED) return failed(inlineFailure.cause as Cause.Cause<E>)
          return Effect.catchAllCause(effect, failed)
        }
      }

      // One loop for the consumer's life, straight from the mailbox: a
      // synchronous lambda runs in place, with no step of the runtime at all;
      // any other lambda's effect is the loop's body, and the success
      // bookkeeping its step, so a delivery costs no frame of its own. Between
      // turns the loop waits or yields, nothing else (`Effect.forever` would
      // add a yield, a scheduler round trip, after every step). The mailbox
      // gives its critical lane first, so a critical event that arrives while
      // market data is being worked through goes ahead of it: an ack that moves
      // the routing version is applied before the stale events behind it.
      const drainForever: Effect.Effect<never> = Effect.whileLoop({
        while: constTrue,
        body,
        step: complete
      }) as Effect.Effect<never>

      /** Completes when the call in flight has run to its deadline; sleeps meanwhile. */
      const watchdog: Effect.Effect<void> = Effect.suspend(() => {
        if (inFlight === undefined) return Effect.zipRight(Effect.sleep(timeoutMs), watchdog)
        const left = callStartMs + timeoutMs - clock.unsafeCurrentTimeMillis()
        return left <= 0 ? Effect.void : Effect.zipRight(Effect.sleep(left), watchdog)
      })

      /**
       * With an event timeout, the loop runs in a child fiber that this one
       * watches. A call past its deadline is interrupted with the loop, settled
       * as a `LambdaTimedOut` failure (recycled, counted, reported), and a new
       * loop goes on with the rest of the batch. Stopping the consumer
       * interrupts the child before the finalizer below recycles what it held.
       */
      const watched: Effect.Effect<void> = Effect.gen(function*() {
        const resume = drainForever
        for (;;) {
          const loop = yield* Effect.fork(resume)
          yield* Effect.onInterrupt(watchdog, () => Fiber.interrupt(loop))
          yield* Fiber.interrupt(loop)
          const e = inFlight
          if (e === undefined) continue // the call ended as it was interrupted
          inFlight = undefined
          const error = new LambdaTimedOut({ consumerId: spec.id, traceId: e.traceId, kind: e.kind, timeoutMs })
          e._ack?.()
          recycle(e, inFlightGen)
          state.failures++
          state.timeouts++
          if (inFlightCritical) state.criticalProcessed++
          yield* reportFailure(error, Cause.fail(error))
        }
      })

      return (timeoutMs > 0 ? watched : drainForever).pipe(
        Effect.onExit(() =>
          Effect.sync(() => {
            // what is still queued is the mailbox's to recycle when it closes; the
            // event whose lambda was interrupted goes back to its source then, if remote
            if (inFlight !== undefined) {
              if (inFlightGiveBack !== undefined) box.giveBackOnClose(inFlightGiveBack)
              recycle(inFlight, inFlightGen)
            }
            inFlight = undefined
          })
        ),
        Effect.asVoid
      )
    }

    const start: <E>(spec: ConsumerSpec<E>) => Effect.Effect<ConsumerHandle, UnknownConsumer> = Effect.fn(
      "Consumers.start"
    )(
      function*<E>(spec: ConsumerSpec<E>) {
        const scope = yield* Scope.fork(runtimeScope, ExecutionStrategy.sequential)
        const box = yield* bus.register(spec.id, spec.mailbox).pipe(Scope.extend(scope))
        const state = {
          minVersion: spec.minVersion ?? 0,
          processed: 0,
          failures: 0,
          timeouts: 0,
          skippedStale: 0,
          criticalProcessed: 0,
          latency: new ConsumerLatency()
        }
        const fiber = yield* FiberSet.run(fibers, runLoop(spec, box, state))
        // Finalizers run last-added first: routes removed, then the fiber
        // interrupted (it recycles the event in flight), then the mailbox
        // closed (it recycles what is still queued).
        yield* Scope.addFinalizer(scope, Fiber.interrupt(fiber))
        yield* Scope.addFinalizer(scope, Effect.sync(() => handles.delete(spec.id)))
        yield* Scope.addFinalizer(scope, dispatcher.removeConsumer(spec.id))
        const handle: ConsumerHandle = {
          id: spec.id,
          stats: () => {
            const latency = state.latency.flush()
            return {
              id: spec.id,
              minVersion: state.minVersion,
              processed: state.processed,
              failures: state.failures,
              timeouts: state.timeouts,
              skippedStale: state.skippedStale,
              criticalProcessed: state.criticalProcessed,
              dispatchToLambda: latency.dispatchToLambda.summary(),
              criticalDispatchToLambda: latency.criticalDispatchToLambda.summary(),
              recentDispatchToLambda: latency.recentDispatchToLambda.summary(nowUs()),
              ingestToLambda: latency.ingestToLambda.summary(),
              processing: latency.processing.summary(),
              lag: box.size
            }
          },
          minVersion: () => state.minVersion,
          setMinVersion: (v) => {
            if (v > state.minVersion) state.minVersion = v
          },
          subscribe: (key) => dispatcher.subscribe(spec.id, key),
          unsubscribe: (key) => dispatcher.unsubscribe(spec.id, key),
          stop: Scope.close(scope, Exit.void)
        }
        handles.set(spec.id, handle)
        yield* Effect.forEach(spec.subscriptions ?? [], handle.subscribe, { discard: true }).pipe(
          Effect.tapErrorCause(() => handle.stop)
        )
        return handle
      }
    )

    return {
      start,
      get: (id: string) => handles.get(id),
      list: () => [...handles.values()],
      /** Running consumer fibers: 0 once every consumer has stopped. */
      running: FiberSet.size(fibers)
    } as const
  })
}) {}
