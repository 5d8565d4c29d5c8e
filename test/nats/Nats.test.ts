/**
 * The Data Bus and Control Bus on NATS, against a real `nats-server` started
 * by each test (JetStream, a free port, a temporary store), with the feed and
 * strategy processes as child processes (`test/nats/fixtures/`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule } from "effect"
import { layerNatsStrategy } from "../../layers/Nats.js"
import { marketOrder } from "./support/orders.js"
import { encodeWireJson } from "../../schema/Event.js"
import { encodeEvents } from "../../src/codec/Binary.js"
import { MalformedFrame } from "../../schema/Errors.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { AnyEvent } from "../../src/Event.js"
import { CommandPublisher } from "../../src/nats/Commands.js"
import { NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import { CriticalSubscriber } from "../../src/nats/CriticalChannel.js"
import { MarketSubscriber } from "../../src/nats/Market.js"
import { CRITICAL_STREAM, criticalDurable, criticalSubject } from "../../src/nats/Subjects.js"
import { NatsConsumers } from "../../src/nats/NatsConsumers.js"
import { Pool } from "../../src/Pool.js"
import { generationOf, Recycler } from "../../src/Recycler.js"
import { execReport, market } from "../support/events.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { type Child, fixture, runScript, waitUntil } from "./support/process.js"
import { natsServer } from "./support/server.js"

const ACK_WAIT_MS = "1000"
/** Per test: child processes and a server start slowly on a loaded machine; waits poll with generous bounds. */
const TIMEOUT = { timeout: 180_000 }

const startFeed = (url: string) =>
  Effect.gen(function*() {
    const feed = yield* runScript(fixture("feed.ts"), { NATS_URL: url, ACK_WAIT_MS, TICK_MS: "2" })
    yield* waitUntil(() => feed.lines.includes("ready"), "feed ready", feed)
    return feed
  })

const startStrategy = (url: string, consumerId: string, orders = 0) =>
  Effect.gen(function*() {
    const s = yield* runScript(fixture("strategy.ts"), {
      NATS_URL: url,
      CONSUMER_ID: consumerId,
      ACK_WAIT_MS,
      ORDERS: String(orders)
    })
    yield* waitUntil(() => s.lines.includes("ready"), "strategy ready", s)
    return s
  })

/** `clientOrderId reportSeq` of every execution report a strategy's lambda ran on. */
const reports = (c: Child): Array<string> =>
  c.lines.filter((l) => l.startsWith("R ")).map((l) => l.split(" ").slice(1, 3).join(" "))

const marketSeqs = (c: Child): Array<number> =>
  c.lines.filter((l) => l.startsWith("M ")).map((l) => Number(l.split(" ")[2]))

/** A client in the test process: submits orders and reads JetStream state. */
const client = (url: string) =>
  Layer.build(
    CommandPublisher.Default.pipe(
      Layer.provideMerge(NatsConnection.Default),
      Layer.provide(NatsConfig.layer({ servers: [url], ackWaitMs: Number(ACK_WAIT_MS), name: "test" }))
    )
  ).pipe(Effect.map((ctx) => ({
    commands: ctx.unsafeMap.get(CommandPublisher.key) as CommandPublisher,
    connection: ctx.unsafeMap.get(NatsConnection.key) as NatsConnection
  })))

/** Every expected report: `new` then `filled` for each order. */
const expectedReports = (consumerId: string, n: number) =>
  Array.from({ length: n }, (_, i) => [`${consumerId}-o-${i + 1} 1`, `${consumerId}-o-${i + 1} 2`]).flat()

/** Waits until the consumer's durable JetStream consumer has nothing pending or unacknowledged. */
const drained = (connection: NatsConnection, consumerId: string) =>
  Effect.tryPromise(() => connection.jsm.consumers.info(CRITICAL_STREAM, criticalDurable(consumerId))).pipe(
    Effect.filterOrFail((i) => i.num_pending === 0 && i.num_ack_pending === 0 && i.num_redelivered >= 0),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("90 seconds")))
  )

const countBy = (xs: ReadonlyArray<string>) => {
  const m = new Map<string, number>()
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1)
  return m
}

