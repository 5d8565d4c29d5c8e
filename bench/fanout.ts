/**
 * Fan-out benchmark, all in one process run: a plain function-call loop over
 * subscriber functions (the floor), Node's EventEmitter, an RxJS Subject,
 * Effect's PubSub with an Effect lambda per subscriber fiber, and our whole
 * path (dispatch, pooled clone, mailbox, consumer lambda ran, recycled), for
 * N = 1, 10 and 50 subscribers.
 *
 * Throughput runs push events as fast as the variant takes them; latency runs
 * pace 20,000 events/s and record dispatch-to-lambda-start per delivery and the
 * spread of lambda starts across the subscribers of each event.
 *
 * Our path runs on one core (pool, recycler, dispatcher) built once for the
 * whole run, as the gateway builds its own; each round starts its consumers on
 * it and stops them.
 *
 * Our path also runs with every hand-over forced through `Effect.forEach`
 * (sequential, and at concurrency N): the shape a remote bus takes.
 *
 *   npm run bench:fanout [-- --json] [-- --deliveries N] [-- --concurrency C] [-- --only N] [-- --rounds R]
 *                        [-- --scheduler shipped|default|unbounded] [-- --no-foreach] [-- --no-effect4]
 *
 * Effect 4 (the `effect4` alias, benchmarks only) runs beside Effect 3.22 with the
 * same driver: its PubSub, and a minimal mailbox-plus-consumer-loop of our
 * shape on each version (`internal/runtimes.ts`).
 */
import { Chunk, Context, Effect, Layer, Logger, LogLevel, PubSub, Queue, Scheduler } from "effect"
import { EventEmitter } from "node:events"
import { Subject } from "rxjs"
import { layerCore, pipeline } from "../layers/Core.js"
import { Consumers } from "../src/Consumer.js"
import { DataBus } from "../src/DataBus.js"
import { Dispatcher } from "../src/Dispatcher.js"
import type { AnyEvent } from "../src/Event.js"
import { Histogram, nowUs } from "../src/internal/histogram.js"
import { Pool } from "../src/Pool.js"
import { gatewayScheduler } from "../src/internal/scheduler.js"
import { loop3, loop4, pubsub3, pubsub4, type RuntimeFigures } from "./internal/runtimes.js"
import { arg, benchTicker, emitJson, heapUsed, machine, table } from "./internal/report.js"

const DELIVERIES = arg("--deliveries", 10_000_000)
/** Concurrency of the forced `Effect.forEach` variant (default: N). */
const CONCURRENCY = arg("--concurrency", 0)
const RATE = 20_000
const LATENCY_EVENTS = arg("--latency-events", 40_000)
const ONLY = arg("--only", 0)
const SIZES = ONLY > 0 ? [ONLY] : [1, 10, 50]
const SCHEDULER = (() => {
  const i = process.argv.indexOf("--scheduler")
  return i >= 0 ? process.argv[i + 1] ?? "shipped" : "shipped"
})()

const payload = benchTicker

interface Msg {
  id: number
  ts: number
}

interface Throughput {
  readonly nsPerEvent: number
  readonly deliveriesPerSec: number
  readonly heapGrowthBytes: number
}

interface Latency {
  readonly p50Us: number
  readonly p99Us: number
  readonly spreadP99Us: number
}

/** Lambda-start bookkeeping for latency runs: per delivery latency, per event spread. */
class Probe {
  readonly latency = new Histogram()
  readonly spread = new Histogram()
  private first = new Float64Array(0)
  private last = new Float64Array(0)
  private seen = new Uint16Array(0)
  constructor(readonly n: number, events: number) {
    this.first = new Float64Array(events)
    this.last = new Float64Array(events)
    this.seen = new Uint16Array(events)
  }
  hit(id: number, dispatchTs: number): void {
    const t = nowUs()
    this.latency.record(t - dispatchTs)
    if (this.seen[id] === 0) this.first[id] = t
    this.last[id] = t
    if (++this.seen[id]! === this.n) this.spread.record(this.last[id]! - this.first[id]!)
  }
  result(): Latency {
    return { p50Us: this.latency.quantile(0.5), p99Us: this.latency.quantile(0.99), spreadP99Us: this.spread.quantile(0.99) }
  }
}

/** Busy-waits (synchronously) until `due` microseconds. */
const spinUntil = (due: number) => {
  while (nowUs() < due) { /* pacing */ }
}

