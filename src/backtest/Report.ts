/**
 * The backtest report: what the strategy did on the recording (orders, fills,
 * positions, balances, P&L, fees, drawdown, exposure over time) as one JSON
 * document, and an HTML page that draws it (equity curve and drawdown with
 * uPlot, inlined from the installed package: the page needs no network).
 *
 * Equity is the account's P&L in the quote asset: realized + unrealized -
 * fees, summed over its positions (meaningful with one quote asset, which
 * `quotes` lists; with several the figures add amounts of different assets).
 * Drawdown at a point is equity minus the highest equity before it (<= 0);
 * the maximum drawdown is the lowest of these. Exposure is the sum of
 * |position| x mark over the positions.
 *
 * Every figure comes from the recorded timestamps and the paper venue, never
 * from the wall clock, so two runs of the same backtest give the same
 * document except `run` (how long it took, where it was written).
 */
import DecimalJs from "decimal.js"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import type { Balance, PortfolioSnapshot, Position } from "../ExecutionVenue.js"

export const REPORT_FORMAT = "meltica.backtest/1"

export interface FillRow {
  /** Epoch microseconds (recorded time). */
  readonly ts: number
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly side: string
  readonly price: string
  readonly quantity: string
  readonly status: string
}

export interface OrderRow {
  readonly orderId: string
  readonly clientOrderId: string
  readonly consumerId: string
  readonly symbol: string
  readonly side: string
  readonly type: string
  readonly status: string
  readonly price?: string
  readonly quantity: string
  readonly filledQty: string
  readonly reports: number
  readonly reason?: string
  /** Epoch microseconds of its first and last report. */
  readonly firstTs: number
  readonly lastTs: number
}

export interface EquityPoint {
  /** Epoch microseconds (recorded time). */
  readonly ts: number
  readonly equity: number
  readonly drawdown: number
  readonly exposure: number
}

export interface BacktestReport {
  readonly format: typeof REPORT_FORMAT
  readonly data: string
  readonly strategies: ReadonlyArray<string>
  readonly venues: ReadonlyArray<{ readonly name: string; readonly symbols: ReadonlyArray<string> }>
  /** Recorded time replayed, ISO 8601. */
  readonly from: string | null
  readonly to: string | null
  readonly replay: {
    readonly events: number
    readonly eventsByKind: Readonly<Record<string, number>>
    readonly filesRead: number
    readonly timersFired: number
    readonly skipped: ReadonlyArray<{ readonly file: string; readonly reason: string }>
  }
  readonly summary: {
    readonly quotes: ReadonlyArray<string>
    readonly pnl: string
    readonly realizedPnl: string
    readonly unrealizedPnl: string
    readonly fees: string
    readonly maxDrawdown: number
    readonly maxExposure: number
    readonly orders: number
    readonly fills: number
    readonly filledOrders: number
    readonly canceledOrders: number
    readonly rejectedOrders: number
  }
  readonly orders: ReadonlyArray<OrderRow>
  readonly fills: ReadonlyArray<FillRow>
  readonly positions: ReadonlyArray<Position>
  readonly balances: ReadonlyArray<Balance>
  readonly byConsumer: PortfolioSnapshot["byConsumer"]
  readonly equity: ReadonlyArray<EquityPoint>
  /** How this run went (differs between runs of the same backtest). */
  readonly run: { readonly wallMs: number; readonly eventsPerSec: number; readonly html?: string; readonly json?: string }
}

const sum = (xs: ReadonlyArray<string | undefined>): DecimalJs => xs.reduce((a, x) => (x === undefined ? a : a.plus(x)), new DecimalJs(0))

/** Equity and exposure of a portfolio now. */
export const equityOf = (p: PortfolioSnapshot): { readonly equity: number; readonly exposure: number } => ({
  equity: sum(p.positions.map((x) => x.realizedPnl)).plus(sum(p.positions.map((x) => x.unrealizedPnl))).minus(sum(p.positions.map((x) => x.fees))).toNumber(),
  exposure: sum(p.positions.map((x) => x.notional)).toNumber()
})

/** P&L totals of the account's positions, as exact decimals. */
export const totalsOf = (p: PortfolioSnapshot) => {
  const realized = sum(p.positions.map((x) => x.realizedPnl))
  const unrealized = sum(p.positions.map((x) => x.unrealizedPnl))
  const fees = sum(p.positions.map((x) => x.fees))
  return {
    quotes: [...new Set(p.positions.map((x) => x.quote))].sort(),
    pnl: realized.plus(unrealized).minus(fees).toFixed(),
    realizedPnl: realized.toFixed(),
    unrealizedPnl: unrealized.toFixed(),
    fees: fees.toFixed()
  }
}

/** Drawdown of each point against the running peak, and the largest. */
export const withDrawdown = (
  points: ReadonlyArray<{ readonly ts: number; readonly equity: number; readonly exposure: number }>
): { readonly points: Array<EquityPoint>; readonly maxDrawdown: number } => {
  let peak = Number.NEGATIVE_INFINITY
  let max = 0
  const out = points.map((p) => {
    peak = Math.max(peak, p.equity)
    const drawdown = p.equity - peak
    max = Math.min(max, drawdown)
    return { ts: p.ts, equity: p.equity, drawdown, exposure: p.exposure }
  })
  return { points: out, maxDrawdown: max }
}

