/**
 * The NATS link's figures for `Status` (`NatsStatus.layerFeed`,
 * `NatsStatus.layerStrategy`): the connection, and the publishers and
 * subscribers of the process's role, published as the `meltica_nats_*`
 * metrics and shown under `nats` in the status snapshot. A critical event the
 * server refused for good keeps the feed not ready for a while.
 */
import { Effect, Layer, MetricLabel } from "effect"
import {
  natsCommandsHandled,
  natsCommandsPublishFailed,
  natsCommandsRefused,
  natsCommandsSubmitted,
  natsCommandsTerminated,
  natsConnected,
  natsControlPlaneCompleted,
  natsControlPlaneInFlight,
  natsControlPlanePending,
  natsControlPlaneStalled,
  natsCriticalDelivered,
  natsCriticalInFlight,
  natsCriticalPublished,
  natsCriticalUnpublishable,
  natsFeedEpochChanges,
  natsFeedHeartbeats,
  natsFeedLive,
  natsMalformed,
  natsRoutingVersion,
  natsControlPlaneLeaseLost,
  natsMarketDropped,
  natsMarketPublishFailed,
  natsMarketMessages,
  natsMarketPublished,
  natsMarketReceived,
  natsMarketSubjects,
  natsPermissionDenied,
  natsReconnects,
} from "../Metrics.js"
import { type MetricSink, NatsStatusSource, type NatsStatusView } from "../Status.js"
import { CommandConsumer, CommandPublisher } from "./Commands.js"
import { NatsConnection } from "./Connection.js"
import { CriticalPublisher, CriticalSubscriber } from "./CriticalChannel.js"
import { ControlProgress, FeedMonitor } from "./Heartbeat.js"
import { ControlPlaneLease } from "./ControlPlaneLease.js"
import { MarketPublisher, MarketSubscriber } from "./Market.js"
import { RoutingFollower } from "./Routing.js"

const label = MetricLabel.make

/** The NATS services of a process: the connection, and those of its role. */
interface Parts {
  readonly connection: NatsConnection
  readonly marketOut?: MarketPublisher
  readonly marketIn?: MarketSubscriber
  readonly criticalOut?: CriticalPublisher
  readonly criticalIn?: CriticalSubscriber
  readonly commandsOut?: CommandPublisher
  readonly commandsIn?: CommandConsumer
  readonly feeds?: FeedMonitor
  readonly progress?: ControlProgress
  readonly routing?: RoutingFollower
  readonly lease?: ControlPlaneLease
}

