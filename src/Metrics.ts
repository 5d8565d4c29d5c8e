/**
 * All of the gateway's metrics, in one module.
 *
 * Every component keeps plain-number counters on its hot path (`stats()`);
 * this module reads them once a second (and before every scrape) and
 * publishes them as Effect `Metric`s: monotonic counts as incremental counters
 * (exported as Prometheus counters), levels as gauges. Names are snake_case
 * with the `meltica_` prefix; tags are low-cardinality (provider, symbol,
 * consumer, lane, pool).
 *
 * The Prometheus text comes from OpenTelemetry's maintained exporter
 * (`@opentelemetry/exporter-prometheus`, its HTTP server not started) fed by
 * `@effect/opentelemetry`'s metric producer; `/metrics` in `Http.ts` serves it.
 *
 * The same sampling produces the `StatusSnapshot` behind the status line, the
 * status page and `/ready`: figures per second are computed between two
 * samples.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { ValueType } from "@opentelemetry/api"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { emptyResource } from "@opentelemetry/resources"
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram as OtelHistogram,
  type HistogramMetricData,
  type MetricProducer
} from "@opentelemetry/sdk-metrics"
import { Context, Effect, Metric, MetricLabel, Option, Schedule } from "effect"
import { Consumers } from "./Consumer.js"
import { ControlBus } from "./ControlBus.js"
import { ControlPlane } from "./ControlPlane.js"
import { DataBus } from "./DataBus.js"
import { DeadLetter } from "./DeadLetter.js"
import { Dispatcher } from "./Dispatcher.js"
import { poolTypes, type PoolType } from "./Event.js"
import { ExecutionVenue } from "./ExecutionVenue.js"
import { CommandConsumer, CommandPublisher } from "./nats/Commands.js"
import { NatsConnection } from "./nats/Connection.js"
import { CriticalPublisher, CriticalSubscriber } from "./nats/CriticalChannel.js"
import { ControlProgress, FeedMonitor } from "./nats/Heartbeat.js"
import { MarketPublisher, MarketSubscriber } from "./nats/Market.js"
import { type LatencySummary, PROMETHEUS_BOUNDS_US } from "./internal/histogram.js"
import { HeapFallbackWatch, type HeapFallbackWarning } from "./internal/heapFallback.js"
import { Orchestrator, type OrchestratorStats } from "./Orchestrator.js"
import { Pool } from "./Pool.js"
import { Providers } from "./Provider.js"
import { Recycler } from "./Recycler.js"

// ---------------------------------------------------------------------------
// Metric definitions
// ---------------------------------------------------------------------------

/** The name of every counter defined here: each is exported from the first sample on, at 0 until it moves. */
export const definedCounters: Array<string> = []
const counter = (name: string, description: string) => {
  definedCounters.push(name)
  return Metric.counter(name, { incremental: true, description })
}
const gauge = (name: string, description: string) => Metric.gauge(name, { description })

/**
 * A latency histogram that a component keeps itself (`src/internal/histogram.ts`,
 * counted exactly in `PROMETHEUS_BOUNDS_US`) and that `/metrics` exports as a
 * Prometheus histogram in seconds. Effect's `Metric.histogram` records one
 * value per call; these are read whole once per sample instead, so the hot
 * path pays one array increment per value and nothing more.
 */
export interface LatencyHistogram {
  readonly name: string
  readonly description: string
}
export const definedHistograms: Array<LatencyHistogram> = []
const histogram = (name: string, description: string): LatencyHistogram => {
  const h = { name, description }
  definedHistograms.push(h)
  return h
}

/** Reasons a provider refuses a frame for: each is exported per provider from start. */
export const frameRefusalReasons: ReadonlyArray<string> = [
  "invalid_json", "schema", "snapshot_schema", "unknown_message", "unknown_symbol", "venue_error", "frame_too_large"
]

