/**
 * The runtime shared by the real venue adapters: one actor fiber per
 * provider owns all book state and consumes a single inbox, fed in order by
 * the WebSocket connection (frames, connected, disconnected), by REST snapshot
 * fetches and by the periodic refresh timer. Nothing else touches the books,
 * so there are no races between a snapshot arriving and a diff being applied.
 *
 * `makeVenueProvider` is the adapter around it: fresh counters and books for
 * every run, the status, and the inputs every venue handles alike (connected,
 * disconnected, a fetched snapshot, the refresh); each venue supplies its
 * subscriptions, its frame handling and, where it has one, its REST sync.
 */
import type { Context, Scope } from "effect"
import { Duration, Effect, Either, FiberMap, ParseResult, Queue } from "effect"
import { HttpClient } from "@effect/platform/HttpClient"
import { WebSocketConstructor } from "@effect/platform/Socket"
import type { RealVenueConfig } from "../../../schema/ProviderConfig.js"
import type { OrderBook } from "../../OrderBook.js"
import type { ProviderShape } from "./feed.js"
import type { RestSync, SymbolBook } from "./books.js"
import { awaitSnapshot, disconnectAll, makeSymbolBooks, refresh, venueStatus } from "./books.js"
import type { Connection, RequestBudget } from "./connection.js"
import {
  backoffDelay,
  backoffSchedule,
  isRateLimitBody,
  makeConnection,
  makeRequestBudget,
  RateLimited,
  RequestFailed,
  retryAfterMs
} from "./connection.js"
import type { Emitter, FeedServices, Sink } from "./feed.js"
import { Counters, frameProblem, makeEmitter } from "./feed.js"
import { FrameTap } from "./tap.js"

export type Input =
  | { readonly _tag: "Frame"; readonly data: string }
  | { readonly _tag: "Connected" }
  | { readonly _tag: "Disconnected"; readonly reason: string }
  | { readonly _tag: "Snapshot"; readonly symbol: string; readonly generation: number; readonly body: string }
  | { readonly _tag: "Refresh" }

export interface VenueRuntime {
  readonly emitter: Emitter
  readonly counters: Counters
  /** Sends on the current connection (dropped when disconnected). */
  readonly send: (text: string) => Effect.Effect<boolean>
  /**
   * Fetches a REST snapshot in the background, retrying with the backoff
   * schedule; the body arrives in the inbox tagged with `generation`.
   * `attempt` counts the symbol's fetches since its book was last
   * consistent: from the second on, the fetch waits its backoff delay first.
   * Every request draws from the budget and honours a venue's rate limit.
   * A new fetch for the symbol replaces one still waiting.
   */
  readonly fetchSnapshot: (symbol: string, generation: number, url: string, attempt: number) => Effect.Effect<void>
  /**
   * Runs `work` (a resubscription, say) in the background after the backoff
   * delay for `attempt` and a token from the budget; replaces work still
   * waiting under the same key.
   */
  readonly later: (key: string, attempt: number, work: Effect.Effect<void>) => Effect.Effect<void>
  /** The venue's request budget. */
  readonly budget: RequestBudget
  /** Abandons every snapshot fetch and delayed request in flight. */
  readonly cancelFetches: Effect.Effect<void>
}

export interface VenueSpec {
  readonly provider: string
  readonly config: RealVenueConfig
  readonly url: string
  readonly counters: Counters
  readonly keepalive?: string | undefined
  /** Subscription messages sent on every (re)connect. */
  readonly subscriptions: () => ReadonlyArray<string>
  /** Handles one input; all book state lives behind this function. */
  readonly handle: (input: Input, rt: VenueRuntime) => Effect.Effect<void>
  /** Canonical symbol -> the venue's (what a frame tap records about the run). */
  readonly symbolMap: Readonly<Record<string, string>>
}

export interface VenuePlatform {
  readonly http: HttpClient
  readonly webSocket: Context.Tag.Service<typeof WebSocketConstructor>
}

