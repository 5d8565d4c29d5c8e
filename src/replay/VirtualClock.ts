/**
 * Virtual time for replay: a `Clock` whose "now" is moved by the replay
 * driver to each recorded timestamp, and whose `sleep` is a timer on that
 * time. Run the whole gateway with it (`Effect.withClock`) and every merge
 * window, lateness deadline, timeout and strategy timer fires in recorded
 * time.
 *
 * Rules:
 * - Time never goes back: `advanceTo(t)` with `t` before now is a no-op.
 * - Timers fire in deadline order, ties in the order they were set; each
 *   firing sets now to its deadline first, and the driver lets the woken
 *   fibers run (`settle`) before time moves on.
 * - After `release()` (the recording has ended) the clock runs on: now is the
 *   last virtual time plus the real time elapsed since, and sleeps are real
 *   timers, so shutdown timeouts and drains behave as in a live process.
 *
 * Why not TestClock: `TestClock.adjust` per event costs a fiber hop and a
 * scan of its sleeps (measured in `bench/replay.ts`); this clock is a heap of
 * timers and a number.
 *
 * Determinism: replay runs on `deterministicScheduler` (microtasks only,
 * never a real timer), so with no real I/O in the run the order in which
 * fibers run depends on nothing outside the program. `settle` waits for a
 * macrotask (`setImmediate`), which the event loop runs only once no
 * microtask is left: every fiber has run until it waits for something.
 */
import type { Clock } from "effect"
import type { Scheduler } from "effect"
import { Duration, Effect } from "effect"
import { ImmediateFallbackScheduler } from "../internal/scheduler.js"

const ClockTypeId: Clock.ClockTypeId = Symbol.for("effect/Clock") as Clock.ClockTypeId

interface Timer {
  readonly deadline: number
  readonly order: number
  fire: (() => void) | undefined
  /** The real timer that replaced it after `release()`. */
  handle?: ReturnType<typeof setTimeout> | undefined
}

/** Earlier deadline first, then the one set first. */
const before = (a: Timer, b: Timer): boolean => a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order)

export class VirtualClock implements Clock.Clock {
  readonly [ClockTypeId]: Clock.ClockTypeId = ClockTypeId
  /** Epoch microseconds. */
  private nowUs: number
  private readonly heap: Array<Timer> = []
  private order = 0
  private released: { readonly at: number; readonly base: number } | undefined
  /** Timers fired so far. */
  fired = 0

  constructor(startUs: number) {
    this.nowUs = startUs
  }

  /** Epoch microseconds. */
  nowMicros(): number {
    if (this.released === undefined) return this.nowUs
    return this.released.base + Math.floor((performance.now() - this.released.at) * 1000)
  }

  unsafeCurrentTimeMillis(): number {
    return Math.floor(this.nowMicros() / 1000)
  }
  readonly currentTimeMillis = Effect.sync(() => this.unsafeCurrentTimeMillis())
  unsafeCurrentTimeNanos(): bigint {
    return BigInt(this.nowMicros()) * 1000n
  }
  readonly currentTimeNanos = Effect.sync(() => this.unsafeCurrentTimeNanos())

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const ms = Duration.toMillis(duration)
      if (this.released !== undefined) {
        const handle = setTimeout(() => resume(Effect.void), Math.max(0, Math.min(ms, 2 ** 31 - 1)))
        return Effect.sync(() => clearTimeout(handle))
      }
      const timer: Timer = {
        deadline: this.nowUs + Math.max(0, Math.round(ms * 1000)),
        order: this.order++,
        fire: () => resume(Effect.void)
      }
      this.push(timer)
      return Effect.sync(() => {
        timer.fire = undefined
        if (timer.handle !== undefined) clearTimeout(timer.handle)
      })
    })
  }

  /** The next live timer's deadline (epoch microseconds), if any. */
  nextDeadline(): number | undefined {
    this.dropCanceled()
    return this.heap[0]?.deadline
  }

  /** Sets now to `t` and answers true when no timer is due by then (the cheap path); false otherwise. */
  advanceIfNoTimerDue(t: number): boolean {
    const next = this.nextDeadline()
    if (next !== undefined && next <= t) return false
    if (t > this.nowUs) this.nowUs = t
    return true
  }

  /**
   * Fires every timer due at or before `t`, in order, settling after each
   * deadline, then sets now to `t`.
   */
  advanceTo(t: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const next = this.nextDeadline()
      if (next === undefined || next > t) {
        if (t > this.nowUs) this.nowUs = t
        return Effect.void
      }
      if (next > this.nowUs) this.nowUs = next
      while (this.heap.length > 0 && this.heap[0].deadline <= this.nowUs) {
        const timer = this.pop()
        const fire = timer.fire
        if (fire !== undefined) {
          this.fired++
          fire()
        }
      }
      return settle.pipe(Effect.zipRight(this.advanceTo(t)))
    })
  }

  /** From now on, time is real time from the last virtual time; pending timers become real timers. */
  release(): void {
    if (this.released !== undefined) return
    this.released = { at: performance.now(), base: this.nowUs }
    const pending = this.heap.splice(0)
    for (const t of pending) {
      const fire = t.fire
      if (fire !== undefined) t.handle = setTimeout(fire, Math.max(0, (t.deadline - this.released.base) / 1000))
    }
  }

  private dropCanceled(): void {
    while (this.heap.length > 0 && this.heap[0].fire === undefined) this.pop()
  }

  private push(t: Timer): void {
    const h = this.heap
    h.push(t)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  private pop(): Timer {
    const h = this.heap
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l], h[m])) m = l
        if (r < h.length && before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

/**
 * Waits until every fiber has run as far as it can (no microtask left). Only
 * meaningful on `deterministicScheduler`, where fibers never wait on real
 * timers to continue.
 */
export const settle: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * A scheduler that runs fibers on microtasks only, all fibers in one queue
 * (the gateway's scheduler without its yield to the event loop: Effect's
 * default one falls back to a real timer after 2,048 microtask turns, whose
 * firing depends on wall time). Replay and import run on it; real I/O waits
 * until the program settles.
 */
export const deterministicScheduler: Scheduler.Scheduler = new ImmediateFallbackScheduler(Number.MAX_SAFE_INTEGER)
