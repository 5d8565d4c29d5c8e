/**
 * The gateway's status: every component's figures sampled once a second (and
 * on demand), published as the metrics of `Metrics.ts`, and gathered in the
 * `StatusSnapshot` behind the status line, the status page, `/status.json`
 * and `/ready`. Figures per second are computed between two periodic samples.
 *
 * Readiness: every provider connected with consistent books, plus what the
 * application layer contributes through `ReadinessChecks` (and the NATS link
 * through `NatsStatusSource`).
 */
import { Context, Duration, Effect, Metric, MetricLabel, Option, Schedule } from "effect"
import { Consumers } from "./Consumer.js"
import { ControlBus } from "./ControlBus.js"
import { ControlPlane } from "./ControlPlane.js"
import { DataBus } from "./DataBus.js"
import { DeadLetter } from "./DeadLetter.js"
import { Dispatcher } from "./Dispatcher.js"
import { poolTypes, type PoolType } from "./Event.js"
import { type ConsumerOrderStats, ExecutionVenue, type PortfolioSnapshot } from "./ExecutionVenue.js"
import { type KillSwitchState, REFUSAL_REASONS, type RefusalReason, Risk } from "./execution/Risk.js"
import { HeapFallbackWatch, type HeapFallbackWarning } from "./internal/heapFallback.js"
import type { LatencySummary } from "./internal/histogram.js"
import {
  bookConsistent,
  consumerCriticalLatency,
  consumerFailures,
  consumerLag,
  consumerLatency,
  consumerProcessed,
  consumerProcessing,
  consumerSkippedStale,
  consumerTimeouts,
  controlMalformed,
  controlRejected,
  controlRejections,
  controlSubmitted,
  criticalHighWater,
  criticalRefused,
  deadLetters,
  deliveries,
  deliveryFailures,
  dispatched,
  doublePuts,
  duplicates,
  epochResets,
  fanoutDuration,
  fanoutDurationMax,
  fanoutDurationMin,
  fanoutParallelism,
  fanouts,
  frameRefusalReasons,
  gapsSkipped,
  mailboxCoalesced,
  mailboxCriticalRefused,
  mailboxDepth,
  mergeLate,
  mergeMissing,
  mergePartialMissing,
  mergesEmitted,
  mergesPartial,
  mergesSuppressed,
  noSubscriber,
  notReadyReasons,
  openWindows,
  orchestratorForwarded,
  orchestratorIngested,
  orchestratorUnrouted,
  poolAcquired,
  poolCapacity,
  poolFree,
  poolHeapAllocated,
  poolHeapFallbackSustained,
  poolHeapFallbackWarnings,
  poolOutstanding,
  poolUtilization,
  processHeapUsed,
  processResident,
  providerChecksumMismatches,
  providerConnected,
  providerEvents,
  providerFrames,
  providerGaps,
  providerMalformed,
  providerRateLimited,
  providerReconnects,
  providerRequestsDelayed,
  providerResyncs,
  readyGauge,
  recycled,
  routingFlips,
  routingVersion,
  staleHolderPuts,
  streamResyncs,
  suspectJumps,
  undeliverable,
  balance,
  killSwitchEngaged,
  positionPnl,
  positionQuantity,
  riskRefusals,
  strategyOpenOrders,
  strategyPnl,
  liveBudgetLimit,
  liveBudgetUsed,
  liveClockSkew,
  liveConnected,
  liveDuplicateFills,
  liveRateLimited,
  liveReconciliations,
  liveRequestsDelayed,
  venueAmends,
  venueBalanceShortfalls,
  venueFills,
  venueOrders,
  venueReports,
  venueResting,
  type LatencyHistogram,
  recorderBuffered,
  recorderBytes,
  recorderDropped,
  recorderEvents,
  recorderFiles,
  recorderFlushFailures,
  recorderRefused,
  rawFramesBuffered,
  rawFramesBytes,
  rawFramesDropped,
  rawFramesFiles,
  rawFramesRows,
  rawFramesWriteFailures,
  replayFilesSkipped
} from "./Metrics.js"
import { REJECTION_TAGS } from "../schema/Rejection.js"
import { Orchestrator, type OrchestratorStats } from "./Orchestrator.js"
import { Pool } from "./Pool.js"
import { Providers } from "./Provider.js"
import { SKIP_CAUSES } from "./record/Format.js"
import { RawFrameFigures } from "./record/RawFrames.js"
import { RecordingFigures } from "./record/Recorder.js"
import { Recycler } from "./Recycler.js"

