/**
 * Strategies on worker threads against strategies in process.
 *
 * 1. Throughput: ten CPU-bound strategies (each handler burns a fixed amount
 *    of CPU, `--burn-us`), fed the same tickers, in process (one JavaScript
 *    thread runs them all) and on workers (one thread each, fed through the
 *    shared rings); rounds alternate, medians reported. `workerSpeedup` is
 *    the in-process time over the workers' time; `parallelEfficiency` is the
 *    speedup over min(strategies, cores) for this machine's core count.
 * 2. Latency across the boundary: `--rate` tickers/s (20,000) to ten workers
 *    with light handlers, measured in the handler from each event's intended
 *    send time (its `ingestTs`, set by the sender's schedule: a sender that
 *    falls behind counts against the figures; no coordinated omission):
 *    p50/p99/p99.9/max.
 * 3. `fanoutConcurrency`: the workers' throughput with small rings, so that
 *    hand-overs suspend, at concurrency 1 and 10.
 * 4. The command path: a `postMessage` round trip (a command's size) against
 *    the rate commands come at.
 *
 *   npm run bench:workers [-- --json] [-- --events N] [-- --burn-us N] [-- --rounds N] [-- --rate N] [-- --seconds N]
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { layerCore } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { ControlBus } from "../src/ControlBus.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { gatewayScheduler } from "../src/internal/scheduler.js"
import { Pool } from "../src/Pool.js"
import { type RunningWorker, runIsolated } from "../src/worker/StrategyWorker.js"
import { burn, LATENCY_BUCKETS, quantiles } from "./internal/burner.js"
import { alternatingMedians, arg, benchTicker, emitJson, machine, table } from "./internal/report.js"

const STRATEGIES = arg("--strategies", 10)
const EVENTS = arg("--events", 2_000)
const BURN_US = arg("--burn-us", 250)
const ROUNDS = arg("--rounds", 3)
const RATE = arg("--rate", 20_000)
const SECONDS = arg("--seconds", 2)
const CORES = availableParallelism()

/** Iterations of `burn` that take about `BURN_US` here (calibrated once, then the same work everywhere). */
const calibrate = (): number => {
  burn(1_000_000)
  let best = Infinity
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    burn(1_000_000)
    best = Math.min(best, performance.now() - t0)
  }
  return Math.max(1, Math.round((BURN_US / 1_000) * (1_000_000 / best)))
}

/** The benchmark's strategies send no command: a Control Bus that would say so. */
const noCommands = Layer.succeed(ControlBus, {
  submit: () => Effect.dieMessage("the benchmark's strategies send no command"),
  submitJson: () => Effect.dieMessage("the benchmark's strategies send no command"),
  stats: () => ({ submitted: 0, malformed: 0 })
})

const layer = (fanoutConcurrency: number) =>
  noCommands.pipe(
    Layer.provideMerge(layerCore({
      dispatcher: { fanoutConcurrency },
      pool: { capacity: { Event: 65_536, MergedEvent: 16, ExecReport: 16 } }
    }))
  )

const nowEpochUs = () => (performance.timeOrigin + performance.now()) * 1_000

let seq = { "BTC-USDT": 0, "ETH-USDT": 0 } as Record<string, number>
/** Dispatches one ticker of `symbol` meant to be sent at `intendedUs` (epoch microseconds). */
const send = (symbol: string, intendedUs: number) =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const e = pool.acquireEvent()
    e.provider = "sim-a"
    e.symbol = symbol
    e.kind = "ticker"
    e.payload = benchTicker
    e.seqProvider = ++seq[symbol]!
    e.ingestTs = intendedUs
    e.traceId = "w"
    yield* dispatcher.dispatch(e)
  })

const waitAsync = (Atomics as unknown as {
  readonly waitAsync: (a: Int32Array, i: number, v: number, t: number) => { readonly async: boolean; readonly value: unknown }
}).waitAsync

/** Waits (in real time, without a timer) until every counter reaches `n`. */
const allReach = (counters: ReadonlyArray<Int32Array>, n: number) =>
  Effect.promise(async () => {
    for (const c of counters) {
      for (let v = Atomics.load(c, 0); v < n; v = Atomics.load(c, 0)) {
        const r = waitAsync(c, 0, v, 5)
        if (r.async) await r.value
      }
    }
  })

