/**
 * The application layers for a gateway split over NATS (`bus: nats`).
 *
 * - `layerNatsFeed`: the feed process. Pool and Recycler, the NATS
 *   connection, the feed Dispatcher (market data published once per event on
 *   core NATS), the feed Data Bus (critical events to remote consumers over
 *   JetStream), the Orchestrator, the paper venue, and the Control Plane
 *   taking `control.>` (strategies' and operators' commands) from JetStream. Providers feed
 *   `Orchestrator.ingest` as in the embedded gateway.
 * - `layerNatsMarketFeed`: a market-data-only feed process (one venue's data,
 *   no Orchestrator, no Control Plane), its market data stamped with the
 *   routing version the Control Plane feed announces.
 * - `layerNatsStrategy`: a strategy process. The in-process pipeline (Pool,
 *   Recycler, Dispatcher, consumer runtime) on the strategy Data Bus, the
 *   market-data subscriber, `NatsConsumers`, and the Control Bus over
 *   JetStream.
 *
 * Both hold the process's dead-letter queue: frames that do not decode go there,
 * and both add to readiness (`ReadinessChecks`): the feed is ready once
 * connected to NATS (and its providers are) and while its Control Plane makes
 * progress (no command stuck longer than `stallAfterMs`); a strategy process
 * once connected, listening on market data, each of its consumers' durable
 * JetStream consumers consuming, and while a live feed (a heartbeat heard
 * within `staleAfterMs`, connected to its venue) carries each symbol it
 * listens to. `layerFeedHeartbeats` publishes the feed's heartbeats; it needs
 * the providers, which the application layer adds on top.
 */
import { Effect, Layer, Schedule } from "effect"
import { Consumers } from "../src/Consumer.js"
import { DeadLetter, type DeadLetterSettings } from "../src/DeadLetter.js"
import { Dispatcher, DispatcherConfig } from "../src/Dispatcher.js"
import { ReadinessChecks } from "../src/Status.js"
import { NatsConfig, NatsConnection, type NatsSettings } from "../src/nats/Connection.js"
import { CommandConsumer, CommandPublisher } from "../src/nats/Commands.js"
import { CriticalPublisher, CriticalSubscriber } from "../src/nats/CriticalChannel.js"
import { MarketPublisher, MarketSubscriber } from "../src/nats/Market.js"
import {
  ControlProgress,
  FeedMonitor,
  HeartbeatConfig,
  type HeartbeatSettings,
  publishHeartbeats,
  symbolTokenOf
} from "../src/nats/Heartbeat.js"
import { COMMANDS_DURABLE, COMMANDS_STREAM, criticalDurable } from "../src/nats/Subjects.js"
import * as PaperStoreKv from "../src/nats/PaperStoreKv.js"
import type { PaperVenueConfig } from "../src/execution/Paper.js"
import type { RiskSettings } from "../src/execution/Risk.js"
import { Providers } from "../src/Provider.js"
import { layerFeed as layerFeedCommands, layerStrategy as layerStrategyControlBus } from "../src/nats/NatsControlBus.js"
import { NatsConsumers } from "../src/nats/NatsConsumers.js"
import { layerFeed as layerFeedDataBus, layerStrategy as layerStrategyDataBus } from "../src/nats/NatsDataBus.js"
import {
  layerFeed as layerFeedDispatcher,
  layerMarketFeed as layerMarketFeedDispatcher
} from "../src/nats/NatsDispatcher.js"
import { announceRoutingVersion, RoutingFollower } from "../src/nats/Routing.js"
import { ControlPlaneLease } from "../src/nats/ControlPlaneLease.js"
import * as NatsStatus from "../src/nats/NatsStatus.js"
import { Orchestrator, type OrchestratorSettings } from "../src/Orchestrator.js"
import { Pool } from "../src/Pool.js"
import { type CoreOptions, memoryLayer } from "./Core.js"
import { controlAndOrchestration } from "./Memory.js"

export interface NatsOptions extends CoreOptions {
  /** Connection and JetStream settings; the servers default to `NATS_URL`. */
  readonly nats?: Partial<NatsSettings>
  readonly deadLetter?: Partial<DeadLetterSettings>
  /** Feed heartbeats and the liveness thresholds of readiness. */
  readonly heartbeat?: Partial<HeartbeatSettings>
}

