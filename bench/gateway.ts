/**
 * The gateway's own latency: the whole running gateway (the shipped program
 * and layers, the shipped scheduler), its three simulated venues turned up to
 * each rate in turn, the default merges, the paper venue with the shipped
 * orders strategy trading on it, and ten strategies subscribed to every
 * venue's trades, tickers and book deltas and to the merged tickers.
 *
 * Per rate, from the gateway's own per-consumer histograms (about 2,000 events
 * a second are timed, every event below that rate, as the gateway ships):
 * dispatch-to-lambda and ingest-to-lambda
 * (the venue adapter's ingest to the lambda's start), p50/p99/p99.9/max, the
 * worst of the ten strategies at each quantile. Besides, with no coordinated
 * omission: one strategy records every trade and ticker it receives, and its
 * latency is taken from the event's intended send time (the generator tick in
 * which the venue was due to send it, from the configured rate and the
 * event's sequence number), so a venue or a gateway that falls behind shows
 * it as latency instead of sending less. CPU time and RSS of the process, and
 * a CPU profile's top self-time functions (`node:inspector`).
 *
 *   npm run bench:gateway [-- --json] [-- --rates 10000,50000,100000] [-- --seconds 10]
 *                         [-- --scheduler shipped|default] [-- --top 12]
 *   npm run bench:gateway -- --demo [-- --seconds 60]   (the demo configuration, per strategy)
 */
import { Clock, Effect, Logger, LogLevel, Scheduler } from "effect"
import { Session } from "node:inspector/promises"
import { configuredStrategies, layerOn, memoryOptions } from "../layers/Application.js"
import { layerMemory } from "../layers/Memory.js"
import {
  BboStrategyConfig,
  GatewayConfig,
  OrdersStrategyConfig,
  StrategiesSection
} from "../schema/Config.js"
import { SimulatedVenueConfig } from "../schema/ProviderConfig.js"
import { Consumers } from "../src/Consumer.js"
import * as Gateway from "../src/Gateway.js"
import { Histogram, type LatencySummary } from "../src/internal/histogram.js"
import { gatewayScheduler } from "../src/internal/scheduler.js"
import { Providers } from "../src/Provider.js"
import * as Strategy from "../src/strategy/index.js"
import { arg, emitJson, machine, table } from "./internal/report.js"

const option = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? fallback : fallback
}

const RATES = option("--rates", "10000,50000,100000").split(",").map(Number)
const SECONDS = arg("--seconds", 10)
const WARMUP_S = Math.min(2, SECONDS / 4)
const TOP = arg("--top", 12)
const SCHEDULER = option("--scheduler", "shipped")
const STRATEGIES = 10
const TICK_MS = 10
const VENUES = ["sim-a", "sim-b", "sim-c"]
const SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]

/** Per venue and symbol, per second: trades and tickers 30% each, book deltas 40% of the total rate. */
const split = (rate: number) => {
  const per = rate / (VENUES.length * SYMBOLS.length)
  return { trades: per * 0.3, tickers: per * 0.3, deltas: per * 0.4 }
}

const configAt = (rate: number) => {
  const r = split(rate)
  return GatewayConfig.make({
    venues: VENUES.map((name, i) =>
      SimulatedVenueConfig.make({
        name,
        symbols: SYMBOLS as [string, ...Array<string>],
        seed: i + 1,
        tradesPerSecond: r.trades,
        tickersPerSecond: r.tickers,
        deltasPerSecond: r.deltas,
        tickMs: TICK_MS
      })
    ),
    strategies: StrategiesSection.make({
      bbo: BboStrategyConfig.make({ enabled: false }),
      orders: OrdersStrategyConfig.make({ intervalMs: 100 })
    }),
    // the orders strategy is started as the shipped gateway starts it (below)
    statusIntervalMs: 3_600_000
  })
}

/** Epoch microseconds on the clock the venue adapters stamp `ingestTs` with. */
const clock = Clock.make()
const epochUs = () => Number(clock.unsafeCurrentTimeNanos() / 1000n)

/** Every trade and ticker one strategy received: stream, sequence, ingest and lambda-start times. */
class Probe {
  private size = 0
  private stream = new Uint8Array(1 << 16)
  private seq = new Float64Array(1 << 16)
  private ingest = new Float64Array(1 << 16)
  private at = new Float64Array(1 << 16)
  private readonly streams = new Map<string, number>()
  recording = false

