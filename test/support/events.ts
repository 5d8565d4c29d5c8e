/**
 * Test support: building pooled events and waiting on fibers without sleeping.
 */
import { Effect } from "effect"
import {
  ControlAckPayload,
  decimal,
  ExecReportPayload,
  type MarketKind,
  Ticker,
  Trade
} from "../../schema/Event.js"
import type { Event, ExecReport } from "../../src/Event.js"
import type { Pool } from "../../src/Pool.js"

export const ticker = (bid: string, ask = "64000.50") =>
  Ticker.make({ bidPrice: decimal(bid), bidQty: decimal("1"), askPrice: decimal(ask), askQty: decimal("2"), exchangeTs: 1 })

const trade = (price: string, id = "t") =>
  Trade.make({ tradeId: id, price: decimal(price), quantity: decimal("0.1"), side: "buy", exchangeTs: 1 })

let traceCounter = 0

export interface MarketOptions {
  readonly provider?: string
  readonly symbol?: string
  readonly kind?: MarketKind
  readonly seq?: number | undefined
  readonly ingestTs?: number
  readonly routingVersion?: number
  readonly bid?: string
}

export const market = (pool: Pool, o: MarketOptions = {}): Event => {
  const e = pool.acquireEvent()
  e.provider = o.provider ?? "sim-a"
  e.symbol = o.symbol ?? "BTC-USDT"
  e.kind = o.kind ?? "ticker"
  e.payload = e.kind === "trade" ? trade(o.bid ?? "64000.10") : ticker(o.bid ?? "64000.10")
  e.seqProvider = o.seq
  e.ingestTs = o.ingestTs ?? 0
  e.routingVersion = o.routingVersion ?? 0
  e.traceId = `trace-${++traceCounter}`
  return e
}

export const execReport = (pool: Pool, consumerId: string, reportSeq: number, routingVersion = 0): ExecReport => {
  const r = pool.acquireExecReport()
  r.provider = "paper"
  r.symbol = "BTC-USDT"
  r.routingVersion = routingVersion
  r.traceId = `exec-${consumerId}-${reportSeq}`
  r.payload = ExecReportPayload.make({
    orderId: "o-1",
    clientOrderId: "c-1",
    consumerId,
    side: "buy",
    orderType: "limit",
    status: "new",
    price: decimal("64000"),
    quantity: decimal("1"),
    filledQty: decimal("0"),
    reportSeq
  })
  return r
}

export const controlAck = (pool: Pool, consumerId: string, appliesToVersion: number): Event => {
  const e = pool.acquireEvent()
  e.kind = "control_ack"
  e.provider = "control"
  e.symbol = ""
  e.traceId = `ack-${consumerId}-${appliesToVersion}`
  e.payload = ControlAckPayload.make({ commandId: `cmd-${appliesToVersion}`, command: "FlipRouting", consumerId, appliesToVersion })
  return e
}

/**
 * Yields to other fibers until `done()` holds; fails after `maxYields`
 * (a condition that never comes is a test failure, not a hang).
 */
export const eventually = (done: () => boolean, what = "condition", maxYields = 1_000_000) =>
  Effect.gen(function*() {
    for (let i = 0; i < maxYields; i++) {
      if (done()) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })
