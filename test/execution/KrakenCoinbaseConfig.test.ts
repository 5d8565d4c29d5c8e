/**
 * The Kraken and Coinbase sections of `live.venues`: what check-config lists
 * for them, and adapters made from them with credentials read by reference
 * (never a value in an error).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Redacted, Schema } from "effect"
import { NodeHttpClient, NodeSocket } from "@effect/platform-node"
import { generateKeyPairSync } from "node:crypto"
import { LiveVenueSection } from "../../schema/Config.js"
import { coinbaseFromConfig, coinbaseSectionProblems } from "../../src/execution/Coinbase.js"
import { krakenFromConfig, krakenLiveAdapter, krakenSectionProblems } from "../../src/execution/Kraken.js"
import { liveAdapterFactories, liveConfigIssues } from "../../src/execution/live/LiveExecution.js"
import { validate } from "../../src/Config.js"
import { parse } from "yaml"

const platform = Layer.mergeAll(NodeHttpClient.layerUndici, NodeSocket.layerWebSocketConstructor)
const section = (u: unknown) => Schema.decodeUnknownSync(LiveVenueSection)(u)

const gateway = (live: string) => {
  const r = validate(parse(`venues:
  - { type: kraken, symbols: [BTC-USD], wsUrl: "ws://127.0.0.1:1" }
  - { type: coinbase, symbols: [BTC-USD], wsUrl: "ws://127.0.0.1:1", restUrl: "http://127.0.0.1:1" }
merges: []
strategies: { bbo: { enabled: false }, orders: { enabled: false } }
live:
  venues:
${live}
`), "test")
  if (Either.isLeft(r)) throw new Error(r.left.message)
  return r.right
}

describe("Kraken and Coinbase live sections", () => {
  it("the live engine has both adapters; check-config lists their problems by path, Kraken's missing testnet too", () => {
    assert.isTrue(liveAdapterFactories.has("kraken") && liveAdapterFactories.has("coinbase"))
    const issues = liveConfigIssues(
      gateway(`    kraken: { mode: live, apiKey: { env: MELTICA_TEST_NOT_SET_1 } }
    coinbase: { mode: live, privateKey: { env: MELTICA_TEST_NOT_SET_2 } }`),
      {}
    ).map((i) => `${i.path}: ${i.message}`)
    assert.deepStrictEqual(issues, [
      "live.venues.kraken.apiKey: env MELTICA_TEST_NOT_SET_1: the environment variable is not set",
      "live.venues.kraken.secret: missing: secret ({ env: NAME } or { file: path })",
      "live.venues.kraken.testnet: Kraken has no spot testnet; set testnet: false to trade on the real venue (or restUrl/wsUrl to a test venue)",
      "live.venues.coinbase.apiKey: missing: apiKey ({ env: NAME } or { file: path })",
      "live.venues.coinbase.privateKey: env MELTICA_TEST_NOT_SET_2: the environment variable is not set"
    ])
    const clean = liveConfigIssues(
      gateway(`    kraken: { mode: live, testnet: false, apiKey: { env: K }, secret: { env: S } }`),
      { K: "k", S: "s" }
    )
    assert.deepStrictEqual(clean, [])
  })

  it("check-config problems: missing credentials by name; Kraken's testnet default refused (it has none)", () => {
    assert.deepStrictEqual(krakenSectionProblems(section({ mode: "live" })).map((p) => p.split(":")[0]), ["apiKey", "secret", "testnet"])
    assert.deepStrictEqual(
      krakenSectionProblems(section({ mode: "live", testnet: false, apiKey: { env: "K" }, secret: { env: "S" } })),
      []
    )
    assert.deepStrictEqual(coinbaseSectionProblems(section({ mode: "live" })).map((p) => p.split(":")[0]), ["apiKey", "privateKey"])
    assert.deepStrictEqual(coinbaseSectionProblems(section({ apiKey: { env: "K" }, privateKey: { file: "/x" } })), [])
  })

  it.effect("an adapter from a section reads its credentials from the environment; an unset variable is named, no value shown", () =>
    Effect.gen(function*() {
      process.env.MELTICA_TEST_KRAKEN_KEY = "kraken-key-value-123"
      process.env.MELTICA_TEST_KRAKEN_SECRET = Buffer.from("kraken-secret-value").toString("base64")
      const ok = yield* krakenFromConfig(
        "kraken",
        section({ mode: "live", testnet: false, apiKey: { env: "MELTICA_TEST_KRAKEN_KEY" }, secret: { env: "MELTICA_TEST_KRAKEN_SECRET" } }),
        ["BTC-USD"]
      )
      assert.strictEqual(ok.venue, "kraken")
      const missing = yield* Effect.either(krakenFromConfig(
        "kraken",
        section({ mode: "live", testnet: false, apiKey: { env: "MELTICA_TEST_KRAKEN_KEY" }, secret: { env: "MELTICA_TEST_UNSET_VARIABLE" } }),
        ["BTC-USD"]
      ))
      assert.isTrue(Either.isLeft(missing) && missing.left._tag === "SecretUnavailable")
      const text = Either.isLeft(missing) ? missing.left.message : ""
      assert.include(text, "MELTICA_TEST_UNSET_VARIABLE")
      assert.notInclude(text, "kraken-key-value-123")
      const testnet = yield* Effect.either(krakenFromConfig("kraken", section({ mode: "live", apiKey: { env: "A" }, secret: { env: "B" } }), ["BTC-USD"]))
      assert.isTrue(Either.isLeft(testnet) && testnet.left._tag === "KrakenConfigProblem" && testnet.left.reason.includes("no spot testnet"))
      // through the live engine's factory (credentials read already): the start fails with the same reason
      const viaFactory = krakenLiveAdapter(
        { name: "kraken", symbols: ["BTC-USD"], section: section({ mode: "live", apiKey: { env: "A" }, secret: { env: "B" } }) },
        { apiKey: Redacted.make("k"), secret: Redacted.make("c2VjcmV0") }
      )
      const start = yield* Effect.either(Effect.flatMap(viaFactory, (a) => a.syncClock))
      assert.isTrue(Either.isLeft(start) && start.left._tag === "VenueFailure" && start.left.text.includes("no spot testnet"))
      delete process.env.MELTICA_TEST_KRAKEN_KEY
      delete process.env.MELTICA_TEST_KRAKEN_SECRET
    }).pipe(Effect.provide(platform)))

  it.effect("Coinbase: a PEM in the environment makes an adapter; a broken one is a typed error that does not quote it", () =>
    Effect.gen(function*() {
      const pem = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ format: "pem", type: "sec1" }).toString()
      process.env.MELTICA_TEST_CB_NAME = "organizations/o/apiKeys/k"
      process.env.MELTICA_TEST_CB_PEM = pem
      const ok = yield* coinbaseFromConfig(
        "coinbase",
        section({ mode: "live", apiKey: { env: "MELTICA_TEST_CB_NAME" }, privateKey: { env: "MELTICA_TEST_CB_PEM" } }),
        ["BTC-USD"]
      )
      assert.strictEqual(ok.venue, "coinbase")
      process.env.MELTICA_TEST_CB_PEM = "-----BEGIN EC PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END EC PRIVATE KEY-----"
      const bad = yield* Effect.either(coinbaseFromConfig(
        "coinbase",
        section({ mode: "live", apiKey: { env: "MELTICA_TEST_CB_NAME" }, privateKey: { env: "MELTICA_TEST_CB_PEM" } }),
        ["BTC-USD"]
      ))
      // the adapter is made; its start (the clock check) fails with the reason, typed, without the key
      assert.isTrue(Either.isRight(bad))
      if (Either.isRight(bad)) {
        const start = yield* Effect.either(bad.right.syncClock)
        assert.isTrue(Either.isLeft(start) && start.left._tag === "AuthenticationFailed" && start.left.code === "invalid_private_key")
        assert.notInclude(Either.isLeft(start) ? start.left.message : "", "TOPSECRETMATERIAL")
      }
      delete process.env.MELTICA_TEST_CB_NAME
      delete process.env.MELTICA_TEST_CB_PEM
    }).pipe(Effect.provide(platform)))
})
