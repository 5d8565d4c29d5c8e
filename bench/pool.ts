/**
 * Pool benchmark: acquire + clone + recycle against allocating a fresh object,
 * in one run. Reports ns per cycle, heap growth over 10 million cycles, and
 * debug mode's cost as a ratio.
 *
 *   npm run bench:pool [-- --json] [-- --cycles N]
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { Event } from "../src/Event.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"
import { arg, benchTicker, emitJson, heapUsed, machine, table } from "./internal/report.js"

const CYCLES = arg("--cycles", 10_000_000)
const DEBUG_CYCLES = Math.min(CYCLES, 200_000)

const payload = benchTicker

interface Result {
  readonly nsPerCycle: number
  readonly heapGrowthBytes: number
  readonly heapAllocated: number
}

const measure = (cycles: number, step: () => void): Result & { readonly heapAllocated: 0 } => {
  for (let i = 0; i < Math.min(cycles, 1_000_000); i++) step() // warm-up
  const before = heapUsed()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < cycles; i++) step()
  const ns = Number(process.hrtime.bigint() - t0)
  return { nsPerCycle: ns / cycles, heapGrowthBytes: heapUsed() - before, heapAllocated: 0 }
}

const pooled = (debug: boolean, cycles: number) =>
  Effect.gen(function*() {
    const pool = yield* Pool
    const recycler = yield* Recycler
    const original = pool.acquireEvent()
    original.kind = "ticker"
    original.payload = payload
    original.symbol = "BTC-USDT"
    const step = () => {
      const dup = pool.clone(original)
      recycler.unsafeRecycle(dup, generationOf(dup))
    }
    for (let i = 0; i < 10_000; i++) step()
    const heapBefore = pool.stats().Event.heapAllocated
    const r = measure(cycles, step)
    recycler.unsafeRecycle(original, generationOf(original))
    return { ...r, heapAllocated: pool.stats().Event.heapAllocated - heapBefore }
  }).pipe(
    Effect.scoped,
    Effect.provide(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({ debug })))),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )

const main = Effect.gen(function*() {
  const original = new Event()
  original.kind = "ticker"
  original.payload = payload
  original.symbol = "BTC-USDT"
  let sink: Event | undefined
  const fresh = measure(CYCLES, () => {
    const e = new Event()
    e.copyFrom(original)
    sink = e
  })
  void sink
  const prod = yield* pooled(false, CYCLES)
  const debug = yield* pooled(true, DEBUG_CYCLES)

  console.log(`pool benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}`)
  table(
    "acquire + clone + recycle vs fresh allocation",
    ["variant", "cycles", "ns/cycle", "ratio to fresh", "heap growth (bytes)", "pool heap allocations"],
    [
      ["fresh allocation (new + copy)", CYCLES, fresh.nsPerCycle, 1, fresh.heapGrowthBytes, "-"],
      ["pooled, production mode", CYCLES, prod.nsPerCycle, prod.nsPerCycle / fresh.nsPerCycle, prod.heapGrowthBytes, prod.heapAllocated],
      ["pooled, debug mode", DEBUG_CYCLES, debug.nsPerCycle, debug.nsPerCycle / fresh.nsPerCycle, debug.heapGrowthBytes, debug.heapAllocated]
    ]
  )
  console.log(`debug mode costs ${(debug.nsPerCycle / prod.nsPerCycle).toFixed(1)}x production mode per cycle`)
  emitJson({
    cycles: CYCLES,
    fresh: { nsPerCycle: fresh.nsPerCycle, heapGrowthBytes: fresh.heapGrowthBytes },
    pooled: prod,
    debug: { ...debug, cycles: DEBUG_CYCLES },
    debugCostRatio: debug.nsPerCycle / prod.nsPerCycle
  })
})

Effect.runPromise(main)
