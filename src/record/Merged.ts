/**
 * Recording the Orchestrator's merged events (`record.merged: true`), beside
 * the venues' own streams, in the same files (`Format.ts`) under the merged
 * events' own provider name, `merged`.
 *
 * Rules:
 * - Where: merged events leave the Orchestrator through `Dispatcher.dispatch`.
 *   When they are recorded, the Orchestrator is given a Dispatcher that shows
 *   each merged event to the recorder first (`withMergedTap`); otherwise
 *   nothing is in the way. (The Data Bus would see a merged stream only when
 *   a consumer subscribes to it, and once per subscriber.)
 * - What: the recording's columns are the canonical kinds', so a merged event
 *   is written as the canonical rows a consumer of the merged stream acts on:
 *   a merged ticker as a ticker (the best bid and ask, each with the size its
 *   venue shows, stamped with the merge's time); a merged book as a consistent
 *   snapshot of the aggregated levels (the total size at each price); merged
 *   trades as one trade row each, its id prefixed with its venue
 *   (`binance:123`). Per-venue splits and the missing venues are not kept: the
 *   venues' own streams, recorded beside, hold them.
 * - Ownership: the tap reads the event and builds new payloads; it keeps
 *   nothing of the pooled event, which goes on to the Dispatcher unchanged.
 * - Replay: the merged streams were made from the venues' events. Replayed
 *   with them, the market would come in twice (the venues' events, which the
 *   Orchestrator merges again, and the recorded merged rows as a provider of
 *   their own), so a backtest reads the venues' streams only, unless its
 *   selection names providers: `providers: ["merged"]` replays the merged
 *   streams alone (`venuesByDefault`).
 */
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { MergedPayload } from "../../schema/Event.js"
import { BookSnapshot, Ticker, Trade } from "../../schema/Event.js"
import { Dispatcher } from "../Dispatcher.js"
import { Event, type MergedEvent } from "../Event.js"
import { Providers } from "../Provider.js"
import { listRecording, type ReplaySelection } from "../replay/Reader.js"
import { layerRecording, makeRecorder, type Recorder, type RecorderOptions, RecordingFigures } from "./Recorder.js"

/** The provider name merged events carry (set by the Orchestrator), and their streams' directory in a recording. */
export const MERGED_PROVIDER = "merged"

/**
 * An instance of a payload class from fields already valid (taken from a
 * merged payload, itself made of validated venue payloads): the prototype and
 * the fields, what the constructor builds, for a twentieth of its cost (about
 * 100 ns against 2 us per ticker, measured on a loaded machine), as
 * `Format.ts` does when reading.
 */
const instance = <A extends Trade | Ticker | BookSnapshot>(proto: A, tag: A["_tag"], fields: Omit<A, "_tag">): A => {
  const o = Object.assign(Object.create(proto), fields)
  o._tag = tag // a tagged class sets its tag last, as an own field
  return o as A
}

/** The canonical payloads recorded for a merged payload emitted at `ingestTs` (epoch microseconds). */
export const recordedPayloads = (payload: MergedPayload, ingestTs: number): ReadonlyArray<Trade | Ticker | BookSnapshot> => {
  switch (payload._tag) {
    case "merged_ticker": {
      const bid = payload.quotes.find((q) => q.provider === payload.bestBidProvider)
      const ask = payload.quotes.find((q) => q.provider === payload.bestAskProvider)
      // the merge names its best venues among its quotes; a payload that does not is not recorded
      if (bid === undefined || ask === undefined) return []
      return [instance<Ticker>(Ticker.prototype, "ticker", {
        bidPrice: payload.bestBid,
        bidQty: bid.bidQty,
        askPrice: payload.bestAsk,
        askQty: ask.askQty,
        exchangeTs: Math.floor(ingestTs / 1000)
      })]
    }
    case "merged_book":
      return [instance<BookSnapshot>(BookSnapshot.prototype, "book_snapshot", {
        bids: payload.bids.map((l) => [l.price, l.totalQty] as const),
        asks: payload.asks.map((l) => [l.price, l.totalQty] as const),
        state: "consistent"
      })]
    case "merged_trades":
      return payload.trades.map((t) =>
        instance<Trade>(Trade.prototype, "trade", {
          tradeId: `${t.provider}:${t.trade.tradeId}`,
          price: t.trade.price,
          quantity: t.trade.quantity,
          side: t.trade.side,
          exchangeTs: t.trade.exchangeTs
        })
      )
  }
}

