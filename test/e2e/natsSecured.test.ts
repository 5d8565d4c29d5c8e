/**
 * End to end under least privilege: a nats-server run with the configuration
 * `meltica nats-config` generates, a feed and a strategy gateway process
 * (`src/main.ts`) each connecting as its own user with its password given by
 * reference. Everything the two do is within their permissions (no refusal
 * counted), the strategies trade, both are ready; when the feed is killed the
 * strategy process stops being ready, with the reason.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { deploymentRoles, passwordVariable, serverConfig } from "../../src/nats/Permissions.js"
import { natsServerWith } from "../nats/support/server.js"
import { endpointsUrl, type GatewayProcess as Gateway, startGateway, until } from "./support.js"
import { TS_NODE } from "../support/tsNode.js"

const WAIT_S = 90

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "meltica-nats-secured-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const httpUrl = (g: Gateway) => endpointsUrl(g, WAIT_S)

const sample = (text: string, name: string, tag = ""): number | undefined => {
  for (const line of text.split("\n")) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(tag)) {
      return Number(line.slice(line.lastIndexOf(" ") + 1))
    }
  }
  return undefined
}

/** `bin/meltica.ts <args>` to its end: exit code and everything printed. */
const runMain = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, [...TS_NODE, "bin/meltica.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (b: Buffer) => (output += b.toString()))
    child.stderr.on("data", (b: Buffer) => (output += b.toString()))
    child.on("exit", (code) => resolve({ code, output }))
  })

const readiness = (url: string) =>
  fetch(`${url}/ready`).then(async (r) => ({ status: r.status, body: (await r.json()) as { ready: boolean; reasons: Array<string> } }))

describe("e2e over NATS with authentication and per-role permissions", () => {
  it.scopedLive("feed and strategy processes as their own users: trading works, nothing refused, readiness follows the feed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const passwords = new Map([["feed", "feed-pw-1"], ["strategies", "strategies-pw-2"], ["operator", "op-pw-3"]])
      const env: Record<string, string> = {}
      for (const [user, pw] of passwords) {
        env[passwordVariable(user)] = pw
        writeFileSync(join(dir, `${user}.password`), pw)
      }
      const conf = join(dir, "server.conf")
      writeFileSync(conf, serverConfig(deploymentRoles(["bbo-follower", "paper-trader"])))
      const server = yield* natsServerWith({ args: ["-c", conf], env })

      const configFor = (role: "feed" | "strategy" | "operator", user: string) => `
http: { port: 0 }
statusIntervalMs: 1000
bus:
  type: nats
  url: "${server.url}"
  role: ${role}
  auth: { user: ${user}, password: { file: "${join(dir, `${user}.password`)}" } }
strategies:
  orders: { intervalMs: 200 }
`
      writeFileSync(join(dir, "feed.yaml"), configFor("feed", "feed"))
      writeFileSync(join(dir, "strategy.yaml"), configFor("strategy", "strategies"))
      const feed = yield* startGateway("feed", join(dir, "feed.yaml"))
      const strategy = yield* startGateway("strategy", join(dir, "strategy.yaml"))
      const [feedUrl, strategyUrl] = yield* Effect.all([httpUrl(feed), httpUrl(strategy)], { concurrency: 2 })

      for (const [g, url] of [[feed, feedUrl], [strategy, strategyUrl]] as const) {
        const ready = yield* until(`${g.name} ready`, WAIT_S, async () => {
          const r = await readiness(url)
          return r.status === 200 ? r.body : undefined
        }, g)
        assert.deepStrictEqual(ready, { ready: true, reasons: [] }, `${g.name} /ready`)
      }
      const metrics = yield* until("the paper trader's execution reports", WAIT_S, async () => {
        const text = await fetch(`${strategyUrl}/metrics`).then((r) => r.text())
        return (sample(text, "meltica_nats_critical_delivered_total", `kind="exec_report"`) ?? 0) >= 4 ? text : undefined
      }, strategy)
      assert.strictEqual(sample(metrics, "meltica_nats_feed_live", `provider="sim-a"`), 1)
      assert.strictEqual(sample(metrics, "meltica_ready"), 1)
      const feedMetrics = yield* Effect.promise(() => fetch(`${feedUrl}/metrics`).then((r) => r.text()))
      const refusals = (g: Gateway) =>
        g.lines.filter((l) => l.message === "nats refused for this user's permissions").map((l) =>
          JSON.stringify(l.annotations)
        )
      for (const [g, text] of [[feed, feedMetrics], [strategy, metrics]] as const) {
        const name = g.name
        assert.strictEqual(sample(text, "meltica_nats_permission_denied_total") ?? 0, 0, `${name}: nothing refused: ${refusals(g).join("; ")}`)
        assert.strictEqual(sample(text, "meltica_nats_commands_refused_total") ?? 0, 0, `${name}: no command refused`)
      }
      for (const g of [feed, strategy]) {
        assert.isFalse(g.raw.some((l) => l.includes("-pw-")), `${g.name}: no password in the output`)
      }

      // the operator flips the routing table (meltica route); an operator configuration runs no gateway
      writeFileSync(join(dir, "operator.yaml"), configFor("operator", "operator"))
      const versionBefore = sample(feedMetrics, "meltica_routing_version") ?? 0
      const routed = yield* Effect.promise(() => runMain(["route", "--config", join(dir, "operator.yaml")]))
      assert.strictEqual(routed.code, 0, routed.output)
      assert.include(routed.output, `routing version ${versionBefore + 1}`)
      assert.notInclude(routed.output, "op-pw-3")
      const asGateway = yield* Effect.promise(() => runMain(["run", "--config", join(dir, "operator.yaml")]))
      assert.strictEqual(asGateway.code, 1)
      assert.include(asGateway.output, "meltica route")

      // the feed dies: the strategy process tells the truth
      feed.process.kill("SIGKILL")
      yield* Deferred.await(feed.exited)
      const down = yield* until("the strategy not ready once the feed is gone", WAIT_S, async () => {
        const r = await readiness(strategyUrl)
        return r.status !== 200 ? r.body : undefined
      }, strategy)
      assert.isTrue(down.reasons.some((r) => r.startsWith("feed: no live feed for BTC-USDT")), down.reasons.join("; "))

      strategy.process.kill("SIGTERM")
      const code = yield* Deferred.await(strategy.exited).pipe(Effect.timeout("60 seconds"))
      assert.strictEqual(code, 0, strategy.raw.join("\n").slice(-2_000))
    }), { timeout: 240_000 })
})
