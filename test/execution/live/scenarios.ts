/**
 * Scenarios that read the same on every venue whose orders go over REST and
 * whose updates come on a private stream (Binance, OKX): each suite runs them
 * on its own mock with its own order ids and endpoints, beside the scenarios
 * that only its venue has.
 */
import { assert } from "@effect/vitest"
import { Effect, Either, Fiber, TestClock } from "effect"
import type { SubmitOrder } from "../../../schema/Control.js"
import type { WireExecReport } from "../../../schema/Event.js"
import type { LiveVenueShape } from "../../../src/execution/live/LiveVenue.js"
import { assertSequence, kindsOf, type OrderTerms, until } from "./harness.js"

/** What these scenarios ask of a mock venue. */
export interface RestVenueMock {
  readonly requests: ReadonlyArray<{ readonly method: string; readonly path: string }>
  readonly orders: { readonly size: number }
  placements(clientOrderId: string): number
  fill(clientOrderId: string, quantity: string, price: string): void
  cancelAtVenue(clientOrderId: string): void
  dropStreams(): void
  hold(op: string): void
  lose(op: string): void
  release(): void
}

export interface Connected<E = unknown, R = unknown> {
  readonly mock: RestVenueMock
  readonly venue: LiveVenueShape
  /** A second engine on the same account. */
  readonly another: Effect.Effect<LiveVenueShape, E, R>
  readonly received: ReadonlyArray<WireExecReport>
}

export type Submit = (clientOrderId: string, terms?: OrderTerms) => SubmitOrder

/** Hostile orders refused before anything reaches the venue: each with the rejection it must get. */
export const refusedBeforeSending = (
  venue: LiveVenueShape,
  table: ReadonlyArray<readonly [name: string, order: SubmitOrder, tag: string]>
) =>
  Effect.gen(function*() {
    for (const [name, order, tag] of table) {
      const r = yield* Effect.either(venue.submit(order))
      assert.isTrue(Either.isLeft(r) && r.left._tag === tag, `${name}: ${Either.isLeft(r) ? r.left._tag : "accepted"}`)
    }
  })

/** A fill and a cancellation while the stream is down are reconciled once, in order, on the next connect. */
export const disconnectMidOrder = <E, R>(setup: Effect.Effect<Connected, E, R>, submit: Submit, cid: string) =>
  Effect.gen(function*() {
    const { mock, venue, received } = yield* setup
    yield* venue.submit(submit(cid))
    mock.fill(cid, "0.1", "100.00")
    yield* until(() => kindsOf(received, cid).length === 2, "the first fill")
    mock.dropStreams()
    yield* until(() => !venue.liveStats().connected, "the disconnect")
    // while away: another fill and a cancellation at the venue, pushed to nobody
    yield* TestClock.adjust("100 millis")
    mock.fill(cid, "0.15", "99.90")
    mock.cancelAtVenue(cid)
    const before = venue.liveStats().reconciliations
    yield* TestClock.adjust("2 seconds")
    yield* until(() => venue.liveStats().reconciliations > before && kindsOf(received, cid).length === 4, "the reconciliation")
    assert.deepStrictEqual(kindsOf(received, cid), ["new", "partially_filled", "partially_filled", "canceled"])
    assertSequence(received, cid)
    assert.strictEqual(received.at(-1)!.payload.filledQty, "0.25")
    // a second reconciliation changes nothing
    yield* venue.reconcile
    assert.strictEqual(kindsOf(received, cid).length, 4)
  })

/** A placement whose answer is held past the timeout: the order is queried, never resent. */
export const timeoutQueried = <E, R>(setup: Effect.Effect<Connected, E, R>, submit: Submit, cid: string, placeOp: string) =>
  Effect.gen(function*() {
    const { mock, venue, received } = yield* setup
    mock.hold(placeOp)
    const fiber = yield* Effect.fork(venue.submit(submit(cid)))
    yield* until(() => mock.placements(cid) === 1, "the placement to reach the venue")
    yield* TestClock.adjust("5 seconds")
    const view = yield* Fiber.join(fiber)
    assert.strictEqual(view.status, "new")
    assert.strictEqual(mock.placements(cid), 1, "sent once")
    assert.strictEqual(venue.liveStats().outcomeQueries, 1)
    mock.release()
    yield* until(() => kindsOf(received, cid).length >= 1, "the report")
    assert.deepStrictEqual(kindsOf(received, cid), ["new"])
  })

/**
 * A placement the venue never got: queried (at `queryPath`) until its receive
 * window passed, then rejected as not received; never resent.
 */
export const lostPlacement = <E, R>(
  setup: Effect.Effect<Connected, E, R>,
  submit: Submit,
  cid: string,
  placeOp: string,
  queryPath: string
) =>
  Effect.gen(function*() {
    const { mock, venue, received } = yield* setup
    const queries = () => mock.requests.filter((r) => r.method === "GET" && r.path === queryPath).length
    mock.lose(placeOp)
    const fiber = yield* Effect.fork(venue.submit(submit(cid)))
    yield* until(() => mock.placements(cid) === 1, "the placement")
    yield* TestClock.adjust("5 seconds")
    yield* until(() => queries() > 0, "the query")
    for (let i = 0; i < 6 && fiber.unsafePoll() === null; i++) {
      yield* TestClock.adjust("1 second")
      yield* until(() => queries() >= i + 2 || fiber.unsafePoll() !== null, "a further query")
    }
    const result = yield* Effect.either(Fiber.join(fiber))
    assert.isTrue(Either.isLeft(result) && result.left._tag === "VenueRejected" && result.left.code === "not_received")
    assert.strictEqual(mock.placements(cid), 1, "never resent")
    assert.deepStrictEqual(kindsOf(received, cid), ["rejected"])
  })

/** The same terms twice answer with the order; other terms are refused; one order at the venue. */
export const duplicateSubmission = <E, R>(setup: Effect.Effect<Connected, E, R>, submit: Submit, cid: string) =>
  Effect.gen(function*() {
    const { mock, venue, received } = yield* setup
    const first = yield* venue.submit(submit(cid))
    const second = yield* venue.submit(submit(cid))
    assert.strictEqual(second.orderId, first.orderId)
    const other = yield* Effect.either(venue.submit(submit(cid, { price: "90.00" })))
    assert.isTrue(Either.isLeft(other) && other.left._tag === "DuplicateClientOrderId")
    assert.strictEqual(mock.placements(cid), 1)
    assert.deepStrictEqual(kindsOf(received, cid), ["new"])
  })

/** A second engine on the same account (as after a restart) adopts the venue's order instead of placing it twice. */
export const adoptedAfterRestart = <E, R, E2, R2>(setup: Effect.Effect<Connected<E2, R2>, E, R>, submit: Submit, cid: string) =>
  Effect.gen(function*() {
    const { mock, venue, another } = yield* setup
    const first = yield* venue.submit(submit(cid))
    const fresh = yield* another
    const adopted = yield* fresh.submit(submit(cid))
    assert.strictEqual(adopted.orderId, first.orderId)
    assert.strictEqual(adopted.status, "new")
    assert.strictEqual(mock.orders.size, 1, "one order at the venue")
  })
