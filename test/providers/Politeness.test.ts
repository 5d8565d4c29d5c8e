/**
 * Venue politeness on virtual time: the Binance adapter against an in-memory
 * imitation of the venue (a WebSocket that answers SUBSCRIBE with a depth
 * diff, and a REST endpoint scripted per request), run under the TestClock.
 * Whatever goes wrong, the number of requests in a given virtual time is
 * bounded by the backoff and the request budget, and a venue's "too many
 * requests" (429/418 with Retry-After, or a rate-limit body) is waited out.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, TestClock } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { WebSocketConstructor } from "@effect/platform/Socket"
import { BinanceConfig, RequestBudget } from "../../schema/ProviderConfig.js"
import { isRateLimitBody, makeRequestBudget, retryAfterMs } from "../../src/providers/internal/connection.js"
import { baseLayer, isConsistent, runProvider, stopProvider } from "./helpers.js"

interface Answer {
  readonly status: number
  readonly body: string
  readonly headers?: Record<string, string>
}

/** An in-memory venue: REST answers scripted per request (1, 2, ...), request times on the Clock, WebSocket sessions. */
const imitation = (answer: (n: number) => Answer, onOpen: (socket: FakeSocket) => void) => {
  const requests: Array<number> = []
  let connections = 0
  const http = HttpClient.make((request) =>
    Effect.clockWith((clock) => {
      requests.push(clock.unsafeCurrentTimeMillis())
      const a = answer(requests.length)
      return Effect.succeed(HttpClientResponse.fromWeb(request, new Response(a.body, { status: a.status, headers: a.headers ?? {} })))
    })
  )
  class FakeSocket extends EventTarget {
    readyState = 1
    binaryType = "blob"
    constructor() {
      super()
      connections++
    }
    send(data: string): void {
      if (data.includes("SUBSCRIBE")) queueMicrotask(() => onOpen(this))
    }
    deliver(text: string): void {
      if (this.readyState === 1) this.dispatchEvent(new MessageEvent("message", { data: text }))
    }
    close(code = 1000): void {
      if (this.readyState === 3) return
      this.readyState = 3
      this.dispatchEvent(Object.assign(new Event("close"), { code, reason: "" }))
    }
  }
  const layer = Layer.mergeAll(
    baseLayer,
    Layer.succeed(HttpClient.HttpClient, http),
    Layer.succeed(WebSocketConstructor, () => new FakeSocket() as unknown as globalThis.WebSocket)
  )
  return { requests, connections: () => connections, layer }
}

type FakeSocket = { deliver: (text: string) => void; close: (code?: number) => void }

const diff = JSON.stringify({
  stream: "bnbbtc@depth@100ms",
  data: { e: "depthUpdate", E: 1, s: "BNBBTC", U: 100, u: 100, b: [["0.0024", "1"]], a: [["0.0026", "1"]] }
})
const snapshot = (lastUpdateId: number) =>
  JSON.stringify({ lastUpdateId, bids: [["0.0024", "2"]], asks: [["0.0026", "3"]] })

const config = (budget?: Partial<RequestBudget>) =>
  BinanceConfig.make({
    symbols: ["BNB-BTC"],
    wsUrl: "ws://imitation.invalid",
    restUrl: "http://imitation.invalid",
    snapshotIntervalMs: 3_600_000,
    stallTimeoutMs: 3_600_000,
    ...(budget === undefined ? {} : { requestBudget: RequestBudget.make(budget) })
  })

/** Moves virtual time forward in small steps, letting in-memory I/O settle at each. */
const advance = (ms: number, step = 100) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += step) {
      yield* TestClock.adjust(Duration.millis(step))
      for (let i = 0; i < 3; i++) yield* Effect.promise(() => new Promise<void>((r) => setImmediate(r)))
    }
  })

