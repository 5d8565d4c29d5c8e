/**
 * The paper venue's open orders across a restart: a resting order is still
 * there after the venue restarts (a file in memory mode, the JetStream
 * key-value bucket on NATS): it can be queried, it fills, it can be canceled,
 * and its final report follows the ones before the restart (reportSeq goes on).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerNatsFeed } from "../layers/Nats.js"
import { CancelOrder, QueryOrder, SubmitOrder } from "../schema/Control.js"
import type { WireExecReport } from "../schema/Event.js"
import { decimal, ExecReportPayload, Ticker } from "../schema/Event.js"
import { type PaperChanges, PaperStore } from "../src/execution/PaperStore.js"
import * as PaperVenue from "../src/execution/Paper.js"
import { ExecReportSink, ExecutionVenue } from "../src/ExecutionVenue.js"
import { decodeFrame, unpooled } from "../src/codec/Binary.js"
import { CommandPublisher } from "../src/nats/Commands.js"
import { NatsConfig, NatsConnection } from "../src/nats/Connection.js"
import { CRITICAL_STREAM, criticalSubject } from "../src/nats/Subjects.js"
import { Orchestrator } from "../src/Orchestrator.js"
import { Pool } from "../src/Pool.js"
import { generationOf, Recycler } from "../src/Recycler.js"
import { natsServer } from "./nats/support/server.js"
import { validate } from "../src/Config.js"
import { memoryOptions } from "../layers/Application.js"
import { Either } from "effect"

const SYM = "BTC-USDT"

const order = (clientOrderId: string, price: string) =>
  SubmitOrder.make({
    commandId: `${clientOrderId}-submit`,
    consumerId: "alice",
    clientOrderId,
    symbol: SYM,
    side: "buy",
    orderType: "limit",
    price: decimal(price),
    quantity: decimal("2")
  })

/** The file store, counting its saves. */
const countingFile = (file: string, saves: { n: number }) =>
  Layer.effect(
    PaperStore,
    Effect.map(PaperStore, (store) => ({ ...store, save: (c: PaperChanges) => Effect.zipRight(Effect.sync(() => saves.n++), store.save(c)) }))
  ).pipe(Layer.provide(PaperStore.layerFile(file)))

/** One run of the venue on the file: its reports, and the services to drive it. */
const venueRun = (file: string, saves: { n: number } = { n: 0 }) =>
  Effect.gen(function*() {
    const reports: Array<WireExecReport> = []
    const ctx = yield* Layer.build(
      PaperVenue.layerStored({ symbols: [SYM] }).pipe(
        Layer.provideMerge(countingFile(file, saves)),
        Layer.provideMerge(Layer.effect(
          ExecReportSink,
          Effect.map(Recycler, (recycler) => (r) =>
            Effect.sync(() => {
              reports.push(r.toWire())
              recycler.unsafeRecycle(r, generationOf(r))
            }))
        )),
        Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({}))))
      )
    )
    const venue = Context.get(ctx, ExecutionVenue)
    const pool = Context.get(ctx, Pool)
    const recycler = Context.get(ctx, Recycler)
    /** A ticker: the venue's market view (ask at `ask`, 1 available). */
    const tick = (ask: string) =>
      Effect.suspend(() => {
        const e = pool.acquireEvent()
        e.symbol = SYM
        e.provider = "sim-a"
        e.kind = "ticker"
        e.traceId = `tick-${ask}`
        e.payload = Ticker.make({
          bidPrice: decimal("90"),
          bidQty: decimal("1"),
          askPrice: decimal(ask),
          askQty: decimal("1"),
          exchangeTs: 0
        })
        const gen = generationOf(e)
        return venue.onMarketData(e).pipe(Effect.ensuring(Effect.sync(() => recycler.unsafeRecycle(e, gen))))
      })
    return { venue, reports, tick }
  })

const seqs = (reports: ReadonlyArray<WireExecReport>) =>
  reports.map((r) => `${r.payload.clientOrderId} ${r.payload.reportSeq} ${r.payload.status}`)

