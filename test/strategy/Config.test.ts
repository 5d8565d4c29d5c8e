/** The configuration's strategies: the examples' switches, strategy files, or a list of files. */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { configuredStrategies } from "../../layers/Application.js"
import * as Config from "../../src/Config.js"

const ids = (raw: unknown) => {
  const config = Config.validate(raw, "test")
  if (Either.isLeft(config)) throw new Error(config.left.message)
  return configuredStrategies(config.right).map((s) => ("strategy" in s ? s.strategy.id : `file ${s.module}`))
}

describe("configured strategies", () => {
  it("by default, both examples; the switches turn them off; files run next to them", () => {
    assert.deepStrictEqual(ids({}), ["bbo-follower", "paper-trader"])
    assert.deepStrictEqual(ids({ strategies: { orders: { enabled: false }, modules: [{ module: "./mine.ts" }] } }), [
      "bbo-follower",
      "file ./mine.ts"
    ])
  })

  it("a list names the strategy files to run, and only those", () => {
    assert.deepStrictEqual(ids({ strategies: [{ module: "./a.ts", options: { x: 1 } }, { module: "./b.ts" }] }), [
      "file ./a.ts",
      "file ./b.ts"
    ])
    assert.deepStrictEqual(ids({ strategies: [] }), [])
  })

  it("a list item without a module is a configuration problem, by path", () => {
    const config = Config.validate({ strategies: [{ options: {} }, { module: "" }] }, "test")
    assert.isTrue(Either.isLeft(config))
    const text = Either.isLeft(config) ? config.left.message : ""
    assert.include(text, "strategies.modules[0].module")
    assert.include(text, "strategies.modules[1].module: module must be the path of a strategy file")
  })
})
