import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, FastCheck as fc, Fiber, Layer, Logger, LogLevel, Scope } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { decimal, Ticker } from "../schema/Event.js"
import type { AnyEvent, PoolType } from "../src/Event.js"
import { Event, ExecReport, MergedEvent } from "../src/Event.js"
import { UseAfterRecycle } from "../src/Errors.js"
import { Pool, PoolInternal, type PoolSettings } from "../src/Pool.js"
import { Recycler } from "../src/Recycler.js"

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
          assert.isTrue(recycler.unsafeRecycle(e))
          const again = pool.acquire(type)
          assert.strictEqual(again, e, "the free list hands back the recycled object")
          const reference = fresh[type]()
          reference._owned = true
          assert.deepStrictEqual({ ...again }, { ...reference }, `${type} fully reset`)
          recycler.unsafeRecycle(again)
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
        recycler.unsafeRecycleMany(held)
        const s = pool.stats().Event
        assert.deepStrictEqual([s.free, s.discarded, s.outstanding], [2, 3, 0])
        pool.acquireEvent()
        pool.acquireEvent()
        assert.strictEqual(pool.stats().Event.heapAllocated, 5, "reuse, no new allocation")
        pool.acquireEvent()
        assert.strictEqual(pool.stats().Event.heapAllocated, 6)
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
        recycler.unsafeRecycleMany([original, dup])
        assert.strictEqual(pool.stats().MergedEvent.outstanding, 0)
      })
    ))

  describe("double-put guard", () => {
    type Op = { readonly op: "acquire" } | { readonly op: "recycle"; readonly pick: number }
    const ops = fc.array(
      fc.oneof(
        fc.constant<Op>({ op: "acquire" }),
        fc.nat(1_000).map((pick): Op => ({ op: "recycle", pick }))
      ),
      { minLength: 1, maxLength: 200 }
    )

    /**
     * Random interleavings of acquires and recycles, including recycles of
     * handles already recycled. In production mode a handle is the object
     * itself; in debug mode it is a view, so a stale handle is refused even
     * after its object has been handed to a new owner.
     */
    const run = (debug: boolean, sequence: ReadonlyArray<Op>) =>
      withPool({ debug, prewarm: 0, capacity: { Event: 4, MergedEvent: 4, ExecReport: 4 } }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const handles: Array<AnyEvent> = []
          const live = new Set<AnyEvent>() // handles whose recycle must be accepted
          const ownedTargets = new Set<object>()
          const views = pool[PoolInternal].views
          const targetOf = (h: AnyEvent): object => views?.resolve(h)?.target ?? h
          let expectedRefusals = 0
          for (const step of sequence) {
            if (step.op === "acquire") {
              const h = pool.acquireEvent()
              assert.isFalse(ownedTargets.has(targetOf(h)), "an owned object was handed out again")
              ownedTargets.add(targetOf(h))
              handles.push(h)
              live.add(h)
              continue
            }
            if (handles.length === 0) continue
            const h = handles[step.pick % handles.length]!
            const shouldAccept = live.has(h)
            if (!shouldAccept) expectedRefusals++
            const accepted = recycler.unsafeRecycle(h)
            assert.strictEqual(accepted, shouldAccept)
            if (accepted) {
              live.delete(h)
              ownedTargets.delete(targetOf(h))
            }
          }
          assert.strictEqual(recycler.stats().doublePuts, expectedRefusals, "every double put caught")
          assert.strictEqual(pool.stats().Event.outstanding, live.size, "pool accounting intact")
        })
      )

    const quiet = Logger.minimumLogLevel(LogLevel.None)

    it.prop("production mode: every recycle of a free object is refused", [ops], ([sequence]) =>
      Effect.runSync(run(false, sequence).pipe(Effect.provide(quiet))), { fastCheck: { numRuns: 300 } })

    it.prop("debug mode: every stale handle is refused, even after its object is reused", [ops], ([sequence]) =>
      Effect.runSync(run(true, sequence).pipe(Effect.provide(quiet))), { fastCheck: { numRuns: 300 } })

    it.effect("the pool never hands one object to two owners", () =>
      withPool({ prewarm: 0, capacity: { Event: 8, MergedEvent: 8, ExecReport: 8 } }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const a = pool.acquireEvent()
          recycler.unsafeRecycle(a)
          recycler.unsafeRecycle(a)
          recycler.unsafeRecycle(a)
          const x = pool.acquireEvent()
          const y = pool.acquireEvent()
          assert.notStrictEqual(x, y)
          assert.strictEqual(recycler.stats().doublePuts, 2)
        })
      ))

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
            recycler.unsafeRecycle(e)
            recycler.unsafeRecycle(e)
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
          recycler.unsafeRecycle(e)
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
          recycler.unsafeRecycle(pool.acquireEvent())
          const report = recycler.leakReport()
          assert.strictEqual(report.total, 1)
          assert.strictEqual(report.outstanding.ExecReport, 1)
          assert.strictEqual(report.objects.length, 1)
          assert.strictEqual(report.objects[0]!.pool, "ExecReport")
          assert.include(report.objects[0]!.acquireStack, "Recycler.test")
          recycler.unsafeRecycle(kept)
          assert.strictEqual(recycler.leakReport().total, 0)
        })
      ))

    it.effect("a raw object that is not a pool view is refused", () =>
      withPool({ debug: true }, ({ recycler }) =>
        Effect.sync(() => {
          assert.isFalse(recycler.unsafeRecycle(new Event()))
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
      .filter((f) => /PoolInternal|\.release\(/.test(readFileSync(f, "utf8")))
      .map((f) => f.slice(root.length + 1))
      .sort()
    assert.deepStrictEqual(users, ["Pool.ts", "Recycler.ts"])
  })
})
