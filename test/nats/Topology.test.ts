/**
 * Several feed processes (one per venue) and several strategy processes on
 * one subject space, against a real `nats-server`: the full feed of venue
 * sim-a (its ticker, Control Plane and paper venue), and the market-data
 * feeds of sim-b (writing JSON) and sim-c (binary frames); two strategy
 * processes each listening to every venue's BTC-USDT tickers and sending
 * orders. Each
 * strategy sees every venue's stream in order, under that feed's own epoch,
 * whichever codec it was written in (the market-only feeds' data stamped with
 * the Control Plane feed's routing version, so never skipped as stale), and
 * gets its own execution reports, each exactly once, and none of the other's.
 * A second full feed started beside the first is refused (exactly one feed
 * takes commands) and never takes a command.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type Child, fixture, runScript, waitUntil } from "./support/process.js"
import { natsServer } from "./support/server.js"

const TIMEOUT = { timeout: 240_000 }
const ORDERS = 15

const marketFeed = (url: string, provider: string, codec: "json" | "binary") =>
  Effect.gen(function*() {
    const feed = yield* runScript(fixture("marketFeed.ts"), { NATS_URL: url, PROVIDER: provider, TICK_MS: "3", CODEC: codec })
    yield* waitUntil(() => feed.lines.includes("ready"), `feed ${provider} ready`, feed)
    return feed
  })

interface Tick {
  readonly provider: string
  readonly seq: number
  readonly bid: string
  readonly epoch: string
}

const ticks = (c: Child): Array<Tick> =>
  c.lines.filter((l) => l.startsWith("M ")).map((l) => {
    const [, provider, seq, bid, epoch] = l.split(" ")
    return { provider: provider!, seq: Number(seq), bid: bid!, epoch: epoch! }
  })

const reports = (c: Child): Array<string> =>
  c.lines.filter((l) => l.startsWith("R ")).map((l) => l.split(" ").slice(1, 3).join(" "))

const expectedReports = (consumerId: string, n: number) =>
  Array.from({ length: n }, (_, i) => [`${consumerId}-o-${i + 1} 1`, `${consumerId}-o-${i + 1} 2`]).flat()

/** What a strategy got, for a failure's message. */
const summary = (id: string, s: Child): string =>
  `${id}: ${PROVIDERS.map((p) => `${p} ${ticks(s).filter((x) => x.provider === p).length}`).join(", ")}, ` +
  `${reports(s).length} reports; log: ${s.log().slice(-1_500)}`

const PROVIDERS = ["sim-a", "sim-b", "sim-c"] as const
const BID_BASE: Record<string, string> = { "sim-a": "64000", "sim-b": "63000", "sim-c": "63000" }

describe("NATS topology", () => {
  it.scopedLive("three feeds (one per venue, binary and JSON) and two strategies share one subject space", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const feedA = yield* runScript(fixture("feed.ts"), { NATS_URL: server.url, ACK_WAIT_MS: "2000", TICK_MS: "3" })
      yield* waitUntil(() => feedA.lines.includes("ready"), "feed sim-a ready", feedA)
      // a second full feed would share the Control Plane's durable and take part of the commands: it must not start
      const feedA2 = yield* runScript(fixture("feed.ts"), { NATS_URL: server.url, ACK_WAIT_MS: "2000", TICK_MS: "3" })
      yield* marketFeed(server.url, "sim-b", "json")
      yield* marketFeed(server.url, "sim-c", "binary")
      const strategies = yield* Effect.forEach(["s1", "s2"], (id) =>
        Effect.gen(function*() {
          const s = yield* runScript(fixture("strategy.ts"), {
            NATS_URL: server.url,
            CONSUMER_ID: id,
            ACK_WAIT_MS: "2000",
            ORDERS: String(ORDERS)
          })
          yield* waitUntil(() => s.lines.includes("ready"), `strategy ${id} ready`, s)
          return [id, s] as const
        }))

      for (const [id, s] of strategies) {
        yield* waitUntil(
          () => {
            const t = ticks(s)
            return reports(s).length >= 2 * ORDERS && PROVIDERS.every((p) => t.filter((x) => x.provider === p).length >= 30)
          },
          `strategy ${id}: every venue's tickers and its reports`,
          s,
          "150 seconds"
        ).pipe(Effect.tapError(() => Effect.sync(() => console.error(summary(id, s)))))
      }

      yield* waitUntil(() => feedA2.process.exitCode !== null, "the second full feed refused", feedA2)
      assert.notStrictEqual(feedA2.process.exitCode, 0, "the second full feed exits with an error")
      assert.isFalse(feedA2.lines.includes("ready"), "the second full feed never takes commands")
      assert.include(feedA2.log(), "ControlPlaneTaken", `the second full feed says why: ${feedA2.log()}`)

      const epochs = new Map<string, string>()
      for (const [id, s] of strategies) {
        const t = ticks(s)
        for (const p of PROVIDERS) {
          const mine = t.filter((x) => x.provider === p)
          for (let i = 1; i < mine.length; i++) {
            assert.isAbove(mine[i]!.seq, mine[i - 1]!.seq, `${id}: ${p}'s stream in order`)
          }
          for (const x of mine) assert.strictEqual(x.bid, `${BID_BASE[p]}.${x.seq % 100}`, `${id}: ${p}'s decimal intact`)
          const seen = new Set(mine.map((x) => x.epoch))
          assert.strictEqual(seen.size, 1, `${id}: one run of ${p}'s feed`)
          const epoch = [...seen][0]!
          assert.strictEqual(epochs.get(p) ?? epoch, epoch, `both strategies see ${p} under the same epoch`)
          epochs.set(p, epoch)
        }
        const got = reports(s)
        assert.deepStrictEqual([...got].sort(), expectedReports(id, ORDERS).sort(), `${id}: its reports, each exactly once`)
        for (let i = 1; i <= ORDERS; i++) {
          assert.isBelow(got.indexOf(`${id}-o-${i} 1`), got.indexOf(`${id}-o-${i} 2`), `${id}: new before filled`)
        }
      }
      assert.strictEqual(new Set(epochs.values()).size, PROVIDERS.length, "each feed has its own epoch")
    }), TIMEOUT)
})
