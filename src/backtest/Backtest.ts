/**
 * A backtest: an SDK strategy, unchanged, on a recording, against the paper
 * venue (its fees, balances, instrument rules, latency) behind the risk
 * checks, through the whole in-memory gateway on the replay's virtual clock.
 *
 * The gateway is the one `layers/` composes (`layerOn` with the replay's
 * providers in place of the configured venues), configured from a gateway
 * configuration (`--venue-config`: paper accounts, fees, risk, mailboxes,
 * dispatcher) whose `venues` become the recording's: one per recorded
 * provider, with the symbols it recorded. The examples are switched off, the
 * HTTP endpoints too.
 *
 * The replay starts once the strategies run (`Gateway.run`'s `onRunning`),
 * and the report is taken once the recording is exhausted and the pipeline
 * has settled: every execution report (seen as it leaves the venue), the
 * portfolio sampled every `sampleMs` of recorded time and at every fill. Then
 * the clock turns real and the gateway stops as it does on a signal.
 */
import type { Scope } from "effect"
import { Context, Data, Deferred, Effect, Either, Fiber, Layer } from "effect"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import type { GatewayConfig } from "../../schema/Config.js"
import type { InvalidConfig } from "../../schema/Errors.js"
import * as Config from "../Config.js"
import { DeadLetter } from "../DeadLetter.js"
import type { ExecReport } from "../Event.js"
import { ExecutionVenue } from "../ExecutionVenue.js"
import * as Gateway from "../Gateway.js"
import { Pool } from "../Pool.js"
import { Providers } from "../Provider.js"
import { Recycler } from "../Recycler.js"
import { venuesByDefault } from "../record/Merged.js"
import { makeRecorder, noRecorderStats, RecordingFigures } from "../record/Recorder.js"
import { listRecording, type ReplaySelection } from "../replay/Reader.js"
import { makeReplay, type Replay, replayStart, runOnReplay } from "../replay/Replay.js"
import { settle, VirtualClock } from "../replay/VirtualClock.js"
import type { StrategySpec } from "../strategy/Runner.js"
import {
  type BacktestReport,
  equityOf,
  type FillRow,
  type OrderRow,
  renderHtml,
  REPORT_FORMAT,
  totalsOf,
  withDrawdown
} from "./Report.js"

export class BacktestFailed extends Data.TaggedError("BacktestFailed")<{
  readonly data: string
  readonly reason: string
}> {
  override get message(): string {
    return `backtest on ${this.data} failed: ${this.reason}`
  }
}

export interface BacktestOptions extends ReplaySelection {
  /** The recording's directory. */
  readonly data: string
  readonly strategies: ReadonlyArray<StrategySpec>
  /** Where strategy files are resolved from (default: the working directory). */
  readonly base?: string | undefined
  /** A gateway configuration (raw, as parsed from YAML or JSON): paper accounts, fees, risk, mailboxes. */
  readonly venueConfig?: Record<string, unknown> | undefined
  readonly speed?: number | undefined
  /** Portfolio samples for the equity curve, in recorded milliseconds (default: 2,000 over the recording, at most one a second). */
  readonly sampleMs?: number | undefined
  /** Records what the replay feeds in, as a live gateway would (the recording overhead benchmark). */
  readonly record?: string | undefined
  /** With `record`: encode the files on the event loop instead of a worker thread (the benchmark's comparison). */
  readonly recordOnEventLoop?: boolean | undefined
  /** Where the report is written (`report.json`, `report.html`); none when absent. */
  readonly out?: string | undefined
}

/** What `Gateway.run` and the report need of the application layer. */
type GatewayNeeds = Exclude<Effect.Effect.Context<ReturnType<typeof Gateway.run>>, Scope.Scope> | ExecutionVenue

/**
 * The in-memory application layer of a configuration with the given providers
 * and an execution-report observer: the composition root's (`layers/`
 * `layerBacktest`), passed in since nothing in `src/` imports `layers/`.
 */
export type BacktestLayer = (
  config: GatewayConfig,
  providers: Layer.Layer<Providers | RecordingFigures, never, Pool | Recycler | DeadLetter>,
  onReport: (report: ExecReport) => void
) => Layer.Layer<GatewayNeeds, unknown>

/** The gateway configuration of a backtest: the user's, with the recording's venues and no examples or endpoints. */
export const backtestConfig = (
  venues: ReadonlyArray<{ readonly name: string; readonly symbols: ReadonlyArray<string> }>,
  raw: Record<string, unknown> = {},
  source = "backtest"
): Either.Either<GatewayConfig, InvalidConfig> => {
  const modules = typeof raw.strategies === "object" && raw.strategies !== null && !Array.isArray(raw.strategies)
    ? (raw.strategies as Record<string, unknown>)
    : {}
  return Config.validate({
    ...raw,
    venues: venues.map((v) => ({ type: "simulated", name: v.name, symbols: [...v.symbols] })),
    merges: raw.merges ?? [],
    bus: { type: "memory" },
    http: { enabled: false },
    statusIntervalMs: 3_600_000,
    strategies: { ...modules, bbo: { enabled: false }, orders: { enabled: false }, modules: [] }
  }, source)
}

