/**
 * Binance request signing against the documentation's own examples.
 */
import { assert, describe, it } from "@effect/vitest"
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto"
import { Redacted } from "effect"
import { signatureFor, signEd25519, signHmac } from "../../src/execution/Binance.js"

describe("Binance signing", () => {
  // https://developers.binance.com/docs/binance-spot-api-docs/rest-api/request-security
  // "SIGNED Endpoint Examples for POST /api/v3/order - HMAC Keys", example 1 (all parameters in the query string)
  const apiKeyDoc = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
  const secretDoc = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
  const queryDoc = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"

  it("HMAC-SHA256: the documented query string gives the documented signature", () => {
    assert.strictEqual(signHmac(secretDoc, queryDoc), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert.strictEqual(
      signatureFor({ _tag: "hmac", secret: Redacted.make(secretDoc) }, queryDoc),
      "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    void apiKeyDoc
  })

  // The same page, "SIGNED Endpoint Example for POST /api/v3/order - Ed25519 Keys": the payload is the query
  // string as ASCII, the signature is Ed25519 over it, base64-encoded, then URL-encoded in the request. The page
  // does not publish its private key, so the primitive is checked against RFC 8032 section 7.1, TEST 1, and the
  // payload handling against the page's procedure (verify with the public key, as Binance does).
  const rfc8032Test1Pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n"

  it("Ed25519: RFC 8032 test 1 (empty message) gives the RFC's signature", () => {
    const sig = Buffer.from(signEd25519(rfc8032Test1Pem, ""), "base64").toString("hex")
    assert.strictEqual(
      sig,
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
  })

  it("Ed25519: the documented payload is signed as ASCII, base64, URL-encoded, and verifies with the public key", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519")
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString()
    const payload = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1.0000000&price=0.20&timestamp=1668481559918"
    const encoded = signatureFor({ _tag: "ed25519", privateKey: Redacted.make(pem) }, payload)
    assert.match(encoded, /^[A-Za-z0-9%]+$/, "URL-encoded: no raw +, / or =")
    const raw = Buffer.from(decodeURIComponent(encoded), "base64")
    assert.strictEqual(raw.length, 64)
    assert.isTrue(verify(null, Buffer.from(payload, "ascii"), createPublicKey(publicKey.export({ format: "pem", type: "spki" })), raw))
    assert.isFalse(verify(null, Buffer.from(`${payload}0`, "ascii"), publicKey, raw), "a changed payload does not verify")
  })
})
