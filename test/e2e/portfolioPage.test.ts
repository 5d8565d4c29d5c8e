/**
 * End to end: the status page's portfolio panels in headless Chromium, against
 * the real entry point as a child process running the cross-venue example:
 * its P&L per strategy, the accounts' positions and balances, and the kill
 * switch engaged over HTTP with the token from the gateway's environment.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { chromium } from "playwright-core"
import { startGateway, until } from "./support.js"

const CHROMIUM = "/usr/bin/chromium"
const TOKEN_ENV = "MELTICA_E2E_PORTFOLIO_KILL_SWITCH_TOKEN"
const TOKEN = "e2e-portfolio-token"

describe("e2e status page: portfolio", () => {
  it.scopedLive("shows the cross-venue strategy's P&L and positions, the balances, and the kill switch engaged over HTTP", () =>
    Effect.gen(function*() {
      assert.isTrue(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package`)
      const root = process.cwd()
      const file = join(mkdtempSync(join(tmpdir(), "meltica-e2e-")), "gateway.yaml")
      writeFileSync(file, `
http: { port: 0, killSwitchTokenEnv: ${TOKEN_ENV} }
statusIntervalMs: 1000
strategies:
  - module: ${join(root, "examples/crossVenue.ts")}
    options: { venues: [sim-a, sim-b], minEdgeBps: -10000, cooldownMs: 200 }
`)
      // the gateway's environment holds the token (the child inherits this process's)
      yield* Effect.acquireRelease(
        Effect.sync(() => (process.env[TOKEN_ENV] = TOKEN)),
        () => Effect.sync(() => delete process.env[TOKEN_ENV])
      )
      const child = yield* startGateway("gateway", file)
      const url = yield* until("the endpoints' address in the log", 20, async () =>
        child.lines.find((l) => (l.annotations as Record<string, unknown> | undefined)?.http_url !== undefined)
          ?.annotations as { http_url: string } | undefined, child).pipe(Effect.map((a) => a.http_url))

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
      const pageErrors: Array<string> = []
      page.on("pageerror", (e) => pageErrors.push(String(e)))
      yield* Effect.promise(() => page.goto(url))

      const cells = (table: string, key: string) =>
        page.locator(`#${table} tr[data-key="${key}"] td`).allInnerTexts()
      const figure = (text: string) => Number(text.replace(/,/g, ""))

      // P&L per strategy: the fees the round trips paid, and its positions on both venues
      const pnl = yield* until("the cross-venue strategy's P&L row with fees paid", 30, async () => {
        const row = await cells("strategy-pnl", "cross-venue")
        return row.length === 7 && figure(row[3]!) > 0 && row[6]!.includes("@sim-a") && row[6]!.includes("@sim-b") ? row : undefined
      }, child)
      for (const i of [1, 2, 3, 4]) assert.isFalse(Number.isNaN(figure(pnl[i]!)), `P&L figure ${i}: ${pnl[i]}`)
      // the account's positions, marked to each venue's mid
      const position = yield* until("sim-a's BTC-USDT position", 10, async () => {
        const row = await cells("positions", "sim-a BTC-USDT")
        return row.length === 7 && row[3] !== "-" ? row : undefined
      }, child)
      assert.isAbove(figure(position[3]!), 0, "a mark")
      const balance = yield* until("sim-b's USDT balance", 10, async () => {
        const row = await cells("balances", "sim-b USDT")
        return row.length === 4 ? row : undefined
      }, child)
      assert.isAbove(figure(balance[1]!), 0)
      assert.strictEqual(figure(balance[1]!), figure(balance[2]!) + figure(balance[3]!), "total = available + reserved")
      assert.strictEqual(yield* Effect.promise(() => page.locator("#kill-switch").innerText()), "off")

      // the kill switch over HTTP, with the token from the gateway's environment
      const refused = yield* Effect.promise(() => fetch(`${url}/kill-switch`, { method: "POST", body: JSON.stringify({ engage: true }) }))
      assert.strictEqual(refused.status, 401)
      const engaged = yield* Effect.promise(() =>
        fetch(`${url}/kill-switch`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ engage: true })
        })
      )
      assert.strictEqual(engaged.status, 200)
      yield* until("the page to show the kill switch engaged", 10, async () =>
        (await page.locator("#kill-switch").innerText()) === "engaged: whole gateway" ? true : undefined, child)
      // the strategy's next orders are refused: counted on the page
      yield* until("kill switch refusals counted", 10, async () => {
        const text = await page.locator("#risk-refused").innerText()
        const n = /kill_switch (\d+)/.exec(text)
        return n !== null && Number(n[1]) > 0 ? text : undefined
      }, child)
      assert.notInclude(child.raw.join("\n"), TOKEN, "the token is never logged")
      assert.deepStrictEqual(pageErrors, [])
    }), { timeout: 90_000 })
})
