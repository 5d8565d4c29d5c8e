/**
 * Readiness that tells the truth across processes.
 *
 * - Feed side, `publishHeartbeats`: every `intervalMs` the feed publishes, per
 *   provider, a heartbeat on `feed.heartbeat.<provider>` (core NATS): the
 *   provider, the feed's epoch, the symbols it quotes and whether it is
 *   connected to its venue. Only the feed user may publish there (see
 *   `Permissions.ts`).
 * - Strategy side, `FeedMonitor`: listens to every heartbeat and answers,
 *   for the symbols the process listens to, whether a live feed carries each:
 *   a heartbeat heard within `staleAfterMs` from a provider that is connected
 *   and quotes the symbol. A strategy whose feed was killed (-9 or SIGTERM)
 *   stops being ready `staleAfterMs` after the last heartbeat.
 * - Feed side, `ControlProgress`: the Control Plane's progress. Each command
 *   is tracked from start to end; a command in progress for longer than
 *   `stallAfterMs` (with none completed meanwhile), or commands waiting in
 *   JetStream for that long with none completed, make the feed not ready, so
 *   a Control Plane stuck on one command (or no longer taking any) is visible
 *   in `/ready` and in metrics, not hidden behind a 200.
 *
 * Time is the Effect `Clock`: tests drive it with `TestClock`.
 */
import type { Msg, Subscription } from "@nats-io/transport-node"
import { Context, Effect, Either, Layer, Schedule, Schema, type Scope } from "effect"
import type { ProviderShape } from "../Provider.js"
import { NatsConnection } from "./Connection.js"
import { HEARTBEAT_SUBJECTS, heartbeatSubject, token } from "./Subjects.js"

export interface HeartbeatSettings {
  /** How often the feed publishes each provider's heartbeat. */
  readonly intervalMs: number
  /** A feed not heard from for this long is not live. */
  readonly staleAfterMs: number
  /** A command in progress for this long, none completed meanwhile: the Control Plane is stuck. */
  readonly stallAfterMs: number
}

const defaultHeartbeatSettings: HeartbeatSettings = {
  intervalMs: 1_000,
  staleAfterMs: 5_000,
  stallAfterMs: 10_000
}

export class HeartbeatConfig extends Context.Tag("meltica/nats/HeartbeatConfig")<HeartbeatConfig, HeartbeatSettings>() {
  static readonly layer = (settings: Partial<HeartbeatSettings> = {}): Layer.Layer<HeartbeatConfig> =>
    Layer.succeed(HeartbeatConfig, { ...defaultHeartbeatSettings, ...settings })
}

const Name = Schema.String.pipe(Schema.maxLength(128))

/** A feed's heartbeat for one provider, as it goes on the wire (JSON). */
class FeedHeartbeat extends Schema.Class<FeedHeartbeat>("FeedHeartbeat")({
  provider: Name,
  epoch: Name,
  symbols: Schema.Array(Name).pipe(Schema.maxItems(1_024)),
  connected: Schema.Boolean
}) {}

const encodeHeartbeat = Schema.encodeSync(Schema.parseJson(FeedHeartbeat))
const decodeHeartbeat = Schema.decodeUnknownEither(Schema.parseJson(FeedHeartbeat))

/** Heartbeats larger than this are refused before parsing. */
const MAX_HEARTBEAT_BYTES = 64 * 1_024

/** Providers remembered at most (a heartbeat from one more is refused and counted). */
const MAX_PROVIDERS = 4_096

/**
 * Feed side: each provider's heartbeat every `intervalMs`, for the life of
 * the scope (the first at once).
 */
export const publishHeartbeats = (
  providers: ReadonlyArray<ProviderShape>,
  epoch: string
): Effect.Effect<void, never, NatsConnection | HeartbeatConfig | Scope.Scope> =>
  Effect.gen(function*() {
    const { nc } = yield* NatsConnection
    const settings = yield* HeartbeatConfig
    const beat = Effect.forEach(providers, (p) =>
      Effect.map(p.status, (s) => {
        const text = encodeHeartbeat(FeedHeartbeat.make({
          provider: p.name,
          epoch,
          symbols: [...p.symbols],
          connected: s.connected
        }))
        try {
          nc.publish(heartbeatSubject(p.name), text)
        } catch {
          // the connection is closed or reconnecting: the next beat goes out once it is back
        }
      }), { discard: true })
    yield* beat.pipe(Effect.repeat(Schedule.spaced(settings.intervalMs)), Effect.forkScoped)
  })