const measureSync = (events: number, run: (count: number) => void): Throughput & { readonly heapGrowthBytes: number } => {
  run(Math.min(events, 200_000)) // warm-up
  const before = heapUsed()
  const t0 = process.hrtime.bigint()
  run(events)
  const ns = Number(process.hrtime.bigint() - t0)
  return { nsPerEvent: ns / events, deliveriesPerSec: 0, heapGrowthBytes: heapUsed() - before }
}

// --- plain loop, EventEmitter, RxJS ----------------------------------------

type SyncVariant = (n: number) => {
  readonly publish: (m: Msg) => void
  readonly setHandler: (h: (m: Msg) => void) => void
}

const loopVariant: SyncVariant = (n) => {
  let handler: (m: Msg) => void = () => {}
  const subs = Array.from({ length: n }, () => (m: Msg) => handler(m))
  return {
    publish: (m) => {
      for (let i = 0; i < subs.length; i++) subs[i]!(m)
    },
    setHandler: (h) => (handler = h)
  }
}

const emitterVariant: SyncVariant = (n) => {
  let handler: (m: Msg) => void = () => {}
  const ee = new EventEmitter()
  ee.setMaxListeners(n + 1)
  for (let i = 0; i < n; i++) ee.on("e", (m: Msg) => handler(m))
  return { publish: (m) => ee.emit("e", m), setHandler: (h) => (handler = h) }
}

const rxVariant: SyncVariant = (n) => {
  let handler: (m: Msg) => void = () => {}
  const subject = new Subject<Msg>()
  for (let i = 0; i < n; i++) subject.subscribe((m) => handler(m))
  return { publish: (m) => subject.next(m), setHandler: (h) => (handler = h) }
}

const runSync = (variant: SyncVariant, n: number) => {
  const events = Math.ceil(DELIVERIES / n)
  const v = variant(n)
  let count = 0
  v.setHandler(() => {
    count++
  })
  const msg: Msg = { id: 0, ts: 0 }
  const throughput = measureSync(events, (k) => {
    for (let i = 0; i < k; i++) {
      msg.id = i
      v.publish(msg)
    }
  })
  if (count < events * n) throw new Error("lost deliveries")
  const latencyEvents = LATENCY_EVENTS
  const probe = new Probe(n, latencyEvents)
  v.setHandler((m) => probe.hit(m.id, m.ts))
  const t0 = nowUs()
  for (let i = 0; i < latencyEvents; i++) {
    spinUntil(t0 + (i * 1e6) / RATE)
    v.publish({ id: i, ts: nowUs() })
  }
  return {
    throughput: { ...throughput, deliveriesPerSec: (n * 1e9) / throughput.nsPerEvent },
    latency: probe.result()
  }
}

// --- Effect PubSub ----------------------------------------------------------

/** One turn of the event loop: every fiber woken so far runs before it ends. */
const loopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

/**
 * Paces `publish` at RATE events/s as a socket-fed producer would: each
 * event arrives in its own turn of the event loop, and between two events the
 * process waits in the event loop, not in a busy fiber.
 */
const paced = (events: number, publish: (i: number) => Effect.Effect<void>) =>
  Effect.suspend(() => {
    const t0 = nowUs()
    let i = 0
    const wait: Effect.Effect<void> = Effect.suspend(() =>
      nowUs() < t0 + (i * 1e6) / RATE ? Effect.zipRight(loopTurn, wait) : Effect.void
    )
    return Effect.whileLoop({
      while: () => i < events,
      body: () => Effect.zipRight(Effect.zipRight(loopTurn, wait), Effect.suspend(() => publish(i))),
      step: () => i++
    })
  })

/**
 * Pushes `events` through `publish` in bursts of BURST, yielding to the
 * subscriber fibers between bursts, then waits until `done()` says every
 * delivery ran.
 */
const BURST = arg("--burst", 64)
const nextTick = Effect.yieldNow()
const flood = (events: number, publish: (i: number) => Effect.Effect<void>, done: () => boolean) =>
  Effect.gen(function*() {
    let i = 0
    yield* Effect.whileLoop({
      while: () => i < events,
      body: () => (i % BURST === BURST - 1 ? Effect.zipRight(publish(i), nextTick) : publish(i)),
      step: () => i++
    })
    while (!done()) yield* nextTick
  })

const timed = <E, R>(events: number, n: number, self: Effect.Effect<void, E, R>) =>
  Effect.gen(function*() {
    const before = heapUsed()
    const t0 = process.hrtime.bigint()
    yield* self
    const ns = Number(process.hrtime.bigint() - t0)
    return {
      nsPerEvent: ns / events,
      deliveriesPerSec: (events * n * 1e9) / ns,
      heapGrowthBytes: heapUsed() - before
    }
  })

