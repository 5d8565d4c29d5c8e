import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, TestClock } from "effect"
import { layerMemory } from "../layers/Memory.js"
import { FlipRouting, MergeSpec, StageRouting, SubscribeMerged, SymbolRoute } from "../schema/Control.js"
import { Consumers } from "../src/Consumer.js"
import { ControlBus } from "../src/ControlBus.js"
import type { AnyEvent } from "../src/Event.js"
import { Orchestrator } from "../src/Orchestrator.js"
import { Pool } from "../src/Pool.js"
import { Dispatcher } from "../src/Dispatcher.js"
import { eventually, execReport, market } from "./support/events.js"
import { runAndCountLeftFibers } from "./support/leaks.js"

const layer = () => layerMemory({ symbols: ["BTC-USDT", "ETH-USDT"], providers: ["sim-a", "sim-b", "sim-c"] })
const services = Effect.all({
  pool: Pool,
  orchestrator: Orchestrator,
  consumers: Consumers,
  control: ControlBus,
  dispatcher: Dispatcher
})

interface Seen {
  readonly kind: string
  readonly pool: string
  readonly version: number
  readonly providers?: ReadonlyArray<string>
  readonly mergeId?: string
  readonly payloadTag?: string
  readonly missing?: ReadonlyArray<string> | undefined
}

const view = (e: AnyEvent): Seen => ({
  kind: e.kind,
  pool: e._pool,
  version: e.routingVersion,
  ...(e._pool === "MergedEvent"
    ? { providers: e.sourceProviders, mergeId: e.mergeId, payloadTag: e.payload!._tag, missing: e.payload!.missing }
    : {})
})

/** A consumer that subscribes to merged BTC tickers over three venues through the Control Bus. */
const mergedSubscriber = (
  windowMs: number,
  maxFragments: number,
  policy: { readonly policy?: "all" | "quorum" | "any"; readonly quorum?: number } = { policy: "all" }
) =>
  Effect.gen(function*() {
    const { consumers, control } = yield* services
    const seen: Array<Seen> = []
    const h = yield* consumers.start({ id: "merged", handle: (e) => Effect.sync(() => seen.push(view(e))) })
    yield* control.submitJson(JSON.stringify({
      schemaVersion: 1,
      command: {
        _tag: "SubscribeMerged",
        commandId: "m1",
        consumerId: "merged",
        symbol: "BTC-USDT",
        kind: "ticker",
        providers: ["sim-a", "sim-b", "sim-c"],
        windowMs,
        maxFragments,
        ...policy
      }
    }))
    yield* eventually(() => seen.filter((s) => s.kind === "control_result").length === 1, "subscription result")
    return { seen, handle: h }
  })

