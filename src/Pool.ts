/**
 * The Pool: one bounded free list per pooled type.
 *
 * `acquire` never fails: when a free list is empty it allocates on the heap
 * and counts that (exhaustion is telemetry, not an error). A free list never
 * holds more than its capacity, so memory cannot grow without bound.
 *
 * Objects go back only through the `Recycler`; the release hook below is
 * internal and the Recycler is its one caller.
 *
 * Every take (acquire or clone) starts a new ownership period: the object's
 * generation is bumped, and the holder recycles with the `Generation` it
 * received, so a holder whose period has ended cannot put the object back
 * while someone else holds it.
 */
import { Config, Context, Effect, Layer } from "effect"
import { DEFAULT_EVENT_POOL_CAPACITY } from "../schema/Sizing.js"
import type { AnyEvent, PooledByType, PoolType } from "./Event.js"
import { constructors, poolTypes } from "./Event.js"
import { DebugViews } from "./internal/debugViews.js"

export interface PoolSettings {
  /**
   * Free-list capacity per pooled type. The Event pool's default holds what the
   * default mailboxes of the planned consumers let be in flight, with a quarter
   * more for events in transit (`schema/Sizing.ts` derives it).
   */
  readonly capacity: { readonly [K in PoolType]: number }
  /** Objects allocated into each free list at start-up. */
  readonly prewarm: number
  /** Debug mode: poisoning views, both stacks on double-put, leak report with acquire stacks. */
  readonly debug: boolean
}

export const defaultPoolSettings: PoolSettings = {
  capacity: { Event: DEFAULT_EVENT_POOL_CAPACITY, MergedEvent: 2_048, ExecReport: 4_096 },
  prewarm: 256,
  debug: false
}

export class PoolConfig extends Context.Tag("meltica/PoolConfig")<PoolConfig, PoolSettings>() {
  static readonly layer = (settings: Partial<PoolSettings> = {}): Layer.Layer<PoolConfig> =>
    Layer.succeed(PoolConfig, { ...defaultPoolSettings, ...settings })

  /** Defaults, with debug mode from `RECYCLER_DEBUG_MODE`. */
  static readonly Default: Layer.Layer<PoolConfig> = Layer.effect(
    PoolConfig,
    Config.boolean("RECYCLER_DEBUG_MODE").pipe(
      Config.withDefault(false),
      Effect.orElseSucceed(() => false),
      Effect.map((debug) => ({ ...defaultPoolSettings, debug }))
    )
  )
}

export interface PoolTypeStats {
  readonly capacity: number
  readonly free: number
  readonly acquired: number
  readonly recycled: number
  readonly heapAllocated: number
  /** Recycled while the free list was full: left to the garbage collector. */
  readonly discarded: number
  readonly outstanding: number
  /** outstanding / capacity */
  readonly utilization: number
  /** The most objects outstanding at once since start. */
  readonly peakOutstanding: number
  /** peakOutstanding / capacity */
  readonly peakUtilization: number
}

export type PoolStats = { readonly [K in PoolType]: PoolTypeStats }

declare const GenerationBrand: unique symbol

/**
 * One ownership period of one pooled object, as its holder received it.
 * Only the pool makes one (at acquire, clone, or when a holder takes an
 * event over); `Recycler.unsafeRecycle` requires it, so every structure that
 * holds an event to recycle later holds its generation beside it.
 */
export type Generation = number & { readonly [GenerationBrand]: true }

/**
 * The generation of an event whose ownership the caller takes now: read once,
 * at the hand-over (an acquire, a clone, an `offer`), and kept with the
 * event until it is recycled or handed on. Reading it again at recycle time
 * would defeat the guard. An event shared among several holders hands out a
 * different generation at each read, one per holder (`internal/sharing.ts`).
 */
export const generationOf = (e: AnyEvent): Generation => {
  // a shared event hands each holder its own generation, one per hand-over
  const s = e._share
  return (s === undefined || s.next > s.last ? e._gen : s.next++) as Generation
}

