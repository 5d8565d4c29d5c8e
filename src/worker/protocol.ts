/**
 * What the main thread and a strategy worker tell each other.
 *
 * Events go one way, through shared memory: two rings per worker (critical
 * and market lanes, `Ring.ts`), one bell that wakes the worker, one that
 * wakes the main thread when the worker has made room, one that tells the main
 * thread the worker acknowledged a critical frame. Each ring frame is a
 * `FRAME_HEADER` (below) followed by one frame of the binary wire codec
 * (`src/codec/Binary.ts`) holding one event.
 *
 * Everything else is low-rate and goes by `postMessage`: the worker's
 * commands (the Control Bus), its log records, its start and its end. A
 * command is a few hundred bytes a few times a second at most, where a
 * structured clone costs microseconds (`npm run bench:workers` measures the
 * round trip): a second ring would add a reader in the main thread for no
 * measurable gain.
 */
import type { ConsumerStats } from "../Consumer.js"
import type { MailboxOptions } from "../DataBus.js"
import type { Topology } from "../strategy/Strategy.js"
import type { RingMemory } from "./Ring.js"

/**
 * The ring frame header, 16 bytes: the dispatch time (epoch microseconds as
 * a float64, 0 when the event was not sampled for latency), then the frame's
 * sequence number in the critical lane (0 in the market lane) as a uint32,
 * then 4 bytes reserved.
 */
export const FRAME_HEADER = 16
export const HEADER_DISPATCH_TS = 0
export const HEADER_SEQ = 8

/** Counters the worker publishes in shared memory (Float64 slots): the consumer's books, read by `stats()`. */
export const STAT_PROCESSED = 0
export const STAT_FAILURES = 1
export const STAT_TIMEOUTS = 2
export const STAT_SKIPPED_STALE = 3
export const STAT_CRITICAL_PROCESSED = 4
/** Ring frames that did not decode (counted, dead-lettered in the worker's log, skipped). */
export const STAT_BAD_FRAMES = 5
export const STAT_FRAMES_READ = 6
/** Dispatch to lambda, p50/p99/p99.9/max microseconds, over the worker's latency sample. */
export const STAT_D2L_P50 = 7
export const STAT_D2L_P99 = 8
export const STAT_D2L_P999 = 9
export const STAT_D2L_MAX = 10
export const STAT_D2L_COUNT = 11
/** The same over the last 10 to 20 s (the status page's figures): p50/p99/max microseconds and the count. */
export const STAT_RECENT_P50 = 12
export const STAT_RECENT_P99 = 13
export const STAT_RECENT_MAX = 14
export const STAT_RECENT_COUNT = 15
/** The lambda's own time, p99 microseconds (0 before the first timed event). */
export const STAT_PROCESSING_P99 = 16
/** The worker's consumer: its minimum accepted routing version, and the events in its own mailbox. */
export const STAT_MIN_VERSION = 17
export const STAT_LAG = 18
export const STAT_SLOTS = 20

