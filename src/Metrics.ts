/**
 * All of the gateway's metrics, in one module: their names, kinds and
 * descriptions, and nothing else.
 *
 * Every component keeps plain-number counters on its hot path (`stats()`);
 * `Status` (`Status.ts`) reads them once a second (and before every scrape)
 * and publishes them as these Effect `Metric`s: monotonic counts as
 * incremental counters (exported as Prometheus counters), levels as gauges.
 * `Prometheus.ts` renders them. Names are snake_case with the `meltica_`
 * prefix; tags are low-cardinality (provider, symbol, consumer, lane, pool).
 *
 * A new figure: its definition here, its sampling line in `Status.ts` (or, for
 * the NATS link, in `nats/NatsStatus.ts`).
 */
import { Metric } from "effect"

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
export const mergesEmitted = counter("meltica_merge_windows_merged", "Merge windows that met their policy (one merged event each), partial ones included")
export const mergesSuppressed = counter("meltica_merge_windows_suppressed", "Merge windows closed short of their policy (suppressed)")
export const mergeMissing = counter("meltica_merge_missing_provider", "Suppressed windows, by missing provider")
export const mergesPartial = counter("meltica_merge_windows_partial", "Merged events emitted with venues missing (policy quorum or any)")
export const mergePartialMissing = counter("meltica_merge_partial_missing_provider", "Merged events emitted without the provider, by missing provider")
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
export const consumerCriticalLatency = histogram(
  "meltica_consumer_critical_dispatch_to_lambda_seconds",
  "Of the dispatch-to-lambda figure, the critical lane's events (execution reports, control acks and results), by consumer"
)
export const consumerProcessing = histogram("meltica_consumer_processing_seconds", "Lambda run time, sampled events, by consumer")
export const consumerLag = gauge("meltica_consumer_lag", "Events waiting in the consumer's mailbox")

// strategies on worker threads (`src/worker/`): exported from the first sample of a process that runs some, by consumer
export const workerRunning = gauge("meltica_worker_running", "1 while the strategy's worker thread runs, by consumer")
export const workerCrashes = counter("meltica_worker_crashes", "Strategy worker threads that ended without being asked to")
export const workerRestarts = counter("meltica_worker_restarts", "Strategy worker threads started again after a crash")
export const workerRingFrames = counter("meltica_worker_ring_frames", "Events written to a strategy worker's shared ring, by lane (critical, market)")
export const workerFramesRead = counter("meltica_worker_ring_frames_read", "Ring frames the strategy worker has taken (decoded or refused)")
export const workerUndecodableFrames = counter(
  "meltica_worker_undecodable_frames",
  "Ring frames the strategy worker refused: not exactly one event that decodes (logged; the frames after it still delivered)"
)
export const workerRingFull = counter("meltica_worker_ring_full", "Writes that found a strategy worker's ring full (the event waited for room or was queued)")
export const workerHandoverWaits = counter("meltica_worker_handover_waits", "Hand-overs of market data that suspended on a worker's full ring")
export const workerHandoverTimeouts = counter(
  "meltica_worker_handover_timeouts",
  "Suspended hand-overs that ran out of time and queued the event in the mailbox (latest-wins)"
)
export const workerWaiting = gauge("meltica_worker_handovers_waiting", "Hand-overs and mailbox moves waiting for room in a worker's ring now")
export const workerCriticalUnacked = gauge("meltica_worker_critical_unacked", "Critical events written to a worker and not yet acknowledged as handled")
export const workerReplayed = counter("meltica_worker_critical_replayed", "Critical events a crashed worker had taken and not handled, replayed to the next one")
export const workerWriteFailures = counter("meltica_worker_write_failures", "Events that could not be written to a worker's ring (did not encode, or too large): logged and recycled")
export const workerCommands = counter("meltica_worker_commands", "Commands a strategy worker sent to the Control Bus")
export const workerForeignCommands = counter("meltica_worker_foreign_commands", "Commands a strategy worker sent in another consumer's name: refused")
export const workerDispatchToLambda = gauge(
  "meltica_worker_dispatch_to_lambda_seconds",
  "Dispatch in the main thread to lambda start in the worker, over the worker's latency sample, by quantile (0.5, 0.99, max)"
)

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
export const controlRejections = counter("meltica_control_rejections", "Commands rejected, by reason (the rejection's tag)")
export const routingFlips = counter("meltica_routing_flips", "Routing flips")
export const deadLetters = counter("meltica_dead_letters", "Inputs refused into the dead-letter queue")

