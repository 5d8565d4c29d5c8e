/**
 * A worker thread as a function, for the life of the scope: each request is
 * posted with an id and its answer resumes the caller. If the thread fails or
 * exits, the calls in flight fail with the reason and later calls run `here`
 * (on this thread) instead. The thread is unreferenced (it never keeps the
 * process up) and terminated when the scope closes.
 */
import { Effect, Either } from "effect"
import type { Scope } from "effect"
import type { Worker } from "node:worker_threads"

export interface WorkerCalls<Req, Res, Msg> {
  /** Starts the thread. */
  readonly start: () => Worker
  /** Posts request `id` (its buffers transferred as the request allows). */
  readonly post: (worker: Worker, id: number, request: Req) => void
  /** The answer a message carries (its `id` says which request it answers). */
  readonly answer: (message: Msg) => Either.Either<Res, string>
  /** What runs once the thread is gone. */
  readonly here: (request: Req) => Effect.Effect<Res, string>
}

export const workerCalls = <Req, Res, Msg extends { readonly id: number }>(
  spec: WorkerCalls<Req, Res, Msg>
): Effect.Effect<(request: Req) => Effect.Effect<Res, string>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = new Map<number, (answer: Either.Either<Res, string>) => void>()
    let broken = false
    let next = 0
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const w = spec.start()
        w.unref()
        const fail = (reason: string) => {
          broken = true
          for (const k of pending.values()) k(Either.left(reason))
          pending.clear()
        }
        w.on("message", (m: Msg) => {
          const k = pending.get(m.id)
          pending.delete(m.id)
          k?.(spec.answer(m))
        })
        w.on("error", (e) => fail(`the thread failed: ${e.message}`))
        w.on("exit", (code) => fail(`the thread exited (code ${code})`))
        return w
      }),
      (w) => Effect.promise(() => w.terminate())
    )
    return (request) =>
      broken
        ? spec.here(request)
        : Effect.async<Res, string>((resume) => {
          const id = ++next
          pending.set(id, (a) => resume(Either.isRight(a) ? Effect.succeed(a.right) : Effect.fail(a.left)))
          spec.post(worker, id, request)
        })
  })