describe("Orchestrator merge windows", () => {
  it.scoped("a complete window emits one merged event, stamped, and recycles its fragments at once", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      const { seen } = yield* mergedSubscriber(100, 10)
      for (const [provider, bid] of [["sim-a", "100.1"], ["sim-b", "100.3"], ["sim-c", "100.2"]] as const) {
        yield* orchestrator.ingest(market(pool, { provider, bid, ingestTs: 1 }))
      }
      assert.strictEqual(orchestrator.stats().heldFragments, 3)
      yield* TestClock.adjust("100 millis")
      yield* eventually(() => seen.some((s) => s.pool === "MergedEvent"), "the merged event")
      const merged = seen.find((s) => s.pool === "MergedEvent")!
      assert.deepStrictEqual(merged.providers, ["sim-a", "sim-b", "sim-c"])
      assert.strictEqual(merged.payloadTag, "merged_ticker")
      assert.strictEqual(merged.version, orchestrator.routingVersion())
      assert.match(merged.mergeId!, /^BTC-USDT\|ticker\|/)
      assert.strictEqual(orchestrator.stats().heldFragments, 0, "fragments released the moment the window closed")
      yield* eventually(() => pool.stats().MergedEvent.outstanding === 0 && pool.stats().Event.outstanding === 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("a partial window is suppressed and counted with its missing providers", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      const { seen } = yield* mergedSubscriber(50, 10)
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 1 }))
      yield* orchestrator.ingest(market(pool, { provider: "sim-c", ingestTs: 1 }))
      yield* TestClock.adjust("50 millis")
      yield* eventually(() => orchestrator.stats().suppressed === 1)
      assert.deepStrictEqual(orchestrator.stats().missing, { "sim-b": 1 })
      assert.isFalse(seen.some((s) => s.pool === "MergedEvent"))
      assert.strictEqual(orchestrator.stats().heldFragments, 0)
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("a window closes at once when it holds max fragments; a fragment for a closed window is late", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      const { seen } = yield* mergedSubscriber(1_000, 3)
      yield* TestClock.adjust("10 millis")
      for (const provider of ["sim-a", "sim-b", "sim-c"]) {
        yield* orchestrator.ingest(market(pool, { provider, ingestTs: 10_000 }))
      }
      yield* eventually(() => seen.some((s) => s.pool === "MergedEvent"), "closed by count, no time passing")
      // taken in before that close, arriving after it
      yield* orchestrator.ingest(market(pool, { provider: "sim-b", ingestTs: 5_000 }))
      assert.strictEqual(orchestrator.stats().late, 1)
      assert.strictEqual(orchestrator.stats().heldFragments, 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("a late fragment goes to the Recycler at once: nothing outstanding after it", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      const { seen } = yield* mergedSubscriber(1_000, 3)
      yield* TestClock.adjust("10 millis")
      for (const provider of ["sim-a", "sim-b", "sim-c"]) {
        yield* orchestrator.ingest(market(pool, { provider, ingestTs: 10_000 }))
      }
      yield* eventually(() => seen.some((s) => s.pool === "MergedEvent"), "the merged event")
      yield* eventually(() => pool.stats().Event.outstanding === 0, "fragments and replies recycled")
      const recycledBefore = pool.stats().Event.recycled
      for (const provider of ["sim-a", "sim-b", "sim-c"]) {
        yield* orchestrator.ingest(market(pool, { provider, ingestTs: 5_000 }))
      }
      assert.strictEqual(orchestrator.stats().late, 3)
      assert.strictEqual(orchestrator.stats().openWindows, 0)
      // each late fragment's clone and its original (no raw subscriber): six recycles, none held
      assert.strictEqual(pool.stats().Event.recycled - recycledBefore, 6)
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("a replaced fragment goes to the Recycler at once; the window holds only each provider's latest", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      yield* mergedSubscriber(100, 10)
      yield* eventually(() => pool.stats().Event.outstanding === 0, "the subscription's replies recycled")
      for (let ts = 1; ts <= 5; ts++) yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: ts }))
      yield* orchestrator.ingest(market(pool, { provider: "sim-b", ingestTs: 1 }))
      assert.strictEqual(orchestrator.stats().replaced, 4)
      assert.strictEqual(orchestrator.stats().heldFragments, 2)
      assert.strictEqual(pool.stats().Event.outstanding, 2, "only the two held fragments are out")
      yield* TestClock.adjust("100 millis")
      yield* eventually(() => orchestrator.stats().suppressed === 1, "the window closes incomplete")
      assert.strictEqual(pool.stats().Event.outstanding, 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("raw subscribers still see every venue's own event of a merged stream, stamped", () =>
    Effect.gen(function*() {
      const { pool, orchestrator, consumers, control } = yield* services
      yield* mergedSubscriber(100, 10)
      const raw: Array<Seen> = []
      yield* consumers.start({ id: "raw", handle: (e) => Effect.sync(() => raw.push(view(e))) })
      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "Subscribe", commandId: "r1", consumerId: "raw", symbol: "BTC-USDT", kinds: ["ticker"] }
      }))
      yield* eventually(() => raw.some((s) => s.kind === "control_result"))
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 1 }))
      yield* eventually(() => raw.some((s) => s.kind === "ticker"))
      assert.strictEqual(raw.find((s) => s.kind === "ticker")!.version, orchestrator.routingVersion())
    }).pipe(Effect.provide(layer())))
})

