/**
 * Soak: the whole gateway, as `npm start` ships it, through at least a million
 * events, with its memory sampled as it runs (SC-002), then the pool's
 * utilization at 1,000 events/s to 10 subscribers (SC-003).
 *
 * Phase 1 runs `src/main.ts` as a child process on a configuration that turns
 * the three simulated venues up (both example strategies trading). Every
 * couple of seconds it has the child collect its garbage (through the V8
 * inspector the child opens on loopback: `HeapProfiler.collectGarbage`, then
 * `Runtime.getHeapUsage`), so the heap figure is what is live, not what the
 * collector has yet to reclaim; it reads `/status.json` (events, pools) and the
 * process's resident set from `/proc`, stops the child with SIGTERM once the
 * events are in, and reads its leak report. The growth slope is a
 * least-squares fit of live heap and RSS against events over the run after
 * warm-up (the first fifth).
 *
 * Phase 2 runs the gateway's own in-memory layers in this process with one
 * simulated venue at about 1,000 events/s and ten subscribers to every stream,
 * and reports the highest pool utilization seen.
 *
 *   npm run bench:soak [-- --events 1000000 --port 19464 --json]
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Logger, LogLevel } from "effect"
import { layerMemory } from "../layers/Memory.js"
import { BboStrategyConfig, GatewayConfig, OrdersStrategyConfig, StrategiesSection } from "../schema/Config.js"
import { SimulatedVenueConfig } from "../schema/ProviderConfig.js"
import { layerOn, memoryOptions } from "../layers/Application.js"
import * as Gateway from "../src/Gateway.js"
import * as Strategy from "../src/strategy/index.js"
import { Pool } from "../src/Pool.js"
import { Providers } from "../src/Provider.js"
import WebSocket from "ws"
import { arg, emitJson, machine, table } from "./internal/report.js"

const targetEvents = arg("--events", 1_000_000)
const port = arg("--port", 19_464)
const inspectorPort = arg("--inspector-port", 19_229)
const sampleMs = 2_000

const symbols = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
const soakConfig = {
  venues: ["sim-a", "sim-b", "sim-c"].map((name, i) => ({
    type: "simulated",
    name,
    symbols,
    seed: i + 1,
    tradesPerSecond: 250,
    tickersPerSecond: 250,
    deltasPerSecond: 400
  })),
  strategies: { orders: { intervalMs: 100 } },
  // the paper venue's closed-order memory reaches its bound within the run (the default, 10,000, takes about 17 minutes
  // of orders at ten a second): what is measured after that is the steady state
  paper: { retainClosed: 500 },
  http: { port }
}

interface Sample {
  readonly atMs: number
  readonly events: number
  readonly deliveries: number
  readonly heapUsed: number
  readonly rss: number
  readonly poolUtilization: number
}

const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m === null ? Number.NaN : Number(m[1]) * 1024
}

interface StatusJson {
  readonly totals: { readonly eventsIn: number; readonly deliveries: number }
  readonly pools: ReadonlyArray<{ readonly utilization: number }>
}

const status = async (): Promise<StatusJson | undefined> => {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/status.json`)
    return r.ok ? ((await r.json()) as StatusJson) : undefined
  } catch {
    return undefined
  }
}

/** Least-squares slope of y against x. */
const slope = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>): number => {
  const n = xs.length
  if (n < 2) return Number.NaN
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my)
    den += (xs[i]! - mx) ** 2
  }
  return den === 0 ? Number.NaN : num / den
}

/** A Chrome DevTools Protocol session with the child's V8 inspector. */
const inspector = async () => {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as ReadonlyArray<
    { readonly webSocketDebuggerUrl: string }
  >
  const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl)
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve())
    socket.once("error", reject)
  })
  const pending = new Map<number, (result: unknown) => void>()
  socket.on("message", (data: Buffer) => {
    const m = JSON.parse(data.toString()) as { readonly id?: number; readonly result?: unknown }
    if (m.id !== undefined) pending.get(m.id)?.(m.result)
  })
  let next = 0
  const call = (method: string): Promise<unknown> =>
    new Promise((resolve) => {
      const id = ++next
      pending.set(id, resolve)
      socket.send(JSON.stringify({ id, method }))
    })
  return {
    /** The live heap: collected first. */
    liveHeap: async (): Promise<number> => {
      await call("HeapProfiler.collectGarbage")
      return ((await call("Runtime.getHeapUsage")) as { readonly usedSize: number }).usedSize
    },
    close: () => socket.close()
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const waitExit = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.on("exit", (code) => resolve(code))
  })