interface Fleet {
  readonly workers: ReadonlyArray<RunningWorker>
  readonly counts: ReadonlyArray<Int32Array>
  readonly latency: ReadonlyArray<Int32Array>
}

/** Ten burner strategies on workers, subscribed to ETH-USDT tickers. */
const fleet = (ringBytes: number) =>
  Effect.gen(function*() {
    const counts = Array.from({ length: STRATEGIES }, () => new Int32Array(new SharedArrayBuffer(8)))
    const latency = Array.from({ length: STRATEGIES }, () => new Int32Array(new SharedArrayBuffer(LATENCY_BUCKETS * 4)))
    const workers = yield* Effect.forEach(counts, (c, i) =>
      runIsolated({
        module: "bench/internal/burner.ts",
        id: `burner-${i}`,
        options: { counts: c.buffer, latency: latency[i]!.buffer },
        mailbox: { marketCapacity: 1 << 20 },
        settings: { marketRingBytes: ringBytes }
      }), { concurrency: "unbounded" })
    const dispatcher = yield* Dispatcher
    for (const w of workers) yield* dispatcher.subscribe(w.id, { symbol: "ETH-USDT", kind: "ticker", merged: false })
    return { workers, counts, latency } satisfies Fleet
  })

/** Milliseconds for `EVENTS` tickers through the fleet's ten workers. */
const workersRound = (f: Fleet, iterations: number) =>
  Effect.gen(function*() {
    for (const c of f.counts) {
      Atomics.store(c, 0, 0)
      Atomics.store(c, 1, iterations)
    }
    const t0 = performance.now()
    for (let i = 0; i < EVENTS; i++) yield* send("ETH-USDT", nowEpochUs())
    yield* allReach(f.counts, EVENTS)
    return performance.now() - t0
  })

/** Milliseconds for `EVENTS` tickers through ten consumers in process. */
const inProcessRound = (iterations: number) =>
  Effect.gen(function*() {
    const consumers = yield* Consumers
    let done = 0
    const handles = yield* Effect.forEach(Array.from({ length: STRATEGIES }, (_, i) => i), (i) =>
      consumers.start({
        id: `local-${i}`,
        subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
        mailbox: { marketCapacity: 1 << 20 },
        handle: () =>
          Effect.sync(() => {
            burn(iterations)
            done++
          })
      }))
    const t0 = performance.now()
    for (let i = 0; i < EVENTS; i++) yield* send("BTC-USDT", nowEpochUs())
    while (done < EVENTS * STRATEGIES) yield* Effect.yieldNow()
    const ms = performance.now() - t0
    yield* Effect.forEach(handles, (h) => h.stop, { discard: true })
    return ms
  })

