/**
 * `--strategy-isolation` on the command line: paired by position with the
 * `--strategy` it follows (as `--strategy-options` is), `process` or
 * `worker`, anything else refused with every problem listed at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { nearestFlag, strategySpecs, unknownFlag } from "../../src/main.js"
import { runMain } from "../e2e/support.js"

const refusal = (e: Effect.Effect<unknown, { readonly message: string }>) =>
  Effect.map(Effect.flip(e), (error) => error.message)

describe("--strategy-isolation", () => {
  it.effect("each goes with the --strategy at its position, beside its --strategy-options", () =>
    Effect.gen(function*() {
      const specs = yield* strategySpecs(["a.ts", "b.ts", "c.ts"], ['{"symbol":"ETH-USDT"}'], ["worker", "process"])
      assert.deepStrictEqual(specs, [
        { module: "a.ts", isolation: "worker", options: { symbol: "ETH-USDT" } },
        { module: "b.ts", isolation: "process" },
        { module: "c.ts" }
      ])
      // none given: in process, as before
      assert.deepStrictEqual(yield* strategySpecs(["a.ts"], []), [{ module: "a.ts" }])
    }))

  it.effect("a value other than process or worker is refused, naming the strategy it goes with", () =>
    Effect.gen(function*() {
      const hostile = ["thread", "WORKER", "Process", "", " worker", "worker ", "worker,process", "isolation=worker", "1", "true", "x".repeat(10_000)]
      for (const value of hostile) {
        const message = yield* refusal(strategySpecs(["a.ts"], [], [value]))
        assert.include(message, "--strategy-isolation (a.ts): isolation must be process or worker", JSON.stringify(value.slice(0, 20)))
        assert.isBelow(message.length, 400, "a hostile value is not echoed whole")
      }
    }))

  it.effect("more --strategy-isolation than --strategy is refused, with every other problem of the line", () =>
    Effect.gen(function*() {
      const message = yield* refusal(strategySpecs(["a.ts"], ["{oops", "{}"], ["worker", "worker"]))
      assert.include(message, "--strategy-isolation: 2 --strategy-isolation for 1 --strategy")
      assert.include(message, "--strategy-options: 2 --strategy-options for 1 --strategy")
      assert.include(message, "--strategy-options (a.ts): not JSON")
      const bad = yield* refusal(strategySpecs(["a.ts", "b.ts"], [], ["thread", "worker", "process"]))
      assert.include(bad, "--strategy-isolation: 3 --strategy-isolation for 2 --strategy")
      assert.include(bad, "--strategy-isolation (a.ts): isolation must be process or worker")
    }))

  it("is a known flag taking a value; a near miss is pointed to it", () => {
    assert.isUndefined(unknownFlag(["--strategy", "a.ts", "--strategy-isolation", "worker"]))
    assert.isUndefined(unknownFlag(["--strategy-isolation=worker", "--strategy", "a.ts"]))
    assert.strictEqual(unknownFlag(["--strategy", "a.ts", "--strategy-isolaton", "worker"]), "--strategy-isolaton")
    assert.strictEqual(nearestFlag("--strategy-isolaton"), "--strategy-isolation")
  })

  it.live("the command line refuses a bad value before anything starts, and says why", () =>
    Effect.gen(function*() {
      const r = yield* runMain(["--strategy", "x.ts", "--strategy-isolation", "thread"])
      assert.strictEqual(r.code, 1, r.stderr)
      assert.include(r.stderr, "--strategy-isolation (x.ts): isolation must be process or worker (got \"thread\")")
      const count = yield* runMain(["--strategy", "x.ts", "--strategy-isolation", "worker", "--strategy-isolation", "worker"])
      assert.strictEqual(count.code, 1, count.stderr)
      assert.include(count.stderr, "2 --strategy-isolation for 1 --strategy")
    }), { timeout: 60_000 })
})
