/**
 * The live venues' shared parts: secrets by reference, the rate limiter, the venue clock.
 */
import { assert, describe, it } from "@effect/vitest"
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Fiber, Redacted, TestClock } from "effect"
import { makeVenueClock } from "../../../src/execution/live/ClockSkew.js"
import { makeRateLimiter } from "../../../src/execution/live/RateLimiter.js"
import { readSecret, secretProblem } from "../../../src/execution/live/Secrets.js"

const SECRET = "s3cr3t-value-that-must-never-print"

describe("Secrets", () => {
  const dir = mkdtempSync(join(tmpdir(), "meltica-secrets-"))

  it.effect("an environment variable: read, and printed as <redacted>", () =>
    Effect.gen(function*() {
      const v = yield* readSecret("binance", "secret", { env: "TEST_SECRET" }, { TEST_SECRET: SECRET })
      assert.strictEqual(Redacted.value(v), SECRET)
      assert.notInclude(String(v), SECRET)
      assert.notInclude(JSON.stringify({ v }), SECRET)
    }))

  it.effect("an owner-only file is read (trailing newline trimmed); a file others may read is refused", () =>
    Effect.gen(function*() {
      const ok = join(dir, "ok.secret")
      writeFileSync(ok, `${SECRET}\n`)
      chmodSync(ok, 0o600)
      assert.strictEqual(Redacted.value(yield* readSecret("okx", "secret", { file: ok })), SECRET)
      const table: ReadonlyArray<readonly [number, string]> = [[0o644, "0644"], [0o640, "0640"], [0o604, "0604"], [0o660, "0660"]]
      for (const [mode, shown] of table) {
        const f = join(dir, `open-${shown}.secret`)
        writeFileSync(f, SECRET)
        chmodSync(f, mode)
        const r = yield* Effect.either(readSecret("okx", "secret", { file: f }))
        assert.isTrue(Either.isLeft(r), shown)
        if (Either.isLeft(r)) {
          assert.include(r.left.message, shown)
          assert.notInclude(r.left.message, SECRET)
        }
      }
    }))

  it.effect("missing ones name the reference, never a value", () =>
    Effect.gen(function*() {
      const r = yield* Effect.either(readSecret("binance", "apiKey", { env: "NOPE_NOT_SET" }, {}))
      assert.isTrue(Either.isLeft(r) && r.left.message.includes("env NOPE_NOT_SET"))
      assert.strictEqual(secretProblem({ file: join(dir, "absent") }), "cannot read it: ENOENT")
      assert.strictEqual(secretProblem({ env: "EMPTY" }, { EMPTY: "" }), "the environment variable is not set")
    }))
})

describe("RateLimiter", () => {
  it.effect("a bucket full for its window holds the next request until the window turns", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const limiter = makeRateLimiter({ buckets: [{ name: "ORDERS", limit: 3, intervalMs: 10_000 }] }, clock)
      for (let i = 0; i < 3; i++) yield* limiter.acquire({ ORDERS: 1 })
      const next = yield* Effect.fork(limiter.acquire({ ORDERS: 1 }))
      yield* TestClock.adjust("9999 millis")
      assert.isNull(next.unsafePoll())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(next)
      assert.deepStrictEqual(limiter.snapshot(), [{ bucket: "ORDERS", used: 1, limit: 3 }])
      assert.strictEqual(limiter.stats().delayed, 1)
    }))

  it.effect("the venue's usage header raises the count; a 429 imposes its Retry-After, a 418 its ban", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const limiter = makeRateLimiter({ buckets: [{ name: "W", limit: 100, intervalMs: 60_000 }] }, clock)
      limiter.observeUsage("W", 100)
      const held = yield* Effect.fork(limiter.acquire({ W: 1 }))
      yield* TestClock.adjust("59 seconds")
      assert.isNull(held.unsafePoll())
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(held)
      assert.strictEqual(limiter.rateLimited(429, 5_000), 5_000)
      const cooled = yield* Effect.fork(limiter.acquire({ W: 1 }))
      yield* TestClock.adjust("4999 millis")
      assert.isNull(cooled.unsafePoll())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(cooled)
      assert.strictEqual(limiter.rateLimited(418, undefined), 120_000)
      assert.deepStrictEqual(limiter.stats(), { delayed: 2, rateLimited: 1, banned: 1 })
    }))
})

describe("VenueClock", () => {
  it.effect("measures the skew at the request's midpoint and corrects timestamps; past the window a typed error", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      yield* TestClock.adjust("1000000 millis")
      const vc = makeVenueClock("binance", 5_000, clock)
      // the server answers 200 ms later, its clock 1,500 ms ahead of ours at the midpoint
      const server = Effect.zipRight(TestClock.adjust("200 millis"), Effect.sync(() => clock.unsafeCurrentTimeMillis() - 100 + 1_500))
      assert.strictEqual(yield* vc.sync(server), 1_500)
      assert.strictEqual(vc.now(), clock.unsafeCurrentTimeMillis() + 1_500)
      const far = Effect.sync(() => clock.unsafeCurrentTimeMillis() - 6_000)
      const r = yield* Effect.either(vc.sync(far))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "ClockSkewTooLarge" && r.left.skewMs === -6_000 && r.left.recvWindowMs === 5_000)
      assert.strictEqual(vc.skewMs(), 1_500, "the last good measure is kept")
    }))
})
