/**
 * The same strategy run on paper and on the Kraken and Coinbase mock venues
 * gives the same sequence of execution report kinds: a limit buy filled in
 * two parts, a limit sell amended then canceled, a post-only order refused.
 * The market's side of the script (someone trades against our resting order)
 * is played by a book on paper and by the mock venue's matching live.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { generateKeyPairSync } from "node:crypto"
import { AmendOrder, CancelOrder, SubmitOrder } from "../../schema/Control.js"
import { decimal, type WireExecReport } from "../../schema/Event.js"
import type { ExecutionVenueShape } from "../../src/ExecutionVenue.js"
import { ExecutionVenue } from "../../src/ExecutionVenue.js"
import { makeCoinbaseAdapter } from "../../src/execution/Coinbase.js"
import { makeKrakenAdapter } from "../../src/execution/Kraken.js"
import { makeLiveVenue } from "../../src/execution/live/LiveVenue.js"
import { Pool } from "../../src/Pool.js"
import { Recycler } from "../../src/Recycler.js"
import { CoinbaseMock } from "./CoinbaseMock.js"
import { KrakenMock } from "./KrakenMock.js"
import { kindsOf, makeLayer, Received, until } from "./live/harness.js"
import { book, paperLayer, Received as PaperReceived, roomy, type Services } from "./paperHarness.js"

const SYM = "BTC-USD"

interface World {
  readonly venue: ExecutionVenueShape
  readonly venueName: string
  readonly received: ReadonlyArray<WireExecReport>
  /** The market takes `qty` of our resting buy at `price`. */
  readonly trade: (clientOrderId: string, qty: string, price: string) => Effect.Effect<void>
}

const order = (venue: string, cid: string, side: "buy" | "sell", qty: string, price: string, postOnly = false) =>
  SubmitOrder.make({
    commandId: `cmd-${cid}`,
    consumerId: "strat-1",
    clientOrderId: cid,
    symbol: SYM,
    venue,
    side,
    orderType: "limit",
    quantity: decimal(qty),
    price: decimal(price),
    ...(postOnly ? { postOnly } : {})
  })

/** The strategy: what it sends, and the kinds of reports each of its orders got. */
const strategy = (w: World) =>
  Effect.gen(function*() {
    const settled = (cid: string, n: number) => until(() => kindsOf(w.received, cid).length >= n, `${n} reports of ${cid}`)
    yield* w.venue.submit(order(w.venueName, "s-buy", "buy", "0.5", "100.00"))
    yield* settled("s-buy", 1)
    yield* w.trade("s-buy", "0.2", "100.00")
    yield* settled("s-buy", 2)
    yield* w.trade("s-buy", "0.3", "100.00")
    yield* settled("s-buy", 3)
    yield* w.venue.submit(order(w.venueName, "s-sell", "sell", "0.4", "120.00"))
    yield* w.venue.amend(AmendOrder.make({ commandId: "a-1", consumerId: "strat-1", clientOrderId: "s-sell", quantity: decimal("0.3") }))
    yield* w.venue.cancel(CancelOrder.make({ commandId: "c-1", consumerId: "strat-1", clientOrderId: "s-sell" }))
    yield* settled("s-sell", 3)
    const refused = yield* Effect.either(w.venue.submit(order(w.venueName, "s-post", "buy", "0.1", "101.00", true)))
    return {
      "s-buy": kindsOf(w.received, "s-buy"),
      "s-sell": kindsOf(w.received, "s-sell"),
      "s-post": Either.isLeft(refused) ? refused.left._tag : "accepted"
    }
  })

const onPaper = (venueName: string) =>
  Effect.gen(function*() {
    const s: Services = yield* Effect.all({ venue: ExecutionVenue, pool: Pool, recycler: Recycler, received: PaperReceived })
    const { venue, received } = s
    yield* book(s, venueName, [["99.00", "5"]], [["101.00", "5"]], SYM)
    return yield* strategy({
      venue,
      venueName,
      received,
      // someone sells `qty` at `price` into our bid, then the book is as before
      trade: (_cid, qty, price) =>
        book(s, venueName, [["99.00", "5"]], [[price, qty]], SYM).pipe(
          Effect.zipRight(book(s, venueName, [["99.00", "5"]], [["101.00", "5"]], SYM))
        )
    })
  })