class FreeList<A extends AnyEvent> {
  readonly items: Array<A> = []
  acquired = 0
  recycled = 0
  heapAllocated = 0
  discarded = 0
  peak = 0
  constructor(readonly capacity: number, readonly make: () => A) {}

  take(): A {
    this.acquired++
    if (this.acquired - this.recycled > this.peak) this.peak = this.acquired - this.recycled
    let item = this.items.pop()
    if (item === undefined) {
      this.heapAllocated++
      item = this.make()
    }
    item._owned = true
    item._gen++
    return item
  }

  put(item: A): void {
    this.recycled++
    if (this.items.length < this.capacity) this.items.push(item)
    else this.discarded++
  }

  stats(): PoolTypeStats {
    const outstanding = this.acquired - this.recycled
    return {
      capacity: this.capacity,
      free: this.items.length,
      acquired: this.acquired,
      recycled: this.recycled,
      heapAllocated: this.heapAllocated,
      discarded: this.discarded,
      outstanding,
      utilization: this.capacity === 0 ? 0 : outstanding / this.capacity,
      peakOutstanding: this.peak,
      peakUtilization: this.capacity === 0 ? 0 : this.peak / this.capacity
    }
  }
}

/** @internal the Recycler's access to the pool. */
export const PoolInternal: unique symbol = Symbol.for("meltica/Pool/internal")

/** @internal */
export interface PoolInternals {
  /** Returns a reset, unowned object to its free list. Called by the Recycler only. */
  readonly release: (target: AnyEvent) => void
  /** Debug mode's views, when debug mode is on. */
  readonly views: DebugViews | undefined
}

const makePool = (settings: PoolSettings) => {
  const lists: { readonly [K in PoolType]: FreeList<PooledByType[K]> } = {
    Event: new FreeList(settings.capacity.Event, () => new constructors.Event()),
    MergedEvent: new FreeList(settings.capacity.MergedEvent, () => new constructors.MergedEvent()),
    ExecReport: new FreeList(settings.capacity.ExecReport, () => new constructors.ExecReport())
  }
  for (const type of poolTypes) {
    const list = lists[type] as FreeList<AnyEvent>
    const n = Math.min(settings.prewarm, list.capacity)
    for (let i = 0; i < n; i++) list.items.push(list.make())
  }
  const views = settings.debug ? new DebugViews() : undefined

  const acquire = <K extends PoolType>(type: K): PooledByType[K] => {
    const obj = (lists[type] as FreeList<AnyEvent>).take()
    return (views === undefined ? obj : views.wrap(obj)) as PooledByType[K]
  }

  /** A new object of the same type, from the pool, holding a copy of `src`. */
  const clone = <A extends AnyEvent>(src: A): A => {
    const obj = (lists[src._pool] as FreeList<AnyEvent>).take()
    ;(obj as { copyFrom(s: AnyEvent): void }).copyFrom(src)
    return (views === undefined ? obj : views.wrap(obj)) as A
  }

  const stats = (): PoolStats => ({
    Event: lists.Event.stats(),
    MergedEvent: lists.MergedEvent.stats(),
    ExecReport: lists.ExecReport.stats()
  })

  const internals: PoolInternals = {
    release: (target) => (lists[target._pool] as FreeList<AnyEvent>).put(target),
    views
  }

  return {
    settings,
    debug: settings.debug,
    acquire,
    acquireEvent: () => acquire("Event"),
    acquireMerged: () => acquire("MergedEvent"),
    acquireExecReport: () => acquire("ExecReport"),
    clone,
    stats,
    [PoolInternal]: internals
  } as const
}

export class Pool extends Effect.Service<Pool>()("meltica/Pool", {
  effect: Effect.map(PoolConfig, makePool),
  dependencies: [PoolConfig.Default]
}) {
  /** A pool with the given settings (tests, benchmarks, the application layers). */
  static readonly layer = (settings: Partial<PoolSettings> = {}): Layer.Layer<Pool> =>
    Pool.DefaultWithoutDependencies.pipe(Layer.provide(PoolConfig.layer(settings)))

  /** Debug mode: poisoning views and the leak report's acquire stacks. */
  static readonly layerDebug: Layer.Layer<Pool> = Pool.layer({ debug: true })
}
