/**
 * Typed rejections over NATS, against a real `nats-server`: a feed and a
 * strategy, each with its own connection, in this process. The strategy's
 * commands go to the feed on JetStream; each ControlResult comes back on the
 * strategy's critical subject as a frame, and the tagged rejection in it must
 * arrive as the same value of the same class (nothing turned into text).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import { layerNatsFeed, layerNatsStrategy } from "../../layers/Nats.js"
import { EVENT_SCHEMA_VERSION } from "../../schema/Event.js"
import { ControlResultPayload, decimal, Ticker } from "../../schema/Event.js"
import {
  DuplicateClientOrderId,
  encodeRejection,
  InvalidCommand,
  OrderNotCancelable,
  OrderNotFound,
  RejectedAsText,
  type Rejection,
  UnknownSymbol,
  UnknownVenue,
  VenueRejected
} from "../../schema/Rejection.js"
import { ControlBus } from "../../src/ControlBus.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import { ExecutionVenue } from "../../src/ExecutionVenue.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import { CommandConsumer } from "../../src/nats/Commands.js"
import { NatsConnection } from "../../src/nats/Connection.js"
import { CommandRefused } from "../../src/nats/Errors.js"
import { NatsConsumers } from "../../src/nats/NatsConsumers.js"
import { commandSubject, criticalSubject, operatorSubject } from "../../src/nats/Subjects.js"
import { Orchestrator } from "../../src/Orchestrator.js"
import { Pool } from "../../src/Pool.js"
import { everyRejection } from "../fixtures/rejections.js"
import { natsServer } from "./support/server.js"

const TIMEOUT = { timeout: 120_000 }
const SYM = "BTC-USDT"
const ALICE = "alice"

interface Result {
  readonly commandId: string
  readonly outcome: "ok" | "rejected"
  readonly rejection: Rejection | undefined
  readonly also: ReadonlyArray<Rejection>
}

const eventually = (check: () => boolean, what: string) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail(new Error(`not within 30 s: ${what}`)))).pipe(
    Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo("30 seconds")))
  )

/** A feed (paper venue, Control Plane) and a strategy process's layers on one server; alice reads her results. */
const start = Effect.gen(function*() {
  const server = yield* natsServer
  const nats = (name: string) => ({ servers: [server.url], ackWaitMs: 1_000, name })
  const feed = yield* Layer.build(layerNatsFeed({ symbols: [SYM], providers: ["sim-a", "sim-b"], nats: nats("feed") }))
  const strategy = yield* Layer.build(layerNatsStrategy({ nats: nats(ALICE) }))
  const results: Array<Result> = []
  yield* Context.get(strategy, NatsConsumers).start({
    id: ALICE,
    subscriptions: [],
    handle: (e) =>
      Effect.sync(() => {
        if (e._pool !== "Event" || e.payload?._tag !== "control_result") return
        const p = e.payload
        results.push({ commandId: p.commandId, outcome: p.outcome, rejection: p.rejection, also: p.also ?? [] })
      })
  })
  const pool = Context.get(feed, Pool)
  const orchestrator = Context.get(feed, Orchestrator)
  /** One sim-a ticker into the feed: the paper venue's market view. */
  const tick = Effect.suspend(() => {
    const e = pool.acquireEvent()
    e.provider = "sim-a"
    e.symbol = SYM
    e.kind = "ticker"
    e.traceId = "tick-1"
    e.payload = Ticker.make({
      bidPrice: decimal("99"),
      bidQty: decimal("5"),
      askPrice: decimal("100"),
      askQty: decimal("5"),
      exchangeTs: 1
    })
    return orchestrator.ingest(e)
  })
  return {
    results,
    tick,
    control: Context.get(strategy, ControlBus),
    feedDispatcher: Context.get(feed, Dispatcher),
    feedPool: pool,
    venue: Context.get(feed, ExecutionVenue),
    feedConnection: Context.get(feed, NatsConnection),
    feedCommands: Context.get(feed, CommandConsumer),
    feedDeadLetter: Context.get(feed, DeadLetter)
  }
})

const command = (body: Record<string, unknown>) =>
  JSON.stringify({ schemaVersion: 1, command: { consumerId: ALICE, ...body } })

