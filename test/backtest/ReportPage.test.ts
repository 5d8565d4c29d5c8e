/**
 * The backtest report page in headless Chromium: the sample recording's
 * backtest report opens from the file system with no network request, draws
 * its equity, drawdown and exposure charts with every sampled point, and
 * lists the fills and the summary.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { layerBacktest } from "../../layers/Application.js"
import paperTrader from "../../examples/paperTrader.js"
import { runBacktest } from "../../src/backtest/Backtest.js"
import { tempDir } from "../record/support.js"

const CHROMIUM = "/usr/bin/chromium"
const SAMPLE = join(import.meta.dirname, "..", "..", "examples", "data", "okx-2022-05-13")

describe("backtest report page", () => {
  it.scoped("opens offline in Chromium and draws equity, drawdown and exposure from the report's points", () =>
    Effect.gen(function*() {
      assert.isTrue(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package`)
      const out = yield* tempDir
      const report = yield* runBacktest({ data: SAMPLE, strategies: [{ strategy: paperTrader, options: { symbol: "BTC-USDT" } }], out }, layerBacktest)
      assert.isAbove(report.summary.fills, 0)
      const browser = yield* Effect.acquireRelease(
        Effect.promise(() =>
          chromium.launch({
            executablePath: CHROMIUM,
            args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
          })
        ),
        (b) => Effect.promise(() => b.close())
      )
      const page = yield* Effect.promise(() => browser.newPage())
      const requests: Array<string> = []
      const errors: Array<string> = []
      page.on("request", (r) => {
        if (!r.url().startsWith("file://")) requests.push(r.url())
      })
      page.on("pageerror", (e) => errors.push(String(e)))
      yield* Effect.promise(() => page.goto(`file://${report.run.html}`))
      const drawn = yield* Effect.promise(() =>
        page.evaluate(() => {
          const g = globalThis as unknown as {
            charts: Array<{ data: Array<Array<number>> }>
            document: {
              querySelectorAll: (s: string) => { length: number }
              getElementById: (id: string) => { textContent: string | null } | null
            }
          }
          const { charts, document } = g
          return {
            charts: charts.length,
            points: charts.map((c) => c.data[1].length),
            canvases: document.querySelectorAll("canvas").length,
            fills: document.querySelectorAll("#fills tr").length - 1,
            summary: document.getElementById("summary")?.textContent ?? ""
          }
        })
      )
      assert.deepStrictEqual(errors, [])
      assert.deepStrictEqual(requests, [])
      assert.strictEqual(drawn.charts, 3)
      assert.deepStrictEqual(drawn.points, [report.equity.length, report.equity.length, report.equity.length])
      assert.isAtLeast(drawn.canvases, 3)
      assert.strictEqual(drawn.fills, report.fills.length)
      assert.include(drawn.summary, report.summary.pnl)
    }), 90_000)
})
