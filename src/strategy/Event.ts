/**
 * The events a strategy receives: one discriminated union on `kind`, where a
 * single check narrows the payload.
 *
 * ```ts
 * if (event.kind === "ticker") event.payload.bidPrice        // a Ticker
 * if (event.kind === "merged_ticker") event.payload.bestBid  // a MergedTicker
 * if (event.kind === "exec_report") event.payload.status     // an ExecReportPayload
 * ```
 *
 * Merged events are distinct kinds (`merged_ticker`, `merged_book`,
 * `merged_trades`): a merged ticker never passes for a venue's ticker.
 *
 * ## No copy, no allocation
 * These types describe the pooled objects of `src/Event.ts` as they are: the
 * narrowing is type-level only. A venue's event (`Event`) and an execution
 * report (`ExecReport`) reach the handler as the pooled object itself; their
 * `kind` always matches their payload's `_tag` (the wire schema and every
 * producer enforce it). A merged event's pooled `kind` is its market kind
 * (`ticker`), which is the Orchestrator's stream key; the strategy sees it
 * through one reusable view per strategy (`MergedView`) whose `kind` is the
 * payload's tag: filled in place before the handler runs, cleared after it.
 * Nothing is allocated per event on this path.
 *
 * Every event is lent for the duration of the handler's effect: it goes back
 * to its pool afterwards and is reused. Copy what you keep (payloads are
 * immutable values: keeping a payload is safe; keeping the event is not).
 */
import type {
  BookDelta,
  BookSnapshot,
  ControlAckPayload,
  ControlResultPayload,
  ExecReportPayload,
  MergedBook,
  MergedPayload,
  MergedTicker,
  MergedTrades,
  Ticker,
  Trade
} from "../../schema/Event.js"
import type { AnyEvent, MergedEvent } from "../Event.js"

/** What every event carries besides its kind and payload. */
export interface EventEnvelope {
  /** The id that follows the event through logs and replies. */
  readonly traceId: string
  /** The venue (or `merged` sources' first venue for merged events). */
  readonly provider: string
  readonly symbol: string
  /** The venue's sequence number, when it has one. */
  readonly seqProvider: number | undefined
  /** Epoch microseconds at which the gateway took it in. */
  readonly ingestTs: number
  /** The routing version it was stamped with. */
  readonly routingVersion: number
}

interface Of<K extends string, P> extends EventEnvelope {
  readonly kind: K
  readonly payload: P
}

export type TradeEvent = Of<"trade", Trade>
export type TickerEvent = Of<"ticker", Ticker>
export type BookSnapshotEvent = Of<"book_snapshot", BookSnapshot>
export type BookDeltaEvent = Of<"book_delta", BookDelta>
export type ExecReportEvent = Of<"exec_report", ExecReportPayload>
export type ControlAckEvent = Of<"control_ack", ControlAckPayload>
export type ControlResultEvent = Of<"control_result", ControlResultPayload>

/** A merged event: one per merge window, with its id and the venues it was composed from. */
interface MergedOf<K extends MergedPayload["_tag"], P> extends Of<K, P> {
  readonly mergeId: string
  readonly sourceProviders: ReadonlyArray<string>
}
export type MergedTickerEvent = MergedOf<"merged_ticker", MergedTicker>
export type MergedBookEvent = MergedOf<"merged_book", MergedBook>
export type MergedTradesEvent = MergedOf<"merged_trades", MergedTrades>

/** Market data from one venue. */
export type MarketEvent = TradeEvent | TickerEvent | BookSnapshotEvent | BookDeltaEvent
/** Market data composed across venues. */
export type MergedMarketEvent = MergedTickerEvent | MergedBookEvent | MergedTradesEvent
/** Never dropped, never coalesced: replies to commands and execution reports. */
export type CriticalEvent = ExecReportEvent | ControlAckEvent | ControlResultEvent

/** Everything a strategy can receive: `kind` narrows `payload`. */
export type StrategyEvent = MarketEvent | MergedMarketEvent | CriticalEvent
export type StrategyEventKind = StrategyEvent["kind"]
/** The event of one kind: `EventOf<"ticker">` is `TickerEvent`. */
export type EventOf<K extends StrategyEventKind> = Extract<StrategyEvent, { readonly kind: K }>

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

export const isMarket = (e: StrategyEvent): e is MarketEvent =>
  e.kind === "trade" || e.kind === "ticker" || e.kind === "book_snapshot" || e.kind === "book_delta"

export const isMerged = (e: StrategyEvent): e is MergedMarketEvent =>
  e.kind === "merged_ticker" || e.kind === "merged_book" || e.kind === "merged_trades"

export const isCriticalEvent = (e: StrategyEvent): e is CriticalEvent =>
  e.kind === "exec_report" || e.kind === "control_ack" || e.kind === "control_result"

/** The best bid and ask of a ticker or a merged ticker, as exact decimal strings; undefined for other kinds. */
export const quoteOf = (e: StrategyEvent): { readonly bid: string; readonly ask: string } | undefined =>
  e.kind === "ticker"
    ? { bid: e.payload.bidPrice, ask: e.payload.askPrice }
    : e.kind === "merged_ticker"
    ? { bid: e.payload.bestBid, ask: e.payload.bestAsk }
    : undefined

// ---------------------------------------------------------------------------
// From the pooled objects (internal to the SDK)
// ---------------------------------------------------------------------------

/**
 * One reusable view of merged events for one strategy: `present` fills it in
 * place from the pooled `MergedEvent` (its `kind` becomes the payload's tag)
 * and `clear` drops its references once the handler is done. One strategy
 * handles one event at a time, so one view is enough.
 */
export class MergedView {
  kind: MergedPayload["_tag"] = "merged_ticker"
  payload: MergedPayload | undefined = undefined
  traceId = ""
  provider = ""
  symbol = ""
  seqProvider: number | undefined = undefined
  ingestTs = 0
  routingVersion = 0
  mergeId = ""
  sourceProviders: ReadonlyArray<string> = []

  present(e: MergedEvent): MergedMarketEvent {
    const payload = e.payload!
    this.kind = payload._tag
    this.payload = payload
    this.traceId = e.traceId
    this.provider = e.provider
    this.symbol = e.symbol
    this.seqProvider = e.seqProvider
    this.ingestTs = e.ingestTs
    this.routingVersion = e.routingVersion
    this.mergeId = e.mergeId
    this.sourceProviders = e.sourceProviders
    return this as unknown as MergedMarketEvent
  }

  clear(): void {
    this.payload = undefined
    this.sourceProviders = []
  }
}

/**
 * The strategy's view of a pooled event: the object itself for a venue's
 * event or a report (type-level only), the reusable view for a merged one.
 * Undefined for an event without a payload (never delivered by the gateway).
 */
export const strategyEventOf = (e: AnyEvent, merged: MergedView): StrategyEvent | undefined => {
  if (e.payload === undefined) return undefined
  return e._pool === "MergedEvent" ? merged.present(e) : (e as unknown as StrategyEvent)
}