const sample = (parts: Parts) => ({ count, set }: MetricSink): NatsStatusView => {
  const c = parts.connection.stats()
  set(natsConnected, c.connected ? 1 : 0)
  count(natsReconnects, c.reconnects)
  count(natsPermissionDenied, c.permissionDenied)
  if (parts.feeds !== undefined) {
    const f = parts.feeds.stats()
    count(natsFeedHeartbeats, f.heartbeats)
    count(natsFeedEpochChanges, f.epochChanges)
    for (const p of f.live) set(natsFeedLive, 1, [label("provider", p)])
    for (const p of f.stale) set(natsFeedLive, 0, [label("provider", p)])
  }
  if (parts.progress !== undefined) {
    const p = parts.progress.stats()
    count(natsControlPlaneCompleted, p.completed)
    set(natsControlPlaneInFlight, p.inFlight)
    set(natsControlPlaneStalled, p.stalled ? 1 : 0)
    set(natsControlPlanePending, p.pending)
  }
  let malformedFrames = 0
  if (parts.routing !== undefined) {
    const r = parts.routing.stats()
    set(natsRoutingVersion, r.routingVersion)
    count(natsMalformed, r.invalid, [label("channel", "routing")])
    malformedFrames += r.invalid
  }
  if (parts.lease !== undefined) set(natsControlPlaneLeaseLost, parts.lease.lost() ? 1 : 0)
  const market = { published: 0, received: 0, dropped: 0, subjects: 0 }
  if (parts.marketOut !== undefined) {
    const m = parts.marketOut.stats()
    market.published = m.published
    count(natsMarketPublished, m.published)
    count(natsMarketMessages, m.messages)
    count(natsMarketPublishFailed, m.failed)
  }
  if (parts.marketIn !== undefined) {
    const m = parts.marketIn.stats()
    market.received = m.received
    market.dropped = m.dropped
    market.subjects = m.subjects
    count(natsMarketReceived, m.received)
    count(natsMarketDropped, m.dropped)
    set(natsMarketSubjects, m.subjects)
    count(natsMalformed, m.malformed, [label("channel", "market")])
    malformedFrames += m.malformed
  }
  let criticalPublished = 0
  let delivered: Readonly<Record<string, number>> = {}
  if (parts.criticalOut !== undefined) {
    const s = parts.criticalOut.stats()
    criticalPublished = s.published
    count(natsCriticalPublished, criticalPublished)
    count(natsCriticalUnpublishable, s.unpublishable)
    set(natsCriticalInFlight, s.inFlight)
  }
  if (parts.criticalIn !== undefined) {
    const s = parts.criticalIn.stats()
    delivered = s.deliveredByKind
    for (const [kind, n] of Object.entries(delivered)) count(natsCriticalDelivered, n, [label("kind", kind)])
    count(natsMalformed, s.malformed, [label("channel", "critical")])
    malformedFrames += s.malformed
  }
  const commands = { submitted: 0, handled: 0 }
  if (parts.commandsOut !== undefined) {
    const s = parts.commandsOut.stats()
    commands.submitted = s.submitted
    count(natsCommandsSubmitted, commands.submitted)
    count(natsCommandsPublishFailed, s.failed)
  }
  if (parts.commandsIn !== undefined) {
    const s = parts.commandsIn.stats()
    commands.handled = s.handled
    count(natsCommandsHandled, s.handled)
    count(natsCommandsRefused, s.forged, [label("reason", "forged")])
    count(natsCommandsRefused, s.unauthorized, [label("reason", "unauthorized")])
    count(natsMalformed, s.invalid, [label("channel", "commands")])
    count(natsCommandsTerminated, s.terminated)
    malformedFrames += s.invalid
  }
  return {
    connected: c.connected,
    reconnects: c.reconnects,
    market,
    critical: { published: criticalPublished, delivered },
    commands,
    malformed: malformedFrames
  }
}

const make = (parts: Parts): NatsStatusSource["Type"] => ({
  init: ({ count }) => {
    if (parts.criticalIn !== undefined) {
      for (const kind of ["exec_report", "control_ack", "control_result"]) count(natsCriticalDelivered, 0, [label("kind", kind)])
    }
  },
  sample: sample(parts),
  // a critical event the NATS server refused for good keeps the feed not ready for a while
  readinessReasons: () => [
    ...(parts.criticalOut?.readinessReasons() ?? []),
    ...(parts.lease?.lost() === true ? ["control plane: another feed took over the lease (stop one of them)"] : [])
  ]
})

/** The feed process: market data and critical events out, commands in, the Control Plane's progress and lease. */
export const layerFeed: Layer.Layer<
  NatsStatusSource,
  never,
  NatsConnection | MarketPublisher | CriticalPublisher | CommandConsumer | ControlProgress | ControlPlaneLease
> = Layer.effect(
  NatsStatusSource,
  Effect.gen(function*() {
    return make({
      connection: yield* NatsConnection,
      marketOut: yield* MarketPublisher,
      criticalOut: yield* CriticalPublisher,
      commandsIn: yield* CommandConsumer,
      progress: yield* ControlProgress,
      lease: yield* ControlPlaneLease
    })
  })
)

/** A market-data-only feed: market data out, the routing version it follows. */
export const layerMarketFeed: Layer.Layer<
  NatsStatusSource,
  never,
  NatsConnection | MarketPublisher | CriticalPublisher | RoutingFollower
> = Layer.effect(
  NatsStatusSource,
  Effect.gen(function*() {
    return make({
      connection: yield* NatsConnection,
      marketOut: yield* MarketPublisher,
      criticalOut: yield* CriticalPublisher,
      routing: yield* RoutingFollower
    })
  })
)

/** A strategy process: market data and critical events in, commands out, the feeds heard. */
export const layerStrategy: Layer.Layer<
  NatsStatusSource,
  never,
  NatsConnection | MarketSubscriber | CriticalSubscriber | CommandPublisher | FeedMonitor
> = Layer.effect(
  NatsStatusSource,
  Effect.gen(function*() {
    return make({
      connection: yield* NatsConnection,
      marketIn: yield* MarketSubscriber,
      criticalIn: yield* CriticalSubscriber,
      commandsOut: yield* CommandPublisher,
      feeds: yield* FeedMonitor
    })
  })
)