describe("the same strategy on paper and live (mock venues)", () => {
  it.scoped("Kraken: the same report kinds as paper", () =>
    Effect.gen(function*() {
      const paper = yield* paperRun("kraken")
      const live = yield* Effect.gen(function*() {
        const clock = yield* Effect.clock
        const secret = Buffer.from("parity-kraken-secret".repeat(3)).toString("base64")
        const mock = new KrakenMock({
          apiKey: "parity-key",
          apiSecret: secret,
          now: () => clock.unsafeCurrentTimeMillis(),
          book: { XBTUSD: { bid: "99.0", ask: "101.0" } }
        })
        yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
        const adapter = yield* makeKrakenAdapter({
          restUrl: mock.restUrl,
          wsUrl: mock.wsUrl,
          symbols: [SYM],
          credentials: { apiKey: Redacted.make("parity-key"), apiSecret: Redacted.make(secret) },
          timeoutMs: 5_000
        })
        const venue = yield* makeLiveVenue(adapter, {})
        yield* until(() => venue.liveStats().connected && venue.liveStats().reconciliations >= 1, "the private stream")
        const received = yield* Received
        return yield* strategy({
          venue,
          venueName: "kraken",
          received,
          trade: (cid, qty, price) => Effect.sync(() => mock.fill(cid, qty, price))
        })
      }).pipe(Effect.provide(makeLayer()))
      assert.deepStrictEqual(live, paper)
      assert.deepStrictEqual(paper, {
        "s-buy": ["new", "partially_filled", "filled"],
        "s-sell": ["new", "new", "canceled"],
        "s-post": "PostOnlyWouldTake"
      })
    }))

  it.scoped("Coinbase: the same report kinds as paper", () =>
    Effect.gen(function*() {
      const paper = yield* paperRun("coinbase")
      const live = yield* Effect.gen(function*() {
        const clock = yield* Effect.clock
        const keys = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
        const keyName = "organizations/parity/apiKeys/parity"
        const mock = new CoinbaseMock({
          keyName,
          publicKey: keys.publicKey.export({ format: "pem", type: "spki" }).toString(),
          now: () => clock.unsafeCurrentTimeMillis(),
          book: { "BTC-USD": { bid: "99.00", ask: "101.00" } }
        })
        yield* Effect.acquireRelease(Effect.promise(() => mock.start()), () => Effect.promise(() => mock.stop()))
        const adapter = yield* makeCoinbaseAdapter({
          restUrl: mock.restUrl,
          wsUrl: mock.wsUrl,
          symbols: [SYM],
          credentials: {
            keyName: Redacted.make(keyName),
            privateKey: Redacted.make(keys.privateKey.export({ format: "pem", type: "sec1" }).toString())
          },
          timeoutMs: 5_000
        })
        const venue = yield* makeLiveVenue(adapter, {})
        yield* until(() => venue.liveStats().connected && venue.liveStats().reconciliations >= 1, "the private stream")
        const received = yield* Received
        return yield* strategy({
          venue,
          venueName: "coinbase",
          received,
          trade: (cid, qty, price) => Effect.sync(() => mock.fill(cid, qty, price))
        })
      }).pipe(Effect.provide(makeLayer()))
      assert.deepStrictEqual(live, paper)
    }))
})

/** The strategy on a paper venue named like the live one, with roomy balances and no fees. */
const paperRun = (venueName: string) =>
  onPaper(venueName).pipe(
    Effect.provide(paperLayer({ venues: { [venueName]: { ...roomy, balances: { BTC: "1000", USD: "10000000" }, symbols: [SYM] } } }))
  )