export const venueOrders = counter("meltica_venue_orders", "Orders accepted by the execution venue")
export const venueFills = counter("meltica_venue_fills", "Fills")
export const venueReports = counter("meltica_venue_exec_reports", "Execution reports emitted")
export const venueResting = gauge("meltica_venue_resting_orders", "Resting orders")
export const venueAmends = counter("meltica_venue_amends", "Amends applied by the execution venue")
export const venueBalanceShortfalls = counter(
  "meltica_venue_balance_shortfalls",
  "Payments the paper account could not cover in full (capped at the available balance; 0 unless the venue has a defect)"
)
export const balance = gauge("meltica_balance", "Account balance per venue and asset, by part (total, available, reserved)")
export const positionQuantity = gauge("meltica_position_quantity", "The account's signed position per venue and symbol, in the base asset")
export const positionPnl = gauge("meltica_position_pnl", "The account's P&L per venue and symbol in the quote asset, by kind (realized, unrealized, fees)")
export const strategyPnl = gauge("meltica_strategy_pnl", "A strategy's P&L per quote asset, by kind (realized, unrealized, fees)")
export const strategyOpenOrders = gauge("meltica_strategy_open_orders", "A strategy's orders working now")
export const riskRefusals = counter("meltica_risk_refusals", "Orders and amends refused before the venue, by limit (max_order_notional, max_position, max_open_orders, kill_switch)")
export const httpKillSwitchRefusals = counter("meltica_http_kill_switch_refusals", "POST /kill-switch requests refused, by reason (unauthorized 401, no_token 503, no_venue 503, invalid_body 400, body_too_large 413)")
export const httpKillSwitchApplied = counter("meltica_http_kill_switch_applied", "POST /kill-switch requests applied (engaged or released)")
export const killSwitchEngaged = gauge("meltica_kill_switch_engaged", "1 while the kill switch is engaged, by target (* for the whole gateway, else a strategy)")

// live venues (`execution/live/`): exported from the first sample of a gateway that has some, by venue
export const liveConnected = gauge("meltica_live_connected", "1 while the live venue's private stream is subscribed, by venue")
export const liveReconciliations = counter("meltica_live_reconciliations", "Reconciliations with the live venue (start and every reconnect), by venue")
export const liveDuplicateFills = counter("meltica_live_duplicate_fills", "Fills seen twice (stream and catch-up) and reported once, by venue")
export const liveRateLimited = counter("meltica_live_rate_limited", "Requests the live venue refused as too many (429/418), by venue")
export const liveRequestsDelayed = counter("meltica_live_requests_delayed", "Requests held back by the live venue's client-side limiter, by venue")
export const liveClockSkew = gauge("meltica_live_clock_skew_ms", "Venue time minus ours, last measured, by venue")
export const liveBudgetUsed = gauge("meltica_live_rate_budget_used", "Units of a documented limit used in its current window, by venue and bucket")
export const liveBudgetLimit = gauge("meltica_live_rate_budget_limit", "A documented limit per window, by venue and bucket")

