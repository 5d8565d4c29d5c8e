/**
 * Readiness that tells the truth: a strategy process is ready only while a
 * live feed carries each symbol it listens to (heartbeats over a real
 * nats-server), and a feed only while its Control Plane makes progress
 * (TestClock).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Schedule, Scope, TestClock } from "effect"
import { ReadinessChecks } from "../../src/Status.js"
import { NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import {
  ControlProgress,
  type FeedSeen,
  feedReasons,
  FeedMonitor,
  HeartbeatConfig,
  publishHeartbeats
} from "../../src/nats/Heartbeat.js"
import { NatsConsumers } from "../../src/nats/NatsConsumers.js"
import type { ProviderShape } from "../../src/Provider.js"
import { natsServer } from "./support/server.js"
import { layerFeedHeartbeats, layerNatsFeed, layerNatsStrategy } from "../../layers/Nats.js"
import { Providers } from "../../src/Provider.js"
import { runAndCountLeftFibers } from "../support/leaks.js"

const progressLayer = ControlProgress.Default.pipe(Layer.provide(HeartbeatConfig.layer({ stallAfterMs: 10_000 })))

describe("Control Plane progress", () => {
  it.scoped("a command in progress past the stall bound, none finished meanwhile, makes the feed not ready", () =>
    Effect.gen(function*() {
      const progress = yield* ControlProgress
      yield* progress.track(Effect.void)
      assert.deepStrictEqual(progress.reasons(), [])
      const stuck = yield* Effect.fork(progress.track(Effect.never))
      yield* TestClock.adjust("9 seconds")
      assert.deepStrictEqual(progress.reasons(), [], "not yet past the bound")
      assert.strictEqual(progress.stats().inFlight, 1)
      yield* TestClock.adjust("2 seconds")
      const reasons = progress.reasons()
      assert.strictEqual(reasons.length, 1)
      assert.include(reasons[0]!, "none handled for 11 s")
      assert.isTrue(progress.stats().stalled)
      yield* Fiber.interrupt(stuck)
      assert.deepStrictEqual(progress.reasons(), [], "ready again once the command ended")
      assert.deepStrictEqual(
        { ...progress.stats(), oldestInFlightMs: 0 },
        { started: 2, completed: 2, inFlight: 0, oldestInFlightMs: 0, pending: 0, stalled: false }
      )
    }).pipe(Effect.provide(progressLayer)))

  it.scoped("commands that keep finishing are progress, however long each waits in line", () =>
    Effect.gen(function*() {
      const progress = yield* ControlProgress
      const slow = yield* Effect.fork(progress.track(Effect.sleep("60 seconds")))
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("5 seconds")
        yield* progress.track(Effect.void)
        assert.deepStrictEqual(progress.reasons(), [], `after ${(i + 1) * 5} s`)
      }
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(progress.reasons().length, 1, "nothing finished for 11 s")
      yield* Fiber.interrupt(slow)
    }).pipe(Effect.provide(progressLayer)))
})

describe("Control Plane backlog", () => {
  it.scoped("commands waiting in JetStream with none handled past the stall bound make the feed not ready", () =>
    Effect.gen(function*() {
      const progress = yield* ControlProgress
      yield* TestClock.adjust("60 seconds") // idle: nothing waits, nothing to finish
      assert.deepStrictEqual(progress.reasons(), [])
      progress.notePending(3) // commands arrive: the bound counts from now, not from the last command an hour ago
      assert.deepStrictEqual(progress.reasons(), [])
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(progress.reasons(), [], "at the bound")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(progress.reasons(), ["control plane: 3 command(s) waiting in JetStream, none handled for 11 s"])
      assert.isTrue(progress.stats().stalled)
      yield* progress.track(Effect.void) // the Control Plane takes one
      assert.deepStrictEqual(progress.reasons(), [])
      progress.notePending(0)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(progress.reasons(), [], "nothing waiting")
    }).pipe(Effect.provide(progressLayer)))
})

describe("feed liveness", () => {
  const seen = (provider: string, at: number, connected = true): FeedSeen => ({
    provider,
    epoch: "e1",
    symbols: new Set(["BTC-USDT"]),
    connected,
    at
  })
  it("each symbol needs a connected feed heard within the bound", () => {
    const table: ReadonlyArray<readonly [string, ReadonlyMap<string, FeedSeen>, number, string | undefined]> = [
      ["nothing heard", new Map(), 0, "no heartbeat heard"],
      ["fresh", new Map([["sim-a", seen("sim-a", 1_000)]]), 5_000, undefined],
      ["at the bound", new Map([["sim-a", seen("sim-a", 1_000)]]), 6_000, undefined],
      ["past the bound", new Map([["sim-a", seen("sim-a", 1_000)]]), 7_000, "sim-a last heard 6 s ago"],
      ["disconnected from its venue", new Map([["sim-a", seen("sim-a", 1_000, false)]]), 1_000, "not connected"],
      ["one of two live", new Map([["sim-a", seen("sim-a", 0)], ["sim-b", seen("sim-b", 9_000)]]), 10_000, undefined]
    ]
    for (const [name, map, now, expected] of table) {
      const reasons = feedReasons(map, ["BTC-USDT"], now, 5_000)
      if (expected === undefined) assert.deepStrictEqual(reasons, [], name)
      else {
        assert.strictEqual(reasons.length, 1, name)
        assert.include(reasons[0]!, expected, name)
      }
    }
    assert.deepStrictEqual(feedReasons(new Map([["sim-a", seen("sim-a", 0)]]), ["ETH-USDT"], 0, 5_000).length, 1)
  })
})

/** A provider as the heartbeat sees it: name, symbols, connection. */
const fakeProvider = (name: string, symbols: ReadonlyArray<string>): ProviderShape =>
  ({
    name,
    symbols,
    status: Effect.succeed({ provider: name, connected: true, books: [] })
  }) as unknown as ProviderShape

