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
 * a session that opened) and connects again, and the venue's `onOpen`
 * resubscribes. Closing the scope of `run` closes the socket.
 */
import { Cause, Data, Duration, Effect, Option, Schedule } from "effect"
import * as Socket from "@effect/platform/Socket"
import type { Backoff } from "../../../schema/ProviderConfig.js"
import type { Counters } from "./feed.js"

/** The connection ended: closed by the venue, dropped, or never opened. */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{
  readonly provider: string
  readonly url: string
  readonly reason: string
}> {
  override get message(): string {
    return `connection to ${this.provider} (${this.url}) lost: ${this.reason}`
  }
}

/** Nothing arrived for too long: the connection is replaced. */
export class FeedStalled extends Data.TaggedError("FeedStalled")<{
  readonly provider: string
  readonly url: string
  readonly silentMs: number
}> {
  override get message(): string {
    return `${this.provider} feed stalled: no frame for ${this.silentMs} ms`
  }
}

export type ConnectionError = ConnectionLost | FeedStalled

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
    const driver = yield* Schedule.driver(backoffSchedule(opts.backoff))
    for (let attempt = 0;; attempt++) {
      let opened = false
      const exit = yield* Effect.exit(session(() => {
        opened = true
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
        yield* driver.reset
      }
      yield* Effect.logWarning("venue connection ended; reconnecting").pipe(
        Effect.annotateLogs({ provider: opts.provider, url: opts.url, reason, attempt })
      )
      yield* driver.next(undefined).pipe(Effect.ignore)
      counters.reconnects++
    }
  })

  return { run, send, isConnected: () => current !== undefined }
}
