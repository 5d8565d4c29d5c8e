import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Logger, LogLevel, Option } from "effect"
import { layerCore } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { FAILED, inlineFailure, NOT_INLINE, reusableWait, runInline, runPrefix, SUCCEEDED } from "../src/internal/inlineEffect.js"
import { Pool } from "../src/Pool.js"
import { eventually, market } from "./support/events.js"

describe("running a lambda's effect in place", () => {
  // Pins Effect 3's primitive encoding: if a release changes it, this fails
  // rather than every lambda silently going through the runtime.
  let ran = 0
  const table: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>, 0 | 1 | 2]> = [
    ["Effect.sync", Effect.sync(() => ran++), SUCCEEDED],
    ["Effect.void", Effect.void, SUCCEEDED],
    ["Effect.succeed", Effect.succeed(42), SUCCEEDED],
    ["Exit.succeed", Exit.succeed(1), SUCCEEDED],
    ["Effect.fail (a string)", Effect.fail("no"), FAILED],
    ["Effect.die (a string)", Effect.die("boom"), FAILED],
    ["Effect.die (an Error: captures the fiber's span)", Effect.die(new Error("boom")), NOT_INLINE],
    ["Effect.sync that throws", Effect.sync(() => { throw new Error("thrown") }), FAILED],
    ["Effect.fail (an object: captures the fiber's span)", Effect.fail(new Error("e")), NOT_INLINE],
    ["Effect.gen", Effect.gen(function*() { yield* Effect.void }), NOT_INLINE],
    ["Effect.map", Effect.map(Effect.sync(() => 1), (n) => n + 1), NOT_INLINE],
    ["Effect.sleep", Effect.sleep(1), NOT_INLINE],
    ["Effect.async", Effect.async<void>((resume) => resume(Effect.void)), NOT_INLINE],
    ["Effect.withSpan", Effect.withSpan(Effect.void, "span"), NOT_INLINE]
  ]
  for (const [name, effect, expected] of table) {
    it(`${name}: ${expected === NOT_INLINE ? "left to the runtime" : expected === SUCCEEDED ? "succeeds in place" : "fails in place"}`, () => {
      const before = ran
      assert.strictEqual(runInline(effect), expected)
      if (name === "Effect.sync") assert.strictEqual(ran, before + 1, "the thunk ran once")
      if (expected === FAILED) {
        const cause = inlineFailure.cause
        // the same cause the runtime gives
        const viaRuntime = Effect.runSyncExit(effect)
        assert.isTrue(Exit.isFailure(viaRuntime))
        if (Exit.isFailure(viaRuntime)) {
          assert.deepStrictEqual(Cause.isDie(cause), Cause.isDie(viaRuntime.cause))
          assert.deepStrictEqual(
            Option.getOrUndefined(Cause.failureOption(cause)),
            Option.getOrUndefined(Cause.failureOption(viaRuntime.cause))
          )
        }
      }
    })
  }

  it.effect("a consumer with every kind of lambda: in order, failures and defects counted, everything recycled", () =>
    Effect.gen(function*() {
      const pool = yield* Pool
      const dispatcher = yield* Dispatcher
      const consumers = yield* Consumers
      const seen: Array<number> = []
      // by sequence number: sync, sync that throws, fail in place, gen, die, fail with an object, async
      const lambda = (seq: number): Effect.Effect<unknown, unknown> => {
        switch (seq % 7) {
          case 0:
            return Effect.sync(() => seen.push(seq))
          case 1:
            return Effect.sync(() => {
              seen.push(seq)
              throw new Error("defect")
            })
          case 2:
            return Effect.zipRight(Effect.sync(() => seen.push(seq)), Effect.fail("failed"))
          case 3:
            return Effect.gen(function*() {
              yield* Effect.yieldNow()
              seen.push(seq)
            })
          case 4:
            seen.push(seq)
            return Effect.die("died")
          case 5:
            seen.push(seq)
            return Effect.fail(new Error("failed with an object"))
          default:
            return Effect.async<void>((resume) => {
              seen.push(seq)
              setImmediate(() => resume(Effect.void))
            })
        }
      }
      const handle = yield* consumers.start({
        id: "mixed",
        handle: (e) => lambda(e.seqProvider!),
        subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }]
      })
      const EVENTS = 70
      for (let i = 1; i <= EVENTS; i++) yield* dispatcher.dispatch(market(pool, { seq: i }))
      yield* eventually(() => handle.stats().processed + handle.stats().failures === EVENTS, "every event")
      assert.deepStrictEqual(seen, Array.from({ length: EVENTS }, (_, i) => i + 1))
      const failing = Array.from({ length: EVENTS }, (_, i) => i + 1).filter((s) => [1, 2, 4, 5].includes(s % 7))
      assert.strictEqual(handle.stats().failures, failing.length)
      assert.strictEqual(handle.stats().processed, EVENTS - failing.length)
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }).pipe(
      Effect.scoped,
      Effect.provide(layerCore()),
      Effect.provide(Logger.minimumLogLevel(LogLevel.None))
    ))
})

