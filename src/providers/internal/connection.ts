/**
 * A reconnecting WebSocket client on `@effect/platform`'s Socket.
 *
 * One session = one connection: open (with a timeout), send the
 * subscriptions, hand every frame synchronously to `onFrame` (so frames keep
 * their order), send keepalives, and watch for silence. A session ends when
 * the venue closes (any code: a clean 1000 too, since a feed runs until it is
 * interrupted; `closeCodeIsError` makes 1006 and the rest errors), when the
 * socket fails, or when nothing arrives for `stallTimeoutMs`. Then the client
 * waits for the backoff schedule (exponential with jitter, capped; reset after
 * a session that stayed open for at least the cap) and connects again, and the venue's `onOpen`
 * resubscribes. Closing the scope of `run` closes the socket.
 *
 * Politeness: every request a venue adapter makes (a connection attempt, a
 * REST snapshot, a resubscription) first takes a token from the venue's
 * `RequestBudget` (a token bucket: a burst, then a steady rate), and waits
 * out any cool-down the venue imposed (HTTP 429/418 with its Retry-After, or
 * a rate-limit body). Retries are spaced by the backoff schedule; so no loop
 * of failures, whatever its cause, can hammer a venue.
 */
import type { Clock } from "effect"
import { Cause, Data, Duration, Effect, Option, Random, Schedule } from "effect"
import * as Socket from "@effect/platform/Socket"
import type { Backoff, RequestBudget as RequestBudgetConfig } from "../../../schema/ProviderConfig.js"
import type { Counters } from "./feed.js"
import { redactUrls } from "../../internal/redact.js"

/** The connection ended: closed by the venue, dropped, or never opened. */
class ConnectionLost extends Data.TaggedError("ConnectionLost")<{
  readonly provider: string
  readonly url: string
  readonly reason: string
}> {
  override get message(): string {
    return `connection to ${this.provider} (${this.url}) lost: ${this.reason}`
  }
}

/** Nothing arrived for too long: the connection is replaced. */
class FeedStalled extends Data.TaggedError("FeedStalled")<{
  readonly provider: string
  readonly url: string
  readonly silentMs: number
}> {
  override get message(): string {
    return `${this.provider} feed stalled: no frame for ${this.silentMs} ms`
  }
}

export type ConnectionError = ConnectionLost | FeedStalled

/** The venue refused a request as too many (HTTP 429/418, or a rate-limit body): nothing goes out for `retryAfterMs`. */
export class RateLimited extends Data.TaggedError("RateLimited")<{
  readonly provider: string
  readonly url: string
  readonly status: number
  readonly retryAfterMs: number
}> {
  override get message(): string {
    return `${this.provider} rate-limited us (HTTP ${this.status}): waiting ${this.retryAfterMs} ms before any request`
  }
}