const runPubSub = (n: number) =>
  Effect.scoped(Effect.gen(function*() {
    const events = Math.ceil(DELIVERIES / n)
    const hub = yield* PubSub.unbounded<Msg>()
    let count = 0
    let onMsg: (m: Msg) => void = () => {
      count++
    }
    const lambda = (m: Msg) => Effect.sync(() => onMsg(m))
    for (let s = 0; s < n; s++) {
      const sub = yield* PubSub.subscribe(hub)
      yield* Queue.takeBetween(sub, 1, 256).pipe(
        Effect.flatMap((chunk) => Effect.forEach(Chunk.toReadonlyArray(chunk), lambda, { discard: true })),
        Effect.forever,
        Effect.forkScoped
      )
    }
    const msg = (i: number): Msg => ({ id: i, ts: 0 })
    const warm = Math.min(events, 100_000)
    yield* flood(warm, (i) => PubSub.publish(hub, msg(i)), () => count >= warm * n)
    count = 0
    const throughput = yield* timed(events, n, flood(events, (i) => PubSub.publish(hub, msg(i)), () => count >= events * n))
    const probe = new Probe(n, LATENCY_EVENTS)
    onMsg = (m) => probe.hit(m.id, m.ts)
    yield* paced(LATENCY_EVENTS, (i) => PubSub.publish(hub, { id: i, ts: nowUs() }))
    return { throughput, latency: probe.result() }
  }))

// --- our path ---------------------------------------------------------------

/**
 * The in-memory bus with every hand-over sent through the suspending path, so
 * that the fan-out goes through `Effect.forEach` at the given concurrency:
 * the shape a remote bus takes, measured against the in-place hand-over.
 */
const forEachBus = Layer.effect(
  DataBus,
  Effect.map(DataBus, (memory) => ({
    ...memory,
    endpoint: (id: string) => {
      const inner = memory.endpoint(id)
      return inner === undefined
        ? undefined
        : { consumerId: inner.consumerId, offer: () => false, deliver: (e: AnyEvent) => inner.deliver(e) }
    }
  }))
).pipe(Layer.provide(DataBus.layerMemory))

type Shape =
  | { readonly _tag: "InPlace"; readonly share: boolean }
  | { readonly _tag: "ForEach"; readonly concurrency: number }

/**
 * Our path's services, built once for the whole run as the gateway builds its
 * core once; each round starts its consumers on it and stops them.
 */
type Core = Context.Context<Layer.Layer.Success<ReturnType<typeof layerCore>>>

const runOurs = (n: number, shape: Shape = { _tag: "InPlace", share: true }, core?: Core) =>
  Effect.gen(function*() {
    // forking a fiber per hand-over is two orders of magnitude slower: fewer deliveries keep the run short
    const deliveries = shape._tag === "InPlace"
      ? DELIVERIES
      : Math.min(DELIVERIES, shape.concurrency > 1 ? 200_000 : 2_000_000)
    const events = Math.ceil(deliveries / n)
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const consumers = yield* Consumers
    let count = 0
    let onEvent: (e: AnyEvent) => void = () => {
      count++
    }
    const handles = []
    for (let s = 0; s < n; s++) {
      handles.push(yield* consumers.start({
        id: `strategy-${s}`,
        handle: (e) => Effect.sync(() => onEvent(e)),
        subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
        mailbox: { marketCapacity: 1 << 20 }
      }))
    }
    const make = (i: number) => {
      const e = pool.acquireEvent()
      e.provider = provider
      e.symbol = "BTC-USDT"
      e.kind = "ticker"
      e.payload = payload
      e.seqProvider = seq++
      e.traceId = "bench"
      e.ingestTs = i
      return e
    }
    let seq = 1
    // a stream of its own per run: the core's ordering state outlives the run
    const provider = `bench-${++runs}`
    const warm = Math.min(events, 100_000)
    yield* flood(warm, (i) => dispatcher.dispatch(make(i)), () => count >= warm * n)
    count = 0
    const heapAllocatedBefore = pool.stats().Event.heapAllocated
    const throughput = yield* timed(events, n, flood(events, (i) => dispatcher.dispatch(make(i)), () => count >= events * n))
    const heapAllocations = pool.stats().Event.heapAllocated - heapAllocatedBefore
    const probe = new Probe(n, LATENCY_EVENTS)
    const sentAt = new Float64Array(LATENCY_EVENTS)
    onEvent = (e) => probe.hit(e.ingestTs, sentAt[e.ingestTs]!)
    yield* paced(LATENCY_EVENTS, (i) =>
      Effect.suspend(() => {
        sentAt[i] = nowUs()
        return dispatcher.dispatch(make(i))
      }))
    while (probe.spread.count < LATENCY_EVENTS) yield* Effect.yieldNow()
    for (const h of handles) yield* h.stop
    const outstanding = pool.stats().Event.outstanding
    return { throughput, latency: probe.result(), heapAllocations, outstanding }
  }).pipe(
    Effect.scoped,
    Effect.provide(
      core !== undefined
        ? Layer.succeedContext(core)
        : shape._tag === "InPlace"
        ? inPlaceCore(shape.share)
        : pipeline(forEachBus, { pool: poolSettings, dispatcher: { fanoutConcurrency: shape.concurrency } })
    )
  )

