/**
 * Starting a process's strategies, each on its own: a strategy whose module
 * does not load, whose options do not decode or whose `start` fails is
 * logged with its id (or its file) and the cause, marked failed in the
 * `StrategyRegistry` (readiness and `/status.json` say so), and stopped
 * alone; the others start and run.
 */
import { Effect, type Scope } from "effect"
import type { Consumers } from "../Consumer.js"
import type { ControlBus } from "../ControlBus.js"
import type { MailboxOptions } from "../DataBus.js"
import type { PortfolioSnapshot } from "../ExecutionVenue.js"
import { StrategyIdTaken, type StrategyFailure, type StrategyModuleFailed } from "./Errors.js"
import { idOfFile, loadStrategy } from "./Loader.js"
import { StrategyRegistry } from "./Registry.js"
import { run, type RunningStrategy, type Strategy, type Topology } from "./Strategy.js"

/** A strategy to run: given as a value, or by the file whose default export it is. */
export type StrategySpec =
  | { readonly strategy: Strategy; readonly options?: unknown; readonly module?: string }
  | { readonly module: string; readonly options?: unknown; readonly isolation?: "process" | "worker" }

export interface StartSettings {
  readonly mailbox?: Partial<MailboxOptions>
  /** The gateway's limit on one handler call (a strategy's own `eventTimeoutMs` wins). */
  readonly eventTimeoutMs?: number
  readonly topology?: Topology
  /** The execution venue's accounts, where the process has one (`ctx.portfolio`). */
  readonly portfolio?: () => PortfolioSnapshot
  /** The directory module paths are relative to. */
  readonly base?: string
  /** A strategy may engage its own kill switch only (see `RunSettings.ownKillSwitchOnly`). */
  readonly ownKillSwitchOnly?: boolean
}

/** The name a failure is reported under: the strategy's id, its file when it has none, a second of one id marked as such. */
const failureId = (f: StrategyFailure): string =>
  f._tag === "StrategyModuleFailed"
    ? f.module
    : f._tag === "StrategyIdTaken"
    ? `${f.strategyId} (second${f.module === undefined ? "" : `, ${f.module}`})`
    : f.strategyId

/** Starts every strategy; never fails: what did not start is reported and marked, and the rest runs. */
export const startStrategies = (
  specs: ReadonlyArray<StrategySpec>,
  settings: StartSettings = {}
): Effect.Effect<ReadonlyArray<RunningStrategy>, never, Scope.Scope | Consumers | ControlBus | StrategyRegistry> =>
  Effect.gen(function*() {
    const registry = yield* StrategyRegistry
    const base = settings.base ?? process.cwd()

    const report = (failure: StrategyFailure) =>
      Effect.sync(() => registry.mark(failureId(failure), "failed", failure.message)).pipe(
        Effect.zipRight(
          Effect.logError("strategy not started").pipe(
            Effect.annotateLogs({
              strategy_id: failureId(failure),
              ...(failure._tag === "StrategyModuleFailed" || failure.module === undefined ? {} : { module: failure.module }),
              reason: failure.message
            })
          )
        )
      )

    // modules load side by side; a file that does not load is reported by its name
    type Loaded = { readonly strategy: Strategy; readonly options?: unknown; readonly module?: string }
    const load = (spec: StrategySpec): Effect.Effect<Loaded, StrategyModuleFailed> =>
      "strategy" in spec
        ? Effect.succeed(spec)
        : Effect.map(loadStrategy(spec.module, base), (strategy): Loaded => ({ ...spec, strategy }))
    let unnamed = 0
    const loaded = yield* Effect.forEach(specs, (spec) =>
      load(spec).pipe(
        // a strategy given as a value without an id: its file's name, else a number
        Effect.map((l): Loaded =>
          l.strategy.id !== ""
            ? l
            : { ...l, strategy: { ...l.strategy, id: l.module === undefined ? `strategy-${++unnamed}` : idOfFile(l.module) } }
        ),
        Effect.tapError((f) => Effect.sync(() => registry.set({ id: f.module, module: f.module, state: "failed" }))),
        Effect.tapError(report),
        Effect.option
      ), { concurrency: "unbounded" })

    // ids name consumers: the first of two strategies with one id runs, the second is reported
    const ids = new Set<string>()
    const toStart: Array<Loaded> = []
    for (const entry of loaded) {
      if (entry._tag === "None") continue
      const { strategy, module } = entry.value
      if (ids.has(strategy.id)) {
        yield* report(new StrategyIdTaken({ strategyId: strategy.id, module }))
        continue
      }
      ids.add(strategy.id)
      registry.set({
        id: strategy.id,
        state: "starting",
        ...(module === undefined ? {} : { module }),
        ...(strategy.description === undefined ? {} : { description: strategy.description })
      })
      toStart.push(entry.value)
    }

    const started = yield* Effect.forEach(toStart, ({ module, options, strategy }) =>
      run(strategy, {
        options,
        ...(module === undefined ? {} : { module }),
        ...(settings.mailbox === undefined ? {} : { mailbox: settings.mailbox }),
        ...(settings.eventTimeoutMs === undefined ? {} : { eventTimeoutMs: settings.eventTimeoutMs }),
        ...(settings.topology === undefined ? {} : { topology: settings.topology }),
        ...(settings.portfolio === undefined ? {} : { portfolio: settings.portfolio }),
        ...(settings.ownKillSwitchOnly === undefined ? {} : { ownKillSwitchOnly: settings.ownKillSwitchOnly })
      }).pipe(
        Effect.tap(() => Effect.sync(() => registry.mark(strategy.id, "running"))),
        Effect.tap(() => Effect.addFinalizer(() => Effect.sync(() => registry.mark(strategy.id, "stopped")))),
        Effect.tap(() => Effect.logInfo("strategy started").pipe(Effect.annotateLogs({ consumer_id: strategy.id }))),
        Effect.tapError(report),
        Effect.option
      ), { concurrency: "unbounded" })

    return started.flatMap((o) => (o._tag === "Some" ? [o.value] : []))
  })
