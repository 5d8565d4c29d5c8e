/**
 * A background flush for the life of the scope: `flush` runs every
 * `intervalMs` (on the Effect Clock) and at once whenever `wake` is offered;
 * closing the scope stops it and flushes one last time. The recorders' (the
 * canonical events' and the raw frames').
 */
import { Duration, Effect, Fiber, Queue } from "effect"
import type { Scope } from "effect"

export const flushInBackground = (
  wake: Queue.Queue<void>,
  intervalMs: number,
  flush: Effect.Effect<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const flusher = yield* Queue.take(wake).pipe(
      Effect.timeout(Duration.millis(intervalMs)),
      Effect.ignore,
      Effect.zipRight(flush),
      Effect.forever,
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => Fiber.interrupt(flusher).pipe(Effect.zipRight(flush)))
  })