export const providerEvents = counter("meltica_provider_events", "Events a provider handed on, by provider and kind")
export const providerFrames = counter("meltica_provider_frames", "Frames received from the venue")
export const providerMalformed = counter("meltica_provider_malformed_frames", "Frames refused (dead-lettered), by reason")
export const providerGaps = counter("meltica_provider_sequence_gaps", "Book sequence gaps detected")
export const providerChecksumMismatches = counter("meltica_provider_checksum_mismatches", "Book checksum mismatches")
export const providerResyncs = counter("meltica_provider_book_resyncs", "Books resynchronised from a fresh snapshot")
export const providerReconnects = counter("meltica_provider_reconnects", "Reconnections to the venue")
export const providerRateLimited = counter("meltica_provider_rate_limited", "Requests the venue refused as too many (HTTP 429/418 or a rate-limit body)")
export const providerRequestsDelayed = counter("meltica_provider_requests_delayed", "Requests to the venue held back by its request budget or a cool-down it imposed")
export const providerConnected = gauge("meltica_provider_connected", "1 when the provider is connected")
export const bookConsistent = gauge("meltica_book_consistent", "1 when the provider's book of the symbol is consistent")

export const orchestratorIngested = counter("meltica_orchestrator_ingested", "Events taken in from providers")
export const orchestratorForwarded = counter("meltica_orchestrator_forwarded", "Events stamped and forwarded to the dispatcher")
export const orchestratorUnrouted = counter("meltica_orchestrator_unrouted", "Events dropped: their provider does not feed the symbol")
export const mergesEmitted = counter("meltica_merge_windows_merged", "Merge windows closed complete (one merged event)")
export const mergesSuppressed = counter("meltica_merge_windows_suppressed", "Merge windows closed incomplete (suppressed)")
export const mergeMissing = counter("meltica_merge_missing_provider", "Suppressed windows, by missing provider")
export const mergeLate = counter("meltica_merge_late_fragments", "Fragments for a window that had closed")
export const routingVersion = gauge("meltica_routing_version", "The current routing version")
export const openWindows = gauge("meltica_merge_open_windows", "Merge windows open now")

export const dispatched = counter("meltica_dispatcher_dispatched", "Events handed to the dispatcher")
export const deliveries = counter("meltica_dispatcher_deliveries", "Deliveries to consumer mailboxes")
export const noSubscriber = counter("meltica_dispatcher_no_subscriber", "Events without a subscriber (recycled)")
export const gapsSkipped = counter("meltica_dispatcher_gaps_skipped", "Sequence gaps skipped after the lateness tolerance")
export const duplicates = counter("meltica_dispatcher_duplicates", "Duplicate or older sequences dropped")
export const suspectJumps = counter("meltica_dispatcher_suspect_jumps", "Events dropped because their sequence jumped beyond the window (forged or corrupt)")
export const streamResyncs = counter("meltica_dispatcher_stream_resyncs", "Streams resynchronised at a new numbering after a run of suspect sequences")
export const epochResets = counter("meltica_dispatcher_epoch_resets", "Streams whose ordering started over because their feed epoch changed (a feed restarted)")
export const deliveryFailures = counter("meltica_dispatcher_delivery_failures", "Fan-out hand-overs that failed")
export const fanouts = counter("meltica_dispatcher_fanouts", "Fan-outs to more than one subscriber")
export const fanoutDuration = histogram("meltica_dispatcher_fanout_duration_seconds", "Fan-out duration (clone and hand-over to every subscriber), sampled events")
export const fanoutDurationMin = gauge("meltica_dispatcher_fanout_duration_min_seconds", "Shortest fan-out since start (0 before the first)")
export const fanoutDurationMax = gauge("meltica_dispatcher_fanout_duration_max_seconds", "Longest fan-out since start")
export const fanoutParallelism = gauge("meltica_dispatcher_fanout_max_parallelism", "Most subscribers one event was fanned out to")

export const mailboxDepth = gauge("meltica_mailbox_depth", "Events queued in a consumer's mailbox, by lane")
export const mailboxCoalesced = counter("meltica_mailbox_coalesced", "Market data replaced by a newer event of its stream")
export const criticalHighWater = gauge("meltica_mailbox_critical_high_water", "Deepest the critical lane has been")
export const undeliverable = counter("meltica_databus_undeliverable", "Events for a consumer that has no mailbox")
export const criticalRefused = counter("meltica_databus_critical_refused", "Critical events refused, by reason (closed mailbox, critical lane at its bound)")
export const mailboxCriticalRefused = counter("meltica_mailbox_critical_refused", "Critical events refused at the critical lane's bound, by consumer")
export const consumerTimeouts = counter("meltica_consumer_timeouts", "Lambda calls interrupted at the consumer's event timeout")