  record(provider: string, symbol: string, kind: string, seq: number, ingestTs: number): void {
    if (!this.recording) return
    const key = `${provider}|${symbol}|${kind}`
    let s = this.streams.get(key)
    if (s === undefined) this.streams.set(key, s = this.streams.size)
    if (this.size === this.seq.length) this.grow()
    this.stream[this.size] = s
    this.seq[this.size] = seq
    this.ingest[this.size] = ingestTs
    this.at[this.size] = epochUs()
    this.size++
  }

  private grow(): void {
    const n = this.seq.length * 2
    const f = (a: Float64Array) => {
      const b = new Float64Array(n)
      b.set(a)
      return b
    }
    const s = new Uint8Array(n)
    s.set(this.stream)
    this.stream = s
    this.seq = f(this.seq)
    this.ingest = f(this.ingest)
    this.at = f(this.at)
  }

  /**
   * Latency from the intended send time. Event `seq` of a stream at `perSecond`
   * is due in generator tick k = ceil(seq / (perSecond * tick)); the tick's
   * intended time is T0 + k * tick, where T0 (the generator's start) is the
   * earliest `ingestTs - k * tick` seen on the stream: the tick that was least
   * late. Also the ingest-to-lambda latency of the same events, for contrast.
   */
  result(perSecond: number): { readonly fromIntended: Histogram; readonly fromIngest: Histogram; readonly events: number } {
    const tickUs = TICK_MS * 1000
    const perTick = perSecond * (TICK_MS / 1000)
    const t0 = new Float64Array(this.streams.size).fill(Infinity)
    const tick = (i: number) => Math.ceil(this.seq[i]! / perTick - 1e-9)
    for (let i = 0; i < this.size; i++) {
      const s = this.stream[i]!
      const start = this.ingest[i]! - tick(i) * tickUs
      if (start < t0[s]!) t0[s] = start
    }
    const fromIntended = new Histogram()
    const fromIngest = new Histogram()
    for (let i = 0; i < this.size; i++) {
      fromIntended.record(this.at[i]! - (t0[this.stream[i]!]! + tick(i) * tickUs))
      fromIngest.record(this.at[i]! - this.ingest[i]!)
    }
    return { fromIntended, fromIngest, events: this.size }
  }
}

/** The worst of several summaries at each quantile. */
const worst = (xs: ReadonlyArray<LatencySummary>) => ({
  p50: Math.max(...xs.map((x) => x.p50)),
  p99: Math.max(...xs.map((x) => x.p99)),
  p999: Math.max(...xs.map((x) => x.p999)),
  max: Math.max(...xs.map((x) => x.max)),
  count: xs.reduce((n, x) => n + x.count, 0)
})

const quantiles = (h: Histogram) => ({
  p50: h.quantile(0.5),
  p99: h.quantile(0.99),
  p999: h.quantile(0.999),
  max: h.max,
  count: h.count
})

/** Top self-time functions of a V8 CPU profile. */
const topSelf = (profile: {
  readonly nodes: ReadonlyArray<
    { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }
  >
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}) => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  // the last sample holds the time until the profiler stopped (the stop call itself): left out
  profile.samples.slice(0, -1).forEach((id, i) => {
    const f = byId.get(id)!.callFrame
    const where = f.url === "" ? "" : ` ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`
    const key = `${f.functionName === "" ? "(anonymous)" : f.functionName}${where}`
    const dt = profile.timeDeltas[i] ?? 0
    self.set(key, (self.get(key) ?? 0) + dt)
    total += dt
  })
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([fn, us]) => ({ fn, share: us / total }))
}

