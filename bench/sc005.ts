/**
 * SC-005 at full size: 100,000 events to 10 subscribers (1 million
 * deliveries) with 10% of lambda calls dying. Every event must be recycled,
 * every death counted and reported with its context, and no fiber left once
 * the scope closes. The test suite runs the same scenario at 20,000
 * deliveries (`test/Consumer.test.ts`); this is the size the seeds ask for.
 * Exits non-zero when a check fails.
 *
 *   npm run bench:sc005 [-- --json] [-- --events N] [-- --subscribers N]
 */
import { Effect } from "effect"
import { arg, emitJson, machine, table } from "./internal/report.js"
import { runSc005 } from "./internal/sc005.js"

const EVENTS = arg("--events", 100_000)
const SUBSCRIBERS = arg("--subscribers", 10)
const DEATH_RATE = 0.1

const main = Effect.gen(function*() {
  const r = yield* runSc005({ events: EVENTS, subscribers: SUBSCRIBERS, deathRate: DEATH_RATE })
  const expected = EVENTS * SUBSCRIBERS
  const annotated = r.reported.every((a) =>
    /^strategy-\d+$/.test(String(a["consumer_id"])) && /^trace-\d+$/.test(String(a["trace_id"])) && a["kind"] === "ticker"
  )
  const checks: ReadonlyArray<readonly [string, boolean, string]> = [
    ["every delivery completed", r.deliveries === expected, `${r.deliveries} of ${expected}`],
    [
      "death rate within 9-11%",
      r.deaths > expected * 0.09 && r.deaths < expected * 0.11,
      `${((100 * r.deaths) / expected).toFixed(2)}%`
    ],
    ["every death counted", r.failuresCounted === r.deaths, `${r.failuresCounted} of ${r.deaths}`],
    ["every death reported", r.reported.length === r.deaths, `${r.reported.length} of ${r.deaths}`],
    ["reports carry consumer, trace and kind", annotated, annotated ? "all" : "some missing"],
    ["every event recycled", r.outstandingAtEnd === 0, `${r.outstandingAtEnd} outstanding`],
    ["no fiber left", r.fibersLeft === 0, `${r.fibersLeft} left of ${r.aliveBefore}`]
  ]
  console.log(`SC-005 benchmark: ${machine()}, ${new Date().toISOString().slice(0, 10)}`)
  table(
    `${EVENTS.toLocaleString("en-US")} events x ${SUBSCRIBERS} subscribers, ${DEATH_RATE * 100}% of lambda calls dying`,
    ["check", "holds", "figure"],
    checks.map(([name, ok, figure]) => [name, ok ? "yes" : "NO", figure])
  )
  const seconds = r.elapsedMs / 1000
  console.log(`${expected.toLocaleString("en-US")} deliveries in ${seconds.toFixed(1)} s (${Math.round(expected / seconds).toLocaleString("en-US")} deliveries/s)`)
  const failed = checks.filter(([, ok]) => !ok).map(([name]) => name)
  emitJson({
    events: EVENTS,
    subscribers: SUBSCRIBERS,
    deliveries: r.deliveries,
    deaths: r.deaths,
    failuresCounted: r.failuresCounted,
    reported: r.reported.length,
    outstandingAtEnd: r.outstandingAtEnd,
    fibersLeft: r.fibersLeft,
    elapsedMs: r.elapsedMs,
    deliveriesPerSecond: expected / seconds,
    failed
  })
  if (failed.length > 0) process.exitCode = 1
})

Effect.runPromise(main)