export interface ProviderStatusView {
  readonly name: string
  readonly connected: boolean
  readonly events: number
  readonly malformed: number
  readonly gaps: number
  readonly resyncs: number
  readonly books: ReadonlyArray<{ readonly symbol: string; readonly state: "consistent" | "stale"; readonly reason?: string }>
}

export interface ConsumerStatusView {
  readonly id: string
  readonly processed: number
  readonly failures: number
  readonly skippedStale: number
  readonly lag: number
  readonly marketDepth: number
  readonly criticalDepth: number
  readonly coalesced: number
  /** Of `processed`: execution reports, control acks and results. */
  readonly criticalProcessed: number
  readonly minVersion: number
  /** Dispatch to lambda start over the last 10 to 20 s, microseconds; null when nothing was sampled then. */
  readonly p50Us: number | null
  readonly p99Us: number | null
  readonly maxUs: number | null
  /** Lambda run time since start, p99, microseconds; null before the first sampled event. */
  readonly processingP99Us: number | null
}

/**
 * A consumer whose figures come from elsewhere (a strategy on a worker
 * thread, `worker/Isolation.ts`): its status line but for its mailbox in this
 * process, which the sampler reads itself (and adds to `lag`).
 */
export type ContributedConsumer = Omit<ConsumerStatusView, "marketDepth" | "criticalDepth" | "coalesced">

export interface PoolStatusView {
  readonly pool: PoolType
  readonly capacity: number
  readonly outstanding: number
  readonly free: number
  readonly utilization: number
  readonly heapAllocated: number
}

export interface Readiness {
  readonly ready: boolean
  /** Why not, provider by provider. */
  readonly reasons: ReadonlyArray<string>
}

/** The process's NATS link, when its buses run on NATS. */
export interface NatsStatusView {
  readonly connected: boolean
  readonly reconnects: number
  readonly market: { readonly published: number; readonly received: number; readonly dropped: number; readonly subjects: number }
  readonly critical: { readonly published: number; readonly delivered: Readonly<Record<string, number>> }
  readonly commands: { readonly submitted: number; readonly handled: number }
  readonly malformed: number
}

/**
 * What else readiness depends on besides the providers: each reason is one
 * thing not ready yet. An application layer provides it when it has more to
 * wait for (the NATS layers: the connection, the subscriptions).
 */
export class ReadinessChecks extends Context.Tag("meltica/ReadinessChecks")<
  ReadinessChecks,
  { readonly reasons: () => ReadonlyArray<string> }
>() {}

/** Publishes a sampled figure: a counter moves by the difference from its last sample, a gauge is set. */
export interface MetricSink {
  readonly count: (metric: Metric.Metric.Counter<number>, value: number, tags?: ReadonlyArray<MetricLabel.MetricLabel>) => void
  readonly set: (metric: Metric.Metric.Gauge<number>, value: number, tags?: ReadonlyArray<MetricLabel.MetricLabel>) => void
}

/**
 * The NATS link's figures, contributed by the NATS layers (`nats/NatsStatus.ts`)
 * so that the core does not depend on them: what it publishes at each sample,
 * its part of the snapshot, and its reasons for not being ready.
 */
export class NatsStatusSource extends Context.Tag("meltica/NatsStatusSource")<NatsStatusSource, {
  /** Publishes, once at start, the series whose labels are known from the start (at 0). */
  readonly init: (sink: MetricSink) => void
  /** Publishes the link's figures and returns its part of the snapshot. */
  readonly sample: (sink: MetricSink) => NatsStatusView
  readonly readinessReasons: () => ReadonlyArray<string>
}>() {}

/** One strategy of the process, as `/status.json` lists it. */
export interface StrategyStatusView {
  readonly id: string
  readonly module?: string
  readonly description?: string
  readonly state: "starting" | "running" | "failed" | "stopped"
  readonly reason?: string
}

/** The process's strategies, contributed by the application layer where strategies run (`src/strategy/Registry.ts`). */
/**
 * How often the status samples itself (publishing every figure to the
 * metrics), in milliseconds on the fiber's Clock; `undefined` samples only on
 * request. Default: every second. A backtest turns it off: on its virtual
 * clock a sample per recorded second is a sample per few hundred events, and
 * one for every second of a quiet night.
 */
export class StatusSampling extends Context.Tag("meltica/StatusSampling")<StatusSampling, {
  readonly everyMs: number | undefined
}>() {}

export class StrategiesSource extends Context.Tag("meltica/StrategiesSource")<StrategiesSource, {
  readonly list: () => ReadonlyArray<StrategyStatusView>
}>() {}

/** One latency histogram series (metric and tags) with its newest summary, read whole at every sample. */
export interface HistogramSeries {
  readonly metric: LatencyHistogram
  readonly attributes: Readonly<Record<string, string>>
  readonly summary: LatencySummary
}