describe("running an effect's synchronous prefix in place (runPrefix)", () => {
  // each case: the effect (built with a log of its steps), the steps run in place, whether a rest is left,
  // and the whole log once the rest has run through the runtime: always the runtime's own log and exit
  const cases: ReadonlyArray<readonly [string, (log: Array<string>) => Effect.Effect<unknown, unknown>, ReadonlyArray<string>, boolean]> = [
    ["Effect.void", () => Effect.void, [], false],
    ["Effect.sync", (log) => Effect.sync(() => log.push("a")), ["a"], false],
    ["Effect.suspend of a sync", (log) => Effect.suspend(() => Effect.sync(() => log.push("a"))), ["a"], false],
    ["zipRight chain of syncs", (log) => Effect.zipRight(Effect.sync(() => log.push("a")), Effect.zipRight(Effect.sync(() => log.push("b")), Effect.sync(() => log.push("c")))), ["a", "b", "c"], false],
    ["flatMap passes the value on", (log) => Effect.flatMap(Effect.succeed(2), (n) => Effect.sync(() => log.push(`got ${n}`))), ["got 2"], false],
    ["suspend inside flatMap inside suspend", (log) => Effect.suspend(() => Effect.flatMap(Effect.sync(() => log.push("a")), () => Effect.suspend(() => Effect.sync(() => log.push("b"))))), ["a", "b"], false],
    // Effect.async registers when evaluated (as the runtime does), and the wait goes to the runtime
    ["stops at an async step's wait; the continuations run after it", (log) =>
      Effect.zipRight(Effect.sync(() => log.push("a")), Effect.zipRight(Effect.async<void>((resume) => { log.push("async"); resume(Effect.void) }), Effect.sync(() => log.push("c")))), ["a", "async"], true],
    ["stops at a generator", (log) => Effect.zipRight(Effect.sync(() => log.push("a")), Effect.gen(function*() { log.push("gen") })), ["a"], true],
    ["a failure skips what follows", (log) => Effect.zipRight(Effect.sync(() => log.push("a")), Effect.zipRight(Effect.fail("no"), Effect.sync(() => log.push("never")))), ["a"], true],
    ["a thrown thunk is a defect and skips what follows", (log) =>
      Effect.zipRight(Effect.sync(() => { log.push("a"); throw new Error("thrown") }), Effect.sync(() => log.push("never"))), ["a"], true],
    ["a log step goes to the runtime", (log) => Effect.zipRight(Effect.sync(() => log.push("a")), Effect.zipRight(Effect.logDebug("x"), Effect.sync(() => log.push("c")))), ["a"], true]
  ]
  for (const [name, make, inPlace, restLeft] of cases) {
    it(name, () => {
      const log: Array<string> = []
      const rest = runPrefix(make(log))
      assert.deepStrictEqual(log, inPlace)
      assert.strictEqual(rest !== undefined, restLeft)
      const exit = Effect.runSyncExit(rest === undefined ? Effect.void : rest)
      const alone: Array<string> = []
      const expected = Effect.runSyncExit(make(alone))
      assert.deepStrictEqual(log, alone, "the same steps in the same order as the runtime alone")
      assert.strictEqual(exit._tag, expected._tag)
      if (Exit.isFailure(exit) && Exit.isFailure(expected)) {
        assert.strictEqual(Cause.isDie(exit.cause), Cause.isDie(expected.cause))
        assert.deepStrictEqual(Option.getOrUndefined(Cause.failureOption(exit.cause)), Option.getOrUndefined(Cause.failureOption(expected.cause)))
      }
    })
  }
})

describe("a wait made once and run many times (reusableWait)", () => {
  // Pins Effect 3's `Async` primitive: if a release changes it, the wait no longer waits or resumes here.
  it.effect("waits until resumed, each time it runs; a resume at registration goes on at once", () =>
    Effect.gen(function*() {
      let resume: ((effect: Effect.Effect<void>) => void) | undefined
      let ready = false
      const wait = reusableWait((r) => {
        if (ready) r(Effect.void)
        else resume = r
      })
      let passed = 0
      const fiber = yield* Effect.fork(Effect.forever(Effect.zipRight(wait, Effect.sync(() => passed++))))
      for (let round = 1; round <= 3; round++) {
        yield* Effect.yieldNow()
        assert.strictEqual(passed, round - 1, "waiting until resumed")
        const r = resume!
        resume = undefined
        r(Effect.void)
        yield* Effect.yieldNow()
        assert.strictEqual(passed, round, "resumed once")
      }
      yield* Fiber.interrupt(fiber)
      // a register that resumes at once: the wait goes straight on, each time
      ready = true
      yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.zipRight(wait, Effect.sync(() => passed++)), { discard: true })
      assert.strictEqual(passed, 8)
    }))

  it.effect("a waiting fiber is interrupted; a resume after that is ignored", () =>
    Effect.gen(function*() {
      let resume: ((effect: Effect.Effect<void>) => void) | undefined
      let after = false
      const wait = reusableWait((r) => {
        resume = r
      })
      const fiber = yield* Effect.fork(Effect.zipRight(wait, Effect.sync(() => (after = true))))
      yield* Effect.yieldNow()
      assert.isDefined(resume)
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      resume!(Effect.void)
      yield* Effect.yieldNow()
      assert.isFalse(after, "nothing after the wait ran")
    }))
})
