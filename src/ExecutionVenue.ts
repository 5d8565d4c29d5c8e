/**
 * The execution venue port: what the Control Plane asks of a venue, and where
 * the venue's execution reports go. The paper venue (`execution/Paper.ts`) is
 * the embedded default; a live adapter per venue implements the same port.
 *
 * Orders come in as `SubmitOrder` / `CancelOrder` / `QueryOrder` commands;
 * execution reports go out, one pooled `ExecReport` at a time, through the
 * `ExecReportSink` port (ownership passes to the sink). Reports are critical:
 * none is ever dropped, and the reports of one order reach the sink in order
 * (`reportSeq` 1, 2, 3, ...).
 *
 * A refusal is one of the typed rejections of `schema/Rejection.ts`, which the
 * Control Plane sends back as it is in the command's `ControlResult`.
 */
import { Context, type Effect, Layer } from "effect"
import type { CancelOrder, QueryOrder, SubmitOrder } from "../schema/Control.js"
import type { Decimal, OrderStatus, OrderType, Side } from "../schema/Event.js"
import type { OrderNotCancelable, OrderNotFound, OrderRejection } from "../schema/Rejection.js"
import type { AnyEvent, ExecReport } from "./Event.js"

/** An immutable snapshot of an order. */
export interface OrderView {
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly side: Side
  readonly type: OrderType
  readonly status: OrderStatus
  /** Limit price (limit orders only). */
  readonly price?: Decimal
  readonly quantity: Decimal
  readonly filledQty: Decimal
  readonly leavesQty: Decimal
  /** Mean fill price, once something filled. */
  readonly avgPrice?: Decimal
  /** Execution reports emitted for the order so far. */
  readonly reports: number
  /** Why it was rejected or canceled by the venue. */
  readonly reason?: string
  /** Epoch microseconds. */
  readonly submittedTs: number
  /** Epoch microseconds. */
  readonly updatedTs: number
}

export interface ExecutionVenueStats {
  /** Orders taken since start. */
  readonly orders: number
  /** Orders the venue still knows (every open one, and the newest closed ones it keeps for idempotency). */
  readonly retained: number
  readonly resting: number
  readonly filled: number
  readonly canceled: number
  readonly rejected: number
  readonly fills: number
  /** Resubmissions answered with the existing order. */
  readonly duplicates: number
  /** Submissions refused because another consumer uses the clientOrderId. */
  readonly conflicts: number
  readonly reportsEmitted: number
  /** Reports produced but not yet handed to the sink. */
  readonly reportsPending: number
  /** Symbols with a market view. */
  readonly symbols: number
  /** Market data events that changed a view. */
  readonly marketUpdates: number
  /** Open orders restored from the store at start. */
  readonly restored: number
  /** Loads and saves of the store that failed (logged; the reports still went out). */
  readonly storeFailures: number
  /** Per consumer (strategy), in order of its first order. */
  readonly byConsumer: ReadonlyArray<ConsumerOrderStats>
}

/** One consumer's orders on the venue (the status page's strategy table). */
export interface ConsumerOrderStats {
  readonly consumerId: string
  /** Orders taken (restored ones included), rejected ones included. */
  readonly orders: number
  readonly fills: number
  readonly rejected: number
  /** Orders working now. */
  readonly resting: number
}

export interface ExecutionVenueShape {
  /**
   * Idempotent by `clientOrderId`: a resubmission with the same terms answers
   * with the existing order; with other terms it is a `DuplicateClientOrderId`.
   */
  readonly submit: (order: SubmitOrder) => Effect.Effect<OrderView, OrderRejection>
  readonly cancel: (cmd: CancelOrder) => Effect.Effect<OrderView, OrderNotFound | OrderNotCancelable>
  readonly query: (cmd: QueryOrder) => Effect.Effect<OrderView, OrderNotFound>
  /** Feeds the venue's view of the book. Does not take ownership: the caller recycles the event. */
  readonly onMarketData: (event: AnyEvent) => Effect.Effect<void>
  /**
   * Where the current routing version is read: every report is stamped with
   * the version current when it was created (FR-014). The Orchestrator, which
   * owns the version, connects itself here; until then reports carry 0.
   */
  readonly followRoutingVersion: (current: () => number) => void
  readonly stats: () => ExecutionVenueStats
}

/** Where execution reports go. Ownership of each pooled report passes to the sink. */
export class ExecReportSink extends Context.Tag("meltica/ExecReportSink")<
  ExecReportSink,
  (report: ExecReport) => Effect.Effect<void>
>() {
  static readonly layer = (sink: (report: ExecReport) => Effect.Effect<void>): Layer.Layer<ExecReportSink> =>
    Layer.succeed(ExecReportSink, sink)
}

export class ExecutionVenue extends Context.Tag("meltica/ExecutionVenue")<ExecutionVenue, ExecutionVenueShape>() {}
