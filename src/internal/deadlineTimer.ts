/**
 * One timer fiber for a set of deadlines (gap lateness, merge windows): it
 * sleeps until the earliest deadline, lets the owner expire what is due, and
 * goes on while deadlines remain. Arming it while it runs is free. Effect's
 * Clock drives it, so TestClock does in tests.
 */
import { Effect, FiberSet } from "effect"

export interface DeadlineTimer {
  /** Starts the timer fiber if a deadline is pending and none runs. */
  readonly arm: () => Effect.Effect<void>
}

export const makeDeadlineTimer = (options: {
  readonly fibers: FiberSet.FiberSet<void>
  readonly nowMs: () => number
  readonly nextDeadline: () => number | undefined
  readonly expire: (nowMs: number) => Effect.Effect<void>
}): DeadlineTimer => {
  let running = false
  const loop: Effect.Effect<void> = Effect.suspend(() => {
    const deadline = options.nextDeadline()
    if (deadline === undefined) {
      running = false
      return Effect.void
    }
    return Effect.sleep(Math.max(0, deadline - options.nowMs())).pipe(
      Effect.zipRight(Effect.suspend(() => options.expire(options.nowMs()))),
      Effect.zipRight(loop)
    )
  })
  return {
    arm: () => {
      if (running || options.nextDeadline() === undefined) return Effect.void
      running = true
      return FiberSet.run(options.fibers, loop).pipe(Effect.asVoid)
    }
  }
}