/** Figures per second over the last `windowMs` (about `RATE_WINDOW_MS`, at least `MIN_RATE_WINDOW_MS`). */
export interface RatesView {
  readonly eventsIn: number
  readonly eventsOut: number
  readonly deliveries: number
  readonly windowMs: number
}

/** Fan-outs to more than one subscriber since start (FR-004, FR-026). */
export interface FanoutView {
  readonly count: number
  /** Duration over the sampled fan-outs, microseconds; null before the first. */
  readonly minUs: number | null
  readonly p95Us: number | null
  readonly maxUs: number | null
  /** Most subscribers one event went to. */
  readonly maxParallelism: number
}

/** Rates are computed between two periodic samples this far apart (the newest and one `RATE_WINDOW_MS` older). */
export const RATE_WINDOW_MS = 10_000
/** No rate is shown before the samples span this much. */
export const MIN_RATE_WINDOW_MS = 1_000

/**
 * The execution venue's accounts (balances, positions, P&L per strategy: see
 * `PortfolioSnapshot`), with the risk checks' state where they run.
 */
export interface PortfolioStatusView extends PortfolioSnapshot {
  readonly killSwitch?: KillSwitchState
  /** Orders and amends refused by the risk checks since start, by limit (and the kill switch). */
  readonly riskRefused?: Readonly<Record<RefusalReason, number>>
}

export interface StatusSnapshot {
  readonly at: number
  readonly uptimeMs: number
  readonly routingVersion: number
  /** Null until the periodic samples span `MIN_RATE_WINDOW_MS`. */
  readonly rates: RatesView | null
  readonly totals: {
    readonly eventsIn: number
    readonly dispatched: number
    readonly deliveries: number
    readonly merged: number
    /** Merged events emitted with venues missing (part of `merged`). */
    readonly mergedPartial: number
    readonly suppressed: number
    readonly dropped: number
    readonly coalesced: number
    readonly skipped: number
    readonly deadLetters: number
    readonly orders: number
    readonly fills: number
    readonly execReports: number
  }
  /** The worst consumer's p99 dispatch-to-lambda latency over the last 10 to 20 s, microseconds; null when nothing was sampled then. */
  readonly p99DispatchToLambdaUs: number | null
  readonly fanout: FanoutView
  readonly pools: ReadonlyArray<PoolStatusView>
  readonly consumers: ReadonlyArray<ConsumerStatusView>
  /** Orders, fills, rejections and working orders per consumer on the execution venue (empty without one). */
  readonly ordersByConsumer: ReadonlyArray<ConsumerOrderStats>
  /** Balances, positions and P&L on the execution venue (absent without one, as in a NATS strategy process). */
  readonly portfolio?: PortfolioStatusView
  readonly providers: ReadonlyArray<ProviderStatusView>
  /** Present when the buses run on NATS. */
  readonly nats?: NatsStatusView
  /** The process's memory at the sample. */
  readonly process: { readonly heapUsedBytes: number; readonly rssBytes: number }
  readonly readiness: Readiness
  /** The process's strategies by id, where strategies run. */
  readonly strategies?: ReadonlyArray<StrategyStatusView>
}

/** A provider is ready when it is connected and every one of its books is consistent. */
export const readiness = (providers: ReadonlyArray<ProviderStatusView>): Readiness => {
  const reasons: Array<string> = []
  for (const p of providers) {
    if (!p.connected) reasons.push(`${p.name}: not connected`)
    if (p.books.length === 0) reasons.push(`${p.name}: no book yet`)
    for (const b of p.books) {
      if (b.state !== "consistent") reasons.push(`${p.name} ${b.symbol}: book ${b.state}${b.reason === undefined ? "" : ` (${b.reason})`}`)
    }
  }
  return { ready: reasons.length === 0, reasons }
}

/** The Orchestrator's figures in a process that has none (a NATS strategy process). */
const noOrchestrator: OrchestratorStats = {
  routingVersion: 0,
  stagedId: undefined,
  ingested: 0,
  forwarded: 0,
  unrouted: 0,
  merged: 0,
  partial: 0,
  suppressed: 0,
  missing: {},
  partialMissing: {},
  late: 0,
  replaced: 0,
  openWindows: 0,
  heldFragments: 0
}

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

const label = MetricLabel.make