export interface NatsFeedOptions extends NatsOptions {
  /** The symbols the gateway carries (commands naming others are rejected). */
  readonly symbols: ReadonlyArray<string>
  /** The providers that feed it. */
  readonly providers: ReadonlyArray<string>
  readonly orchestrator?: Partial<OrchestratorSettings>
  /** Closed orders the paper venue remembers (see `PaperVenueOptions.retainClosed`). */
  readonly paperRetainClosed?: number | undefined
  /** Each venue's paper account, fees, latency and instrument rules (see `PaperVenueOptions.venues`). */
  readonly paperVenues?: Readonly<Record<string, PaperVenueConfig>> | undefined
  /** The risk limits checked in front of the paper venue (`execution/Risk.ts`). */
  readonly risk?: RiskSettings | undefined
  /** The Orchestrator's merged events are shown to the recorder (`record.merged`, `src/record/Merged.ts`). */
  readonly recordMerged?: boolean | undefined
}

const natsConfig = (options: NatsOptions): Layer.Layer<NatsConfig> =>
  options.nats === undefined ? NatsConfig.Default : NatsConfig.layer(options.nats)

/** The NATS connection, the pool and the dead-letter queue, shared by everything in the process. */
const base = (options: NatsOptions) =>
  NatsConnection.Default.pipe(
    Layer.provideMerge(natsConfig(options)),
    Layer.merge(memoryLayer(Pool.layer(options.pool))),
    Layer.merge(DeadLetter.layer(options.deadLetter)),
    Layer.merge(HeartbeatConfig.layer(options.heartbeat))
  )

/** The feed's publishing pipeline: Dispatcher and Data Bus on NATS. */
export const layerNatsFeedPipeline = (options: NatsOptions = {}) =>
  layerFeedDispatcher.pipe(
    Layer.provideMerge(layerFeedDataBus),
    Layer.provideMerge(Layer.mergeAll(CriticalPublisher.Default, MarketPublisher.Default, CommandConsumer.Default)),
    Layer.provideMerge(base(options))
  )

/**
 * A market-data-only feed (one venue's data, no Orchestrator, no Control
 * Plane): the publishing pipeline, with its market data stamped with the
 * routing version the Control Plane feed announces (`src/nats/Routing.ts`).
 * Ready once connected and once it has heard that version.
 */
export const layerNatsMarketFeed = (options: NatsOptions = {}) =>
  layerMarketFeedDispatcher.pipe(
    Layer.provideMerge(Layer.mergeAll(layerFeedDataBus, marketFeedReadiness, NatsStatus.layerMarketFeed)),
    Layer.provideMerge(RoutingFollower.Default),
    Layer.provideMerge(Layer.mergeAll(CriticalPublisher.Default, MarketPublisher.Default)),
    Layer.provideMerge(base(options))
  )

/** A market-data-only feed is ready once connected to NATS and once it has heard the Control Plane feed's routing version. */
export const marketFeedReadiness: Layer.Layer<ReadinessChecks, never, NatsConnection | RoutingFollower> = Layer.effect(
  ReadinessChecks,
  Effect.gen(function*() {
    const connection = yield* NatsConnection
    const routing = yield* RoutingFollower
    return {
      reasons: () => [
        ...notConnected(connection),
        ...(routing.heard() ? [] : ["nats: no routing version heard from the Control Plane feed yet"])
      ]
    }
  })
)

/** The Control Plane feed announces its routing version to market-only feeds (`src/nats/Routing.ts`). */
export const layerRoutingAnnouncements: Layer.Layer<never, never, Orchestrator | NatsConnection | HeartbeatConfig> = Layer
  .scopedDiscard(
    Effect.flatMap(Orchestrator, (orchestrator) => announceRoutingVersion(orchestrator.routingVersion))
  )

/** Execution reports go through the Dispatcher to the consumer that owns the order. */

const notConnected = (connection: NatsConnection): ReadonlyArray<string> =>
  connection.stats().connected ? [] : ["nats: not connected"]

/** The feed is ready (on top of its providers) once connected to NATS, and while its Control Plane makes progress. */
export const feedReadiness: Layer.Layer<ReadinessChecks, never, NatsConnection | ControlProgress> = Layer.effect(
  ReadinessChecks,
  Effect.gen(function*() {
    const connection = yield* NatsConnection
    const progress = yield* ControlProgress
    return { reasons: () => [...notConnected(connection), ...progress.reasons()] }
  })
)

/**
 * The commands the server holds for the Control Plane, looked at every
 * `intervalMs` (the durable consumer's pending and unacknowledged count), for
 * the Control Plane's progress.
 */
