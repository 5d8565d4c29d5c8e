/**
 * Coinbase Advanced Trade live execution, end to end against the local mock
 * venue (test/execution/CoinbaseMock.ts): the adapter signs a JWT per request,
 * the mock verifies it as Coinbase documents, the live engine turns answers and
 * `user` channel pushes into our execution reports (the channel carries
 * cumulative figures only: the fills come from the fills endpoint, keyed by
 * trade id).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Redacted, Scope, TestClock } from "effect"
import { generateKeyPairSync } from "node:crypto"
import { AmendOrder, CancelOrder, SubmitOrder } from "../../schema/Control.js"
import { decimal } from "../../schema/Event.js"
import { makeCoinbaseAdapter } from "../../src/execution/Coinbase.js"
import { makeLiveVenue } from "../../src/execution/live/LiveVenue.js"
import { Pool } from "../../src/Pool.js"
import { CoinbaseMock } from "./CoinbaseMock.js"
import { assertSequence, kindsOf, liveVenueOn, makeLayer, orderTo, Received, until } from "./live/harness.js"
import { refusedBeforeSending } from "./live/scenarios.js"

const KEY_NAME = "organizations/00000000-1111-4222-8333-444444444444/apiKeys/fake-coinbase-key-5b6c7d"
const SYM = "BTC-USD"
const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
const PRIVATE_PEM = pair.privateKey.export({ format: "pem", type: "sec1" }).toString()
const PUBLIC_PEM = pair.publicKey.export({ format: "pem", type: "spki" }).toString()
/** The body of the private key, the part a leak would show. */
const PRIVATE_BODY = PRIVATE_PEM.split("\n")[1]!

const submit = orderTo("coinbase", SYM, "100.00")

interface Setup {
  readonly privateKey?: string
  readonly dryRun?: boolean
  readonly skewMs?: number
}

const setup = (opts: Setup = {}) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const mock = new CoinbaseMock({
      keyName: KEY_NAME,
      publicKey: PUBLIC_PEM,
      now: () => clock.unsafeCurrentTimeMillis() + (opts.skewMs ?? 0),
      marketPrice: { "BTC-USD": "101.50" },
      book: { "BTC-USD": { bid: "99.00", ask: "101.00" } }
    })
    yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
    const makeAdapter = makeCoinbaseAdapter({
      restUrl: mock.restUrl,
      wsUrl: mock.wsUrl,
      symbols: [SYM],
      credentials: { keyName: Redacted.make(KEY_NAME), privateKey: Redacted.make(opts.privateKey ?? PRIVATE_PEM) },
      timeoutMs: 5_000,
      dryRun: opts.dryRun ?? false,
      backoff: { initialMs: 1_000, maxMs: 1_000, factor: 1, jitter: 0 }
    })
    const { adapter, venue, another, received, logs } = yield* liveVenueOn(makeAdapter, opts.privateKey === undefined)
    return { mock, adapter, venue, another, received, logs }
  })

