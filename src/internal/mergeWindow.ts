/**
 * The windowed-merge engine: pure, synchronous, and deterministic. Time is an
 * argument (`nowMs`, epoch milliseconds); the Orchestrator drives it with
 * Effect's Clock and owns the one instance.
 *
 * ## Windows
 * - A merge is configured per key (symbol, kind) over a set of providers, with
 *   a window duration (`windowMs`) and a fragment limit (`maxFragments`).
 * - A window opens on the first fragment offered for its key (at `nowMs`).
 * - It closes when its duration has elapsed (`expire(nowMs)` with
 *   `nowMs >= openMs + windowMs`, or the next `add` for the key after that
 *   deadline; the close time is the deadline), or at once when it holds
 *   `maxFragments` fragments (the close time is that `nowMs`).
 * - On close, the window's policy decides (a provider is present when it
 *   contributed a fragment, a book counting only if not stale):
 *   - `all`: every configured provider must be present;
 *   - `quorum`: at least `quorum` of them (absent: a majority,
 *     `floor(n / 2) + 1` of `n`);
 *   - `any`: at least one.
 *   Met: one `Merged` outcome composed from the present providers only, its
 *   payload's `missing` naming the others (empty when none is missing).
 *   Not met: one `Suppressed` outcome naming the missing providers. Either way
 *   every fragment of the window is handed back in the outcome, to be recycled
 *   at once. The engine never holds a fragment past its window's close.
 * - The policy never closes a window early: a window with a provider missing
 *   closes at its deadline (or on its fragment count), so the merged event
 *   waits at most `windowMs` for the late venue.
 * - A configuration without a policy takes `DEFAULT_MERGE_POLICY` (`any`).
 * - A window holds one fragment per provider for tickers and book snapshots:
 *   the latest wins (by `ingestTs`; on a tie, the later arrival), and the
 *   other one comes back at once as `Replaced`. Trades accumulate,
 *   every trade fragment counting towards `maxFragments`.
 * - A book snapshot whose `state` is "stale" counts as its provider's fragment
 *   (it displaces an earlier consistent one, since it is newer news about that
 *   venue), but at close that provider is treated as missing.
 *
 * ## Late fragments
 * A fragment is late when its `ingestTs` (epoch microseconds) is earlier than
 * the close time of the most recently closed window of its key: it was taken in
 * while that window was open (or before), but reached the engine after the
 * window closed. It is returned as `Late` and never joins a window. A fragment
 * arriving after a close that is not older than that close opens (or joins)
 * the next window.
 *
 * ## Ignored fragments
 * A fragment whose key has no merge configured (`unconfigured`), whose provider
 * is not in the key's provider set (`unexpected_provider`), or whose payload does
 * not match its kind (`malformed`) is returned as `Ignored`: the caller decides
 * what to do with it (forward it unmerged, or recycle it).
 *
 * ## What a merge means (exact decimals; the exchange's string is kept
 * wherever no arithmetic happens)
 * - ticker -> `MergedTicker`: the best bid is the highest bid across the present venues,
 *   the best ask the lowest ask, each with its provider (on a tie, the first
 *   provider in configuration order); every venue's quote is attached, in
 *   configuration order.
 * - book_snapshot -> `MergedBook`: levels aggregated by numeric price across
 *   venues (bids descending, asks ascending); `totalQty` is the exact sum of the
 *   venues' quantities; each level lists every venue's quantity in
 *   configuration order. Zero-quantity levels are skipped. A level's price is
 *   the string of the first venue (in configuration order) that quotes it.
 * - trade -> `MergedTrades`: every trade of the window in exchange-time order;
 *   ties are broken by provider configuration order, then by arrival.
 *
 * `mergeId` is `${symbol}|${kind}|${windowOpenMs}|${n}`, where `n` counts the
 * windows opened for the key (from 1).
 */
