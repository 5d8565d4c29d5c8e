/**
 * Shared test plumbing: the pool, recycler and dead-letter layer, a sink that
 * records what it receives and recycles it (as the real pipeline would), and
 * the set-up and final checks of the venue adapter tests.
 */
import { assert } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Queue, Scope } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { BookDelta, BookSnapshot, EventPayload, MarketKind, Trade } from "../../schema/Event.js"
import type { ProviderConfig } from "../../schema/ProviderConfig.js"
import { Backoff } from "../../schema/ProviderConfig.js"
import { DeadLetter } from "../../src/DeadLetter.js"
import type { Event } from "../../src/Event.js"
import { Pool } from "../../src/Pool.js"
import * as Provider from "../../src/Provider.js"
import { generationOf, Recycler } from "../../src/Recycler.js"
import { OrderBook } from "../../src/OrderBook.js"
import type { RestServer, VenueServer } from "./servers.js"

export const baseLayer = Layer.mergeAll(Recycler.DefaultWithoutDependencies, DeadLetter.Default).pipe(
  Layer.provideMerge(Pool.layer({ prewarm: 0 }))
)

/** `baseLayer` with Node's WebSocket and HTTP client, for the real venue adapters. */
export const venueLayer = Layer.merge(baseLayer, Provider.layerPlatformNode)

/** Fails (times out) when `e` takes more than five seconds. */
export const within = <A, E, R>(e: Effect.Effect<A, E, R>) => e.pipe(Effect.timeout(Duration.seconds(5)))

/** What every adapter test configures alike: the local servers, quick reconnects, no periodic refresh in the way. */
export const localVenue = (ws: VenueServer, rest: RestServer) => ({
  wsUrl: ws.url,
  restUrl: rest.url,
  snapshotIntervalMs: 60_000,
  backoff: Backoff.make({ initialMs: 20, maxMs: 200, jitter: 0 })
})

export interface Seen {
  readonly provider: string
  readonly symbol: string
  readonly kind: MarketKind
  readonly seq: number
  readonly traceId: string
  readonly ingestTs: number
  readonly payload: EventPayload
}

/** A sink that copies what it needs, recycles the event, and publishes the copy. */
export const recordingSink = Effect.gen(function*() {
  const recycler = yield* Recycler
  const seen: Array<Seen> = []
  const queue = yield* Queue.unbounded<Seen>()
  const sink = (e: Event) =>
    Effect.sync(() => {
      const s: Seen = {
        provider: e.provider,
        symbol: e.symbol,
        kind: e.kind as MarketKind,
        seq: e.seqProvider!,
        traceId: e.traceId,
        ingestTs: e.ingestTs,
        payload: e.payload!
      }
      recycler.unsafeRecycle(e, generationOf(e))
      seen.push(s)
      Queue.unsafeOffer(queue, s)
    })
  const returned = new Set<Seen>()
  /**
   * The first event (in arrival order) that satisfies `p` and was not returned
   * by an earlier call, waiting for it if it has not arrived yet.
   */
  const waitFor = (p: (s: Seen) => boolean): Effect.Effect<Seen> =>
    Effect.suspend(() => {
      const hit = seen.find((s) => !returned.has(s) && p(s))
      if (hit !== undefined) {
        returned.add(hit)
        return Effect.succeed(hit)
      }
      return Queue.take(queue).pipe(Effect.zipRight(waitFor(p)))
    })
  return { sink, seen, waitFor }
})

/** seqProvider is 1, 2, 3, ... on every (provider, symbol, kind) stream. */
export const assertContiguous = (seen: ReadonlyArray<Seen>): boolean => {
  const last = new Map<string, number>()
  for (const s of seen) {
    const key = `${s.provider}|${s.symbol}|${s.kind}`
    const prev = last.get(key) ?? 0
    if (s.seq !== prev + 1) return false
    last.set(key, s.seq)
  }
  return true
}

export const isSnapshot = (s: Seen): s is Seen & { payload: BookSnapshot } => s.kind === "book_snapshot"
export const isDelta = (s: Seen): s is Seen & { payload: BookDelta } => s.kind === "book_delta"
export const isConsistent = (s: Seen): s is Seen & { payload: BookSnapshot } => isSnapshot(s) && s.payload.state === "consistent"
export const isStale = (s: Seen): s is Seen & { payload: BookSnapshot } => isSnapshot(s) && s.payload.state === "stale"
export const isTrade = (tradeId: string) => (s: Seen): boolean => s.kind === "trade" && (s.payload as Trade).tradeId === tradeId

