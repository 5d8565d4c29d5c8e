/**
 * The Recycler: the only code that returns an object to a pool.
 *
 * Every stage hands its last-owned events here (the Orchestrator its merge
 * fragments, the Dispatcher its fan-out originals, the consumer wrapper every
 * delivered event). It resets every field, routes the object to its own type's
 * pool, and refuses a second recycle of the same object (the double-put guard:
 * always on, O(1), an ownership flag on the object).
 *
 * In debug mode the holder owns a view that the recycle revokes (see
 * `internal/debugViews.ts`), double-puts carry both stacks, and the leak report
 * lists every object still outstanding with the stack that acquired it.
 */
import { Effect, Queue, Scope } from "effect"
import type { AnyEvent, PoolType } from "./Event.js"
import { poolTypes } from "./Event.js"
import { captureStack, type StackTrace } from "./internal/debugViews.js"
import { Pool, PoolInternal } from "./Pool.js"

export type Violation =
  | {
    readonly _tag: "DoublePut"
    readonly pool: PoolType
    readonly traceId: string
    readonly stack: StackTrace
    /** Debug mode: the stack of the first recycle. */
    readonly firstRecycle: StackTrace | undefined
  }
  | { readonly _tag: "NotPooled"; readonly stack: StackTrace }

export interface LeakedObject {
  readonly pool: PoolType
  readonly acquireStack: string
}

export interface LeakReport {
  readonly outstanding: { readonly [K in PoolType]: number }
  readonly total: number
  /** Debug mode only: each outstanding object with the stack that acquired it. */
  readonly objects: ReadonlyArray<LeakedObject>
}

export interface RecyclerStats {
  readonly recycled: number
  readonly doublePuts: number
  readonly notPooled: number
}

export const formatLeakReport = (report: LeakReport): string => {
  const head = `leak report: ${report.total} outstanding pooled object(s) ` +
    `(Event ${report.outstanding.Event}, MergedEvent ${report.outstanding.MergedEvent}, ` +
    `ExecReport ${report.outstanding.ExecReport})`
  return [head, ...report.objects.map((o) => `  ${o.pool} acquired at:\n${o.acquireStack}`)].join("\n")
}

export class Recycler extends Effect.Service<Recycler>()("meltica/Recycler", {
  scoped: Effect.gen(function*() {
    const pool = yield* Pool
    const { release, views } = pool[PoolInternal]
    const violations = yield* Queue.dropping<Violation>(1024)
    let recycled = 0
    let doublePuts = 0
    let notPooled = 0

    const refuse = (v: Violation): false => {
      if (v._tag === "DoublePut") doublePuts++
      else notPooled++
      Queue.unsafeOffer(violations, v)
      return false
    }

    /** Recycles one object; returns false (and reports it) when the recycle is refused. */
    const unsafeRecycle = (obj: AnyEvent): boolean => {
      let target = obj
      if (views !== undefined) {
        const record = views.resolve(obj)
        if (record === undefined) return refuse({ _tag: "NotPooled", stack: captureStack(1) })
        if (record.recycled !== undefined) {
          return refuse({
            _tag: "DoublePut",
            pool: record.target._pool,
            traceId: record.target.traceId,
            stack: captureStack(1),
            firstRecycle: record.recycled
          })
        }
        record.recycled = captureStack(1)
        views.outstanding.delete(record)
        target = record.target
      }
      if (!target._owned) {
        return refuse({
          _tag: "DoublePut",
          pool: target._pool,
          traceId: target.traceId,
          stack: captureStack(1),
          firstRecycle: undefined
        })
      }
      target._owned = false
      target.reset()
      release(target)
      recycled++
      return true
    }

    const unsafeRecycleMany = (objs: Iterable<AnyEvent>): void => {
      for (const o of objs) unsafeRecycle(o)
    }

    const logViolation = (v: Violation) =>
      v._tag === "DoublePut"
        ? Effect.logWarning("double put refused: the object was already recycled").pipe(
          Effect.annotateLogs({
            pool: v.pool,
            trace_id: v.traceId,
            stack: v.stack.stack,
            ...(v.firstRecycle === undefined ? {} : { first_recycle_stack: v.firstRecycle.stack })
          })
        )
        : Effect.logWarning("recycle refused: not a pooled object").pipe(Effect.annotateLogs({ stack: v.stack.stack }))

    const leakReport = (): LeakReport => {
      const stats = pool.stats()
      const outstanding = {
        Event: stats.Event.outstanding,
        MergedEvent: stats.MergedEvent.outstanding,
        ExecReport: stats.ExecReport.outstanding
      }
      return {
        outstanding,
        total: poolTypes.reduce((n, t) => n + outstanding[t], 0),
        objects: views === undefined
          ? []
          : [...views.outstanding].map((r) => ({ pool: r.target._pool, acquireStack: r.acquired.stack }))
      }
    }

    yield* Queue.take(violations).pipe(Effect.flatMap(logViolation), Effect.forever, Effect.forkScoped)
    yield* Effect.addFinalizer(() =>
      Queue.takeAll(violations).pipe(Effect.flatMap(Effect.forEach(logViolation, { discard: true })))
    )

    return {
      unsafeRecycle,
      unsafeRecycleMany,
      recycle: (obj: AnyEvent): Effect.Effect<boolean> => Effect.sync(() => unsafeRecycle(obj)),
      recycleMany: (objs: Iterable<AnyEvent>): Effect.Effect<void> => Effect.sync(() => unsafeRecycleMany(objs)),
      /** An object acquired for the life of the current scope, recycled when it closes, however it closes. */
      scoped: <A extends AnyEvent>(acquire: () => A): Effect.Effect<A, never, Scope.Scope> =>
        Effect.acquireRelease(Effect.sync(acquire), (a) => Effect.sync(() => unsafeRecycle(a))),
      leakReport,
      stats: (): RecyclerStats => ({ recycled, doublePuts, notPooled })
    } as const
  }),
  dependencies: [Pool.Default]
}) {}