/** Loads a `--venue-config` file (YAML or JSON) as a raw configuration. */
export const readVenueConfig = (file: string): Either.Either<Record<string, unknown>, InvalidConfig> =>
  Either.map(Config.parseText(readFileSync(file, "utf8"), file), (raw) => (raw ?? {}) as Record<string, unknown>)

/** Runs the backtest; the report (written to `out` when given). */
export const runBacktest = (options: BacktestOptions, layer: BacktestLayer) =>
  Effect.gen(function*() {
    const wallStart = performance.now()
    const data = resolve(options.data)
    // the venues' streams, not the merged ones recorded beside them, unless providers are named (`record/Merged.ts`)
    const selection = venuesByDefault(data, options)
    const listing = listRecording(data, selection)
    if (listing.files.length === 0) {
      const why = listing.skipped.map((s) => `${s.file}: ${s.reason}`).join("; ")
      return yield* new BacktestFailed({ data, reason: `no recording file selected${why === "" ? "" : ` (${why})`}` })
    }
    const venueMap = new Map<string, Set<string>>()
    for (const f of listing.files) venueMap.set(f.provider, (venueMap.get(f.provider) ?? new Set()).add(f.symbol))
    const venues = [...venueMap].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, s]) => ({ name, symbols: [...s].sort() }))
    const config = yield* backtestConfig(venues, options.venueConfig)

    // the journal: every execution report as it leaves the venue
    const fills: Array<FillRow> = []
    const orders = new Map<string, OrderRow>()
    const samples: Array<{ ts: number; equity: number; exposure: number }> = []
    let sampleNow: (() => void) | undefined
    const onReport = (r: ExecReport): void => {
      const p = r.payload
      if (p === undefined) return
      const prev = orders.get(p.orderId)
      orders.set(p.orderId, {
        orderId: p.orderId,
        clientOrderId: p.clientOrderId,
        consumerId: p.consumerId,
        symbol: r.symbol,
        side: p.side,
        type: p.orderType,
        status: p.status,
        ...(p.price === undefined ? {} : { price: p.price }),
        quantity: p.quantity,
        filledQty: p.filledQty,
        reports: (prev?.reports ?? 0) + 1,
        ...(p.reason === undefined ? {} : { reason: p.reason }),
        firstTs: prev?.firstTs ?? r.ingestTs,
        lastTs: r.ingestTs
      })
      if (p.lastFillQty !== undefined && p.lastFillPrice !== undefined) {
        fills.push({
          ts: r.ingestTs,
          orderId: p.orderId,
          clientOrderId: p.clientOrderId,
          consumerId: p.consumerId,
          symbol: r.symbol,
          side: p.side,
          price: p.lastFillPrice,
          quantity: p.lastFillQty,
          status: p.status
        })
        sampleNow?.()
      }
    }

    const clock = new VirtualClock(replayStart(listing, options.from))
    let replay: Replay | undefined
    // the replay's providers, and its figures for /metrics (files skipped, and the recorder's when it records)
    const providers = Layer.scopedContext(
      Effect.gen(function*() {
        const services = { pool: yield* Pool, recycler: yield* Recycler, deadLetter: yield* DeadLetter }
        const r = replay = yield* makeReplay({ ...selection, dir: data, clock }, services)
        const recorder = options.record === undefined ? undefined : yield* makeRecorder({ dir: options.record, flushIntervalMs: 1_000, encodeOnWorker: options.recordOnEventLoop !== true })
        return Context.make(Providers, recorder === undefined ? r.providers : recorder.wrap(r.providers)).pipe(
          Context.add(RecordingFigures, { recorder: recorder?.stats ?? (() => noRecorderStats), skipped: r.skippedNow })
        )
      })
    )
    const app = layer(config, providers, onReport)
    // about 2,000 points over the recording, at most one a second
    const spanMs = (Math.max(...listing.files.map((f) => f.lastTs)) - Math.min(...listing.files.map((f) => f.firstTs))) / 1000
    const sampleMs = options.sampleMs ?? Math.max(1_000, Math.ceil(spanMs / 2_000))

    const run = Effect.scoped(Effect.gen(function*() {
      const scope = yield* Effect.scope
      const context = yield* Layer.buildWithScope(app, scope)
      const venue = Context.get(context, ExecutionVenue)
      const r = replay!
      sampleNow = () => {
        const e = equityOf(venue.portfolio())
        samples.push({ ts: clock.nowMicros(), ...e })
      }
      const sampler = yield* Effect.sync(() => sampleNow!()).pipe(
        Effect.zipRight(Effect.sleep(sampleMs)),
        Effect.forever,
        Effect.forkIn(scope)
      )
      const gateway = yield* Gateway.run(config, {
        strategies: options.strategies,
        ...(options.base === undefined ? {} : { base: options.base }),
        onRunning: r.start
      }).pipe(Effect.scoped, Effect.provide(context), Effect.forkIn(scope))
      const stats = yield* Deferred.await(r.done).pipe(
        Effect.raceFirst(Fiber.join(gateway).pipe(Effect.flatMap(() => Effect.never)))
      )
      yield* settle
      sampleNow()
      yield* Fiber.interrupt(sampler)
      const portfolio = venue.portfolio()
      // from here on, real time: the gateway stops as on a signal
      clock.release()
      yield* Fiber.interrupt(gateway)
      return { stats, portfolio }
    }))

    const { portfolio, stats } = yield* runOnReplay(clock, run)
    const wallMs = performance.now() - wallStart
    const { maxDrawdown, points } = withDrawdown(samples)
    const orderRows = [...orders.values()].sort((a, b) => a.firstTs - b.firstTs || (a.orderId < b.orderId ? -1 : 1))
    const report: BacktestReport = {
      format: REPORT_FORMAT,
      data,
      strategies: options.strategies.map((s) => ("strategy" in s ? s.strategy.id : s.module)),
      venues,
      from: stats.firstTs === undefined ? null : new Date(stats.firstTs / 1000).toISOString(),
      to: stats.lastTs === undefined ? null : new Date(stats.lastTs / 1000).toISOString(),
      replay: {
        events: stats.events,
        eventsByKind: stats.eventsByKind,
        filesRead: stats.filesRead,
        timersFired: stats.timersFired,
        skipped: stats.skipped
      },
      summary: {
        ...totalsOf(portfolio),
        maxDrawdown,
        maxExposure: points.reduce((m, p) => Math.max(m, p.exposure), 0),
        orders: orderRows.length,
        fills: fills.length,
        filledOrders: orderRows.filter((o) => o.status === "filled").length,
        canceledOrders: orderRows.filter((o) => o.status === "canceled").length,
        rejectedOrders: orderRows.filter((o) => o.status === "rejected").length
      },
      orders: orderRows,
      fills,
      positions: portfolio.positions,
      balances: portfolio.balances,
      byConsumer: portfolio.byConsumer,
      equity: points,
      run: { wallMs: Math.round(wallMs), eventsPerSec: Math.round(stats.events / (wallMs / 1000)) }
    }
    if (options.out === undefined) return report
    const out = resolve(options.out)
    const json = join(out, "report.json")
    const html = join(out, "report.html")
    const written: BacktestReport = { ...report, run: { ...report.run, json, html } }
    yield* Effect.try({
      try: () => {
        mkdirSync(out, { recursive: true })
        writeFileSync(json, JSON.stringify(written, null, 2))
        writeFileSync(html, renderHtml(written))
      },
      catch: (e) => new BacktestFailed({ data, reason: `report not written to ${out}: ${e instanceof Error ? e.message : String(e)}` })
    })
    return written
  })

