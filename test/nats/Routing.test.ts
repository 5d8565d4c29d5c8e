/**
 * Several feed processes on one subject space, against a real `nats-server`:
 * the Control Plane feed's routing version followed by market-only feeds
 * (`src/nats/Routing.ts`), and the Control Plane's lease
 * (`src/nats/ControlPlaneLease.ts`).
 */
import { Kvm } from "@nats-io/kv"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import { acquire } from "../../src/nats/ControlPlaneLease.js"
import { HeartbeatConfig } from "../../src/nats/Heartbeat.js"
import { CONTROL_BUCKET } from "../../src/nats/Permissions.js"
import { announceRoutingVersion, RoutingFollower } from "../../src/nats/Routing.js"
import { natsServer } from "./support/server.js"
import { runAndCountLeftFibers } from "../support/leaks.js"
import { layerNatsMarketFeed } from "../../layers/Nats.js"
import { decimal, Ticker } from "../../schema/Event.js"
import { Dispatcher } from "../../src/Dispatcher.js"
import { Pool } from "../../src/Pool.js"
import { ReadinessChecks } from "../../src/Status.js"

const connection = (url: string, name: string) =>
  NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [url], name })))

const poll = <A>(f: () => A | undefined, what: string) =>
  Effect.suspend(() => {
    const a = f()
    return a === undefined ? Effect.fail(what) : Effect.succeed(a)
  }).pipe(Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("30 seconds"))))

describe("routing version across feeds", { sequential: true }, () => {
  it.scopedLive("a market-only feed follows the version announced, at once on a change; hostile announcements are counted and ignored", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const ctx = yield* Layer.build(RoutingFollower.Default.pipe(Layer.provideMerge(connection(server.url, "market-feed"))))
      const follower = Context.get(ctx, RoutingFollower)
      assert.isFalse(follower.heard())
      assert.strictEqual(follower.version(), 0)

      // the Control Plane feed: a heartbeat interval far longer than the test, so only a change is announced
      let version = 3
      const control = yield* Layer.build(
        Layer.merge(connection(server.url, "control-feed"), HeartbeatConfig.layer({ intervalMs: 600_000 }))
      )
      yield* announceRoutingVersion(() => version).pipe(Effect.provide(control))
      yield* poll(() => (follower.version() === 3 ? true : undefined), "the first announcement")
      assert.isTrue(follower.heard())
      version = 4 // a flip
      yield* poll(() => (follower.version() === 4 ? true : undefined), "the flip announced without waiting for the interval")

      const { nc } = Context.get(control, NatsConnection)
      const hostile: ReadonlyArray<readonly [string, string]> = [
        ["not JSON", "{not json"],
        ["empty", ""],
        ["negative", JSON.stringify({ routingVersion: -1 })],
        ["fractional", JSON.stringify({ routingVersion: 1.5 })],
        ["a string", JSON.stringify({ routingVersion: "9" })],
        ["missing", JSON.stringify({})],
        ["a JSON number", "1e999999"],
        ["nested 10,000 deep", "[".repeat(10_000) + "]".repeat(10_000)],
        ["1 KB body", JSON.stringify({ routingVersion: 9, pad: "x".repeat(1_000) })]
      ]
      const before = follower.stats()
      for (const [, body] of hostile) nc.publish("feed.routing", body)
      // a restarted Control Plane feed starts from a lower version: the last one announced is followed
      nc.publish("feed.routing", JSON.stringify({ routingVersion: 2 }))
      yield* poll(() => (follower.version() === 2 ? true : undefined), "the valid announcement after the hostile ones")
      assert.strictEqual(follower.stats().invalid - before.invalid, hostile.length, hostile.map(([n]) => n).join(", "))
      assert.strictEqual(follower.stats().announcements - before.announcements, 1)
    }))
})