export class Status extends Effect.Service<Status>()("meltica/Status", {
  scoped: Effect.gen(function*() {
    const pool = yield* Pool
    const recycler = yield* Recycler
    const dispatcher = yield* Dispatcher
    const bus = yield* DataBus
    const consumers = yield* Consumers
    const providers = yield* Providers
    // a NATS strategy process has no Orchestrator, Control Plane or venue: their figures stay at 0 there
    const orchestrator = yield* Effect.serviceOption(Orchestrator)
    const control = yield* ControlBus
    const plane = yield* Effect.serviceOption(ControlPlane)
    const deadLetter = yield* DeadLetter
    const venue = yield* Effect.serviceOption(ExecutionVenue)
    const risk = yield* Effect.serviceOption(Risk)
    const checks = yield* Effect.serviceOption(ReadinessChecks)
    // the NATS link's figures, in a process whose buses run on NATS (`nats/NatsStatus.ts`)
    const nats = yield* Effect.serviceOption(NatsStatusSource)
    const strategies = yield* Effect.serviceOption(StrategiesSource)
    const sampling = yield* Effect.serviceOption(StatusSampling)
    // the recorder's and the replay's figures, at 0 where nothing records or replays (`record/Recorder.ts`)
    const recording = yield* Effect.serviceOption(RecordingFigures)
    // the raw-frame recorder's, at 0 where it is off (`record/RawFrames.ts`)
    const rawFrames = yield* Effect.serviceOption(RawFrameFigures)
    const clock = yield* Effect.clock
    const started = clock.unsafeCurrentTimeMillis()

    /** The newest summary of each latency histogram series (metric and tags), read whole at every sample. */
    const histogramSeries = new Map<string, { -readonly [K in keyof HistogramSeries]: HistogramSeries[K] }>()
    const observe = (metric: LatencyHistogram, summary: LatencySummary, tags: ReadonlyArray<MetricLabel.MetricLabel> = []) => {
      let key = metric.name
      for (const t of tags) key += `|${t.key}=${t.value}`
      const series = histogramSeries.get(key)
      if (series !== undefined) series.summary = summary
      else histogramSeries.set(key, { metric, attributes: Object.fromEntries(tags.map((t) => [t.key, t.value])), summary })
    }
    /** Last value published per counter and tag set: counters move by the difference. */
    const last = new Map<string, number>()
    const ids = new Map<object, number>()
    const count = (
      metric: Metric.Metric.Counter<number>,
      value: number,
      tags: ReadonlyArray<MetricLabel.MetricLabel> = []
    ): void => {
      let id = ids.get(metric)
      if (id === undefined) ids.set(metric, id = ids.size)
      let key = `${id}`
      for (const t of tags) key += `|${t.key}=${t.value}`
      const before = last.get(key)
      last.set(key, value)
      // the first sight registers the series, at 0 when nothing happened yet:
      // an alert on its increase fires on the first event, not the second
      if (before === undefined) metric.unsafeUpdate(value, tags)
      else if (value > before) metric.unsafeUpdate(value - before, tags)
    }
    const set = (metric: Metric.Metric.Gauge<number>, value: number, tags: ReadonlyArray<MetricLabel.MetricLabel> = []) =>
      metric.unsafeUpdate(value, tags)

    /**
     * The periodic samples' totals over the last `RATE_WINDOW_MS` (and the one
     * just before it): rates are the difference between the newest and the
     * oldest, over the time between them, so a rate never covers a few
     * milliseconds (a sample taken between two periodic ones, for a scrape or
     * /ready, shows the rates of the last periodic one).
     */
    const marks: Array<{ readonly at: number; readonly eventsIn: number; readonly dispatched: number; readonly deliveries: number }> = []
    let rates: RatesView | null = null
    const mark = (m: (typeof marks)[number]) => {
      marks.push(m)
      while (marks.length > 1 && marks[1]!.at <= m.at - RATE_WINDOW_MS) marks.shift()
      const from = marks[0]!
      const windowMs = m.at - from.at
      rates = windowMs < MIN_RATE_WINDOW_MS ? null : {
        eventsIn: ((m.eventsIn - from.eventsIn) * 1000) / windowMs,
        eventsOut: ((m.dispatched - from.dispatched) * 1000) / windowMs,
        deliveries: ((m.deliveries - from.deliveries) * 1000) / windowMs,
        windowMs
      }
    }

    /** Publishes the accounts, and the risk checks' figures, and returns their view. */
    const samplePortfolio = (p: PortfolioSnapshot): PortfolioStatusView => {
      for (const b of p.balances) {
        const tags = [label("venue", b.venue), label("asset", b.asset)]
        set(balance, Number(b.total), [...tags, label("part", "total")])
        set(balance, Number(b.available), [...tags, label("part", "available")])
        set(balance, Number(b.reserved), [...tags, label("part", "reserved")])
      }
      for (const pos of p.positions) {
        const tags = [label("venue", pos.venue), label("symbol", pos.symbol)]
        set(positionQuantity, Number(pos.quantity), tags)
        set(positionPnl, Number(pos.realizedPnl), [...tags, label("kind", "realized")])
        set(positionPnl, Number(pos.unrealizedPnl), [...tags, label("kind", "unrealized")])
        set(positionPnl, Number(pos.fees), [...tags, label("kind", "fees")])
      }
      for (const c of p.byConsumer) {
        const consumer = label("consumer", c.consumerId)
        set(strategyOpenOrders, c.openOrders, [consumer])
        for (const q of c.byQuote) {
          const tags = [consumer, label("quote", q.quote)]
          set(strategyPnl, Number(q.realizedPnl), [...tags, label("kind", "realized")])
          set(strategyPnl, Number(q.unrealizedPnl), [...tags, label("kind", "unrealized")])
          set(strategyPnl, Number(q.fees), [...tags, label("kind", "fees")])
        }
      }
      if (Option.isNone(risk)) return p
      const r = risk.value.stats()
      for (const reason of REFUSAL_REASONS) count(riskRefusals, r.refused[reason], [label("limit", reason)])
      for (const c of r.killSwitch.consumers) killTargets.add(c)
      for (const target of killTargets) {
        const on = target === "*" ? r.killSwitch.global : r.killSwitch.consumers.includes(target)
        set(killSwitchEngaged, on ? 1 : 0, [label("target", target)])
      }
      return { ...p, killSwitch: r.killSwitch, riskRefused: r.refused }
    }

    /** A figure of a latency summary, or null when it holds no value. */
    const figure = (s: LatencySummary, f: (s: LatencySummary) => number): number | null => (s.count === 0 ? null : f(s))

    // Series with a label whose values are known from the start (venue frame
    // refusals, merge suppressions by missing provider) are exported at 0.
    for (const p of providers) {
      for (const reason of frameRefusalReasons) count(providerMalformed, 0, [label("provider", p.name), label("reason", reason)])
      count(mergeMissing, 0, [label("provider", p.name)])
      count(mergePartialMissing, 0, [label("provider", p.name)])
    }
    if (Option.isSome(plane)) for (const reason of REJECTION_TAGS) count(controlRejections, 0, [label("reason", reason)])
    if (Option.isSome(risk)) for (const reason of REFUSAL_REASONS) count(riskRefusals, 0, [label("limit", reason)])
    /** Kill switch targets seen engaged: each keeps its series, at 0 once released. */
    const killTargets = new Set<string>(["*"])
    const sink: MetricSink = { count, set }
    if (Option.isSome(nats)) nats.value.init(sink)
    /** Figures of layers built over this one (the endpoints' `/kill-switch`), published at every sample. */
    const contributed: Array<(sink: MetricSink) => void> = []
    /** Consumers of layers built over this one (worker strategies), listed at every sample. */
    const contributedConsumers: Array<() => ReadonlyArray<ContributedConsumer>> = []

    // a pool that falls back to the heap in every periodic sample for 5 s is too
    // small for its load: warned at most once a minute per pool type
    const heapWatch = new HeapFallbackWatch(5, 60_000)
    const heapWarnings: Array<HeapFallbackWarning> = []
    const logHeapWarnings = Effect.suspend(() =>
      Effect.forEach(heapWarnings.splice(0), (w) =>
        Effect.logWarning(
          `pool ${w.pool}: ${w.allocated} acquisitions fell back to the heap over the last ${w.samples} samples; raise pool.capacity.${w.pool}`
        ).pipe(Effect.annotateLogs({ pool: w.pool })), { discard: true })
    )

    /** Reads every component's stats, publishes them, and returns the snapshot. */
    const sample = (periodic: boolean): StatusSnapshot => {
      for (const publish of contributed) publish(sink)
      {
        const r = Option.isSome(recording) ? recording.value.recorder() : undefined
        count(recorderEvents, r?.events ?? 0)
        count(recorderFiles, r?.files ?? 0)
        count(recorderBytes, r?.bytes ?? 0)
        count(recorderFlushFailures, r?.writeFailures ?? 0)
        set(recorderBuffered, r?.buffered ?? 0)
        count(recorderDropped, r?.dropped ?? 0)
        count(recorderRefused, r?.refused ?? 0)
        const raw = Option.isSome(rawFrames) ? rawFrames.value.stats() : undefined
        count(rawFramesRows, raw?.rows ?? 0)
        count(rawFramesFiles, raw?.files ?? 0)
        count(rawFramesBytes, raw?.bytes ?? 0)
        count(rawFramesWriteFailures, raw?.writeFailures ?? 0)
        count(rawFramesDropped, raw?.dropped ?? 0)
        set(rawFramesBuffered, raw?.buffered ?? 0)
        const skipped = Option.isSome(recording) ? recording.value.skipped() : []
        for (const cause of SKIP_CAUSES) count(replayFilesSkipped, skipped.filter((e) => e.cause === cause).length, [label("reason", cause)])
      }
      const now = clock.unsafeCurrentTimeMillis()
      const providerViews: Array<ProviderStatusView> = []
      let eventsIn = 0
      for (const p of providers) {
        const s = p.stats()
        eventsIn += s.events
        const tags = [label("provider", p.name)]
        for (const [kind, n] of Object.entries(s.eventsByKind)) count(providerEvents, n, [...tags, label("kind", kind)])
        count(providerFrames, s.frames, tags)
        for (const [reason, n] of Object.entries(s.malformed)) count(providerMalformed, n, [...tags, label("reason", reason)])
        count(providerGaps, s.gaps, tags)
        count(providerChecksumMismatches, s.checksumMismatches, tags)
        count(providerResyncs, s.resyncs, tags)
        count(providerReconnects, s.reconnects, tags)
        count(providerRateLimited, s.rateLimited, tags)
        count(providerRequestsDelayed, s.requestsDelayed, tags)
        providerViews.push({
          name: p.name,
          connected: false,
          events: s.events,
          malformed: s.malformedTotal,
          gaps: s.gaps,
          resyncs: s.resyncs,
          books: []
        })
      }

      const o = Option.isSome(orchestrator) ? orchestrator.value.stats() : noOrchestrator
      count(orchestratorIngested, o.ingested)
      count(orchestratorForwarded, o.forwarded)
      count(orchestratorUnrouted, o.unrouted)
      count(mergesEmitted, o.merged)
      count(mergesSuppressed, o.suppressed)
      for (const [provider, n] of Object.entries(o.missing)) count(mergeMissing, n, [label("provider", provider)])
      count(mergesPartial, o.partial)
      for (const [provider, n] of Object.entries(o.partialMissing)) count(mergePartialMissing, n, [label("provider", provider)])
      count(mergeLate, o.late)
      set(routingVersion, o.routingVersion)
      set(openWindows, o.openWindows)

      const d = dispatcher.stats()
      count(dispatched, d.dispatched)
      count(deliveries, d.deliveries)
      count(noSubscriber, d.noSubscriber)
      count(gapsSkipped, d.gapsSkipped)
      count(duplicates, d.duplicates)
      count(suspectJumps, d.suspectJumps)
      count(streamResyncs, d.resyncs)
      count(epochResets, d.epochResets)
      count(deliveryFailures, d.deliveryFailures)
      count(fanouts, d.fanouts)
      observe(fanoutDuration, d.fanoutDuration)
      set(fanoutDurationMin, d.fanoutDuration.min / 1e6)
      set(fanoutDurationMax, d.fanoutDuration.max / 1e6)
      set(fanoutParallelism, d.maxParallelism)

      const boxes = new Map(bus.mailboxes().map((m) => [m.consumerId, m]))
      let coalesced = 0
      for (const m of boxes.values()) {
        const tags = [label("consumer", m.consumerId)]
        set(mailboxDepth, m.marketDepth, [...tags, label("lane", "market")])
        set(mailboxDepth, m.criticalDepth, [...tags, label("lane", "critical")])
        set(criticalHighWater, m.criticalHighWaterMark, tags)
        count(mailboxCoalesced, m.coalesced, tags)
        count(mailboxCriticalRefused, m.criticalRefused ?? 0, tags)
        coalesced += m.coalesced
      }
      count(undeliverable, bus.stats().undeliverable)
      for (const [reason, n] of Object.entries(bus.stats().criticalRefused ?? {})) count(criticalRefused, n, [label("reason", reason)])

      const consumerViews: Array<ConsumerStatusView> = []
      let skipped = d.gapsSkipped
      let worstP99: number | null = null
      for (const h of consumers.list()) {
        const s = h.stats()
        const tags = [label("consumer", s.id)]
        count(consumerProcessed, s.processed, tags)
        count(consumerFailures, s.failures, tags)
        count(consumerTimeouts, s.timeouts, tags)
        count(consumerSkippedStale, s.skippedStale, tags)
        observe(consumerLatency, s.dispatchToLambda, tags)
        observe(consumerCriticalLatency, s.criticalDispatchToLambda, tags)
        observe(consumerProcessing, s.processing, tags)
        set(consumerLag, s.lag, tags)
        skipped += s.skippedStale
        const recent = s.recentDispatchToLambda
        if (recent.count > 0 && (worstP99 === null || recent.p99 > worstP99)) worstP99 = recent.p99
        const box = boxes.get(s.id)
        consumerViews.push({
          id: s.id,
          processed: s.processed,
          failures: s.failures,
          skippedStale: s.skippedStale,
          lag: s.lag,
          marketDepth: box?.marketDepth ?? 0,
          criticalDepth: box?.criticalDepth ?? 0,
          coalesced: box?.coalesced ?? 0,
          criticalProcessed: s.criticalProcessed,
          minVersion: s.minVersion,
          p50Us: figure(recent, (r) => r.p50),
          p99Us: figure(recent, (r) => r.p99),
          maxUs: figure(recent, (r) => r.max),
          processingP99Us: figure(s.processing, (r) => r.p99)
        })
      }
      for (const list of contributedConsumers) {
        for (const c of list()) {
          const box = boxes.get(c.id)
          if (c.p99Us !== null && (worstP99 === null || c.p99Us > worstP99)) worstP99 = c.p99Us
          skipped += c.skippedStale
          consumerViews.push({
            ...c,
            lag: c.lag + (box === undefined ? 0 : box.marketDepth + box.criticalDepth),
            marketDepth: box?.marketDepth ?? 0,
            criticalDepth: box?.criticalDepth ?? 0,
            coalesced: box?.coalesced ?? 0
          })
        }
      }

      const ps = pool.stats()
      const poolViews: Array<PoolStatusView> = poolTypes.map((t) => {
        const s = ps[t]
        const tags = [label("pool", t)]
        set(poolOutstanding, s.outstanding, tags)
        set(poolFree, s.free, tags)
        set(poolCapacity, s.capacity, tags)
        set(poolUtilization, s.utilization, tags)
        count(poolAcquired, s.acquired, tags)
        count(poolHeapAllocated, s.heapAllocated, tags)
        if (periodic) {
          const warning = heapWatch.observe(t, s.heapAllocated, now)
          if (warning !== undefined) heapWarnings.push(warning)
        }
        set(poolHeapFallbackSustained, heapWatch.sustained(t) ? 1 : 0, tags)
        count(poolHeapFallbackWarnings, heapWatch.warnings.get(t) ?? 0, tags)
        count(recycled, s.recycled, tags)
        return {
          pool: t,
          capacity: s.capacity,
          outstanding: s.outstanding,
          free: s.free,
          utilization: s.utilization,
          heapAllocated: s.heapAllocated
        }
      })
      const r = recycler.stats()
      count(doublePuts, r.doublePuts)
      count(staleHolderPuts, r.staleHolderPuts)

      const c = control.stats()
      count(controlSubmitted, c.submitted)
      count(controlMalformed, c.malformed)
      if (Option.isSome(plane)) {
        const s = plane.value.stats()
        count(controlRejected, s.rejected)
        const byReason = new Map<string, number>()
        for (const [key, n] of Object.entries(s.rejections)) {
          const reason = key.slice(key.indexOf(":") + 1)
          byReason.set(reason, (byReason.get(reason) ?? 0) + n)
        }
        for (const [reason, n] of byReason) count(controlRejections, n, [label("reason", reason)])
        count(routingFlips, s.flips)
      }
      const dl = deadLetter.stats()
      count(deadLetters, dl.total)

      let orders = 0
      let fills = 0
      let execReports = 0
      let ordersByConsumer: ReadonlyArray<ConsumerOrderStats> = []
      let portfolio: PortfolioStatusView | undefined
      if (Option.isSome(venue)) {
        const v = venue.value.stats()
        orders = v.orders
        fills = v.fills
        execReports = v.reportsEmitted
        ordersByConsumer = v.byConsumer
        count(venueOrders, v.orders)
        count(venueFills, v.fills)
        count(venueReports, v.reportsEmitted)
        set(venueResting, v.resting)
        count(venueAmends, v.amended ?? 0)
        count(venueBalanceShortfalls, v.balanceShortfalls ?? 0)
        for (const l of v.live ?? []) {
          const tags = [label("venue", l.venue)]
          set(liveConnected, l.connected ? 1 : 0, tags)
          count(liveReconciliations, l.reconciliations, tags)
          count(liveDuplicateFills, l.duplicateFills, tags)
          count(liveRateLimited, l.rateLimited, tags)
          count(liveRequestsDelayed, l.requestsDelayed, tags)
          set(liveClockSkew, l.clockSkewMs, tags)
          for (const b of l.budget) {
            set(liveBudgetUsed, b.used, [...tags, label("bucket", b.bucket)])
            set(liveBudgetLimit, b.limit, [...tags, label("bucket", b.bucket)])
          }
        }
        portfolio = samplePortfolio(venue.value.portfolio())
      }

      const natsView = Option.isSome(nats) ? nats.value.sample(sink) : undefined
      const memory = process.memoryUsage()
      set(processHeapUsed, memory.heapUsed)
      set(processResident, memory.rss)

      if (periodic) mark({ at: now, eventsIn, dispatched: d.dispatched, deliveries: d.deliveries })

      return {
        at: now,
        uptimeMs: now - started,
        routingVersion: o.routingVersion,
        rates,
        totals: {
          eventsIn,
          dispatched: d.dispatched,
          deliveries: d.deliveries,
          merged: o.merged,
          mergedPartial: o.partial,
          suppressed: o.suppressed,
          dropped: d.duplicates + o.late + o.unrouted + bus.stats().undeliverable,
          coalesced,
          skipped,
          deadLetters: dl.total,
          orders,
          fills,
          execReports
        },
        p99DispatchToLambdaUs: worstP99,
        fanout: {
          count: d.fanouts,
          minUs: figure(d.fanoutDuration, (f) => f.min),
          p95Us: figure(d.fanoutDuration, (f) => f.p95),
          maxUs: figure(d.fanoutDuration, (f) => f.max),
          maxParallelism: d.maxParallelism
        },
        pools: poolViews,
        consumers: consumerViews,
        ordersByConsumer,
        ...(portfolio === undefined ? {} : { portfolio }),
        providers: providerViews,
        ...(natsView === undefined ? {} : { nats: natsView }),
        process: { heapUsedBytes: memory.heapUsed, rssBytes: memory.rss },
        readiness: { ready: false, reasons: ["not sampled"] }
      }
    }

    /** The snapshot with each provider's connection and books (its status is an effect). */
    const snapshot = (periodic: boolean): Effect.Effect<StatusSnapshot> => Effect.suspend(() => {
      const base = sample(periodic)
      return Effect.forEach(providers, (p) => p.status).pipe(
        Effect.map((statuses) => {
          const views = base.providers.map((v, i) => {
            const s = statuses[i]!
            const tags = [label("provider", v.name)]
            set(providerConnected, s.connected ? 1 : 0, tags)
            for (const b of s.books) set(bookConsistent, b.state === "consistent" ? 1 : 0, [...tags, label("symbol", b.symbol)])
            return { ...v, connected: s.connected, books: s.books }
          })
          const ready = readiness(views)
          const more = [
            ...(Option.isSome(checks) ? checks.value.reasons() : []),
            // a critical event the NATS server refused for good keeps the feed not ready for a while
            ...(Option.isSome(nats) ? nats.value.readinessReasons() : [])
          ]
          const result = more.length === 0 ? ready : { ready: false, reasons: [...ready.reasons, ...more] }
          set(readyGauge, result.ready ? 1 : 0)
          set(notReadyReasons, result.reasons.length)
          return Option.isSome(strategies)
            ? { ...base, providers: views, readiness: result, strategies: strategies.value.list() }
            : { ...base, providers: views, readiness: result }
        })
      )
    })

    let latest: StatusSnapshot | undefined
    const refreshWith = (periodic: boolean) => Effect.tap(snapshot(periodic), (s) => Effect.sync(() => (latest = s)))
    const refresh = refreshWith(false)

    const everyMs = Option.isSome(sampling) ? sampling.value.everyMs : 1_000
    if (everyMs !== undefined) {
      yield* refreshWith(true).pipe(Effect.zipRight(logHeapWarnings), Effect.repeat(Schedule.spaced(Duration.millis(everyMs))), Effect.forkScoped)
    }

    return {
      /** Samples now. */
      snapshot: refresh,
      /** The last periodic sample (sampled now if there is none yet). */
      latest: Effect.suspend(() => (latest === undefined ? refresh : Effect.succeed(latest))),
      /** The newest summary of each latency histogram series, for the exporter. */
      histograms: (): Iterable<HistogramSeries> => histogramSeries.values(),
      /**
       * A layer built over this one adds its figures: `publish` runs now (its
       * series exported from start, at 0) and at every sample after.
       */
      contribute: (publish: (sink: MetricSink) => void): void => {
        contributed.push(publish)
        publish(sink)
      },
      /** A layer built over this one lists consumers of its own in every snapshot's `consumers`. */
      contributeConsumers: (list: () => ReadonlyArray<ContributedConsumer>): void => {
        contributedConsumers.push(list)
      }
    } as const
  })
}) {}
