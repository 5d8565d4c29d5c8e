/**
 * Fiber-leak checks: build a layer under a tracking supervisor, run a body
 * against it, close its scope, and report every fiber still alive.
 */
import { Effect, Exit, Layer, Scope, Supervisor } from "effect"
import type { Context } from "effect"

export const runAndCountLeftFibers = <ROut, E, A, E2>(
  layer: Layer.Layer<ROut, E, never>,
  body: Effect.Effect<A, E2, ROut>
) =>
  Effect.gen(function*() {
    const supervisor = yield* Supervisor.track
    const scope = yield* Scope.make()
    const context: Context.Context<ROut> = yield* Layer.buildWithScope(layer, scope).pipe(Effect.supervised(supervisor))
    const result = yield* body.pipe(Effect.provide(context), Effect.supervised(supervisor))
    const aliveBefore = (yield* supervisor.value).length
    yield* Scope.close(scope, Exit.void)
    const left = yield* supervisor.value
    return { result, aliveBefore, left: left.length }
  })
