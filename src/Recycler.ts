/**
 * The Recycler: the only code that returns an object to a pool.
 *
 * Every stage hands its last-owned events here (the Orchestrator its merge
 * fragments, the Dispatcher its fan-out originals, the consumer wrapper every
 * delivered event). It resets every field, routes the object to its own type's
 * pool, and refuses a recycle by anyone but the current holder (the double-put
 * guard: always on, O(1)). Every recycle names the `Generation` its holder
 * received; the pool bumps an object's generation at every acquire and clone,
 * so a holder whose ownership ended (it recycled the object, the pool handed it
 * to someone else, and it recycles again) names an old generation and is
 * refused, and the object stays with its current holder. An object nobody owns
 * is refused the same way.
 *
 * An owner may share an event read-only among several holders instead of
 * handing each a clone (`share`, the Dispatcher's fan-out): each holder gets
 * its own generation and recycles with it; the last one recycles the object,
 * exactly once, and a holder recycling twice is refused as a stale holder
 * (`internal/sharing.ts`).
 *
 * In debug mode the holder owns a view that the recycle revokes (see
 * `internal/debugViews.ts`; a shared event's holders get read-only views),
 * double-puts carry both stacks, and the leak report lists every object still
 * outstanding with the stack that acquired it.
 */
import { Effect, Queue, Scope } from "effect"
import type { AnyEvent, PoolType } from "./Event.js"
import { poolTypes } from "./Event.js"
import { captureStack, type StackTrace, type ViewRecord } from "./internal/debugViews.js"
import { SharedHolders } from "./internal/sharing.js"
import { type Generation, generationOf, Pool, PoolInternal } from "./Pool.js"

export { type Generation, generationOf } from "./Pool.js"

export type Violation =
  | {
    readonly _tag: "DoublePut"
    /**
     * "Unowned": the object was already back in its pool. "StaleHolder": the
     * object is held by someone else now (the caller's generation has passed).
     */
    readonly reason: "Unowned" | "StaleHolder"
    readonly pool: PoolType
    readonly traceId: string
    /** The generation the caller named, and the object's current one. */
    readonly generation: number
    readonly currentGeneration: number
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
  /** Every refused second recycle (both reasons). */
  readonly doublePuts: number
  /** Of which: by a holder whose ownership had ended while the object was held by another. */
  readonly staleHolderPuts: number
  readonly notPooled: number
  /** Events shared read-only among several holders instead of cloned for each (fan-outs). */
  readonly shares: number
}

/**
 * The generations of the events a holder keeps in a structure that stores
 * events only (an ordering buffer, a merge window): `hold` at the hand-over,
 * `letGo` when the event leaves (to be recycled or handed on). O(1); an
 * event the holder never took gets a generation no object has, so recycling
 * it is refused as a stale holder's.
 */
export class Holdings {
  private readonly gens = new Map<AnyEvent, Generation>()
  /** Records the generation of an event the caller takes over now. */
  hold(e: AnyEvent, gen: Generation = generationOf(e)): void {
    this.gens.set(e, gen)
  }
  /** The generation the holder received for `e`; `e` is no longer held. */
  letGo(e: AnyEvent): Generation {
    const gen = this.gens.get(e)
    if (gen === undefined) return NOT_HELD
    this.gens.delete(e)
    return gen
  }
  get size(): number {
    return this.gens.size
  }
}