import { DEFAULT_MERGE_POLICY, type MergeKind, type MergePolicy } from "../../schema/Control.js"
import type { BookSnapshot, Decimal, Level, MergedPayload, Ticker, Trade } from "../../schema/Event.js"
import { MergedBook, MergedLevel, MergedTicker, MergedTrades, VenueQuote, VenueTrade } from "../../schema/Event.js"
import type { Event } from "../Event.js"
import { compare, dec, type Dec, isZero, toDecimal } from "./decimal.js"

export interface MergeConfig {
  readonly symbol: string
  readonly kind: MergeKind
  readonly providers: ReadonlyArray<string>
  readonly windowMs: number
  readonly maxFragments: number
  /** How many providers a window needs to emit; absent: `DEFAULT_MERGE_POLICY`. */
  readonly policy?: MergePolicy | undefined
  /** With policy `quorum`: the providers needed (1..providers); absent: a majority. */
  readonly quorum?: number | undefined
}

/** The number of present providers a window of `cfg` needs to emit a merged event. */
export const requiredProviders = (cfg: MergeConfig): number => {
  const n = cfg.providers.length
  switch (cfg.policy ?? DEFAULT_MERGE_POLICY) {
    case "all":
      return n
    case "any":
      return 1
    case "quorum":
      return Math.min(n, Math.max(1, cfg.quorum ?? Math.floor(n / 2) + 1))
  }
}

/** Why a window closed. */
export type CloseReason = "deadline" | "count"

interface Closed {
  readonly symbol: string
  readonly kind: MergeKind
  readonly mergeId: string
  readonly openedAtMs: number
  readonly closedAtMs: number
  readonly closedBy: CloseReason
  /** Every fragment of the window: the caller recycles them at once. */
  readonly fragments: ReadonlyArray<Event>
}

/** Enough providers contributed: build a pooled MergedEvent from `payload`, recycle `fragments`. */
export interface Merged extends Closed {
  readonly _tag: "Merged"
  /** The providers that contributed, in configuration order. */
  readonly sourceProviders: ReadonlyArray<string>
  /** The configured providers that did not (the payload's `missing`), in configuration order. */
  readonly missing: ReadonlyArray<string>
  readonly payload: MergedPayload
}

/** A window closed short of its policy: count it and recycle `fragments`. */
export interface Suppressed extends Closed {
  readonly _tag: "Suppressed"
  /** The configured providers with no (or only a stale) fragment, in configuration order. */
  readonly missing: ReadonlyArray<string>
}

/** A fragment for a window that has closed: count it and recycle it. */
export interface Late {
  readonly _tag: "Late"
  readonly symbol: string
  readonly kind: MergeKind
  readonly fragment: Event
}

/** A ticker or book fragment displaced by a newer one of the same provider in the same window: recycle it. */
export interface Replaced {
  readonly _tag: "Replaced"
  readonly symbol: string
  readonly kind: MergeKind
  readonly fragment: Event
}

export type IgnoredReason = "unconfigured" | "unexpected_provider" | "malformed"

/** A fragment the engine does not take: the caller still owns it. */
export interface Ignored {
  readonly _tag: "Ignored"
  readonly fragment: Event
  readonly reason: IgnoredReason
}

export type Outcome = Merged | Suppressed | Late | Replaced | Ignored

interface Window {
  readonly openMs: number
  readonly deadline: number
  readonly n: number
  /** Tickers and books: the latest fragment per provider. */
  readonly latest: Map<string, Event>
  /** Trades: every fragment, in arrival order. */
  readonly trades: Array<Event>
}

interface KeyState {
  readonly config: MergeConfig
  /** Present providers a window needs (`requiredProviders`). */
  readonly required: number
  readonly order: ReadonlyMap<string, number>
  window: Window | undefined
  /** Close time (ms) of the most recently closed window. */
  lastCloseMs: number | undefined
  /** Windows opened so far. */
  opened: number
}

const mergeKinds: ReadonlySet<string> = new Set<MergeKind>(["ticker", "book_snapshot", "trade"])

const keyOf = (symbol: string, kind: string): string => `${symbol}|${kind}`

