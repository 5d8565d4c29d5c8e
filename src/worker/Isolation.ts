/**
 * Starting the strategies declared `isolation: worker` (a `strategies.modules`
 * entry of the configuration): each on a worker thread of its own
 * (`StrategyWorker.ts`), reported in the `StrategyRegistry` as the others are
 * (`Runner.ts`). One that does not start is reported with its id or file and
 * the cause, and the others go on.
 *
 * Their figures (`WorkerStats`: frames, full rings, waits, crashes,
 * restarts, refused frames, the worker's consumer books) are published with
 * every status sample (`publishWorkerFigures`, the `meltica_worker_*`
 * metrics of `Metrics.ts`, and the worker's consumer under the
 * `meltica_consumer_*` ones as any other consumer), tagged by consumer.
 */
import { Effect, MetricLabel, type Scope } from "effect"
import type { ControlBus } from "../ControlBus.js"
import type { DataBus, MailboxOptions } from "../DataBus.js"
import type { Dispatcher } from "../Dispatcher.js"
import {
  consumerFailures,
  consumerProcessed,
  consumerSkippedStale,
  consumerTimeouts,
  workerCommands,
  workerCrashes,
  workerCriticalUnacked,
  workerDispatchToLambda,
  workerForeignCommands,
  workerFramesRead,
  workerHandoverTimeouts,
  workerHandoverWaits,
  workerReplayed,
  workerRestarts,
  workerRingFrames,
  workerRingFull,
  workerRunning,
  workerUndecodableFrames,
  workerWaiting,
  workerWriteFailures
} from "../Metrics.js"
import type { Recycler } from "../Recycler.js"
import { type ContributedConsumer, type MetricSink, Status } from "../Status.js"
import { idOfFile } from "../strategy/Loader.js"
import { StrategyRegistry } from "../strategy/Registry.js"
import type { Topology } from "../strategy/Strategy.js"
import { type RunningWorker, runIsolated, type WorkerSettings, type WorkerStats } from "./StrategyWorker.js"

/** Where a strategy runs: on the main thread (the default) or on a worker thread of its own. */
export type Isolation = "process" | "worker"

/** A strategy spec that asks for a worker: a module (a value cannot cross to another thread). */
export interface WorkerStrategySpec {
  readonly module: string
  readonly options?: unknown
  readonly isolation: "worker"
}

export const isWorkerSpec = (spec: object): spec is WorkerStrategySpec =>
  (spec as { readonly isolation?: unknown }).isolation === "worker" &&
  typeof (spec as { readonly module?: unknown }).module === "string"

export interface IsolatedStartSettings {
  readonly mailbox?: Partial<MailboxOptions>
  readonly eventTimeoutMs?: number
  readonly topology?: Topology
  readonly base?: string
  /** The strategies may engage their own kill switch only (a NATS strategy process). */
  readonly ownKillSwitchOnly?: boolean
  readonly worker?: Partial<WorkerSettings>
}

/** Publishes one worker's figures, tagged with its consumer id. */
export const publishWorkerFigures = (sink: MetricSink, s: WorkerStats): void => {
  const tags = [MetricLabel.make("consumer", s.consumerId)]
  sink.set(workerRunning, s.running ? 1 : 0, tags)
  sink.count(workerCrashes, s.crashes, tags)
  sink.count(workerRestarts, s.restarts, tags)
  sink.count(workerRingFrames, s.marketFrames, [...tags, MetricLabel.make("lane", "market")])
  sink.count(workerRingFrames, s.criticalFrames, [...tags, MetricLabel.make("lane", "critical")])
  sink.count(workerFramesRead, s.framesRead, tags)
  sink.count(workerUndecodableFrames, s.badFrames, tags)
  sink.count(workerRingFull, s.ringFull, tags)
  sink.count(workerHandoverWaits, s.handoverWaits, tags)
  sink.count(workerHandoverTimeouts, s.handoverTimeouts, tags)
  sink.set(workerWaiting, s.waitingNow, tags)
  sink.set(workerCriticalUnacked, s.criticalUnacked, tags)
  sink.count(workerReplayed, s.replayed, tags)
  sink.count(workerWriteFailures, s.writeFailures, tags)
  sink.count(workerCommands, s.commands, tags)
  sink.count(workerForeignCommands, s.foreignCommands, tags)
  // the worker's consumer, as any consumer of the process
  sink.count(consumerProcessed, s.processed, tags)
  sink.count(consumerFailures, s.failures, tags)
  sink.count(consumerTimeouts, s.timeouts, tags)
  sink.count(consumerSkippedStale, s.skippedStale, tags)
  const d2l = s.dispatchToLambda
  if (d2l.count > 0) {
    sink.set(workerDispatchToLambda, d2l.p50 / 1e6, [...tags, MetricLabel.make("quantile", "0.5")])
    sink.set(workerDispatchToLambda, d2l.p99 / 1e6, [...tags, MetricLabel.make("quantile", "0.99")])
    sink.set(workerDispatchToLambda, d2l.max / 1e6, [...tags, MetricLabel.make("quantile", "max")])
  }
}