const poll = <A>(check: () => A | undefined, what: string) =>
  Effect.suspend(() => {
    const a = check()
    return a === undefined ? Effect.fail(new Error(`not within 20 s: ${what}`)) : Effect.succeed(a)
  }).pipe(Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo("20 seconds"))))

describe("strategy readiness over NATS", { sequential: true }, () => {
  it.scopedLive("needs a live feed for each symbol it listens to: not before the first heartbeat, not after the feed stops", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const heartbeat = { intervalMs: 50, staleAfterMs: 1_000 }
      const ctx = yield* Layer.build(layerNatsStrategy({ nats: { servers: [server.url], name: "strategy" }, heartbeat }))
      const checks = Context.get(ctx, ReadinessChecks)
      const monitor = Context.get(ctx, FeedMonitor)
      yield* monitor.ready
      yield* Context.get(ctx, NatsConsumers).start({
        id: "s1",
        subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
        handle: () => Effect.void
      })
      const feedReason = () => checks.reasons().find((r) => r.startsWith("feed: no live feed for BTC-USDT"))
      assert.isDefined(feedReason(), "no feed yet")

      // a feed process: its own connection and its heartbeats, in a scope of its own
      const feedScope = yield* Scope.make()
      const feedCtx = yield* Layer.buildWithScope(
        Layer.merge(
          NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [server.url], name: "feed" }))),
          HeartbeatConfig.layer(heartbeat)
        ),
        feedScope
      )
      yield* publishHeartbeats([fakeProvider("sim-a", ["BTC-USDT"]), fakeProvider("sim-b", ["ETH-USDT"])], "epoch-1").pipe(
        Effect.provide(feedCtx),
        Scope.extend(feedScope)
      )
      yield* poll(() => (feedReason() === undefined ? true : undefined), "ready with a live feed")
      assert.deepStrictEqual(checks.reasons(), [], "nothing else missing")
      assert.includeMembers([...monitor.stats().live], ["sim-a", "sim-b"])

      // the feed stops (as after SIGTERM or kill -9: no more heartbeats)
      yield* Scope.close(feedScope, Exit.void)
      const reason = yield* poll(feedReason, "not ready once the feed stopped")
      assert.include(reason, "sim-a last heard")
      assert.include(monitor.stats().stale, "sim-a")
    }))
})

