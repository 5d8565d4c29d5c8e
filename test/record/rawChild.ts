/**
 * A raw-frame recording process for the crash test: one provider whose run
 * receives numbered frames (`frame <n>`, 50 every 2 ms on the real clock)
 * through the raw-frame tap, recorded into the directory named by argv[2]
 * with a 100 ms flush interval. After each flush it prints `written <rows>`
 * (rows in complete files); the test kills it with SIGKILL.
 */
import { Effect, Layer } from "effect"
import { BinanceConfig } from "../../schema/ProviderConfig.js"
import { Providers, type ProviderShape } from "../../src/Provider.js"
import { Counters } from "../../src/providers/internal/feed.js"
import { FrameTap } from "../../src/providers/internal/tap.js"
import { layerRawFrames, RawFrameFigures } from "../../src/record/RawFrames.js"

const dir = process.argv[2]
const counters = new Counters()
const numbered: ProviderShape = {
  name: "numbered",
  symbols: ["BTC-USDT"],
  run: () =>
    Effect.gen(function*() {
      const tap = (yield* FrameTap).open!({
        provider: "numbered",
        config: BinanceConfig.make({ symbols: ["BTC-USDT"] }),
        url: "wss://stream.example.com/ws",
        symbolMap: { "BTC-USDT": "BTCUSDT" },
        clock: yield* Effect.clock
      })
      tap.connected()
      let n = 0
      for (;;) {
        yield* Effect.sleep("2 millis")
        for (let i = 0; i < 50; i++) tap.received(`frame ${n++}`)
      }
    }),
  status: Effect.succeed({ provider: "numbered", connected: true, books: [], stats: counters.snapshot() }),
  stats: () => counters.snapshot()
}

const program = Effect.gen(function*() {
  const [provider] = yield* Providers
  const figures = yield* RawFrameFigures
  yield* provider.run(() => Effect.void).pipe(Effect.scoped, Effect.forkScoped)
  let last = 0
  for (;;) {
    yield* Effect.sleep("20 millis")
    const s = figures.stats()
    if (s.rowsWritten !== last) {
      last = s.rowsWritten
      process.stdout.write(`written ${last}\n`)
    }
  }
})

Effect.runFork(program.pipe(Effect.scoped, Effect.provide(layerRawFrames({ dir, flushIntervalMs: 100 })(Layer.succeed(Providers, [numbered])))))
