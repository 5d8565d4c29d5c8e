/** The command line's answers to what a user types: the nearest flag, options paired with strategies. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { nearestFlag, strategySpecs, unknownFlag } from "../../src/main.js"

describe("command line", () => {
  it("a mistyped flag is found and answered with the nearest valid one, values are not flags", () => {
    const table: ReadonlyArray<readonly [args: ReadonlyArray<string>, unknown: string | undefined, nearest: string | undefined]> = [
      [["--confg", "x.yaml"], "--confg", "--config"],
      [["--config=x.yaml", "--stratgy", "a.ts"], "--stratgy", "--strategy"],
      [["--strategy", "a.ts", "--strategy-option", "{}"], "--strategy-option", "--strategy-options"],
      [["run", "--debgu"], "--debgu", "--debug"],
      [["nats-config", "--port", "-1"], undefined, undefined],
      [["--strategy-options", "-5", "--strategy", "a.ts"], undefined, undefined],
      [["--", "--anything"], undefined, undefined],
      [["--frobnicate-everything"], "--frobnicate-everything", undefined],
      [["-x"], "-x", undefined],
      [["check-config", "-c", "g.yaml", "--help"], undefined, undefined]
    ]
    for (const [args, unknown, nearest] of table) {
      const got = unknownFlag(args)
      assert.strictEqual(got, unknown, args.join(" "))
      if (got !== undefined) assert.strictEqual(nearestFlag(got), nearest, got)
    }
  })

  it.effect("--strategy-options go with the --strategy at the same position; JSON that is not is refused by position", () =>
    Effect.gen(function*() {
      const specs = yield* strategySpecs(["a.ts", "b.ts"], ['{"symbol":"ETH-USDT"}'])
      assert.deepStrictEqual(specs, [{ module: "a.ts", options: { symbol: "ETH-USDT" } }, { module: "b.ts" }])
      const bad = yield* Effect.either(strategySpecs(["a.ts"], ["{oops", "{}"]))
      assert.isTrue(Either.isLeft(bad))
      const message = Either.isLeft(bad) ? bad.left.message : ""
      assert.include(message, "--strategy-options: 2 --strategy-options for 1 --strategy")
      assert.include(message, "--strategy-options (a.ts): not JSON")
    }))
})