const sameConfig = (a: MergeConfig, b: MergeConfig): boolean =>
  a.windowMs === b.windowMs && a.maxFragments === b.maxFragments &&
  (a.policy ?? DEFAULT_MERGE_POLICY) === (b.policy ?? DEFAULT_MERGE_POLICY) &&
  requiredProviders(a) === requiredProviders(b) &&
  a.providers.length === b.providers.length && a.providers.every((p, i) => b.providers[i] === p)

const held = (w: Window): number => w.latest.size + w.trades.length

const fragmentsOf = (w: Window): Array<Event> => w.trades.length > 0 ? [...w.trades] : [...w.latest.values()]

export class MergeWindows {
  private readonly keys = new Map<string, KeyState>()

  /**
   * Configures the merge of (symbol, kind). Reconfiguring with the same
   * parameters changes nothing; with different ones, the key's open window is
   * discarded and its fragments returned for recycling (nothing is emitted).
   */
  configure(cfg: MergeConfig): ReadonlyArray<Event> {
    const key = keyOf(cfg.symbol, cfg.kind)
    const prev = this.keys.get(key)
    if (prev !== undefined && sameConfig(prev.config, cfg)) return []
    const discarded = prev?.window === undefined ? [] : fragmentsOf(prev.window)
    this.keys.set(key, {
      config: { ...cfg, providers: [...cfg.providers] },
      required: requiredProviders(cfg),
      order: new Map(cfg.providers.map((p, i) => [p, i])),
      window: undefined,
      lastCloseMs: prev?.lastCloseMs,
      opened: prev?.opened ?? 0
    })
    return discarded
  }

  /** Removes the merge of (symbol, kind); its open window's fragments are returned for recycling. */
  remove(symbol: string, kind: MergeKind): ReadonlyArray<Event> {
    const key = keyOf(symbol, kind)
    const st = this.keys.get(key)
    if (st === undefined) return []
    this.keys.delete(key)
    return st.window === undefined ? [] : fragmentsOf(st.window)
  }

  has(symbol: string, kind: string): boolean {
    return this.keys.has(keyOf(symbol, kind))
  }

  /** The configured merges. */
  configs(): ReadonlyArray<MergeConfig> {
    return [...this.keys.values()].map((s) => s.config)
  }

  /** Windows currently open. */
  openWindows(): number {
    let n = 0
    for (const s of this.keys.values()) if (s.window !== undefined) n++
    return n
  }

  /** Fragments currently held by open windows. */
  heldFragments(): number {
    let n = 0
    for (const s of this.keys.values()) if (s.window !== undefined) n += held(s.window)
    return n
  }

  /**
   * Offers a fragment (a pooled Event). Unless it comes back as `Ignored`, the
   * engine owns it from here: it is kept until its window closes, or returned
   * as `Late` or `Replaced`.
   */
  add(fragment: Event, nowMs: number): ReadonlyArray<Outcome> {
    if (!mergeKinds.has(fragment.kind)) return [{ _tag: "Ignored", fragment, reason: "unconfigured" }]
    const st = this.keys.get(keyOf(fragment.symbol, fragment.kind))
    if (st === undefined) return [{ _tag: "Ignored", fragment, reason: "unconfigured" }]
    if (!st.order.has(fragment.provider)) return [{ _tag: "Ignored", fragment, reason: "unexpected_provider" }]
    if (fragment.payload === undefined || fragment.payload._tag !== fragment.kind) {
      return [{ _tag: "Ignored", fragment, reason: "malformed" }]
    }
    const { symbol, kind } = st.config
    const out: Array<Outcome> = []
    if (st.window !== undefined && st.window.deadline <= nowMs) {
      out.push(this.close(st, st.window, st.window.deadline, "deadline"))
    }
    if (st.lastCloseMs !== undefined && fragment.ingestTs < st.lastCloseMs * 1000) {
      out.push({ _tag: "Late", symbol, kind, fragment })
      return out
    }
    let w = st.window
    if (w === undefined) {
      st.opened++
      w = { openMs: nowMs, deadline: nowMs + st.config.windowMs, n: st.opened, latest: new Map(), trades: [] }
      st.window = w
    }
    if (kind === "trade") {
      w.trades.push(fragment)
    } else {
      const prev = w.latest.get(fragment.provider)
      if (prev !== undefined && fragment.ingestTs < prev.ingestTs) {
        out.push({ _tag: "Replaced", symbol, kind, fragment })
      } else {
        if (prev !== undefined) out.push({ _tag: "Replaced", symbol, kind, fragment: prev })
        w.latest.set(fragment.provider, fragment)
      }
    }
    if (held(w) >= st.config.maxFragments) out.push(this.close(st, w, nowMs, "count"))
    return out
  }