describe("paper venue state in a file (memory mode)", () => {
  it("paper.stateFile in the configuration reaches the in-memory application layer; unset, nothing is kept", () => {
    const set = validate({ paper: { stateFile: "/var/lib/meltica/paper.json" } }, "test")
    assert.isTrue(Either.isRight(set))
    if (Either.isRight(set)) assert.strictEqual(memoryOptions(set.right).paperStateFile, "/var/lib/meltica/paper.json")
    const unset = validate({}, "test")
    if (Either.isRight(unset)) assert.isUndefined(memoryOptions(unset.right).paperStateFile)
    const empty = validate({ paper: { stateFile: "" } }, "test")
    assert.isTrue(Either.isLeft(empty))
    if (Either.isLeft(empty)) assert.include(empty.left.issues[0]!.path, "paper.stateFile")
  })

  it.effect("a resting order survives a restart: query, fill, cancel, and the report sequence goes on", () =>
    Effect.gen(function*() {
      const file = join(mkdtempSync(join(tmpdir(), "meltica-paper-")), "paper.json")
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const run = yield* venueRun(file)
        yield* run.tick("100")
        const a = yield* run.venue.submit(order("a", "95"))
        yield* run.venue.submit(order("b", "99"))
        yield* run.tick("98") // b fills 1 of 2 at 98, stays open
        yield* run.venue.submit(order("c", "200")) // nothing left to fill: rests
        yield* run.venue.cancel(CancelOrder.make({ commandId: "cancel-c", consumerId: "alice", clientOrderId: "c" }))
        return { a, reports: seqs(run.reports) }
      }))
      assert.strictEqual(first.a.status, "new")
      const kept = JSON.parse(readFileSync(file, "utf8")) as { orders: Array<{ clientOrderId: string }> }
      assert.deepStrictEqual(kept.orders.map((o) => o.clientOrderId).sort(), ["a", "b"], "only open orders are kept")

      // the restart
      yield* Effect.scoped(Effect.gen(function*() {
        const run = yield* venueRun(file)
        assert.strictEqual(run.venue.stats().restored, 2)
        const a = yield* run.venue.query(QueryOrder.make({ commandId: "q-a", consumerId: "alice", clientOrderId: "a" }))
        assert.strictEqual(a.status, "new")
        assert.strictEqual(a.orderId, first.a.orderId)
        const b = yield* run.venue.query(QueryOrder.make({ commandId: "q-b", consumerId: "alice", clientOrderId: "b" }))
        assert.deepStrictEqual([b.status, b.filledQty, b.avgPrice], ["partially_filled", "1", "98"])
        // b fills the rest on the next market data: its fills before the restart count in its average
        yield* run.tick("97")
        // a is canceled: its final report
        yield* run.venue.cancel(CancelOrder.make({ commandId: "cancel-a", consumerId: "alice", clientOrderId: "a" }))
        const b2 = yield* run.venue.query(QueryOrder.make({ commandId: "q-b2", consumerId: "alice", clientOrderId: "b" }))
        assert.deepStrictEqual([b2.status, b2.filledQty, b2.avgPrice], ["filled", "2", "97.5"])
        assert.deepStrictEqual(seqs(run.reports), ["b 3 filled", "a 2 canceled"], "the sequence goes on from before")
        const d = yield* run.venue.submit(order("d", "1"))
        assert.notInclude(["paper-1", "paper-2", "paper-3"], d.orderId, "order ids are not reused")
      }))
      const after = JSON.parse(readFileSync(file, "utf8")) as { orders: Array<{ clientOrderId: string }> }
      assert.deepStrictEqual(after.orders.map((o) => o.clientOrderId), ["d"])
    }))

  it.effect("orders that never rest cost no save: order numbers are reserved a block at a time", () =>
    Effect.gen(function*() {
      const file = join(mkdtempSync(join(tmpdir(), "meltica-paper-")), "paper.json")
      const saves = { n: 0 }
      yield* Effect.scoped(Effect.gen(function*() {
        const run = yield* venueRun(file, saves)
        yield* run.tick("100")
        for (let i = 0; i < 20; i++) {
          const filled = yield* run.venue.submit(SubmitOrder.make({
            commandId: `m-${i}-submit`,
            consumerId: "alice",
            clientOrderId: `m-${i}`,
            symbol: SYM,
            side: "buy",
            orderType: "market",
            quantity: decimal("0.01")
          }))
          assert.strictEqual(filled.status, "filled")
        }
      }))
      assert.strictEqual(saves.n, 1, "one reservation for 20 orders that filled at once")
      yield* Effect.scoped(Effect.gen(function*() {
        const run = yield* venueRun(file)
        yield* run.tick("100")
        const next = yield* run.venue.submit(order("after", "1"))
        assert.isAbove(Number(next.orderId.replace("paper-", "")), 20, "numbered after the reserved block")
      }))
    }))

  it.effect("an unreadable state file is logged and the venue starts empty; nothing is restored from garbage", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "meltica-paper-"))
      const file = join(dir, "paper.json")
      yield* Effect.sync(() => writeFileSync(file, "{not json"))
      yield* Effect.scoped(Effect.gen(function*() {
        const run = yield* venueRun(file)
        assert.strictEqual(run.venue.stats().restored, 0)
        yield* run.tick("100")
        const o = yield* run.venue.submit(order("x", "1"))
        assert.strictEqual(o.status, "new")
      }))
      const kept = JSON.parse(readFileSync(file, "utf8")) as { orders: Array<{ clientOrderId: string }> }
      assert.deepStrictEqual(kept.orders.map((o) => o.clientOrderId), ["x"])
    }))
})