const soakGateway = async () => {
  const dir = mkdtempSync(join(tmpdir(), "meltica-soak-"))
  const file = join(dir, "soak.json")
  writeFileSync(file, JSON.stringify(soakConfig))
  const child = spawn(process.execPath, [`--inspect=127.0.0.1:${inspectorPort}`, "--max-semi-space-size=32", "--import", "./bin/register.mjs", "bin/meltica.ts", "run", "--config", file], {
    cwd: process.cwd(),
    stdio: ["ignore", "pipe", "pipe"]
  })
  const out: Array<string> = []
  child.stdout!.on("data", (c: Buffer) => out.push(c.toString()))
  child.stderr!.on("data", (c: Buffer) => out.push(c.toString()))
  const samples: Array<Sample> = []
  const started = Date.now()
  let v8: Awaited<ReturnType<typeof inspector>> | undefined
  try {
    for (;;) {
      await delay(sampleMs)
      if (child.exitCode !== null) throw new Error(`the gateway exited early:\n${out.join("").slice(-3_000)}`)
      const s = await status()
      if (s === undefined) continue
      v8 ??= await inspector()
      const heapUsed = await v8.liveHeap()
      samples.push({
        atMs: Date.now() - started,
        events: s.totals.eventsIn,
        deliveries: s.totals.deliveries,
        heapUsed,
        rss: rssOf(child.pid!),
        poolUtilization: Math.max(...s.pools.map((p) => p.utilization))
      })
      const last = samples[samples.length - 1]!
      if (!process.argv.includes("--json")) {
        process.stdout.write(
          `\r${last.events.toLocaleString("en-US")} events, heap ${(last.heapUsed / 2 ** 20).toFixed(1)} MiB, rss ${
            (last.rss / 2 ** 20).toFixed(1)
          } MiB   `
        )
      }
      if (last.events >= targetEvents) break
    }
  } finally {
    v8?.close()
    child.kill("SIGTERM")
  }
  const code = await waitExit(child)
  rmSync(dir, { recursive: true, force: true })
  const log = out.join("")
  const leak = /"outstanding":\s*(\d+)/.exec(log)
  const fibers = /"fibers_left":\s*(\d+)/.exec(log)
  const steady = samples.slice(Math.floor(samples.length / 5))
  const xs = steady.map((s) => s.events / 1e6)
  const last = samples[samples.length - 1]!
  return {
    events: last.events,
    deliveries: last.deliveries,
    seconds: last.atMs / 1_000,
    eventsPerSec: last.events / (last.atMs / 1_000),
    heapSlopeBytesPerMillion: slope(xs, steady.map((s) => s.heapUsed)),
    rssSlopeBytesPerMillion: slope(xs, steady.map((s) => s.rss)),
    heapFirstMiB: steady[0]!.heapUsed / 2 ** 20,
    heapLastMiB: last.heapUsed / 2 ** 20,
    rssFirstMiB: steady[0]!.rss / 2 ** 20,
    rssLastMiB: last.rss / 2 ** 20,
    maxPoolUtilization: Math.max(...samples.map((s) => s.poolUtilization)),
    exitCode: code,
    leakOutstanding: leak === null ? Number.NaN : Number(leak[1]),
    fibersLeft: fibers === null ? Number.NaN : Number(fibers[1])
  }
}

/** SC-003: one venue at about 1,000 events/s and ten strategies subscribed to all of it, on the gateway's own program. */
const utilizationAt1k = (seconds: number) =>
  Effect.gen(function*() {
    const config = GatewayConfig.make({
          venues: [SimulatedVenueConfig.make({
            name: "sim-a",
            symbols: ["BTC-USDT"],
            tradesPerSecond: 300,
            tickersPerSecond: 300,
            deltasPerSecond: 400
          })],
          merges: [],
          strategies: StrategiesSection.make({
            bbo: BboStrategyConfig.make({ enabled: false }),
            orders: OrdersStrategyConfig.make({ enabled: false })
          }),
          statusIntervalMs: 3_600_000
        })
    const strategies = Array.from({ length: 10 }, (_, i) => ({
      strategy: Strategy.define({
        id: `soak-${i}`,
        start: (ctx) => ctx.subscribe("BTC-USDT", ["trade", "ticker", "book_snapshot", "book_delta"])
      })
    }))
    return yield* Effect.gen(function*() {
      const pool = yield* Pool
      const providers = yield* Providers
      yield* Effect.forkScoped(Gateway.run(config, { strategies }))
      const before = providers.reduce((n, p) => n + p.stats().events, 0)
      yield* Effect.sleep(`${seconds} seconds`)
      const events = providers.reduce((n, p) => n + p.stats().events, 0) - before
      // the pools' own high-water marks: every acquisition counts, not only those a sample happens to see
      const stats = Object.values(pool.stats())
      const maxUtilization = Math.max(...stats.map((s) => s.peakUtilization))
      const maxOutstanding = Math.max(...stats.map((s) => s.peakOutstanding))
      return { maxUtilization, maxOutstanding, eventsPerSec: events / seconds }
    }).pipe(Effect.provide(layerOn(config, layerMemory(memoryOptions(config)))), Effect.scoped)
  })

const main = async () => {
  const g = await soakGateway()
  if (!process.argv.includes("--json")) process.stdout.write("\n")
  const sc003 = await Effect.runPromise(utilizationAt1k(20).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
  table(`Soak: the shipped gateway through ${g.events.toLocaleString("en-US")} events (${machine()})`, ["figure", "value"], [
    ["events in", g.events],
    ["deliveries", g.deliveries],
    ["seconds", g.seconds],
    ["events/s", g.eventsPerSec],
    ["live heap after warm-up, MiB", g.heapFirstMiB],
    ["live heap at the end, MiB", g.heapLastMiB],
    ["live heap slope, KiB per 1M events", g.heapSlopeBytesPerMillion / 1024],
    ["RSS after warm-up, MiB", g.rssFirstMiB],
    ["RSS at the end, MiB", g.rssLastMiB],
    ["RSS slope, KiB per 1M events", g.rssSlopeBytesPerMillion / 1024],
    ["highest pool utilization", g.maxPoolUtilization],
    ["exit code after SIGTERM", String(g.exitCode)],
    ["leak report: outstanding objects", g.leakOutstanding],
    ["fibers left", g.fibersLeft]
  ])
  table("SC-003: pool utilization at ~1,000 events/s x 10 subscribers (in-memory layers)", ["figure", "value"], [
    ["events/s", sc003.eventsPerSec],
    ["peak utilization (most outstanding / capacity)", sc003.maxUtilization],
    ["most objects outstanding at once", sc003.maxOutstanding],
    ["under 80%", sc003.maxUtilization < 0.8 ? "yes" : "no"]
  ])
  emitJson({ soak: g, sc003 })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
