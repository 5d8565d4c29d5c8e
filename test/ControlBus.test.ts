import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import { layerCore } from "../layers/Core.js"
import { layerMemory } from "../layers/Memory.js"
import { QueryOrder, Subscribe } from "../schema/Control.js"
import { BookSnapshot, decimal } from "../schema/Event.js"
import {
  DuplicateClientOrderId,
  encodeRejection,
  InvalidCommand,
  NothingStaged,
  OrderNotCancelable,
  OrderNotFound,
  ORDER_REJECTION_TAGS,
  type OrderRejection,
  type Rejection,
  UnknownSymbol,
  UnknownVenue,
  VenueRejected
} from "../schema/Rejection.js"
import { Risk } from "../src/execution/Risk.js"
import { everyRejection } from "./fixtures/rejections.js"
import { Consumers } from "../src/Consumer.js"
import { ControlBus } from "../src/ControlBus.js"
import { ControlPlane, Topology } from "../src/ControlPlane.js"
import { DeadLetter } from "../src/DeadLetter.js"
import { Dispatcher } from "../src/Dispatcher.js"
import type { AnyEvent } from "../src/Event.js"
import { ExecutionVenue, type ExecutionVenueShape } from "../src/ExecutionVenue.js"
import { Orchestrator, OrchestratorConfig } from "../src/Orchestrator.js"
import { Pool } from "../src/Pool.js"
import { eventually } from "./support/events.js"

const layer = () => layerMemory({ symbols: ["BTC-USDT"], providers: ["sim-a", "sim-b"] })
const services = Effect.all({
  pool: Pool,
  consumers: Consumers,
  control: ControlBus,
  plane: ControlPlane,
  orchestrator: Orchestrator,
  dispatcher: Dispatcher,
  venue: ExecutionVenue,
  deadLetter: DeadLetter
})

interface Reply {
  readonly kind: string
  readonly commandId?: string
  readonly outcome?: string
  readonly rejection?: Rejection
  readonly also?: ReadonlyArray<Rejection>
  readonly status?: string
  readonly clientOrderId?: string
  readonly reportSeq?: number
  readonly filledQty?: string
  readonly routingVersion?: number
}

const reply = (e: AnyEvent): Reply => {
  const p = e.payload
  switch (p?._tag) {
    case "control_ack":
      return { kind: e.kind, commandId: p.commandId }
    case "control_result":
      return {
        kind: e.kind,
        commandId: p.commandId,
        outcome: p.outcome,
        ...(p.rejection === undefined ? {} : { rejection: p.rejection }),
        ...(p.also === undefined ? {} : { also: p.also })
      }
    case "exec_report":
      return {
        kind: e.kind,
        status: p.status,
        clientOrderId: p.clientOrderId,
        reportSeq: p.reportSeq,
        filledQty: p.filledQty,
        routingVersion: e.routingVersion
      }
    default:
      return { kind: e.kind }
  }
}

/** A book on sim-a: asks 100 x 1, 101 x 2; bids 99 x 1. */
const seedBook = Effect.gen(function*() {
  const { pool, orchestrator } = yield* services
  const e = pool.acquireEvent()
  e.provider = "sim-a"
  e.symbol = "BTC-USDT"
  e.kind = "book_snapshot"
  e.traceId = "book-1"
  e.payload = BookSnapshot.make({
    bids: [[decimal("99"), decimal("1")]],
    asks: [[decimal("100"), decimal("1")], [decimal("101"), decimal("2")]],
    state: "consistent"
  })
  yield* orchestrator.ingest(e)
})

const trader = (id: string, die: (r: Reply) => boolean = () => false) =>
  Effect.gen(function*() {
    const { consumers } = yield* services
    const got: Array<Reply> = []
    const h = yield* consumers.start({
      id,
      handle: (e) =>
        Effect.suspend(() => {
          const r = reply(e)
          got.push(r)
          return die(r) ? Effect.die(new Error("strategy bug")) : Effect.void
        })
    })
    return { got, handle: h }
  })

const order = (commandId: string, clientOrderId: string, extra: Record<string, unknown>) =>
  JSON.stringify({
    schemaVersion: 1,
    command: {
      _tag: "SubmitOrder",
      commandId,
      consumerId: "trader",
      clientOrderId,
      symbol: "BTC-USDT",
      side: "buy",
      ...extra
    }
  })