describe("NATS buses", { sequential: true }, () => {
  it.scopedLive("feed and strategy processes: market data and execution reports flow end to end", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* startFeed(server.url)
      const strategy = yield* startStrategy(server.url, "e2e", 20)
      yield* waitUntil(
        () => reports(strategy).length >= 40 && marketSeqs(strategy).length >= 100,
        "reports and market data",
        strategy
      )
      const seqs = marketSeqs(strategy)
      for (let i = 1; i < seqs.length; i++) assert.isAbove(seqs[i]!, seqs[i - 1]!, "per-stream order kept")
      const ticks = strategy.lines.filter((l) => l.startsWith("M "))
      for (const t of ticks.slice(0, 20)) {
        const [, provider, seq, bid] = t.split(" ")
        assert.strictEqual(provider, "sim-a")
        assert.strictEqual(bid, `64000.${Number(seq) % 100}`, "the decimal string survives the wire")
      }
      const got = reports(strategy)
      assert.deepStrictEqual([...got].sort(), expectedReports("e2e", 20).sort())
      for (let i = 1; i <= 20; i++) {
        assert.isBelow(got.indexOf(`e2e-o-${i} 1`), got.indexOf(`e2e-o-${i} 2`), "new before filled")
      }
      assert.isTrue(strategy.lines.includes(`R e2e-o-1 2 filled`) || got.length === 40)
    }), TIMEOUT)

  it.scopedLive("nats-server killed and restarted mid-stream: every execution report arrives exactly once", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* startFeed(server.url)
      const strategy = yield* startStrategy(server.url, "restart")
      const { commands, connection } = yield* client(server.url)
      const N = 150
      const submitter = yield* Effect.forEach(
        Array.from({ length: N }, (_, i) => marketOrder("restart", i + 1)),
        commands.submit,
        { discard: true }
      ).pipe(Effect.fork)
      yield* waitUntil(() => reports(strategy).length >= 60, "first reports", strategy)
      const before = reports(strategy).length
      yield* server.restart
      yield* Fiber.join(submitter)
      yield* waitUntil(() => new Set(reports(strategy)).size >= 2 * N, "every report", strategy, "90 seconds")
      yield* drained(connection, "restart")
      const got = reports(strategy)
      assert.isBelow(before, 2 * N, "the restart happened mid-stream")
      const counts = countBy(got)
      assert.deepStrictEqual([...counts.keys()].sort(), expectedReports("restart", N).sort(), "none lost")
      assert.deepStrictEqual([...counts.values()].filter((c) => c !== 1), [], "none twice")
      assert.isAbove(commands.stats().retries + connection.stats().reconnects, 0, "the client saw the outage")
    }), TIMEOUT)

  it.scopedLive("strategy process killed mid-stream and restarted: its durable consumer resumes where it left off", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* startFeed(server.url)
      const first = yield* startStrategy(server.url, "durable")
      const { commands, connection } = yield* client(server.url)
      const N = 150
      const submitter = yield* Effect.forEach(
        Array.from({ length: N }, (_, i) => marketOrder("durable", i + 1)),
        commands.submit,
        { discard: true }
      ).pipe(Effect.fork)
      yield* waitUntil(() => reports(first).length >= 60, "first reports", first)
      yield* first.kill("SIGKILL")
      const a = reports(first)
      const second = yield* startStrategy(server.url, "durable")
      yield* Fiber.join(submitter)
      yield* waitUntil(
        () => new Set([...a, ...reports(second)]).size >= 2 * N,
        "the rest of the reports",
        second,
        "90 seconds"
      )
      yield* drained(connection, "durable")
      const b = reports(second)
      assert.isBelow(a.length, 2 * N, "killed mid-stream")
      assert.deepStrictEqual([...new Set([...a, ...b])].sort(), expectedReports("durable", N).sort(), "none lost")
      assert.deepStrictEqual([...countBy(b).values()].filter((c) => c !== 1), [], "no duplicate within a process")
      const again = b.filter((r) => a.includes(r))
      // only what was in the lambda or not yet acknowledged at the kill comes again
      assert.isAtMost(again.length, 5, `redelivered after the kill: ${again.join(", ")}`)
      assert.strictEqual(b.length, 2 * N - a.length + again.length, "the second run starts where the first stopped")
    }), TIMEOUT)

  it.scopedLive("a consumer that stops gives back the reports it held and the one it was running: the next one on the durable gets them at once, in order", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      // an ack wait far beyond the test's wait: only a give-back brings the reports again in time
      const layer = layerNatsStrategy({ nats: { servers: [server.url], ackWaitMs: 60_000, name: "give-back" } })
      const { left, result } = yield* runAndCountLeftFibers(
        layer,
        Effect.gen(function*() {
          const connection = yield* NatsConnection
          const pool = yield* Pool
          const recycler = yield* Recycler
          const consumers = yield* NatsConsumers
          const criticalIn = yield* CriticalSubscriber
          const reportSeq = (e: AnyEvent) => (e.payload as { readonly reportSeq: number }).reportSeq
          const started: Array<number> = []
          // the first consumer starts on report 1 and never finishes it; 2 to 4 wait in its mailbox
          const first = yield* consumers.start({
            id: "giveback",
            handle: (e: AnyEvent) =>
              Effect.zipRight(Effect.sync(() => started.push(reportSeq(e))), Effect.never)
          })
          for (let seq = 1; seq <= 4; seq++) {
            const r = execReport(pool, "giveback", seq)
            const gen = generationOf(r)
            const text = encodeWireJson(r.toWire())
            recycler.unsafeRecycle(r, gen)
            yield* Effect.promise(() => connection.js.publish(criticalSubject("giveback"), text, { msgID: `giveback-${seq}` }))
          }
          yield* waitUntil(() => started.length === 1 && first.stats().lag === 3, "report 1 running, 2 to 4 queued")
          yield* first.stop
          const seen: Array<number> = []
          yield* consumers.start({
            id: "giveback",
            handle: (e: AnyEvent) => Effect.sync(() => seen.push(reportSeq(e)))
          })
          yield* waitUntil(() => seen.length === 4, "the reports given back, well before the ack wait", undefined, "30 seconds")
          yield* drained(connection, "giveback")
          assert.deepStrictEqual(started, [1])
          assert.deepStrictEqual(seen, [1, 2, 3, 4], "each once, in order")
          assert.strictEqual(criticalIn.stats().givenBack, 4)
          return pool
        })
      )
      assert.strictEqual(result.stats().Event.outstanding + result.stats().ExecReport.outstanding, 0, "all recycled")
      assert.strictEqual(left, 0, "no fiber left once the strategy layer's scope closed")
    }), TIMEOUT)

  it.scopedLive("a bad frame is a typed error, counted and dead-lettered; nothing else is lost", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const layer = layerNatsStrategy({ nats: { servers: [server.url], ackWaitMs: 1_000, name: "bad-frames" } })
      const { left, aliveBefore, result } = yield* runAndCountLeftFibers(
        layer,
        Effect.gen(function*() {
          const { nc, js } = yield* NatsConnection
          const pool = yield* Pool
          const consumers = yield* NatsConsumers
          const marketIn = yield* MarketSubscriber
          const criticalIn = yield* CriticalSubscriber
          const deadLetter = yield* DeadLetter
          const seen: Array<string> = []
          yield* consumers.start({
            id: "bad",
            subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
            handle: (e: AnyEvent) =>
              Effect.sync(() => seen.push(e._pool === "ExecReport" ? `R ${e.payload!.reportSeq}` : `M ${e.seqProvider}`))
          })
          const recycler = yield* Recycler
          // only the wire form is sent: the test's own events go back to its pool at once
          const wire = (e: AnyEvent) => {
            const gen = generationOf(e)
            const text = encodeWireJson(e.toWire())
            recycler.unsafeRecycle(e, gen)
            return text
          }
          const subject = "md.sim-a.BTC-USDT.ticker"
          nc.publish(subject, wire(market(pool, { seq: 1 })))
          nc.publish(subject, "{not json")
          nc.publish(subject, JSON.stringify({ _tag: "Event", schemaVersion: 99 }))
          nc.publish(subject, wire(market(pool, { seq: 2 })))
          yield* Effect.promise(() => js.publish(criticalSubject("bad"), "\u0000garbage", { msgID: "garbage-1" }))
          yield* Effect.promise(() => js.publish(criticalSubject("bad"), wire(execReport(pool, "bad", 1)), { msgID: "exec:bad:c-1:1" }))
          yield* waitUntil(() => seen.length === 3, "the good frames")
          assert.deepStrictEqual(seen.filter((s) => s.startsWith("M")), ["M 1", "M 2"])
          assert.deepStrictEqual(seen.filter((s) => s.startsWith("R")), ["R 1"])
          assert.strictEqual(marketIn.stats().malformed, 2)
          assert.strictEqual(criticalIn.stats().malformed, 1)
          const errors = [...marketIn.malformed(), ...criticalIn.malformed()]
          assert.strictEqual(errors.length, 3)
          for (const e of errors) assert.instanceOf(e, MalformedFrame)
          assert.strictEqual(errors[0]!.source, `nats:${subject}`)
          assert.strictEqual(errors[0]!.raw, "{not json")
          assert.strictEqual(deadLetter.count(`nats:${subject}`, "malformed_frame"), 2)
          assert.strictEqual(deadLetter.count(`nats:${criticalSubject("bad")}`, "malformed_frame"), 1)
          return pool
        })
      )
      assert.strictEqual(result.stats().Event.outstanding + result.stats().ExecReport.outstanding, 0, "all recycled")
      assert.isAbove(aliveBefore, 0)
      assert.strictEqual(left, 0, "no fiber left once the strategy layer's scope closed")
    }), TIMEOUT)

  it.scopedLive("binary frames: a bad record in a batch is typed, counted and dead-lettered alone; a re-sent report runs once", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const layer = layerNatsStrategy({ nats: { servers: [server.url], ackWaitMs: 1_000, name: "bad-binary" } })
      const { left, result } = yield* runAndCountLeftFibers(
        layer,
        Effect.gen(function*() {
          const { js, nc } = yield* NatsConnection
          const pool = yield* Pool
          const consumers = yield* NatsConsumers
          const marketIn = yield* MarketSubscriber
          const criticalIn = yield* CriticalSubscriber
          const deadLetter = yield* DeadLetter
          const recycler = yield* Recycler
          const seen: Array<string> = []
          yield* consumers.start({
            id: "bin",
            subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
            handle: (e: AnyEvent) =>
              Effect.sync(() => seen.push(e._pool === "ExecReport" ? `R ${e.payload!.reportSeq}` : `M ${e.seqProvider}`))
          })
          /** A frame of these events (recycled at once: only the bytes travel). */
          const frame = (events: ReadonlyArray<AnyEvent>) => {
            const bytes = encodeEvents(events)
            for (const e of events) recycler.unsafeRecycle(e, generationOf(e))
            return bytes
          }
          const bad = market(pool, { seq: 2 })
          bad.provider = "p".repeat(65) // over the contract's bound for a name: refused by the decoder, alone
          const subject = "md.sim-a.BTC-USDT.ticker"
          nc.publish(subject, frame([market(pool, { seq: 1 }), bad, market(pool, { seq: 3 })]))
          nc.publish(subject, Uint8Array.from([0xb1, 9, 1, 0, 0, 0])) // an unknown version
          // one report, then the same report again in another message (a feed that re-sent it): it runs once
          yield* Effect.promise(() => js.publish(criticalSubject("bin"), frame([execReport(pool, "bin", 1), execReport(pool, "bin", 2)]), { msgID: "batch-1" }))
          yield* Effect.promise(() => js.publish(criticalSubject("bin"), frame([execReport(pool, "bin", 2), execReport(pool, "bin", 3)]), { msgID: "batch-2" }))
          yield* waitUntil(() => seen.length >= 5, "the good records")
          assert.deepStrictEqual(seen.filter((x) => x.startsWith("M")), ["M 1", "M 3"])
          assert.deepStrictEqual(seen.filter((x) => x.startsWith("R")).length, 3)
          assert.strictEqual(new Set(seen.filter((x) => x.startsWith("R"))).size, 3, "each report once")
          assert.strictEqual(marketIn.stats().malformed, 2)
          const errors = marketIn.malformed()
          for (const e of errors) assert.instanceOf(e, MalformedFrame)
          assert.include(errors[0]!.reason, "provider must be at most 64 characters")
          assert.include(errors[1]!.reason, "unsupported binary frame version 9")
          assert.isTrue(errors[0]!.raw.startsWith("base64:"))
          assert.strictEqual(deadLetter.count(`nats:${subject}`, "malformed_frame"), 2)
          assert.strictEqual(criticalIn.stats().redeliveriesDropped, 1)
          yield* drained(yield* NatsConnection, "bin")
          return pool
        })
      )
      assert.strictEqual(result.stats().Event.outstanding + result.stats().ExecReport.outstanding, 0, "all recycled")
      assert.strictEqual(left, 0, "no fiber left once the strategy layer's scope closed")
    }), TIMEOUT)
})