describe("hostile heartbeats", { sequential: true }, () => {
  it.scopedLive("each is counted as malformed and makes no feed live; a valid one right after does", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const ctx = yield* Layer.build(
        FeedMonitor.Default.pipe(
          Layer.provide(NatsConnection.Default),
          Layer.provide(NatsConfig.layer({ servers: [server.url], name: "monitor" })),
          Layer.provide(HeartbeatConfig.layer({ staleAfterMs: 60_000 }))
        )
      )
      const monitor = Context.get(ctx, FeedMonitor)
      yield* monitor.ready
      const publisher = yield* Layer.build(
        NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [server.url], name: "hostile" })))
      )
      const { nc } = Context.get(publisher, NatsConnection)
      const valid = { provider: "sim-a", epoch: "e1", symbols: ["BTC-USDT"], connected: true }
      const hostile: ReadonlyArray<readonly [string, string]> = [
        ["not JSON", "{not json"],
        ["empty", ""],
        ["nested 10,000 deep", "[".repeat(10_000) + "]".repeat(10_000)],
        ["an object nested 10,000 deep", "{\"a\":".repeat(10_000) + "1" + "}".repeat(10_000)],
        ["1 MB body", JSON.stringify({ ...valid, pad: "x".repeat(1_000_000) })],
        ["wrong types", JSON.stringify({ ...valid, connected: "yes" })],
        ["a missing field", JSON.stringify({ provider: "sim-a", symbols: ["BTC-USDT"], connected: true })],
        ["a provider of 10 KB", JSON.stringify({ ...valid, provider: "p".repeat(10_000) })],
        ["2,000 symbols", JSON.stringify({ ...valid, symbols: Array.from({ length: 2_000 }, (_, i) => `S${i}-USDT`) })],
        ["a JSON number", "1e999999"],
        ["another provider than its subject", JSON.stringify({ ...valid, provider: "sim-b" })]
      ]
      for (const [, body] of hostile) nc.publish("feed.heartbeat.sim-a", body)
      nc.publish("feed.heartbeat.sim-a", JSON.stringify(valid))
      yield* poll(() => (monitor.stats().heartbeats === 1 ? true : undefined), "the valid heartbeat after the hostile ones")
      assert.strictEqual(monitor.stats().malformed, hostile.length, hostile.map(([name]) => name).join(", "))
      assert.deepStrictEqual([...monitor.stats().live], ["sim-a"])
      assert.deepStrictEqual(monitor.reasons(["BTC-USDT"]), [])
    }))
})

describe("feed readiness over NATS", { sequential: true }, () => {
  it.scopedLive("heartbeats and the backlog watch run for the life of the feed layer and leave no fiber behind", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const heartbeat = { intervalMs: 50, staleAfterMs: 1_000 }
      const feed = layerFeedHeartbeats.pipe(
        Layer.provideMerge(Layer.succeed(Providers, [fakeProvider("sim-a", ["BTC-USDT"])])),
        Layer.provideMerge(
          layerNatsFeed({ symbols: ["BTC-USDT"], providers: ["sim-a"], nats: { servers: [server.url], name: "feed" }, heartbeat })
        )
      )
      const monitorCtx = yield* Layer.build(
        FeedMonitor.Default.pipe(
          Layer.provide(NatsConnection.Default),
          Layer.provide(NatsConfig.layer({ servers: [server.url], name: "monitor" })),
          Layer.provide(HeartbeatConfig.layer(heartbeat))
        )
      )
      const monitor = Context.get(monitorCtx, FeedMonitor)
      yield* monitor.ready
      const { aliveBefore, left, result } = yield* runAndCountLeftFibers(
        feed,
        Effect.gen(function*() {
          const checks = yield* ReadinessChecks
          yield* poll(() => (monitor.stats().live.includes("sim-a") ? true : undefined), "the feed's heartbeat")
          return checks.reasons()
        })
      )
      assert.deepStrictEqual(result, [], "the feed is ready")
      assert.isAbove(aliveBefore, 0)
      assert.strictEqual(left, 0, "no fiber left once the feed layer's scope closed")
      const heard = monitor.stats().heartbeats
      yield* poll(() => (monitor.stats().stale.includes("sim-a") ? true : undefined), "no heartbeat once the feed closed")
      assert.isAtLeast(monitor.stats().heartbeats, heard)
    }))
})

