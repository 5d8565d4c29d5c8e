/**
 * The new order terms and `AmendOrder` through the in-memory Control Bus and
 * the Control Plane: as JSON on the wire, answered with a ControlResult whose
 * detail is the order, and its execution reports to the consumer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { layerMemory } from "../../layers/Memory.js"
import { BookSnapshot, decimal } from "../../schema/Event.js"
import { Consumers } from "../../src/Consumer.js"
import { ControlBus } from "../../src/ControlBus.js"
import type { AnyEvent } from "../../src/Event.js"
import type { OrderView } from "../../src/ExecutionVenue.js"
import { Orchestrator } from "../../src/Orchestrator.js"
import { Pool } from "../../src/Pool.js"
import { eventually } from "../support/events.js"

const layer = () =>
  layerMemory({
    symbols: ["BTC-USDT"],
    providers: ["sim-a", "sim-b"],
    paperVenues: { "sim-a": { symbols: ["BTC-USDT"] }, "sim-b": { symbols: ["BTC-USDT"] } }
  })

const command = (body: Record<string, unknown>) =>
  JSON.stringify({ schemaVersion: 1, command: { consumerId: "trader", ...body } })

describe("order commands through the Control Plane", () => {
  it.scoped("a submit naming its venue, an amend, and a submit naming none answered with their outcomes", () =>
    Effect.gen(function*() {
      const consumers = yield* Consumers
      const control = yield* ControlBus
      const orchestrator = yield* Orchestrator
      const pool = yield* Pool
      const results: Array<{ commandId: string; outcome: string; detail?: unknown; rejection?: string }> = []
      const reports: Array<string> = []
      yield* consumers.start({
        id: "trader",
        handle: (e: AnyEvent) =>
          Effect.sync(() => {
            const p = e.payload
            if (p?._tag === "control_result") {
              results.push({
                commandId: p.commandId,
                outcome: p.outcome,
                ...(p.detail === undefined ? {} : { detail: p.detail }),
                ...(p.rejection === undefined ? {} : { rejection: p.rejection._tag })
              })
            } else if (p?._tag === "exec_report") reports.push(`${p.clientOrderId} ${p.reportSeq} ${p.status} ${p.quantity}@${p.price}`)
          })
      })
      const e = pool.acquireEvent()
      e.provider = "sim-b"
      e.symbol = "BTC-USDT"
      e.kind = "book_snapshot"
      e.traceId = "book-b"
      e.payload = BookSnapshot.make({ bids: [[decimal("99"), decimal("1")]], asks: [[decimal("101"), decimal("1")]], state: "consistent" })
      yield* orchestrator.ingest(e)
      yield* control.submitJson(command({
        _tag: "SubmitOrder",
        commandId: "c1",
        clientOrderId: "o-1",
        symbol: "BTC-USDT",
        venue: "sim-b",
        side: "buy",
        orderType: "limit",
        quantity: "0.5",
        price: "95",
        timeInForce: "GTC",
        postOnly: true
      }))
      yield* control.submitJson(command({ _tag: "AmendOrder", commandId: "c2", clientOrderId: "o-1", price: "96", quantity: "0.75" }))
      yield* control.submitJson(command({
        _tag: "SubmitOrder",
        commandId: "c3",
        clientOrderId: "o-2",
        symbol: "BTC-USDT",
        side: "buy",
        orderType: "market",
        quantity: "0.1"
      }))
      yield* control.submitJson(command({ _tag: "AmendOrder", commandId: "c4", clientOrderId: "o-1" }))
      yield* eventually(() => results.length === 4, "four results")
      const byId = new Map(results.map((r) => [r.commandId, r]))
      const placed = byId.get("c1")!.detail as OrderView
      assert.deepStrictEqual([placed.venue, placed.status, placed.postOnly, placed.timeInForce], ["sim-b", "new", true, "GTC"])
      const amended = byId.get("c2")!.detail as OrderView
      assert.deepStrictEqual([amended.status, amended.price, amended.quantity, amended.reports], ["new", "96", "0.75", 2])
      assert.deepStrictEqual([byId.get("c3")!.outcome, byId.get("c3")!.rejection], ["rejected", "VenueRequired"])
      assert.deepStrictEqual([byId.get("c4")!.outcome, byId.get("c4")!.rejection], ["rejected", "InvalidCommand"])
      yield* eventually(() => reports.length === 3, "three reports")
      assert.deepStrictEqual(reports, ["o-1 1 new 0.5@95", "o-1 2 new 0.75@96", "o-2 1 rejected 0.1@undefined"])
    }).pipe(Effect.provide(layer())))
})