const eventually = <A, E, R>(check: Effect.Effect<A, E, R>, what: string) =>
  check.pipe(
    Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo("20 seconds"))),
    Effect.mapError(() => new Error(`not within 20 s: ${what}`))
  )

describe("paper venue state in the key-value bucket (NATS feed)", { sequential: true }, () => {
  it.scopedLive("a feed restart keeps the resting order: the cancel after it works and the final report arrives", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const nats = { servers: [server.url], ackWaitMs: 1_000 }
      const feed = (scope: Scope.Scope) =>
        Effect.gen(function*() {
          const ctx = yield* Layer.buildWithScope(
            layerNatsFeed({ symbols: [SYM], providers: ["sim-a"], nats: { ...nats, name: "feed" } }),
            scope
          )
          const pool = Context.get(ctx, Pool)
          const orchestrator = Context.get(ctx, Orchestrator)
          const tick = Effect.suspend(() => {
            const e = pool.acquireEvent()
            e.provider = "sim-a"
            e.symbol = SYM
            e.kind = "ticker"
            e.seqProvider = 1
            e.traceId = "tick"
            e.payload = Ticker.make({
              bidPrice: decimal("90"),
              bidQty: decimal("1"),
              askPrice: decimal("100"),
              askQty: decimal("1"),
              exchangeTs: 0
            })
            return orchestrator.ingest(e)
          })
          return { venue: Context.get(ctx, ExecutionVenue), tick }
        })
      const client = yield* Layer.build(
        CommandPublisher.Default.pipe(
          Layer.provideMerge(NatsConnection.Default),
          Layer.provide(NatsConfig.layer({ ...nats, name: "alice" }))
        )
      )
      const commands = Context.get(client, CommandPublisher)
      const { jsm } = Context.get(client, NatsConnection)
      const status = (venue: ExecutionVenue["Type"]) =>
        venue.query(QueryOrder.make({ commandId: "q", consumerId: "alice", clientOrderId: "rest-1" })).pipe(
          Effect.map((o) => o.status)
        )

      const firstScope = yield* Scope.make()
      const first = yield* feed(firstScope)
      yield* first.tick
      yield* commands.submit(order("rest-1", "50"))
      yield* eventually(Effect.flatMap(status(first.venue), (s) => s === "new" ? Effect.void : Effect.fail("no")), "resting")
      yield* Scope.close(firstScope, Exit.void)

      const secondScope = yield* Scope.make()
      yield* Effect.addFinalizer(() => Scope.close(secondScope, Exit.void))
      const second = yield* feed(secondScope)
      assert.strictEqual(second.venue.stats().restored, 1)
      assert.strictEqual(yield* status(second.venue), "new")
      yield* commands.submit(CancelOrder.make({ commandId: "cancel-1", consumerId: "alice", clientOrderId: "rest-1" }))
      yield* eventually(
        Effect.flatMap(status(second.venue), (s) => s === "canceled" ? Effect.void : Effect.fail("no")),
        "canceled after the restart"
      )
      // alice's critical stream: the new report before the restart, the final one after it
      const info = yield* eventually(
        Effect.tryPromise(() => jsm.streams.info(CRITICAL_STREAM, { subjects_filter: criticalSubject("alice") })).pipe(
          Effect.filterOrFail((i) => i.state.messages >= 2)
        ),
        "the reports stored"
      )
      assert.isAtLeast(info.state.messages, 2)
      const reports = [] as Array<string>
      for (let seq = 1; seq <= info.state.last_seq; seq++) {
        const m = yield* Effect.tryPromise(() => jsm.streams.getMessage(CRITICAL_STREAM, { seq })).pipe(Effect.option)
        if (m._tag === "None" || m.value === null || m.value.subject !== criticalSubject("alice")) continue
        decodeFrame(m.value.data, unpooled, {
          onEvent: (e) => {
            if (e.payload instanceof ExecReportPayload) reports.push(`${e.payload.reportSeq} ${e.payload.status}`)
          },
          onError: (error) => assert.fail(`a stored critical frame does not decode: ${error.message}`)
        })
      }
      assert.deepStrictEqual(reports, ["1 new", "2 canceled"], "the final report follows the one before the restart")
    }))
})