/** Stages a table routing BTC-USDT from both providers and flips it in: the routing version goes up by one. */
const flipRouting = (id: string) =>
  Effect.gen(function*() {
    const { control } = yield* services
    const command = (body: Record<string, unknown>) => control.submitJson(JSON.stringify({ schemaVersion: 1, command: body }))
    yield* command({
      _tag: "StageRouting",
      commandId: `stage-${id}`,
      consumerId: "operator",
      routes: [{ symbol: "BTC-USDT", providers: ["sim-a", "sim-b"] }]
    })
    yield* command({ _tag: "FlipRouting", commandId: `flip-${id}`, consumerId: "operator", expectedStagedId: `stage-${id}` })
  })

/** A book on sim-a with the given best ask (1 unit), to cross resting orders. */
const askAt = (price: string) =>
  Effect.gen(function*() {
    const { pool, orchestrator } = yield* services
    const e = pool.acquireEvent()
    e.provider = "sim-a"
    e.symbol = "BTC-USDT"
    e.kind = "book_snapshot"
    e.traceId = `book-${price}`
    e.payload = BookSnapshot.make({ bids: [[decimal("80"), decimal("1")]], asks: [[decimal(price), decimal("1")]], state: "consistent" })
    yield* orchestrator.ingest(e)
  })