/** Tickers at `RATE`/s for `SECONDS` to the fleet (light handlers); latency quantiles from the intended send times. */
const latencyRun = (f: Fleet) =>
  Effect.gen(function*() {
    for (const c of f.counts) {
      Atomics.store(c, 0, 0)
      Atomics.store(c, 1, 0)
    }
    for (const h of f.latency) h.fill(0)
    const total = RATE * SECONDS
    const t0 = nowEpochUs()
    let sent = 0
    let behindMax = 0
    while (sent < total) {
      const now = nowEpochUs()
      const due = Math.min(total, Math.floor(((now - t0) * RATE) / 1e6))
      if (due - sent > behindMax) behindMax = due - sent
      while (sent < due) {
        yield* send("ETH-USDT", t0 + (sent * 1e6) / RATE)
        sent++
      }
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    yield* allReach(f.counts, total)
    const [p50, p99, p999, max] = quantiles(f.latency, [0.5, 0.99, 0.999, 1])
    return { p50: p50!, p99: p99!, p999: p999!, max: max!, behindMax }
  })

/** Microseconds per `postMessage` round trip of a command-sized string. */
const postMessageRoundTrip = Effect.promise(async () => {
  const w = new Worker(
    `const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m))`,
    { eval: true }
  )
  const command = JSON.stringify({
    schemaVersion: 1,
    command: { _tag: "SubmitOrder", commandId: "burner-0-abc-cmd-1", consumerId: "burner-0", clientOrderId: "burner-0-abc-order-1", symbol: "BTC-USDT", side: "buy", orderType: "limit", quantity: "0.001", price: "64000.10" }
  })
  const trip = () => new Promise<void>((resolve) => {
    w.once("message", () => resolve())
    w.postMessage(command)
  })
  for (let i = 0; i < 500; i++) await trip()
  const n = 5_000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await trip()
  const us = ((performance.now() - t0) * 1_000) / n
  await w.terminate()
  return { us, bytes: command.length }
})

const main = Effect.gen(function*() {
  const iterations = calibrate()
  console.log(`worker benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}; ${CORES} cores available`)

  const [inProcessMs, workersMs, latency] = yield* Effect.gen(function*() {
    const f = yield* fleet(1 << 20)
    const [a, b] = yield* alternatingMedians(ROUNDS, inProcessRound(iterations), workersRound(f, iterations))
    const l = yield* latencyRun(f)
    return [a, b, l] as const
  }).pipe(Effect.scoped, Effect.provide(layer(STRATEGIES)))

  const fanout = yield* Effect.forEach([1, STRATEGIES], (concurrency) =>
    Effect.gen(function*() {
      const f = yield* fleet(2_048)
      yield* workersRound(f, iterations)
      const ms: Array<number> = []
      for (let i = 0; i < ROUNDS; i++) ms.push(yield* workersRound(f, iterations))
      const waits = f.workers.reduce((n, w) => n + w.stats().handoverWaits, 0)
      return { concurrency, ms: ms.sort((x, y) => x - y)[Math.floor(ms.length / 2)]!, waits }
    }).pipe(Effect.scoped, Effect.provide(layer(concurrency))))

  const post = yield* postMessageRoundTrip

  const speedup = inProcessMs / workersMs
  const efficiency = speedup / Math.min(STRATEGIES, CORES)
  const perSec = (ms: number) => (EVENTS * 1_000) / ms
  table(
    `${STRATEGIES} strategies x ${EVENTS} tickers, each handler burning ${BURN_US} us of CPU (${iterations} iterations), median of ${ROUNDS} alternating rounds`,
    ["where", "ms", "tickers/s", "handler calls/s", "speedup", `efficiency (${CORES} cores)`],
    [
      ["in process (one thread)", inProcessMs, perSec(inProcessMs), perSec(inProcessMs) * STRATEGIES, 1, 1 / Math.min(STRATEGIES, CORES)],
      ["on workers (one thread each)", workersMs, perSec(workersMs), perSec(workersMs) * STRATEGIES, speedup, efficiency]
    ]
  )
  table(
    `dispatch to handler across the boundary, ${RATE.toLocaleString("en-US")} tickers/s x ${STRATEGIES} workers for ${SECONDS} s, from the intended send time (us)`,
    ["p50", "p99", "p99.9", "max", "sender behind at most (events)"],
    [[latency.p50, latency.p99, latency.p999, latency.max, latency.behindMax]]
  )
  table(
    `fanoutConcurrency with 2 KiB market rings (hand-overs suspend), ${EVENTS} tickers, median of ${ROUNDS}`,
    ["fanoutConcurrency", "ms", "tickers/s", "hand-overs that waited"],
    fanout.map((r) => [r.concurrency, r.ms, perSec(r.ms), r.waits])
  )
  table(
    "the command path: postMessage round trip of a command",
    ["bytes", "us per round trip"],
    [[post.bytes, post.us]]
  )
  emitJson({
    strategies: STRATEGIES,
    events: EVENTS,
    burnUs: BURN_US,
    cores: CORES,
    inProcessMs,
    workersMs,
    workerSpeedup: speedup,
    parallelEfficiency: efficiency,
    latencyUs: { rate: RATE, p50: latency.p50, p99: latency.p99, p999: latency.p999, max: latency.max },
    fanoutConcurrency: fanout,
    postMessageRoundTripUs: post.us
  })
})

// the scheduler the gateway ships (layers/Application.ts), as the workers run
Effect.runPromise(main.pipe(Effect.withScheduler(gatewayScheduler), Logger.withMinimumLogLevel(LogLevel.Warning)))
