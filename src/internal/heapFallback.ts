/**
 * Tells a sustained fallback to the heap from a burst. A pool whose free list
 * is empty allocates on the heap (`Pool.ts`: telemetry, not an error); a
 * burst of that is expected, but allocations in every one of
 * `sustainedSamples` consecutive samples mean the pool is too small for the
 * load and the garbage collector is doing the pool's work. Then a warning is
 * due: at most one per pool type per `intervalMs` (the log is rate-limited,
 * the count of warnings is kept).
 *
 * Pure and synchronous: time and totals are arguments; `Status.ts` feeds it
 * one sample per second.
 */
export interface HeapFallbackWarning {
  readonly pool: string
  /** Heap allocations over the streak of samples that triggered the warning. */
  readonly allocated: number
  readonly samples: number
}

export class HeapFallbackWatch {
  private readonly state = new Map<string, { total: number; streak: number; streakAllocated: number; warnedAt: number }>()
  /** Warnings issued, by pool type. */
  readonly warnings = new Map<string, number>()

  constructor(readonly sustainedSamples = 5, readonly intervalMs = 60_000) {}

  /** One sample of a pool type's running total of heap allocations, at `nowMs`. */
  observe(pool: string, total: number, nowMs: number): HeapFallbackWarning | undefined {
    const s = this.state.get(pool)
    if (s === undefined) {
      this.state.set(pool, { total, streak: 0, streakAllocated: 0, warnedAt: Number.NEGATIVE_INFINITY })
      this.warnings.set(pool, 0)
      return undefined
    }
    const delta = total - s.total
    s.total = total
    if (delta <= 0) {
      s.streak = 0
      s.streakAllocated = 0
      return undefined
    }
    s.streak++
    s.streakAllocated += delta
    if (s.streak < this.sustainedSamples || nowMs - s.warnedAt < this.intervalMs) return undefined
    s.warnedAt = nowMs
    this.warnings.set(pool, (this.warnings.get(pool) ?? 0) + 1)
    return { pool, allocated: s.streakAllocated, samples: s.streak }
  }

  /** Whether the pool type's current streak is sustained. */
  sustained(pool: string): boolean {
    return (this.state.get(pool)?.streak ?? 0) >= this.sustainedSamples
  }
}
