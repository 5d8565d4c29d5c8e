/**
 * A recording process for the crash test: two busy simulated venues on the
 * real clock, recorded into the directory named by argv[2] with a 100 ms
 * flush interval. After each flush it prints `written <rows>` (rows in
 * complete files); the test kills it with SIGKILL.
 */
import { Effect, Layer } from "effect"
import { SimulatedVenueConfig } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { Pool } from "../../src/Pool.js"
import { makeSimulated } from "../../src/providers/Simulated.js"
import { generationOf, Recycler } from "../../src/Recycler.js"
import { makeRecorder } from "../../src/record/Recorder.js"

const dir = process.argv[2]
const layer = Layer.mergeAll(Recycler.DefaultWithoutDependencies, DeadLetter.Default).pipe(Layer.provideMerge(Pool.layer({ prewarm: 0 })))

const program = Effect.gen(function*() {
  const services = { pool: yield* Pool, recycler: yield* Recycler, deadLetter: yield* DeadLetter }
  const recorder = yield* makeRecorder({ dir, flushIntervalMs: 100 })
  const venues = ["sim-a", "sim-b"].map((name, i) =>
    makeSimulated(
      SimulatedVenueConfig.make({ name, symbols: ["BTC-USDT"], seed: i + 1, tradesPerSecond: 500, tickersPerSecond: 500, deltasPerSecond: 500, tickMs: 10 }),
      services
    )
  )
  for (const p of recorder.wrap(venues)) {
    yield* p.run((e) => Effect.sync(() => services.recycler.unsafeRecycle(e, generationOf(e)))).pipe(Effect.scoped, Effect.forkScoped)
  }
  let last = 0
  for (;;) {
    yield* Effect.sleep("20 millis")
    const s = recorder.stats()
    if (s.rowsWritten !== last) {
      last = s.rowsWritten
      process.stdout.write(`written ${last}\n`)
    }
  }
})

Effect.runFork(program.pipe(Effect.scoped, Effect.provide(layer)))