export const consumerProcessed = counter("meltica_consumer_processed", "Events a consumer's lambda completed")
export const consumerFailures = counter("meltica_consumer_failures", "Lambda failures and defects")
export const consumerSkippedStale = counter("meltica_consumer_skipped_stale", "Market data skipped for an older routing version")
export const consumerLatency = histogram("meltica_consumer_dispatch_to_lambda_seconds", "Dispatch hand-over to lambda start, sampled events, by consumer")
export const consumerProcessing = histogram("meltica_consumer_processing_seconds", "Lambda run time, sampled events, by consumer")
export const consumerLag = gauge("meltica_consumer_lag", "Events waiting in the consumer's mailbox")

export const poolOutstanding = gauge("meltica_pool_outstanding", "Pooled objects held by an owner")
export const poolFree = gauge("meltica_pool_free", "Objects on the free list")
export const poolCapacity = gauge("meltica_pool_capacity", "Free-list capacity")
export const poolUtilization = gauge("meltica_pool_utilization", "Outstanding / capacity")
export const processHeapUsed = gauge("meltica_process_heap_used_bytes", "V8 heap in use")
export const processResident = gauge("meltica_process_resident_memory_bytes", "Resident set size of the process")
export const poolAcquired = counter("meltica_pool_acquired", "Objects acquired")
export const poolHeapAllocated = counter("meltica_pool_heap_allocated", "Acquisitions that fell back to the heap")
export const poolHeapFallbackSustained = gauge("meltica_pool_heap_fallback_sustained", "1 while the pool has fallen back to the heap in every sample of the last 5 s")
export const poolHeapFallbackWarnings = counter("meltica_pool_heap_fallback_warnings", "Warnings of a sustained fallback to the heap (at most one a minute per pool)")
export const recycled = counter("meltica_recycler_recycled", "Objects returned to their pool, by pool")
export const doublePuts = counter("meltica_recycler_double_puts", "Second recycles of one object, refused")
export const staleHolderPuts = counter(
  "meltica_recycler_stale_holder_puts",
  "Double puts by a holder whose ownership had ended while another held the object (part of double_puts)"
)

export const controlSubmitted = counter("meltica_control_commands", "Commands submitted on the control bus")
export const controlMalformed = counter("meltica_control_malformed", "Control messages that did not decode")
export const controlRejected = counter("meltica_control_rejected", "Commands rejected with a typed reason")
export const routingFlips = counter("meltica_routing_flips", "Routing flips")
export const deadLetters = counter("meltica_dead_letters", "Inputs refused into the dead-letter queue")

export const venueOrders = counter("meltica_venue_orders", "Orders accepted by the execution venue")
export const venueFills = counter("meltica_venue_fills", "Fills")
export const venueReports = counter("meltica_venue_exec_reports", "Execution reports emitted")
export const venueResting = gauge("meltica_venue_resting_orders", "Resting orders")