const runAt = (rate: number, session: Session) =>
  Effect.gen(function*() {
    const config = configAt(rate)
    const probe = new Probe()
    let delivered = 0
    const strategies = Array.from({ length: STRATEGIES }, (_, i) => ({
      strategy: Strategy.define({
        id: `bench-${i}`,
        start: (ctx) =>
          Effect.gen(function*() {
            for (const symbol of SYMBOLS) yield* ctx.subscribe(symbol, ["trade", "ticker", "book_delta"])
            for (const symbol of ["BTC-USDT", "ETH-USDT"]) {
              yield* ctx.subscribeMerged({ symbol, kind: "ticker", providers: ["sim-a", "sim-b", "sim-c"], windowMs: 250, maxFragments: 3 })
            }
          }),
        handle: (e) =>
          Effect.sync(() => {
            delivered++
            if (i === 0 && (e.kind === "trade" || e.kind === "ticker") && "provider" in e && e.seqProvider !== undefined) {
              probe.record(e.provider, e.symbol, e.kind, e.seqProvider, e.ingestTs)
            }
          })
      })
    }))
    return yield* Effect.gen(function*() {
      const providers = yield* Providers
      const consumers = yield* Consumers
      yield* Effect.forkScoped(Gateway.run(config, { strategies: [...configuredStrategies(config), ...strategies] }))
      yield* Effect.sleep(`${WARMUP_S * 1000} millis`)
      const eventsBefore = providers.reduce((n, p) => n + p.stats().events, 0)
      const deliveredBefore = delivered
      const cpuBefore = process.cpuUsage()
      const t0 = performance.now()
      probe.recording = true
      yield* Effect.promise(() => session.post("Profiler.start"))
      yield* Effect.sleep(`${(SECONDS - WARMUP_S) * 1000} millis`)
      const { profile } = yield* Effect.promise(() => session.post("Profiler.stop"))
      probe.recording = false
      const wall = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpuBefore)
      const events = providers.reduce((n, p) => n + p.stats().events, 0) - eventsBefore
      const mine = consumers.list().filter((c) => c.id.startsWith("bench-")).map((c) => c.stats())
      const probed = probe.result(split(rate).trades)
      return {
        rate,
        eventsPerSec: events / wall,
        deliveriesPerSec: (delivered - deliveredBefore) / wall,
        cpuShare: (cpu.user + cpu.system) / 1e6 / wall,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
        dispatchToLambda: worst(mine.map((s) => s.dispatchToLambda)),
        ingestToLambda: worst(mine.map((s) => s.ingestToLambda)),
        fromIntended: quantiles(probed.fromIntended),
        probeFromIngest: quantiles(probed.fromIngest),
        probeEvents: probed.events,
        lambdaProcessing: worst(mine.map((s) => s.processing)),
        top: topSelf(profile as never)
      }
    }).pipe(Effect.provide(layerOn(config, layerMemory(memoryOptions(config)))), Effect.scoped)
  })

/**
 * The demo gateway as `npm start` runs it (the default configuration: its
 * venues at their default rates, the bbo and orders strategies), measured the
 * same way: per strategy, dispatch-to-lambda beside the lambda's own time.
 */
const runDemo = Effect.gen(function*() {
  const config = GatewayConfig.make({ statusIntervalMs: 3_600_000 })
  // the collector's pauses, on the clock the dispatcher stamps events with (performance.now)
  const pauses: Array<{ readonly start: number; readonly end: number; readonly kind: string }> = []
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind
      pauses.push({ start: e.startTime * 1000, end: (e.startTime + e.duration) * 1000, kind: kind === 1 ? "scavenge" : "mark-compact" })
    }
  })
  observer.observe({ entryTypes: ["gc"] })
  // a probe beside the paper trader, on the same streams: when each timed event was dispatched and reached it
  const probe: Array<{ readonly dispatchedUs: number; readonly startUs: number }> = []
  const stats = yield* Effect.gen(function*() {
    const consumers = yield* Consumers
    yield* Effect.forkScoped(Gateway.run(config, { strategies: configuredStrategies(config) }))
    yield* consumers.start({
      id: "probe",
      subscriptions: [{ symbol: config.strategies.orders.symbol, kind: "ticker", merged: false }],
      handle: (e) =>
        Effect.sync(() => {
          if (e._dispatchTs > 0) probe.push({ dispatchedUs: e._dispatchTs, startUs: performance.now() * 1000 })
        })
    })
    yield* Effect.sleep(`${SECONDS * 1000} millis`)
    return consumers.list().map((c) => c.stats())
  }).pipe(Effect.provide(layerOn(config, layerMemory(memoryOptions(config)))), Effect.scoped)
  observer.disconnect()
  return { stats, probe, pauses }
})