/** A provider made from `config`, running into a recording sink in a scope of its own. */
export const runProvider = (config: ProviderConfig) =>
  Effect.gen(function*() {
    const provider = yield* Provider.make(config)
    const rec = yield* recordingSink
    const scope = yield* Scope.make()
    const fiber = yield* provider.run(rec.sink).pipe(Scope.extend(scope), Effect.forkIn(scope))
    return { provider, rec, scope, fiber }
  })

/** Closes the provider's scope; its fiber ends interrupted. */
export const stopProvider = (run: { readonly scope: Scope.CloseableScope; readonly fiber: Fiber.RuntimeFiber<never> }) =>
  Effect.gen(function*() {
    yield* Scope.close(run.scope, Exit.void)
    assert.isTrue(Exit.isInterrupted(yield* Fiber.await(run.fiber)))
  })

/** The next `n` close codes the venue server saw, each awaited `within` its own time. */
export const takeCloses = (ws: VenueServer, n: number) =>
  Effect.gen(function*() {
    const codes: Array<number> = []
    while (codes.length < n) codes.push(yield* within(Queue.take(ws.closes)))
    return codes
  })

/**
 * Nothing lost, nothing leaked: these trades in this order, contiguous
 * sequences, deltas that rebuild every consistent snapshot, every event back
 * in the pool.
 */
export const assertDelivered = (seen: ReadonlyArray<Seen>, tradeIds: ReadonlyArray<string>, depth: number) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(
      seen.filter((s) => s.kind === "trade").map((s) => (s.payload as Trade).tradeId),
      tradeIds
    )
    assert.isTrue(assertContiguous(seen))
    assert.deepStrictEqual(replayBooks(seen, depth), [])
    assert.strictEqual((yield* Pool).stats().Event.outstanding, 0)
  })

/**
 * A consumer's view of one book: snapshots replace it, deltas update it, a
 * stale snapshot invalidates it. Returns the mismatches between the rebuilt
 * book and every later consistent snapshot, and every moment the rebuilt book
 * held more than `depth` levels on a side (none means the deltas were right).
 */
export const replayBooks = (seen: ReadonlyArray<Seen>, depth: number): Array<string> => {
  const books = new Map<string, OrderBook | undefined>()
  const problems: Array<string> = []
  for (const s of seen) {
    const key = `${s.provider}|${s.symbol}`
    if (isSnapshot(s)) {
      if (s.payload.state === "stale") {
        books.set(key, undefined)
        continue
      }
      const mine = books.get(key)
      if (mine !== undefined) {
        const top = mine.snapshot(depth)
        if (JSON.stringify([top.bids, top.asks]) !== JSON.stringify([s.payload.bids, s.payload.asks])) {
          problems.push(`${key} seq ${s.seq}: rebuilt book differs from the venue's snapshot`)
        }
      }
      const b = new OrderBook(s.symbol)
      b.reset(s.payload.bids.map(([price, qty]) => ({ price, qty })), s.payload.asks.map(([price, qty]) => ({ price, qty })))
      books.set(key, b)
    } else if (isDelta(s)) {
      const b = books.get(key)
      if (b === undefined) {
        problems.push(`${key} seq ${s.seq}: delta without a consistent snapshot`)
        continue
      }
      b.apply(s.payload.bids.map(([price, qty]) => ({ price, qty })), s.payload.asks.map(([price, qty]) => ({ price, qty })))
      // deltas describe the published top `depth`: a level pushed out of it is removed, never left behind
      if (b.bidCount > depth || b.askCount > depth) {
        problems.push(`${key} seq ${s.seq}: rebuilt book holds ${b.bidCount} bids and ${b.askCount} asks, more than ${depth}`)
      }
    }
  }
  return problems
}

/** Reads a hand-written frames file: "## name" starts a section, "#" lines are comments. */
export const readFrames = (name: string): Record<string, Array<string>> => {
  const text = readFileSync(join(import.meta.dirname, "..", "fixtures", name), "utf8")
  const sections: Record<string, Array<string>> = {}
  let current: Array<string> | undefined
  for (const line of text.split("\n")) {
    if (line.startsWith("## ")) sections[line.slice(3).trim()] = current = []
    else if (line.startsWith("#") || line.trim() === "") continue
    else current?.push(line)
  }
  return sections
}

