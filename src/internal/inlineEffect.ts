/**
 * Running a lambda's effect in place when it is one synchronous step.
 *
 * Most strategy lambdas return `Effect.sync(...)`, `Effect.void` or an
 * `Exit`: one primitive whose result is known without the fiber runtime. The
 * consumer loop runs those in place, as a plain call, and hands everything
 * else (generators, async work, anything with a span or a finalizer) to the
 * runtime as before. The runtime's cost per effect (a frame pushed, the op
 * dispatched, the yield check) is most of a delivery's cost when the lambda
 * itself is small (`bench:fanout`).
 *
 * What runs in place is what the runtime would do with the same primitive:
 * a `Sync` calls its thunk (a throw is a defect), a `Success` is done, a
 * `Failure` fails with its cause. No interruption can land inside one
 * synchronous step in either case.
 *
 * This reads Effect 3's primitive encoding (`_op`, `effect_instruction_i0`):
 * `test/inlineEffect.test.ts` pins it, so an Effect release that changes it
 * fails the suite rather than silently sending every lambda to the runtime.
 */
import { Cause, type Effect } from "effect"

/** The effect is not one synchronous primitive: the runtime must run it. */
export const NOT_INLINE = 0
/** The effect ran in place and succeeded. */
export const SUCCEEDED = 1
/** The effect ran in place and failed: its cause is in `inlineFailure.cause`. */
export const FAILED = 2

/** The cause of the last in-place run that failed (read at once by the caller). */
export const inlineFailure: { cause: Cause.Cause<unknown> } = { cause: Cause.empty }

interface Primitive {
  readonly _op?: unknown
  readonly effect_instruction_i0?: unknown
}

/** Runs `self` in place if it is one synchronous primitive; says what happened. */
export const runInline = (self: Effect.Effect<unknown, unknown>): 0 | 1 | 2 => {
  const p = self as unknown as Primitive
  switch (p._op) {
    case "Sync": {
      try {
        ;(p.effect_instruction_i0 as () => unknown)()
        return SUCCEEDED
      } catch (defect) {
        inlineFailure.cause = Cause.die(defect)
        return FAILED
      }
    }
    case "Success":
      return SUCCEEDED
    case "Failure":
      inlineFailure.cause = p.effect_instruction_i0 as Cause.Cause<unknown>
      return FAILED
    default:
      return NOT_INLINE
  }
}