/** What was last heard of one provider's feed. */
export interface FeedSeen {
  readonly provider: string
  readonly epoch: string
  readonly symbols: ReadonlySet<string>
  readonly connected: boolean
  /** Clock milliseconds. */
  readonly at: number
}

/**
 * The liveness rules, over what was heard: for each wanted symbol token, a
 * live feed is one heard within `staleAfterMs`, connected, that quotes it.
 */
export const feedReasons = (
  seen: ReadonlyMap<string, FeedSeen>,
  wanted: Iterable<string>,
  now: number,
  staleAfterMs: number
): ReadonlyArray<string> => {
  const reasons: Array<string> = []
  for (const symbolToken of wanted) {
    const carriers = [...seen.values()].filter((f) => f.symbols.has(symbolToken))
    if (carriers.some((f) => f.connected && now - f.at <= staleAfterMs)) continue
    const heard = carriers.map((f) =>
      `${f.provider} ${now - f.at > staleAfterMs ? `last heard ${Math.round((now - f.at) / 1_000)} s ago` : "not connected to its venue"}`
    )
    reasons.push(`feed: no live feed for ${symbolToken}${heard.length === 0 ? " (no heartbeat heard)" : ` (${heard.join(", ")})`}`)
  }
  return reasons
}

export interface FeedMonitorStats {
  readonly heartbeats: number
  /** Refused: not a heartbeat, too large, naming another provider than its subject, or one provider too many. */
  readonly malformed: number
  /** A provider's heartbeat came with a new epoch: its feed restarted. */
  readonly epochChanges: number
  /** Providers heard within `staleAfterMs` and connected. */
  readonly live: ReadonlyArray<string>
  readonly stale: ReadonlyArray<string>
}

/** The symbol token of a market-data subject (`md.<provider|*|merged>.<symbol>.<kind>`). */
export const symbolTokenOf = (subject: string): string | undefined => subject.split(".")[2]

export class FeedMonitor extends Effect.Service<FeedMonitor>()("meltica/nats/FeedMonitor", {
  scoped: Effect.gen(function*() {
    const { nc } = yield* NatsConnection
    const settings = yield* HeartbeatConfig
    const clock = yield* Effect.clock
    const seen = new Map<string, FeedSeen>()
    let heartbeats = 0
    let malformed = 0
    let epochChanges = 0

    const onMessage = (msg: Msg): void => {
      const decoded = msg.data.length > MAX_HEARTBEAT_BYTES ? undefined : decodeHeartbeat(msg.string())
      if (decoded === undefined || Either.isLeft(decoded)) {
        malformed++
        return
      }
      const hb = decoded.right
      const before = seen.get(hb.provider)
      // the subject is the identity (only the feed may publish there): a payload naming another provider is refused
      if (msg.subject !== heartbeatSubject(hb.provider) || (before === undefined && seen.size >= MAX_PROVIDERS)) {
        malformed++
        return
      }
      heartbeats++
      if (before !== undefined && before.epoch !== hb.epoch) epochChanges++
      seen.set(hb.provider, {
        provider: hb.provider,
        epoch: hb.epoch,
        symbols: new Set(hb.symbols.map(token)),
        connected: hb.connected,
        at: clock.unsafeCurrentTimeMillis()
      })
    }

    const sub: Subscription = yield* Effect.acquireRelease(
      Effect.sync(() =>
        nc.subscribe(HEARTBEAT_SUBJECTS, {
          callback: (err, msg) => {
            if (err === null) onMessage(msg)
          }
        })
      ),
      (s) =>
        Effect.sync(() => {
          try {
            s.unsubscribe()
          } catch {
            // closed with the connection
          }
        })
    )

    const isLive = (f: FeedSeen, now: number) => f.connected && now - f.at <= settings.staleAfterMs

    return {
      /** Completes once the server has the heartbeat subscription (a round trip). */
      ready: Effect.tryPromise(() => nc.flush()).pipe(Effect.ignore, Effect.as(sub.getSubject())),
      /** Why the symbols (as subject tokens) lack a live feed; empty when each has one. */
      reasons: (symbolTokens: Iterable<string>): ReadonlyArray<string> =>
        feedReasons(seen, symbolTokens, clock.unsafeCurrentTimeMillis(), settings.staleAfterMs),
      seen: (): ReadonlyMap<string, FeedSeen> => seen,
      stats: (): FeedMonitorStats => {
        const now = clock.unsafeCurrentTimeMillis()
        const all = [...seen.values()]
        return {
          heartbeats,
          malformed,
          epochChanges,
          live: all.filter((f) => isLive(f, now)).map((f) => f.provider),
          stale: all.filter((f) => !isLive(f, now)).map((f) => f.provider)
        }
      }
    } as const
  })
}) {}