/**
 * Where the tap sends merged events: to the recorder attached, if any. Built
 * once per application (a layer is built once however many layers use it),
 * shared by the tap under the Orchestrator and the recording layer above it.
 */
export class MergedRecording extends Context.Tag("meltica/MergedRecording")<MergedRecording, {
  /** Records a merged event with the recorder attached (reads it, keeps nothing of it). */
  readonly record: (event: MergedEvent) => void
  /** Sends merged events to `recorder` for the life of the scope (its rows count in the recorder's figures). */
  readonly attach: (recorder: Recorder) => Effect.Effect<void, never, Scope.Scope>
}>() {
  static readonly layer: Layer.Layer<MergedRecording> = Layer.sync(MergedRecording, () => {
    let recorder: Recorder | undefined
    // one envelope, never pooled, filled per row: the recorder copies its fields and keeps the payload
    const row = new Event()
    return {
      record: (e) => {
        if (recorder === undefined || e.payload === undefined) return
        row.provider = e.provider
        row.symbol = e.symbol
        row.kind = e.kind
        row.ingestTs = e.ingestTs
        row.seqProvider = undefined
        row.epoch = undefined
        for (const p of recordedPayloads(e.payload, e.ingestTs)) {
          row.payload = p
          recorder.record(row)
        }
        row.payload = undefined
      },
      attach: (r) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            recorder = r
          }),
          () =>
            Effect.sync(() => {
              recorder = undefined
            })
        )
    }
  })
}

/**
 * `orchestrator` (a layer that takes the Dispatcher) given a Dispatcher that
 * shows every merged event to `MergedRecording` before dispatching it.
 */
export const withMergedTap = <A, E, R>(orchestrator: Layer.Layer<A, E, R>): Layer.Layer<A, E, R | Dispatcher> =>
  orchestrator.pipe(
    Layer.provide(Layer.effect(
      Dispatcher,
      Effect.gen(function*() {
        const inner = yield* Dispatcher
        const merged = yield* MergedRecording
        return Dispatcher.make({
          ...inner,
          dispatch: (e) => {
            if (e._pool === "MergedEvent") merged.record(e)
            return inner.dispatch(e)
          },
          unsafeDispatch: (e) => {
            if (e._pool === "MergedEvent") merged.record(e)
            return inner.unsafeDispatch(e)
          }
        })
      })
    )),
    Layer.provide(MergedRecording.layer)
  )

/**
 * `layerRecording` (the providers, each recording what it hands on), and,
 * when `merged`, the Orchestrator's merged events into the same recorder
 * (the tap is `withMergedTap`, under the Orchestrator).
 */
export const layerRecordingWithMerged = (options: RecorderOptions | undefined, merged: boolean) =>
<E, R>(providers: Layer.Layer<Providers, E, R>): Layer.Layer<Providers | RecordingFigures, E, R> => {
  if (options === undefined || !merged) return layerRecording(options)(providers)
  return Layer.scopedContext(Effect.gen(function*() {
    const inner = yield* Providers
    const recorder = yield* makeRecorder(options)
    yield* (yield* MergedRecording).attach(recorder)
    yield* Effect.logInfo("recording the providers' events and the merged events").pipe(Effect.annotateLogs({ dir: options.dir }))
    return Context.make(Providers, recorder.wrap(inner)).pipe(
      Context.add(RecordingFigures, { recorder: recorder.stats, skipped: () => [] })
    )
  })).pipe(Layer.provide(Layer.merge(providers, MergedRecording.layer)))
}

/**
 * The selection a backtest replays: as given when it names providers;
 * otherwise every provider recorded in `dir` but the merged streams (see the
 * rules above).
 */
export const venuesByDefault = <S extends ReplaySelection>(dir: string, selection: S): S => {
  if (selection.providers !== undefined) return selection
  const recorded = new Set(listRecording(dir, selection).files.map((f) => f.provider))
  recorded.delete(MERGED_PROVIDER)
  return { ...selection, providers: [...recorded].sort() }
}