const runVenue = (
  spec: VenueSpec,
  services: FeedServices,
  platform: VenuePlatform,
  sink: Sink,
  onConnection: (c: Connection) => void
): Effect.Effect<never, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const { config, counters } = spec
    const emitter = makeEmitter(spec.provider, services, counters, clock, sink)
    const inbox = yield* Effect.acquireRelease(Queue.unbounded<Input>(), Queue.shutdown)
    const fetches = yield* FiberMap.make<string, void, never>()
    const budget = makeRequestBudget(config.requestBudget, clock, counters)
    // the frame tap of this run (`tap.ts`), if any: each hook below is one branch when there is none
    const tap = (yield* FrameTap).open?.({ provider: spec.provider, config, url: spec.url, symbolMap: spec.symbolMap, clock })
    /** `send`, telling the tap of every frame that went out (a send that answers false did not). */
    const tapped = <A>(send: (text: string) => Effect.Effect<A>) =>
      tap === undefined ? send : (text: string) => Effect.tap(send(text), (sent) => {
        if (sent !== false) tap.sent(text)
      })

    const connection = makeConnection({
      provider: spec.provider,
      url: spec.url,
      openTimeoutMs: config.openTimeoutMs,
      stallTimeoutMs: config.stallTimeoutMs,
      backoff: config.backoff,
      counters,
      budget,
      keepalive: spec.keepalive === undefined ? undefined : { intervalMs: config.pingIntervalMs, message: spec.keepalive },
      onOpen: (send) => Effect.forEach(spec.subscriptions(), tapped(send), { discard: true }),
      onFrame: tap === undefined
        ? (data) => Queue.unsafeOffer(inbox, { _tag: "Frame", data })
        : (data) => {
          tap.received(data)
          Queue.unsafeOffer(inbox, { _tag: "Frame", data })
        },
      onConnected: () => {
        tap?.connected()
        Queue.unsafeOffer(inbox, { _tag: "Connected" })
      },
      onDisconnected: (reason) => Queue.unsafeOffer(inbox, { _tag: "Disconnected", reason })
    })
    onConnection(connection)

    /** The venue said "too many": counted, and no request goes out until it has been waited out (at most an hour). */
    const rateLimited = (url: string, status: number, header: string | undefined): RateLimited => {
      counters.rateLimited++
      const asked = retryAfterMs(header, clock.unsafeCurrentTimeMillis()) ?? config.requestBudget.rateLimitedMs
      const wait = Math.min(asked, 3_600_000)
      budget.coolDown(wait)
      return new RateLimited({ provider: spec.provider, url, status, retryAfterMs: wait })
    }

    /** One GET within the budget: the body, or why not (a rate limit recognised by status or body). */
    const get = (url: string): Effect.Effect<string, RateLimited | RequestFailed> =>
      Effect.gen(function*() {
        yield* budget.take
        counters.snapshotFetches++
        const failed = (reason: string) => new RequestFailed({ provider: spec.provider, url, reason })
        const { body, response } = yield* platform.http.get(url).pipe(
          Effect.flatMap((response) => Effect.map(response.text, (body) => ({ body, response }))),
          Effect.mapError((e) => failed(e.message)),
          Effect.timeoutFail({ duration: Duration.millis(config.openTimeoutMs), onTimeout: () => failed(`no answer in ${config.openTimeoutMs} ms`) })
        )
        if (response.status === 429 || response.status === 418 || isRateLimitBody(body)) {
          return yield* rateLimited(url, response.status, response.headers["retry-after"])
        }
        if (response.status < 200 || response.status >= 300) return yield* failed(`HTTP ${response.status}`)
        tap?.fetched(url, body)
        return body
      })

    const later = (key: string, attempt: number, work: Effect.Effect<void>): Effect.Effect<void> =>
      FiberMap.run(fetches, key, backoffDelay(config.backoff, attempt).pipe(Effect.flatMap(Effect.sleep), Effect.zipRight(work))).pipe(Effect.asVoid)

    const fetchSnapshot = (symbol: string, generation: number, url: string, attempt: number): Effect.Effect<void> =>
      later(
        `snapshot:${symbol}`,
        attempt,
        get(url).pipe(
          Effect.tapError((e) =>
            Effect.sync(() => counters.snapshotFailures++).pipe(
              Effect.zipRight(Effect.logWarning("book snapshot fetch failed").pipe(
                Effect.annotateLogs({ provider: spec.provider, symbol, url, error: e.message })
              ))
            )
          ),
          Effect.retry(backoffSchedule(config.backoff)),
          Effect.flatMap((body) => Queue.offer(inbox, { _tag: "Snapshot", symbol, generation, body })),
          Effect.asVoid,
          Effect.orDie
        )
      )

    const rt: VenueRuntime = {
      emitter,
      counters,
      send: tapped(connection.send),
      fetchSnapshot,
      later: (key, attempt, work) => later(key, attempt, budget.take.pipe(Effect.zipRight(work))),
      budget,
      cancelFetches: FiberMap.clear(fetches)
    }

    yield* connection.run.pipe(
      Effect.provideService(WebSocketConstructor, platform.webSocket),
      Effect.forkScoped
    )
    yield* Effect.sleep(Duration.millis(config.snapshotIntervalMs)).pipe(
      Effect.zipRight(Queue.offer(inbox, { _tag: "Refresh" })),
      Effect.forever,
      Effect.forkScoped
    )
    return yield* Queue.take(inbox).pipe(
      Effect.flatMap((input) => spec.handle(input, rt)),
      Effect.forever
    )
  })

/** One run's books: in the configured order, and by the venue's symbol. */
export interface VenueBooks<D> {
  readonly all: ReadonlyArray<SymbolBook<D>>
  readonly byVenue: ReadonlyMap<string, SymbolBook<D>>
}