describe("venue politeness", () => {
  const refetchCases: ReadonlyArray<readonly [string, Answer]> = [
    ["the snapshot is older than the first buffered diff", { status: 200, body: snapshot(50) }],
    ["the snapshot body does not decode", { status: 200, body: "{\"lastUpdateId\":\"x\"}" }],
    ["the snapshot endpoint answers 500", { status: 500, body: "oops" }]
  ]
  for (const [name, answer] of refetchCases) {
    it.scoped(`Binance: when ${name}, refetches back off (at most 7 requests in 25 virtual seconds, spaced ever wider)`, () =>
      Effect.gen(function*() {
        const venue = imitation(() => answer, (ws) => ws.deliver(diff))
        const run = yield* runProvider(config()).pipe(Effect.provide(venue.layer))
        yield* advance(25_000)
        const n = venue.requests.length
        assert.isAtLeast(n, 4, "it keeps trying")
        assert.isAtMost(n, 7, `requests at ${venue.requests.join(", ")}`)
        // each wait at least the jittered exponential delay: 0.5 s, 1 s, 2 s, ... (jitter ±20%)
        for (let i = 1; i < n; i++) {
          assert.isAtLeast(venue.requests[i] - venue.requests[i - 1], 0.8 * 500 * 2 ** (i - 1) - 1, `wait before request ${i + 1}`)
        }
        yield* stopProvider(run).pipe(Effect.provide(venue.layer))
      }))
  }

  it.scoped("Binance: a 429 with Retry-After is waited out before any further request, then the book syncs", () =>
    Effect.gen(function*() {
      const venue = imitation(
        (n) => n === 1 ? { status: 429, body: "{\"code\":-1003,\"msg\":\"Too many requests.\"}", headers: { "retry-after": "7" } } : { status: 200, body: snapshot(100) },
        (ws) => ws.deliver(diff)
      )
      const run = yield* runProvider(config()).pipe(Effect.provide(venue.layer))
      yield* advance(6_900)
      assert.deepStrictEqual(venue.requests, [0])
      yield* advance(600)
      assert.strictEqual(venue.requests.length, 2)
      assert.isAtLeast(venue.requests[1], 7_000)
      yield* run.rec.waitFor(isConsistent)
      assert.deepStrictEqual([run.provider.stats().rateLimited, run.provider.stats().snapshotFailures], [1, 1])
      yield* stopProvider(run).pipe(Effect.provide(venue.layer))
    }))

  it.scoped("Binance: a rate-limit body without Retry-After (HTTP 200 or 418) stops requests for rateLimitedMs", () =>
    Effect.gen(function*() {
      const venue = imitation(
        (n) =>
          n === 1
            ? { status: 200, body: "{\"code\":-1003,\"msg\":\"Way too much request weight used; IP banned until 1.\"}" }
            : n === 2
            ? { status: 418, body: "{}" }
            : { status: 200, body: snapshot(100) },
        (ws) => ws.deliver(diff)
      )
      const run = yield* runProvider(config({ rateLimitedMs: 20_000 })).pipe(Effect.provide(venue.layer))
      yield* advance(19_900, 100)
      assert.deepStrictEqual(venue.requests, [0])
      yield* advance(600, 100)
      assert.strictEqual(venue.requests.length, 2)
      assert.isAtLeast(venue.requests[1], 20_000)
      // the 418 (no Retry-After) holds everything for another 20 s
      yield* advance(19_300, 100)
      assert.strictEqual(venue.requests.length, 2)
      yield* advance(1_000, 100)
      assert.strictEqual(venue.requests.length, 3)
      assert.isAtLeast(venue.requests[2], venue.requests[1] + 20_000)
      yield* run.rec.waitFor(isConsistent)
      assert.strictEqual(run.provider.stats().rateLimited, 2)
      yield* stopProvider(run).pipe(Effect.provide(venue.layer))
    }))

  it.scoped("a venue that accepts connections and drops them at once is reconnected ever more slowly (at most 9 connections in 60 virtual seconds)", () =>
    Effect.gen(function*() {
      const venue = imitation(() => ({ status: 200, body: snapshot(100) }), (ws) => ws.close(1011))
      const run = yield* runProvider(config()).pipe(Effect.provide(venue.layer))
      yield* advance(60_000, 100)
      assert.isAtLeast(venue.connections(), 5)
      assert.isAtMost(venue.connections(), 9)
      yield* stopProvider(run).pipe(Effect.provide(venue.layer))
    }))

  it.effect("the request budget: a burst, then one request per refill interval, in order; a cool-down holds everything", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const budget = makeRequestBudget(RequestBudget.make({ burst: 3, perMinute: 60 }), clock)
      const times: Array<number> = []
      const fiber = yield* Effect.forEach(Array.from({ length: 6 }), () =>
        budget.take.pipe(Effect.zipRight(Effect.sync(() => times.push(clock.unsafeCurrentTimeMillis())))), { discard: true }).pipe(Effect.fork)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(times, [0, 0, 0, 1_000, 2_000, 3_000])
      // 10 s on: the bucket is full again, but a cool-down of 5 s holds the next request
      budget.coolDown(5_000)
      const next = yield* budget.take.pipe(Effect.zipRight(Effect.sync(() => clock.unsafeCurrentTimeMillis())), Effect.fork)
      yield* TestClock.adjust(Duration.millis(4_999))
      assert.isNull(yield* Fiber.poll(next).pipe(Effect.map((o) => o._tag === "None" ? null : o)))
      yield* TestClock.adjust(Duration.millis(1))
      assert.strictEqual(yield* Fiber.join(next), 15_000)
    }))

  it("recognises rate limits: Retry-After in seconds or as a date; venue codes and wording", () => {
    assert.strictEqual(retryAfterMs("7", 0), 7_000)
    assert.strictEqual(retryAfterMs(" 120 ", 0), 120_000)
    assert.strictEqual(retryAfterMs("Wed, 21 Oct 2015 07:28:30 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")), 30_000)
    assert.isUndefined(retryAfterMs("soon", 0))
    assert.isUndefined(retryAfterMs(undefined, 0))
    const table: ReadonlyArray<readonly [string, boolean]> = [
      ["{\"code\":-1003,\"msg\":\"Too many requests.\"}", true],
      ["{\"code\":-1015,\"msg\":\"Too many new orders.\"}", true],
      ["{\"code\":\"50011\",\"msg\":\"Rate limit reached. Please refer to API documentation and throttle requests accordingly.\"}", true],
      ["{\"error\":[\"EAPI:Rate limit exceeded\"]}", true],
      ["{\"message\":\"Too Many Requests\"}", true],
      ["Too Many Requests", true],
      [snapshot(1), false],
      ["{\"code\":-1121,\"msg\":\"Invalid symbol.\"}", false],
      ["{\"code\":\"0\",\"msg\":\"\",\"data\":[]}", false],
      ["x".repeat(5_000) + "rate limit", false]
    ]
    for (const [body, expected] of table) assert.strictEqual(isRateLimitBody(body), expected, body.slice(0, 60))
  })
})