export const natsConnected = gauge("meltica_nats_connected", "1 while the NATS connection is up")
export const natsReconnects = counter("meltica_nats_reconnects", "Reconnections to the NATS server")
export const natsMarketPublished = counter("meltica_nats_market_published", "Market-data events published on core NATS")
export const natsMarketPublishFailed = counter("meltica_nats_market_publish_failed", "Market-data events not published")
export const natsMarketReceived = counter("meltica_nats_market_received", "Market-data messages received from NATS")
export const natsMarketDropped = counter("meltica_nats_market_dropped", "Market-data messages dropped before the dispatcher (buffer full)")
export const natsMarketSubjects = gauge("meltica_nats_market_subjects", "Market-data subjects this process listens on")
export const natsCriticalPublished = counter("meltica_nats_critical_published", "Critical events stored on JetStream")
export const natsMarketMessages = counter("meltica_nats_market_messages", "Market-data NATS messages published (each a batch of one stream's events with the binary codec)")
export const natsCriticalInFlight = gauge("meltica_nats_critical_in_flight", "Critical events published and not yet stored (bounded by criticalWindow)")
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
export const natsRoutingVersion = gauge("meltica_nats_routing_version", "The routing version a market-data-only feed stamps: the Control Plane feed's, as last announced")
export const natsControlPlaneLeaseLost = gauge("meltica_nats_control_plane_lease_lost", "1 once another feed took over the Control Plane's lease while this one held it")
export const natsControlPlaneStalled = gauge("meltica_nats_control_plane_stalled", "1 while a command has been in progress past the stall bound with none finished")
export const readyGauge = gauge("meltica_ready", "1 when /ready answers ready")
export const notReadyReasons = gauge("meltica_not_ready_reasons", "How many reasons /ready gives for not being ready")
export const natsMalformed = counter("meltica_nats_malformed_frames", "Frames from NATS that did not decode, by channel")
export const natsCriticalUnpublishable = counter("meltica_nats_critical_unpublishable", "Critical events the server refused for good (too large, a header over its limit): dropped")
export const natsCommandsPublishFailed = counter("meltica_nats_commands_publish_failed", "Commands the server refused for good: dropped")
export const natsCommandsTerminated = counter("meltica_nats_commands_terminated", "Commands terminated as poison (malformed, or their handling died): never redelivered")


export const recorderEvents = counter("meltica_recorder_events", "Market-data events the recorder buffered (record: section or --record)")
export const recorderFiles = counter("meltica_recorder_files_written", "Recording files written")
export const recorderBytes = counter("meltica_recorder_bytes_written", "Bytes of the recording files written")
export const recorderFlushFailures = counter("meltica_recorder_flush_failures", "Recording files not written (encoding or I/O failed; their rows are lost)")
export const recorderBuffered = gauge("meltica_recorder_buffered", "Rows the recorder holds, not yet written")
export const recorderDropped = counter("meltica_recorder_dropped", "Market-data events left out of the recording because the encoder was too far behind (memory bound)")
export const recorderRefused = counter("meltica_recorder_refused", "Market-data events the recorder's binary codec could not hold")
export const rawFramesRows = counter("meltica_raw_frames_rows", "Venue frames (received, sent), REST bodies and connections the raw-frame recorder took in (record.rawFrames, --record-raw)")
export const rawFramesFiles = counter("meltica_raw_frames_files_written", "Raw frame files written")
export const rawFramesBytes = counter("meltica_raw_frames_bytes_written", "Bytes of the raw frame files written")
export const rawFramesWriteFailures = counter("meltica_raw_frames_write_failures", "Raw frame files not written (encoding or I/O failed; their rows are lost)")
export const rawFramesDropped = counter("meltica_raw_frames_dropped", "Raw frames left out because too much waited to be written (memory bound)")
export const rawFramesBuffered = gauge("meltica_raw_frames_buffered", "Raw frame rows held, not yet written")
export const replayFilesSkipped = counter("meltica_replay_files_skipped", "Recording files a replay skipped, by reason (unfinished_write, bad_name, checksum, wrong_format, not_parquet, unreadable, no_directory)")
