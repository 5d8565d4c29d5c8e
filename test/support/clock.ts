/** Moving the TestClock in the small steps the gateway's timers need. */
import { Effect, TestClock } from "effect"

/** Advances the TestClock by `ms` in 10 ms steps, so every timer due on the way fires in order. */
export const advance = (ms: number) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += 10) yield* TestClock.adjust("10 millis")
  })
