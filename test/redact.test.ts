import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { redactUrls } from "../src/internal/redact.js"
import { NatsConfig, NatsConnection } from "../src/nats/Connection.js"

describe("credentials never shown", () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["nats://alice:s3cret@127.0.0.1:4222", "nats://***@127.0.0.1:4222"],
    ["wss://token@stream.example:9443/ws", "wss://***@stream.example:9443/ws"],
    ["tls://u:p@a:1,nats://v:q@b:2", "tls://***@a:1,nats://***@b:2"],
    ["connect to \"nats://x:y@h\" failed", "connect to \"nats://***@h\" failed"],
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
    ["no url here: user:pass", "no url here: user:pass"]
  ]
  for (const [input, shown] of cases) {
    it(`redactUrls(${JSON.stringify(input)})`, () => assert.strictEqual(redactUrls(input), shown))
  }

  it.scoped("a NATS connection that fails names its servers without their credentials", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(
        NatsConnection.Default.pipe(
          Layer.provide(NatsConfig.layer({ servers: ["nats://alice:s3cret@127.0.0.1:1"], requestTimeoutMs: 500 }))
        )
      ))
      assert.strictEqual(error._tag, "NatsConnectFailed")
      const shown = JSON.stringify(error) + String(error)
      assert.isFalse(shown.includes("s3cret"), shown)
      assert.isTrue(shown.includes("***@127.0.0.1:1"), shown)
    }))
})
