/**
 * OKX live execution, end to end against the local mock venue
 * (test/execution/live/OkxMock.ts): the adapter signs, the mock verifies as
 * OKX documents, the engine turns answers and stream pushes into our
 * execution reports.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Redacted, TestClock } from "effect"
import { AmendOrder, CancelOrder, SubmitOrder } from "../../schema/Control.js"
import { decimal } from "../../schema/Event.js"
import { makeOkxAdapter } from "../../src/execution/Okx.js"
import { Pool } from "../../src/Pool.js"
import { OkxMock } from "./live/OkxMock.js"
import { assertSequence, kindsOf, liveVenueOn, makeLayer, orderTo, until } from "./live/harness.js"
import { adoptedAfterRestart, disconnectMidOrder, duplicateSubmission, lostPlacement, refusedBeforeSending, timeoutQueried } from "./live/scenarios.js"

const API_KEY = "fake-okx-key-4e3d2c1b0a99887766"
const SECRET = "fake-okx-secret-11223344556677889900"
const PASSPHRASE = "fake-okx-passphrase-q1w2e3"
const SYM = "BTC-USDT"

const submit = orderTo("okx", SYM, "100.00")

interface Setup {
  readonly skewMs?: number
  readonly secret?: string
  readonly dryRun?: boolean
}

/** A mock OKX and a live venue on it, the private stream subscribed and reconciled once. */
const setup = (opts: Setup = {}) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const mock = new OkxMock({
      apiKey: API_KEY,
      secret: SECRET,
      passphrase: PASSPHRASE,
      now: () => clock.unsafeCurrentTimeMillis() + (opts.skewMs ?? 0),
      marketPrice: { "BTC-USDT": "101.50" }
    })
    yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
    const makeAdapter = makeOkxAdapter({
      restUrl: mock.restUrl,
      wsUrl: mock.wsUrl,
      symbols: [SYM],
      apiKey: Redacted.make(API_KEY),
      secret: Redacted.make(opts.secret ?? SECRET),
      passphrase: Redacted.make(PASSPHRASE),
      timeoutMs: 5_000,
      dryRun: opts.dryRun ?? false,
      stream: { backoff: { initialMs: 1_000, maxMs: 1_000, factor: 1, jitter: 0 } }
    })
    const { adapter, venue, another, received, logs } = yield* liveVenueOn(makeAdapter, opts.secret === undefined && Math.abs(opts.skewMs ?? 0) < 30_000)
    const pool = yield* Pool
    return { mock, adapter, venue, another, received, logs, pool }
  })

