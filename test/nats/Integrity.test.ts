/**
 * Integrity of the NATS buses against a real `nats-server`: a restarted feed
 * (a new epoch) is followed at once, a forged sequence jump does not silence
 * a stream, and no command can block the feed's Control Plane (an id too
 * large for a message header, nesting 10,000 deep, a 1 MB body, 2,000 poison
 * messages in a row): each ends acknowledged or terminated, and the commands
 * behind it are handled. Every wait polls a condition with a generous bound,
 * so a loaded machine is slower, never wrong.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, LogLevel, Schedule } from "effect"
import { layerNatsFeed, layerNatsFeedPipeline, layerNatsStrategy } from "../../layers/Nats.js"
import { encodeControlJson, envelope, QueryOrder } from "../../schema/Control.js"
import { ControlResultPayload, decimal, encodeWireJson, ExecReportPayload } from "../../schema/Event.js"
import { unpooled } from "../../src/codec/Binary.js"
import { decodeMessage } from "../../src/nats/internal/frames.js"
import type { JsMsg } from "@nats-io/jetstream"
import { DeadLetter } from "../../src/DeadLetter.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import type { AnyEvent } from "../../src/Event.js"
import { CommandConsumer, commandMsgId } from "../../src/nats/Commands.js"
import { NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import { PoisonCount, runDurable } from "../../src/nats/internal/durable.js"
import { criticalStream, ensureStream } from "../../src/nats/Streams.js"
import { CriticalPublisher } from "../../src/nats/CriticalChannel.js"
import { MarketSubscriber } from "../../src/nats/Market.js"
import {
  commandSubject,
  COMMANDS_DURABLE,
  COMMANDS_STREAM,
  CRITICAL_STREAM,
  criticalSubject
} from "../../src/nats/Subjects.js"
import { NatsConsumers } from "../../src/nats/NatsConsumers.js"
import { Pool } from "../../src/Pool.js"
import { ticker } from "../support/events.js"
import { marketOrder } from "./support/orders.js"
import { type Child, fixture, runScript, waitUntil } from "./support/process.js"
import { natsServer } from "./support/server.js"

const LONG = "90 seconds"
const TIMEOUT = { timeout: 180_000 }

const startFeed = (url: string, tickMs: number) =>
  Effect.gen(function*() {
    const feed = yield* runScript(fixture("feed.ts"), { NATS_URL: url, ACK_WAIT_MS: "5000", TICK_MS: String(tickMs) })
    yield* waitUntil(() => feed.lines.includes("ready"), "feed ready", feed, LONG)
    return feed
  })

interface Tick {
  readonly seq: number
  readonly epoch: string
}

const ticks = (c: Child): Array<Tick> =>
  c.lines.filter((l) => l.startsWith("M ")).map((l) => {
    const [, , seq, , epoch] = l.split(" ")
    return { seq: Number(seq), epoch: epoch! }
  })

/** Polls an effect until it succeeds, every 100 ms, for at most `LONG`. */
const eventually = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
  effect.pipe(
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo(LONG))),
    Effect.mapError(() => new Error(`timed out waiting for ${what}`))
  )

const quiet = Logger.minimumLogLevel(LogLevel.Error)

const TICKER_SUBJECT = "md.sim-a.BTC-USDT.ticker"

/** A sim-a BTC-USDT ticker in its wire form only: nothing of this process's pool is involved in sending it. */
const tickerFrame = (seq: number, epoch?: string) =>
  encodeWireJson({
    _tag: "Event",
    schemaVersion: 1,
    traceId: `t-${seq}`,
    provider: "sim-a",
    symbol: "BTC-USDT",
    seqProvider: seq,
    ...(epoch === undefined ? {} : { epoch }),
    ingestTs: 1,
    routingVersion: 0,
    kind: "ticker",
    payload: ticker("64000.10")
  })

/** A consumer of sim-a's BTC-USDT tickers; the sequences it handled, in order. */
const followTickers = (consumers: NatsConsumers, id: string) =>
  Effect.gen(function*() {
    const seen: Array<number> = []
    yield* consumers.start({
      id,
      subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
      handle: (e: AnyEvent) => Effect.sync(() => seen.push(e.seqProvider!))
    })
    return seen
  })

