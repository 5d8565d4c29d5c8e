/**
 * Shared output for benchmarks: a readable table, and with `--json` a last
 * line holding one JSON object with the figures.
 */
import { Effect } from "effect"
import { cpus, totalmem } from "node:os"

import { decimal, Ticker } from "../../schema/Event.js"

const wantsJson = process.argv.includes("--json")

/** A numeric command-line option: `--name value`. */
export const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

/** The payload every benchmark event carries. */
export const benchTicker = Ticker.make({
  bidPrice: decimal("64000.10"),
  bidQty: decimal("1.5"),
  askPrice: decimal("64000.20"),
  askQty: decimal("0.7"),
  exchangeTs: 1
})

export const machine = (): string =>
  `${cpus()[0]?.model ?? "unknown cpu"} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g === undefined) throw new Error("run with node --expose-gc")
  g()
  g()
}

export const heapUsed = (): number => {
  gc()
  return process.memoryUsage().heapUsed
}

export const table = (title: string, headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>) => {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? fmt(c) : c)))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => String(r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) => "| " + r.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |"
  console.log(`\n${title}\n`)
  console.log(line(headers))
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|")
  for (const r of cells) console.log(line(r.map(String)))
  console.log()
}

const fmt = (n: number): string =>
  !Number.isFinite(n)
    ? String(n)
    : Number.isInteger(n) || Math.abs(n) >= 1000
    ? Math.round(n).toLocaleString("en-US")
    : Math.abs(n) >= 10
    ? n.toFixed(1)
    : n.toFixed(3)

export const emitJson = (figures: unknown): void => {
  if (wantsJson) console.log(JSON.stringify(figures))
}

/**
 * Two variants of one measurement, warmed up once each, then run in
 * alternating rounds; the median of each (alternation spreads a shared
 * machine's load over both).
 */
export const alternatingMedians = <E, R>(
  rounds: number,
  first: Effect.Effect<number, E, R>,
  second: Effect.Effect<number, E, R>
): Effect.Effect<readonly [number, number], E, R> =>
  Effect.gen(function*() {
    yield* first
    yield* second
    const a: Array<number> = []
    const b: Array<number> = []
    for (let i = 0; i < rounds; i++) {
      a.push(yield* first)
      b.push(yield* second)
    }
    return [median(a), median(b)] as const
  })

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]!
}
