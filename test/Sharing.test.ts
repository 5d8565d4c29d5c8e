import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Logger, LogLevel, Scope } from "effect"
import { decimal, Ticker } from "../schema/Event.js"
import { layerCore } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import type { AnyEvent } from "../src/Event.js"
import { UseAfterRecycle } from "../src/Errors.js"
import { SharedEventWrite } from "../src/internal/debugViews.js"
import { Pool, PoolInternal, type PoolSettings } from "../src/Pool.js"
import { type Generation, generationOf, Recycler } from "../src/Recycler.js"

const layer = (settings: Partial<PoolSettings> = {}) =>
  Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer(settings)))

const withPool = <A, E>(
  settings: Partial<PoolSettings>,
  f: (s: { pool: Pool; recycler: Recycler }) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.scoped(
    Effect.all({ pool: Pool, recycler: Recycler }).pipe(
      Effect.flatMap(f),
      Effect.provide(layer(settings)),
      Effect.provide(Logger.minimumLogLevel(LogLevel.None))
    )
  )

const ticker = Ticker.make({
  bidPrice: decimal("1.10"),
  bidQty: decimal("2"),
  askPrice: decimal("1.20"),
  askQty: decimal("3"),
  exchangeTs: 1
})

/** Shares a fresh event among `n` holders; each holder's object and the generation its hand-over read. */
const shareAmong = (pool: Pool, recycler: Recycler, n: number) => {
  const e = pool.acquireEvent()
  e.symbol = "BTC-USDT"
  e.kind = "ticker"
  e.payload = ticker
  const shared = recycler.unsafeShare(e, generationOf(e), n)
  assert.isDefined(shared)
  return Array.from({ length: n }, () => {
    const held = recycler.holderOf(shared!)
    return { held, gen: generationOf(held) }
  })
}

for (const debug of [false, true]) {
  const mode = debug ? "debug mode" : "production mode"
  describe(`shared events (${mode})`, () => {
    it.effect("the last holder's release recycles the event, exactly once; earlier releases keep it", () =>
      withPool({ debug, prewarm: 0 }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const holders = shareAmong(pool, recycler, 3)
          assert.strictEqual(new Set(holders.map((h) => h.gen)).size, 3, "each holder has its own generation")
          assert.isTrue(recycler.unsafeRecycle(holders[1]!.held, holders[1]!.gen))
          assert.isTrue(recycler.unsafeRecycle(holders[0]!.held, holders[0]!.gen))
          assert.strictEqual(pool.stats().Event.outstanding, 1)
          assert.strictEqual(recycler.stats().recycled, 0)
          assert.strictEqual(holders[2]!.held.symbol, "BTC-USDT", "the last holder still reads it")
          assert.isTrue(recycler.unsafeRecycle(holders[2]!.held, holders[2]!.gen))
          assert.strictEqual(pool.stats().Event.outstanding, 0)
          assert.strictEqual(pool.stats().Event.free, 1)
          assert.strictEqual(recycler.stats().recycled, 1)
          assert.strictEqual(recycler.stats().shares, 1)
          assert.strictEqual(recycler.stats().doublePuts, 0)
        })))

    it.effect("a holder releasing twice is refused and counted, and the others keep the event", () =>
      withPool({ debug, prewarm: 0 }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const [a, b] = shareAmong(pool, recycler, 2)
          assert.isTrue(recycler.unsafeRecycle(a!.held, a!.gen))
          assert.isFalse(recycler.unsafeRecycle(a!.held, a!.gen))
          assert.strictEqual(recycler.stats().doublePuts, 1)
          assert.strictEqual(recycler.stats().staleHolderPuts, 1)
          assert.strictEqual(pool.stats().Event.outstanding, 1, "not recycled under the other holder")
          assert.strictEqual(b!.held.symbol, "BTC-USDT")
          assert.isTrue(recycler.unsafeRecycle(b!.held, b!.gen))
          assert.strictEqual(pool.stats().Event.outstanding, 0)
          // after the event went back and was taken again, every old generation is stale
          const next = pool.acquireEvent()
          const nextGen = generationOf(next)
          assert.isFalse(recycler.unsafeRecycle(debug ? b!.held : next, b!.gen))
          assert.isFalse(recycler.unsafeRecycle(next, a!.gen))
          assert.isTrue(recycler.unsafeRecycle(next, nextGen))
        })))

    it.effect("the sharing owner's own generation is no holder's, and a stray read hands out none", () =>
      withPool({ debug, prewarm: 0 }, ({ pool, recycler }) =>
        Effect.sync(() => {
          const e = pool.acquireEvent()
          const ownerGen = generationOf(e)
          const shared = recycler.unsafeShare(e, ownerGen, 2)!
          const holders = [recycler.holderOf(shared), recycler.holderOf(shared)].map((h) => ({ h, gen: generationOf(h) }))
          const stray = generationOf(recycler.holderOf(shared))
          assert.isFalse(recycler.unsafeRecycle(holders[0]!.h, ownerGen))
          assert.isFalse(recycler.unsafeRecycle(holders[0]!.h, stray))
          assert.isUndefined(recycler.unsafeShare(holders[0]!.h, holders[0]!.gen, 2), "a holder cannot share again")
          for (const { h, gen } of holders) assert.isTrue(recycler.unsafeRecycle(h, gen))
          assert.strictEqual(pool.stats().Event.outstanding, 0)
          assert.strictEqual(recycler.stats().recycled, 1)
        })))

    // Any order of the holders' releases, with any repeated releases interleaved:
    // the event is recycled exactly once, when the last distinct holder releases,
    // and every repeat is refused and counted.
    it.prop(
      "any interleaving of releases and repeats recycles exactly once, at the last holder",
      [fc.integer({ min: 2, max: 70 }).chain((n) =>
        fc.tuple(
          fc.constant(n),
          fc.array(fc.integer({ min: 0, max: n - 1 }), { minLength: 0, maxLength: 3 * n }),
          fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n })
        )
      )],
      ([[n, extra, order]]) =>
        Effect.runSync(withPool({ debug, prewarm: 0 }, ({ pool, recycler }) =>
          Effect.sync(() => {
            const holders = shareAmong(pool, recycler, n)
            // the releases in order, with `extra` holders releasing again at random points
            const released = new Set<number>()
            const sequence: Array<number> = []
            order.forEach((i, k) => {
              sequence.push(i)
              if (extra[k] !== undefined) sequence.push(extra[k]!)
            })
            let refused = 0
            for (const i of sequence) {
              const first = !released.has(i)
              released.add(i)
              const accepted = recycler.unsafeRecycle(holders[i]!.held, holders[i]!.gen as Generation)
              assert.strictEqual(accepted, first)
              if (!first) refused++
              const recycled = recycler.stats().recycled
              assert.strictEqual(recycled, released.size === n ? 1 : 0)
            }
            assert.strictEqual(recycler.stats().doublePuts, refused)
            assert.strictEqual(pool.stats().Event.outstanding, 0)
            assert.strictEqual(pool.stats().Event.recycled, 1)
          }))),
      { fastCheck: { numRuns: 120 } }
    )
  })
}

