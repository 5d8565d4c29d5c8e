/**
 * Binance live execution, end to end against the local mock venue
 * (test/execution/live/BinanceMock.ts): the adapter signs, the mock verifies
 * as Binance documents, the engine turns answers and stream pushes into our
 * execution reports.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Redacted, TestClock } from "effect"
import { AmendOrder, CancelOrder, SubmitOrder } from "../../schema/Control.js"
import { decimal } from "../../schema/Event.js"
import { makeBinanceAdapter } from "../../src/execution/Binance.js"
import { Pool } from "../../src/Pool.js"
import { BinanceMock } from "./live/BinanceMock.js"
import { assertSequence, kindsOf, liveVenueOn, makeLayer, orderTo, until } from "./live/harness.js"
import { adoptedAfterRestart, disconnectMidOrder, duplicateSubmission, lostPlacement, refusedBeforeSending, timeoutQueried } from "./live/scenarios.js"

const API_KEY = "fake-binance-key-9f8e7d6c5b4a39281706"
const SECRET = "fake-binance-secret-0a1b2c3d4e5f60718293"
const SYM = "BTC-USDT"

const submit = orderTo("binance", SYM, "100.00")

interface Setup {
  readonly skewMs?: number
  readonly secret?: string
  readonly dryRun?: boolean
}

/** A mock Binance and a live venue on it, the private stream subscribed and reconciled once. */
const setup = (opts: Setup = {}) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const mock = new BinanceMock({
      apiKey: API_KEY,
      hmacSecret: SECRET,
      now: () => clock.unsafeCurrentTimeMillis() + (opts.skewMs ?? 0),
      marketPrice: { BTCUSDT: "101.50" },
      book: { BTCUSDT: { bid: "99.00", ask: "101.00" } }
    })
    yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
    const makeAdapter = makeBinanceAdapter({
      restUrl: mock.restUrl,
      wsApiUrl: mock.wsUrl,
      symbols: [SYM],
      apiKey: Redacted.make(API_KEY),
      key: { _tag: "hmac", secret: Redacted.make(opts.secret ?? SECRET) },
      timeoutMs: 5_000,
      dryRun: opts.dryRun ?? false,
      stream: { backoff: { initialMs: 1_000, maxMs: 1_000, factor: 1, jitter: 0 } }
    })
    const { adapter, venue, another, received, logs } = yield* liveVenueOn(makeAdapter, opts.secret === undefined)
    const pool = yield* Pool
    return { mock, adapter, venue, another, received, logs, pool }
  })