describe("OKX live venue (mock)", () => {
  it.scoped("a limit order: new, partial fill, fill; each transition reported once, in order", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      const view = yield* venue.submit(submit("o1"))
      assert.strictEqual(view.status, "new")
      assert.strictEqual(view.venue, "okx")
      mock.fill("o1", "0.2", "100.00")
      yield* until(() => kindsOf(received, "o1").length === 2, "the partial fill")
      mock.fill("o1", "0.3", "99.50")
      yield* until(() => kindsOf(received, "o1").length === 3, "the fill")
      assert.deepStrictEqual(kindsOf(received, "o1"), ["new", "partially_filled", "filled"])
      assertSequence(received, "o1")
      const last = received.at(-1)!.payload
      assert.strictEqual(last.filledQty, "0.5")
      assert.strictEqual(last.lastFillPrice, "99.5")
      // the stream pushed NEW as well: still one "new"
      yield* venue.reconcile
      assert.deepStrictEqual(kindsOf(received, "o1"), ["new", "partially_filled", "filled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a market order: acknowledged by the answer, filled by the stream; the catch-up lists the fills again, reported once", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      const view = yield* venue.submit(submit("om", { orderType: "market", quantity: "0.4" }))
      assert.strictEqual(view.type, "market")
      yield* until(() => kindsOf(received, "om").at(-1) === "filled", "the fills")
      assert.deepStrictEqual(kindsOf(received, "om"), ["new", "partially_filled", "filled"])
      yield* venue.reconcile
      assert.deepStrictEqual(kindsOf(received, "om"), ["new", "partially_filled", "filled"])
      assertSequence(received, "om")
      const filled = received.at(-1)!.payload
      assert.strictEqual(filled.filledQty, "0.4")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("cancel: a canceled report; a second cancel is OrderNotCancelable", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      yield* venue.submit(submit("oc"))
      const canceled = yield* venue.cancel(CancelOrder.make({ commandId: "c1", consumerId: "strat-1", clientOrderId: "oc" }))
      assert.strictEqual(canceled.status, "canceled")
      const again = yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "c2", consumerId: "strat-1", clientOrderId: "oc" })))
      assert.isTrue(Either.isLeft(again) && again.left._tag === "OrderNotCancelable")
      const other = yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "c3", consumerId: "strat-2", clientOrderId: "oc" })))
      assert.isTrue(Either.isLeft(other) && other.left._tag === "OrderNotFound")
      yield* until(() => venue.liveStats().adapter.requests > 0 && kindsOf(received, "oc").length >= 2, "reports")
      assert.deepStrictEqual(kindsOf(received, "oc"), ["new", "canceled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("amend: quantity and price each give one amend report; the venue's pushes of them add none", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("oa", { quantity: "0.5" }))
      const smaller = yield* venue.amend(AmendOrder.make({ commandId: "a1", consumerId: "strat-1", clientOrderId: "oa", quantity: decimal("0.3") }))
      assert.strictEqual(smaller.quantity, "0.3")
      const repriced = yield* venue.amend(AmendOrder.make({ commandId: "a2", consumerId: "strat-1", clientOrderId: "oa", price: decimal("100.5") }))
      assert.strictEqual(repriced.price, "100.5")
      assert.strictEqual(repriced.quantity, "0.3")
      mock.fill("oa", "0.3", "100.5")
      yield* until(() => kindsOf(received, "oa").at(-1) === "filled", "the fill")
      assert.deepStrictEqual(kindsOf(received, "oa"), ["new", "new", "new", "filled"])
      assertSequence(received, "oa")
      const closed = yield* Effect.either(venue.amend(AmendOrder.make({ commandId: "a3", consumerId: "strat-1", clientOrderId: "oa", price: decimal("99") })))
      assert.isTrue(Either.isLeft(closed) && closed.left._tag === "OrderNotCancelable")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("rejections: venue codes become typed rejections with a rejected report; instrument rules are checked before sending", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      mock.rejectNextOrder("51008", "Order failed. Insufficient USDT balance in account.")
      const poor = yield* Effect.either(venue.submit(submit("or1")))
      assert.isTrue(Either.isLeft(poor) && poor.left._tag === "InsufficientBalance" && poor.left.asset === "USDT")
      assert.deepStrictEqual(kindsOf(received, "or1"), ["rejected"])
      mock.rejectNextOrder("51121", "Order count should be the integer multiples of the lot size")
      const lot = yield* Effect.either(venue.submit(submit("or2")))
      assert.isTrue(Either.isLeft(lot) && lot.left._tag === "InvalidQuantity")
      mock.rejectNextOrder("51137", "Your opening price has triggered the limit price, and the max buy price is 101")
      const band = yield* Effect.either(venue.submit(submit("or3", { price: "150.00" })))
      assert.isTrue(Either.isLeft(band) && band.left._tag === "InvalidPrice")
      // hostile inputs refused before anything leaves
      const sent = mock.requests.length
      const table: ReadonlyArray<readonly [string, ReturnType<typeof submit>, string]> = [
        ["off tick", submit("ot1", { price: "100.05" }), "InvalidPrice"],
        ["off lot", submit("ot2", { quantity: "0.123456789" }), "InvalidQuantity"],
        ["below minimum size", submit("ot3", { quantity: "0.000001" }), "BelowMinimum"],
        ["bad client id", submit("o t4 with spaces"), "VenueRejected"],
        ["client id with a dash", submit("o-t5"), "VenueRejected"],
        ["client id too long", submit("x".repeat(37)), "VenueRejected"],
        ["unknown symbol", SubmitOrder.make({ ...submit("ot6"), symbol: "DOGE-EUR" }), "UnknownSymbol"]
      ]
      yield* refusedBeforeSending(venue, table)
      assert.strictEqual(mock.requests.length, sent, "none of them reached the venue")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("disconnect mid-order: fills and the cancel that happened while away are reconciled once, in order", () =>
    disconnectMidOrder(setup(), submit, "od").pipe(Effect.provide(makeLayer())))

  it.scoped("timeout: the order is queried, never resent", () =>
    timeoutQueried(setup(), submit, "oto", "POST /api/v5/trade/order").pipe(Effect.provide(makeLayer())))

  it.scoped("timeout of an order the venue never got: rejected as not received once its receive window passed", () =>
    lostPlacement(setup(), submit, "olost", "POST /api/v5/trade/order", "/api/v5/trade/order").pipe(Effect.provide(makeLayer())))

  it.scoped("duplicate submission: the same terms answer with the order, other terms are refused; one order at the venue", () =>
    duplicateSubmission(setup(), submit, "odup").pipe(Effect.provide(makeLayer())))

  it.scoped("the venue says duplicate (an order placed before a restart): it is queried and adopted, not placed twice", () =>
    adoptedAfterRestart(setup(), submit, "oadopt").pipe(Effect.provide(makeLayer())))

  it.scoped("rate limits: a 429 is a typed rejection and a cool-down of its Retry-After; the budget is reported", () =>
    Effect.gen(function*() {
      const { mock, venue } = yield* setup()
      mock.rateLimit()
      const limited = yield* Effect.either(venue.submit(submit("orl1")))
      assert.isTrue(Either.isLeft(limited) && limited.left._tag === "VenueRejected" && limited.left.code === "rate_limited")
      const fiber = yield* Effect.fork(venue.submit(submit("orl2")))
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(mock.placements("orl2"), 0, "held back during the cool-down")
      yield* TestClock.adjust("1 second")
      const ok = yield* Fiber.join(fiber)
      assert.strictEqual(ok.status, "new")
      const stats = venue.liveStats().adapter
      assert.strictEqual(stats.rateLimited, 1)
      const weight = stats.budget.find((b) => b.bucket === "ORDER")!
      assert.strictEqual(weight.limit, 60)
      assert.isAbove(weight.used, 0)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a wrong secret: the venue refuses the signature, the order is rejected as not authenticated", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup({ secret: "not-the-secret" })
      const r = yield* Effect.either(venue.submit(submit("oauth")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "authentication_failed")
      assert.deepStrictEqual(kindsOf(received, "oauth"), ["rejected"])
    }).pipe(Effect.provide(makeLayer())), { timeout: 30_000 })

  it.scoped("dry-run: the signed request is logged (key redacted) and not sent", () =>
    Effect.gen(function*() {
      const { mock, venue, logs } = yield* setup({ dryRun: true })
      const r = yield* Effect.either(venue.submit(submit("odry")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "dry_run")
      assert.strictEqual(mock.placements("odry"), 0)
      const line = logs.find((l) => l.includes("dry-run"))!
      assert.include(line, "odry")
      assert.include(line, "OK-ACCESS-SIGN")
      assert.notInclude(line, PASSPHRASE)
      assert.notInclude(line, API_KEY)
      for (const l of logs) {
        assert.notInclude(l, API_KEY)
        assert.notInclude(l, SECRET)
        assert.notInclude(l, PASSPHRASE)
      }
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("clock skew: measured against the server time; past the receive window a typed error", () =>
    Effect.gen(function*() {
      const { adapter } = yield* setup({ skewMs: 3_000 })
      const skew = yield* adapter.syncClock
      assert.strictEqual(skew, 3_000)
      const far = yield* setup({ skewMs: 40_000 })
      const r = yield* Effect.either(far.adapter.syncClock)
      assert.isTrue(Either.isLeft(r) && r.left._tag === "ClockSkewTooLarge" && r.left.skewMs === 40_000)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("cancelAll cancels every open order of the venue (the kill switch)", () =>
    Effect.gen(function*() {
      const { venue } = yield* setup()
      yield* venue.submit(submit("ok1"))
      yield* venue.submit(submit("ok2", { side: "sell", price: "120.00" }))
      const canceled = yield* venue.cancelAll({}, "kill switch")
      assert.deepStrictEqual(canceled.map((o) => o.clientOrderId).sort(), ["ok1", "ok2"])
      assert.strictEqual(venue.liveStats().open, 0)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("hostile private-stream frames are counted and skipped; the next update still goes through", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("oh"))
      const push = (data: unknown) => JSON.stringify({ arg: { channel: "orders", instType: "SPOT" }, data: [data] })
      const hostile: ReadonlyArray<readonly [string, string]> = [
        ["not JSON", "{{{"],
        ["a number", "42"],
        ["an order without its fields", push({ instId: "BTC-USDT" })],
        ["a size that is an object", push({ instId: "BTC-USDT", ordId: "1", clOrdId: "oh", px: "1", sz: {}, state: "filled", accFillSz: "1", uTime: "1" })],
        ["an order of nobody", push({ instId: "BTC-USDT", ordId: "999", clOrdId: "nobody", px: "1", sz: "1", state: "filled", accFillSz: "1", uTime: "1", tradeId: "5", fillSz: "1", fillPx: "1" })],
        ["another channel", JSON.stringify({ arg: { channel: "account" }, data: [{ x: 1 }] })]
      ]
      for (const [, frame] of hostile) mock.sendRaw(frame)
      mock.fill("oh", "0.5", "100.00")
      yield* until(() => kindsOf(received, "oh").at(-1) === "filled", "the fill after the hostile frames")
      assert.deepStrictEqual(kindsOf(received, "oh"), ["new", "filled"])
      assert.strictEqual(venue.liveStats().adapter.streamMalformed, 4)
      assert.strictEqual(received.filter((r) => r.payload.clientOrderId === "nobody").length, 0)
    }).pipe(Effect.provide(makeLayer())))
})
