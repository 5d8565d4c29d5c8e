/**
 * Ordering integrity in the in-memory Dispatcher: a forged or corrupt sequence
 * jump never silences a stream, a feed that really renumbers is followed, and
 * a restarted feed (a new epoch) is delivered from its first event.
 * Time is the TestClock's: the lateness tolerance is passed explicitly.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { layerCore } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { Pool } from "../src/Pool.js"
import { eventually, market } from "./support/events.js"

const btc = { symbol: "BTC-USDT", kind: "ticker", merged: false } as const
const LATENESS_MS = 100
const layer = layerCore({
  dispatcher: { latenessMs: LATENESS_MS, reorderBuffer: 4, jumpWindow: 1_000, resyncAfter: 3 }
})

/** One consumer on BTC-USDT tickers; what it receives as `epoch:seq`. */
const setup = Effect.gen(function*() {
  const pool = yield* Pool
  const dispatcher = yield* Dispatcher
  const consumers = yield* Consumers
  const seen: Array<string> = []
  yield* consumers.start({
    id: "recorder",
    handle: (e) => Effect.sync(() => seen.push(`${e.epoch ?? "-"}:${e.seqProvider}`)),
    subscriptions: [btc]
  })
  const send = (seq: number, epoch?: string) =>
    Effect.suspend(() => {
      const e = market(pool, { seq })
      e.epoch = epoch
      return dispatcher.dispatch(e)
    })
  const sendAll = (seqs: ReadonlyArray<number>, epoch?: string) =>
    Effect.forEach(seqs, (seq) => send(seq, epoch), { discard: true })
  /** Every event, delivered or dropped, is back in the pool. */
  const allRecycled = eventually(() => pool.stats().Event.outstanding === 0, "every event recycled")
  return { dispatcher, seen, send, sendAll, allRecycled }
})

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const tagged = (epoch: string, seqs: ReadonlyArray<number>) => seqs.map((s) => `${epoch}:${s}`)

