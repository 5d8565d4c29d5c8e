/**
 * Starting the strategies declared `isolation: worker` (a `strategies.modules`
 * entry of the configuration): each on a worker thread of its own
 * (`StrategyWorker.ts`), reported in the `StrategyRegistry` as the others are
 * (`Runner.ts`). One that does not start is reported with its id or file and
 * the cause, and the others go on.
 */
import { Effect, type Scope } from "effect"
import type { ControlBus } from "../ControlBus.js"
import type { DataBus, MailboxOptions } from "../DataBus.js"
import type { Dispatcher } from "../Dispatcher.js"
import type { Recycler } from "../Recycler.js"
import { idOfFile } from "../strategy/Loader.js"
import { StrategyRegistry } from "../strategy/Registry.js"
import type { Topology } from "../strategy/Strategy.js"
import { type RunningWorker, runIsolated, type WorkerSettings } from "./StrategyWorker.js"

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
  readonly worker?: Partial<WorkerSettings>
}

/** Starts every worker strategy; never fails: what did not start is reported and marked. */
export const startIsolatedStrategies = (
  specs: ReadonlyArray<WorkerStrategySpec>,
  settings: IsolatedStartSettings = {}
): Effect.Effect<
  ReadonlyArray<RunningWorker>,
  never,
  Scope.Scope | DataBus | ControlBus | Dispatcher | Recycler | StrategyRegistry
> =>
  Effect.gen(function*() {
    const registry = yield* StrategyRegistry
    const started = yield* Effect.forEach(specs, (spec) =>
      runIsolated({
        module: spec.module,
        options: spec.options,
        ...(settings.base === undefined ? {} : { base: settings.base }),
        ...(settings.mailbox === undefined ? {} : { mailbox: settings.mailbox }),
        ...(settings.eventTimeoutMs === undefined ? {} : { eventTimeoutMs: settings.eventTimeoutMs }),
        ...(settings.topology === undefined ? {} : { topology: settings.topology }),
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
    return started.flatMap((o) => (o._tag === "Some" ? [o.value] : []))
  })
