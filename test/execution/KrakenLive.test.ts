/**
 * Kraken live execution, end to end against the local mock venue
 * (test/execution/KrakenMock.ts): the adapter signs, the mock verifies as
 * Kraken documents, the live engine turns answers and executions pushes into
 * our execution reports.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Redacted, Scope, TestClock } from "effect"
import { AmendOrder, CancelOrder, SubmitOrder } from "../../schema/Control.js"
import { decimal } from "../../schema/Event.js"
import { makeKrakenAdapter } from "../../src/execution/Kraken.js"
import { makeLiveVenue } from "../../src/execution/live/LiveVenue.js"
import { Pool } from "../../src/Pool.js"
import { KrakenMock } from "./KrakenMock.js"
import { assertSequence, kindsOf, liveVenueOn, makeLayer, orderTo, Received, until } from "./live/harness.js"
import { refusedBeforeSending } from "./live/scenarios.js"

const API_KEY = "fake-kraken-key-Zq8Yw7Xv6Ut5Ss4Rr3"
/** A well-formed base64 secret (64 bytes) that no Kraken account has. */
const SECRET = Buffer.from("fake-kraken-secret-".repeat(4).slice(0, 64)).toString("base64")
const SYM = "BTC-USD"

const submit = orderTo("kraken", SYM, "100.0")

interface Setup {
  readonly secret?: string
  readonly dryRun?: boolean
  readonly skewMs?: number
  readonly orderEntry?: "rest" | "websocket"
}

const setup = (opts: Setup = {}) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const mock = new KrakenMock({
      apiKey: API_KEY,
      apiSecret: SECRET,
      now: () => clock.unsafeCurrentTimeMillis() + (opts.skewMs ?? 0),
      marketPrice: { XBTUSD: "101.5" },
      book: { XBTUSD: { bid: "99.0", ask: "101.0" } }
    })
    yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
    const makeAdapter = makeKrakenAdapter({
      restUrl: mock.restUrl,
      wsUrl: mock.wsUrl,
      symbols: [SYM],
      credentials: { apiKey: Redacted.make(API_KEY), apiSecret: Redacted.make(opts.secret ?? SECRET) },
      timeoutMs: 5_000,
      dryRun: opts.dryRun ?? false,
      orderEntry: opts.orderEntry ?? "rest",
      backoff: { initialMs: 1_000, maxMs: 1_000, factor: 1, jitter: 0 }
    })
    const { adapter, venue, another, received, logs } = yield* liveVenueOn(makeAdapter, opts.secret === undefined)
    return { mock, adapter, venue, another, received, logs }
  })

