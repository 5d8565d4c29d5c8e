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
import { Cause, Effect, FiberId } from "effect"

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

interface Composite extends Primitive {
  readonly effect_instruction_i1?: unknown
  readonly commit?: () => Effect.Effect<unknown, unknown>
}

/**
 * Runs as much of `self` in place as is made of synchronous steps
 * (`Success`, `Sync`, `Effect.suspend`, and `flatMap`/`zipRight` chains of
 * them), as the runtime would, and answers what is left for the runtime:
 * `undefined` when all of it ran and succeeded, otherwise the rest (the first
 * step that needs the runtime, with the continuations after it; or the
 * failure, a thrown thunk being a defect as in the runtime). For a caller that
 * runs many small effects in an uninterruptible stretch (the replay driver's
 * hand-overs): no step of the runtime when nothing suspends.
 */
export const runPrefix = (self: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> | undefined => {
  let current = self as unknown as Composite
  let stack: Array<(a: unknown) => Effect.Effect<unknown, unknown>> | undefined
  for (;;) {
    let value: unknown
    switch (current._op) {
      case "Success":
        value = current.effect_instruction_i0
        break
      case "Sync":
        try {
          value = (current.effect_instruction_i0 as () => unknown)()
        } catch (defect) {
          // the continuations are for success only: a defect skips them, as in the runtime
          return Effect.failCause(Cause.die(defect))
        }
        break
      case "Commit":
        current = current.commit!() as unknown as Composite
        continue
      case "OnSuccess":
        ;(stack ??= []).push(current.effect_instruction_i1 as (a: unknown) => Effect.Effect<unknown, unknown>)
        current = current.effect_instruction_i0 as Composite
        continue
      default: {
        // the runtime takes it from here, with the continuations still to run
        let rest = current as unknown as Effect.Effect<unknown, unknown>
        if (stack !== undefined) for (let i = stack.length - 1; i >= 0; i--) rest = Effect.flatMap(rest, stack[i]!)
        return rest
      }
    }
    const k = stack?.pop()
    if (k === undefined) return undefined
    current = k(value) as unknown as Composite
  }
}

/** Effect 3's primitive class (`Effect.yieldNow()` is one of its instances). */
const Primitive = Object.getPrototypeOf(Effect.yieldNow()).constructor as new(op: string) => {
  effect_instruction_i0: unknown
  effect_instruction_i1: unknown
}

/**
 * A wait made once and run any number of times: the runtime's own `Async`
 * primitive, with `register` called at each run with the fiber's resume (what
 * `Effect.async` does after a step of its own that makes a fresh primitive,
 * three closures and a pending-resume slot per wait). No canceler: an
 * interrupted wait is abandoned, and the runtime ignores its later resume.
 * For a loop that waits between bursts (a consumer on its mailbox).
 */
export const reusableWait = (register: (resume: (effect: Effect.Effect<void>) => void) => void): Effect.Effect<void> => {
  const wait = new Primitive("Async")
  wait.effect_instruction_i0 = register
  wait.effect_instruction_i1 = FiberId.none
  return wait as unknown as Effect.Effect<void>
}
