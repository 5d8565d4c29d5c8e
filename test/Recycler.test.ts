import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, FastCheck as fc, Fiber, Layer, Logger, LogLevel, Scope } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { decimal, Ticker } from "../schema/Event.js"
import { defaultMailboxOptions, Mailbox } from "../src/DataBus.js"
import type { AnyEvent, PoolType } from "../src/Event.js"
import { Event, ExecReport, MergedEvent } from "../src/Event.js"
import { UseAfterRecycle } from "../src/Errors.js"
import { Pool, PoolInternal, type PoolSettings } from "../src/Pool.js"
import { type Generation, generationOf, Recycler } from "../src/Recycler.js"

const layer = (settings: Partial<PoolSettings> = {}) =>
  Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer(settings)))

const services = Effect.all({ pool: Pool, recycler: Recycler })

/** Runs `f` against a fresh pool and recycler, closing their scope afterwards. */
const withPool = <A, E>(
  settings: Partial<PoolSettings>,
  f: (s: { pool: Pool; recycler: Recycler }) => Effect.Effect<A, E, Scope.Scope>
) => Effect.scoped(services.pipe(Effect.flatMap(f), Effect.provide(layer(settings))))

const fillAll = (e: AnyEvent) => {
  e.traceId = "t-1"
  e.provider = "binance"
  e.symbol = "BTC-USDT"
  e.seqProvider = 42
  e.ingestTs = 123
  e.routingVersion = 7
  const ticker = Ticker.make({
    bidPrice: decimal("1.10"),
    bidQty: decimal("2"),
    askPrice: decimal("1.20"),
    askQty: decimal("3"),
    exchangeTs: 1
  })
  if (e._pool === "Event") {
    e.kind = "ticker"
    e.payload = ticker
  } else if (e._pool === "MergedEvent") {
    e.kind = "book_snapshot"
    e.mergeId = "m-1"
    e.sourceProviders = ["a", "b"]
    e.payload = { _tag: "merged_trades", trades: [] } as never
  } else {
    e.payload = { _tag: "exec_report" } as never
  }
}

const fresh: Record<PoolType, () => AnyEvent> = {
  Event: () => new Event(),
  MergedEvent: () => new MergedEvent(),
  ExecReport: () => new ExecReport()
}