describe("Kraken live venue (mock)", () => {
  it.scoped("a limit order: new, partial fill, fill; cl_ord_id carries our id; each transition reported once", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      const view = yield* venue.submit(submit("k-1"))
      assert.strictEqual(view.status, "new")
      assert.strictEqual(view.venue, "kraken")
      assert.strictEqual(mock.byCl("k-1")?.pair, "XBTUSD")
      mock.fill("k-1", "0.2", "100.0")
      yield* until(() => kindsOf(received, "k-1").length === 2, "the partial fill")
      mock.fill("k-1", "0.3", "99.5")
      yield* until(() => kindsOf(received, "k-1").length === 3, "the fill")
      assert.deepStrictEqual(kindsOf(received, "k-1"), ["new", "partially_filled", "filled"])
      assertSequence(received, "k-1")
      const last = received.at(-1)!.payload
      assert.strictEqual(last.filledQty, "0.5")
      assert.strictEqual(last.lastFillPrice, "99.5")
      // a reconciliation sees the same two trades in TradesHistory: nothing reported twice
      yield* venue.reconcile
      assert.deepStrictEqual(kindsOf(received, "k-1"), ["new", "partially_filled", "filled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a market order fills in two trades on the stream, each reported once", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      yield* venue.submit(submit("k-m", { orderType: "market", quantity: "0.4" }))
      yield* until(() => kindsOf(received, "k-m").at(-1) === "filled", "the fills")
      assert.deepStrictEqual(kindsOf(received, "k-m"), ["new", "partially_filled", "filled"])
      assertSequence(received, "k-m")
      assert.strictEqual(received.at(-1)!.payload.lastFillPrice, "101.5")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("cancel by cl_ord_id: a canceled report; a second cancel is OrderNotCancelable", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      yield* venue.submit(submit("k-c"))
      const canceled = yield* venue.cancel(CancelOrder.make({ commandId: "c1", consumerId: "strat-1", clientOrderId: "k-c" }))
      assert.strictEqual(canceled.status, "canceled")
      const again = yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "c2", consumerId: "strat-1", clientOrderId: "k-c" })))
      assert.isTrue(Either.isLeft(again) && again.left._tag === "OrderNotCancelable")
      yield* until(() => kindsOf(received, "k-c").length >= 2, "reports")
      assert.deepStrictEqual(kindsOf(received, "k-c"), ["new", "canceled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("amend (AmendOrder): quantity and price change at the venue, one amend report each; below the filled quantity is refused", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("k-a", { quantity: "0.5" }))
      const smaller = yield* venue.amend(AmendOrder.make({ commandId: "a1", consumerId: "strat-1", clientOrderId: "k-a", quantity: decimal("0.3") }))
      assert.strictEqual(smaller.quantity, "0.3")
      assert.strictEqual(mock.byCl("k-a")!.vol, "0.3")
      const repriced = yield* venue.amend(AmendOrder.make({ commandId: "a2", consumerId: "strat-1", clientOrderId: "k-a", price: decimal("98.5") }))
      assert.strictEqual(repriced.price, "98.5")
      assert.strictEqual(mock.byCl("k-a")!.price, "98.5")
      mock.fill("k-a", "0.2", "98.5")
      yield* until(() => kindsOf(received, "k-a").length === 4, "the partial fill")
      const below = yield* Effect.either(venue.amend(AmendOrder.make({ commandId: "a3", consumerId: "strat-1", clientOrderId: "k-a", quantity: decimal("0.1") })))
      assert.isTrue(Either.isLeft(below))
      mock.fill("k-a", "0.1", "98.5")
      yield* until(() => kindsOf(received, "k-a").at(-1) === "filled", "the fill")
      assert.deepStrictEqual(kindsOf(received, "k-a"), ["new", "new", "new", "partially_filled", "filled"])
      assertSequence(received, "k-a")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("rejections: Kraken's error strings become typed rejections; instrument rules and FOK are refused before sending", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      const venueErrors: ReadonlyArray<readonly [string, string]> = [
        ["EOrder:Insufficient funds", "InsufficientBalance"],
        ["EOrder:Order minimum not met", "BelowMinimum"],
        ["EOrder:Cost minimum not met", "BelowMinimum"],
        ["EOrder:Invalid price", "InvalidPrice"],
        ["EQuery:Unknown asset pair", "UnknownSymbol"],
        ["EOrder:Orders limit exceeded", "VenueRejected"]
      ]
      for (const [i, [error, tag]] of venueErrors.entries()) {
        mock.rejectNextOrder(error)
        const r = yield* Effect.either(venue.submit(submit(`k-r${i}`)))
        assert.isTrue(Either.isLeft(r) && r.left._tag === tag, `${error}: ${Either.isLeft(r) ? r.left._tag : "accepted"}`)
        assert.deepStrictEqual(kindsOf(received, `k-r${i}`), ["rejected"])
      }
      const poor = yield* Effect.either(Effect.sync(() => mock.rejectNextOrder("EOrder:Insufficient funds")).pipe(Effect.zipRight(venue.submit(submit("k-poor")))))
      assert.isTrue(Either.isLeft(poor) && poor.left._tag === "InsufficientBalance" && poor.left.asset === "USD")
      const maker = yield* Effect.either(venue.submit(submit("k-post", { postOnly: true, price: "101.0" })))
      assert.isTrue(Either.isLeft(maker) && maker.left._tag === "PostOnlyWouldTake")
      // refused before anything leaves
      const sent = mock.calls("AddOrder")
      const table: ReadonlyArray<readonly [string, ReturnType<typeof submit>, string]> = [
        ["off tick", submit("k-t1", { price: "100.05" }), "InvalidPrice"],
        ["off lot", submit("k-t2", { quantity: "0.000000001" }), "InvalidQuantity"],
        ["below minimum quantity", submit("k-t3", { quantity: "0.00005" }), "BelowMinimum"],
        ["FOK (Kraken spot has none)", submit("k-t4", { timeInForce: "FOK" }), "VenueRejected"],
        ["cl_ord_id too long for Kraken", submit("k-".repeat(10)), "VenueRejected"],
        ["unknown symbol", SubmitOrder.make({ ...submit("k-t6"), symbol: "DOGE-EUR" }), "UnknownSymbol"]
      ]
      yield* refusedBeforeSending(venue, table)
      assert.strictEqual(mock.calls("AddOrder"), sent, "none of them reached the venue")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("disconnect mid-order: the fill and the cancel that happened while away are reconciled once, in order", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("k-d"))
      mock.fill("k-d", "0.1", "100.0")
      yield* until(() => kindsOf(received, "k-d").length === 2, "the first fill")
      mock.dropStreams()
      yield* until(() => !venue.liveStats().connected, "the disconnect")
      yield* TestClock.adjust("100 millis")
      mock.fill("k-d", "0.15", "99.9")
      mock.cancelAtVenue("k-d")
      const before = venue.liveStats().reconciliations
      yield* TestClock.adjust("2 seconds")
      yield* until(() => venue.liveStats().reconciliations > before && kindsOf(received, "k-d").length === 4, "the reconciliation")
      assert.deepStrictEqual(kindsOf(received, "k-d"), ["new", "partially_filled", "partially_filled", "canceled"])
      assertSequence(received, "k-d")
      assert.strictEqual(received.at(-1)!.payload.filledQty, "0.25")
      yield* venue.reconcile
      assert.strictEqual(kindsOf(received, "k-d").length, 4)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("timeout: the order is queried by cl_ord_id, never resent", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      mock.hold("AddOrder")
      const fiber = yield* Effect.fork(venue.submit(submit("k-to")))
      yield* until(() => mock.placements("k-to") === 1, "the placement to reach the venue")
      yield* TestClock.adjust("5 seconds")
      const view = yield* Fiber.join(fiber)
      assert.strictEqual(view.status, "new")
      assert.strictEqual(mock.placements("k-to"), 1, "sent once")
      assert.isAtLeast(mock.requests.filter((r) => r.path === "/0/private/QueryOrders" && r.params.get("cl_ord_id") === "k-to").length, 1)
      mock.release()
      yield* until(() => kindsOf(received, "k-to").length >= 1, "the report")
      assert.deepStrictEqual(kindsOf(received, "k-to"), ["new"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("duplicate submission: the same terms answer with the order; a second engine adopts it; one order at Kraken", () =>
    Effect.gen(function*() {
      const { mock, venue, another, received } = yield* setup()
      const first = yield* venue.submit(submit("k-dup"))
      const second = yield* venue.submit(submit("k-dup"))
      assert.strictEqual(second.orderId, first.orderId)
      const other = yield* Effect.either(venue.submit(submit("k-dup", { price: "90.0" })))
      assert.isTrue(Either.isLeft(other) && other.left._tag === "DuplicateClientOrderId")
      assert.strictEqual(mock.placements("k-dup"), 1)
      assert.deepStrictEqual(kindsOf(received, "k-dup"), ["new"])
      // Kraken checks one increasing nonce per key: the second engine's clock-based nonces must pass the
      // first one's, which the frozen test clock does not do by itself
      yield* TestClock.adjust("1 second")
      const fresh = yield* another
      const adopted = yield* fresh.submit(submit("k-dup"))
      assert.strictEqual(adopted.orderId, first.orderId)
      assert.strictEqual(mock.orders.size, 1, "one order at the venue")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("rate limited (\"EAPI:Rate limit exceeded\"): a typed rejection and a cool-down before the next request", () =>
    Effect.gen(function*() {
      const { mock, venue } = yield* setup()
      mock.rateLimit(1)
      const limited = yield* Effect.either(venue.submit(submit("k-rl1")))
      assert.isTrue(Either.isLeft(limited) && limited.left._tag === "VenueRejected" && limited.left.code === "rate_limited")
      const fiber = yield* Effect.fork(venue.submit(submit("k-rl2")))
      yield* TestClock.adjust("14 seconds")
      assert.strictEqual(mock.placements("k-rl2"), 0, "held back during the cool-down")
      yield* TestClock.adjust("1 second")
      const ok = yield* Fiber.join(fiber)
      assert.strictEqual(ok.status, "new")
      const stats = venue.liveStats().adapter
      assert.strictEqual(stats.rateLimited, 1)
      assert.deepStrictEqual(stats.budget.map((b) => b.bucket), ["counter", "orders", "public"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a wrong secret: Kraken refuses the signature, the order is rejected as not authenticated", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup({ secret: Buffer.from("another-secret-entirely").toString("base64") })
      const r = yield* Effect.either(venue.submit(submit("k-auth")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "authentication_failed")
      assert.deepStrictEqual(kindsOf(received, "k-auth"), ["rejected"])
    }).pipe(Effect.provide(makeLayer())), { timeout: 30_000 })

  it.scoped("dry-run: the signed AddOrder is logged with API-Key and API-Sign redacted, and not sent; no secret in any log", () =>
    Effect.gen(function*() {
      const { mock, venue, logs } = yield* setup({ dryRun: true })
      const r = yield* Effect.either(venue.submit(submit("k-dry")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "dry_run")
      assert.strictEqual(mock.placements("k-dry"), 0)
      const line = logs.find((l) => l.includes("dry-run"))!
      assert.include(line, "cl_ord_id=k-dry")
      assert.include(line, "/0/private/AddOrder")
      for (const l of logs) {
        assert.notInclude(l, API_KEY)
        assert.notInclude(l, SECRET)
      }
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("clock skew: measured against /0/public/Time; past the tolerance a typed error", () =>
    Effect.gen(function*() {
      const near = yield* setup({ skewMs: 3_000 })
      const skew = yield* near.adapter.syncClock
      assert.approximately(skew, 3_000, 1_000) // Kraken's server time has whole seconds
      const far = yield* setup({ skewMs: 45_000 })
      const r = yield* Effect.either(far.adapter.syncClock)
      assert.isTrue(Either.isLeft(r) && r.left._tag === "ClockSkewTooLarge")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("the executions subscription carries a fresh GetWebSocketsToken token on every connect", () =>
    Effect.gen(function*() {
      const { mock, venue } = yield* setup()
      mock.dropStreams()
      yield* until(() => !venue.liveStats().connected, "the disconnect")
      yield* TestClock.adjust("2 seconds")
      yield* until(() => venue.liveStats().connected, "the reconnect")
      const subs = mock.wsMessages.map((m) => JSON.parse(m) as { method: string; params?: { channel?: string; token?: string } })
        .filter((m) => m.method === "subscribe" && m.params?.channel === "executions")
      assert.strictEqual(subs.length, 2)
      assert.notStrictEqual(subs[0]!.params!.token, subs[1]!.params!.token)
      assert.strictEqual(mock.calls("GetWebSocketsToken"), 2)
    }).pipe(Effect.provide(makeLayer())))
})

describe("Kraken live venue, order entry on the WebSocket (mock)", () => {
  const ws = { orderEntry: "websocket" as const }

  it.scoped("add_order, fills on the executions channel, amend_order, cancel_order: the same reports as over REST", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup(ws)
      yield* venue.submit(submit("kw-1"))
      yield* venue.submit(submit("kw-2", { side: "sell", price: "120.0" }))
      assert.deepStrictEqual(mock.wsOrderRequests.map((r) => r.method), ["add_order", "add_order"])
      assert.strictEqual(mock.calls("AddOrder"), 0, "no REST order entry")
      mock.fill("kw-1", "0.2", "100.0")
      mock.fill("kw-1", "0.3", "100.0")
      yield* until(() => kindsOf(received, "kw-1").length === 3, "the fills")
      const amended = yield* venue.amend(AmendOrder.make({ commandId: "a1", consumerId: "strat-1", clientOrderId: "kw-2", quantity: decimal("0.3") }))
      assert.strictEqual(amended.quantity, "0.3")
      const canceled = yield* venue.cancel(CancelOrder.make({ commandId: "c1", consumerId: "strat-1", clientOrderId: "kw-2" }))
      assert.strictEqual(canceled.status, "canceled")
      assert.deepStrictEqual(mock.wsOrderRequests.map((r) => r.method), ["add_order", "add_order", "amend_order", "cancel_order"])
      assert.deepStrictEqual(kindsOf(received, "kw-1"), ["new", "partially_filled", "filled"])
      yield* until(() => kindsOf(received, "kw-2").length === 3, "the amend and the cancel")
      assert.deepStrictEqual(kindsOf(received, "kw-2"), ["new", "new", "canceled"])
      // every request carried the session's token, none was refused
      for (const m of mock.wsMessages.map((t) => JSON.parse(t) as { method: string; params?: { token?: string } })) {
        if (m.method !== "ping") assert.isString(m.params?.token)
      }
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a refusal on the WebSocket is the same typed rejection; a rate-limit answer is a cool-down", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup(ws)
      mock.rejectNextOrder("EOrder:Insufficient funds")
      const poor = yield* Effect.either(venue.submit(submit("kw-r")))
      assert.isTrue(Either.isLeft(poor) && poor.left._tag === "InsufficientBalance")
      assert.deepStrictEqual(kindsOf(received, "kw-r"), ["rejected"])
      mock.rateLimit(1)
      const limited = yield* Effect.either(venue.submit(submit("kw-rl")))
      assert.isTrue(Either.isLeft(limited) && limited.left._tag === "VenueRejected" && limited.left.code === "rate_limited")
      assert.strictEqual(venue.liveStats().adapter.budget.length, 3)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("no answer to add_order: the order is queried over REST, never sent again", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup(ws)
      mock.hold("add_order")
      const fiber = yield* Effect.fork(venue.submit(submit("kw-to")))
      yield* until(() => mock.placements("kw-to") === 1, "the placement to reach the venue")
      yield* TestClock.adjust("5 seconds")
      const view = yield* Fiber.join(fiber)
      assert.strictEqual(view.status, "new")
      assert.strictEqual(mock.placements("kw-to"), 1, "sent once")
      mock.release()
      yield* until(() => kindsOf(received, "kw-to").length >= 1, "the report")
      assert.deepStrictEqual(kindsOf(received, "kw-to"), ["new"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("dry-run: the add_order message is logged with its token redacted, and not sent", () =>
    Effect.gen(function*() {
      const { mock, venue, logs } = yield* setup({ ...ws, dryRun: true })
      const r = yield* Effect.either(venue.submit(submit("kw-dry")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "dry_run")
      assert.strictEqual(mock.placements("kw-dry"), 0)
      const line = logs.find((l) => l.includes("dry-run"))!
      assert.include(line, "add_order")
      assert.include(line, "<redacted>")
    }).pipe(Effect.provide(makeLayer())))
})

describe("Kraken live venue: resources", () => {
  it.scoped("closing the venue's scope closes its private stream and stops reconnecting; every report recycled", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const mock = new KrakenMock({ apiKey: API_KEY, apiSecret: SECRET, now: () => clock.unsafeCurrentTimeMillis() })
      yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
      const received = yield* Received
      const pool = yield* Pool
      const scope = yield* Scope.make()
      const venue = yield* Effect.gen(function*() {
        const adapter = yield* makeKrakenAdapter({
          restUrl: mock.restUrl,
          wsUrl: mock.wsUrl,
          symbols: [SYM],
          credentials: { apiKey: Redacted.make(API_KEY), apiSecret: Redacted.make(SECRET) },
          orderEntry: "websocket",
          backoff: { initialMs: 1_000, maxMs: 1_000, factor: 1, jitter: 0 }
        })
        return yield* makeLiveVenue(adapter, {})
      }).pipe(Scope.extend(scope))
      yield* until(() => venue.liveStats().connected, "the private stream")
      yield* venue.submit(submit("k-leak"))
      mock.fill("k-leak", "0.5", "100.0")
      yield* until(() => kindsOf(received, "k-leak").length === 2, "the fill")
      yield* Scope.close(scope, Exit.void)
      yield* until(() => mock.openSockets === 0, "the socket to close")
      const connections = mock.connections
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(mock.connections, connections, "no reconnect after the scope closed")
      assert.strictEqual(pool.stats().ExecReport.outstanding, 0, "every report recycled")
    }).pipe(Effect.provide(makeLayer())))
})