  /** Closes every window whose duration has elapsed at `nowMs`, in deadline order. */
  expire(nowMs: number): ReadonlyArray<Outcome> {
    const due: Array<KeyState> = []
    for (const st of this.keys.values()) {
      if (st.window !== undefined && st.window.deadline <= nowMs) due.push(st)
    }
    due.sort((a, b) => a.window!.deadline - b.window!.deadline)
    return due.map((st) => this.close(st, st.window!, st.window!.deadline, "deadline"))
  }

  /** The earliest deadline of an open window, if any. */
  nextDeadline(): number | undefined {
    let next: number | undefined
    for (const st of this.keys.values()) {
      if (st.window !== undefined && (next === undefined || st.window.deadline < next)) next = st.window.deadline
    }
    return next
  }

  /** Closes every open window (shutdown): the fragments are returned for recycling, nothing is emitted. */
  drain(): ReadonlyArray<Event> {
    const out: Array<Event> = []
    for (const st of this.keys.values()) {
      if (st.window === undefined) continue
      out.push(...fragmentsOf(st.window))
      st.window = undefined
    }
    return out
  }

  private close(st: KeyState, w: Window, closeMs: number, closedBy: CloseReason): Merged | Suppressed {
    st.window = undefined
    st.lastCloseMs = closeMs
    const { kind, providers, symbol } = st.config
    const fragments = fragmentsOf(w)
    const closed = {
      symbol,
      kind,
      mergeId: `${symbol}|${kind}|${w.openMs}|${w.n}`,
      openedAtMs: w.openMs,
      closedAtMs: closeMs,
      closedBy,
      fragments
    }
    const present = new Set<string>()
    if (kind === "trade") {
      for (const f of w.trades) present.add(f.provider)
    } else {
      for (const [p, f] of w.latest) {
        if (kind === "book_snapshot" && (f.payload as BookSnapshot).state === "stale") continue
        present.add(p)
      }
    }
    const missing = providers.filter((p) => !present.has(p))
    if (providers.length - missing.length < st.required) return { _tag: "Suppressed", ...closed, missing }
    const sources = missing.length === 0 ? [...providers] : providers.filter((p) => present.has(p))
    const inOrder = sources.map((p) => w.latest.get(p)!)
    const payload = kind === "ticker"
      ? mergeTickers(inOrder.map((f) => ({ provider: f.provider, ticker: f.payload as Ticker })), missing)
      : kind === "book_snapshot"
      ? mergeBooks(inOrder.map((f) => ({ provider: f.provider, book: f.payload as BookSnapshot })), missing)
      : mergeTrades(w.trades.map((f) => ({ provider: f.provider, trade: f.payload as Trade })), st.order, missing)
    return { _tag: "Merged", ...closed, sourceProviders: sources, missing, payload }
  }
}

// ---------------------------------------------------------------------------
// Composition (inputs are decoded, valid decimals; outputs are built without
// re-validation)
// ---------------------------------------------------------------------------

const trusted = true