/** No object ever has this generation (the pool's first take makes it 1). */
const NOT_HELD = -1 as Generation

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
    let staleHolderPuts = 0
    let notPooled = 0
    let shares = 0

    const refuse = (v: Violation): false => {
      if (v._tag === "DoublePut") {
        doublePuts++
        if (v.reason === "StaleHolder") staleHolderPuts++
      } else notPooled++
      Queue.unsafeOffer(violations, v)
      return false
    }

    const doublePut = (
      target: AnyEvent,
      reason: "Unowned" | "StaleHolder",
      gen: Generation,
      firstRecycle: StackTrace | undefined
    ): false =>
      refuse({
        _tag: "DoublePut",
        reason,
        pool: target._pool,
        traceId: target.traceId,
        generation: gen,
        currentGeneration: target._gen,
        stack: captureStack(2),
        firstRecycle
      })

    /**
     * Recycles one object held in ownership period `gen` (the generation its
     * holder received); returns false (and reports it) when the recycle is refused.
     */
    const unsafeRecycle = (obj: AnyEvent, gen: Generation): boolean => {
      let target = obj
      let record: ViewRecord | undefined
      if (views !== undefined) {
        record = views.resolve(obj)
        if (record === undefined) return refuse({ _tag: "NotPooled", stack: captureStack(1) })
        target = record.target
        if (record.recycled !== undefined) {
          return doublePut(target, target._owned ? "StaleHolder" : "Unowned", gen, record.recycled)
        }
      }
      if (!target._owned) return doublePut(target, "Unowned", gen, undefined)
      const shared = target._share
      if (shared !== undefined && shared.refs > 0) {
        const released = shared.release(gen)
        if (released === "stale") return doublePut(target, "StaleHolder", gen, undefined)
        if (record !== undefined) {
          record.recycled = captureStack(1)
          views!.outstanding.delete(record)
        }
        if (released === "held") return true
      } else {
        if (target._gen !== gen) return doublePut(target, "StaleHolder", gen, undefined)
        if (record !== undefined) {
          record.recycled = captureStack(1)
          views!.outstanding.delete(record)
        }
      }
      target._owned = false
      target.reset()
      release(target)
      recycled++
      return true
    }

    /**
     * Ends the owner's period `gen` of `obj` and shares the object read-only
     * among `holders` (at least 2) holders, each of which takes it through
     * `holderOf` and recycles it with the generation its hand-over reads. The
     * owner must not touch it afterwards. Undefined (and reported) when the
     * owner's period has ended already: the object stays where it is.
     */
    const unsafeShare = (obj: AnyEvent, gen: Generation, holders: number): AnyEvent | undefined => {
      let target = obj
      if (views !== undefined) {
        const record = views.resolve(obj)
        if (record === undefined) {
          refuse({ _tag: "NotPooled", stack: captureStack(1) })
          return undefined
        }
        target = record.target
        if (record.recycled !== undefined) {
          doublePut(target, target._owned ? "StaleHolder" : "Unowned", gen, record.recycled)
          return undefined
        }
        if (!target._owned || target._gen !== gen || (target._share?.refs ?? 0) > 0) {
          doublePut(target, target._owned ? "StaleHolder" : "Unowned", gen, undefined)
          return undefined
        }
        // the owner's view ends here; each holder gets a read-only view of its own
        record.recycled = captureStack(1)
        views.outstanding.delete(record)
      } else if (!target._owned || target._gen !== gen || (target._share?.refs ?? 0) > 0) {
        doublePut(target, target._owned ? "StaleHolder" : "Unowned", gen, undefined)
        return undefined
      }
      const s = target._share ??= new SharedHolders()
      s.begin(target._gen, holders)
      // past every holder's generation: a stray read hands out one nobody has
      target._gen += holders + 1
      shares++
      return target
    }

    /** The object one holder of a shared event takes: the event itself, or in debug mode a read-only view of it. */
    const holderOf = (shared: AnyEvent): AnyEvent => views === undefined ? shared : views.wrap(shared, true)

    /** Recycles `objs[i]` held in period `gens[i]`, for every i. */
    const unsafeRecycleMany = (objs: ReadonlyArray<AnyEvent>, gens: ReadonlyArray<Generation>): void => {
      for (let i = 0; i < objs.length; i++) unsafeRecycle(objs[i]!, gens[i]!)
    }

    // built only when a warning would be written: formatting a stack costs more than the refusal
    const logViolation = (v: Violation) => Effect.asVoid(Effect.whenLogLevel(Effect.suspend(() => violationLog(v)), "Warning"))
    const violationLog = (v: Violation) =>
      v._tag === "DoublePut"
        ? Effect.logWarning(
          v.reason === "StaleHolder"
            ? "double put refused: the caller's ownership has ended and the object is held by another"
            : "double put refused: the object was already recycled"
        ).pipe(
          Effect.annotateLogs({
            reason: v.reason,
            pool: v.pool,
            trace_id: v.traceId,
            generation: v.generation,
            current_generation: v.currentGeneration,
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
      unsafeShare,
      holderOf,
      /** Debug mode: holders take views of the pooled objects, revoked when they recycle. */
      debugViews: views !== undefined,
      recycle: (obj: AnyEvent, gen: Generation): Effect.Effect<boolean> => Effect.sync(() => unsafeRecycle(obj, gen)),
      recycleMany: (objs: ReadonlyArray<AnyEvent>, gens: ReadonlyArray<Generation>): Effect.Effect<void> =>
        Effect.sync(() => unsafeRecycleMany(objs, gens)),
      /** An object acquired for the life of the current scope, recycled when it closes, however it closes. */
      scoped: <A extends AnyEvent>(acquire: () => A): Effect.Effect<A, never, Scope.Scope> =>
        Effect.map(
          Effect.acquireRelease(Effect.sync(() => {
            const a = acquire()
            return { a, gen: generationOf(a) }
          }), (held) => Effect.sync(() => unsafeRecycle(held.a, held.gen))),
          (held) => held.a
        ),
      leakReport,
      stats: (): RecyclerStats => ({ recycled, doublePuts, staleHolderPuts, notPooled, shares })
    } as const
  }),
  dependencies: [Pool.Default]
}) {}