/** A REST request that failed for another reason (transport, timeout, status). */
export class RequestFailed extends Data.TaggedError("RequestFailed")<{
  readonly provider: string
  readonly url: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.provider} request ${this.url} failed: ${this.reason}`
  }
}

/**
 * A venue's request budget: a token bucket of `burst` tokens refilled at
 * `perMinute`, and a cool-down the venue can impose. `take` waits (on the
 * Clock) for a token and for the cool-down to pass, and never fails; a
 * reservation is made at once, so concurrent takers are served in order.
 */
export interface RequestBudget {
  readonly take: Effect.Effect<void>
  /** Nothing goes out for `ms` from now (a longer cool-down already imposed stays). */
  readonly coolDown: (ms: number) => void
}

export const makeRequestBudget = (
  config: RequestBudgetConfig,
  clock: Clock.Clock,
  counters?: Counters
): RequestBudget => {
  const ratePerMs = config.perMinute / 60_000
  let tokens = config.burst
  let refilledAt = clock.unsafeCurrentTimeMillis()
  let blockedUntil = Number.NEGATIVE_INFINITY

  const waitCoolDown: Effect.Effect<void> = Effect.suspend(() => {
    const wait = blockedUntil - clock.unsafeCurrentTimeMillis()
    return wait > 0 ? Effect.sleep(Duration.millis(wait)).pipe(Effect.zipRight(waitCoolDown)) : Effect.void
  })

  const take = Effect.suspend(() => {
    const now = clock.unsafeCurrentTimeMillis()
    tokens = Math.min(config.burst, tokens + (now - refilledAt) * ratePerMs)
    refilledAt = now
    tokens -= 1
    const wait = tokens >= 0 ? 0 : Math.ceil(-tokens / ratePerMs)
    if (wait > 0 || blockedUntil > now) {
      if (counters !== undefined) counters.requestsDelayed++
    }
    return wait > 0 ? Effect.sleep(Duration.millis(wait)).pipe(Effect.zipRight(waitCoolDown)) : waitCoolDown
  })

  const coolDown = (ms: number): void => {
    blockedUntil = Math.max(blockedUntil, clock.unsafeCurrentTimeMillis() + ms)
  }

  return { take, coolDown }
}

/**
 * A Retry-After header in milliseconds: delta-seconds or an HTTP date;
 * undefined when absent or unreadable.
 */
export const retryAfterMs = (header: string | undefined, nowMs: number): number | undefined => {
  if (header === undefined) return undefined
  const text = header.trim()
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}

/** Venue error codes that mean "too many requests" (Binance -1003/-1015, OKX 50011/50061, Coinbase/Kraken wording). */
const rateLimitCodes = new Set(["-1003", "-1015", "50011", "50061"])
const rateLimitText = /too many requests|rate limit|request weight|exceeded .*rate/i

/** A response body that says the caller is rate-limited (looked at only when short). */
export const isRateLimitBody = (body: string): boolean => {
  if (body.length > 4_096) return false
  try {
    const v: unknown = JSON.parse(body)
    if (typeof v !== "object" || v === null || Array.isArray(v)) return false
    const o = v as Record<string, unknown>
    if ((typeof o.code === "number" || typeof o.code === "string") && rateLimitCodes.has(String(o.code))) return true
    for (const k of ["msg", "message", "error"]) {
      const t = o[k]
      if (typeof t === "string" && rateLimitText.test(t)) return true
      if (Array.isArray(t) && t.some((x) => typeof x === "string" && rateLimitText.test(x))) return true
    }
    return false
  } catch {
    return rateLimitText.test(body)
  }
}

/**
 * The delay before retry number `attempt` (1, 2, ...) of a failed step: the
 * backoff's exponential delay with its jitter, capped at `maxMs`; 0 for
 * attempt 0 (the first try goes out at once).
 */
export const backoffDelay = (b: Backoff, attempt: number): Effect.Effect<Duration.Duration> =>
  attempt <= 0 ? Effect.succeed(Duration.zero) : Random.next.pipe(Effect.map((r) => {
    const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, attempt - 1))
    return Duration.millis(Math.min(b.maxMs, base * (1 - b.jitter + 2 * b.jitter * r)))
  }))

/** Exponential backoff from `initialMs` by `factor`, jittered by ±`jitter`, capped at `maxMs`. */
export const backoffSchedule = (b: Backoff): Schedule.Schedule<Duration.Duration> => {
  const exp = Schedule.exponential(Duration.millis(b.initialMs), b.factor)
  const jittered = b.jitter > 0 ? Schedule.jitteredWith(exp, { min: 1 - b.jitter, max: 1 + b.jitter }) : exp
  return Schedule.union(jittered, Schedule.spaced(Duration.millis(b.maxMs))).pipe(Schedule.delays)
}

export interface ConnectionOptions {
  readonly provider: string
  readonly url: string
  readonly openTimeoutMs: number
  readonly stallTimeoutMs: number
  readonly backoff: Backoff
  readonly counters: Counters
  /** Every connection attempt takes a token first. */
  readonly budget?: RequestBudget | undefined
  /** A text message sent every `intervalMs` while connected. */
  readonly keepalive?: { readonly intervalMs: number; readonly message: string } | undefined
  /** Runs once the socket is open: send the subscriptions here. */
  readonly onOpen: (send: (text: string) => Effect.Effect<void>) => Effect.Effect<void>
  /** Every received frame, in order. Must not block. */
  readonly onFrame: (data: string) => void
  readonly onConnected: () => void
  readonly onDisconnected: (reason: string) => void
}

export interface Connection {
  /** Runs sessions until interrupted. */
  readonly run: Effect.Effect<never, never, Socket.WebSocketConstructor>
  /** Sends on the current connection; dropped when there is none. */
  readonly send: (text: string) => Effect.Effect<boolean>
  readonly isConnected: () => boolean
}

const decoder = new TextDecoder()

export const makeConnection = (opts: ConnectionOptions): Connection => {
  let current: ((chunk: string) => Effect.Effect<void, Socket.SocketError>) | undefined
  const { counters } = opts

  const send = (text: string): Effect.Effect<boolean> =>
    Effect.suspend(() =>
      current === undefined
        ? Effect.succeed(false)
        : current(text).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
    )

  const session = (onOpened: () => void): Effect.Effect<never, ConnectionError, Socket.WebSocketConstructor> =>
    Effect.scoped(Effect.gen(function*() {
      const clock = yield* Effect.clock
      const socket = yield* Socket.makeWebSocket(opts.url, {
        closeCodeIsError: (code) => code !== 1000,
        openTimeout: Duration.millis(opts.openTimeoutMs)
      })
      const write = yield* socket.writer
      let last = clock.unsafeCurrentTimeMillis()

      const watchdog: Effect.Effect<never, FeedStalled> = Effect.suspend(() => {
        const silent = clock.unsafeCurrentTimeMillis() - last
        return silent >= opts.stallTimeoutMs
          ? Effect.fail(new FeedStalled({ provider: opts.provider, url: opts.url, silentMs: silent }))
          : Effect.sleep(Duration.millis(opts.stallTimeoutMs - silent))
      }).pipe(Effect.forever)

      if (opts.keepalive !== undefined) {
        const { intervalMs, message } = opts.keepalive
        yield* Effect.sleep(Duration.millis(intervalMs)).pipe(
          Effect.zipRight(write(message)),
          Effect.forever,
          Effect.ignore,
          Effect.forkScoped
        )
      }

      const onOpen = Effect.suspend(() => {
        current = write
        last = clock.unsafeCurrentTimeMillis()
        counters.connects++
        onOpened()
        opts.onConnected()
        return opts.onOpen(send)
      })

      yield* socket.runRaw((data) => {
        last = clock.unsafeCurrentTimeMillis()
        counters.frames++
        opts.onFrame(typeof data === "string" ? data : decoder.decode(data))
      }, { onOpen }).pipe(
        Effect.mapError((e) =>
          new ConnectionLost({
            provider: opts.provider,
            url: opts.url,
            reason: Socket.SocketCloseError.is(e) ? `closed (${e.code}${e.closeReason ? `: ${e.closeReason}` : ""})` : e.message
          })
        ),
        Effect.raceFirst(watchdog)
      )
      return yield* new ConnectionLost({ provider: opts.provider, url: opts.url, reason: "closed (1000)" })
    })).pipe(Effect.ensuring(Effect.sync(() => {
      current = undefined
    })))

  const run: Effect.Effect<never, never, Socket.WebSocketConstructor> = Effect.gen(function*() {
    const clock = yield* Effect.clock
    const driver = yield* Schedule.driver(backoffSchedule(opts.backoff))
    for (let attempt = 0;; attempt++) {
      if (opts.budget !== undefined) yield* opts.budget.take
      let opened = false
      let openedAt = 0
      const exit = yield* Effect.exit(session(() => {
        opened = true
        openedAt = clock.unsafeCurrentTimeMillis()
      }))
      const error = exit._tag === "Failure" ? Cause.failureOption(exit.cause) : Option.none()
      const reason = Option.match(error, {
        onNone: () => exit._tag === "Failure" ? Cause.pretty(exit.cause) : "ended",
        onSome: (e) => e._tag === "ConnectionLost" ? e.reason : e.message
      })
      if (Option.isSome(error) && error.value._tag === "FeedStalled") counters.stalls++
      if (opened) {
        counters.disconnects++
        opts.onDisconnected(reason)
        // only a connection that held for a while starts the backoff over: a
        // venue that accepts and drops at once is retried ever more slowly
        if (clock.unsafeCurrentTimeMillis() - openedAt >= opts.backoff.maxMs) yield* driver.reset
      }
      yield* Effect.logWarning("venue connection ended; reconnecting").pipe(
        Effect.annotateLogs({ provider: opts.provider, url: redactUrls(opts.url), reason, attempt })
      )
      yield* driver.next(undefined).pipe(Effect.ignore)
      counters.reconnects++
    }
  })

  return { run, send, isConnected: () => current !== undefined }
}
