/**
 * The in-memory application layer: the embedded default.
 *
 * Everything but the providers, in one process: Pool and Recycler, the
 * in-memory Data Bus, Dispatcher and consumer runtime (`Core.ts`), the
 * Orchestrator, the paper execution venue (its reports go to the Dispatcher,
 * which hands each to the consumer that owns the order), the Control Plane
 * behind the in-memory Control Bus, and the dead-letter queue. The paper
 * venue keeps its open orders across restarts only when `paperStateFile` is
 * set (its strategies restart with it, so by default nothing is kept).
 */
import { Effect, Layer } from "effect"
import { ControlBus } from "../src/ControlBus.js"
import { ControlPlane, Topology } from "../src/ControlPlane.js"
import { DeadLetter, type DeadLetterSettings } from "../src/DeadLetter.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { PaperStore } from "../src/execution/PaperStore.js"
import * as PaperVenue from "../src/execution/Paper.js"
import { Risk, type RiskSettings } from "../src/execution/Risk.js"
import * as LiveExecution from "../src/execution/live/LiveExecution.js"
import { layerPlatformNode } from "../src/Provider.js"
import type { ExecReport } from "../src/Event.js"
import { ExecReportSink } from "../src/ExecutionVenue.js"
import { Orchestrator, OrchestratorConfig, type OrchestratorSettings } from "../src/Orchestrator.js"
import { withMergedTap } from "../src/record/Merged.js"
import { type CoreOptions, layerCore } from "./Core.js"

export interface MemoryOptions extends CoreOptions {
  /** The symbols the gateway carries (commands naming others are rejected). */
  readonly symbols: ReadonlyArray<string>
  /** The providers that feed it. */
  readonly providers: ReadonlyArray<string>
  readonly orchestrator?: Partial<OrchestratorSettings>
  readonly deadLetter?: Partial<DeadLetterSettings>
  /** A file where the paper venue keeps its open orders across restarts (default: none kept). */
  readonly paperStateFile?: string | undefined
  /** Closed orders the paper venue remembers (see `PaperVenueOptions.retainClosed`). */
  readonly paperRetainClosed?: number | undefined
  /** Each venue's paper account, fees, latency and instrument rules (see `PaperVenueOptions.venues`). */
  readonly paperVenues?: Readonly<Record<string, PaperVenue.PaperVenueConfig>> | undefined
  /** The risk limits checked in front of the venue (`execution/Risk.ts`): the defaults and per strategy. */
  readonly risk?: RiskSettings | undefined
  /** Venues that trade live (`execution/live/LiveExecution.ts`); none by default. */
  readonly live?: LiveExecution.LiveExecutionSettings | undefined
  /** Sees every execution report before the Dispatcher takes it (the backtest's journal); must not keep the event. */
  readonly onReport?: ((report: ExecReport) => void) | undefined
  /** The Orchestrator's merged events are shown to the recorder (`record.merged`, `src/record/Merged.ts`). */
  readonly recordMerged?: boolean | undefined
}

/** Execution reports go through the Dispatcher to the consumer that owns the order (seen by `onReport` first). */
const reportsToDispatcher = (onReport?: (report: ExecReport) => void) =>
  Layer.effect(
    ExecReportSink,
    Effect.map(Dispatcher, (d) =>
      onReport === undefined ? d.dispatch : (report: ExecReport) => {
        onReport(report)
        return d.dispatch(report)
      })
  )

/**
 * The in-memory Control Bus, the Control Plane, the Orchestrator and the
 * paper venue, over a pipeline that provides the Dispatcher (in memory here,
 * the NATS feed in `Nats.ts`) and the paper venue's `PaperStore`.
 */
export const controlAndOrchestration = (
  options: Pick<MemoryOptions, "symbols" | "providers" | "orchestrator" | "paperRetainClosed" | "paperVenues" | "risk" | "onReport" | "live" | "recordMerged">
) =>
  ControlBus.layerMemory.pipe(
    Layer.provideMerge(ControlPlane.Default),
    Layer.provideMerge(Topology.layer(options.symbols, options.providers)),
    Layer.provideMerge(options.recordMerged === true ? withMergedTap(Orchestrator.DefaultWithoutDependencies) : Orchestrator.DefaultWithoutDependencies),
    Layer.provideMerge(OrchestratorConfig.layer(options.orchestrator)),
    // the risk checks and the kill switch in front of the venue: the Control Plane sees the guarded one
    Layer.provideMerge(Risk.over(
      // the paper venue, behind the router to the live venues when some trade live
      LiveExecution.layerOver(
        PaperVenue.layerStored({
          symbols: options.symbols,
          ...(options.paperRetainClosed === undefined ? {} : { retainClosed: options.paperRetainClosed }),
          ...(options.paperVenues === undefined ? {} : { venues: options.paperVenues })
        }),
        options.live ?? { enabled: false, venues: [] }
      ).pipe(Layer.provide(layerPlatformNode)),
      options.risk
    )),
    Layer.provideMerge(reportsToDispatcher(options.onReport))
  )

export const layerMemory = (options: MemoryOptions) =>
  controlAndOrchestration(options).pipe(
    Layer.provideMerge(
      options.paperStateFile === undefined ? PaperStore.layerNone : PaperStore.layerFile(options.paperStateFile)
    ),
    Layer.provideMerge(DeadLetter.layer(options.deadLetter)),
    Layer.provideMerge(layerCore(options))
  )