describe("Stream ordering integrity", () => {
  it.scoped("a single frame with seqProvider 999,999,999 is dropped as suspect; the stream goes on past the lateness tolerance", () =>
    Effect.gen(function*() {
      const { allRecycled, dispatcher, seen, send, sendAll } = yield* setup
      yield* sendAll(range(1, 5))
      yield* send(999_999_999)
      yield* TestClock.adjust(LATENESS_MS * 3)
      yield* sendAll(range(6, 10))
      yield* eventually(() => seen.length === 10, "the real stream")
      assert.deepStrictEqual(seen, tagged("-", range(1, 10)))
      const s = dispatcher.stats()
      assert.strictEqual(s.suspectJumps, 1)
      assert.strictEqual(s.gapsSkipped, 0, "the forged jump never became a gap to skip")
      assert.strictEqual(s.duplicates, 0, "no real event was taken for a duplicate")
      assert.strictEqual(s.resyncs, 0)
      yield* allRecycled
    }).pipe(Effect.provide(layer)))

  it.scoped("a forger interleaving with the real feed never takes the stream over: an in-window event breaks its run", () =>
    Effect.gen(function*() {
      const { allRecycled, dispatcher, seen, send } = yield* setup
      let forged = 999_000_000
      for (const seq of range(1, 20)) {
        yield* send(seq)
        // two forged frames between real ones: one short of `resyncAfter`
        yield* send(forged++)
        yield* send(forged++)
        yield* TestClock.adjust(LATENESS_MS)
      }
      yield* eventually(() => seen.length === 20, "the real stream")
      assert.deepStrictEqual(seen, tagged("-", range(1, 20)))
      assert.strictEqual(dispatcher.stats().suspectJumps, 40)
      assert.strictEqual(dispatcher.stats().resyncs, 0)
      yield* allRecycled
    }).pipe(Effect.provide(layer)))

  it.scoped("a feed that really renumbers is followed once `resyncAfter` consistent sequences arrive in a row", () =>
    Effect.gen(function*() {
      const { dispatcher, seen, sendAll } = yield* setup
      yield* sendAll(range(1, 5))
      yield* sendAll(range(500_000, 500_005))
      yield* eventually(() => seen.length === 9, "the renumbered stream")
      assert.deepStrictEqual(seen, tagged("-", [...range(1, 5), ...range(500_002, 500_005)]))
      assert.strictEqual(dispatcher.stats().suspectJumps, 2, "the two before the confirmation are dropped, counted")
      assert.strictEqual(dispatcher.stats().resyncs, 1)
    }).pipe(Effect.provide(layer)))

  it.scoped("a feed restarted without an epoch (numbering from 1 again) is followed after the resync, not dropped for ever", () =>
    Effect.gen(function*() {
      const { dispatcher, seen, sendAll } = yield* setup
      yield* sendAll(range(1, 1_500))
      yield* sendAll(range(1, 10))
      yield* eventually(() => seen.length === 1_508, "the restarted stream")
      assert.deepStrictEqual(seen.slice(1_500), tagged("-", range(3, 10)))
      assert.strictEqual(dispatcher.stats().resyncs, 1)
    }).pipe(Effect.provide(layer)))

  it.scoped("unsequenced: one frame stamped far in the future does not silence the stream; the real feed's times take over after the resync", () =>
    Effect.gen(function*() {
      const { allRecycled, dispatcher, seen } = yield* setup
      const pool = yield* Pool
      const send = (ingestTs: number) =>
        Effect.suspend(() => dispatcher.dispatch(market(pool, { seq: undefined, ingestTs, bid: String(ingestTs) })))
      yield* Effect.forEach([1_000, 2_000, 3_000], send, { discard: true })
      const FAR = 9_000_000_000_000_000 // microseconds: the year 2255
      yield* send(FAR)
      yield* Effect.forEach(range(4, 13).map((i) => i * 1_000), send, { discard: true })
      yield* eventually(() => seen.length === 12, "the real stream after the resync")
      const s = dispatcher.stats()
      assert.strictEqual(s.suspectJumps, 2, "the real feed's first two events after the forged one are dropped as suspect")
      assert.strictEqual(s.resyncs, 1)
      assert.strictEqual(s.late, 0)
      yield* send(14_000)
      yield* eventually(() => seen.length === 13, "the stream goes on in real time")
      yield* allRecycled
    }).pipe(Effect.provide(layer)))

  it.scoped("a new feed epoch restarts the stream's ordering: the restarted feed is delivered from its first event", () =>
    Effect.gen(function*() {
      const { dispatcher, seen, sendAll } = yield* setup
      yield* sendAll(range(1, 50), "run-a")
      yield* sendAll(range(1, 5), "run-b")
      yield* eventually(() => seen.length === 55, "the restarted feed")
      assert.deepStrictEqual(seen, [...tagged("run-a", range(1, 50)), ...tagged("run-b", range(1, 5))])
      const s = dispatcher.stats()
      assert.strictEqual(s.epochResets, 1)
      assert.strictEqual(s.duplicates, 0)
      assert.strictEqual(s.suspectJumps, 0)
    }).pipe(Effect.provide(layer)))

  it.scoped("at an epoch change, what the old run left behind a gap is released first, then the new run", () =>
    Effect.gen(function*() {
      const { allRecycled, dispatcher, seen, sendAll } = yield* setup
      yield* sendAll([1, 2, 4, 5], "run-a")
      yield* eventually(() => seen.length === 2)
      yield* sendAll([1, 2], "run-b")
      yield* eventually(() => seen.length === 6, "both runs")
      assert.deepStrictEqual(seen, ["run-a:1", "run-a:2", "run-a:4", "run-a:5", "run-b:1", "run-b:2"])
      assert.strictEqual(dispatcher.stats().buffered, 0)
      assert.strictEqual(dispatcher.stats().gapsSkipped, 1, "the old run's gap at 3, counted")
      // the gap timer armed by the old run finds nothing left to skip
      yield* TestClock.adjust(LATENESS_MS * 2)
      assert.strictEqual(seen.length, 6)
      yield* allRecycled
    }).pipe(Effect.provide(layer)))
})