/** A frame an adversary (or a broken venue) sends, and what the adapter must do with it. */
export interface HostileCase {
  readonly name: string
  /** The frame, or a function that makes it when it is sent (for venues that number every message). */
  readonly frame: string | (() => string)
  /** The refusal reason it is counted and dead-lettered under. */
  readonly reason: string
  /** The canonical symbol whose book goes stale (integrity in doubt); none when no book is named. */
  readonly stale?: string
}

/** Plain notation, no sign or exponent, bounded digits: what `Decimal` accepts. */
const PLAIN_DECIMAL = /^(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,18})?$/
const ZERO_DECIMAL = /^0(?:\.0+)?$/

/**
 * Every price and quantity that reached the sink is a plain decimal; prices,
 * trade quantities and snapshot levels are above zero (zero quantities only
 * in deltas, as removals). Returns the offending values.
 */
export const badPublishedValues = (seen: ReadonlyArray<Seen>): Array<string> => {
  const bad: Array<string> = []
  const check = (where: string, v: string, zeroOk: boolean) => {
    if (!PLAIN_DECIMAL.test(v) || (!zeroOk && ZERO_DECIMAL.test(v))) bad.push(`${where}: ${v.slice(0, 40)}`)
  }
  for (const s of seen) {
    const p = s.payload as any
    switch (s.kind) {
      case "trade":
        check("trade price", p.price, false)
        check("trade quantity", p.quantity, false)
        break
      case "ticker":
        check("ticker bid", p.bidPrice, false)
        check("ticker ask", p.askPrice, false)
        check("ticker bid qty", p.bidQty, true)
        check("ticker ask qty", p.askQty, true)
        break
      case "book_snapshot":
      case "book_delta":
        for (const [price, qty] of [...p.bids, ...p.asks]) {
          check(`${s.kind} price`, price, false)
          check(`${s.kind} quantity`, qty, s.kind === "book_delta")
        }
    }
  }
  return bad
}

/**
 * Plays a table of hostile frames against a running adapter. After each one a
 * valid trade on the bystander symbol is sent and must arrive (the adapter
 * went on at once); then the refusal must have been counted under its reason
 * and dead-lettered with the frame as received (up to the queue's raw
 * length); the named book (and only it) must have gone stale, after which
 * `recover` brings it back; and the bystander's book never goes stale.
 */
export const runHostileTable = (options: {
  readonly provider: { readonly name: string; readonly stats: () => { readonly malformed: Readonly<Record<string, number>> } }
  readonly rec: { readonly seen: ReadonlyArray<Seen>; readonly waitFor: (p: (s: Seen) => boolean) => Effect.Effect<Seen> }
  readonly send: (text: string) => Effect.Effect<void>
  readonly cases: ReadonlyArray<HostileCase>
  /** A valid trade frame on the bystander symbol, with its trade id. */
  readonly probe: (i: number) => { readonly frame: string; readonly tradeId: string }
  readonly bystander: string
  /** Brings a stale book back to consistent (a fresh snapshot, the venue's way). */
  readonly recover: (symbol: string) => Effect.Effect<void, unknown>
}) =>
  Effect.gen(function*() {
    const { provider, rec } = options
    const dl = yield* DeadLetter
    const maxRaw = dl.settings.maxRawLength
    for (const [i, c] of options.cases.entries()) {
      const before = provider.stats().malformed[c.reason] ?? 0
      const seenBefore = rec.seen.length
      const frame = typeof c.frame === "string" ? c.frame : c.frame()
      yield* options.send(frame)
      const probe = options.probe(i)
      yield* options.send(probe.frame)
      yield* within(rec.waitFor(isTrade(probe.tradeId)))
      assert.strictEqual(provider.stats().malformed[c.reason] ?? 0, before + 1, `${c.name}: counted as ${c.reason}`)
      const last = dl.entries().at(-1)
      assert.deepStrictEqual(
        [last?.source, last?.reason, last?.raw === frame.slice(0, maxRaw)],
        [provider.name, c.reason, true],
        `${c.name}: dead-lettered`
      )
      const stale = rec.seen.slice(seenBefore).filter(isStale).map((s) => s.symbol)
      assert.deepStrictEqual(stale, c.stale === undefined ? [] : [c.stale], `${c.name}: stale books`)
      if (c.stale !== undefined) yield* options.recover(c.stale)
    }
    assert.deepStrictEqual(rec.seen.filter((s) => isStale(s) && s.symbol === options.bystander).map((s) => s.symbol), [])
    assert.deepStrictEqual(badPublishedValues(rec.seen), [])
  })
