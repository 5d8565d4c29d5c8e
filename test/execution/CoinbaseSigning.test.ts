/**
 * Coinbase Advanced Trade authentication with CDP API keys, as documented:
 * https://docs.cdp.coinbase.com/coinbase-app/authentication-authorization/api-key-authentication
 * and https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-auth (an ES256 JWT per request:
 * header alg ES256, kid = key name, a random nonce, typ JWT; claims iss "cdp", sub = key name,
 * nbf = now, exp = now + 120, uri = "METHOD host/path"; the WebSocket JWT has no uri).
 *
 * ECDSA signatures are randomized, so the documentation gives no fixed token:
 * the test checks the token's structure against the documented fields and
 * verifies its signature with the public key of the pair (Node's verifier, the
 * way the mock venue does).
 */
import { assert, describe, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import { generateKeyPairSync } from "node:crypto"
import {
  coinbaseJwt,
  coinbaseSigningKey,
  createOrderBody,
  verifyCoinbaseJwt
} from "../../src/execution/Coinbase.js"

const pair = () => generateKeyPairSync("ec", { namedCurve: "prime256v1" })
const KEY_NAME = "organizations/0b6f2a6e-0000-4000-8000-000000000000/apiKeys/11111111-2222-3333-4444-555555555555"

const parts = (jwt: string) => {
  const [h, c] = jwt.split(".")
  return {
    header: JSON.parse(Buffer.from(h!, "base64url").toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c!, "base64url").toString()) as Record<string, unknown>
  }
}

describe("Coinbase ES256 JWT", () => {
  it("carries the documented header and claims for a REST request and verifies with the public key", () => {
    const { privateKey, publicKey } = pair()
    const pem = privateKey.export({ format: "pem", type: "sec1" }).toString()
    const key = Either.getOrThrow(coinbaseSigningKey(Redacted.make(pem)))
    const jwt = coinbaseJwt(Redacted.make(KEY_NAME), key, 1_700_000_000, {
      method: "POST",
      host: "api.coinbase.com",
      path: "/api/v3/brokerage/orders"
    })
    const { claims, header } = parts(jwt)
    assert.strictEqual(header.alg, "ES256")
    assert.strictEqual(header.typ, "JWT")
    assert.strictEqual(header.kid, KEY_NAME)
    assert.match(String(header.nonce), /^[0-9a-f]{32}$/)
    assert.deepStrictEqual(claims, {
      iss: "cdp",
      sub: KEY_NAME,
      nbf: 1_700_000_000,
      exp: 1_700_000_120,
      uri: "POST api.coinbase.com/api/v3/brokerage/orders"
    })
    const verified = verifyCoinbaseJwt(jwt, publicKey)
    assert.isTrue(Either.isRight(verified))
  })

  it("a WebSocket JWT has no uri claim; every token has a fresh nonce", () => {
    const { privateKey, publicKey } = pair()
    const key = Either.getOrThrow(coinbaseSigningKey(Redacted.make(privateKey.export({ format: "pem", type: "sec1" }).toString())))
    const a = coinbaseJwt(Redacted.make(KEY_NAME), key, 1_700_000_000)
    const b = coinbaseJwt(Redacted.make(KEY_NAME), key, 1_700_000_000)
    assert.isUndefined(parts(a).claims.uri)
    assert.notStrictEqual(parts(a).header.nonce, parts(b).header.nonce)
    assert.isTrue(Either.isRight(verifyCoinbaseJwt(a, publicKey)))
  })

  it("a tampered claim, another key or a DER signature fails verification", () => {
    const { privateKey, publicKey } = pair()
    const other = pair()
    const key = Either.getOrThrow(coinbaseSigningKey(Redacted.make(privateKey.export({ format: "pem", type: "pkcs8" }).toString())))
    const jwt = coinbaseJwt(Redacted.make(KEY_NAME), key, 1_700_000_000, { method: "GET", host: "api.coinbase.com", path: "/x" })
    const [h, c, s] = jwt.split(".") as [string, string, string]
    const forged = Buffer.from(Buffer.from(c, "base64url").toString().replace("/x", "/y")).toString("base64url")
    assert.strictEqual(Either.getLeft(verifyCoinbaseJwt(`${h}.${forged}.${s}`, publicKey))._tag, "Some")
    assert.isTrue(Either.isLeft(verifyCoinbaseJwt(jwt, other.publicKey)))
    assert.isTrue(Either.isLeft(verifyCoinbaseJwt(`${h}.${c}`, publicKey)))
  })

  it("a PEM with \\n escapes (as env vars carry it) is accepted; a non-EC or broken key is a typed error without the key", () => {
    const { privateKey } = pair()
    const escaped = privateKey.export({ format: "pem", type: "sec1" }).toString().replace(/\n/g, "\\n")
    assert.isTrue(Either.isRight(coinbaseSigningKey(Redacted.make(escaped))))
    const broken = "-----BEGIN EC PRIVATE KEY-----\nSECRETSECRET\n-----END EC PRIVATE KEY-----"
    const e = coinbaseSigningKey(Redacted.make(broken))
    assert.isTrue(Either.isLeft(e))
    assert.notInclude(Either.isLeft(e) ? e.left.message : "", "SECRETSECRET")
    const ed = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString()
    assert.isTrue(Either.isLeft(coinbaseSigningKey(Redacted.make(ed))))
  })

  it("orders carry client_order_id and the documented order_configuration per time in force", () => {
    const base = { clientOrderId: "c-1", product: "BTC-USD", side: "buy" as const, quantity: "0.01" }
    assert.deepStrictEqual(createOrderBody({ ...base, type: "market" }).order_configuration, { market_market_ioc: { base_size: "0.01" } })
    assert.deepStrictEqual(createOrderBody({ ...base, type: "limit", price: "100", postOnly: true }), {
      client_order_id: "c-1",
      product_id: "BTC-USD",
      side: "BUY",
      order_configuration: { limit_limit_gtc: { base_size: "0.01", limit_price: "100", post_only: true } }
    })
    assert.deepStrictEqual(createOrderBody({ ...base, type: "limit", price: "100", timeInForce: "IOC" }).order_configuration, {
      sor_limit_ioc: { base_size: "0.01", limit_price: "100" }
    })
    assert.deepStrictEqual(createOrderBody({ ...base, type: "limit", price: "100", timeInForce: "FOK" }).order_configuration, {
      limit_limit_fok: { base_size: "0.01", limit_price: "100" }
    })
  })
})
