/**
 * End to end: the status page's charts and strategy table in headless
 * Chromium, against the real entry point as a child process.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { chromium } from "playwright-core"
import { startGateway, until } from "./support.js"

const CHROMIUM = "/usr/bin/chromium"

const config = `
http: { port: 0 }
statusIntervalMs: 1000
strategies:
  orders: { intervalMs: 300 }
`

interface History {
  readonly intervalMs: number
  readonly capacity: number
  readonly at: ReadonlyArray<number>
  readonly eventsInPerSec: ReadonlyArray<number | null>
  readonly p99DispatchToLambdaUs: ReadonlyArray<number | null>
}

describe("e2e status page", () => {
  it.scopedLive("charts throughput and latency from the server's history, and lists each strategy's orders and fills", () =>
    Effect.gen(function*() {
      assert.isTrue(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package`)
      const file = join(mkdtempSync(join(tmpdir(), "meltica-e2e-")), "gateway.yaml")
      writeFileSync(file, config)
      const child = yield* startGateway("gateway", file)
      const url = yield* until("the endpoints' address in the log", 20, async () =>
        child.lines.find((l) => (l.annotations as Record<string, unknown> | undefined)?.http_url !== undefined)
          ?.annotations as { http_url: string } | undefined, child).pipe(Effect.map((a) => a.http_url))

      // the chart library comes from our own server
      const script = yield* Effect.promise(() => fetch(`${url}/assets/uPlot.iife.min.js`))
      assert.strictEqual(script.status, 200)
      assert.match(script.headers.get("content-type") ?? "", /^text\/javascript/)
      assert.include(yield* Effect.promise(() => script.text()), "uPlot")

      // the history fills on the server, one sample a second, bounded
      const history = yield* until("three history samples with traffic", 20, async () => {
        const h = (await (await fetch(`${url}/history.json`)).json()) as History
        return h.at.length >= 3 && h.eventsInPerSec.some((v) => v !== null && v > 0) ? h : undefined
      }, child)
      assert.strictEqual(history.intervalMs, 1_000)
      assert.strictEqual(history.capacity, 600)

      const browser = yield* Effect.acquireRelease(
        Effect.promise(() =>
          chromium.launch({
            executablePath: CHROMIUM,
            args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"]
          })
        ),
        (b) => Effect.promise(() => b.close())
      )
      const page = yield* Effect.promise(() => browser.newPage())
      const elsewhere: Array<string> = []
      const pageErrors: Array<string> = []
      page.on("request", (r) => {
        if (!r.url().startsWith(url)) elsewhere.push(r.url())
      })
      page.on("pageerror", (e) => pageErrors.push(String(e)))
      yield* Effect.promise(() => page.goto(url))

      /** A chart's points and latest value, as the page drew them, and how many of its canvas pixels are painted. */
      const chart = (id: string) =>
        Effect.promise(() =>
          page.locator(`#${id}`).evaluate((el) => {
            const canvas = el.querySelector("canvas")
            let painted = 0
            if (canvas !== null) {
              const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data
              for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++
            }
            return { points: Number(el.getAttribute("data-points")), last: el.getAttribute("data-last"), painted, canvas: canvas !== null }
          })
        )

      const throughput = yield* until("the throughput chart with live figures", 15, async () => {
        const c = await Effect.runPromise(chart("chart-throughput"))
        return c.points >= 3 && Number(c.last) > 0 && c.painted > 0 ? c : undefined
      }, child)
      assert.isTrue(throughput.canvas)
      // the chart moves: more points a few seconds later
      const later = yield* until("the chart to grow live", 10, async () => {
        const c = await Effect.runPromise(chart("chart-throughput"))
        return c.points > throughput.points ? c : undefined
      }, child)
      assert.isAbove(later.points, throughput.points)
      const latency = yield* until("the latency chart with a figure", 15, async () => {
        const c = await Effect.runPromise(chart("chart-latency"))
        return c.points >= 3 && c.last !== "null" && Number(c.last) > 0 && c.painted > 0 ? c : undefined
      }, child)
      assert.isAbove(Number(latency.last), 0)
      const legend = yield* Effect.promise(() => page.locator("#chart-throughput .u-legend").innerText())
      assert.include(legend, "events in /s")

      // per strategy: the paper trader's orders and fills
      const trader = yield* until("the paper trader's orders and fills", 20, async () => {
        const cells = await page.locator(`#strategies tr[data-key="paper-trader"] td`).allInnerTexts()
        return cells.length === 5 && Number(cells[1]!.replace(/,/g, "")) > 0 ? cells : undefined
      }, child)
      const [orders, fills, resting, rejected] = trader.slice(1).map((c) => Number(c.replace(/,/g, "")))
      assert.isTrue([fills, resting, rejected].every(Number.isInteger), trader.join(" | "))
      assert.isAtMost(resting!, orders!)
      const status = (yield* Effect.promise(() => fetch(`${url}/status.json`).then((r) => r.json()))) as {
        readonly ordersByConsumer: ReadonlyArray<{ readonly consumerId: string; readonly orders: number }>
      }
      assert.isAtLeast(status.ordersByConsumer.find((c) => c.consumerId === "paper-trader")!.orders, orders!)

      const figure = (id: string) => Effect.promise(() => page.locator(`#${id}`).innerText().then((t) => Number(t.replace(/,/g, ""))))
      const partial = yield* figure("merged-partial-total")
      assert.isTrue(Number.isInteger(partial) && partial <= (yield* figure("merged-total")), `partial merges ${partial}`)
      assert.deepStrictEqual(elsewhere, [], "the page asks nothing of another origin")
      assert.deepStrictEqual(pageErrors, [])
    }), { timeout: 90_000 })
})