export interface ControlProgressStats {
  readonly started: number
  readonly completed: number
  readonly inFlight: number
  /** How long the oldest command in progress has been running, ms (0: none). */
  readonly oldestInFlightMs: number
  /** Commands the server holds for the Control Plane, not yet delivered or not yet acknowledged (last look). */
  readonly pending: number
  /** True while the Control Plane counts as stuck. */
  readonly stalled: boolean
}

/** Feed side: the Control Plane's progress, command by command. */
export class ControlProgress extends Effect.Service<ControlProgress>()("meltica/nats/ControlProgress", {
  effect: Effect.gen(function*() {
    const settings = yield* HeartbeatConfig
    const clock = yield* Effect.clock
    const running = new Map<number, number>()
    let next = 0
    let started = 0
    let completed = 0
    let lastCompletedAt = clock.unsafeCurrentTimeMillis()
    let pending = 0

    /** Runs `effect` as one command of the Control Plane: its start and its end are recorded. */
    const track = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.suspend(() => {
        const id = next++
        started++
        running.set(id, clock.unsafeCurrentTimeMillis())
        return Effect.ensuring(
          effect,
          Effect.sync(() => {
            running.delete(id)
            completed++
            lastCompletedAt = clock.unsafeCurrentTimeMillis()
          })
        )
      })

    const oldest = (now: number): number => {
      let min = now
      for (const t of running.values()) if (t < min) min = t
      return now - min
    }

    /** How long the Control Plane has been stuck: work in progress or waiting, and none finished meanwhile. */
    const stalledFor = (now: number): number =>
      running.size > 0 ? Math.min(oldest(now), now - lastCompletedAt) : pending > 0 ? now - lastCompletedAt : 0

    return {
      track,
      /**
       * What the server holds for the Control Plane (the durable consumer's
       * pending and unacknowledged commands): waiting commands with none
       * finished for `stallAfterMs` also mean a stuck Control Plane (its pull
       * session gone, or a command it cannot finish).
       */
      notePending: (n: number): void => {
        if (n > 0 && pending === 0 && running.size === 0) lastCompletedAt = Math.max(lastCompletedAt, clock.unsafeCurrentTimeMillis())
        pending = n
      },
      reasons: (): ReadonlyArray<string> => {
        const now = clock.unsafeCurrentTimeMillis()
        const stuck = stalledFor(now)
        if (stuck <= settings.stallAfterMs) return []
        const s = Math.round(stuck / 1_000)
        return [
          running.size > 0
            ? `control plane: ${running.size} command(s) in progress, none handled for ${s} s`
            : `control plane: ${pending} command(s) waiting in JetStream, none handled for ${s} s`
        ]
      },
      stats: (): ControlProgressStats => {
        const now = clock.unsafeCurrentTimeMillis()
        return {
          started,
          completed,
          inFlight: running.size,
          oldestInFlightMs: running.size === 0 ? 0 : oldest(now),
          pending,
          stalled: stalledFor(now) > settings.stallAfterMs
        }
      }
    } as const
  })
}) {}
