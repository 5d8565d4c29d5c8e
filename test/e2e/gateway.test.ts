/**
 * End to end: the real entry point as a child process, its operator endpoints
 * over HTTP, its status page in headless Chromium, and its shutdown on
 * SIGTERM.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { chromium } from "playwright-core"
import { definedCounters } from "../../src/Metrics.js"
import { runMain, startGateway, until } from "./support.js"

const CHROMIUM = "/usr/bin/chromium"

/** Starts the gateway with a config written to a temporary file. */
const startWithConfig = (configText: string, via: "node" | "npm" = "node") =>
  Effect.suspend(() => {
    const file = join(mkdtempSync(join(tmpdir(), "meltica-e2e-")), "gateway.yaml")
    writeFileSync(file, configText)
    return startGateway("gateway", file, via)
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
  it.scopedLive("npm start: the gateway serves /ready, /metrics and a live status page, and stops cleanly on a SIGTERM sent to npm", () =>
    Effect.gen(function*() {
      assert.isTrue(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (see .ci/run)`)
      const child = yield* startWithConfig(config, "npm")
      const url = yield* until("the endpoints' address in the log", 20, async () =>
        child.lines.find((l) => (l.annotations as Record<string, unknown> | undefined)?.http_url !== undefined)
          ?.annotations as { http_url: string } | undefined
      ).pipe(Effect.map((a) => a.http_url), Effect.tapError(() => Effect.sync(() => console.error(child.raw.join("\n")))))

      // right after start (strategies running, before the books are ready): every counter is there, at 0 until it moves
      yield* until("the gateway running", 20, async () => child.lines.find((l) => l.message === "gateway running"), child)
      const atStart = yield* Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text()))
      const absent = definedCounters.filter((n) =>
        !n.startsWith("meltica_nats_") && !n.startsWith("meltica_live_") && !n.startsWith("meltica_worker_") &&
        !atStart.includes(`# TYPE ${n}_total counter`)
      )
      assert.deepStrictEqual(absent, [], "counters absent right after start")
      assert.strictEqual(counter(atStart, "meltica_consumer_failures_total"), 0)
      assert.include(atStart, "# TYPE meltica_consumer_dispatch_to_lambda_seconds histogram")

      const health = yield* Effect.promise(() => fetch(`${url}/health`))
      assert.strictEqual(health.status, 200)
      assert.strictEqual(health.headers.get("x-frame-options"), "DENY")
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
      assert.isFalse(output.includes("ServeError"))
      const orderLines = child.lines.filter((l) => l.message === "order closed")
      assert.isAbove(orderLines.length, 0, "the paper trader's reports were logged")
      const annotations = orderLines[0]!.annotations as Record<string, unknown>
      assert.strictEqual(annotations.consumer_id, "paper-trader")
      assert.isString(annotations.trace_id)
    }), { timeout: 60_000 })

  it.scopedLive("check-config refuses a URL with credentials without printing them; a port in use stops the start with one line", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "meltica-e2e-"))
      const natsFile = join(dir, "nats.yaml")
      writeFileSync(natsFile, `bus: { type: nats, url: "nats://alice:s3cret@127.0.0.1:1", role: feed }\n`)
      const checked = yield* runMain(["check-config", "--config", natsFile])
      assert.strictEqual(checked.code, 1, checked.stdout)
      assert.include(checked.stderr, `bus.url: url must not hold credentials: give them in bus.auth, by file or environment variable (got "nats://***@127.0.0.1:1")`)
      assert.notInclude(checked.stdout + checked.stderr, "s3cret")

      const taken = yield* Effect.acquireRelease(
        Effect.async<ReturnType<typeof createServer>>((resume) => {
          const server = createServer()
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const address = taken.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const busyFile = join(dir, "busy.yaml")
      writeFileSync(busyFile, `http: { port: ${port} }\n`)
      const busy = yield* runMain(["--config", busyFile])
      assert.strictEqual(busy.code, 1)
      assert.strictEqual(
        busy.stderr.trim(),
        `cannot serve the operator endpoints: 127.0.0.1:${port} is already in use; ` +
          "set http.port (or MELTICA_HTTP_PORT) to a free port, 0 for any, or http.enabled: false"
      )
      assert.notInclude(busy.stdout + busy.stderr, "ServeError")
    }), { timeout: 60_000 })

  it.scopedLive("strategies from files: one whose start throws and one that does not load are named in the log, /ready and /status.json; the others run", () =>
    Effect.gen(function*() {
      const root = process.cwd()
      const child = yield* startWithConfig(`
http: { port: 0 }
statusIntervalMs: 1000
strategies:
  - module: ${join(root, "examples/crossVenue.ts")}
    options: { venues: [sim-a, sim-b], minEdgeBps: -10000, cooldownMs: 200 }
  - module: ${join(root, "test/strategy/fixtures/failingStart.ts")}
  - module: ${join(root, "test/strategy/fixtures/missing.ts")}
  - module: ${join(root, "test/strategy/fixtures/unnamed.ts")}
`)
      const url = yield* until("the endpoints' address in the log", 20, async () =>
        child.lines.find((l) => (l.annotations as Record<string, unknown> | undefined)?.http_url !== undefined)
          ?.annotations as { http_url: string } | undefined, child).pipe(Effect.map((a) => a.http_url))
      type Status = { strategies: Array<{ id: string; state: string; reason?: string }>; totals: { orders: number } }
      const status = yield* until("the cross-venue strategy to trade", 20, async () => {
        const s = (await fetch(`${url}/status.json`).then((r) => r.json())) as Status
        return s.totals.orders > 0 ? s : undefined
      }, child)
      const states = Object.fromEntries(status.strategies.map((s) => [s.id, s.state]))
      assert.deepStrictEqual(states, {
        "cross-venue": "running",
        "failing-start": "failed",
        [join(root, "test/strategy/fixtures/missing.ts")]: "failed",
        unnamed: "failed"
      })
      const ready = yield* Effect.promise(() => fetch(`${url}/ready`).then(async (r) => ({ status: r.status, body: (await r.json()) as { reasons: Array<string> } })))
      assert.strictEqual(ready.status, 503)
      assert.isTrue(ready.body.reasons.some((r) => r.startsWith("strategy failing-start: ") && r.includes("could not read its model")), ready.body.reasons.join("; "))
      assert.isTrue(ready.body.reasons.some((r) => r.startsWith(`strategy ${join(root, "test/strategy/fixtures/missing.ts")}: `)))
      const notStarted = child.lines.filter((l) => l.message === "strategy not started").map((l) => (l.annotations as Record<string, unknown>).strategy_id)
      assert.deepStrictEqual([...notStarted].sort(), ["failing-start", join(root, "test/strategy/fixtures/missing.ts"), "unnamed"].sort())
      const unnamed = child.lines.find((l) => (l.annotations as Record<string, unknown>).strategy_id === "unnamed")
      assert.strictEqual((unnamed?.annotations as Record<string, unknown>).module, join(root, "test/strategy/fixtures/unnamed.ts"), "named by its file")

      child.process.kill("SIGTERM")
      const code = yield* Deferred.await(child.exited).pipe(Effect.timeout("15 seconds"))
      assert.strictEqual(code, 0)
      assert.include(child.lines.map((l) => String(l.message)), "fibers left: 0")
    }), { timeout: 60_000 })

  it.scopedLive("the command line as a user meets it: plain help when piped, a mistyped flag gets one line naming the nearest", () =>
    Effect.gen(function*() {
      const help = yield* runMain(["--help"])
      assert.strictEqual(help.code, 0)
      assert.notInclude(help.stdout, "\u001b[", "no ANSI codes when not on a terminal")
      for (const flag of ["--config", "--debug", "--strategy", "--strategy-options"]) assert.include(help.stdout, flag)

      const typo = yield* runMain(["--stratgy", "x.ts"])
      assert.strictEqual(typo.code, 2)
      assert.strictEqual(typo.stderr.trim(), "meltica: unknown option --stratgy (did you mean --strategy?); see meltica --help")
      assert.strictEqual(typo.stdout, "")

      const badJson = yield* runMain(["--strategy", "x.ts", "--strategy-options", "{oops"])
      assert.strictEqual(badJson.code, 1)
      assert.include(badJson.stderr, "--strategy-options (x.ts): not JSON")
      assert.notInclude(badJson.stderr, "\n    at ")
    }), { timeout: 60_000 })
})