/** The lines `meltica backtest` prints: the summary, then (last) the HTML report's path. */
export const summaryLines = (r: BacktestReport): ReadonlyArray<string> => {
  const s = r.summary
  return [
    `backtest ${r.strategies.join(", ")} on ${r.data}`,
    `  replayed ${r.replay.events.toLocaleString("en")} events from ${r.from ?? "-"} to ${r.to ?? "-"} (${r.run.wallMs} ms, ${r.run.eventsPerSec.toLocaleString("en")} events/s)`,
    ...(r.replay.skipped.length === 0 ? [] : r.replay.skipped.map((k) => `  skipped ${k.file}: ${k.reason}`)),
    `  orders ${s.orders} (filled ${s.filledOrders}, canceled ${s.canceledOrders}, rejected ${s.rejectedOrders}), fills ${s.fills}`,
    `  P&L ${s.pnl} ${s.quotes.join("+")} (realized ${s.realizedPnl}, unrealized ${s.unrealizedPnl}, fees ${s.fees}), max drawdown ${s.maxDrawdown.toFixed(6)}, max exposure ${s.maxExposure.toFixed(2)}`,
    ...(r.run.json === undefined ? [] : [`  report ${r.run.json}`]),
    ...(r.run.html === undefined ? [] : [r.run.html])
  ]
}