describe("merge policies with one venue down (sim-c offline)", () => {
  /** Three windows of quotes from sim-a and sim-b only, each closed by TestClock at its deadline. */
  const runWithSimCDown = (policy: { readonly policy?: "all" | "quorum" | "any"; readonly quorum?: number }) =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      const { seen } = yield* mergedSubscriber(100, 3, policy)
      for (let w = 0; w < 3; w++) {
        const ts = (w * 100 + 1) * 1_000
        yield* orchestrator.ingest(market(pool, { provider: "sim-a", bid: "100.1", ingestTs: ts }))
        yield* orchestrator.ingest(market(pool, { provider: "sim-b", bid: "100.3", ingestTs: ts }))
        yield* TestClock.adjust("100 millis")
        yield* eventually(() => orchestrator.stats().merged + orchestrator.stats().suppressed === w + 1, `window ${w}`)
      }
      yield* eventually(() => pool.stats().MergedEvent.outstanding === 0 && pool.stats().Event.outstanding === 0)
      return { merged: seen.filter((s) => s.pool === "MergedEvent"), stats: orchestrator.stats() }
    })

  it.scoped("all: nothing merged for as long as the venue is down; each window suppressed and counted", () =>
    Effect.gen(function*() {
      const { merged, stats } = yield* runWithSimCDown({ policy: "all" })
      assert.strictEqual(merged.length, 0)
      assert.deepStrictEqual([stats.suppressed, stats.merged, stats.partial], [3, 0, 0])
      assert.deepStrictEqual(stats.missing, { "sim-c": 3 })
      assert.deepStrictEqual(stats.partialMissing, {})
    }).pipe(Effect.provide(layer())))

  for (const [name, policy] of [
    ["quorum (majority: 2 of 3)", { policy: "quorum" }],
    ["quorum of 2 stated", { policy: "quorum", quorum: 2 }],
    ["any", { policy: "any" }],
    ["no policy given (the default, any)", {}]
  ] as const) {
    it.scoped(`${name}: a merged event per window, naming the missing venue; counted as partial`, () =>
      Effect.gen(function*() {
        const { merged, stats } = yield* runWithSimCDown(policy)
        assert.strictEqual(merged.length, 3)
        for (const m of merged) {
          assert.deepStrictEqual(m.providers, ["sim-a", "sim-b"])
          assert.deepStrictEqual(m.missing, ["sim-c"])
          assert.strictEqual(m.payloadTag, "merged_ticker")
        }
        assert.deepStrictEqual([stats.merged, stats.partial, stats.suppressed], [3, 3, 0])
        assert.deepStrictEqual(stats.partialMissing, { "sim-c": 3 })
        assert.deepStrictEqual(stats.missing, {}, "no window suppressed")
      }).pipe(Effect.provide(layer())))
  }

  it.scoped("quorum of 3: the same as all", () =>
    Effect.gen(function*() {
      const { merged, stats } = yield* runWithSimCDown({ policy: "quorum", quorum: 3 })
      assert.strictEqual(merged.length, 0)
      assert.deepStrictEqual(stats.missing, { "sim-c": 3 })
    }).pipe(Effect.provide(layer())))

  it.scoped("a SubscribeMerged without a policy keeps the routed merge's; one with a policy sets it", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      const route = (policy: "all" | "any") =>
        StageRouting.make({
          commandId: `s-${policy}`,
          consumerId: "ops",
          routes: [SymbolRoute.make({
            symbol: "BTC-USDT",
            providers: ["sim-a", "sim-b", "sim-c"],
            merges: [MergeSpec.make({ kind: "ticker", providers: ["sim-a", "sim-b", "sim-c"], windowMs: 100, maxFragments: 3, policy })]
          })]
        })
      yield* orchestrator.stage(route("all"))
      yield* orchestrator.flip("s-all")
      // the strategy's subscription states the window, not the policy
      const { seen } = yield* mergedSubscriber(100, 3, {})
      assert.deepStrictEqual(orchestrator.stats().missing, {})
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 1 }))
      yield* orchestrator.ingest(market(pool, { provider: "sim-b", ingestTs: 1 }))
      yield* TestClock.adjust("100 millis")
      yield* eventually(() => orchestrator.stats().suppressed === 1, "the routed policy (all) still holds")
      assert.isFalse(seen.some((s) => s.pool === "MergedEvent"))
      const { control } = yield* services
      yield* control.submit(SubscribeMerged.make({
        commandId: "m2",
        consumerId: "merged",
        symbol: "BTC-USDT",
        kind: "ticker",
        providers: ["sim-a", "sim-b", "sim-c"],
        windowMs: 100,
        maxFragments: 3,
        policy: "any"
      }))
      yield* eventually(() => seen.filter((s) => s.kind === "control_result").length === 2, "the second subscription's result")
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 200_000 }))
      yield* TestClock.adjust("100 millis")
      yield* eventually(() => orchestrator.stats().partial === 1, "a stated policy replaces it")
      yield* eventually(() => pool.stats().Event.outstanding === 0 && pool.stats().MergedEvent.outstanding === 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("the policy of a routed merge comes with the routing table's flip", () =>
    Effect.gen(function*() {
      const { pool, orchestrator } = yield* services
      yield* orchestrator.stage(StageRouting.make({
        commandId: "s-policy",
        consumerId: "ops",
        routes: [SymbolRoute.make({
          symbol: "BTC-USDT",
          providers: ["sim-a", "sim-b", "sim-c"],
          merges: [MergeSpec.make({ kind: "ticker", providers: ["sim-a", "sim-b", "sim-c"], windowMs: 50, maxFragments: 3, policy: "all" })]
        })]
      }))
      yield* orchestrator.flip("s-policy")
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 1 }))
      yield* TestClock.adjust("50 millis")
      yield* eventually(() => orchestrator.stats().suppressed === 1, "all: suppressed")
      assert.deepStrictEqual(orchestrator.stats().missing, { "sim-b": 1, "sim-c": 1 })
      yield* orchestrator.stage(StageRouting.make({
        commandId: "s-any",
        consumerId: "ops",
        routes: [SymbolRoute.make({
          symbol: "BTC-USDT",
          providers: ["sim-a", "sim-b", "sim-c"],
          merges: [MergeSpec.make({ kind: "ticker", providers: ["sim-a", "sim-b", "sim-c"], windowMs: 50, maxFragments: 3, policy: "any" })]
        })]
      }))
      yield* orchestrator.flip("s-any")
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 60_000 }))
      yield* TestClock.adjust("50 millis")
      yield* eventually(() => orchestrator.stats().partial === 1, "any: emitted with two venues missing")
      assert.deepStrictEqual(orchestrator.stats().partialMissing, { "sim-b": 1, "sim-c": 1 })
      yield* eventually(() => pool.stats().Event.outstanding === 0 && pool.stats().MergedEvent.outstanding === 0)
    }).pipe(Effect.provide(layer())))
})