export const layerCommandBacklog: Layer.Layer<never, never, NatsConnection | ControlProgress | HeartbeatConfig> = Layer
  .scopedDiscard(
    Effect.gen(function*() {
      const { jsm } = yield* NatsConnection
      const progress = yield* ControlProgress
      const { intervalMs } = yield* HeartbeatConfig
      yield* Effect.tryPromise(() => jsm.consumers.info(COMMANDS_STREAM, COMMANDS_DURABLE)).pipe(
        Effect.tap((info) => Effect.sync(() => progress.notePending(info.num_pending + info.num_ack_pending))),
        Effect.ignore, // not there yet, or the server away (readiness says so already)
        Effect.repeat(Schedule.spaced(intervalMs)),
        Effect.forkScoped
      )
    })
  )

/** The feed's heartbeats, one per provider every `intervalMs`, stamped with the feed's epoch. */
export const layerFeedHeartbeats: Layer.Layer<never, never, Providers | NatsConnection | MarketPublisher | HeartbeatConfig> =
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const providers = yield* Providers
      const market = yield* MarketPublisher
      yield* publishHeartbeats(providers, market.epoch)
    })
  )

/**
 * A strategy process is ready once connected to NATS, listening on the
 * market data its consumers subscribed to, with every consumer's durable
 * JetStream consumer (its critical events) consuming, and with a live feed
 * for each symbol it listens to.
 */
export const strategyReadiness: Layer.Layer<
  ReadinessChecks,
  never,
  NatsConnection | MarketSubscriber | CriticalSubscriber | FeedMonitor
> = Layer.effect(
  ReadinessChecks,
  Effect.gen(function*() {
    const connection = yield* NatsConnection
    const market = yield* MarketSubscriber
    const critical = yield* CriticalSubscriber
    const feeds = yield* FeedMonitor
    return {
      reasons: () => {
        const reasons = [...notConnected(connection)]
        if (market.stats().subjects === 0) reasons.push("nats: no market-data subscription yet")
        const sessions = critical.sessions()
        if (sessions.size === 0) reasons.push("nats: no consumer attached yet")
        for (const [consumerId, consuming] of sessions) {
          if (!consuming) reasons.push(`nats: durable consumer ${criticalDurable(consumerId)} not consuming`)
        }
        const symbols = new Set<string>()
        for (const subject of market.subjects()) {
          const symbol = symbolTokenOf(subject)
          if (symbol !== undefined) symbols.add(symbol)
        }
        reasons.push(...feeds.reasons(symbols))
        return reasons
      }
    }
  })
)

/**
 * The feed process. Its own consumers (the gateway's, which stages and flips
 * the routing table) run here on in-memory mailboxes.
 */
export const layerNatsFeed = (options: NatsFeedOptions) =>
  layerFeedCommands.pipe(
    Layer.provideMerge(Layer.mergeAll(feedReadiness, layerCommandBacklog, layerRoutingAnnouncements, NatsStatus.layerFeed)),
    // exactly one feed takes commands: the lease first, or this feed does not start (`ControlPlaneTaken`)
    Layer.provideMerge(ControlPlaneLease.Default),
    Layer.provideMerge(ControlProgress.Default),
    Layer.provideMerge(Consumers.Default),
    Layer.provideMerge(controlAndOrchestration(options)),
    // the paper venue's open orders survive a feed restart in the key-value bucket
    Layer.provideMerge(PaperStoreKv.layer),
    Layer.provideMerge(layerNatsFeedPipeline(options))
  )

/** A strategy process: consumers here, fed over NATS. */
export const layerNatsStrategy = (options: NatsOptions = {}) =>
  layerStrategyControlBus.pipe(
    Layer.provideMerge(Layer.merge(strategyReadiness, NatsStatus.layerStrategy)),
    Layer.provideMerge(FeedMonitor.Default),
    Layer.provideMerge(NatsConsumers.Default),
    Layer.provideMerge(MarketSubscriber.Default),
    Layer.provideMerge(Consumers.Default),
    Layer.provideMerge(Dispatcher.DefaultWithoutDependencies),
    Layer.provideMerge(DispatcherConfig.layer(options.dispatcher)),
    Layer.provideMerge(layerStrategyDataBus),
    Layer.provideMerge(Layer.merge(CriticalSubscriber.Default, CommandPublisher.Default)),
    Layer.provideMerge(base(options))
  )