describe("shared events in debug mode", () => {
  it.effect("a holder's view refuses writes; its own release revokes only its view", () =>
    withPool({ debug: true, prewarm: 0 }, ({ pool, recycler }) =>
      Effect.sync(() => {
        const [a, b] = shareAmong(pool, recycler, 2)
        assert.notStrictEqual(a!.held, b!.held, "each holder has its own view")
        const write = (() => {
          try {
            a!.held.symbol = "ETH-USDT"
            return undefined
          } catch (err) {
            return err
          }
        })()
        assert.instanceOf(write, SharedEventWrite)
        assert.strictEqual((write as SharedEventWrite).field, "symbol")
        assert.throws(() => {
          delete (b!.held as { traceId?: string }).traceId
        }, SharedEventWrite)
        assert.strictEqual(b!.held.symbol, "BTC-USDT", "nothing was written")
        recycler.unsafeRecycle(a!.held, a!.gen)
        assert.throws(() => a!.held.symbol, UseAfterRecycle)
        assert.strictEqual(b!.held.symbol, "BTC-USDT")
        assert.strictEqual(recycler.leakReport().objects.length, 1, "b's view is still outstanding")
        recycler.unsafeRecycle(b!.held, b!.gen)
        assert.strictEqual(recycler.leakReport().total, 0)
        assert.strictEqual(pool[PoolInternal].views!.outstanding.size, 0)
      })))

  it.effect("the sharing owner's view is revoked at the share", () =>
    withPool({ debug: true, prewarm: 0 }, ({ pool, recycler }) =>
      Effect.sync(() => {
        const e = pool.acquireEvent()
        const shared = recycler.unsafeShare(e, generationOf(e), 2)!
        assert.throws(() => e.symbol, UseAfterRecycle)
        const holders = [recycler.holderOf(shared), recycler.holderOf(shared)]
        for (const h of holders) recycler.unsafeRecycle(h, generationOf(h))
        assert.strictEqual(recycler.leakReport().total, 0)
      })))
})