describe("Control Bus and orders", () => {
  it.scoped("FR-014: execution reports carry the routing version current at their creation, not 0", () =>
    Effect.gen(function*() {
      const { control, orchestrator, pool } = yield* services
      yield* trader("operator")
      yield* seedBook
      const { got } = yield* trader("trader")
      const v1 = orchestrator.routingVersion()
      yield* control.submitJson(order("c1", "o-1", { orderType: "market", quantity: "1" }))
      yield* control.submitJson(order("c2", "o-2", { orderType: "limit", quantity: "1", price: "95" }))
      yield* eventually(() => got.filter((r) => r.kind === "control_result").length === 2)
      const first = got.filter((r) => r.kind === "exec_report")
      assert.deepStrictEqual(first.map((r) => `${r.clientOrderId}:${r.status}@${r.routingVersion}`), [
        `o-1:new@${v1}`,
        `o-1:filled@${v1}`,
        `o-2:new@${v1}`
      ])
      // a flip, then market data fills the resting order: its report is created under the new version
      yield* flipRouting("a")
      const v2 = v1 + 1
      yield* eventually(() => orchestrator.routingVersion() === v2, "the first flip")
      yield* askAt("94")
      yield* eventually(() => got.some((r) => r.clientOrderId === "o-2" && r.status === "filled"))
      const fill = got.find((r) => r.clientOrderId === "o-2" && r.status === "filled")!
      assert.strictEqual(fill.routingVersion, v2)
      // and a command after a second flip: reports under the version after it
      yield* flipRouting("b")
      yield* eventually(() => orchestrator.routingVersion() === v2 + 1, "the second flip")
      yield* control.submitJson(order("c3", "o-3", { orderType: "limit", quantity: "1", price: "90" }))
      yield* eventually(() => got.some((r) => r.clientOrderId === "o-3"))
      assert.strictEqual(got.find((r) => r.clientOrderId === "o-3")!.routingVersion, v2 + 1)
      yield* eventually(() => pool.stats().ExecReport.outstanding === 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("ControlResults and acks are never filtered by routing version, however far behind they are stamped", () =>
    Effect.gen(function*() {
      const { consumers, control, orchestrator } = yield* services
      yield* seedBook
      const got: Array<Reply & { readonly version: number }> = []
      // the consumer accepts nothing older than version 50: every reply below is stamped far behind it
      const h = yield* consumers.start({
        id: "trader",
        minVersion: 50,
        handle: (e) => Effect.sync(() => got.push({ ...reply(e), version: e.routingVersion }))
      })
      assert.isBelow(orchestrator.routingVersion(), 50)
      yield* control.submitJson(order("c1", "o-1", { orderType: "market", quantity: "1" }))
      yield* control.submitJson(order("c2", "o-2", { symbol: "DOGE-USDT", orderType: "market", quantity: "1" }))
      yield* eventually(() => got.filter((r) => r.kind === "control_result").length === 2, "both results")
      assert.deepStrictEqual(
        got.filter((r) => r.kind === "control_result").map((r) => `${r.commandId}:${r.outcome}`),
        ["c1:ok", "c2:rejected"]
      )
      assert.strictEqual(got.filter((r) => r.kind === "control_ack").length, 2)
      assert.isTrue(got.every((r) => r.version < 50), "all stamped behind the consumer's minimum")
      assert.strictEqual(h.stats().skippedStale, 0)
      assert.strictEqual(h.stats().processed, got.length)
    }).pipe(Effect.provide(layer()), Effect.provide(Logger.remove(Logger.defaultLogger))))

  it.scoped("a market order: ack, its execution reports in order (partial fill across levels), then the result", () =>
    Effect.gen(function*() {
      const { pool } = yield* services
      yield* seedBook
      const { got } = yield* trader("trader")
      const { control } = yield* services
      yield* control.submitJson(order("c1", "o-1", { orderType: "market", quantity: "2" }))
      yield* eventually(() => got.some((r) => r.kind === "control_result"))
      assert.deepStrictEqual(got.map((r) => r.kind), [
        "control_ack",
        "exec_report",
        "exec_report",
        "exec_report",
        "control_result"
      ])
      const reports = got.filter((r) => r.kind === "exec_report")
      assert.deepStrictEqual(reports.map((r) => r.status), ["new", "partially_filled", "filled"])
      assert.deepStrictEqual(reports.map((r) => r.reportSeq), [1, 2, 3])
      assert.strictEqual(reports.at(-1)!.filledQty, "2")
      yield* eventually(() => pool.stats().ExecReport.outstanding === 0 && pool.stats().Event.outstanding === 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("resubmitting a client order id returns the existing order and never fills twice", () =>
    Effect.gen(function*() {
      const { control, venue } = yield* services
      yield* seedBook
      const { got } = yield* trader("trader")
      yield* control.submitJson(order("c1", "o-1", { orderType: "market", quantity: "1" }))
      yield* control.submitJson(order("c2", "o-1", { orderType: "market", quantity: "1" }))
      yield* eventually(() => got.filter((r) => r.kind === "control_result").length === 2)
      const results = got.filter((r) => r.kind === "control_result")
      assert.deepStrictEqual(results.map((r) => r.outcome), ["ok", "ok"])
      assert.strictEqual(got.filter((r) => r.status === "filled").length, 1)
      assert.strictEqual(venue.stats().orders, 1)
      assert.strictEqual(venue.stats().fills, 1)
    }).pipe(Effect.provide(layer())))

  it.scoped("a resting limit order can be queried and canceled", () =>
    Effect.gen(function*() {
      const { control } = yield* services
      yield* seedBook
      const { got } = yield* trader("trader")
      yield* control.submitJson(order("c1", "o-9", { orderType: "limit", quantity: "1", price: "95" }))
      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "QueryOrder", commandId: "q1", consumerId: "trader", clientOrderId: "o-9" }
      }))
      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "CancelOrder", commandId: "x1", consumerId: "trader", clientOrderId: "o-9" }
      }))
      yield* eventually(() => got.some((r) => r.status === "canceled"))
      assert.deepStrictEqual(got.filter((r) => r.kind === "exec_report").map((r) => r.status), ["new", "canceled"])
      assert.deepStrictEqual(got.filter((r) => r.kind === "control_result").map((r) => `${r.commandId}:${r.outcome}`), [
        "c1:ok",
        "q1:ok",
        "x1:ok"
      ])
    }).pipe(Effect.provide(layer())))

  it.scoped("a consumer that dies on an ExecReport still has it recycled and gets the next one", () =>
    Effect.gen(function*() {
      const { control, pool } = yield* services
      yield* seedBook
      const { got, handle } = yield* trader("trader", (r) => r.status === "new")
      yield* control.submitJson(order("c1", "o-1", { orderType: "market", quantity: "1" }))
      yield* eventually(() => got.some((r) => r.status === "filled"))
      assert.strictEqual(handle.stats().failures, 1)
      yield* eventually(() => pool.stats().ExecReport.outstanding === 0)
    }).pipe(Effect.provide(layer()), Effect.provide(Logger.remove(Logger.defaultLogger))))

  describe("invalid commands: a typed rejection each, counted, and nothing else changes", () => {
    /** The input, and the rejection expected: its tag and the fields it must carry. */
    const table: ReadonlyArray<readonly [string, string, Rejection["_tag"], Record<string, unknown>]> = [
      [
        "unknown symbol",
        order("b1", "o-1", { symbol: "DOGE-USDT", orderType: "market", quantity: "1" }),
        "UnknownSymbol",
        { symbol: "DOGE-USDT" }
      ],
      [
        "zero quantity",
        order("b2", "o-2", { orderType: "market", quantity: "0" }),
        "InvalidCommand",
        { commandId: "b2", command: "SubmitOrder", consumerId: "trader", reason: "command.quantity: quantity must be greater than 0 (got 0)" }
      ],
      [
        "limit without price",
        order("b3", "o-3", { orderType: "limit", quantity: "1" }),
        "InvalidCommand",
        { reason: "command: a limit order requires a price" }
      ],
      [
        "bad window",
        JSON.stringify({
          schemaVersion: 1,
          command: {
            _tag: "SubscribeMerged",
            commandId: "b4",
            consumerId: "trader",
            symbol: "BTC-USDT",
            kind: "ticker",
            providers: ["sim-a", "sim-b"],
            windowMs: -5,
            maxFragments: 4
          }
        }),
        "InvalidCommand",
        { command: "SubscribeMerged", reason: "command.windowMs: windowMs must be an integer in 1..60000 (got -5)" }
      ],
      [
        "unknown provider",
        JSON.stringify({
          schemaVersion: 1,
          command: {
            _tag: "SubscribeMerged",
            commandId: "b5",
            consumerId: "trader",
            symbol: "BTC-USDT",
            kind: "ticker",
            providers: ["sim-a", "nowhere"],
            windowMs: 100,
            maxFragments: 4
          }
        }),
        "UnknownVenue",
        { venue: "nowhere" }
      ],
      [
        "unknown command",
        JSON.stringify({ schemaVersion: 1, command: { _tag: "Launch", commandId: "b6", consumerId: "trader" } }),
        "InvalidCommand",
        { commandId: "b6", command: "Launch", consumerId: "trader" }
      ],
      [
        "cancel of an unknown order",
        JSON.stringify({ schemaVersion: 1, command: { _tag: "CancelOrder", commandId: "b7", consumerId: "trader", clientOrderId: "nope" } }),
        "OrderNotFound",
        { clientOrderId: "nope", consumerId: "trader" }
      ]
    ]
    for (const [name, raw, tag, fields] of table) {
      it.scoped(name, () =>
        Effect.gen(function*() {
          const { control, plane, orchestrator, dispatcher, venue } = yield* services
          const { got } = yield* trader("trader")
          const version = orchestrator.routingVersion()
          yield* control.submitJson(raw)
          yield* eventually(() => got.some((r) => r.kind === "control_result"), "the rejection")
          const result = got.find((r) => r.kind === "control_result")!
          assert.strictEqual(result.outcome, "rejected")
          const rejection = result.rejection!
          assert.strictEqual(rejection._tag, tag)
          for (const [k, v] of Object.entries(fields)) assert.deepStrictEqual((rejection as any)[k], v, k)
          assert.deepStrictEqual(
            Object.entries(plane.stats().rejections).map(([k, n]) => [k.slice(k.lastIndexOf(":") + 1), n]),
            [[tag, 1]],
            "counted by its tag"
          )
          assert.isTrue(got.some((r) => r.kind === "control_ack"), "acknowledged first")
          assert.strictEqual(plane.stats().rejected, 1)
          assert.strictEqual(orchestrator.routingVersion(), version)
          assert.deepStrictEqual(dispatcher.subscribersOf({ symbol: "BTC-USDT", kind: "ticker", merged: true }), [])
          assert.strictEqual(venue.stats().orders, 0)
          assert.strictEqual(orchestrator.stats().openWindows, 0)
        }).pipe(Effect.provide(layer()), Effect.provide(Logger.remove(Logger.defaultLogger))))
    }

    it.scoped("commands naming themselves anything add no key to the rejection counts: one 'unknown' key", () =>
      Effect.gen(function*() {
        const { control, plane } = yield* services
        const { got } = yield* trader("trader")
        for (let i = 0; i < 50; i++) {
          yield* control.submitJson(JSON.stringify({ schemaVersion: 1, command: { _tag: `Launch${i}`, commandId: `l${i}`, consumerId: "trader" } }))
        }
        yield* eventually(() => got.filter((r) => r.kind === "control_result").length === 50, "fifty rejections")
        assert.deepStrictEqual(plane.stats().rejections, { "unknown:InvalidCommand": 50 })
      }).pipe(Effect.provide(layer()), Effect.provide(Logger.remove(Logger.defaultLogger))))

    it.scoped("malformed JSON is counted and dead-lettered", () =>
      Effect.gen(function*() {
        const { control, deadLetter, plane } = yield* services
        yield* control.submitJson("{ not json")
        assert.strictEqual(control.stats().malformed, 1)
        assert.strictEqual(deadLetter.entries().length, 1)
        assert.strictEqual(deadLetter.entries()[0]!.source, "control")
        assert.strictEqual(plane.stats().handled, 0)
      }).pipe(Effect.provide(layer()), Effect.provide(Logger.remove(Logger.defaultLogger))))
  })
})

