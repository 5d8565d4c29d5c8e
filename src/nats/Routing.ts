/**
 * One routing version across feed processes.
 *
 * The routing version belongs to the one feed that runs the Control Plane
 * (its Orchestrator stages and flips the routing table, and its ControlAcks
 * tell each consumer the minimum version it accepts). A feed that publishes
 * market data only (`layerNatsMarketFeed`: no Orchestrator, no Control Plane)
 * has no version of its own; stamped 0, its data would be skipped as stale by
 * every consumer that has had an ack. So:
 *
 * - Control Plane feed, `announceRoutingVersion`: publishes its current
 *   version on `feed.routing` (core NATS) at once, within `CHANGE_CHECK` of
 *   every change (a flip), and every heartbeat interval (for feeds that start
 *   later).
 * - Market-only feed, `RoutingFollower`: listens there and stamps its market
 *   data with the version last heard, so its data is skipped exactly when a
 *   consumer has moved past the routing it was published under (after a flip,
 *   until the announcement arrives), like the Control Plane feed's own. It is
 *   not ready until it has heard one (`heard`). It follows the last version
 *   announced (not the highest), so a restarted Control Plane feed is followed.
 *   An announcement that does not decode is counted and ignored.
 */
import type { Msg, Subscription } from "@nats-io/transport-node"
import { Effect, Either, Schedule, Schema, type Scope } from "effect"
import { NatsConnection } from "./Connection.js"
import { HeartbeatConfig } from "./Heartbeat.js"
import { ROUTING_SUBJECT } from "./Subjects.js"

class RoutingAnnouncement extends Schema.Class<RoutingAnnouncement>("RoutingAnnouncement")({
  routingVersion: Schema.NonNegativeInt
}) {}

const encodeAnnouncement = Schema.encodeSync(Schema.parseJson(RoutingAnnouncement))
const decodeAnnouncement = Schema.decodeUnknownEither(Schema.parseJson(RoutingAnnouncement))

/** Announcements larger than this are refused before parsing. */
const MAX_ANNOUNCEMENT_BYTES = 256

/** How often the Control Plane feed looks for a new version to announce. */
const CHANGE_CHECK = "20 millis"

/**
 * Control Plane feed: announces `current()` for the life of the scope (at
 * once, on each change, and every heartbeat interval).
 */
export const announceRoutingVersion = (
  current: () => number
): Effect.Effect<void, never, NatsConnection | HeartbeatConfig | Scope.Scope> =>
  Effect.gen(function*() {
    const { nc } = yield* NatsConnection
    const { intervalMs } = yield* HeartbeatConfig
    let last = -1
    let lastAt = 0
    const check = Effect.clockWith((clock) =>
      Effect.sync(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const v = current()
        if (v === last && now - lastAt < intervalMs) return
        try {
          nc.publish(ROUTING_SUBJECT, encodeAnnouncement(RoutingAnnouncement.make({ routingVersion: v })))
          last = v
          lastAt = now
        } catch {
          // connection closed: the next check announces again
        }
      })
    )
    yield* check.pipe(Effect.repeat(Schedule.spaced(CHANGE_CHECK)), Effect.forkScoped)
  })

export interface RoutingFollowerStats {
  readonly routingVersion: number
  readonly announcements: number
  readonly invalid: number
}

/** Market-only feed: the Control Plane feed's routing version, as last announced. */
export class RoutingFollower extends Effect.Service<RoutingFollower>()("meltica/nats/RoutingFollower", {
  scoped: Effect.gen(function*() {
    const { nc } = yield* NatsConnection
    let version = 0
    let heard = false
    let announcements = 0
    let invalid = 0
    const onMessage = (msg: Msg): void => {
      const decoded = msg.data.length > MAX_ANNOUNCEMENT_BYTES ? undefined : decodeAnnouncement(msg.string())
      if (decoded === undefined || Either.isLeft(decoded)) {
        invalid++
        return
      }
      announcements++
      version = decoded.right.routingVersion
      heard = true
    }
    yield* Effect.acquireRelease(
      Effect.sync((): Subscription => nc.subscribe(ROUTING_SUBJECT, { callback: (err, msg) => err ? undefined : onMessage(msg) })),
      (sub) => Effect.sync(() => sub.unsubscribe())
    )
    return {
      /** The version to stamp market data with (0 until one is heard). */
      version: (): number => version,
      /** Whether a Control Plane feed has been heard. */
      heard: (): boolean => heard,
      stats: (): RoutingFollowerStats => ({ routingVersion: version, announcements, invalid })
    } as const
  })
}) {}
