/**
 * What the live venues' end-to-end tests share: a pool and a sink that keeps
 * the wire form of every report, the Node HTTP client and WebSocket
 * constructor, a log capture, and waiting on real I/O without sleeping (the
 * mock venues answer on the event loop; the Effect clock is the TestClock).
 */
import { assert } from "@effect/vitest"
import { Context, Effect, Layer, Logger } from "effect"
import { NodeHttpClient, NodeSocket } from "@effect/platform-node"
import { SubmitOrder } from "../../../schema/Control.js"
import { decimal, type WireExecReport } from "../../../schema/Event.js"
import { ExecReportSink } from "../../../src/ExecutionVenue.js"
import type { LiveAdapter } from "../../../src/execution/live/LiveAdapter.js"
import { makeLiveVenue } from "../../../src/execution/live/LiveVenue.js"
import { Pool } from "../../../src/Pool.js"
import { generationOf, Recycler } from "../../../src/Recycler.js"

export class Received extends Context.Tag("test/live/Received")<Received, Array<WireExecReport>>() {}
export class Logs extends Context.Tag("test/live/Logs")<Logs, Array<string>>() {}

const Sink = Layer.effect(
  ExecReportSink,
  Effect.gen(function*() {
    const recycler = yield* Recycler
    const received = yield* Received
    return (report) =>
      Effect.sync(() => {
        received.push(report.toWire())
        assert.isTrue(recycler.unsafeRecycle(report, generationOf(report)), "the sink owns each report exactly once")
      })
  })
)

/** Every log line, message and annotations, as text (the secret-grep tests read them). */
const captureLogs = (logs: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, message }) => {
      const ann: Record<string, unknown> = {}
      for (const [k, v] of annotations) ann[k] = v
      logs.push(`${JSON.stringify(message)} ${JSON.stringify(ann)}`)
    })
  )

export const makeLayer = () => {
  const logs: Array<string> = []
  return Sink.pipe(
    Layer.provideMerge(Layer.succeed(Received, [])),
    Layer.provideMerge(Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(Pool.layer({ debug: true })))),
    Layer.provideMerge(Layer.mergeAll(NodeHttpClient.layerUndici, NodeSocket.layerWebSocketConstructor)),
    Layer.provideMerge(Layer.succeed(Logs, logs)),
    Layer.provideMerge(captureLogs(logs))
  )
}

/** One turn of the Node event loop (I/O callbacks run), without a timer. */
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Waits, turn by turn, until `cond` holds; fails after `maxTurns` turns. */
export const until = (cond: () => boolean, what: string, maxTurns = 200_000): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < maxTurns; i++) {
      if (cond()) return
      yield* turn
    }
    assert.fail(`timed out waiting for ${what}`)
  })

/** The kinds (statuses) of the reports of one order, in the order they came. */
export const kindsOf = (received: ReadonlyArray<WireExecReport>, clientOrderId: string) =>
  received.filter((r) => r.payload.clientOrderId === clientOrderId).map((r) => r.payload.status)

/** The report sequence of one order: 1, 2, 3, ... without a gap. */
export const assertSequence = (received: ReadonlyArray<WireExecReport>, clientOrderId: string) => {
  const seqs = received.filter((r) => r.payload.clientOrderId === clientOrderId).map((r) => r.payload.reportSeq)
  assert.deepStrictEqual(seqs, seqs.map((_, i) => i + 1))
}

/** The terms a test varies; the rest of an order is fixed (a buy of 0.5 at the venue's default price). */
export type OrderTerms = Partial<{
  orderType: "limit" | "market"
  price: string
  quantity: string
  postOnly: boolean
  side: "buy" | "sell"
  timeInForce: "GTC" | "IOC" | "FOK"
}>

/** Builds strategy "strat-1"'s orders for one venue and symbol; a limit order is priced at `defaultPrice` unless told. */
export const orderTo = (venue: string, symbol: string, defaultPrice: string) => (clientOrderId: string, terms: OrderTerms = {}) =>
  SubmitOrder.make({
    commandId: `cmd-${clientOrderId}`,
    consumerId: "strat-1",
    clientOrderId,
    symbol,
    venue,
    side: terms.side ?? "buy",
    orderType: terms.orderType ?? "limit",
    quantity: decimal(terms.quantity ?? "0.5"),
    ...((terms.orderType ?? "limit") === "limit" ? { price: decimal(terms.price ?? defaultPrice) } : {}),
    ...(terms.postOnly === undefined ? {} : { postOnly: terms.postOnly }),
    ...(terms.timeInForce === undefined ? {} : { timeInForce: terms.timeInForce })
  })

/**
 * A live venue on the adapter `makeAdapter` makes (queried every second,
 * accepting answers for 10 s); when `awaitStream`, once its private stream is
 * subscribed and reconciled once. `another` is a second engine on the same
 * account (a fresh adapter and venue), as after a restart.
 */
export const liveVenueOn = <A extends LiveAdapter, E, R>(makeAdapter: Effect.Effect<A, E, R>, awaitStream: boolean) =>
  Effect.gen(function*() {
    const connect = (adapter: A) =>
      Effect.gen(function*() {
        const venue = yield* makeLiveVenue(adapter, { queryIntervalMs: 1_000, acceptWindowMs: 10_000 })
        if (awaitStream) {
          yield* until(() => venue.liveStats().connected && venue.liveStats().reconciliations >= 1, "the private stream")
        }
        return venue
      })
    const adapter = yield* makeAdapter
    const venue = yield* connect(adapter)
    const another = Effect.flatMap(makeAdapter, connect)
    const received = yield* Received
    const logs = yield* Logs
    return { adapter, venue, another, received, logs }
  })
