/**
 * The `live` configuration section: modes, venues, credentials by reference,
 * and `meltica check-config` on a live configuration (run as a user runs it,
 * with known fake keys that must never be printed).
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { parse } from "yaml"
import { validate } from "../../../src/Config.js"
import { liveConfigIssues } from "../../../src/execution/live/LiveExecution.js"
import { TS_NODE } from "../../support/tsNode.js"

const KEY = "FAKE-live-api-key-7b1f0c2e9d"
const SECRET = "FAKE-live-secret-5a4e3d2c1b"
const PASSPHRASE = "FAKE-live-passphrase-0x9y8z"

const base = (live: string) => `venues:
  - { type: binance, symbols: [BTC-USDT], wsUrl: "ws://127.0.0.1:1", restUrl: "http://127.0.0.1:1" }
  - { type: okx, symbols: [BTC-USDT], wsUrl: "ws://127.0.0.1:1", restUrl: "http://127.0.0.1:1" }
  - { type: simulated, name: sim, symbols: [BTC-USDT] }
merges: []
strategies: { bbo: { enabled: false }, orders: { enabled: false } }
live:
  venues:
${live}
`

const decoded = (text: string) => validate(parse(text), "test")
const issuesOf = (text: string) => {
  const r = decoded(text)
  return Either.isLeft(r) ? r.left.issues.map((i) => `${i.path}: ${i.message}`) : []
}

const cli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ readonly code: number | null; readonly out: string }>((resume) => {
    const child = spawn(process.execPath, [...TS_NODE, "bin/meltica.ts", ...args], {
      cwd: process.cwd(),
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, out })))
    return Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  })

describe("live configuration", () => {
  it("modes and venues are checked: an unknown mode, an unknown venue, a simulated venue", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["    binance: { mode: yolo }", `live.venues.binance.mode: mode must be paper or live (got "yolo")`],
      ["    kraken: { mode: live }", `live.venues.kraken: unknown venue "kraken" (configured: binance, okx, sim)`],
      ["    sim: { mode: live }", `live.venues.sim: venue "sim" is simulated: it trades on paper only`],
      ["    binance: { mode: live, apiKey: \"inline-key\" }", "live.venues.binance.apiKey"]
    ]
    for (const [live, expected] of table) {
      const got = issuesOf(base(live))
      assert.isTrue(got.some((g) => g.startsWith(expected)), `${live}: ${got.join(" | ")}`)
      assert.notInclude(got.join("\n"), "inline-key")
    }
    const ok = decoded(base("    binance: { mode: paper }"))
    assert.isTrue(Either.isRight(ok) && ok.right.live.venues.binance!.testnet, "testnet by default")
  })

  it("every missing or unreadable credential is listed by name, never by value", () => {
    const dir = mkdtempSync(join(tmpdir(), "meltica-live-"))
    const open = join(dir, "okx.secret")
    writeFileSync(open, SECRET)
    chmodSync(open, 0o644)
    const config = decoded(base(`    binance: { mode: live, apiKey: { env: MELTICA_T_BINANCE_KEY } }
    okx: { mode: live, apiKey: { env: MELTICA_T_OKX_KEY }, secret: { file: "${open}" }, passphrase: { env: MELTICA_T_OKX_PASS } }`))
    assert.isTrue(Either.isRight(config))
    if (Either.isLeft(config)) return
    const issues = liveConfigIssues(config.right, { MELTICA_T_OKX_KEY: KEY }).map((i) => `${i.path}: ${i.message}`)
    assert.deepStrictEqual(issues, [
      "live.venues.binance.apiKey: env MELTICA_T_BINANCE_KEY: the environment variable is not set",
      "live.venues.binance.secret|privateKey: missing: secret or privateKey ({ env: NAME } or { file: path })",
      `live.venues.okx.secret: file ${open}: its mode 0644 lets others read it: chmod 600 it`,
      "live.venues.okx.passphrase: env MELTICA_T_OKX_PASS: the environment variable is not set"
    ])
    assert.notInclude(issues.join("\n"), KEY)
    assert.notInclude(issues.join("\n"), SECRET)
  })

  it.live("meltica check-config on a live configuration: problems listed, then OK; no key printed", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "meltica-live-cli-"))
      const secretFile = join(dir, "okx.secret")
      writeFileSync(secretFile, `${SECRET}\n`)
      chmodSync(secretFile, 0o600)
      const file = join(dir, "live.yaml")
      writeFileSync(file, base(`    binance: { mode: live, apiKey: { env: MELTICA_T_BINANCE_KEY }, secret: { env: MELTICA_T_BINANCE_SECRET } }
    okx: { mode: live, testnet: false, dryRun: true, apiKey: { env: MELTICA_T_OKX_KEY }, secret: { file: "${secretFile}" }, passphrase: { env: MELTICA_T_OKX_PASS } }`))
      const missing = yield* cli(["check-config", "--config", file], { MELTICA_T_OKX_KEY: KEY, MELTICA_T_OKX_PASS: PASSPHRASE })
      assert.strictEqual(missing.code, 1, missing.out)
      assert.include(missing.out, "live.venues.binance.apiKey: env MELTICA_T_BINANCE_KEY: the environment variable is not set")
      assert.include(missing.out, "live.venues.binance.secret: env MELTICA_T_BINANCE_SECRET: the environment variable is not set")
      const ok = yield* cli(["check-config", "--config", file], {
        MELTICA_T_BINANCE_KEY: KEY,
        MELTICA_T_BINANCE_SECRET: SECRET,
        MELTICA_T_OKX_KEY: KEY,
        MELTICA_T_OKX_PASS: PASSPHRASE
      })
      assert.strictEqual(ok.code, 0, ok.out)
      assert.include(ok.out, "binance (binance): mode live (with --live), testnet")
      assert.include(ok.out, "okx (okx): mode live (with --live), production, dry-run")
      for (const out of [missing.out, ok.out]) {
        for (const secret of [KEY, SECRET, PASSPHRASE]) assert.notInclude(out, secret)
      }
    }), { timeout: 60_000 })
})