/** Venues' tickers, in configuration order (non-empty) -> consolidated best bid/offer. */
export const mergeTickers = (
  quotes: ReadonlyArray<{ readonly provider: string; readonly ticker: Ticker }>,
  missing: ReadonlyArray<string> = []
): MergedTicker => {
  let bid = quotes[0]!
  let ask = quotes[0]!
  for (const q of quotes) {
    if (compare(q.ticker.bidPrice, bid.ticker.bidPrice) > 0) bid = q
    if (compare(q.ticker.askPrice, ask.ticker.askPrice) < 0) ask = q
  }
  return new MergedTicker({
    bestBid: bid.ticker.bidPrice,
    bestBidProvider: bid.provider,
    bestAsk: ask.ticker.askPrice,
    bestAskProvider: ask.provider,
    quotes: quotes.map((q) =>
      new VenueQuote({
        provider: q.provider,
        bidPrice: q.ticker.bidPrice,
        bidQty: q.ticker.bidQty,
        askPrice: q.ticker.askPrice,
        askQty: q.ticker.askQty
      }, trusted)
    ),
    missing
  }, trusted)
}

interface LevelAcc {
  readonly price: Decimal
  readonly priceDec: Dec
  readonly venues: Array<{ provider: string; quantity: Decimal; sum: Dec | undefined }>
}

const aggregate = (
  books: ReadonlyArray<{ readonly provider: string; readonly levels: ReadonlyArray<Level> }>,
  descending: boolean
): Array<MergedLevel> => {
  const byPrice = new Map<string, LevelAcc>()
  for (const { levels, provider } of books) {
    for (const [price, quantity] of levels) {
      if (isZero(quantity)) continue
      const priceDec = dec(price)
      const key = priceDec.toFixed()
      let acc = byPrice.get(key)
      if (acc === undefined) {
        acc = { price, priceDec, venues: [] }
        byPrice.set(key, acc)
      }
      const venue = acc.venues.find((v) => v.provider === provider)
      if (venue === undefined) acc.venues.push({ provider, quantity, sum: undefined })
      else {
        venue.sum = (venue.sum ?? dec(venue.quantity)).plus(quantity)
        venue.quantity = toDecimal(venue.sum)
      }
    }
  }
  const levels = [...byPrice.values()]
  levels.sort((a, b) => descending ? b.priceDec.comparedTo(a.priceDec) : a.priceDec.comparedTo(b.priceDec))
  return levels.map((l) => {
    const totalQty = l.venues.length === 1
      ? l.venues[0]!.quantity
      : toDecimal(l.venues.reduce((s, v) => s.plus(v.quantity), dec("0")))
    return new MergedLevel({
      price: l.price,
      totalQty,
      venues: l.venues.map((v) => ({ provider: v.provider, quantity: v.quantity }))
    }, trusted)
  })
}

/** Venues' book snapshots, in configuration order -> levels aggregated by price with per-venue quantities. */
export const mergeBooks = (
  books: ReadonlyArray<{ readonly provider: string; readonly book: BookSnapshot }>,
  missing: ReadonlyArray<string> = []
): MergedBook =>
  new MergedBook({
    bids: aggregate(books.map((b) => ({ provider: b.provider, levels: b.book.bids })), true),
    asks: aggregate(books.map((b) => ({ provider: b.provider, levels: b.book.asks })), false),
    missing
  }, trusted)

/** Venues' trades, in arrival order -> all trades in exchange-time order (ties: provider order, then arrival). */
export const mergeTrades = (
  trades: ReadonlyArray<{ readonly provider: string; readonly trade: Trade }>,
  providerOrder: ReadonlyMap<string, number>,
  missing: ReadonlyArray<string> = []
): MergedTrades => {
  const sorted = [...trades].sort((a, b) =>
    a.trade.exchangeTs - b.trade.exchangeTs ||
    (providerOrder.get(a.provider) ?? 0) - (providerOrder.get(b.provider) ?? 0)
  )
  return new MergedTrades({
    trades: sorted.map((t) => new VenueTrade({ provider: t.provider, trade: t.trade }, trusted)),
    missing
  }, trusted)
}