interface Quantiles {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/** The worker's consumer's books, as the main thread reads them from the slots. */
export interface ConsumerFigures {
  readonly processed: number
  readonly failures: number
  readonly timeouts: number
  readonly skippedStale: number
  readonly criticalProcessed: number
  readonly dispatchToLambda: Quantiles
  /** The same over the last 10 to 20 s. */
  readonly recentDispatchToLambda: Quantiles
  /** The lambda's own time, p99 microseconds (0 before the first timed event). */
  readonly processingP99: number
  readonly minVersion: number
  /** Events in the worker's own mailbox. */
  readonly lag: number
}

/** The worker publishes its consumer's books (one writer: the worker thread). */
export const writeConsumerFigures = (slots: Float64Array, s: ConsumerStats): void => {
  slots[STAT_PROCESSED] = s.processed
  slots[STAT_FAILURES] = s.failures
  slots[STAT_TIMEOUTS] = s.timeouts
  slots[STAT_SKIPPED_STALE] = s.skippedStale
  slots[STAT_CRITICAL_PROCESSED] = s.criticalProcessed
  slots[STAT_D2L_P50] = s.dispatchToLambda.p50
  slots[STAT_D2L_P99] = s.dispatchToLambda.p99
  slots[STAT_D2L_MAX] = s.dispatchToLambda.max
  slots[STAT_D2L_COUNT] = s.dispatchToLambda.count
  slots[STAT_RECENT_P50] = s.recentDispatchToLambda.p50
  slots[STAT_RECENT_P99] = s.recentDispatchToLambda.p99
  slots[STAT_RECENT_MAX] = s.recentDispatchToLambda.max
  slots[STAT_RECENT_COUNT] = s.recentDispatchToLambda.count
  slots[STAT_PROCESSING_P99] = s.processing.count === 0 ? 0 : s.processing.p99
  slots[STAT_MIN_VERSION] = s.minVersion
  slots[STAT_LAG] = s.lag
}

/** The main thread reads what the worker last published. */
export const readConsumerFigures = (slots: Float64Array): ConsumerFigures => ({
  processed: slots[STAT_PROCESSED]!,
  failures: slots[STAT_FAILURES]!,
  timeouts: slots[STAT_TIMEOUTS]!,
  skippedStale: slots[STAT_SKIPPED_STALE]!,
  criticalProcessed: slots[STAT_CRITICAL_PROCESSED]!,
  dispatchToLambda: {
    count: slots[STAT_D2L_COUNT]!,
    p50: slots[STAT_D2L_P50]!,
    p99: slots[STAT_D2L_P99]!,
    max: slots[STAT_D2L_MAX]!
  },
  recentDispatchToLambda: {
    count: slots[STAT_RECENT_COUNT]!,
    p50: slots[STAT_RECENT_P50]!,
    p99: slots[STAT_RECENT_P99]!,
    max: slots[STAT_RECENT_MAX]!
  },
  processingP99: slots[STAT_PROCESSING_P99]!,
  minVersion: slots[STAT_MIN_VERSION]!,
  lag: slots[STAT_LAG]!
})

/** What a worker is started with (its `workerData`). */
export interface WorkerInit {
  /** The module the bootstrap imports in the worker (this package's `entry.ts`). */
  readonly entry: string
  readonly consumerId: string
  /** The strategy file, absolute. */
  readonly module: string
  readonly options: unknown
  readonly mailbox: Partial<MailboxOptions>
  readonly eventTimeoutMs: number | undefined
  readonly topology: Topology | undefined
  /** The strategy may engage its own kill switch only (a NATS strategy process). */
  readonly ownKillSwitchOnly: boolean
  readonly critical: RingMemory
  readonly market: RingMemory
  /**
   * Three bells: [0] wakes the worker (events written), [1] wakes the main
   * thread (room made), [2] tells the main thread a critical frame was
   * acknowledged (it passes the acknowledgement on to where the event came from).
   */
  readonly bells: SharedArrayBuffer
  readonly stats: SharedArrayBuffer
  /** The main thread's `performance.timeOrigin`: dispatch times are converted with it. */
  readonly mainTimeOrigin: number
  /** Critical frames the previous run of this worker had taken and not processed: processed first. */
  readonly replay: ReadonlyArray<Uint8Array>
  /** How many times this strategy's worker was started before (0 the first time). */
  readonly restarts: number
}

/** A log record of the worker, re-emitted by the main thread's logger. */
export interface WorkerLog {
  readonly _tag: "Log"
  readonly level: "All" | "Fatal" | "Error" | "Warning" | "Info" | "Debug" | "Trace" | "None"
  readonly message: string
  /** The cause, pretty-printed (no value of the strategy's crosses as an object). */
  readonly cause: string | undefined
  readonly annotations: Readonly<Record<string, string>>
}

export type FromWorker =
  /** The strategy started (its `start` finished): the worker takes events. */
  | { readonly _tag: "Started" }
  /** The strategy did not start: loading, options or `start` failed. */
  | { readonly _tag: "StartFailed"; readonly reason: string }
  /** A command for the Control Bus, in its wire form (a control envelope as JSON). */
  | { readonly _tag: "Command"; readonly json: string }
  | WorkerLog
  /** The worker stopped its strategy and is about to exit. */
  | { readonly _tag: "Stopped" }

export type ToWorker = { readonly _tag: "Stop" }
