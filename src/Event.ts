/**
 * The pooled, in-process form of the canonical events in `schema/Event.ts`.
 *
 * These objects are mutable and reused: they come from the `Pool`, have exactly
 * one owner at a time, and go back through the `Recycler`. Payloads are
 * immutable values, so a clone shares them and copies only the envelope.
 */
import type {
  EventKind,
  EventPayload,
  ExecReportPayload,
  MarketKind,
  MergedPayload,
  WireAny,
  WireEvent,
  WireExecReport,
  WireMergedEvent
} from "../schema/Event.js"
import { EVENT_SCHEMA_VERSION } from "../schema/Event.js"
import type { SharedHolders } from "./internal/sharing.js"

/** The pooled types: one pool each. */
export type PoolType = "Event" | "MergedEvent" | "ExecReport"
export const poolTypes: ReadonlyArray<PoolType> = ["Event", "MergedEvent", "ExecReport"]

/** Fields every pooled event carries. */
abstract class Envelope {
  abstract readonly _pool: PoolType
  abstract kind: EventKind
  /** @internal ownership state: true from acquire until recycle (the double-put guard). */
  _owned = false
  /**
   * @internal ownership period: bumped by the pool at every acquire and clone.
   * A holder keeps the value it received (a `Generation`) and recycles with it,
   * so a holder whose period has ended is refused (see `Recycler`). Never reset
   * or copied.
   */
  _gen = 0
  /**
   * @internal the holders of this object while it is shared read-only among
   * several (a fan-out): made at its first share and reused, never reset or
   * copied (see `internal/sharing.ts`).
   */
  _share: SharedHolders | undefined = undefined
  traceId = ""
  provider = ""
  symbol = ""
  seqProvider: number | undefined = undefined
  /** The run of the feed that numbered `seqProvider` (on the wire, optional): a new epoch restarts the stream's ordering. */
  epoch: string | undefined = undefined
  /** Epoch microseconds. */
  ingestTs = 0
  routingVersion = 0
  /** @internal monotonic microseconds at which the dispatcher handed it over (latency telemetry; not on the wire). */
  _dispatchTs = 0
  /**
   * @internal epoch microseconds from `ingestTs` to the hand-over, measured once
   * per sampled event by the dispatcher (-1: not measured; a consumer then reads
   * the clock itself). Latency telemetry; not on the wire.
   */
  _ingestLagUs = -1
  /** @internal acknowledges a remote delivery once the consumer's lambda has run (not on the wire, not copied). */
  _ack: (() => void) | undefined = undefined
  /**
   * @internal gives a remote delivery back to its source, for redelivery now
   * rather than after its ack wait, when the event is dropped without its
   * lambda having run to the end: its consumer stopped (not on the wire, not copied).
   */
  _giveBack: (() => void) | undefined = undefined

  protected resetEnvelope(): void {
    this.traceId = ""
    this.provider = ""
    this.symbol = ""
    this.seqProvider = undefined
    this.epoch = undefined
    this.ingestTs = 0
    this.routingVersion = 0
    this._dispatchTs = 0
    this._ingestLagUs = -1
    this._ack = undefined
    this._giveBack = undefined
  }

  protected copyEnvelope(src: Envelope): void {
    this.traceId = src.traceId
    this.provider = src.provider
    this.symbol = src.symbol
    this.seqProvider = src.seqProvider
    this.epoch = src.epoch
    this.ingestTs = src.ingestTs
    this.routingVersion = src.routingVersion
    this._dispatchTs = src._dispatchTs
    this._ingestLagUs = src._ingestLagUs
  }

  protected fillEnvelope(w: WireAny): void {
    this.traceId = w.traceId
    this.provider = w.provider
    this.symbol = w.symbol
    this.seqProvider = w.seqProvider
    this.epoch = w.epoch
    this.ingestTs = w.ingestTs
    this.routingVersion = w.routingVersion
  }

  protected envelopeWire() {
    const base = {
      schemaVersion: EVENT_SCHEMA_VERSION,
      traceId: this.traceId,
      provider: this.provider,
      symbol: this.symbol,
      ingestTs: this.ingestTs,
      routingVersion: this.routingVersion
    }
    const sequenced = this.seqProvider === undefined ? base : { ...base, seqProvider: this.seqProvider }
    return this.epoch === undefined ? sequenced : { ...sequenced, epoch: this.epoch }
  }
}

/** A market-data event, or a ControlAck / ControlResult. */
export class Event extends Envelope {
  readonly _pool = "Event" as const
  kind: EventKind = "trade"
  payload: EventPayload | undefined = undefined

  reset(): void {
    this.resetEnvelope()
    this.kind = "trade"
    this.payload = undefined
  }

  copyFrom(src: Event): void {
    this.copyEnvelope(src)
    this.kind = src.kind
    this.payload = src.payload
  }

  fill(w: WireEvent): void {
    this.fillEnvelope(w)
    this.kind = w.kind
    this.payload = w.payload
  }

  toWire(): WireEvent {
    return { _tag: "Event", ...this.envelopeWire(), kind: this.kind, payload: this.payload! }
  }
}

/** One event composed by the Orchestrator from the fragments of a merge window. */
export class MergedEvent extends Envelope {
  readonly _pool = "MergedEvent" as const
  kind: MarketKind = "ticker"
  mergeId = ""
  sourceProviders: ReadonlyArray<string> = []
  payload: MergedPayload | undefined = undefined

  reset(): void {
    this.resetEnvelope()
    this.kind = "ticker"
    this.mergeId = ""
    this.sourceProviders = []
    this.payload = undefined
  }

  copyFrom(src: MergedEvent): void {
    this.copyEnvelope(src)
    this.kind = src.kind
    this.mergeId = src.mergeId
    this.sourceProviders = src.sourceProviders
    this.payload = src.payload
  }

  fill(w: WireMergedEvent): void {
    this.fillEnvelope(w)
    this.kind = w.kind
    this.mergeId = w.mergeId
    this.sourceProviders = w.sourceProviders
    this.payload = w.payload
  }

  toWire(): WireMergedEvent {
    return {
      _tag: "MergedEvent",
      ...this.envelopeWire(),
      kind: this.kind,
      mergeId: this.mergeId,
      sourceProviders: this.sourceProviders,
      payload: this.payload!
    }
  }
}

/** An execution report: critical, lossless, in order per order. */
export class ExecReport extends Envelope {
  readonly _pool = "ExecReport" as const
  readonly kind = "exec_report" as const
  payload: ExecReportPayload | undefined = undefined

  reset(): void {
    this.resetEnvelope()
    this.payload = undefined
  }

  copyFrom(src: ExecReport): void {
    this.copyEnvelope(src)
    this.payload = src.payload
  }

  fill(w: WireExecReport): void {
    this.fillEnvelope(w)
    this.payload = w.payload
  }

  toWire(): WireExecReport {
    return { _tag: "ExecReport", ...this.envelopeWire(), kind: "exec_report", payload: this.payload! }
  }
}

/** Any pooled event a consumer can receive. */
export type AnyEvent = Event | MergedEvent | ExecReport

/** The class of each pool type. */
export interface PooledByType {
  Event: Event
  MergedEvent: MergedEvent
  ExecReport: ExecReport
}

export const constructors: { readonly [K in PoolType]: new() => PooledByType[K] } = {
  Event,
  MergedEvent,
  ExecReport
}
