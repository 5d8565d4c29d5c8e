import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { layerMemory } from "../layers/Memory.js"
import { QueryOrder } from "../schema/Control.js"
import { Consumers } from "../src/Consumer.js"
import { ControlBus } from "../src/ControlBus.js"
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

  it.effect("when its scope closes (a shutdown), its mailbox stays until the consumer runtime closes, so what is queued for it is still handled", () =>
    Effect.gen(function*() {
      let results = 0
      const strategy = Strategy.define({ id: "drains", on: { control_result: () => Effect.sync(() => void results++) } })
      // the strategy's own scope closes first at shutdown: its timers stop
      yield* run(strategy).pipe(Effect.scoped)
      // a result still on its way reaches it (the gateway drains the critical lanes after that)
      const control = yield* ControlBus
      yield* control.submit(QueryOrder.make({ commandId: "late-1", consumerId: "drains", clientOrderId: "x" }))
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
      assert.strictEqual(results, 1)
      assert.isDefined((yield* Consumers).get("drains"))
    }).pipe(Effect.scoped, Effect.provide(layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a"] }))))

  it.effect("a strategy that fails to start is stopped alone: its mailbox goes with it", () =>
    Effect.gen(function*() {
      const failure = yield* run(Strategy.define({ id: "gives-up", start: () => Effect.fail("no") })).pipe(Effect.flip)
      assert.strictEqual(failure._tag, "StrategyStartFailed")
      assert.isUndefined((yield* Consumers).get("gives-up"))
    }).pipe(Effect.scoped, Effect.provide(layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a"] }))))
})
