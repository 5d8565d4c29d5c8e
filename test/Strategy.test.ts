import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { layerMemory } from "../layers/Memory.js"
import * as Strategy from "../src/strategy/index.js"
import { run } from "../src/strategy/Strategy.js"

describe("Strategy context", () => {
  it.effect("ids never repeat across runs of the same strategy, so a deduplicating bus cannot drop a restart's orders", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const strategy = Strategy.define({
        id: "restarted",
        start: (ctx) =>
          Effect.sync(() => {
            seen.push(ctx.ids().commandId, ctx.newId("order"), ctx.ids().commandId)
          })
      })
      // the same strategy, started twice as a restarted process would
      for (let i = 0; i < 2; i++) {
        yield* run(strategy).pipe(
          Effect.scoped,
          Effect.provide(layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a"] }))
        )
      }
      assert.strictEqual(seen.length, 6)
      assert.strictEqual(new Set(seen).size, 6, seen.join(" "))
      assert.isTrue(seen.every((id) => id.startsWith("restarted-")))
    }))
})
