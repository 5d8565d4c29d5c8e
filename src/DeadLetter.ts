/**
 * The dead-letter queue: bad input that was refused (a malformed exchange
 * frame, an invalid control command, an undecodable bus message), kept for
 * inspection.
 *
 * Bounded: it holds the most recent `capacity` entries and counts what it had
 * to evict. Counts per (source, reason) are kept for the whole life of the
 * service, whatever was evicted.
 */
import { Clock, Context, Effect, Layer } from "effect"

export interface DeadLetterEntry {
  /** Who refused it: "binance", "sim-a", "control-bus", ... */
  readonly source: string
  /** Why, as a short stable token: "invalid_json", "schema", "unknown_message", ... */
  readonly reason: string
  /** The input as received (truncated to `maxRawLength`). */
  readonly raw: string
  /** Epoch milliseconds. */
  readonly at: number
}

export interface DeadLetterCount {
  readonly source: string
  readonly reason: string
  readonly count: number
}

export interface DeadLetterSettings {
  readonly capacity: number
  readonly maxRawLength: number
}

const defaultDeadLetterSettings: DeadLetterSettings = { capacity: 1_024, maxRawLength: 16_384 }

export class DeadLetterConfig extends Context.Tag("meltica/DeadLetterConfig")<DeadLetterConfig, DeadLetterSettings>() {}

const rawText = (raw: unknown): string => {
  if (typeof raw === "string") return raw
  if (raw instanceof Uint8Array) return new TextDecoder().decode(raw)
  try {
    return JSON.stringify(raw) ?? String(raw)
  } catch {
    return String(raw)
  }
}

const make = (settings: DeadLetterSettings) => {
  const ring: Array<DeadLetterEntry | undefined> = new Array(settings.capacity)
  let next = 0
  let size = 0
  let total = 0
  let evicted = 0
  const counts = new Map<string, { source: string; reason: string; count: number }>()

  const unsafeRecord = (source: string, reason: string, raw: unknown, at: number = Date.now()): void => {
    const text = rawText(raw)
    const entry: DeadLetterEntry = {
      source,
      reason,
      raw: text.length > settings.maxRawLength ? text.slice(0, settings.maxRawLength) : text,
      at
    }
    total++
    const key = `${source}\u0000${reason}`
    const c = counts.get(key)
    if (c === undefined) counts.set(key, { source, reason, count: 1 })
    else c.count++
    if (settings.capacity === 0) {
      evicted++
      return
    }
    if (size === settings.capacity) evicted++
    else size++
    ring[next] = entry
    next = (next + 1) % settings.capacity
  }

  const entries = (): ReadonlyArray<DeadLetterEntry> => {
    const out: Array<DeadLetterEntry> = []
    const start = (next - size + settings.capacity) % Math.max(settings.capacity, 1)
    for (let i = 0; i < size; i++) out.push(ring[(start + i) % settings.capacity]!)
    return out
  }

  return {
    settings,
    /** Records one refused input, stamped with the Clock's time. */
    record: (source: string, reason: string, raw: unknown): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => unsafeRecord(source, reason, raw, at))),
    /** Synchronous form for hot paths and callbacks; `at` defaults to the wall clock. */
    unsafeRecord,
    /** The retained entries, oldest first. */
    entries,
    /** Counts per (source, reason) since start, evicted entries included. */
    counts: (): ReadonlyArray<DeadLetterCount> => [...counts.values()].map((c) => ({ ...c })),
    /** Count for one (source, reason), or for every reason of a source. */
    count: (source: string, reason?: string): number => {
      let n = 0
      for (const c of counts.values()) if (c.source === source && (reason === undefined || c.reason === reason)) n += c.count
      return n
    },
    stats: () => ({ total, retained: size, evicted, capacity: settings.capacity }),
    clear: (): Effect.Effect<void> =>
      Effect.sync(() => {
        ring.fill(undefined)
        next = 0
        size = 0
      })
  } as const
}

export class DeadLetter extends Effect.Service<DeadLetter>()("meltica/DeadLetter", {
  effect: Effect.map(
    Effect.serviceOption(DeadLetterConfig),
    (o) => make(o._tag === "Some" ? o.value : defaultDeadLetterSettings)
  )
}) {
  /** A queue with the given bounds. */
  static readonly layer = (settings: Partial<DeadLetterSettings> = {}): Layer.Layer<DeadLetter> =>
    DeadLetter.Default.pipe(
      Layer.provide(Layer.succeed(DeadLetterConfig, { ...defaultDeadLetterSettings, ...settings }))
    )
}