describe("NATS integrity", { sequential: true }, () => {
  it.scopedLive("feed killed and restarted: the strategy takes the new run's market data from its first sequences (a new epoch)", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const first = yield* startFeed(server.url, 2)
      const strategy = yield* runScript(fixture("strategy.ts"), {
        NATS_URL: server.url,
        CONSUMER_ID: "epoch",
        ACK_WAIT_MS: "5000",
        ORDERS: "0"
      })
      yield* waitUntil(() => strategy.lines.includes("ready"), "strategy ready", strategy, LONG)
      yield* waitUntil(() => ticks(strategy).length >= 200, "market data from the first run", strategy, LONG)
      yield* first.kill("SIGKILL")
      const before = ticks(strategy)
      const old = before[before.length - 1]!
      assert.isAtLeast(old.seq, 200, "the first run numbered past 200")
      const n = before.length

      yield* startFeed(server.url, 20)
      yield* waitUntil(
        () => ticks(strategy).slice(n).filter((t) => t.epoch !== old.epoch).length >= 10,
        "market data from the restarted feed",
        strategy,
        LONG
      )
      const fresh = ticks(strategy).slice(n).filter((t) => t.epoch !== old.epoch)
      assert.notStrictEqual(fresh[0]!.epoch, "-", "the feed stamps its epoch")
      assert.isBelow(fresh[0]!.seq, old.seq, "the new run is delivered from its start, not past the old run's sequence")
      assert.isAtMost(fresh[0]!.seq, 50, `first sequence of the new run delivered: ${fresh[0]!.seq}`)
      for (let i = 1; i < fresh.length; i++) assert.isAbove(fresh[i]!.seq, fresh[i - 1]!.seq, "in order")
    }), TIMEOUT)

  it.scopedLive("a forged frame with seqProvider 999,999,999 does not silence the stream: dropped as suspect, counted", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* Effect.gen(function*() {
        const { nc } = yield* NatsConnection
        const dispatcher = yield* Dispatcher
        const consumers = yield* NatsConsumers
        const seen = yield* followTickers(consumers, "forged")
        const publish = (seq: number) => nc.publish(TICKER_SUBJECT, tickerFrame(seq, "run-1"))
        for (let seq = 1; seq <= 20; seq++) publish(seq)
        yield* waitUntil(() => seen.length === 20, "the first frames", undefined, LONG)
        publish(999_999_999)
        // before the fix the forged frame waits behind a "gap" until the lateness runs out, then is skipped to
        yield* waitUntil(
          () => dispatcher.stats().suspectJumps + dispatcher.stats().gapsSkipped > 0 && dispatcher.stats().buffered === 0,
          "the forged frame handled",
          undefined,
          LONG
        )
        for (let seq = 21; seq <= 40; seq++) publish(seq)
        yield* waitUntil(() => seen.length === 40, "the real frames after the forged one", undefined, LONG)
        assert.deepStrictEqual(seen, Array.from({ length: 40 }, (_, i) => i + 1))
        assert.strictEqual(dispatcher.stats().suspectJumps, 1)
        assert.strictEqual(dispatcher.stats().duplicates, 0)
      }).pipe(Effect.provide(layerNatsStrategy({ nats: { servers: [server.url], name: "forged" } })))
    }), TIMEOUT)

  it.scopedLive("hostile market-data frames (nesting 10,000 deep in an id or a tag, 1 MB, not JSON) are typed, counted and dead-lettered; the stream goes on", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* Effect.gen(function*() {
        const { nc } = yield* NatsConnection
        const consumers = yield* NatsConsumers
        const marketIn = yield* MarketSubscriber
        const deadLetter = yield* DeadLetter
        const seen = yield* followTickers(consumers, "hostile")
        const subject = TICKER_SUBJECT
        const deepObject = `${"{\"a\":".repeat(10_000)}1${"}".repeat(10_000)}`
        const hostile: ReadonlyArray<readonly [string, RegExp]> = [
          [tickerFrame(2).replace(`"t-2"`, deepObject), /nested deeper than 32 levels/],
          [`{"_tag":${deepObject}}`, /nested deeper than 32 levels/],
          [`[${"[".repeat(10_000)}${"]".repeat(10_000)}]`, /nested deeper than 32 levels/],
          [tickerFrame(3).replace(`"t-3"`, JSON.stringify("t".repeat(1_000_000))), /traceId must be at most 256 characters/],
          ["{not json", /malformed JSON|JSON/],
          [tickerFrame(4).replace(`"seqProvider":4`, `"seqProvider":-4`), /seqProvider/],
          [tickerFrame(5).replace(`"ingestTs":1,`, `"ingestTs":1e999,`), /ingestTs/]
        ]
        nc.publish(subject, tickerFrame(1))
        for (const [text] of hostile) nc.publish(subject, text)
        nc.publish(subject, tickerFrame(2))
        yield* waitUntil(() => seen.length === 2, "the good frames around the hostile ones", undefined, LONG)
        assert.deepStrictEqual(seen, [1, 2])
        assert.strictEqual(marketIn.stats().malformed, hostile.length)
        const errors = marketIn.malformed().slice(-hostile.length)
        hostile.forEach(([, reason], i) => {
          assert.match(errors[i]!.reason, reason)
          assert.isAtMost(errors[i]!.raw.length, 4_096, "a bounded excerpt of the frame is kept")
        })
        assert.strictEqual(deadLetter.count(`nats:${subject}`, "malformed_frame"), hostile.length)
      }).pipe(Effect.provide(layerNatsStrategy({ nats: { servers: [server.url], name: "hostile" } })))
    }), TIMEOUT)

  it.scopedLive("a durable consumer whose message handling dies terminates that message (counted) and goes on to the next", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* Effect.gen(function*() {
        const { js, jsm } = yield* NatsConnection
        yield* ensureStream(criticalStream)
        const subject = criticalSubject("dies")
        for (const body of ["one", "two", "three"]) {
          yield* Effect.promise(() => js.publish(subject, body, { msgID: `dies-${body}` }))
        }
        const handled: Array<string> = []
        const poisoned = new PoisonCount()
        yield* runDurable({
          stream: CRITICAL_STREAM,
          durable: "dies-test",
          filterSubject: subject,
          poisoned,
          onMessage: (msg) =>
            Effect.suspend(() => {
              const body = new TextDecoder().decode(msg.data)
              if (body === "two") return Effect.dieMessage("a handler defect")
              handled.push(body)
              msg.ack()
              return Effect.void
            })
        })
        yield* waitUntil(() => handled.length === 2, "the messages around the one that dies", undefined, LONG)
        yield* eventually(
          "the durable consumer to settle",
          Effect.tryPromise(() => jsm.consumers.info(CRITICAL_STREAM, "dies-test")).pipe(
            Effect.filterOrFail((i) => i.num_pending === 0 && i.num_ack_pending === 0)
          )
        )
        assert.deepStrictEqual(handled, ["one", "three"])
        assert.strictEqual(poisoned.count, 1)
      }).pipe(
        Effect.provide(NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [server.url], name: "dies" })))),
        Effect.provide(quiet)
      )
    }), TIMEOUT)

  it.scopedLive("a durable consumer that stops gives back what it pulled and did not hand over: the next one gets it at once", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      yield* Effect.gen(function*() {
        const { js, jsm } = yield* NatsConnection
        yield* ensureStream(criticalStream)
        const subject = criticalSubject("handback")
        const bodies = ["one", "two", "three", "four"]
        for (const body of bodies) {
          yield* Effect.promise(() => js.publish(subject, body, { msgID: `handback-${body}` }))
        }
        const spec = (onMessage: (body: string, msg: JsMsg) => Effect.Effect<void>) => ({
          stream: CRITICAL_STREAM,
          durable: "handback-test",
          filterSubject: subject,
          onMessage: (msg: JsMsg) => Effect.suspend(() => onMessage(new TextDecoder().decode(msg.data), msg))
        })
        // the first consumer takes "one" and never finishes it; the rest waits in its inbox
        const taken: Array<string> = []
        yield* Effect.scoped(Effect.gen(function*() {
          yield* runDurable(spec((body) => Effect.zipRight(Effect.sync(() => taken.push(body)), Effect.never)))
          yield* waitUntil(() => taken.length === 1, "the first message taken", undefined, LONG)
          yield* eventually(
            "every message pulled",
            Effect.tryPromise(() => jsm.consumers.info(CRITICAL_STREAM, "handback-test")).pipe(
              Effect.filterOrFail((i) => i.num_ack_pending === bodies.length)
            )
          )
        }))
        // the next consumer on the durable gets the three given back long before the ack wait (60 s)
        const handled: Array<string> = []
        yield* runDurable(spec((body, msg) => Effect.sync(() => {
          handled.push(body)
          msg.ack()
        })))
        yield* waitUntil(() => handled.length === 3, "the messages given back, well before the ack wait", undefined, "30 seconds")
        yield* eventually(
          "only the first one still unacknowledged",
          Effect.tryPromise(() => jsm.consumers.info(CRITICAL_STREAM, "handback-test")).pipe(
            Effect.filterOrFail((i) => i.num_ack_pending === 1 && i.num_pending === 0)
          )
        )
        assert.deepStrictEqual(handled, ["two", "three", "four"], "given back once each, in their order")
        assert.deepStrictEqual(taken, ["one"])
      }).pipe(
        Effect.provide(
          NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [server.url], name: "handback", ackWaitMs: 60_000 })))
        ),
        Effect.provide(quiet)
      )
    }), TIMEOUT)

  describe("the feed's Control Plane", () => {
    const feedLayer = (url: string) =>
      layerNatsFeed({
        symbols: ["BTC-USDT"],
        providers: ["sim-a"],
        nats: { servers: [url], name: "feed-under-test" }
      }).pipe(Layer.provide(quiet))

    /** Every command the durable consumer took is settled: nothing pending, nothing awaiting an ack. */
    const settled = Effect.gen(function*() {
      const { jsm } = yield* NatsConnection
      return yield* eventually(
        "the commands consumer to settle",
        Effect.tryPromise(() => jsm.consumers.info(COMMANDS_STREAM, COMMANDS_DURABLE)).pipe(
          Effect.filterOrFail((i) => i.num_pending === 0 && i.num_ack_pending === 0)
        )
      )
    })

    const query = (consumerId: string, i: number) =>
      QueryOrder.make({ commandId: `${consumerId}-q-${i}`, consumerId, clientOrderId: `${consumerId}-o-${i}` })

    const send = (subject: string, text: string, msgId: string) =>
      Effect.flatMap(NatsConnection, ({ js }) => Effect.promise(() => js.publish(subject, text, { msgID: msgId })))

    const sendCommand = (cmd: ReturnType<typeof query> | ReturnType<typeof marketOrder>) =>
      send(commandSubject(cmd.consumerId), Either.getOrThrow(encodeControlJson(envelope(cmd))), commandMsgId(cmd))

    it.scopedLive("a QueryOrder with a 300 KB commandId (and one of 60 KB) is rejected and terminated; the commands behind it are handled", () =>
      Effect.gen(function*() {
        const server = yield* natsServer
        yield* Effect.gen(function*() {
          const commands = yield* CommandConsumer
          const victim = "victim"
          const huge = (n: number) =>
            JSON.stringify({
              schemaVersion: 1,
              command: { _tag: "QueryOrder", commandId: "c".repeat(n), consumerId: victim, clientOrderId: "o-1" }
            })
          yield* send(commandSubject(victim), huge(300_000), "huge-300k")
          yield* send(commandSubject(victim), huge(60_000), "huge-60k")
          for (let i = 1; i <= 5; i++) yield* sendCommand(query(victim, i))
          yield* eventually("the commands behind them", Effect.suspend(() =>
            commands.stats().handled >= 5 ? Effect.void : Effect.fail("not yet")))
          yield* settled
          const s = commands.stats()
          assert.strictEqual(s.invalid, 2)
          assert.strictEqual(s.terminated, 2, "both rejected commands terminated, never redelivered")
          assert.strictEqual(s.handled, 5)
        }).pipe(Effect.provide(feedLayer(server.url)))
      }), TIMEOUT)

    it.scopedLive("poison: nesting 10,000 deep, a 1 MB body and 2,000 malformed commands in a row are terminated and dead-lettered; deliveries go on", () =>
      Effect.gen(function*() {
        const server = yield* natsServer
        yield* Effect.gen(function*() {
          const commands = yield* CommandConsumer
          const deadLetter = yield* DeadLetter
          const subject = commandSubject("poisoner")
          const deep = `{"schemaVersion":1,"command":${"[".repeat(10_000)}${"]".repeat(10_000)}}`
          const body = JSON.stringify({ schemaVersion: 1, command: { _tag: "QueryOrder", pad: "p".repeat(1_000_000) } })
          yield* send(subject, deep, "deep")
          yield* send(subject, body, "body-1mb")
          const POISON = 2_000
          const poison = (i: number) =>
            i % 3 === 0
              ? `{not json ${i}`
              : i % 3 === 1
              ? `{"schemaVersion":1,"command":${"[".repeat(40)}${i}${"]".repeat(40)}}`
              : JSON.stringify({ schemaVersion: 1, command: { _tag: "Subscribe", commandId: `p-${i}`, kinds: 5 } })
          yield* Effect.forEach(Array.from({ length: POISON }, (_, i) => i), (i) => send(subject, poison(i), `poison-${i}`), {
            concurrency: 16,
            discard: true
          })
          for (let i = 1; i <= 5; i++) yield* sendCommand(marketOrder("survivor", i))
          yield* eventually("the orders behind the poison", Effect.suspend(() =>
            commands.stats().handled >= 5 ? Effect.void : Effect.fail("not yet")))
          yield* settled
          const s = commands.stats()
          assert.strictEqual(s.invalid, POISON + 2)
          assert.strictEqual(s.terminated, POISON + 2)
          assert.strictEqual(s.handled, 5)
          assert.strictEqual(s.redelivered, 0, "nothing came back")
          assert.strictEqual(deadLetter.count("nats:control.commands"), POISON + 2)
        }).pipe(Effect.provide(feedLayer(server.url)))
      }), TIMEOUT)

    it.scopedLive("a critical event the server refuses for good (over its max payload) fails at once, is counted and shown in readiness; the next one is stored", () =>
      Effect.gen(function*() {
        const server = yield* natsServer
        yield* Effect.gen(function*() {
          const critical = yield* CriticalPublisher
          const pool = yield* Pool
          const result = (commandId: string, detail: unknown) => {
            const e = pool.acquireEvent()
            e.kind = "control_result"
            e.provider = "gateway"
            e.symbol = "BTC-USDT"
            e.traceId = `result-${commandId}`
            e.payload = ControlResultPayload.make({
              commandId,
              command: "QueryOrder",
              consumerId: "refused",
              outcome: "ok",
              detail
            })
            return e
          }
          // publishes pipeline: whenStored waits until what was published is stored or refused for good
          yield* critical.publish(result("before", { n: 0 }))
          yield* critical.publish(result("too-big", { blob: "b".repeat(2_000_000) }))
          yield* critical.publish(result("fine", { n: 1 })).pipe(Effect.zipRight(critical.whenStored)).pipe(
            Effect.timeoutFail({ duration: LONG, onTimeout: () => new Error("the refused publish blocked") })
          )
          // the refused event travels alone: only it is dropped, the events around it are stored
          assert.strictEqual(critical.stats().unpublishable, 1)
          assert.strictEqual(critical.readinessReasons().length, 1)
          assert.strictEqual(critical.stats().published, 2)
        }).pipe(Effect.provide(feedLayer(server.url)))
      }), TIMEOUT)

    it.scopedLive("critical events pipeline within the window, in batches, and the stream holds each consumer's in order", () =>
      Effect.gen(function*() {
        const server = yield* natsServer
        const layer = layerNatsFeedPipeline({
          nats: { servers: [server.url], name: "window", criticalWindow: 8, criticalBatchMax: 4 }
        }).pipe(Layer.provide(quiet))
        yield* Effect.gen(function*() {
          const critical = yield* CriticalPublisher
          const pool = yield* Pool
          const { js } = yield* NatsConnection
          let most = 0
          const N = 60
          for (let i = 1; i <= N; i++) {
            for (const owner of ["w1", "w2"]) {
              const r = pool.acquireExecReport()
              r.provider = "paper"
              r.symbol = "BTC-USDT"
              r.traceId = `w-${owner}-${i}`
              r.payload = ExecReportPayload.make({
                orderId: `o-${i}`,
                clientOrderId: `${owner}-c-${i}`,
                consumerId: owner,
                side: "buy",
                orderType: "market",
                status: "new",
                quantity: decimal("1"),
                filledQty: decimal("0"),
                reportSeq: 1
              })
              yield* critical.publish(r)
              most = Math.max(most, critical.stats().inFlight)
            }
          }
          yield* critical.whenStored
          const stats = critical.stats()
          assert.isAtMost(most, 8, "never more than the window unstored")
          assert.strictEqual(stats.published, 2 * N)
          assert.isBelow(stats.messages, 2 * N, "several events per message")
          // the stream, read back in its order: each consumer's events as they were published
          const got: Record<string, Array<string>> = { w1: [], w2: [] }
          const consumer = yield* Effect.promise(() => js.consumers.get(CRITICAL_STREAM))
          while (got["w1"]!.length + got["w2"]!.length < 2 * N) {
            const msg = yield* Effect.promise(() => consumer.next({ expires: 2_000 }))
            if (msg === null) break
            const events: Array<AnyEvent> = []
            decodeMessage("test", msg.data, unpooled, events, [])
            for (const e of events) {
              const p = e.payload as ExecReportPayload
              got[p.consumerId]!.push(p.clientOrderId)
            }
          }
          for (const owner of ["w1", "w2"]) {
            assert.deepStrictEqual(got[owner], Array.from({ length: N }, (_, i) => `${owner}-c-${i + 1}`))
          }
        }).pipe(Effect.provide(layer))
      }), TIMEOUT)
  })
})