export const natsConnected = gauge("meltica_nats_connected", "1 while the NATS connection is up")
export const natsReconnects = counter("meltica_nats_reconnects", "Reconnections to the NATS server")
export const natsMarketPublished = counter("meltica_nats_market_published", "Market-data events published on core NATS")
export const natsMarketPublishFailed = counter("meltica_nats_market_publish_failed", "Market-data events not published")
export const natsMarketReceived = counter("meltica_nats_market_received", "Market-data messages received from NATS")
export const natsMarketDropped = counter("meltica_nats_market_dropped", "Market-data messages dropped before the dispatcher (buffer full)")
export const natsMarketSubjects = gauge("meltica_nats_market_subjects", "Market-data subjects this process listens on")
export const natsCriticalPublished = counter("meltica_nats_critical_published", "Critical events stored on JetStream")
export const natsCriticalDelivered = counter("meltica_nats_critical_delivered", "Critical events from JetStream put in a consumer's critical lane, by kind")
export const natsCommandsSubmitted = counter("meltica_nats_commands_submitted", "Commands stored on JetStream by this process")
export const natsCommandsHandled = counter("meltica_nats_commands_handled", "Commands taken from JetStream by the Control Plane")
export const natsCommandsRefused = counter("meltica_nats_commands_refused", "Commands refused for their sender, by reason (forged: the consumer id is not the subject's; unauthorized: routing from a strategy)")
export const natsPermissionDenied = counter("meltica_nats_permission_denied", "Publications and subscriptions the NATS server refused for this process's user")
export const natsFeedHeartbeats = counter("meltica_nats_feed_heartbeats", "Feed heartbeats heard (strategy process)")
export const natsFeedEpochChanges = counter("meltica_nats_feed_epoch_changes", "Feed heartbeats with a new epoch: a feed restarted")
export const natsFeedLive = gauge("meltica_nats_feed_live", "1 while the provider's feed is heard within the staleness bound and connected to its venue, by provider")
export const natsControlPlaneCompleted = counter("meltica_nats_control_plane_completed", "Commands the feed's Control Plane finished")
export const natsControlPlaneInFlight = gauge("meltica_nats_control_plane_in_flight", "Commands the feed's Control Plane is handling now")
export const natsControlPlanePending = gauge("meltica_nats_control_plane_pending", "Commands JetStream holds for the Control Plane, not yet delivered or not yet acknowledged")
export const natsControlPlaneStalled = gauge("meltica_nats_control_plane_stalled", "1 while a command has been in progress past the stall bound with none finished")
export const readyGauge = gauge("meltica_ready", "1 when /ready answers ready")
export const notReadyReasons = gauge("meltica_not_ready_reasons", "How many reasons /ready gives for not being ready")
export const natsMalformed = counter("meltica_nats_malformed_frames", "Frames from NATS that did not decode, by channel")
export const natsCriticalUnpublishable = counter("meltica_nats_critical_unpublishable", "Critical events the server refused for good (too large, a header over its limit): dropped")
export const natsCommandsPublishFailed = counter("meltica_nats_commands_publish_failed", "Commands the server refused for good: dropped")
export const natsCommandsTerminated = counter("meltica_nats_commands_terminated", "Commands terminated as poison (malformed, or their handling died): never redelivered")

// ---------------------------------------------------------------------------
// Snapshot
// ---------------------------------------------------------------------------

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
  readonly providers: ReadonlyArray<ProviderStatusView>
  /** Present when the buses run on NATS. */
  readonly nats?: NatsStatusView
  /** The process's memory at the sample. */
  readonly process: { readonly heapUsedBytes: number; readonly rssBytes: number }
  readonly readiness: Readiness
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
  suppressed: 0,
  missing: {},
  late: 0,
  replaced: 0,
  openWindows: 0,
  heldFragments: 0
}

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

const label = MetricLabel.make