const order = (commandId: string, clientOrderId: string, extra: Record<string, unknown> = {}) =>
  command({
    _tag: "SubmitOrder",
    commandId,
    clientOrderId,
    symbol: SYM,
    side: "buy",
    orderType: "limit",
    quantity: "1",
    price: "90",
    ...extra
  })

const same = (got: Rejection | undefined, expected: Rejection, what: string) => {
  assert.isDefined(got, what)
  assert.strictEqual(got!.constructor, expected.constructor, `${what}: an instance of ${expected._tag}`)
  assert.deepStrictEqual(encodeRejection(got!), encodeRejection(expected), what)
}

describe("typed rejections over NATS", { sequential: true }, () => {
  it.scopedLive("each reason the gateway gives reaches the strategy intact, from its real producer", () =>
    Effect.gen(function*() {
      const s = yield* start
      yield* s.control.submitJson(order("n1", "o-1"))
      yield* eventually(() => s.results.length === 1, "the result before any market data")
      yield* s.tick
      yield* s.control.submitJson(order("n2", "o-2"))
      yield* s.control.submitJson(order("n3", "o-2", { price: "91" }))
      yield* s.control.submitJson(order("n4", "o-3", { orderType: "market", price: undefined }))
      yield* s.control.submitJson(command({ _tag: "CancelOrder", commandId: "n5", clientOrderId: "o-3" }))
      yield* s.control.submitJson(command({ _tag: "QueryOrder", commandId: "n6", clientOrderId: "o-404" }))
      yield* s.control.submitJson(command({ _tag: "Subscribe", commandId: "n7", symbol: "DOGE-USDT", kinds: ["trade"] }))
      yield* s.control.submitJson(command({
        _tag: "SubscribeMerged",
        commandId: "n8",
        symbol: SYM,
        kind: "ticker",
        providers: ["sim-a", "ftx", "bitmex"],
        windowMs: 100,
        maxFragments: 4
      }))
      yield* s.control.submitJson(command({ _tag: "Subscribe", commandId: "n9", symbol: SYM, kinds: [] }))
      yield* eventually(() => s.results.length === 9, "nine results").pipe(Effect.tapError(() => Effect.sync(() => console.log("GOT", s.results.map((r) => r.commandId + ":" + r.outcome).join(" ")))))
      const byId = new Map(s.results.map((r) => [r.commandId, r]))
      const orderId = (clientOrderId: string) =>
        Effect.runSync(s.venue.query({ consumerId: ALICE, clientOrderId } as never)).orderId
      same(
        byId.get("n1")!.rejection,
        new VenueRejected({
          venue: "paper",
          clientOrderId: "o-1",
          symbol: SYM,
          code: "no_market_data",
          text: `no market data for ${SYM}`,
          orderId: orderId("o-1")
        }),
        "n1"
      )
      assert.strictEqual(byId.get("n2")!.outcome, "ok")
      same(
        byId.get("n3")!.rejection,
        new DuplicateClientOrderId({ clientOrderId: "o-2", conflict: "other_terms", fields: ["price"], orderId: orderId("o-2") }),
        "n3"
      )
      assert.strictEqual(byId.get("n4")!.outcome, "ok")
      same(
        byId.get("n5")!.rejection,
        new OrderNotCancelable({ clientOrderId: "o-3", consumerId: ALICE, orderId: orderId("o-3"), status: "filled" }),
        "n5"
      )
      same(byId.get("n6")!.rejection, new OrderNotFound({ clientOrderId: "o-404", consumerId: ALICE }), "n6")
      same(byId.get("n7")!.rejection, new UnknownSymbol({ symbol: "DOGE-USDT" }), "n7")
      same(byId.get("n8")!.rejection, new UnknownVenue({ venue: "ftx" }), "n8")
      assert.deepStrictEqual(byId.get("n8")!.also.map((r) => encodeRejection(r)), [{ _tag: "UnknownVenue", venue: "bitmex" }])
      same(
        byId.get("n9")!.rejection,
        new InvalidCommand({ commandId: "n9", command: "Subscribe", consumerId: ALICE, reason: "command.kinds: kinds must not be empty" }),
        "n9"
      )
    }), TIMEOUT)

  it.scopedLive("every reason of the union crosses the critical channel as the same tagged value", () =>
    Effect.gen(function*() {
      const s = yield* start
      // the feed's Dispatcher publishes each result on alice's critical subject, as the Control Plane does
      for (let i = 0; i < everyRejection.length; i++) {
        const e = s.feedPool.acquireEvent()
        e.kind = "control_result"
        e.provider = "control"
        e.traceId = `result-u${i}`
        e.ingestTs = 1_000
        e.payload = ControlResultPayload.make({
          commandId: `u${i}`,
          command: "SubmitOrder",
          consumerId: ALICE,
          outcome: "rejected",
          rejection: everyRejection[i]!,
          also: [everyRejection[(i + 1) % everyRejection.length]!]
        })
        yield* s.feedDispatcher.dispatch(e)
      }
      yield* eventually(() => s.results.length === everyRejection.length, "every result")
      for (let i = 0; i < everyRejection.length; i++) {
        const r = s.results.find((x) => x.commandId === `u${i}`)!
        same(r.rejection, everyRejection[i]!, everyRejection[i]!._tag)
        same(r.also[0], everyRejection[(i + 1) % everyRejection.length]!, `also of u${i}`)
      }
    }), TIMEOUT)

  it.scopedLive("a version 1 result (its reason as text) from an older feed still reaches the strategy", () =>
    Effect.gen(function*() {
      const s = yield* start
      assert.strictEqual(EVENT_SCHEMA_VERSION, 2)
      const text = "order rejected: no market data for BTC-USDT"
      const frame = {
        _tag: "Event",
        schemaVersion: 1,
        traceId: "result-old",
        provider: "control",
        symbol: "",
        ingestTs: 1_000,
        routingVersion: 0,
        kind: "control_result",
        payload: {
          _tag: "control_result",
          commandId: "old-1",
          command: "SubmitOrder",
          consumerId: ALICE,
          outcome: "rejected",
          reason: text
        }
      }
      yield* Effect.promise(() =>
        s.feedConnection.js.publish(criticalSubject(ALICE), JSON.stringify(frame), { msgID: "old-1" })
      )
      yield* eventually(() => s.results.length === 1, "the old result")
      same(s.results[0]!.rejection, new RejectedAsText({ text }), "old-1")
    }), TIMEOUT)

  it.scopedLive("a command refused for its sender is dead-lettered as a typed CommandRefused, and not answered", () =>
    Effect.gen(function*() {
      const s = yield* start
      const publish = (subject: string, body: Record<string, unknown>, msgID: string) =>
        Effect.promise(() => s.feedConnection.js.publish(subject, command(body), { msgID }))
      // alice's cancel on bob's subject, and a flip on alice's own strategy subject
      yield* publish(commandSubject("bob"), { _tag: "CancelOrder", commandId: "f1", clientOrderId: "o-1" }, "f1")
      yield* publish(commandSubject(ALICE), { _tag: "FlipRouting", commandId: "f2" }, "f2")
      yield* eventually(() => s.feedCommands.stats().forged === 1 && s.feedCommands.stats().unauthorized === 1, "both refused")
      const letters = s.feedDeadLetter.entries().map((e) => e.reason)
      assert.includeMembers(letters, [
        new CommandRefused({
          refusal: "forged",
          subject: commandSubject("bob"),
          command: "CancelOrder",
          commandId: "f1",
          consumerId: ALICE
        }).message,
        new CommandRefused({
          refusal: "unauthorized",
          subject: commandSubject(ALICE),
          command: "FlipRouting",
          commandId: "f2",
          consumerId: ALICE
        }).message
      ])
      // the same flip on the operator subject of the id it names is taken, and answered with its typed rejection
      yield* publish(operatorSubject(ALICE), { _tag: "FlipRouting", commandId: "f3" }, "f3")
      yield* eventually(() => s.results.length === 1, "the operator's answer")
      assert.deepStrictEqual(s.results.map((r) => [r.commandId, r.rejection?._tag]), [["f3", "NothingStaged"]])
    }), TIMEOUT)
})