describe("routing flips", () => {
  const stage = (commandId: string, consumerId: string) =>
    StageRouting.make({
      commandId,
      consumerId,
      routes: [SymbolRoute.make({ symbol: "BTC-USDT", providers: ["sim-a", "sim-b"], merges: [] })]
    })

  it.scoped("SC-004/SC-010: across a flip every critical event is processed and under 5% of stale market data", () =>
    Effect.gen(function*() {
      const { pool, orchestrator, consumers, control, dispatcher } = yield* services
      const gate = yield* Deferred.make<void>()
      const seen: Array<Seen> = []
      const h = yield* consumers.start({
        id: "strategy",
        subscriptions: [{ symbol: "BTC-USDT", kind: "ticker", merged: false }],
        handle: (e) => Deferred.await(gate).pipe(Effect.zipRight(Effect.sync(() => seen.push(view(e)))))
      })
      const before = orchestrator.routingVersion()
      // a stream of market data and execution reports, queued behind a busy lambda
      let reports = 0
      for (let i = 1; i <= 200; i++) {
        yield* orchestrator.ingest(market(pool, { provider: "sim-a", seq: i }))
        if (i % 10 === 0) yield* dispatcher.dispatch(execReport(pool, "strategy", ++reports))
      }
      yield* control.submit(stage("stage-1", "ops"))
      yield* control.submit(FlipRouting.make({ commandId: "flip-1", consumerId: "ops", expectedStagedId: "stage-1" }))
      yield* eventually(() => orchestrator.routingVersion() === before + 1, "the flip")
      yield* eventually(() => h.stats().lag >= 200 - 1 + reports + 1, "the ack queued")
      yield* Deferred.succeed(gate, undefined)
      yield* eventually(() => h.stats().lag === 0)
      const staleDelivered = seen.filter((s) => s.kind === "ticker" && s.version === before).length
      assert.isBelow(staleDelivered / 200, 0.05, `${staleDelivered} stale market events delivered`)
      assert.strictEqual(seen.filter((s) => s.kind === "exec_report").length, reports, "every ExecReport")
      assert.strictEqual(seen.filter((s) => s.kind === "control_ack").length, 1, "the flip's ack")
      assert.strictEqual(h.minVersion(), before + 1)
      // fresh market data flows again, from a routed provider only
      yield* orchestrator.ingest(market(pool, { provider: "sim-a", seq: 201 }))
      yield* orchestrator.ingest(market(pool, { provider: "sim-c", seq: 1 }))
      yield* eventually(() => seen.some((s) => s.kind === "ticker" && s.version === before + 1))
      assert.strictEqual(orchestrator.stats().unrouted, 1, "sim-c no longer feeds BTC-USDT")
      assert.strictEqual(pool.stats().Event.outstanding + pool.stats().ExecReport.outstanding, 0)
    }).pipe(Effect.provide(layer())))

  it.scoped("a flip with nothing staged, or another table staged, is rejected and changes nothing", () =>
    Effect.gen(function*() {
      const { orchestrator, consumers, control } = yield* services
      const results: Array<string> = []
      yield* consumers.start({
        id: "ops",
        handle: (e) =>
          Effect.sync(() => {
            if (e.payload?._tag === "control_result") results.push(`${e.payload.outcome}:${e.payload.rejection?.message ?? ""}`)
          })
      })
      const before = orchestrator.routingVersion()
      yield* control.submit(FlipRouting.make({ commandId: "f0", consumerId: "ops" }))
      yield* control.submit(stage("s1", "ops"))
      yield* control.submit(FlipRouting.make({ commandId: "f1", consumerId: "ops", expectedStagedId: "other" }))
      yield* eventually(() => results.length === 3)
      assert.deepStrictEqual(results, [
        "rejected:no routing table is staged",
        "ok:",
        "rejected:the staged routing table is not other"
      ])
      assert.strictEqual(orchestrator.routingVersion(), before)
    }).pipe(Effect.provide(layer())))
})

describe("Orchestrator and Control Bus lifetimes", () => {
  it.effect("leave no fiber running once their scope closes, open windows included", () =>
    Effect.gen(function*() {
      const { left, aliveBefore } = yield* runAndCountLeftFibers(
        layer(),
        Effect.gen(function*() {
          const { pool, orchestrator } = yield* services
          yield* mergedSubscriber(1_000, 10)
          yield* orchestrator.ingest(market(pool, { provider: "sim-a", ingestTs: 1 }))
        })
      )
      assert.isAbove(aliveBefore, 2)
      assert.strictEqual(left, 0)
    }))
})