/** A worker strategy's consumer as the status page lists it (its figures as the worker last published them). */
export const workerConsumer = (s: WorkerStats): ContributedConsumer => {
  const recent = s.recentDispatchToLambda
  return {
    id: s.consumerId,
    processed: s.processed,
    failures: s.failures,
    skippedStale: s.skippedStale,
    lag: s.lag,
    criticalProcessed: s.criticalProcessed,
    minVersion: s.minVersion,
    p50Us: recent.count > 0 ? recent.p50 : null,
    p99Us: recent.count > 0 ? recent.p99 : null,
    maxUs: recent.count > 0 ? recent.max : null,
    processingP99Us: s.processingP99 > 0 ? s.processingP99 : null
  }
}

/**
 * Starts every worker strategy, their figures published with every status
 * sample from then on; never fails: what did not start is reported and marked.
 */
export const startIsolatedStrategies = (
  specs: ReadonlyArray<WorkerStrategySpec>,
  settings: IsolatedStartSettings = {}
): Effect.Effect<
  ReadonlyArray<RunningWorker>,
  never,
  Scope.Scope | DataBus | ControlBus | Dispatcher | Recycler | StrategyRegistry | Status
> =>
  Effect.gen(function*() {
    const registry = yield* StrategyRegistry
    const status = yield* Status
    const started = yield* Effect.forEach(specs, (spec) =>
      runIsolated({
        module: spec.module,
        options: spec.options,
        ...(settings.base === undefined ? {} : { base: settings.base }),
        ...(settings.mailbox === undefined ? {} : { mailbox: settings.mailbox }),
        ...(settings.eventTimeoutMs === undefined ? {} : { eventTimeoutMs: settings.eventTimeoutMs }),
        ...(settings.topology === undefined ? {} : { topology: settings.topology }),
        ...(settings.ownKillSwitchOnly === undefined ? {} : { ownKillSwitchOnly: settings.ownKillSwitchOnly }),
        ...(settings.worker === undefined ? {} : { settings: settings.worker })
      }).pipe(
        Effect.tap((w) =>
          Effect.sync(() => registry.set({ id: w.id, module: spec.module, state: "running", description: "on a worker thread" }))
        ),
        Effect.tap((w) => Effect.addFinalizer(() => Effect.sync(() => registry.mark(w.id, "stopped")))),
        Effect.tap((w) =>
          Effect.logInfo("strategy started on a worker thread").pipe(Effect.annotateLogs({ consumer_id: w.id }))
        ),
        Effect.tapError((failure) =>
          Effect.zipRight(
            Effect.sync(() => {
              const id = failure._tag === "StrategyStartFailed" ? failure.strategyId : idOfFile(spec.module)
              registry.set({ id, module: spec.module, state: "failed", reason: failure.message })
            }),
            Effect.logError("strategy not started").pipe(
              Effect.annotateLogs({ module: spec.module, isolation: "worker", reason: failure.message })
            )
          )
        ),
        Effect.option
      ), { concurrency: "unbounded" })
    const running = started.flatMap((o) => (o._tag === "Some" ? [o.value] : []))
    // a stopped worker's last figures stay published (its counters do not go back)
    if (running.length > 0) {
      status.contribute((sink) => running.forEach((w) => publishWorkerFigures(sink, w.stats())))
      status.contributeConsumers(() => running.map((w) => workerConsumer(w.stats())))
    }
    return running
  })