const demo = Effect.gen(function*() {
  const { pauses, probe, stats } = yield* runDemo
  console.log(`demo gateway (default configuration) for ${SECONDS} s: ${machine()}; scheduler: ${SCHEDULER}`)
  const rows: Array<Array<string | number>> = []
  for (const s of stats) {
    const line = (what: string, q: LatencySummary) => [s.id, what, q.p50, q.p99, q.p999, q.max, q.count]
    rows.push(
      line("dispatch-to-lambda", s.dispatchToLambda),
      line("  of it, the critical lane", s.criticalDispatchToLambda),
      line("ingest-to-lambda", s.ingestToLambda),
      line("lambda's own time", s.processing)
    )
  }
  table("latency, microseconds", ["strategy", "latency", "p50", "p99", "p99.9", "max", "samples"], rows)
  const slowUs = 500
  const slow = probe.filter((p) => p.startUs - p.dispatchedUs > slowUs)
  const during = (p: { readonly dispatchedUs: number; readonly startUs: number }) =>
    pauses.find((g) => g.start < p.startUs && g.end > p.dispatchedUs)
  const inPause = slow.filter((p) => during(p) !== undefined)
  const rest = slow.filter((p) => during(p) === undefined)
  const pauseUs = pauses.map((g) => g.end - g.start).sort((a, b) => a - b)
  table("the probe's slow deliveries (dispatch-to-lambda above 0.5 ms) and the collector", ["figure", "value"], [
    ["probe's timed deliveries", probe.length],
    [`above ${slowUs} us`, slow.length],
    ["  of which a collector pause overlapped", inPause.length],
    ["  the others, dispatch-to-lambda us", rest.map((p) => Math.round(p.startUs - p.dispatchedUs)).join(", ") || "-"],
    ["collector pauses (scavenge / mark-compact)", `${pauses.filter((g) => g.kind === "scavenge").length} / ${pauses.filter((g) => g.kind !== "scavenge").length}`],
    ["pause us p50 / max", pauseUs.length === 0 ? "-" : `${Math.round(pauseUs[Math.floor(pauseUs.length / 2)]!)} / ${Math.round(pauseUs[pauseUs.length - 1]!)}`]
  ])
  emitJson({
    ...Object.fromEntries(stats.map((s) => [s.id, {
      dispatchToLambda: s.dispatchToLambda,
      criticalDispatchToLambda: s.criticalDispatchToLambda,
      processing: s.processing
    }])),
    probeSlow: slow.length,
    probeSlowInCollectorPause: inPause.length
  })
})

const main = Effect.gen(function*() {
  const session = new Session()
  session.connect()
  yield* Effect.promise(() => session.post("Profiler.enable"))
  yield* Effect.promise(() => session.post("Profiler.setSamplingInterval", { interval: 200 }))
  const results = []
  for (const rate of RATES) results.push(yield* runAt(rate, session))
  session.disconnect()
  console.log(`gateway benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}; scheduler: ${SCHEDULER}`)
  console.log(
    `${VENUES.length} simulated venues x ${SYMBOLS.length} symbols, default merges, the paper venue with the orders strategy, ` +
      `${STRATEGIES} strategies on every stream; ${SECONDS} s per rate (${WARMUP_S} s warm-up not measured)`
  )
  const rows: Array<Array<string | number>> = []
  for (const r of results) {
    const line = (what: string, q: ReturnType<typeof quantiles>) => [r.rate, what, q.p50, q.p99, q.p999, q.max, q.count]
    rows.push(
      line("dispatch-to-lambda (gateway, worst strategy)", r.dispatchToLambda),
      line("ingest-to-lambda (gateway, worst strategy)", r.ingestToLambda),
      line("from intended send time (one strategy, every trade/ticker)", r.fromIntended),
      line("  same events from ingest", r.probeFromIngest),
      line("lambda's own time (worst strategy)", r.lambdaProcessing)
    )
  }
  table("latency, microseconds", ["events/s asked", "latency", "p50", "p99", "p99.9", "max", "samples"], rows)
  table(
    "load",
    ["events/s asked", "events/s in", "deliveries/s", "CPU (cores)", "RSS MiB"],
    results.map((r) => [r.rate, r.eventsPerSec, r.deliveriesPerSec, r.cpuShare, r.rssMiB])
  )
  for (const r of results) {
    table(
      `CPU profile at ${r.rate.toLocaleString("en-US")} events/s: top self time`,
      ["function", "share of samples"],
      r.top.map((t) => [t.fn, `${(t.share * 100).toFixed(1)}%`])
    )
  }
  const json: Record<string, unknown> = {}
  for (const r of results) {
    json[`r${r.rate}`] = {
      eventsPerSec: r.eventsPerSec,
      deliveriesPerSec: r.deliveriesPerSec,
      cpuCores: r.cpuShare,
      rssMiB: r.rssMiB,
      dispatchToLambda: r.dispatchToLambda,
      ingestToLambda: r.ingestToLambda,
      fromIntended: r.fromIntended
    }
  }
  emitJson(json)
})

const scheduler = SCHEDULER === "default" ? Scheduler.defaultScheduler : gatewayScheduler

Effect.runPromise((process.argv.includes("--demo") ? demo : main).pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.withScheduler(scheduler))).catch((e) => {
  console.error(e)
  process.exit(1)
})