let runs = 0

const inPlaceCore = (share: boolean) => layerCore({ pool: poolSettings, dispatcher: { shareFanout: share } })

const poolSettings = { capacity: { Event: 1 << 16, MergedEvent: 1024, ExecReport: 1024 } }

// --- Effect 3.22 and Effect 4 --------------------------------------------------

const runtimeRounds = (n: number) =>
  Effect.gen(function*() {
    const events = Math.ceil(DELIVERIES / n)
    const rounds: Record<"pubsub3" | "pubsub4" | "loop3" | "loop4", Array<RuntimeFigures>> = {
      pubsub3: [],
      pubsub4: [],
      loop3: [],
      loop4: []
    }
    for (let r = 0; r < ROUNDS; r++) {
      rounds.pubsub3.push(yield* pubsub3(n, events, BURST))
      rounds.pubsub4.push(yield* pubsub4(n, events, BURST))
      rounds.loop3.push(yield* loop3(n, events, BURST))
      rounds.loop4.push(yield* loop4(n, events, BURST))
    }
    const mid = (xs: Array<RuntimeFigures>) => [...xs].sort((a, b) => a.nsPerEvent - b.nsPerEvent)[Math.floor(xs.length / 2)]!
    return { pubsub3: mid(rounds.pubsub3), pubsub4: mid(rounds.pubsub4), loop3: mid(rounds.loop3), loop4: mid(rounds.loop4) }
  })

// --- run ----------------------------------------------------------------------

const ROUNDS = arg("--rounds", 3)

/** The round with the median throughput. */
const median = <R extends { readonly throughput: Throughput }>(rounds: ReadonlyArray<R>): R =>
  [...rounds].sort((a, b) => a.throughput.nsPerEvent - b.throughput.nsPerEvent)[Math.floor(rounds.length / 2)]!