export class Metrics extends Effect.Service<Metrics>()("meltica/Metrics", {
  scoped: Effect.gen(function*() {
    const pool = yield* Pool
    const recycler = yield* Recycler
    const dispatcher = yield* Dispatcher
    const bus = yield* DataBus
    const consumers = yield* Consumers
    const providers = yield* Providers
    const orchestrator = yield* Effect.serviceOption(Orchestrator)
    const control = yield* ControlBus
    const plane = yield* Effect.serviceOption(ControlPlane)
    const deadLetter = yield* DeadLetter
    const venue = yield* Effect.serviceOption(ExecutionVenue)
    const checks = yield* Effect.serviceOption(ReadinessChecks)
    const nats = {
      connection: yield* Effect.serviceOption(NatsConnection),
      marketOut: yield* Effect.serviceOption(MarketPublisher),
      marketIn: yield* Effect.serviceOption(MarketSubscriber),
      criticalOut: yield* Effect.serviceOption(CriticalPublisher),
      criticalIn: yield* Effect.serviceOption(CriticalSubscriber),
      commandsOut: yield* Effect.serviceOption(CommandPublisher),
      commandsIn: yield* Effect.serviceOption(CommandConsumer),
      feeds: yield* Effect.serviceOption(FeedMonitor),
      progress: yield* Effect.serviceOption(ControlProgress)
    }
    const clock = yield* Effect.clock
    const started = clock.unsafeCurrentTimeMillis()

    /** The newest summary of each latency histogram series (metric and tags), read whole at every sample. */
    const histogramSeries = new Map<string, {
      readonly metric: LatencyHistogram
      readonly attributes: Readonly<Record<string, string>>
      summary: LatencySummary
    }>()
    const observe = (metric: LatencyHistogram, summary: LatencySummary, tags: ReadonlyArray<MetricLabel.MetricLabel> = []) => {
      let key = metric.name
      for (const t of tags) key += `|${t.key}=${t.value}`
      const series = histogramSeries.get(key)
      if (series !== undefined) series.summary = summary
      else histogramSeries.set(key, { metric, attributes: Object.fromEntries(tags.map((t) => [t.key, t.value])), summary })
    }
    const boundariesSeconds = PROMETHEUS_BOUNDS_US.map((us) => us / 1e6)
    const hrTime = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1e6]
    const histogramStart = hrTime(started)
    /** The histograms as OpenTelemetry data, beside what `@effect/opentelemetry` produces from Effect's metrics. */
    const histogramProducer: MetricProducer = {
      collect: () => {
        const endTime = hrTime(clock.unsafeCurrentTimeMillis())
        const byName = new Map<string, HistogramMetricData>()
        for (const series of histogramSeries.values()) {
          const s = series.summary
          const counts: Array<number> = []
          let below = 0
          for (const cumulative of s.buckets) {
            counts.push(cumulative - below)
            below = cumulative
          }
          counts.push(s.count - below)
          const point: DataPoint<OtelHistogram> = {
            startTime: histogramStart,
            endTime,
            attributes: series.attributes,
            value: {
              buckets: { boundaries: boundariesSeconds, counts },
              count: s.count,
              sum: s.sum / 1e6,
              ...(s.count === 0 ? {} : { min: s.min / 1e6, max: s.max / 1e6 })
            }
          }
          const data = byName.get(series.metric.name)
          if (data !== undefined) data.dataPoints.push(point)
          else {
            byName.set(series.metric.name, {
              descriptor: { name: series.metric.name, description: series.metric.description, unit: "", valueType: ValueType.DOUBLE },
              aggregationTemporality: AggregationTemporality.CUMULATIVE,
              dataPointType: DataPointType.HISTOGRAM,
              dataPoints: [point]
            })
          }
        }
        return Promise.resolve({
          resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: "meltica" }, metrics: [...byName.values()] }] },
          errors: []
        })
      }
    }

    const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [histogramProducer] })
    const producer = yield* OtelMetrics.makeProducer
    yield* OtelMetrics.registerProducer(producer, () => exporter)
    // without the `otel_scope_name` label: one service, one scope, nothing for an operator to select on
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true)

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

    /** A figure of a latency summary, or null when it holds no value. */
    const figure = (s: LatencySummary, f: (s: LatencySummary) => number): number | null => (s.count === 0 ? null : f(s))

    // Series with a label whose values are known from the start (venue frame
    // refusals, merge suppressions by missing provider) are exported at 0.
    for (const p of providers) {
      for (const reason of frameRefusalReasons) count(providerMalformed, 0, [label("provider", p.name), label("reason", reason)])
      count(mergeMissing, 0, [label("provider", p.name)])
    }
    if (Option.isSome(nats.criticalIn)) {
      for (const kind of ["exec_report", "control_ack", "control_result"]) count(natsCriticalDelivered, 0, [label("kind", kind)])
    }

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
        count(routingFlips, s.flips)
      }
      const dl = deadLetter.stats()
      count(deadLetters, dl.total)

      let orders = 0
      let fills = 0
      let execReports = 0
      if (Option.isSome(venue)) {
        const v = venue.value.stats()
        orders = v.orders
        fills = v.fills
        execReports = v.reportsEmitted
        count(venueOrders, v.orders)
        count(venueFills, v.fills)
        count(venueReports, v.reportsEmitted)
        set(venueResting, v.resting)
      }

      const natsView = sampleNats()
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
        providers: providerViews,
        ...(natsView === undefined ? {} : { nats: natsView }),
        process: { heapUsedBytes: memory.heapUsed, rssBytes: memory.rss },
        readiness: { ready: false, reasons: ["not sampled"] }
      }
    }

    /** The NATS services this process has, published; undefined when it has none. */
    const sampleNats = (): NatsStatusView | undefined => {
      if (Option.isNone(nats.connection)) return undefined
      const c = nats.connection.value.stats()
      set(natsConnected, c.connected ? 1 : 0)
      count(natsReconnects, c.reconnects)
      count(natsPermissionDenied, c.permissionDenied)
      if (Option.isSome(nats.feeds)) {
        const f = nats.feeds.value.stats()
        count(natsFeedHeartbeats, f.heartbeats)
        count(natsFeedEpochChanges, f.epochChanges)
        for (const p of f.live) set(natsFeedLive, 1, [label("provider", p)])
        for (const p of f.stale) set(natsFeedLive, 0, [label("provider", p)])
      }
      if (Option.isSome(nats.progress)) {
        const p = nats.progress.value.stats()
        count(natsControlPlaneCompleted, p.completed)
        set(natsControlPlaneInFlight, p.inFlight)
        set(natsControlPlaneStalled, p.stalled ? 1 : 0)
        set(natsControlPlanePending, p.pending)
      }
      let malformedFrames = 0
      const market = { published: 0, received: 0, dropped: 0, subjects: 0 }
      if (Option.isSome(nats.marketOut)) {
        const m = nats.marketOut.value.stats()
        market.published = m.published
        count(natsMarketPublished, m.published)
        count(natsMarketPublishFailed, m.failed)
      }
      if (Option.isSome(nats.marketIn)) {
        const m = nats.marketIn.value.stats()
        market.received = m.received
        market.dropped = m.dropped
        market.subjects = m.subjects
        count(natsMarketReceived, m.received)
        count(natsMarketDropped, m.dropped)
        set(natsMarketSubjects, m.subjects)
        count(natsMalformed, m.malformed, [label("channel", "market")])
        malformedFrames += m.malformed
      }
      let criticalPublished = 0
      let delivered: Readonly<Record<string, number>> = {}
      if (Option.isSome(nats.criticalOut)) {
        const s = nats.criticalOut.value.stats()
        criticalPublished = s.published
        count(natsCriticalPublished, criticalPublished)
        count(natsCriticalUnpublishable, s.unpublishable)
      }
      if (Option.isSome(nats.criticalIn)) {
        const s = nats.criticalIn.value.stats()
        delivered = s.deliveredByKind
        for (const [kind, n] of Object.entries(delivered)) count(natsCriticalDelivered, n, [label("kind", kind)])
        count(natsMalformed, s.malformed, [label("channel", "critical")])
        malformedFrames += s.malformed
      }
      const commands = { submitted: 0, handled: 0 }
      if (Option.isSome(nats.commandsOut)) {
        const s = nats.commandsOut.value.stats()
        commands.submitted = s.submitted
        count(natsCommandsSubmitted, commands.submitted)
        count(natsCommandsPublishFailed, s.failed)
      }
      if (Option.isSome(nats.commandsIn)) {
        const s = nats.commandsIn.value.stats()
        commands.handled = s.handled
        count(natsCommandsHandled, s.handled)
        count(natsCommandsRefused, s.forged, [label("reason", "forged")])
        count(natsCommandsRefused, s.unauthorized, [label("reason", "unauthorized")])
        count(natsMalformed, s.invalid, [label("channel", "commands")])
        count(natsCommandsTerminated, s.terminated)
        malformedFrames += s.invalid
      }
      return {
        connected: c.connected,
        reconnects: c.reconnects,
        market,
        critical: { published: criticalPublished, delivered },
        commands,
        malformed: malformedFrames
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
            ...(Option.isSome(nats.criticalOut) ? nats.criticalOut.value.readinessReasons() : [])
          ]
          const result = more.length === 0 ? ready : { ready: false, reasons: [...ready.reasons, ...more] }
          set(readyGauge, result.ready ? 1 : 0)
          set(notReadyReasons, result.reasons.length)
          return { ...base, providers: views, readiness: result }
        })
      )
    })

    let latest: StatusSnapshot | undefined
    const refreshWith = (periodic: boolean) => Effect.tap(snapshot(periodic), (s) => Effect.sync(() => (latest = s)))
    const refresh = refreshWith(false)

    yield* refreshWith(true).pipe(Effect.zipRight(logHeapWarnings), Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)

    /** Prometheus text of every metric, freshly sampled. */
    const scrape: Effect.Effect<string> = Effect.zipRight(
      refresh,
      Effect.promise(() => exporter.collect()).pipe(Effect.map((r) => serializer.serialize(r.resourceMetrics)))
    )

    return {
      /** Samples now. */
      snapshot: refresh,
      /** The last periodic sample (sampled now if there is none yet). */
      latest: Effect.suspend(() => (latest === undefined ? refresh : Effect.succeed(latest))),
      scrape
    } as const
  }),
  dependencies: [OtelResource.layer({ serviceName: "meltica-gateway" })]
}) {}