describe("typed rejections end to end through the in-memory Control Bus", () => {
  /** The reasons a venue can refuse an order with, one per clientOrderId `r-<i>`. */
  const orderRejections = everyRejection.filter((r): r is OrderRejection => ORDER_REJECTION_TAGS.has(r._tag))

  /** A venue that refuses as told: submit `r-<i>` with `orderRejections[i]`; cancel and query with the order errors. */
  const scriptedVenue: ExecutionVenueShape = {
    submit: (cmd) => Effect.fail(orderRejections[Number(cmd.clientOrderId.slice(2))]!),
    cancel: (cmd) =>
      Effect.fail(
        cmd.clientOrderId === "gone"
          ? new OrderNotFound({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId })
          : new OrderNotCancelable({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId, orderId: "v-1", status: "filled" })
      ),
    query: (cmd) => Effect.fail(new OrderNotFound({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId })),
    amend: (cmd) => Effect.fail(new OrderNotFound({ clientOrderId: cmd.clientOrderId, consumerId: cmd.consumerId })),
    cancelAll: () => Effect.succeed([]),
    portfolio: () => ({ balances: [], positions: [], byConsumer: [] }),
    exposure: (_consumerId, _symbol, venue) => ({ venue, position: decimal("0"), openOrders: 0 }),
    markPrice: () => undefined,
    onMarketData: () => Effect.void,
    followRoutingVersion: () => {},
    stats: () => {
      throw new Error("not used")
    }
  }

  const scriptedLayer = () =>
    ControlBus.layerMemory.pipe(
      Layer.provideMerge(ControlPlane.Default),
      Layer.provideMerge(Topology.layer(["BTC-USDT"], ["sim-a", "sim-b"])),
      Layer.provideMerge(Orchestrator.DefaultWithoutDependencies),
      Layer.provideMerge(OrchestratorConfig.layer({})),
      // the Control Plane takes the venue behind the risk checks (no limits here: the venue's own answers come back)
      Layer.provideMerge(Risk.over(Layer.succeed(ExecutionVenue, scriptedVenue))),
      Layer.provideMerge(DeadLetter.layer({})),
      Layer.provideMerge(layerCore())
    )

  const resultsOf = (got: ReadonlyArray<Reply>) => got.filter((r) => r.kind === "control_result")

  it.scoped("every reason a venue can give reaches the consumer as the same tagged value, nothing parsed", () =>
    Effect.gen(function*() {
      const consumers = yield* Consumers
      const control = yield* ControlBus
      const plane = yield* ControlPlane
      const got: Array<Reply> = []
      yield* consumers.start({ id: "trader", handle: (e) => Effect.sync(() => got.push(reply(e))) })
      for (let i = 0; i < orderRejections.length; i++) {
        yield* control.submitJson(order(`s-${i}`, `r-${i}`, { orderType: "market", quantity: "1" }))
      }
      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "CancelOrder", commandId: "x-1", consumerId: "trader", clientOrderId: "gone" }
      }))
      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "CancelOrder", commandId: "x-2", consumerId: "trader", clientOrderId: "done" }
      }))
      const expected = [
        ...orderRejections,
        new OrderNotFound({ clientOrderId: "gone", consumerId: "trader" }),
        new OrderNotCancelable({ clientOrderId: "done", consumerId: "trader", orderId: "v-1", status: "filled" })
      ]
      yield* eventually(() => resultsOf(got).length === expected.length, "every result")
      const results = resultsOf(got)
      for (let i = 0; i < expected.length; i++) {
        const r = results[i]!
        assert.strictEqual(r.outcome, "rejected")
        assert.strictEqual(r.rejection!.constructor, expected[i]!.constructor, expected[i]!._tag)
        assert.deepStrictEqual(encodeRejection(r.rejection!), encodeRejection(expected[i]!))
      }
      assert.strictEqual(plane.stats().rejected, expected.length)
      assert.strictEqual(plane.stats().rejections["SubmitOrder:InsufficientBalance"], 1)
    }).pipe(Effect.provide(scriptedLayer())))

  it.scoped("the reasons the gateway gives today, each from its real producer", () =>
    Effect.gen(function*() {
      const { control, plane, venue } = yield* services
      const { got } = yield* trader("trader")
      const wire = (command: Record<string, unknown>) => control.submitJson(JSON.stringify({ schemaVersion: 1, command }))
      const ids = (commandId: string) => ({ commandId, consumerId: "trader" })
      // before any market data: the paper venue refuses with its own code
      yield* control.submitJson(order("a1", "o-1", { orderType: "market", quantity: "1" }))
      yield* eventually(() => resultsOf(got).length === 1, "the first result, before the book")
      yield* seedBook
      yield* control.submitJson(order("a2", "o-2", { orderType: "limit", quantity: "1", price: "90" }))
      yield* control.submitJson(order("a3", "o-2", { orderType: "limit", quantity: "2", price: "90" }))
      yield* control.submitJson(order("a4", "o-3", { orderType: "market", quantity: "1" }))
      yield* wire({ _tag: "CancelOrder", ...ids("a5"), clientOrderId: "o-3" })
      yield* wire({ _tag: "QueryOrder", ...ids("a6"), clientOrderId: "o-404" })
      yield* wire({ _tag: "FlipRouting", ...ids("a7") })
      yield* wire({ _tag: "Subscribe", ...ids("a8"), symbol: "DOGE-USDT", kinds: ["trade"] })
      yield* wire({
        _tag: "StageRouting",
        ...ids("a9"),
        routes: [{ symbol: "BTC-USDT", providers: ["sim-a", "ftx", "bitmex"] }]
      })
      yield* wire({ _tag: "Subscribe", ...ids("a10"), symbol: "BTC-USDT", kinds: [] })
      // a consumer that has no mailbox cannot be told; the rejection is still counted by its tag
      yield* control.submit(Subscribe.make({ commandId: "a11", consumerId: "ghost", symbol: "BTC-USDT", kinds: ["trade"] }))
      yield* eventually(() => resultsOf(got).length === 10, "ten results")
      yield* eventually(() => plane.stats().rejected === 9, "nine rejections (a2 and a4 are accepted)")
      const byId = new Map(resultsOf(got).map((r) => [r.commandId!, r]))
      const check = (commandId: string, expected: Rejection) => {
        const r = byId.get(commandId)!
        assert.strictEqual(r.outcome, "rejected", commandId)
        assert.deepStrictEqual(encodeRejection(r.rejection!), encodeRejection(expected), commandId)
      }
      const orderId = (clientOrderId: string) => Effect.runSync(venue.query(QueryOrder.make({ ...ids("q"), clientOrderId }))).orderId
      check(
        "a1",
        new VenueRejected({
          venue: "paper",
          clientOrderId: "o-1",
          symbol: "BTC-USDT",
          code: "no_market_data",
          text: "no market data for BTC-USDT",
          orderId: orderId("o-1")
        })
      )
      assert.strictEqual(byId.get("a2")!.outcome, "ok")
      check(
        "a3",
        new DuplicateClientOrderId({ clientOrderId: "o-2", conflict: "other_terms", fields: ["quantity"], orderId: orderId("o-2") })
      )
      check(
        "a5",
        new OrderNotCancelable({ clientOrderId: "o-3", consumerId: "trader", orderId: orderId("o-3"), status: "filled" })
      )
      check("a6", new OrderNotFound({ clientOrderId: "o-404", consumerId: "trader" }))
      check("a7", new NothingStaged({}))
      check("a8", new UnknownSymbol({ symbol: "DOGE-USDT" }))
      check("a9", new UnknownVenue({ venue: "ftx", symbol: "BTC-USDT" }))
      assert.deepStrictEqual(byId.get("a9")!.also!.map((x) => encodeRejection(x)), [
        { _tag: "UnknownVenue", venue: "bitmex", symbol: "BTC-USDT" }
      ])
      check(
        "a10",
        new InvalidCommand({ commandId: "a10", command: "Subscribe", consumerId: "trader", reason: "command.kinds: kinds must not be empty" })
      )
      assert.strictEqual(plane.stats().rejections["Subscribe:UnknownConsumer"], 1)
    }).pipe(Effect.provide(layer()), Effect.provide(Logger.remove(Logger.defaultLogger))))
})