describe("Recycler", () => {
  it.effect("resets every field of every pooled type", () =>
    withPool({ prewarm: 0 }, ({ pool, recycler }) =>
      Effect.sync(() => {
        for (const type of ["Event", "MergedEvent", "ExecReport"] as const) {
          const e = pool.acquire(type)
          fillAll(e)
          assert.isTrue(recycler.unsafeRecycle(e, generationOf(e)))
          const again = pool.acquire(type)
          assert.strictEqual(again, e, "the free list hands back the recycled object")
          const reference = fresh[type]()
          reference._owned = true
          reference._gen = 2 // the second ownership period of this object
          assert.deepStrictEqual({ ...again }, { ...reference }, `${type} fully reset`)
          recycler.unsafeRecycle(again, generationOf(again))
        }
      })
    ))

  it.effect("counts heap fallback when a free list is empty and bounds the free list", () =>
    withPool({ prewarm: 0, capacity: { Event: 2, MergedEvent: 2, ExecReport: 2 } }, ({ pool, recycler }) =>
      Effect.sync(() => {
        const held = Array.from({ length: 5 }, () => pool.acquireEvent())
        assert.strictEqual(pool.stats().Event.heapAllocated, 5)
        assert.strictEqual(pool.stats().Event.outstanding, 5)
        assert.strictEqual(pool.stats().Event.utilization, 2.5)
        recycler.unsafeRecycleMany(held, held.map(generationOf))
        const s = pool.stats().Event
        assert.deepStrictEqual([s.free, s.discarded, s.outstanding], [2, 3, 0])
        pool.acquireEvent()
        pool.acquireEvent()
        assert.strictEqual(pool.stats().Event.heapAllocated, 5, "reuse, no new allocation")
        pool.acquireEvent()
        assert.strictEqual(pool.stats().Event.heapAllocated, 6)
      })
    ))

  it.effect("keeps the most objects outstanding at once, however briefly", () =>
    withPool({ prewarm: 0, capacity: { Event: 4, MergedEvent: 2, ExecReport: 2 } }, ({ pool, recycler }) =>
      Effect.sync(() => {
        const held = Array.from({ length: 3 }, () => pool.acquireEvent())
        recycler.unsafeRecycleMany(held, held.map(generationOf))
        const again = pool.acquireEvent()
        const s = pool.stats().Event
        assert.deepStrictEqual([s.outstanding, s.peakOutstanding, s.peakUtilization], [1, 3, 0.75])
        recycler.unsafeRecycle(again, generationOf(again))
        assert.strictEqual(pool.stats().Event.peakOutstanding, 3)
      })
    ))

  it.effect("clones into a pooled object of the same type", () =>
    withPool({}, ({ pool, recycler }) =>
      Effect.sync(() => {
        const original = pool.acquireMerged()
        fillAll(original)
        const dup = pool.clone(original)
        assert.notStrictEqual(dup, original)
        assert.strictEqual(dup._pool, "MergedEvent")
        assert.deepStrictEqual({ ...dup }, { ...original })
        recycler.unsafeRecycleMany([original, dup], [generationOf(original), generationOf(dup)])
        assert.strictEqual(pool.stats().MergedEvent.outstanding, 0)
      })
    ))

  describe("double-put guard", () => {
    type Op =
      | { readonly op: "acquire"; readonly fiber: number }
      | { readonly op: "recycle"; readonly fiber: number; readonly pick: number }
    const op = (fibers: number) =>
      fc.oneof(
        fc.nat(fibers - 1).map((fiber): Op => ({ op: "acquire", fiber })),
        fc.tuple(fc.nat(fibers - 1), fc.nat(1_000)).map(([fiber, pick]): Op => ({ op: "recycle", fiber, pick }))
      )
    const ops = fc.array(op(1), { minLength: 1, maxLength: 200 })

    /** A holder: the reference it was given and the ownership period it was given it in. */
    interface Holder {
      readonly h: AnyEvent
      readonly gen: Generation
    }

    /**
     * The model both modes must match: a holder's recycle is accepted exactly
     * when it still owns its object; every other recycle (of a free object, or
     * by a stale holder whose object was since acquired again by someone
     * else) is refused and counted; the pool never hands an owned object out.
     */
    const model = (pool: Pool, recycler: Recycler) => {
      const holders: Array<Holder> = []
      const live = new Set<Holder>() // holders whose recycle must be accepted
      const ownerOf = new Map<object, Holder>() // object -> its live holder
      const views = pool[PoolInternal].views
      const targetOf = (h: AnyEvent): object => views?.resolve(h)?.target ?? h
      let refusals = 0
      let staleRefusals = 0
      let reuses = 0
      const step = (s: Op): void => {
        if (s.op === "acquire") {
          const h = pool.acquireEvent()
          const target = targetOf(h)
          assert.isFalse(ownerOf.has(target), "an owned object was handed out again")
          if (holders.some((o) => targetOf(o.h) === target)) reuses++
          const holder = { h, gen: generationOf(h) }
          holders.push(holder)
          live.add(holder)
          ownerOf.set(target, holder)
          return
        }
        if (holders.length === 0) return
        const holder = holders[s.pick % holders.length]!
        const shouldAccept = live.has(holder)
        if (!shouldAccept) {
          refusals++
          if (ownerOf.has(targetOf(holder.h))) staleRefusals++
        }
        const accepted = recycler.unsafeRecycle(holder.h, holder.gen)
        assert.strictEqual(accepted, shouldAccept, shouldAccept ? "a live holder's recycle" : "a stale recycle")
        if (accepted) {
          live.delete(holder)
          ownerOf.delete(targetOf(holder.h))
        }
      }
      const check = (): void => {
        const s = recycler.stats()
        assert.strictEqual(s.doublePuts, refusals, "every double put caught")
        assert.strictEqual(s.staleHolderPuts, staleRefusals, "every stale holder's put caught")
        assert.strictEqual(pool.stats().Event.outstanding, live.size, "pool accounting intact")
        assert.strictEqual(s.recycled, pool.stats().Event.recycled)
        // every live holder still owns its object: its recycle is accepted
        for (const holder of live) assert.isTrue(recycler.unsafeRecycle(holder.h, holder.gen))
        assert.strictEqual(pool.stats().Event.outstanding, 0)
      }
      return { step, check, reuses: () => reuses }
    }

    const settings = (debug: boolean): Partial<PoolSettings> => ({
      debug,
      prewarm: 0,
      capacity: { Event: 4, MergedEvent: 4, ExecReport: 4 }
    })

    /** One sequence of acquires and recycles on one fiber. */
    const run = (debug: boolean, sequence: ReadonlyArray<Op>) =>
      withPool(settings(debug), ({ pool, recycler }) =>
        Effect.sync(() => {
          const m = model(pool, recycler)
          for (const s of sequence) m.step(s)
          m.check()
        })
      )

    /**
     * The same operations spread over three fibers that yield between steps,
     * so one fiber's stale recycle lands after another fiber re-acquired the
     * object.
     */
    const runConcurrently = (debug: boolean, sequence: ReadonlyArray<Op>) =>
      withPool(settings(debug), ({ pool, recycler }) =>
        Effect.gen(function*() {
          const m = model(pool, recycler)
          const byFiber = [0, 1, 2].map((f) => sequence.filter((s) => s.fiber === f))
          yield* Effect.forEach(
            byFiber,
            (mine) => Effect.forEach(mine, (s) => Effect.zipRight(Effect.yieldNow(), Effect.sync(() => m.step(s)))),
            { concurrency: "unbounded", discard: true }
          )
          m.check()
        })
      )

    /** The stale holder's interleaving, always: acquire a, recycle a, b acquires the same object, a recycles again. */
    const staleInterleaving: ReadonlyArray<Op> = [
      { op: "acquire", fiber: 0 },
      { op: "recycle", fiber: 0, pick: 0 },
      { op: "acquire", fiber: 1 },
      { op: "recycle", fiber: 0, pick: 0 },
      { op: "acquire", fiber: 2 }
    ]
    const withStale = (sequence: ReadonlyArray<Op>) => [...staleInterleaving, ...sequence]
    const concurrentOps = fc.array(op(3), { minLength: 1, maxLength: 80 })

    const quiet = Logger.minimumLogLevel(LogLevel.None)

    for (const debug of [false, true]) {
      const mode = debug ? "debug mode" : "production mode"
      it.prop(
        `${mode}: a recycle is accepted only from the object's current holder (free objects and stale holders refused)`,
        [ops],
        ([sequence]) => Effect.runSync(run(debug, withStale(sequence)).pipe(Effect.provide(quiet))),
        { fastCheck: { numRuns: 150 } }
      )

      it.effect.prop(
        `${mode}: across fibers, a stale holder's recycle never takes the object from its new holder`,
        [concurrentOps],
        ([sequence]) => runConcurrently(debug, withStale(sequence)).pipe(Effect.provide(quiet)),
        { fastCheck: { numRuns: 40 } }
      )

      it.effect(`${mode}: acquire a, recycle a, b gets the object, a's second recycle is refused and b keeps it`, () =>
        withPool(settings(debug), ({ pool, recycler }) =>
          Effect.sync(() => {
            const views = pool[PoolInternal].views
            const targetOf = (h: AnyEvent): object => views?.resolve(h)?.target ?? h
            const a = pool.acquireEvent()
            const genA = generationOf(a)
            assert.isTrue(recycler.unsafeRecycle(a, genA))
            const b = pool.acquireEvent()
            const genB = generationOf(b)
            assert.strictEqual(targetOf(b), targetOf(a), "the pool hands the same object to b")
            assert.isFalse(recycler.unsafeRecycle(a, genA), "a's ownership has ended")
            assert.deepStrictEqual(
              [recycler.stats().doublePuts, recycler.stats().staleHolderPuts, pool.stats().Event.outstanding],
              [1, 1, 1]
            )
            const c = pool.acquireEvent()
            assert.notStrictEqual(targetOf(c), targetOf(b), "the next acquire does not get b's object")
            b.symbol = "still b's"
            assert.strictEqual(b.symbol, "still b's", "b's object was not reset by the refused recycle")
            assert.isTrue(recycler.unsafeRecycle(b, genB), "b, the holder, recycles it")
            assert.isTrue(recycler.unsafeRecycle(c, generationOf(c)))
            assert.isFalse(recycler.unsafeRecycle(b, genB), "a second recycle by b: the object is free")
            assert.deepStrictEqual(
              [recycler.stats().doublePuts, recycler.stats().staleHolderPuts, pool.stats().Event.outstanding],
              [2, 1, 0]
            )
          })
        ))
    }

    it.effect("production mode: a holder on another fiber that recycles after the object moved on is refused", () =>
      withPool(settings(false), ({ pool, recycler }) =>
        Effect.gen(function*() {
          const recycledOnce = yield* Deferred.make<Holder>()
          const reacquired = yield* Deferred.make<void>()
          const stale = yield* Effect.fork(Effect.gen(function*() {
            const a = pool.acquireEvent()
            const holder = { h: a, gen: generationOf(a) }
            recycler.unsafeRecycle(holder.h, holder.gen)
            yield* Deferred.succeed(recycledOnce, holder)
            yield* Deferred.await(reacquired)
            return recycler.unsafeRecycle(holder.h, holder.gen)
          }))
          const first = yield* Deferred.await(recycledOnce)
          const b = pool.acquireEvent()
          assert.strictEqual(b, first.h, "same object, new holder")
          yield* Deferred.succeed(reacquired, undefined)
          assert.isFalse(yield* Fiber.join(stale))
          assert.notStrictEqual(pool.acquireEvent(), b, "b's object is not handed out again")
          assert.strictEqual(recycler.stats().staleHolderPuts, 1)
          assert.isTrue(recycler.unsafeRecycle(b, generationOf(b)))
        })
      ))

    for (const debug of [false, true]) {
      it.effect(
        `${debug ? "debug" : "production"} mode: a mailbox recycles with the generation it received, so an event ` +
          "recycled behind its back and handed to a new holder stays with that holder",
        () =>
          withPool(settings(debug), ({ pool, recycler }) =>
            Effect.sync(() => {
              const views = pool[PoolInternal].views
              const targetOf = (h: AnyEvent): object => views?.resolve(h)?.target ?? h
              const box = new Mailbox("c1", defaultMailboxOptions, recycler.unsafeRecycle, () => {})
              const queued = pool.acquireEvent()
              queued.kind = "ticker"
              const stale = pool.acquireEvent()
              stale.kind = "ticker"
              stale.symbol = "ETH-USDT"
              box.offer(queued)
              box.offer(stale)
              // the producer wrongly recycles what it handed over; the pool hands the object to someone else
              assert.isTrue(recycler.unsafeRecycle(stale, generationOf(stale)))
              const next = pool.acquireEvent()
              assert.strictEqual(targetOf(next), targetOf(stale))
              // the mailbox's taker gets each event with the generation the mailbox received it in
              assert.strictEqual(box.poll(), queued)
              assert.isTrue(recycler.unsafeRecycle(queued, box.polledGeneration))
              box.close() // recycles what is still queued: the stale event, refused
              assert.deepStrictEqual(
                [recycler.stats().staleHolderPuts, pool.stats().Event.outstanding],
                [1, 1],
                "the new holder still owns the object"
              )
              assert.notStrictEqual(targetOf(pool.acquireEvent()), targetOf(next), "not handed out twice")
            })
          )
      )
    }

    it.effect("an event a holder never received is refused: the generation must come from its own hand-over", () =>
      withPool(settings(false), ({ pool, recycler }) =>
        Effect.sync(() => {
          const a = pool.acquireEvent()
          const genA = generationOf(a)
          assert.isFalse(recycler.unsafeRecycle(a, (genA + 1) as Generation))
          assert.isFalse(recycler.unsafeRecycle(a, (genA - 1) as Generation))
          assert.strictEqual(recycler.stats().staleHolderPuts, 2)
          assert.isTrue(recycler.unsafeRecycle(a, genA))
        })
      ))

    it.effect("a stale holder's refused recycle is logged as a warning with its stack, in production mode", () =>
      Effect.gen(function*() {
        const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
        const capture = Logger.make(({ annotations, message }) => {
          const a: Record<string, unknown> = {}
          for (const [k, v] of annotations) a[k] = v
          lines.push({ message, annotations: a })
        })
        yield* withPool({ debug: false }, ({ pool, recycler }) =>
          Effect.sync(() => {
            const a = pool.acquireEvent()
            const genA = generationOf(a)
            recycler.unsafeRecycle(a, genA)
            const b = pool.acquireEvent()
            recycler.unsafeRecycle(a, genA)
            recycler.unsafeRecycle(b, generationOf(b))
          })
        ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
        const warning = lines.find((l) => String(l.message).includes("double put"))
        assert.isDefined(warning)
        assert.include(String(warning!.message), "held by another")
        assert.strictEqual(warning!.annotations["reason"], "StaleHolder")
        assert.include(String(warning!.annotations["stack"]), "Recycler.test")
        assert.notStrictEqual(warning!.annotations["generation"], warning!.annotations["current_generation"])
      }))

    it.effect("a double put is logged as a warning with its stack, and both stacks in debug mode", () =>
      Effect.gen(function*() {
        const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
        const capture = Logger.make(({ annotations, message }) => {
          const a: Record<string, unknown> = {}
          for (const [k, v] of annotations) a[k] = v
          lines.push({ message, annotations: a })
        })
        yield* withPool({ debug: true }, ({ pool, recycler }) =>
          Effect.sync(() => {
            const e = pool.acquireEvent()
            const gen = generationOf(e)
            recycler.unsafeRecycle(e, gen)
            recycler.unsafeRecycle(e, gen)
          })
        ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
        const warning = lines.find((l) => String(l.message).includes("double put"))
        assert.isDefined(warning)
        assert.include(String(warning!.annotations["stack"]), "Recycler.test")
        assert.include(String(warning!.annotations["first_recycle_stack"]), "Recycler.test")
      }))
  })

  describe("debug mode", () => {
    it.effect("use after recycle fails on the first access, naming the field and the recycle stack", () =>
      withPool({ debug: true }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const e = pool.acquireEvent()
          e.symbol = "BTC-USDT"
          recycler.unsafeRecycle(e, generationOf(e))
          const read = (() => {
            try {
              return e.symbol
            } catch (err) {
              return err
            }
          })()
          assert.instanceOf(read, UseAfterRecycle)
          assert.strictEqual((read as UseAfterRecycle).field, "symbol")
          assert.strictEqual((read as UseAfterRecycle).operation, "get")
          assert.include((read as UseAfterRecycle).recycleStack, "Recycler.test")
          assert.throws(() => {
            e.traceId = "x"
          }, /use after recycle: set 'traceId'/)
          assert.throws(() => ({ ...e }), UseAfterRecycle)
        })
      ))

    it.effect("the leak report lists an unreleased object with the stack that acquired it", () =>
      withPool({ debug: true }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const kept = pool.acquireExecReport()
          const once = pool.acquireEvent()
          recycler.unsafeRecycle(once, generationOf(once))
          const report = recycler.leakReport()
          assert.strictEqual(report.total, 1)
          assert.strictEqual(report.outstanding.ExecReport, 1)
          assert.strictEqual(report.objects.length, 1)
          assert.strictEqual(report.objects[0]!.pool, "ExecReport")
          assert.include(report.objects[0]!.acquireStack, "Recycler.test")
          recycler.unsafeRecycle(kept, generationOf(kept))
          assert.strictEqual(recycler.leakReport().total, 0)
        })
      ))

    it.effect("a raw object that is not a pool view is refused", () =>
      withPool({ debug: true }, ({ recycler }) =>
        Effect.sync(() => {
          assert.isFalse(recycler.unsafeRecycle(new Event(), 0 as Generation))
          assert.strictEqual(recycler.stats().notPooled, 1)
        })
      ))
  })

  describe("scoped acquisition recycles however the scope closes", () => {
    const outcomes = {
      success: Effect.void,
      failure: Effect.fail("boom"),
      defect: Effect.die(new Error("panic"))
    } as const
    for (const [name, body] of Object.entries(outcomes)) {
      it.effect(name, () =>
        withPool({ debug: true }, ({ pool, recycler }) =>
          Effect.gen(function*() {
            const exit = yield* Effect.scoped(
              recycler.scoped(pool.acquireEvent).pipe(Effect.zipRight(body as Effect.Effect<void, string>))
            ).pipe(Effect.exit)
            assert.strictEqual(Exit.isSuccess(exit), name === "success")
            assert.strictEqual(recycler.leakReport().total, 0)
          })
        ))
    }

    it.effect("interruption", () =>
      withPool({ debug: true }, ({ pool, recycler }) =>
        Effect.gen(function*() {
          const acquired = yield* Deferred.make<void>()
          const fiber = yield* Effect.scoped(
            recycler.scoped(pool.acquireEvent).pipe(Effect.zipRight(Deferred.succeed(acquired, undefined)), Effect.zipRight(Effect.never))
          ).pipe(Effect.fork)
          yield* Deferred.await(acquired)
          assert.strictEqual(recycler.leakReport().total, 1)
          const exit = yield* Fiber.interrupt(fiber)
          assert.isTrue(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause))
          assert.strictEqual(recycler.leakReport().total, 0)
        })
      ))
  })

  it("only the Recycler returns objects to a pool", () => {
    const root = join(__dirname, "..", "src")
    const files = (dir: string): Array<string> =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : []
      )
    const users = files(root)
      // the pool's release is reachable only through `PoolInternal` (an account's `release` of funds is not it)
      .filter((f) => /PoolInternal/.test(readFileSync(f, "utf8")))
      .map((f) => f.slice(root.length + 1))
      .sort()
    assert.deepStrictEqual(users, ["Pool.ts", "Recycler.ts"])
  })
})
