/**
 * Kraken REST signing against the example in Kraken's own documentation:
 * https://docs.kraken.com/api/docs/guides/spot-rest-auth ("Examples": a limit
 * order buying 1.25 XBTUSD at 37,500, its private key, nonce, encoded payload,
 * URI path and the API-Sign it must produce).
 */
import { assert, describe, it } from "@effect/vitest"
import { Redacted } from "effect"
import {
  addOrderParams,
  formBody,
  krakenRestPair,
  krakenSign,
  makeNonces,
  parseKrakenError,
  wsAddOrder,
  wsAmendOrder
} from "../../src/execution/Kraken.js"

const DOC = {
  privateKey: "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
  nonce: "1616492376594",
  payload: "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
  path: "/0/private/AddOrder",
  apiSign: "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
}

describe("Kraken signing", () => {
  it("produces the documented API-Sign for the documented example", () => {
    assert.strictEqual(krakenSign(DOC.path, DOC.nonce, DOC.payload, Redacted.make(DOC.privateKey)), DOC.apiSign)
  })

  it("a change of path, nonce or body changes the signature", () => {
    const secret = Redacted.make(DOC.privateKey)
    assert.notStrictEqual(krakenSign("/0/private/CancelOrder", DOC.nonce, DOC.payload, secret), DOC.apiSign)
    assert.notStrictEqual(krakenSign(DOC.path, "1616492376595", DOC.payload, secret), DOC.apiSign)
    assert.notStrictEqual(krakenSign(DOC.path, DOC.nonce, DOC.payload.replace("1.25", "1.26"), secret), DOC.apiSign)
  })

  it("the form body of the documented order, written by our encoder, signs to the documented value", () => {
    const body = formBody([["nonce", DOC.nonce], ["ordertype", "limit"], ["pair", "XBTUSD"], ["price", "37500"], ["type", "buy"], [
      "volume",
      "1.25"
    ]])
    assert.strictEqual(body, DOC.payload)
    assert.strictEqual(krakenSign(DOC.path, DOC.nonce, body, Redacted.make(DOC.privateKey)), DOC.apiSign)
  })

  it("nonces strictly increase, also when the clock stands still or steps back", () => {
    let now = 1_700_000_000_000
    const next = makeNonces(() => now)
    const a = BigInt(next())
    const b = BigInt(next())
    now -= 5_000
    const c = BigInt(next())
    now += 60_000
    const d = BigInt(next())
    assert.isTrue(a < b && b < c && c < d)
    assert.strictEqual(a, 1_700_000_000_000_000n)
  })

  it("an order's parameters carry our clientOrderId in cl_ord_id, post-only in oflags, IOC in timeinforce", () => {
    const params = addOrderParams({
      clientOrderId: "c-1",
      pair: krakenRestPair("BTC/USD"),
      side: "buy",
      type: "limit",
      quantity: "1.25",
      price: "37500",
      timeInForce: "IOC",
      postOnly: true
    })
    assert.deepStrictEqual(params, [
      ["ordertype", "limit"],
      ["type", "buy"],
      ["volume", "1.25"],
      ["pair", "XBTUSD"],
      ["price", "37500"],
      ["timeinforce", "IOC"],
      ["oflags", "post"],
      ["cl_ord_id", "c-1"]
    ])
  })

  it("error strings split into category and text", () => {
    assert.deepInclude(parseKrakenError("EOrder:Insufficient funds"), { category: "Order", text: "Insufficient funds" })
    assert.deepInclude(parseKrakenError("EAPI:Invalid nonce"), { category: "API", text: "Invalid nonce" })
    assert.deepInclude(parseKrakenError("garbage"), { category: "General", text: "garbage" })
  })

  it("WebSocket order messages carry quantities and prices with every digit (JSON numbers, not rounded doubles)", () => {
    const add = wsAddOrder({
      clientOrderId: "c-1",
      symbol: "BTC/USD",
      side: "buy",
      type: "limit",
      quantity: "0.123456789012345678",
      price: "37500.1",
      postOnly: true
    }, "TOKEN", 7)
    assert.include(add, "\"order_qty\":0.123456789012345678")
    assert.include(add, "\"limit_price\":37500.1")
    assert.deepInclude(JSON.parse(add), { method: "add_order", req_id: 7 })
    assert.deepInclude(JSON.parse(add).params, { cl_ord_id: "c-1", token: "TOKEN", post_only: true, symbol: "BTC/USD" })
    const amend = wsAmendOrder({ clientOrderId: "c-1", quantity: "12345678901234.000000000000000001" }, "TOKEN", 8)
    assert.include(amend, "\"order_qty\":12345678901234.000000000000000001")
  })
})
