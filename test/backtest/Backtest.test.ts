/**
 * Backtests on a recording of two simulated venues: an SDK strategy,
 * unchanged, trades on the paper venue through the whole gateway on the
 * virtual clock. Two runs give byte-identical orders, fills and report; a
 * strategy timer fires in recorded time; the HTML report is written.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Scope, TestClock, TestContext } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { SimulatedVenueConfig } from "../../schema/ProviderConfig.js"
import paperTrader from "../../examples/paperTrader.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { Pool } from "../../src/Pool.js"
import { makeSimulated } from "../../src/providers/Simulated.js"
import { generationOf, Recycler } from "../../src/Recycler.js"
import { makeRecorder } from "../../src/record/Recorder.js"
import { layerBacktest } from "../../layers/Application.js"
import { runBacktest } from "../../src/backtest/Backtest.js"
import { deterministicJson } from "../../src/backtest/Report.js"
import * as Strategy from "../../src/strategy/index.js"
import { baseLayer } from "../providers/helpers.js"
import { tempDir } from "../record/support.js"

/** Two simulated venues quoting BTC-USDT for `ms` of TestClock time, recorded into `dir`. */
export const recordMarket = (dir: string, ms: number) =>
  Effect.gen(function*() {
    const services = { pool: yield* Pool, recycler: yield* Recycler, deadLetter: yield* DeadLetter }
    // recorded time starts at a real date, as a live recording's does
    yield* TestClock.setTime(Date.UTC(2026, 10, 30, 9, 0, 0))
    const scope = yield* Scope.make()
    const recorder = yield* makeRecorder({ dir, flushIntervalMs: 5_000 }).pipe(Scope.extend(scope))
    const venues = ["sim-a", "sim-b"].map((name, i) =>
      makeSimulated(
        SimulatedVenueConfig.make({ name, symbols: ["BTC-USDT"], seed: 11 + i, tradesPerSecond: 10, tickersPerSecond: 10, deltasPerSecond: 10, tickMs: 100 }),
        services
      )
    )
    const fibers = yield* Effect.forEach(recorder.wrap(venues), (p) =>
      Effect.forkIn(p.run((e) => Effect.sync(() => services.recycler.unsafeRecycle(e, generationOf(e)))).pipe(Effect.scoped), scope))
    yield* TestClock.adjust(ms)
    yield* Effect.forEach(fibers, Fiber.interrupt)
    yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
    return recorder.stats()
  }).pipe(Effect.provide(TestContext.TestContext), Effect.provide(baseLayer))

/** A strategy that notes the (virtual) time at which each of its timer rounds runs. */
const ticks: Array<number> = []
const timerStrategy = Strategy.define({
  id: "timer-probe",
  start: (ctx) =>
    Effect.gen(function*() {
      yield* ctx.subscribe("BTC-USDT", ["ticker"])
      yield* Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => Effect.sync(() => ticks.push(now))),
        Effect.delay(250),
        Effect.forever,
        Effect.forkScoped
      )
    })
})

describe("backtest", () => {
  it.scoped("the same recording, strategy and options give byte-identical orders, fills and report; the paper venue fills them with fees", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const stats = yield* recordMarket(dir, 20_000)
      assert.isAbove(stats.events, 1_000)
      const run = (out?: string) =>
        runBacktest({
          data: dir,
          strategies: [{ strategy: paperTrader, options: { symbol: "BTC-USDT", quantity: "0.01", intervalMs: 500 } }],
          ...(out === undefined ? {} : { out })
        }, layerBacktest)
      const first = yield* run(join(dir, "..", `${dir.split("/").pop()}-report`))
      const second = yield* run()
      assert.strictEqual(first.replay.events, stats.events)
      assert.isAbove(first.summary.orders, 20)
      assert.isAbove(first.summary.fills, 5)
      assert.notStrictEqual(first.summary.fees, "0")
      assert.isAbove(first.equity.length, 15)
      assert.strictEqual(deterministicJson(first), deterministicJson(second))
      assert.deepStrictEqual(first.fills, second.fills)
      // the files
      assert.isTrue(existsSync(first.run.html!))
      const html = readFileSync(first.run.html!, "utf8")
      assert.include(html, "uPlot")
      assert.notInclude(html, "http://")
      const json = JSON.parse(readFileSync(first.run.json!, "utf8"))
      assert.strictEqual(json.summary.fills, first.summary.fills)
    }), 120_000)

  it.scoped("a strategy timer fires in recorded time: every 250 ms of the recording, from its first event to its last", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* recordMarket(dir, 5_000)
      ticks.length = 0
      const report = yield* runBacktest({ data: dir, strategies: [{ strategy: timerStrategy }] }, layerBacktest)
      const start = Date.parse(report.from!)
      const end = Date.parse(report.to!)
      assert.isAtLeast(end - start, 4_800)
      // one tick per 250 ms of recorded time (the run itself takes far less wall time)
      assert.isAtLeast(ticks.length, Math.floor((end - start) / 250) - 1)
      for (let i = 1; i < ticks.length; i++) assert.strictEqual(ticks[i] - ticks[i - 1], 250)
      assert.isAtLeast(ticks[0], start)
      assert.isAtMost(ticks[ticks.length - 1], end + 250)
    }), 60_000)
})