describe("a market-data-only feed process", { sequential: true }, () => {
  it.scopedLive("is ready once it has heard the routing version, stamps it on its market data, and leaves no fiber behind", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const { nc } = Context.get(yield* Layer.build(connection(server.url, "control-feed")), NatsConnection)
      const stamped: Array<number> = []
      const sub = nc.subscribe("md.sim-b.BTC-USDT.ticker", {
        // JSON on the wire (codec: json): one event per message
        callback: (_err, msg) => {
          stamped.push((JSON.parse(msg.string()) as { readonly routingVersion: number }).routingVersion)
        }
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
      const { aliveBefore, left, result } = yield* runAndCountLeftFibers(
        layerNatsMarketFeed({ nats: { servers: [server.url], name: "feed-sim-b", codec: "json" } }),
        Effect.gen(function*() {
          const checks = yield* ReadinessChecks
          const before = checks.reasons()
          nc.publish("feed.routing", JSON.stringify({ routingVersion: 7 }))
          yield* poll(() => (checks.reasons().length === 0 ? true : undefined), "ready once the version is heard")
          const pool = yield* Pool
          const dispatcher = yield* Dispatcher
          const e = pool.acquireEvent()
          e.provider = "sim-b"
          e.symbol = "BTC-USDT"
          e.kind = "ticker"
          e.seqProvider = 1
          e.ingestTs = 1
          e.traceId = "t-1"
          e.payload = Ticker.make({
            bidPrice: decimal("1"),
            bidQty: decimal("1"),
            askPrice: decimal("2"),
            askQty: decimal("1"),
            exchangeTs: 1
          })
          yield* dispatcher.dispatch(e)
          yield* poll(() => (stamped.length > 0 ? true : undefined), "the ticker on NATS")
          return before
        })
      )
      assert.include(result.join(), "no routing version heard")
      assert.deepStrictEqual(stamped, [7], "stamped with the Control Plane feed's version")
      assert.isAbove(aliveBefore, 0)
      assert.strictEqual(left, 0, "no fiber left once the feed layer's scope closed")
    }))
})

describe("the Control Plane's lease", { sequential: true }, () => {
  const heartbeat = HeartbeatConfig.layer({ intervalMs: 100, staleAfterMs: 600 })

  it.scopedLive("a second feed is refused while the first holds it, takes it once the first releases it or dies", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      // the feed's connection lives as long as the scope the lease is held in
      const feed = (name: string) => Layer.merge(connection(server.url, name), heartbeat)
      const holdIn = (scope: Scope.Scope, name: string) =>
        Effect.flatMap(Layer.buildWithScope(feed(name), scope), (ctx) => acquire.pipe(Effect.provide(ctx), Scope.extend(scope)))

      const firstScope = yield* Scope.make()
      const first = yield* holdIn(firstScope, "feed-1")
      assert.isFalse(first.lost())

      // held and renewed well past its time to live: refused, naming the holder
      const refused = yield* acquire.pipe(Effect.provide(feed("feed-2")), Effect.scoped, Effect.flip)
      assert.strictEqual(refused._tag, "ControlPlaneTaken")
      assert.strictEqual(refused._tag === "ControlPlaneTaken" ? refused.holder : "", first.holder)
      assert.include(refused.message, "exactly one feed takes commands")

      // released with its scope: the next feed takes it
      yield* Scope.close(firstScope, Exit.void)
      const secondScope = yield* Scope.make()
      const second = yield* holdIn(secondScope, "feed-3")
      assert.notStrictEqual(second.holder, first.holder)
      yield* Scope.close(secondScope, Exit.void)

      // a holder that died without releasing (a lease written and never renewed): taken once it expires
      const { nc } = Context.get(yield* Layer.build(connection(server.url, "crashed")), NatsConnection)
      const kv = yield* Effect.promise(() => new Kvm(nc).open(CONTROL_BUCKET))
      yield* Effect.promise(() => kv.put("control-plane", "crashed-feed"))
      const third = yield* acquire.pipe(Effect.provide(feed("feed-4")), Effect.scoped)
      assert.isTrue(third.holder.startsWith("feed-4-"))
    }))
})
