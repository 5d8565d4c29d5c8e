/**
 * Hostile private-stream frames (Kraken `executions`, Coinbase `user`): each
 * is refused as malformed (the stream counts it) without throwing, and the
 * next good frame reads as usual.
 */
import { assert, describe, it } from "@effect/vitest"
import { parsePrivateFrame as coinbaseFrame } from "../../src/execution/Coinbase.js"
import { parsePrivateFrame as krakenFrame } from "../../src/execution/Kraken.js"

const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
const huge = `{"channel":"executions","type":"update","data":[],"pad":"${"x".repeat(1 << 20)}"}`

const krakenTrade = (fields: Record<string, unknown>) =>
  JSON.stringify({
    channel: "executions",
    type: "update",
    data: [{ order_id: "O1", cl_ord_id: "c1", exec_type: "trade", exec_id: "T1", order_status: "partially_filled", last_qty: 0.1, last_price: 100, ...fields }]
  })

describe("hostile private-stream frames", () => {
  const krakenHostile: ReadonlyArray<readonly [string, string]> = [
    ["empty", ""],
    ["not JSON", "{\"channel\":"],
    ["null", "null"],
    ["an array", "[1,2,3]"],
    ["a string", "\"executions\""],
    ["nested 10,000 deep", deep(10_000)],
    ["over 1 MiB", huge],
    ["data not an array", "{\"channel\":\"executions\",\"type\":\"update\",\"data\":\"x\"}"],
    ["unknown type", "{\"channel\":\"executions\",\"type\":\"weird\",\"data\":[]}"],
    ["order id an object", "{\"channel\":\"executions\",\"type\":\"update\",\"data\":[{\"order_id\":{},\"exec_type\":\"new\"}]}"],
    ["negative trade quantity", krakenTrade({ last_qty: -0.1 })],
    ["zero trade price", krakenTrade({ last_price: 0 })],
    ["exponent quantity", krakenTrade({ last_qty: "1e400" })],
    ["trade without an id", krakenTrade({ exec_id: null })],
    ["unknown message", "{\"hello\":\"world\"}"]
  ]
  it("Kraken: every hostile frame is malformed, none throws; a good trade still reads with its exact figures", () => {
    for (const [name, text] of krakenHostile) {
      const f = krakenFrame(text, 0)
      assert.strictEqual(f._tag, "Malformed", name)
    }
    const good = krakenFrame(krakenTrade({ last_qty: 0.10000000, last_price: 37500.1 }).replace("0.1,", "0.10000000,"), 0)
    assert.strictEqual(good._tag, "Executions")
    if (good._tag === "Executions") {
      assert.strictEqual(good.executions[0]!.fill?.quantity, "0.1")
      assert.strictEqual(good.executions[0]!.fill?.price, "37500.1")
      assert.strictEqual(good.executions[0]!.fill?.tradeId, "T1")
    }
    assert.strictEqual(krakenFrame("{\"channel\":\"heartbeat\"}", 0)._tag, "Heartbeat")
  })

  const coinbaseHostile: ReadonlyArray<readonly [string, string]> = [
    ["empty", ""],
    ["not JSON", "{\"channel\":"],
    ["null", "null"],
    ["an array", "[]"],
    ["nested 10,000 deep", deep(10_000)],
    ["over 1 MiB", huge.replace("executions", "user")],
    ["events not an array", "{\"channel\":\"user\",\"events\":{}}"],
    ["order without an id", "{\"channel\":\"user\",\"events\":[{\"type\":\"update\",\"orders\":[{\"status\":\"OPEN\",\"product_id\":\"BTC-USD\"}]}]}"],
    ["subscriptions not a record", "{\"channel\":\"subscriptions\",\"events\":[{\"subscriptions\":3}]}"],
    ["unknown channel", "{\"channel\":\"level2\",\"events\":[]}"]
  ]
  it("Coinbase: every hostile frame is malformed, none throws; an error frame is told apart; a good update reads", () => {
    for (const [name, text] of coinbaseHostile) {
      assert.strictEqual(coinbaseFrame(text)._tag, "Malformed", name)
    }
    assert.strictEqual(coinbaseFrame("{\"type\":\"error\",\"message\":\"authentication failure\"}")._tag, "Error")
    const good = coinbaseFrame(JSON.stringify({
      channel: "user",
      events: [{ type: "update", orders: [{ order_id: "o1", client_order_id: "c1", status: "OPEN", product_id: "BTC-USD", cumulative_quantity: "0.1", leaves_quantity: "0.4" }] }]
    }))
    assert.strictEqual(good._tag, "Orders")
  })
})