describe("Dispatcher fan-out", () => {
  const run = (shareFanout: boolean, debug: boolean) =>
    Effect.gen(function*() {
      const pool = yield* Pool
      const dispatcher = yield* Dispatcher
      const consumers = yield* Consumers
      const recycler = yield* Recycler
      const seen: Array<Array<string>> = [[], [], []]
      const objects = new Set<AnyEvent>()
      for (let s = 0; s < 3; s++) {
        yield* consumers.start({
          id: `c${s}`,
          handle: (e) =>
            Effect.sync(() => {
              seen[s]!.push(e.traceId)
              objects.add(pool[PoolInternal].views?.resolve(e)?.target ?? e)
            }),
          subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }]
        })
      }
      const acquiredBefore = pool.stats().Event.acquired
      for (let i = 1; i <= 20; i++) {
        const e = pool.acquireEvent()
        e.provider = "p"
        e.symbol = "BTC-USDT"
        e.kind = "ticker"
        e.payload = ticker
        e.seqProvider = i
        e.traceId = `t${i}`
        yield* dispatcher.dispatch(e)
      }
      while (seen.some((s) => s.length < 20)) yield* Effect.yieldNow()
      const want = Array.from({ length: 20 }, (_, i) => `t${i + 1}`)
      for (const s of seen) assert.deepStrictEqual(s, want)
      return {
        takes: pool.stats().Event.acquired - acquiredBefore,
        outstanding: pool.stats().Event.outstanding,
        distinctObjects: objects.size,
        shares: recycler.stats().shares,
        doublePuts: recycler.stats().doublePuts
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(layerCore({ pool: { debug, prewarm: 0 }, dispatcher: { shareFanout } })),
      Effect.provide(Logger.minimumLogLevel(LogLevel.None))
    )

  for (const debug of [false, true]) {
    it.effect(`${debug ? "debug" : "production"} mode: three subscribers share one event; all recycled, none refused`, () =>
      Effect.gen(function*() {
        const shared = yield* run(true, debug)
        assert.strictEqual(shared.takes, 20, "one pooled take per event: no clones")
        assert.strictEqual(shared.shares, 20)
        assert.strictEqual(shared.outstanding, 0)
        assert.strictEqual(shared.doublePuts, 0)
        const cloned = yield* run(false, debug)
        assert.strictEqual(cloned.takes, 20 * 4, "with shareFanout off: the original and three clones")
        assert.strictEqual(cloned.shares, 0)
        assert.strictEqual(cloned.outstanding, 0)
        assert.isAtLeast(cloned.distinctObjects, 3)
      }))
  }
})