/** What a venue does in one run, over that run's books. */
export interface VenueSession<D> {
  /** Subscription messages sent on every (re)connect. */
  readonly subscriptions: () => ReadonlyArray<string>
  readonly onFrame: (rt: VenueRuntime, raw: string) => Effect.Effect<void>
  /** Venue state to forget on a new connection, besides the books. */
  readonly onConnected?: () => void
  /** Where books sync from a REST snapshot: fetched bodies go here. */
  readonly restSync?: RestSync<D>
}

export interface VenueAdapter<D> {
  readonly name: string
  readonly config: RealVenueConfig
  readonly url: string
  readonly keepalive?: string
  /** The venue's spelling of a canonical symbol. */
  readonly venueSymbol: (canonical: string) => string
  /** Levels kept per side in each book (all by default). */
  readonly maxDepth?: number
  /** Levels per side in published snapshots. */
  readonly depth: number
  /** Largest frame parsed, in UTF-8 bytes: a larger one is refused before parsing. */
  readonly maxFrameBytes: number
  /** The checksum published with a snapshot, where the venue has one. */
  readonly checksum?: (book: OrderBook) => number
  readonly session: (books: VenueBooks<D>) => VenueSession<D>
}

/**
 * The inputs every venue handles alike: on connect every book waits for a
 * fresh snapshot, on disconnect every book goes stale, a fetched snapshot goes
 * to the REST sync, the refresh republishes the consistent books.
 */
const handleInput = <D>(
  adapter: VenueAdapter<D>,
  books: ReadonlyArray<SymbolBook<D>>,
  session: VenueSession<D>
) =>
(input: Input, rt: VenueRuntime): Effect.Effect<void> => {
  switch (input._tag) {
    case "Frame": {
      // checked before any parsing: a huge frame costs one length comparison, a deep one a scan
      const problem = frameProblem(input.data, adapter.maxFrameBytes)
      return problem === undefined
        ? session.onFrame(rt, input.data)
        : rt.emitter.malformed(problem.reason, input.data, problem.detail)
    }
    case "Connected":
      return Effect.sync(() => {
        session.onConnected?.()
        for (const sb of books) awaitSnapshot(sb)
      })
    case "Disconnected":
      return disconnectAll(rt, books, input.reason)
    case "Snapshot": {
      const sb = books.find((b) => b.symbol === input.symbol)
      return sb === undefined || session.restSync === undefined
        ? Effect.void
        : session.restSync.receive(rt, sb, input.generation, input.body)
    }
    case "Refresh":
      return refresh(rt, books, adapter.depth, adapter.checksum)
  }
}

/**
 * A REST snapshot decoder that refuses a body over `limit` bytes or nested
 * too deep unparsed (it is then handled like any snapshot that does not
 * decode).
 */
export const limitBody = <S>(
  limit: number,
  decode: (body: string) => Either.Either<S, ParseResult.ParseError>
) =>
(body: string): Either.Either<S, ParseResult.ParseError> => {
  const problem = frameProblem(body, limit)
  return problem === undefined
    ? decode(body)
    : Either.left(new ParseResult.ParseError({ issue: new ParseResult.Unexpected(undefined, `snapshot body refused: ${problem.detail}`) }))
}

/** A provider for a real venue: fresh counters and books on every run, and their status. */
export const makeVenueProvider = <D>(
  adapter: VenueAdapter<D>,
  services: FeedServices
): Effect.Effect<ProviderShape, never, HttpClient | WebSocketConstructor> =>
  Effect.gen(function*() {
    const http = yield* HttpClient
    const webSocket = yield* WebSocketConstructor
    const { config, name } = adapter
    let counters = new Counters()
    let books: ReadonlyArray<SymbolBook<D>> = []
    let connection: Connection | undefined

    const run = (sink: Sink) =>
      Effect.suspend(() => {
        counters = new Counters()
        books = makeSymbolBooks<D>(config.symbols, adapter.venueSymbol, adapter.maxDepth)
        const session = adapter.session({ all: books, byVenue: new Map(books.map((sb) => [sb.venueSymbol, sb])) })
        return runVenue(
          {
            provider: name,
            config,
            url: adapter.url,
            counters,
            keepalive: adapter.keepalive,
            subscriptions: session.subscriptions,
            handle: handleInput(adapter, books, session),
            symbolMap: Object.fromEntries(books.map((sb) => [sb.symbol, sb.venueSymbol]))
          },
          services,
          { http, webSocket },
          sink,
          (c) => {
            connection = c
          }
        )
      })

    return {
      name,
      symbols: config.symbols,
      run,
      status: Effect.sync(() => venueStatus(name, connection?.isConnected() ?? false, books, counters)),
      stats: () => counters.snapshot()
    }
  })
