/**
 * End to end over NATS: two real gateway processes (`src/main.ts`), one with
 * `role: feed` and one with `role: strategy`, against a `nats-server` started
 * here. The strategy process's example strategies get market data and
 * execution reports from the feed; both serve their operator endpoints and
 * stop cleanly on SIGTERM.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import type { StatusSnapshot } from "../../src/Status.js"
import { natsServer } from "../nats/support/server.js"
import { endpointsUrl, type GatewayProcess as Gateway, startGateway, until } from "./support.js"

/**
 * How long a condition is polled for, in seconds: generous, because two
 * gateway processes start slowly on a loaded machine (for example beside two
 * CPU hogs); the bound only ends a broken run.
 */
const WAIT_S = 90

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "meltica-nats-e2e-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const httpUrl = (g: Gateway) => endpointsUrl(g, WAIT_S)

/** The value of every sample of a counter, summed over its tags (or those matching `tag`). */
const counter = (text: string, name: string, tag = ""): number => {
  let sum = 0
  for (const line of text.split("\n")) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(tag)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1))
    }
  }
  return sum
}

const get = (url: string) => Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, text: await r.text() })))

const configFor = (url: string, role: "feed" | "strategy") => `
http: { port: 0 }
statusIntervalMs: 1000
bus: { type: nats, url: "${url}", role: ${role} }
strategies:
  orders: { intervalMs: 200 }
`

/** The SIGTERM, then exit 0, the drain, a clean leak report and no fiber left. */
const stopsCleanly = (g: Gateway) =>
  Effect.gen(function*() {
    g.process.kill("SIGTERM")
    const code = yield* Deferred.await(g.exited).pipe(Effect.timeout("60 seconds"))
    const output = g.raw.join("\n").slice(-2_000)
    assert.strictEqual(code, 0, `${g.name} exit code\n${output}`)
    const messages = g.lines.map((l) => String(l.message))
    assert.include(messages, "critical lanes drained", g.name)
    assert.include(messages, "leak report: 0 outstanding pooled object(s) (Event 0, MergedEvent 0, ExecReport 0)", g.name)
    assert.include(messages, "fibers left: 0", g.name)
    assert.isFalse(messages.some((m) => /^leak report: [1-9]/.test(m)), `${g.name}: a leak report with outstanding objects`)
  })

describe("e2e over NATS", () => {
  it.scopedLive("a feed and a strategy gateway process: market data and execution reports flow, both ready, both stop cleanly", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const dir = yield* tempDir
      const feedFile = join(dir, "feed.yaml")
      const strategyFile = join(dir, "strategy.yaml")
      writeFileSync(feedFile, configFor(server.url, "feed"))
      writeFileSync(strategyFile, configFor(server.url, "strategy"))

      const [feed, strategy] = yield* Effect.all([startGateway("feed", feedFile), startGateway("strategy", strategyFile)])
      const [feedUrl, strategyUrl] = yield* Effect.all([httpUrl(feed), httpUrl(strategy)], { concurrency: 2 })

      for (const [g, url] of [[feed, feedUrl], [strategy, strategyUrl]] as const) {
        assert.strictEqual((yield* get(`${url}/health`)).status, 200, `${g.name} /health`)
        const ready = yield* until(`${g.name} /ready`, WAIT_S, async () => {
          const r = await fetch(`${url}/ready`)
          return r.status === 200 ? ((await r.json()) as { ready: boolean; reasons: Array<string> }) : undefined
        }, g)
        assert.deepStrictEqual(ready, { ready: true, reasons: [] }, `${g.name} /ready`)
      }

      // the strategy process's example strategies: merged quotes (BBO follower), tickers and
      // execution reports (paper trader), all from the feed over NATS
      const status = yield* until("the strategy's strategies to receive market data and execution reports", WAIT_S, async () => {
        const s = (await fetch(`${strategyUrl}/status.json`).then((r) => r.json())) as StatusSnapshot
        const market = (id: string) => {
          const c = s.consumers.find((c) => c.id === id)
          return c === undefined ? 0 : c.processed - c.criticalProcessed
        }
        return market("bbo-follower") >= 5 && market("paper-trader") >= 5 &&
            (s.nats?.critical.delivered["exec_report"] ?? 0) >= 4
          ? s
          : undefined
      }, strategy)
      assert.deepStrictEqual(status.consumers.map((c) => c.id).sort(), ["bbo-follower", "paper-trader"])
      assert.deepStrictEqual(status.providers, [], "no providers in the strategy process")
      assert.isTrue(status.nats?.connected)
      assert.isAbove(status.nats?.market.received ?? 0, 0)
      assert.isAbove(status.nats?.commands.submitted ?? 0, 0)
      assert.isAbove(status.consumers.find((c) => c.id === "paper-trader")!.criticalProcessed, 0)

      const strategyMetrics = (yield* get(`${strategyUrl}/metrics`)).text
      assert.isAbove(counter(strategyMetrics, "meltica_nats_critical_delivered_total", `kind="exec_report"`), 0)
      assert.isAbove(counter(strategyMetrics, "meltica_nats_market_received_total"), 0)
      assert.isAbove(counter(strategyMetrics, "meltica_consumer_processed_total", `consumer="bbo-follower"`), 0)
      assert.strictEqual(counter(strategyMetrics, "meltica_nats_connected"), 1)

      const feedMetrics = (yield* get(`${feedUrl}/metrics`)).text
      assert.isAbove(counter(feedMetrics, "meltica_nats_market_published_total"), 0)
      assert.isAbove(counter(feedMetrics, "meltica_nats_commands_handled_total"), 0)
      assert.isAbove(counter(feedMetrics, "meltica_venue_exec_reports_total"), 0)
      assert.isAbove(counter(feedMetrics, "meltica_merge_windows_merged_total"), 0)
      const feedStatus = JSON.parse((yield* get(`${feedUrl}/status.json`)).text) as StatusSnapshot
      assert.deepStrictEqual(feedStatus.consumers.map((c) => c.id), ["gateway"], "no strategy runs in the feed")

      const closed = strategy.lines.filter((l) => l.message === "order closed")
      assert.isAbove(closed.length, 0, "the paper trader logged its closed orders")
      assert.strictEqual((closed[0]!.annotations as Record<string, unknown>).consumer_id, "paper-trader")

      yield* stopsCleanly(strategy)
      yield* stopsCleanly(feed)
    }), { timeout: 240_000 })
})