describe("Coinbase live venue (mock)", () => {
  it.scoped("a limit order: new, partial fill, fill; fills fetched by trade id; each transition reported once", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      const view = yield* venue.submit(submit("c-1"))
      assert.strictEqual(view.status, "new")
      assert.strictEqual(view.venue, "coinbase")
      assert.strictEqual(mock.byClient("c-1")?.kind, "limit_limit_gtc")
      mock.fill("c-1", "0.2", "100.00")
      yield* until(() => kindsOf(received, "c-1").length === 2, "the partial fill")
      mock.fill("c-1", "0.3", "99.50")
      yield* until(() => kindsOf(received, "c-1").length === 3, "the fill")
      assert.deepStrictEqual(kindsOf(received, "c-1"), ["new", "partially_filled", "filled"])
      assertSequence(received, "c-1")
      const last = received.at(-1)!.payload
      assert.strictEqual(last.filledQty, "0.5")
      assert.strictEqual(last.lastFillPrice, "99.5")
      yield* venue.reconcile
      assert.deepStrictEqual(kindsOf(received, "c-1"), ["new", "partially_filled", "filled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("a market order (market_market_ioc) fills in two trades, each reported once", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("c-m", { orderType: "market", quantity: "0.4" }))
      yield* until(() => kindsOf(received, "c-m").at(-1) === "filled", "the fills")
      assert.strictEqual(mock.byClient("c-m")?.kind, "market_market_ioc")
      assert.deepStrictEqual(kindsOf(received, "c-m"), ["new", "partially_filled", "filled"])
      assertSequence(received, "c-m")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("IOC and FOK limit orders use sor_limit_ioc and limit_limit_fok", () =>
    Effect.gen(function*() {
      const { mock, venue } = yield* setup()
      yield* venue.submit(submit("c-ioc", { timeInForce: "IOC" }))
      yield* venue.submit(submit("c-fok", { timeInForce: "FOK" }))
      assert.strictEqual(mock.byClient("c-ioc")?.kind, "sor_limit_ioc")
      assert.strictEqual(mock.byClient("c-fok")?.kind, "limit_limit_fok")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("cancel (batch_cancel): a canceled report; a second cancel is OrderNotCancelable", () =>
    Effect.gen(function*() {
      const { venue, received } = yield* setup()
      yield* venue.submit(submit("c-c"))
      const canceled = yield* venue.cancel(CancelOrder.make({ commandId: "c1", consumerId: "strat-1", clientOrderId: "c-c" }))
      assert.strictEqual(canceled.status, "canceled")
      const again = yield* Effect.either(venue.cancel(CancelOrder.make({ commandId: "c2", consumerId: "strat-1", clientOrderId: "c-c" })))
      assert.isTrue(Either.isLeft(again) && again.left._tag === "OrderNotCancelable")
      yield* until(() => kindsOf(received, "c-c").length >= 2, "reports")
      assert.deepStrictEqual(kindsOf(received, "c-c"), ["new", "canceled"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("amend (edit): size and price change at the venue; below the filled size is refused", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("c-a", { quantity: "0.5" }))
      const smaller = yield* venue.amend(AmendOrder.make({ commandId: "a1", consumerId: "strat-1", clientOrderId: "c-a", quantity: decimal("0.3") }))
      assert.strictEqual(smaller.quantity, "0.3")
      const repriced = yield* venue.amend(AmendOrder.make({ commandId: "a2", consumerId: "strat-1", clientOrderId: "c-a", price: decimal("98.50") }))
      assert.strictEqual(repriced.price, "98.5")
      assert.deepStrictEqual([mock.byClient("c-a")!.base_size, mock.byClient("c-a")!.limit_price], ["0.3", "98.50"])
      mock.fill("c-a", "0.2", "98.50")
      yield* until(() => kindsOf(received, "c-a").length === 4, "the partial fill")
      const below = yield* Effect.either(venue.amend(AmendOrder.make({ commandId: "a3", consumerId: "strat-1", clientOrderId: "c-a", quantity: decimal("0.1") })))
      assert.isTrue(Either.isLeft(below) && below.left._tag === "InvalidQuantity")
      assert.deepStrictEqual(kindsOf(received, "c-a"), ["new", "new", "new", "partially_filled"])
      assertSequence(received, "c-a")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("rejections: Coinbase's failure reasons become typed rejections; instrument rules are checked before sending", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      const venueErrors: ReadonlyArray<readonly [string, string | undefined, string]> = [
        ["INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND", "InsufficientBalance"],
        ["INVALID_SIZE_PRECISION", undefined, "InvalidQuantity"],
        ["INVALID_PRICE_PRECISION", undefined, "InvalidPrice"],
        ["UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "BelowMinimum"],
        ["INVALID_PRODUCT_ID", undefined, "UnknownSymbol"],
        ["ORDER_ENTRY_DISABLED", undefined, "VenueRejected"]
      ]
      for (const [i, [error, preview, tag]] of venueErrors.entries()) {
        mock.rejectNextOrder(error, `refused: ${error}`, preview)
        const r = yield* Effect.either(venue.submit(submit(`c-r${i}`)))
        assert.isTrue(Either.isLeft(r) && r.left._tag === tag, `${error}: ${Either.isLeft(r) ? r.left._tag : "accepted"}`)
        assert.deepStrictEqual(kindsOf(received, `c-r${i}`), ["rejected"])
      }
      const maker = yield* Effect.either(venue.submit(submit("c-post", { postOnly: true, price: "101.00" })))
      assert.isTrue(Either.isLeft(maker) && maker.left._tag === "PostOnlyWouldTake")
      const sent = mock.requests.length
      const table: ReadonlyArray<readonly [string, ReturnType<typeof submit>, string]> = [
        ["off tick", submit("c-t1", { price: "100.001" }), "InvalidPrice"],
        ["off lot", submit("c-t2", { quantity: "0.000000001" }), "InvalidQuantity"],
        ["below minimum notional", submit("c-t3", { quantity: "0.001", price: "100.00" }), "BelowMinimum"],
        ["unknown symbol", SubmitOrder.make({ ...submit("c-t6"), symbol: "DOGE-EUR" }), "UnknownSymbol"]
      ]
      yield* refusedBeforeSending(venue, table)
      assert.strictEqual(mock.requests.length, sent, "none of them reached the venue")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("disconnect mid-order: the fill and the cancel that happened while away are reconciled once, in order", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      yield* venue.submit(submit("c-d"))
      mock.fill("c-d", "0.1", "100.00")
      yield* until(() => kindsOf(received, "c-d").length === 2, "the first fill")
      mock.dropStreams()
      yield* until(() => !venue.liveStats().connected, "the disconnect")
      yield* TestClock.adjust("100 millis")
      mock.fill("c-d", "0.15", "99.90")
      mock.cancelAtVenue("c-d")
      const before = venue.liveStats().reconciliations
      yield* TestClock.adjust("2 seconds")
      yield* until(() => venue.liveStats().reconciliations > before && kindsOf(received, "c-d").length === 4, "the reconciliation")
      assert.deepStrictEqual(kindsOf(received, "c-d"), ["new", "partially_filled", "partially_filled", "canceled"])
      assertSequence(received, "c-d")
      assert.strictEqual(received.at(-1)!.payload.filledQty, "0.25")
      yield* venue.reconcile
      assert.strictEqual(kindsOf(received, "c-d").length, 4)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("timeout: the order is looked up by client_order_id, never resent", () =>
    Effect.gen(function*() {
      const { mock, venue, received } = yield* setup()
      mock.hold("POST /api/v3/brokerage/orders")
      const fiber = yield* Effect.fork(venue.submit(submit("c-to")))
      yield* until(() => mock.placements("c-to") === 1, "the placement to reach the venue")
      yield* TestClock.adjust("5 seconds")
      const view = yield* Fiber.join(fiber)
      assert.strictEqual(view.status, "new")
      assert.strictEqual(mock.placements("c-to"), 1, "sent once")
      mock.release()
      yield* until(() => kindsOf(received, "c-to").length >= 1, "the report")
      assert.deepStrictEqual(kindsOf(received, "c-to"), ["new"])
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("duplicate submission: the same terms answer with the order; a second engine adopts it; one order at Coinbase", () =>
    Effect.gen(function*() {
      const { mock, venue, another, received } = yield* setup()
      const first = yield* venue.submit(submit("c-dup"))
      const second = yield* venue.submit(submit("c-dup"))
      assert.strictEqual(second.orderId, first.orderId)
      const other = yield* Effect.either(venue.submit(submit("c-dup", { price: "90.00" })))
      assert.isTrue(Either.isLeft(other) && other.left._tag === "DuplicateClientOrderId")
      assert.strictEqual(mock.placements("c-dup"), 1)
      assert.deepStrictEqual(kindsOf(received, "c-dup"), ["new"])
      const fresh = yield* another
      const adopted = yield* fresh.submit(submit("c-dup"))
      assert.strictEqual(adopted.orderId, first.orderId)
      assert.strictEqual(mock.orders.size, 1, "one order at the venue")
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("rate limited (HTTP 429): a typed rejection and a cool-down of its Retry-After", () =>
    Effect.gen(function*() {
      const { mock, venue } = yield* setup()
      mock.rateLimit(3)
      const limited = yield* Effect.either(venue.submit(submit("c-rl1")))
      assert.isTrue(Either.isLeft(limited) && limited.left._tag === "VenueRejected" && limited.left.code === "rate_limited")
      const fiber = yield* Effect.fork(venue.submit(submit("c-rl2")))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(mock.placements("c-rl2"), 0, "held back during the cool-down")
      yield* TestClock.adjust("1 second")
      const ok = yield* Fiber.join(fiber)
      assert.strictEqual(ok.status, "new")
      const stats = venue.liveStats().adapter
      assert.strictEqual(stats.rateLimited, 1)
      const budget = stats.budget.find((b) => b.bucket === "private")!
      assert.strictEqual(budget.limit, 30)
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("another key: Coinbase refuses the JWT, the order is rejected as not authenticated", () =>
    Effect.gen(function*() {
      const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ format: "pem", type: "sec1" }).toString()
      const { mock, venue, received } = yield* setup({ privateKey: other })
      const r = yield* Effect.either(venue.submit(submit("c-auth")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "authentication_failed")
      assert.strictEqual(mock.lastAuthFailure, "signature")
      assert.deepStrictEqual(kindsOf(received, "c-auth"), ["rejected"])
    }).pipe(Effect.provide(makeLayer())), { timeout: 30_000 })

  it.scoped("dry-run: the signed request is logged with its Authorization redacted, and not sent; no key in any log", () =>
    Effect.gen(function*() {
      const { mock, venue, logs } = yield* setup({ dryRun: true })
      const r = yield* Effect.either(venue.submit(submit("c-dry")))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "VenueRejected" && r.left.code === "dry_run")
      assert.strictEqual(mock.placements("c-dry"), 0)
      const line = logs.find((l) => l.includes("dry-run"))!
      assert.include(line, "\\\"client_order_id\\\":\\\"c-dry\\\"")
      assert.notInclude(line, "Bearer")
      for (const l of logs) {
        assert.notInclude(l, PRIVATE_BODY)
        assert.notInclude(l, "eyJ") // no JWT (base64url of '{"') in any log line
      }
    }).pipe(Effect.provide(makeLayer())))

  it.scoped("clock skew: measured against /api/v3/brokerage/time; JWTs are signed on the venue's clock", () =>
    Effect.gen(function*() {
      const near = yield* setup({ skewMs: 20_000 })
      const skew = yield* near.adapter.syncClock
      assert.strictEqual(skew, 20_000)
      // with the skew corrected, a JWT's nbf is the venue's now: accepted
      const view = yield* near.venue.submit(submit("c-skew"))
      assert.strictEqual(view.status, "new")
      const far = yield* setup({ skewMs: 45_000 })
      const r = yield* Effect.either(far.adapter.syncClock)
      assert.isTrue(Either.isLeft(r) && r.left._tag === "ClockSkewTooLarge" && r.left.skewMs === 45_000)
    }).pipe(Effect.provide(makeLayer())))
})

describe("Coinbase live venue: resources", () => {
  it.scoped("closing the venue's scope closes its user channel and stops reconnecting; every report recycled", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const mock = new CoinbaseMock({ keyName: KEY_NAME, publicKey: PUBLIC_PEM, now: () => clock.unsafeCurrentTimeMillis() })
      yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
      const received = yield* Received
      const pool = yield* Pool
      const scope = yield* Scope.make()
      const venue = yield* Effect.gen(function*() {
        const adapter = yield* makeCoinbaseAdapter({
          restUrl: mock.restUrl,
          wsUrl: mock.wsUrl,
          symbols: [SYM],
          credentials: { keyName: Redacted.make(KEY_NAME), privateKey: Redacted.make(PRIVATE_PEM) },
          backoff: { initialMs: 1_000, maxMs: 1_000, factor: 1, jitter: 0 }
        })
        return yield* makeLiveVenue(adapter, {})
      }).pipe(Scope.extend(scope))
      yield* until(() => venue.liveStats().connected, "the user channel")
      yield* venue.submit(submit("c-leak"))
      mock.fill("c-leak", "0.5", "100.00")
      yield* until(() => kindsOf(received, "c-leak").length === 2, "the fill")
      yield* Scope.close(scope, Exit.void)
      yield* until(() => mock.openSockets === 0, "the socket to close")
      const connections = mock.connections
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(mock.connections, connections, "no reconnect after the scope closed")
      assert.strictEqual(pool.stats().ExecReport.outstanding, 0, "every report recycled")
    }).pipe(Effect.provide(makeLayer())))
})
