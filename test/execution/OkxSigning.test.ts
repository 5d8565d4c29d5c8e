/**
 * OKX request signing against the documentation's example inputs.
 */
import { assert, describe, it } from "@effect/vitest"
import { createHmac } from "node:crypto"
import { signOkx, signOkxLogin } from "../../src/execution/Okx.js"

describe("OKX signing", () => {
  // https://www.okx.com/docs-v5/en/#overview-rest-authentication-signature
  // "sign=CryptoJS.enc.Base64.stringify(CryptoJS.HmacSHA256(timestamp + 'GET' + '/api/v5/account/balance?ccy=BTC', SecretKey))",
  // with the page's example timestamp 2020-12-08T09:08:57.715Z, SecretKey 22582BD0CFF14C41EDBF1AB98506286D and
  // example body {"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}. The page gives no resulting signature: the
  // expected values below were computed independently (openssl dgst -sha256 -hmac ... -binary | base64).
  const secret = "22582BD0CFF14C41EDBF1AB98506286D"
  const ts = "2020-12-08T09:08:57.715Z"

  it("a GET: timestamp + method + requestPath (with its query), no body", () => {
    assert.strictEqual(signOkx(secret, ts, "GET", "/api/v5/account/balance?ccy=BTC", ""), "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=")
  })

  it("a POST: the body as sent is part of the prehash; the method is upper case", () => {
    const body = '{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"2.15","sz":"2"}'
    assert.strictEqual(signOkx(secret, ts, "POST", "/api/v5/trade/order", body), "iwrdSpN7pm4G4u8+fswZUyH6mOM48+sBF6WvKpj4Dvk=")
    assert.strictEqual(signOkx(secret, ts, "post", "/api/v5/trade/order", body), signOkx(secret, ts, "POST", "/api/v5/trade/order", body))
    assert.notStrictEqual(signOkx(secret, ts, "POST", "/api/v5/trade/order", `${body} `), signOkx(secret, ts, "POST", "/api/v5/trade/order", body))
  })

  // https://www.okx.com/docs-v5/en/#overview-websocket-login: sign = base64(HMAC-SHA256(timestamp + 'GET' + '/users/self/verify'))
  // with the timestamp in seconds (the page's example: 1538054050).
  it("the WebSocket login: timestamp in seconds + GET + /users/self/verify", () => {
    const expected = createHmac("sha256", secret).update("1538054050GET/users/self/verify").digest("base64")
    assert.strictEqual(signOkxLogin(secret, "1538054050"), expected)
  })
})