describe("Binance live venue (mock)", () => {
  it.scoped("a limit order: new, partial fill, fill; each transition reported once, in order", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      const view = yield* venue.submit(submit("b-1"))
      assert.strictEqual(view.status, "new")
      assert.strictEqual(view.venue, "binance")
      mock.fill("b-1", "0.2", "100.00")
      yield* until(() => kindsOf(received, "b-1").length === 2, "the partial fill")
      mock.fill("b-1", "0.3", "99.50")
      yield* until(() => kindsOf(received, "b-1").length === 3, "the fill")
      assert.deepStrictEqual(kindsOf(received, "b-1"), ["new", "partially_filled", "filled"])
      assertSequence(received, "b-1")
      const last = received.at(-1)!.payload
      assert.strictEqual(last.filledQty, "0.5")
      assert.strictEqual(last.lastFillPrice, "99.5")
      // the stream pushed NEW as well: still one "new"
      yield* venue.reconcile
      assert.deepStrictEqual(kindsOf(received, "b-1"), ["new", "partially_filled", "filled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a market order: its fills come with the answer and on the stream, reported once each", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      const view = yield* venue.submit(submit("b-m", { orderType: "market", quantity: "0.4" }))
      assert.strictEqual(view.status, "filled")
      assert.strictEqual(view.avgPrice, "101.5")
      // let the stream's NEW and two TRADE pushes arrive
      yield* until(() => venue.liveStats().duplicateFills >= 2, "the stream's copies of the fills")
      assert.deepStrictEqual(kindsOf(received, "b-m"), ["new", "partially_filled", "filled"])
      assertSequence(received, "b-m")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("cancel: a canceled report; a second cancel is OrderNotCancelable", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      yield* venue.submit(submit("b-c"))
      const canceled = yield* venue.cancel(CancelOrder.make({ commandId: "c1", consumerId: "strat-1", clientOrderId: "b-c" }))
      assert.strictEqual(canceled.status, "canceled")
      const again = yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "c2", consumerId: "strat-1", clientOrderId: "b-c" })))
      assert.isTrue(Either.isLeft(again) && again.left._tag === "OrderNotCancelable")
      const other = yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "c3", consumerId: "strat-2", clientOrderId: "b-c" })))
      assert.isTrue(Either.isLeft(other) && other.left._tag === "OrderNotFound")
      yield* until(() => venue.liveStats().adapter.requests > 0 && kindsOf(received, "b-c").length >= 2, "reports")
      assert.deepStrictEqual(kindsOf(received, "b-c"), ["new", "canceled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("amend: a lower quantity is amended (one amend report); a new price is refused before it leaves", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("b-a", { quantity: "0.5" }))
      const amended = yield* venue.amend(AmendOrder.make({ commandId: "a1", consumerId: "strat-1", clientOrderId: "b-a", quantity: decimal("0.3") }))
      assert.strictEqual(amended.quantity, "0.3")
      assert.deepStrictEqual(kindsOf(received, "b-a"), ["new", "new"])
      const requestsBefore = mock.requests.length
      const price = yield* Effect.either(venue.amend(AmendOrder.make({ commandId: "a2", consumerId: "strat-1", clientOrderId: "b-a", price: decimal("100.50") })))
      assert.isTrue(Either.isLeft(price) && price.left._tag === "VenueRejected" && price.left.code === "amend_unsupported")
      assert.strictEqual(mock.requests.length, requestsBefore, "nothing sent")
      mock.fill("b-a", "0.3", "100.00")
      yield* until(() => kindsOf(received, "b-a").length === 3, "the fill")
      assert.deepStrictEqual(kindsOf(received, "b-a"), ["new", "new", "filled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("rejections: venue codes become typed rejections with a rejected report; instrument rules are checked before sending", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      mock.rejectNextOrder(-2010, "Account has insufficient balance for requested action.")
      const poor = yield* Effect.either(venue.submit(submit("b-r1")))
      assert.isTrue(Either.isLeft(poor) && poor.left._tag === "InsufficientBalance" && poor.left.asset === "USDT")
      assert.deepStrictEqual(kindsOf(received, "b-r1"), ["rejected"])
      mock.rejectNextOrder(-1013, "Filter failure: LOT_SIZE")
      const lot = yield* Effect.either(venue.submit(submit("b-r2")))
      assert.isTrue(Either.isLeft(lot) && lot.left._tag === "InvalidQuantity")
      const maker = yield* Effect.either(venue.submit(submit("b-r3", { postOnly: true, price: "101.00" })))
      assert.isTrue(Either.isLeft(maker) && maker.left._tag === "VenueRejected" && maker.left.code === "-2010")
      // hostile inputs refused before anything leaves
      const sent = mock.requests.length
      const table: ReadonlyArray<readonly [string, ReturnType<typeof submit>, string]> = [
        ["off tick", submit("b-t1", { price: "100.001" }), "InvalidPrice"],
        ["off lot", submit("b-t2", { quantity: "0.000001" }), "InvalidQuantity"],
        ["below notional", submit("b-t3", { quantity: "0.01", price: "100.00" }), "BelowMinimum"],
        ["bad client id", submit("b t4 with spaces"), "VenueRejected"],
        ["client id too long", submit("x".repeat(37)), "VenueRejected"],
        ["unknown symbol", SubmitOrder.make({ ...submit("b-t6"), symbol: "DOGE-EUR" }), "UnknownSymbol"]
      ]
      yield* refusedBeforeSending(venue, table)
      assert.strictEqual(mock.requests.length, sent, "none of them reached the venue")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("disconnect mid-order: fills and the cancel that happened while away are reconciled once, in order", () =>
    disconnectMidOrder(setup(), submit, "b-d").pipe(Effect.provide(makeLayer())))

  it.scoped("timeout: the order is queried, never resent", () =>
    timeoutQueried(setup(), submit, "b-to", "POST /api/v3/order").pipe(Effect.provide(makeLayer())))

  it.scoped("timeout of an order the venue never got: rejected as not received once its receive window passed", () =>
    lostPlacement(setup(), submit, "b-lost", "POST /api/v3/order", "/api/v3/order").pipe(Effect.provide(makeLayer())))

  it.scoped("duplicate submission: the same terms answer with the order, other terms are refused; one order at the venue", () =>
    duplicateSubmission(setup(), submit, "b-dup").pipe(Effect.provide(makeLayer())))

  it.scoped("the venue says duplicate (an order placed before a restart): it is queried and adopted, not placed twice", () =>
    adoptedAfterRestart(setup(), submit, "b-adopt").pipe(Effect.provide(makeLayer())))

  it.scoped("rate limits: a 429 is a typed rejection and a cool-down of its Retry-After; the budget is reported", () =>
    Effect.gen(function*() {
      const { mock, venue } = yield* setup()
      mock.rateLimit(429, 3)
      const limited = yield* Effect.either(venue.submit(submit("b-rl1")))
      assert.isTrue(Either.isLeft(limited) && limited.left._tag === "VenueRejected" && limited.left.code === "rate_limited")
      const fiber = yield* Effect.fork(venue.submit(submit("b-rl2")))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(mock.placements("b-rl2"), 0, "held back during the cool-down")
      yield* TestClock.adjust("1 second")
      const ok = yield* Fiber.join(fiber)
      assert.strictEqual(ok.status, "new")
      const stats = venue.liveStats().adapter
      assert.strictEqual(stats.rateLimited, 1)
      const weight = stats.budget.find((b) => b.bucket === "REQUEST_WEIGHT")!
      assert.strictEqual(weight.limit, 6_000)
      assert.isAbove(weight.used, 0)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a wrong secret: the venue refuses the signature, the order is rejected as not authenticated", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup({ secret: "not-the-secret" })
      const r = yield* Effect.either(venue.submit(submit("b-auth")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "authentication_failed")
      assert.deepStrictEqual(kindsOf(received, "b-auth"), ["rejected"])
    }).pipe(Effect.provide(makeLayer())), { timeout: 30_000 })

  it.scoped("dry-run: the signed request is logged (key redacted) and not sent", () =>
    Effect.gen(function*() {
      const { mock, venue, logs } = yield* setup({ dryRun: true })
      const r = yield* Effect.either(venue.submit(submit("b-dry")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "dry_run")
      assert.strictEqual(mock.placements("b-dry"), 0)
      const line = logs.find((l) => l.includes("dry-run"))!
      assert.include(line, "newClientOrderId=b-dry")
      assert.include(line, "signature=")
      assert.notInclude(line, API_KEY)
      for (const l of logs) {
        assert.notInclude(l, API_KEY)
        assert.notInclude(l, SECRET)
      }
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("clock skew: measured against the server time; past the receive window a typed error", () =>
    Effect.gen(function*() {
      const { adapter } = yield* setup({ skewMs: 3_000 })
      const skew = yield* adapter.syncClock
      assert.strictEqual(skew, 3_000)
      const far = yield* setup({ skewMs: 7_000 })
      const r = yield* Effect.either(far.adapter.syncClock)
      assert.isTrue(Either.isLeft(r) && r.left._tag === "ClockSkewTooLarge" && r.left.skewMs === 7_000)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("cancelAll cancels every open order of the venue (the kill switch)", () =>
    Effect.gen(function*() {
      const { venue } = yield* setup()
      yield* venue.submit(submit("b-k1"))
      yield* venue.submit(submit("b-k2", { side: "sell", price: "120.00" }))
      const canceled = yield* venue.cancelAll({}, "kill switch")
      assert.deepStrictEqual(canceled.map((o) => o.clientOrderId).sort(), ["b-k1", "b-k2"])
      assert.strictEqual(venue.liveStats().open, 0)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("hostile private-stream frames are counted and skipped; the next update still goes through", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("b-h"))
      const hostile: ReadonlyArray<readonly [string, string]> = [
        ["not JSON", "{{{"],
        ["an array", "[1,2,3]"],
        ["an event without its fields", JSON.stringify({ subscriptionId: 0, event: { e: "executionReport" } })],
        ["a quantity that is not a number", JSON.stringify({ subscriptionId: 0, event: { e: "executionReport", E: 1, s: "BTCUSDT", c: "b-h", S: "BUY", o: "LIMIT", q: {}, p: "1", x: "TRADE", X: "FILLED", r: "NONE", i: 1, l: "1", z: "1", L: "1", T: 1, t: 1 } })],
        ["an order of nobody", JSON.stringify({ subscriptionId: 0, event: { e: "executionReport", E: 1, s: "BTCUSDT", c: "someone-else", S: "BUY", o: "LIMIT", q: "1", p: "1", x: "TRADE", X: "FILLED", r: "NONE", i: 999999, l: "1", z: "1", L: "1", T: 1, t: 77 } })],
        ["a huge string", JSON.stringify({ subscriptionId: 0, event: { e: "x".repeat(100_000) } })]
      ]
      for (const [, frame] of hostile) mock.sendRaw(frame)
      mock.fill("b-h", "0.5", "100.00")
      yield* until(() => kindsOf(received, "b-h").at(-1) === "filled", "the fill after the hostile frames")
      assert.deepStrictEqual(kindsOf(received, "b-h"), ["new", "filled"])
      assert.strictEqual(venue.liveStats().adapter.streamMalformed, 4, "not JSON, an array, two events that do not decode")
      assert.strictEqual(received.filter((r) => r.payload.clientOrderId === "someone-else").length, 0)
    }).pipe(Effect.provide(makeLayer())))
})