/** The report as JSON text, without its `run` part (byte-identical across runs of the same backtest). */
export const deterministicJson = (r: BacktestReport): string => {
  const { run: _run, ...rest } = r
  return JSON.stringify(rest)
}

const asset = (file: string): string => readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${file}`), "utf8")

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/** JSON inside a <script> element: nothing in it can close the element. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, "\\u003c")

/** A self-contained HTML page: summary, equity and drawdown charts, exposure, positions, orders and fills. */
export const renderHtml = (r: BacktestReport): string => {
  const s = r.summary
  const rows = (items: ReadonlyArray<ReadonlyArray<string | number | undefined>>) =>
    items.map((cells) => `<tr>${cells.map((c) => `<td>${escapeHtml(c === undefined ? "" : String(c))}</td>`).join("")}</tr>`).join("\n")
  const shownFills = r.fills.slice(0, 500)
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Backtest: ${escapeHtml(r.strategies.join(", "))}</title>
<style>${asset("uPlot.min.css")}
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.muted{color:#666} .cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px} table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:right} th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left} .neg{color:#b00} .pos{color:#070}
</style></head><body>
<h1>Backtest: ${escapeHtml(r.strategies.join(", "))}</h1>
<div class="muted">${escapeHtml(r.data)} &middot; ${escapeHtml(r.from ?? "-")} to ${escapeHtml(r.to ?? "-")} &middot; ${r.replay.events.toLocaleString("en")} events &middot; venues ${escapeHtml(r.venues.map((v) => `${v.name} (${v.symbols.join(", ")})`).join("; "))}</div>
<div class="cards" id="summary">
<div class="card">P&amp;L (${escapeHtml(s.quotes.join("+") || "-")})<b class="${Number(s.pnl) < 0 ? "neg" : "pos"}">${escapeHtml(s.pnl)}</b></div>
<div class="card">realized<b>${escapeHtml(s.realizedPnl)}</b></div>
<div class="card">unrealized<b>${escapeHtml(s.unrealizedPnl)}</b></div>
<div class="card">fees<b>${escapeHtml(s.fees)}</b></div>
<div class="card">max drawdown<b class="neg">${s.maxDrawdown.toFixed(4)}</b></div>
<div class="card">max exposure<b>${s.maxExposure.toFixed(2)}</b></div>
<div class="card">orders / fills<b>${s.orders} / ${s.fills}</b></div>
</div>
<h2>Equity</h2><div id="equity"></div>
<h2>Drawdown</h2><div id="drawdown"></div>
<h2>Exposure</h2><div id="exposure"></div>
<h2>Positions</h2>
<table><tr><th>venue</th><th>symbol</th><th>quantity</th><th>avg entry</th><th>mark</th><th>realized</th><th>unrealized</th><th>fees</th></tr>
${rows(r.positions.map((p) => [p.venue, p.symbol, p.quantity, p.avgEntry, p.mark, p.realizedPnl, p.unrealizedPnl, p.fees]))}
</table>
<h2>Balances</h2>
<table><tr><th>venue</th><th>asset</th><th>total</th><th>available</th><th>reserved</th></tr>
${rows(r.balances.map((b) => [b.venue, b.asset, b.total, b.available, b.reserved]))}
</table>
<h2>Fills${r.fills.length > shownFills.length ? ` (first ${shownFills.length} of ${r.fills.length}; all in the JSON report)` : ""}</h2>
<table id="fills"><tr><th>time</th><th>strategy</th><th>order</th><th>symbol</th><th>side</th><th>price</th><th>quantity</th><th>status</th></tr>
${rows(shownFills.map((f) => [new Date(f.ts / 1000).toISOString(), f.consumerId, f.clientOrderId, f.symbol, f.side, f.price, f.quantity, f.status]))}
</table>
<script>${asset("uPlot.iife.min.js")}</script>
<script>
const report = ${scriptJson({ equity: r.equity })};
const ts = report.equity.map((p) => p.ts / 1e6);
const width = Math.max(600, Math.min(1200, window.innerWidth - 60));
const chart = (id, label, values, color, fill) => new uPlot({
  width, height: 240, scales: { x: { time: true } },
  series: [{}, { label, stroke: color, fill, width: 1.5 }],
  axes: [{}, { size: 70 }]
}, [ts, values], document.getElementById(id));
window.charts = ts.length === 0 ? [] : [
  chart("equity", "equity", report.equity.map((p) => p.equity), "#1565c0", "rgba(21,101,192,0.08)"),
  chart("drawdown", "drawdown", report.equity.map((p) => p.drawdown), "#c62828", "rgba(198,40,40,0.15)"),
  chart("exposure", "exposure", report.equity.map((p) => p.exposure), "#555", undefined)
];
</script>
</body></html>
`
}
