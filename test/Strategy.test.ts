import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { layerMemory } from "../layers/Memory.js"
import { runStrategy, type Strategy } from "../src/Gateway.js"

describe("Strategy context", () => {
  it.effect("ids never repeat across runs of the same strategy, so a deduplicating bus cannot drop a restart's orders", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const strategy: Strategy = {
        id: "restarted",
        start: (ctx) =>
          Effect.sync(() => {
            seen.push(ctx.ids().commandId, ctx.newId("order"), ctx.ids().commandId)
          }),
        handle: () => Effect.void
      }
      // the same strategy, started twice as a restarted process would
      for (let run = 0; run < 2; run++) {
        yield* runStrategy(strategy).pipe(
          Effect.scoped,
          Effect.provide(layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a"] }))
        )
      }
      assert.strictEqual(seen.length, 6)
      assert.strictEqual(new Set(seen).size, 6, seen.join(" "))
      assert.isTrue(seen.every((id) => id.startsWith("restarted-")))
    }))
})
