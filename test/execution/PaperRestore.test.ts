/**
 * Open orders kept across a restart keep their venue and order type, and the
 * fresh account reserves for them again (or cancels them when it cannot).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { PaperChanges, PaperStoreShape, StoredOrder } from "../../src/execution/PaperStore.js"
import { balanceOf, book, limit, query, roomy, trail, withPaper } from "./paperHarness.js"

/** A store in memory, shared by two runs of the venue. */
const memoryStore = (): PaperStoreShape & { readonly orders: Map<string, StoredOrder> } => {
  const orders = new Map<string, StoredOrder>()
  let nextOrder = 0
  return {
    name: "memory",
    orders,
    load: Effect.sync(() => ({ orders: [...orders.values()], nextOrder })),
    save: (c: PaperChanges) =>
      Effect.sync(() => {
        for (const r of c.remove) orders.delete(r.clientOrderId)
        for (const o of c.upsert) orders.set(o.clientOrderId, o)
        nextOrder = c.nextOrder
      })
  }
}

describe("paper venue: restart", () => {
  it.effect("a resting order rests again on its venue with its terms, holding its reservation", () =>
    Effect.gen(function*() {
      const store = memoryStore()
      const venues = { "sim-a": roomy, "sim-b": { balances: { USDT: "1000" }, fees: { maker: "0", taker: "0" } } }
      yield* withPaper({ store, venues }, (s) =>
        Effect.gen(function*() {
          yield* book(s, "sim-b", [["90", "1"]], [["110", "1"]])
          yield* s.venue.submit(limit("l-1", "buy", "2", "100", { venue: "sim-b", postOnly: true }))
        }))
      const stored = store.orders.get("l-1")!
      assert.deepStrictEqual([stored.venue, stored.timeInForce, stored.postOnly, stored.reduceOnly], ["sim-b", "GTC", true, false])
      yield* withPaper({ store, venues }, (s) =>
        Effect.gen(function*() {
          const v = yield* s.venue.query(query("l-1"))
          assert.deepStrictEqual([v.venue, v.status, v.postOnly, v.timeInForce], ["sim-b", "new", true, "GTC"])
          assert.deepStrictEqual(balanceOf(s, "sim-b", "USDT"), ["1000", "800", "200"])
          // another venue's market crossing its price does not touch it
          yield* book(s, "sim-a", [["90", "1"]], [["95", "5"]])
          assert.deepStrictEqual(trail(s.received, "l-1"), [])
          yield* book(s, "sim-b", [["90", "1"]], [["99", "5"]])
          assert.deepStrictEqual(trail(s.received, "l-1"), ["2 filled 2@99 filled=2"])
          assert.deepStrictEqual(balanceOf(s, "sim-b", "USDT"), ["802", "802", "0"])
        }))
      assert.strictEqual(store.orders.size, 0, "the filled order left the store")
    }))

  it.effect("an order the fresh account cannot pay for is canceled at start, with the reason", () =>
    Effect.gen(function*() {
      const store = memoryStore()
      yield* withPaper({ store, venues: { "sim-a": { balances: { USDT: "1000" } } } }, (s) =>
        Effect.gen(function*() {
          yield* book(s, "sim-a", [["90", "1"]], [["110", "1"]])
          yield* s.venue.submit(limit("l-1", "buy", "2", "100", { venue: "sim-a" }))
        }))
      yield* withPaper({ store, venues: { "sim-a": { balances: { USDT: "100" } } } }, (s) =>
        Effect.gen(function*() {
          const v = yield* s.venue.query(query("l-1"))
          assert.deepStrictEqual([v.status, v.reason], ["canceled", "insufficient USDT at restart: needs 200.1, has 100"])
          assert.deepStrictEqual(trail(s.received, "l-1"), ["2 canceled filled=0"])
          assert.deepStrictEqual(balanceOf(s, "sim-a", "USDT"), ["100", "100", "0"])
        }))
      assert.strictEqual(store.orders.size, 0)
    }))
})
