/**
 * A venue's private stream (order updates, fills) on the gateway's
 * reconnecting WebSocket client (`providers/internal/connection.ts`): open
 * with a timeout, authenticate and subscribe in `onOpen`, keepalive, stall
 * watchdog, exponential backoff with jitter between sessions.
 *
 * The adapter decodes each frame in `onFrame` and says what it means through
 * `emit`: an order update, or `Connected` once the venue confirmed the
 * subscription (the engine reconciles then). A disconnect is emitted here.
 * A frame the adapter cannot read is counted (`malformed`) and logged with
 * its first 200 characters, never a credential: private frames carry none.
 */
import { Effect, Queue, type Scope } from "effect"
import { WebSocketConstructor } from "@effect/platform/Socket"
import type { Context } from "effect"
import { Backoff } from "../../../schema/ProviderConfig.js"
import { makeConnection } from "../../providers/internal/connection.js"
import { Counters } from "../../providers/internal/feed.js"
import type { StreamUpdate } from "./LiveAdapter.js"

/** Reconnection delays: from `initialMs`, times `factor` per failure, at most `maxMs`, spread by `jitter` (0 to 1). */
export interface ReconnectBackoff {
  readonly initialMs: number
  readonly maxMs: number
  readonly factor: number
  readonly jitter: number
}

/** How an adapter's configuration may tune its private stream (the adapter supplies each default). */
export interface StreamTuning {
  readonly openTimeoutMs?: number
  readonly stallTimeoutMs?: number
  readonly keepaliveMs?: number
  readonly backoff?: ReconnectBackoff
}

export interface PrivateStreamOptions {
  readonly venue: string
  readonly url: string
  readonly webSocket: Context.Tag.Service<typeof WebSocketConstructor>
  readonly openTimeoutMs?: number | undefined
  /** Silence after which the connection is replaced. Default 90 s. */
  readonly stallTimeoutMs?: number | undefined
  readonly keepalive?: { readonly intervalMs: number; readonly message: string } | undefined
  readonly backoff?: ReconnectBackoff | undefined
  /** Authenticate and subscribe: runs on every (re)connect. */
  readonly onOpen: (send: (text: string) => Effect.Effect<void>) => Effect.Effect<void>
  /**
   * Reads one frame: `emit` what it means, `reply` a message to send back on
   * this connection (a subscription after a login answer); answer false when
   * the frame could not be read.
   */
  readonly onFrame: (text: string, emit: (update: StreamUpdate) => void, reply: (text: string) => void) => boolean
}

export interface PrivateStream {
  readonly run: (onUpdate: (update: StreamUpdate) => void) => Effect.Effect<never, never, Scope.Scope>
  readonly stats: () => { readonly connects: number; readonly disconnects: number; readonly malformed: number }
}

export const makePrivateStream = (opts: PrivateStreamOptions): PrivateStream => {
  const counters = new Counters()
  let malformed = 0
  const run = (onUpdate: (update: StreamUpdate) => void): Effect.Effect<never, never, Scope.Scope> =>
    Effect.gen(function*() {
      const replies = yield* Effect.acquireRelease(Queue.unbounded<string>(), Queue.shutdown)
      const reply = (text: string) => {
        Queue.unsafeOffer(replies, text)
      }
      const connection = makeConnection({
        provider: `${opts.venue}-private`,
        url: opts.url,
        openTimeoutMs: opts.openTimeoutMs ?? 10_000,
        stallTimeoutMs: opts.stallTimeoutMs ?? 90_000,
        backoff: Backoff.make(opts.backoff ?? { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 }),
        counters,
        keepalive: opts.keepalive,
        onOpen: (send) => opts.onOpen((text) => Effect.asVoid(send(text))),
        onFrame: (data) => {
          if (!opts.onFrame(data, onUpdate, reply)) malformed++
        },
        onConnected: () => {},
        onDisconnected: (reason) => onUpdate({ _tag: "Disconnected", reason })
      })
      yield* Queue.take(replies).pipe(Effect.flatMap(connection.send), Effect.forever, Effect.forkScoped)
      return yield* connection.run.pipe(Effect.provideService(WebSocketConstructor, opts.webSocket))
    })
  return {
    run,
    stats: () => ({ connects: counters.connects, disconnects: counters.disconnects, malformed })
  }
}
