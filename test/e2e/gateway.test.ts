/**
 * End to end: the real entry point as a child process, its operator endpoints
 * over HTTP, its status page in headless Chromium, and its shutdown on
 * SIGTERM.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { chromium } from "playwright-core"
import { startGateway, until } from "./support.js"

const CHROMIUM = "/usr/bin/chromium"

/** Starts `src/main.ts` with a config written to a temporary file. */
const startWithConfig = (configText: string) =>
  Effect.suspend(() => {
    const file = join(mkdtempSync(join(tmpdir(), "meltica-e2e-")), "gateway.yaml")
    writeFileSync(file, configText)
    return startGateway("gateway", file)
  })

/** The value of every sample of a counter, summed over its tags. */
const counter = (text: string, name: string): number => {
  let sum = 0
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return sum
}

const config = `
http: { port: 0 }
statusIntervalMs: 1000
strategies:
  orders: { intervalMs: 300 }
`

describe("e2e", () => {
  it.scopedLive("the gateway serves /ready, /metrics and a live status page, and stops cleanly on SIGTERM", () =>
    Effect.gen(function*() {
      assert.isTrue(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (see .ci/run)`)
      const child = yield* startWithConfig(config)
      const url = yield* until("the endpoints' address in the log", 20, async () =>
        child.lines.find((l) => (l.annotations as Record<string, unknown> | undefined)?.http_url !== undefined)
          ?.annotations as { http_url: string } | undefined
      ).pipe(Effect.map((a) => a.http_url), Effect.tapError(() => Effect.sync(() => console.error(child.raw.join("\n")))))

      const health = yield* Effect.promise(() => fetch(`${url}/health`))
      assert.strictEqual(health.status, 200)
      const ready = yield* until("/ready", 15, async () => {
        const r = await fetch(`${url}/ready`)
        return r.status === 200 ? ((await r.json()) as { ready: boolean }) : undefined
      })
      assert.isTrue(ready.ready)

      const scrape = () => Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text()))
      const first = yield* scrape()
      const moved = yield* until("counters to move between two scrapes", 10, async () => {
        const text = await fetch(`${url}/metrics`).then((r) => r.text())
        return counter(text, "meltica_dispatcher_deliveries_total") > counter(first, "meltica_dispatcher_deliveries_total") &&
            counter(text, "meltica_provider_events_total") > counter(first, "meltica_provider_events_total")
          ? text
          : undefined
      })
      assert.match(first, /# TYPE meltica_dispatcher_deliveries_total counter/)
      assert.isAbove(counter(moved, "meltica_consumer_processed_total"), 0)
      assert.isAbove(counter(moved, "meltica_merge_windows_merged_total"), 0)

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
      yield* Effect.promise(() => page.goto(url))
      const readFigure = (id: string) => Effect.promise(() => page.locator(`#${id}`).innerText())
      const firstFigure = yield* until("the page to show deliveries", 10, async () => {
        const n = Number((await page.locator("#deliveries-total").innerText()).replace(/,/g, ""))
        return n > 0 ? n : undefined
      })
      const later = yield* until("the page to update live", 10, async () => {
        const n = Number((await page.locator("#deliveries-total").innerText()).replace(/,/g, ""))
        return n > firstFigure ? n : undefined
      })
      assert.isAbove(later, firstFigure)
      assert.strictEqual(yield* readFigure("ready"), "ready")
      const consumers = yield* Effect.promise(() => page.locator("#consumers tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-key"))))
      assert.deepStrictEqual([...consumers].sort(), ["bbo-follower", "gateway", "paper-trader"])
      const pools = yield* Effect.promise(() => page.locator("#pools tr").count())
      assert.strictEqual(pools, 3)

      child.process.kill("SIGTERM")
      const code = yield* Deferred.await(child.exited).pipe(Effect.timeout("15 seconds"))
      const output = child.raw.join("\n")
      assert.strictEqual(code, 0, output.slice(-2000))
      const messages = child.lines.map((l) => String(l.message))
      assert.include(messages, "stopping providers")
      assert.include(messages, "critical lanes drained")
      assert.include(messages, "leak report: 0 outstanding pooled object(s) (Event 0, MergedEvent 0, ExecReport 0)")
      assert.include(messages, "fibers left: 0")
      const orderLines = child.lines.filter((l) => l.message === "order closed")
      assert.isAbove(orderLines.length, 0, "the paper trader's reports were logged")
      const annotations = orderLines[0]!.annotations as Record<string, unknown>
      assert.strictEqual(annotations.consumer_id, "paper-trader")
      assert.isString(annotations.trace_id)
    }), { timeout: 60_000 })
})
