/**
 * The gateway as a user runs it, live on the Binance mock: `--live` and
 * `mode: live` turn the venue on, its request budget and link show in
 * `/metrics`, and none of its outputs (log lines, `/metrics`, `/status.json`)
 * holds the fake credentials it was given. Without `--live` the same
 * configuration trades on paper and says so.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Layer, Logger, Scope } from "effect"
import { SubmitOrder } from "../../../schema/Control.js"
import { decimal } from "../../../schema/Event.js"
import { parse } from "yaml"
import { validate } from "../../../src/Config.js"
import { liveSettings, makeLiveVenues } from "../../../src/execution/live/LiveExecution.js"
import { until as poll } from "../../e2e/support.js"
import { BinanceMock } from "./BinanceMock.js"
import { makeLayer, until } from "./harness.js"
import { TS_NODE } from "../../support/tsNode.js"

const KEY = "GATEWAY-FAKE-KEY-3c9a71d0e5"
const SECRET = "GATEWAY-FAKE-SECRET-8e2b64f1a7"

const configText = (mock: BinanceMock, secretFile: string) => `
http: { port: 0 }
statusIntervalMs: 1000
venues:
  - { type: simulated, name: sim-a, symbols: [BTC-USDT] }
  - { type: binance, symbols: [BTC-USDT], wsUrl: "ws://127.0.0.1:1", restUrl: "http://127.0.0.1:1" }
merges: []
strategies: { bbo: { enabled: false }, orders: { enabled: false } }
live:
  venues:
    binance:
      mode: live
      testnet: false
      restUrl: "${mock.restUrl}"
      wsUrl: "${mock.wsUrl}"
      apiKey: { env: MELTICA_GW_BINANCE_KEY }
      secret: { file: "${secretFile}" }
`

const startGateway = (file: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [...TS_NODE, "bin/meltica.ts", "--config", file, ...args], {
        cwd: process.cwd(),
        env: { ...process.env, MELTICA_GW_BINANCE_KEY: KEY },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const out: Array<string> = []
      child.stdout!.on("data", (c: Buffer) => out.push(c.toString()))
      child.stderr!.on("data", (c: Buffer) => out.push(c.toString()))
      return { child, out }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  )

describe("the gateway, live on the Binance mock", () => {
  it.scopedLive("--live with mode: live: the venue trades live, /metrics shows its budget, no output holds a key", () =>
    Effect.gen(function*() {
      const mock = new BinanceMock({ apiKey: KEY, hmacSecret: SECRET, now: () => Date.now() })
      yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
      const dir = mkdtempSync(join(tmpdir(), "meltica-gw-live-"))
      const secretFile = join(dir, "binance.secret")
      writeFileSync(secretFile, `${SECRET}\n`)
      chmodSync(secretFile, 0o600)
      const file = join(dir, "live.yaml")
      writeFileSync(file, configText(mock, secretFile))
      const g = yield* startGateway(file, ["--live"])
      const url = yield* poll("the endpoints' address", 30, async () => {
        const m = /"http_url":"(http:\/\/[^"]+)"/.exec(g.out.join(""))
        return m?.[1]
      })
      yield* poll("the private stream subscribed", 30, async () => (mock.streamSubscribers >= 1 ? true : undefined))
      const metrics = yield* poll("the live venue's budget in /metrics", 30, async () => {
        const text = await fetch(`${url}/metrics`).then((r) => r.text())
        return text.includes("meltica_live_rate_budget_limit") && text.includes("meltica_live_connected{venue=\"binance\"} 1") ? text : undefined
      })
      assert.match(metrics, /meltica_live_rate_budget_limit\{[^}]*bucket="REQUEST_WEIGHT"[^}]*\} 6000/)
      const status = yield* Effect.promise(() => fetch(`${url}/status.json`).then((r) => r.text()))
      const log = g.out.join("")
      assert.include(log, "LIVE TRADING")
      for (const [name, text] of [["log", log], ["/metrics", metrics], ["/status.json", status]] as const) {
        assert.notInclude(text, KEY, name)
        assert.notInclude(text, SECRET, name)
      }
      // the venue saw our signed requests (signatures checked by the mock), never a key in a URL
      assert.isTrue(mock.requests.some((r) => r.path === "/api/v3/openOrders"))
      for (const r of mock.requests) assert.notInclude(r.query, KEY)
    }), { timeout: 90_000 })

  it.scoped("without --live a venue in mode: live trades on paper, and a warning says so", () =>
    Effect.gen(function*() {
      const decoded = validate(parse(`
venues:
  - { type: binance, symbols: [BTC-USDT] }
merges: []
strategies: { bbo: { enabled: false }, orders: { enabled: false } }
live: { venues: { binance: { mode: live, apiKey: { env: NOT_READ }, secret: { env: NOT_READ_EITHER } } } }
`), "test")
      assert.isTrue(decoded._tag === "Right")
      if (decoded._tag !== "Right") return
      const logs: Array<string> = []
      const scope = yield* Scope.make()
      const venues = yield* makeLiveVenues(liveSettings(decoded.right, false)).pipe(
        Scope.extend(scope),
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message)))))
      )
      assert.strictEqual(venues.length, 0)
      assert.isTrue(logs.some((l) => l.includes("without --live")))
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.provide(makeLayer().pipe(Layer.orDie))))

  it.scoped("cancelAllOnShutdown: closing the gateway's scope cancels the live venue's open orders", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const mock = new BinanceMock({ apiKey: KEY, hmacSecret: SECRET, now: () => clock.unsafeCurrentTimeMillis() })
      yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
      const decoded = validate(parse(`
venues:
  - { type: binance, symbols: [BTC-USDT] }
merges: []
strategies: { bbo: { enabled: false }, orders: { enabled: false } }
live: { venues: { binance: { mode: live, restUrl: "${mock.restUrl}", wsUrl: "${mock.wsUrl}", apiKey: { env: K }, secret: { env: S } } } }
`), "test")
      if (decoded._tag !== "Right") return assert.fail("config")
      const scope = yield* Scope.make()
      const settings = { ...liveSettings(decoded.right, true), env: { K: KEY, S: SECRET } }
      const [venue] = yield* makeLiveVenues(settings).pipe(Scope.extend(scope))
      assert.isDefined(venue)
      yield* venue!.submit(SubmitOrder.make({
        commandId: "c1",
        consumerId: "s",
        clientOrderId: "shutdown-1",
        symbol: "BTC-USDT",
        venue: "binance",
        side: "buy",
        orderType: "limit",
        quantity: decimal("0.5"),
        price: decimal("90.00")
      }))
      assert.strictEqual(mock.orders.get("shutdown-1")!.status, "NEW")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(mock.orders.get("shutdown-1")!.status, "CANCELED")
      // nothing of the venue outlives its scope: its private stream is closed
      yield* until(() => mock.streamConnections === 0, "the private stream to close")
    }).pipe(Effect.provide(makeLayer())))
})