const main = Effect.gen(function*() {
  const rows: Array<Array<string | number>> = []
  const json: Record<string, unknown> = {}
  const shared = yield* Layer.build(inPlaceCore(true))
  const cloned = yield* Layer.build(inPlaceCore(false))
  for (const n of SIZES) {
    const loop = runSync(loopVariant, n)
    const ee = runSync(emitterVariant, n)
    const rx = runSync(rxVariant, n)
    // PubSub and our path alternate ROUNDS times; each keeps its median round,
    // so that a noisy moment on a shared machine does not decide the ratio
    const psRounds: Array<Awaited<Effect.Effect.Success<ReturnType<typeof runPubSub>>>> = []
    const ourRounds: Array<Effect.Effect.Success<ReturnType<typeof runOurs>>> = []
    const cloneRounds: Array<Effect.Effect.Success<ReturnType<typeof runOurs>>> = []
    for (let r = 0; r < ROUNDS; r++) {
      psRounds.push(yield* runPubSub(n))
      ourRounds.push(yield* runOurs(n, { _tag: "InPlace", share: true }, shared))
      if (n > 1) cloneRounds.push(yield* runOurs(n, { _tag: "InPlace", share: false }, cloned))
    }
    const ps = median(psRounds)
    const ours = median(ourRounds)
    const clones = n > 1 ? median(cloneRounds) : undefined
    const forEach = n > 1 && !process.argv.includes("--no-foreach")
    const viaForEach1 = forEach ? yield* runOurs(n, { _tag: "ForEach", concurrency: 1 }) : undefined
    const viaForEachN = forEach ? yield* runOurs(n, { _tag: "ForEach", concurrency: (CONCURRENCY || n) }) : undefined
    // the runtime we stand on: Effect 3.22 and Effect 4 side by side, same driver, alternating rounds
    const runtimes = process.argv.includes("--no-effect4") ? undefined : yield* runtimeRounds(n)
    const floor = loop.throughput.nsPerEvent
    const line = (name: string, r: { throughput: Throughput; latency: Latency }) => [
      `N=${n}`,
      name,
      r.throughput.nsPerEvent,
      r.throughput.deliveriesPerSec,
      r.throughput.nsPerEvent / floor,
      r.latency.p50Us,
      r.latency.p99Us,
      r.latency.spreadP99Us,
      r.throughput.heapGrowthBytes
    ]
    rows.push(
      line("plain loop (floor)", loop),
      line("EventEmitter", ee),
      line("RxJS Subject", rx),
      line("Effect PubSub", ps),
      line("meltica (pooled, mailbox, Effect lambda)", ours)
    )
    if (clones !== undefined) rows.push(line("  same, N clones instead of one shared event", clones))
    if (runtimes !== undefined) {
      const runtimeLine = (name: string, r: RuntimeFigures) => [
        `N=${n}`,
        name,
        r.nsPerEvent,
        r.deliveriesPerSec,
        r.nsPerEvent / floor,
        "",
        "",
        "",
        ""
      ]
      rows.push(
        runtimeLine("Effect 3.22 PubSub (numbers, same driver as 4.1)", runtimes.pubsub3),
        runtimeLine("Effect 4.1 PubSub", runtimes.pubsub4),
        runtimeLine("minimal mailbox + consumer loop, Effect 3.22", runtimes.loop3),
        runtimeLine("minimal mailbox + consumer loop, Effect 4.1", runtimes.loop4)
      )
    }
    if (viaForEach1 !== undefined && viaForEachN !== undefined) {
      rows.push(
        line("  same, every hand-over via Effect.forEach, concurrency 1", viaForEach1),
        line(`  same, every hand-over via Effect.forEach, concurrency ${(CONCURRENCY || n)}`, viaForEachN)
      )
    }
    json[`n${n}`] = {
      deliveriesPerSec: ours.throughput.deliveriesPerSec,
      ratioToLoop: ours.throughput.nsPerEvent / floor,
      ratioToPubSub: ours.throughput.nsPerEvent / ps.throughput.nsPerEvent,
      p99LatencyUs: ours.latency.p99Us,
      spreadUs: ours.latency.spreadP99Us,
      heapGrowthBytes: ours.throughput.heapGrowthBytes,
      poolHeapAllocations: ours.heapAllocations,
      outstandingAfter: ours.outstanding,
      pubsubDeliveriesPerSec: ps.throughput.deliveriesPerSec,
      ...(clones === undefined ? {} : {
        clonesDeliveriesPerSec: clones.throughput.deliveriesPerSec,
        clonesRatioToPubSub: clones.throughput.nsPerEvent / ps.throughput.nsPerEvent
      }),
      ...(runtimes === undefined ? {} : {
        effect3PubSubDeliveriesPerSec: runtimes.pubsub3.deliveriesPerSec,
        effect4PubSubDeliveriesPerSec: runtimes.pubsub4.deliveriesPerSec,
        effect3LoopDeliveriesPerSec: runtimes.loop3.deliveriesPerSec,
        effect4LoopDeliveriesPerSec: runtimes.loop4.deliveriesPerSec
      }),
      ...(viaForEach1 === undefined || viaForEachN === undefined ? {} : {
        forEachSequentialDeliveriesPerSec: viaForEach1.throughput.deliveriesPerSec,
        forEachConcurrentDeliveriesPerSec: viaForEachN.throughput.deliveriesPerSec
      })
    }
  }
  console.log(`fan-out benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}`)
  console.log(
    `${DELIVERIES.toLocaleString("en-US")} deliveries per throughput run; latency at ${RATE.toLocaleString("en-US")} events/s; ` +
      `Effect PubSub and meltica: median of ${ROUNDS} alternating rounds; scheduler: ${SCHEDULER}`
  )
  table(
    "fan-out: throughput, latency and heap",
    ["N", "variant", "ns/event", "deliveries/s", "ratio to loop", "p50 us", "p99 us", "spread p99 us", "heap growth (bytes)"],
    rows
  )
  emitJson(json)
})

/**
 * Every variant runs on the scheduler the gateway ships (`src/internal/scheduler.ts`:
 * Effect's bound of 2,048 microtask drains, then `setImmediate`), unless
 * `--scheduler default` (Effect's own, `setTimeout` past the bound) or
 * `--scheduler unbounded` (microtasks only, what this benchmark used before).
 */
const scheduler = SCHEDULER === "default"
  ? Scheduler.defaultScheduler
  : SCHEDULER === "unbounded"
  ? new Scheduler.MixedScheduler(Number.MAX_SAFE_INTEGER)
  : gatewayScheduler

Effect.runPromise(main.pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)), Effect.withScheduler(scheduler)))
