/**
 * A strategy declared `isolation: worker` runs on a worker thread fed
 * through shared rings, with the guarantees it has in process: per-stream
 * order, the latest-wins market lane, the lossless critical lane (first),
 * the routing-version skip, failures reported with their context, every
 * pooled event recycled in the main thread, a crash restarted with nothing
 * lost from the critical lane, and a clean shutdown.
 *
 * The worker is a real thread: waits on it are bounded waits on shared
 * memory (`support.ts`), never sleeps, and no assertion is about speed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, HashMap, Logger, TestClock } from "effect"
import { ExecReportPayload } from "../../schema/Event.js"
import { encodeEvents } from "../../src/codec/Binary.js"
import { DataBus } from "../../src/DataBus.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import { Pool } from "../../src/Pool.js"
import { generationOf, Recycler } from "../../src/Recycler.js"
import { runIsolated } from "../../src/worker/StrategyWorker.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { controlAck, execReport, market } from "../support/events.js"
import { books, layerMain, SentCommands, until } from "./support.js"

const RECORDER = "test/worker/fixtures/recorder.ts"

/** Log records as the main thread's logger sees them (the worker's are relayed to it). */
const capture = () => {
  const records: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
  const logger = Logger.make<unknown, void>(({ annotations, logLevel, message }) => {
    records.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return { records, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("strategy on a worker", () => {
  it.scoped("subscribes through the Control Bus, receives its stream in order, every pooled event is recycled", () =>
    Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT" },
        mailbox: { marketCapacity: 10_000 }
      })
      const sent = yield* SentCommands
      assert.deepStrictEqual(sent.map((c) => [c._tag, c.consumerId]), [["Subscribe", "recorder"]])
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      for (let i = 1; i <= 300; i++) {
        yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", provider: "sim-a", seq: i, bid: String(i) }))
      }
      yield* until(() => b.codes().length >= 300, "300 tickers", b.seen)
      assert.deepStrictEqual(b.codes(), Array.from({ length: 300 }, (_, i) => i + 1))
      const recycler = yield* Recycler
      assert.strictEqual(recycler.leakReport().total, 0, "every event recycled in the main thread once written")
      assert.isAtLeast(running.stats().marketFrames, 300)
      yield* running.stop
      assert.isUndefined(running.threadId())
    }).pipe(Effect.provide(layerMain())))

  it.scoped("a command in the name of another consumer is refused and counted: the thread is the identity", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT", forgeAs: "victim" }
      })
      yield* until(() => running.stats().foreignCommands === 1, "the forged command refused")
      const sent = yield* SentCommands
      assert.deepStrictEqual(sent.map((c) => [c._tag, c.consumerId]), [["Subscribe", "recorder"]])
      const refusal = logs.records.find((r) => r.message === "command refused")!
      assert.strictEqual(refusal.annotations.consumer_id, "recorder")
      assert.strictEqual(refusal.annotations.claimed, "victim")
    }).pipe(Effect.provide(layerMain()), Effect.provide(logs.layer))
  })

  it.effect("a strategy process that lets a strategy reach its own kill switch only does so on a worker too", () =>
    Effect.gen(function*() {
      for (const ownKillSwitchOnly of [true, false]) {
        const b = books()
        const sent = yield* Effect.scoped(Effect.gen(function*() {
          yield* runIsolated({
            module: RECORDER,
            options: { seen: b.seenMemory, gate: b.gateMemory, killSwitchOf: "another" },
            ownKillSwitchOnly
          })
          yield* until(() => b.codes().length === 1, "the kill switch's outcome", b.seen)
          return (yield* SentCommands).map((c) => c._tag)
        })).pipe(Effect.provide(layerMain()))
        if (ownKillSwitchOnly) {
          assert.deepStrictEqual(b.codes(), [3_000_001], "refused at once as an invalid command")
          assert.notInclude(sent, "KillSwitch", "nothing sent")
        } else {
          assert.deepStrictEqual(b.codes(), [3_000_000])
          assert.include(sent, "KillSwitch")
        }
      }
    }), { timeout: 60_000 })

  it.scoped("an event's acknowledgement to where it came from waits until the worker has handled it, not its writing", () =>
    Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT", blockOn: 100 }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      const recycler = yield* Recycler
      yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq: 1, bid: "100" }))
      yield* until(() => Atomics.load(b.gate, 1) === 1, "the handler at the gate", b.gate, 1)
      const acks: Array<number> = []
      for (const n of [1, 2]) {
        const report = execReport(pool, "recorder", n)
        report._ack = () => acks.push(n)
        yield* dispatcher.dispatch(report)
      }
      // written to the ring and recycled in the main thread, the worker held at the gate: owed, not yet given
      yield* until(() => running.stats().sourceAcksPending === 2, "two acknowledgements owed")
      assert.strictEqual(recycler.leakReport().total, 0)
      assert.deepStrictEqual(acks, [])
      b.open()
      yield* until(() => acks.length === 2, "both acknowledged once handled")
      assert.deepStrictEqual(acks, [1, 2])
      assert.deepStrictEqual(b.codes(), [100, 1_000_001, 1_000_002])
      const stats = running.stats()
      assert.strictEqual(stats.sourceAcks, 2)
      assert.strictEqual(stats.sourceAcksPending, 0)
    }).pipe(Effect.provide(layerMain())))

  it.scoped("an event too large for the ring is logged, counted and recycled, and done with as a failed one is; the next arrives", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT" },
        settings: { criticalRingBytes: 1_024 }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      const recycler = yield* Recycler
      const acks: Array<number> = []
      const large = execReport(pool, "recorder", 1)
      large.payload = ExecReportPayload.make({ ...large.payload!, status: "rejected", reason: "x".repeat(1_000) })
      large._ack = () => acks.push(1)
      yield* dispatcher.dispatch(large)
      const next = execReport(pool, "recorder", 2)
      next._ack = () => acks.push(2)
      yield* dispatcher.dispatch(next)
      yield* until(() => b.codes().includes(1_000_002), "the report after it", b.seen)
      assert.deepStrictEqual(b.codes(), [1_000_002])
      yield* until(() => acks.length === 2, "both done with")
      assert.deepStrictEqual(acks, [1, 2], "the refused one at once, the next once handled")
      assert.strictEqual(running.stats().writeFailures, 1)
      yield* until(() => logs.records.some((r) => r.message === "event not written to a strategy worker: recycled"), "the refusal logged")
      const refusal = logs.records.find((r) => r.message === "event not written to a strategy worker: recycled")!
      assert.strictEqual(refusal.annotations.consumer_id, "recorder")
      assert.strictEqual(refusal.annotations.trace_id, "exec-recorder-1")
      assert.strictEqual(refusal.annotations.kind, "exec_report")
      assert.strictEqual(recycler.leakReport().total, 0)
    }).pipe(Effect.provide(layerMain()), Effect.provide(logs.layer))
  })

  it.scoped("the critical lane goes first and moves the routing version: older market data is skipped", () =>
    Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT", blockOn: 100 }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      const tick = (bid: number, routingVersion: number, seq: number) =>
        dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq, bid: String(bid), routingVersion }))
      yield* tick(100, 0, 1)
      yield* until(() => Atomics.load(b.gate, 1) === 1, "the handler at the gate", b.gate, 1)
      // while the worker is held: stale market data, then the ack of a routing flip, then fresh data
      yield* tick(1, 0, 2)
      yield* tick(2, 0, 3)
      yield* dispatcher.dispatch(controlAck(pool, "recorder", 5))
      yield* tick(4, 4, 4)
      yield* tick(5, 5, 5)
      b.open()
      yield* until(() => b.codes().includes(5), "the fresh ticker", b.seen)
      assert.deepStrictEqual(b.codes(), [100, 2_000_005, 5])
      yield* until(() => running.stats().skippedStale === 3, "the skip counted")
      assert.strictEqual(running.stats().criticalProcessed >= 1, true)
    }).pipe(Effect.provide(layerMain())))

  it.scoped("a held worker: its ring fills, the market lane coalesces latest-wins per stream, order kept", () =>
    Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT", blockOn: 1_000 },
        mailbox: { marketCapacity: 4 },
        settings: { marketRingBytes: 1_024, handoverWaitMs: 1 }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      const bus = yield* DataBus
      yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", provider: "sim-a", seq: 1, bid: "1000" }))
      yield* until(() => Atomics.load(b.gate, 1) === 1, "the handler at the gate", b.gate, 1)
      // two streams, interleaved: sim-a's bids 1..99 odd, sim-b's 2..100 even
      for (let i = 1; i <= 100; i++) {
        const provider = i % 2 === 1 ? "sim-a" : "sim-b"
        yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", provider, seq: Math.ceil(i / 2) + (i % 2 === 1 ? 1 : 0), bid: String(i) }))
      }
      b.open()
      yield* until(() => b.codes().includes(99) && b.codes().includes(100), "each stream's latest value", b.seen)
      const codes = b.codes().slice(1)
      const odd = codes.filter((c) => c % 2 === 1)
      const even = codes.filter((c) => c % 2 === 0)
      assert.deepStrictEqual(odd, [...odd].sort((x, y) => x - y), "sim-a in order")
      assert.deepStrictEqual(even, [...even].sort((x, y) => x - y), "sim-b in order")
      assert.strictEqual(odd.at(-1), 99)
      assert.strictEqual(even.at(-1), 100)
      assert.isBelow(codes.length, 100, "values coalesced")
      const box = bus.mailboxes().find((m) => m.consumerId === "recorder")!
      assert.isAbove(box.coalesced, 0)
      const stats = running.stats()
      assert.isAbove(stats.ringFull, 0)
      assert.isAbove(stats.handoverWaits, 0)
      const recycler = yield* Recycler
      yield* until(() => recycler.leakReport().total === 0, "every event recycled")
    }).pipe(Effect.provide(layerMain())))

  it.scoped("failures and defects of the handler are reported with consumer, trace id and kind; the strategy goes on", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT", failOn: 7, dieOn: 8 }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      for (const bid of [6, 7, 8, 9]) {
        yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq: bid, bid: String(bid) }))
      }
      yield* until(() => b.codes().includes(9), "the ticker after the failures", b.seen)
      yield* until(() => running.stats().failures === 2, "two failures counted")
      yield* until(() => logs.records.filter((r) => r.message === "consumer lambda failed").length === 2, "two reports")
      const reports = logs.records.filter((r) => r.message === "consumer lambda failed")
      for (const r of reports) {
        assert.strictEqual(r.level, "ERROR")
        assert.strictEqual(r.annotations.consumer_id, "recorder")
        assert.strictEqual(r.annotations.kind, "ticker")
        assert.strictEqual(r.annotations.worker, "recorder")
        assert.match(String(r.annotations.trace_id), /^trace-/)
      }
      assert.match(String(reports[0]!.annotations.cause), /refused 7/)
      assert.match(String(reports[1]!.annotations.cause), /died on 8/)
      // 6, 9 and the Subscribe's result; the failures apart
      yield* until(() => running.stats().processed === 3, "the others processed")
    }).pipe(Effect.provide(layerMain()), Effect.provide(logs.layer))
  })

  it.scoped("a worker that crashes is reported and restarted; the critical events it held are replayed, none lost", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT", blockOn: 100, crashOnReport: 2 },
        settings: { restartBackoffMs: 100 }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq: 1, bid: "100" }))
      yield* until(() => Atomics.load(b.gate, 1) === 1, "the handler at the gate", b.gate, 1)
      // each report owes an acknowledgement to where it came from (as a JetStream message does)
      const acks: Array<number> = []
      for (const n of [1, 2, 3]) {
        const report = execReport(pool, "recorder", n)
        report._ack = () => acks.push(n)
        yield* dispatcher.dispatch(report)
      }
      b.open() // the worker takes the three reports, handles the first, dies on the second
      yield* until(() => running.stats().crashes === 1, "the crash")
      assert.deepStrictEqual(b.codes(), [100, 1_000_001])
      yield* until(() => acks.length === 1, "the handled report acknowledged")
      assert.deepStrictEqual(acks, [1], "the reports the dead worker did not handle are not acknowledged")
      yield* TestClock.adjust("100 millis") // the restart backoff
      yield* until(() => b.codes().includes(1_000_003), "the reports after the restart", b.seen)
      assert.deepStrictEqual(b.codes(), [100, 1_000_001, 1_000_002, 1_000_003])
      yield* until(() => acks.length === 3, "the replayed reports acknowledged once handled")
      assert.deepStrictEqual(acks, [1, 2, 3], "each acknowledged once, in order")
      const stats = running.stats()
      assert.strictEqual(stats.restarts, 1)
      assert.isAtLeast(stats.replayed, 1)
      const crash = logs.records.find((r) => r.message === "strategy worker crashed")!
      assert.strictEqual(crash.annotations.consumer_id, "recorder")
      assert.strictEqual(crash.annotations.exit_code, 3)
      yield* until(() => running.stats().criticalUnacked === 0, "every critical frame acknowledged")
    }).pipe(Effect.provide(layerMain()), Effect.provide(logs.layer))
  }, { timeout: 120_000 })

  it.effect("a hand-over to full rings suspends through the Dispatcher's forEach: fanoutConcurrency is how many wait at once", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, 3]) {
        const seen = yield* Effect.scoped(Effect.gen(function*() {
          const ids = ["w-a", "w-b", "w-c"]
          const bs = ids.map(() => books())
          const workers = yield* Effect.forEach(ids, (id, i) =>
            runIsolated({
              module: RECORDER,
              id,
              options: { seen: bs[i]!.seenMemory, gate: bs[i]!.gateMemory, symbol: "ETH-USDT", blockOn: 100 },
              settings: { marketRingBytes: 512, handoverWaitMs: 60_000 }
            }), { concurrency: "unbounded" })
          const dispatcher = yield* Dispatcher
          const pool = yield* Pool
          yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq: 1, bid: "100" }))
          for (const b of bs) yield* until(() => Atomics.load(b.gate, 1) === 1, "a handler at its gate", b.gate, 1)
          const feed = yield* Effect.fork(Effect.forEach(Array.from({ length: 12 }, (_, i) => i + 2), (seq) =>
            dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq, bid: String(seq) })), { discard: true }))
          const waitingAt = () => workers.map((w) => w.stats().waitingNow)
          yield* until(() => waitingAt().some((n) => n > 0), "a hand-over waiting")
          const first = waitingAt()
          if (concurrency === 3) yield* until(() => waitingAt().every((n) => n === 1), "every hand-over waiting")
          const all = waitingAt()
          for (const b of bs) b.open()
          yield* Fiber.join(feed)
          for (const b of bs) yield* until(() => b.codes().includes(13), "the last ticker", b.seen)
          // the shared fan-out event is released once by each worker's hand-over, whichever path it took
          const recycler = yield* Recycler
          yield* until(() => recycler.leakReport().total === 0, "every event recycled")
          assert.strictEqual(recycler.stats().doublePuts, 0)
          return { first, all }
        })).pipe(Effect.provide(layerMain({ fanoutConcurrency: concurrency })))
        if (concurrency === 1) {
          // one hand-over at a time: while it waits, the next has not started
          assert.strictEqual(seen.first.reduce((x, y) => x + y, 0), 1)
          assert.strictEqual(seen.all.reduce((x, y) => x + y, 0), 1)
        } else assert.deepStrictEqual(seen.all, [1, 1, 1])
      }
    }), { timeout: 120_000 })

  it.scoped("a ring frame that does not decode is refused, counted and logged; the events after it arrive, in order", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const b = books()
      const running = yield* runIsolated({
        module: RECORDER,
        options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT" }
      })
      const dispatcher = yield* Dispatcher
      const pool = yield* Pool
      const recycler = yield* Recycler
      const tick = (n: number) => dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", provider: "sim-a", seq: n, bid: String(n) }))
      /** A codec frame of tickers with these bids (the events recycled here: only the bytes go on). */
      const frameOf = (...bids: ReadonlyArray<number>) => {
        const events = bids.map((bid, i) => market(pool, { symbol: "ETH-USDT", provider: "sim-z", seq: i + 1, bid: String(bid) }))
        const frame = encodeEvents(events)
        for (const e of events) recycler.unsafeRecycle(e, generationOf(e))
        return frame
      }
      const bytes = (...xs: ReadonlyArray<number>) => Uint8Array.from(xs)
      const concat = (x: Uint8Array, y: Uint8Array) => {
        const out = new Uint8Array(x.length + y.length)
        out.set(x)
        out.set(y, x.length)
        return out
      }
      const valid = frameOf(12345)
      const badDecimal = valid.slice()
      const digits = Buffer.from(badDecimal).indexOf("12345")
      assert.isAbove(digits, 0)
      badDecimal[digits + 2] = "x".charCodeAt(0)
      // what a corrupt ring could hold, in the codec part of a well-formed ring frame: [what, lane, bytes, the reason logged]
      const hostile: ReadonlyArray<readonly [string, "market" | "critical", Uint8Array, string]> = [
        ["no bytes", "market", new Uint8Array(0), "shorter than its header"],
        ["JSON text", "market", new TextEncoder().encode(`{"kind":"ticker","bid":"666"}`), "not a binary frame"],
        ["garbage", "market", bytes(0, 1, 2, 3, 4, 5, 6, 7), "not a binary frame"],
        ["an unknown codec version", "market", bytes(0xb1, 9, 1, 0, 0, 0, 2, 2), "unsupported binary frame version 9"],
        ["a record count beyond the frame", "market", bytes(0xb1, 1, 0xff, 0xff, 0xff, 0x7f, 2, 2), "cannot fit"],
        ["no record", "market", bytes(0xb1, 1, 0, 0, 0, 0), "0 records in a ring frame"],
        ["a record length past the end", "market", bytes(0xb1, 1, 1, 0, 0, 0, 0x7f, 2), "runs past the end"],
        ["a truncated event", "market", valid.subarray(0, valid.length - 5), "runs past the end"],
        ["bytes after the event", "market", concat(valid, bytes(0, 0, 0)), "bytes after the last record"],
        ["two events in one frame", "market", frameOf(777, 778), "2 records in a ring frame"],
        ["a decimal that is not one", "market", badDecimal, "malformed record 0"],
        ["garbage on the critical lane", "critical", bytes(0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0), "not a binary frame"]
      ]
      for (const n of [1, 2, 3]) yield* tick(n)
      for (const [what, lane, frame] of hostile) assert.isTrue(running.unsafeWriteFrame(lane, frame), `${what} written`)
      for (const n of [4, 5, 6]) yield* tick(n)
      yield* dispatcher.dispatch(execReport(pool, "recorder", 1))
      yield* until(() => b.codes().includes(6) && b.codes().includes(1_000_001), "the events after the bad frames", b.seen)

      const codes = b.codes()
      // the Subscribe's result is not recorded (a control result): tickers in order, and the report
      assert.deepStrictEqual(codes.filter((c) => c < 1_000_000), [1, 2, 3, 4, 5, 6], "the market stream whole and in order")
      assert.deepStrictEqual(codes.filter((c) => c >= 1_000_000), [1_000_001], "the critical lane goes on")
      yield* until(() => running.stats().badFrames === hostile.length, "every bad frame counted")
      const refused = () => logs.records.filter((r) => r.message === "ring frame did not decode: skipped")
      yield* until(() => refused().length === hostile.length, "every bad frame logged")
      // in ring order within each lane (the worker reads the critical lane first)
      for (const lane of ["market", "critical"] as const) {
        const expected = hostile.filter((h) => h[1] === lane)
        const logged = refused().filter((r) => r.annotations.lane === lane)
        assert.strictEqual(logged.length, expected.length, lane)
        logged.forEach((r, i) => {
          const [what, , , reason] = expected[i]!
          assert.strictEqual(r.level, "ERROR", what)
          assert.strictEqual(r.annotations.consumer_id, "recorder", what)
          assert.include(String(r.annotations.cause), reason, what)
        })
      }
      // the worker publishes its books every few milliseconds
      yield* until(() => running.stats().processed === 8, "six tickers, the report and the Subscribe's result processed")
      const stats = running.stats()
      assert.isTrue(stats.running, "the worker goes on")
      assert.strictEqual(stats.crashes, 0)
      assert.strictEqual(stats.failures, 0)
      yield* until(() => running.stats().framesRead === stats.marketFrames + stats.criticalFrames, "every frame taken, the refused ones too")
      // the report's acknowledgement covers the refused critical frame before it: nothing held for a replay
      yield* until(() => running.stats().criticalUnacked === 0, "every critical frame acknowledged")
      assert.strictEqual(recycler.leakReport().total, 0)
    }).pipe(Effect.provide(layerMain()), Effect.provide(logs.layer))
  })

  it.effect("stopping leaves no fiber, no worker thread and no pooled event", () =>
    Effect.gen(function*() {
      const b = books()
      let thread: number | undefined
      const { aliveBefore, left } = yield* runAndCountLeftFibers(
        layerMain(),
        Effect.gen(function*() {
          const running = yield* runIsolated({
            module: RECORDER,
            options: { seen: b.seenMemory, gate: b.gateMemory, symbol: "ETH-USDT" }
          })
          thread = running.threadId()
          const dispatcher = yield* Dispatcher
          const pool = yield* Pool
          for (let i = 1; i <= 20; i++) yield* dispatcher.dispatch(market(pool, { symbol: "ETH-USDT", seq: i, bid: String(i) }))
          yield* dispatcher.dispatch(execReport(pool, "recorder", 1))
          yield* until(() => b.codes().length === 21, "everything handled", b.seen)
          const recycler = yield* Recycler
          assert.strictEqual(recycler.leakReport().total, 0)
        }).pipe(Effect.scoped)
      )
      assert.isDefined(thread)
      assert.isAbove(aliveBefore, 0)
      assert.strictEqual(left, 0)
    }))
})
