/**
 * The Control Plane: what each control command does.
 *
 * Every command gets a ControlAck (received; the routing version it applies
 * to), then a ControlResult (its outcome, or a typed rejection with the
 * reason). Both are critical events delivered to the issuing consumer's
 * critical lane. An invalid command changes nothing else.
 *
 * A routing flip bumps the routing version and acknowledges it to every
 * consumer, so each one's minimum accepted version moves with the flip: market
 * data stamped before it is skipped, critical events are always processed.
 *
 * The Control Bus (`ControlBus.ts`) carries commands here, in order.
 */
import { Context, Effect, Either, Layer } from "effect"
import type { CommandRejected, ControlCommand } from "../schema/Control.js"
import {
  ControlCommand as ControlCommandSchema,
  killSwitchTarget,
  rejectedAsInvalid,
  validateCommand
} from "../schema/Control.js"
import { ControlAckPayload, ControlResultPayload } from "../schema/Event.js"
import { type InvalidCommand, NothingStaged, type Rejection, UnknownConsumer } from "../schema/Rejection.js"
import { DataBus } from "./DataBus.js"
import { Dispatcher } from "./Dispatcher.js"
import { Risk } from "./execution/Risk.js"
import { ExecutionVenue } from "./ExecutionVenue.js"
import { Orchestrator } from "./Orchestrator.js"
import { Pool } from "./Pool.js"

/** The symbols and providers the gateway carries: what commands may name. */
export interface TopologyShape {
  readonly symbols: ReadonlySet<string>
  readonly providers: ReadonlySet<string>
}

export class Topology extends Context.Tag("meltica/Topology")<Topology, TopologyShape>() {
  static readonly layer = (symbols: Iterable<string>, providers: Iterable<string>): Layer.Layer<Topology> =>
    Layer.succeed(Topology, { symbols: new Set(symbols), providers: new Set(providers) })
}

export interface ControlPlaneStats {
  readonly handled: number
  readonly ok: number
  readonly rejected: number
  /** Rejections by command and reason: `<command>:<rejection tag>`. */
  readonly rejections: Readonly<Record<string, number>>
  readonly flips: number
}

type Outcome =
  | { readonly ok: true; readonly detail?: unknown }
  | { readonly ok: false; readonly rejection: Rejection; readonly also: ReadonlyArray<Rejection> }

/**
 * The command names counted: the commands of the contract, and "unknown" for
 * any other name a command that did not decode gave itself (so that no input
 * can add a key to the counts, or a series to the metrics).
 */
const COMMAND_NAMES: ReadonlySet<string> = new Set(ControlCommandSchema.members.map((m) => m._tag))
const countedName = (command: string): string => (COMMAND_NAMES.has(command) ? command : "unknown")

const ok = (detail?: unknown): Outcome => (detail === undefined ? { ok: true } : { ok: true, detail })
const rejected = (rejection: Rejection, also: ReadonlyArray<Rejection> = []): Outcome => ({ ok: false, rejection, also })
/** The routing layer's own errors, as the rejections the wire carries. */
const unknownConsumer = (e: { readonly consumerId: string }) =>
  Effect.succeed(rejected(new UnknownConsumer({ consumerId: e.consumerId })))
const nothingStaged = (e: { readonly expectedStagedId: string | undefined }) =>
  Effect.succeed(
    rejected(new NothingStaged(e.expectedStagedId === undefined ? {} : { expectedStagedId: e.expectedStagedId }))
  )

export class ControlPlane extends Effect.Service<ControlPlane>()("meltica/ControlPlane", {
  effect: Effect.gen(function*() {
    const topology = yield* Topology
    const pool = yield* Pool
    const dispatcher = yield* Dispatcher
    const orchestrator = yield* Orchestrator
    const venue = yield* ExecutionVenue
    // the kill switch (the venue above is the one the risk checks guard)
    const risk = yield* Risk
    const bus = yield* DataBus
    const clock = yield* Effect.clock
    let handled = 0
    let okCount = 0
    let rejectedCount = 0
    let flips = 0
    const rejections: Record<string, number> = {}

    const ack = (consumerId: string, commandId: string, command: string, appliesToVersion: number) => {
      const e = pool.acquireEvent()
      e.kind = "control_ack"
      e.provider = "control"
      e.traceId = `ack-${commandId}`
      e.ingestTs = clock.unsafeCurrentTimeMillis() * 1000
      e.routingVersion = appliesToVersion
      e.payload = ControlAckPayload.make({ commandId, command, consumerId, appliesToVersion })
      return dispatcher.dispatch(e)
    }

    const result = (consumerId: string, commandId: string, command: string, outcome: Outcome) => {
      const e = pool.acquireEvent()
      e.kind = "control_result"
      e.provider = "control"
      e.traceId = `result-${commandId}`
      e.ingestTs = clock.unsafeCurrentTimeMillis() * 1000
      e.routingVersion = orchestrator.routingVersion()
      e.payload = ControlResultPayload.make(
        outcome.ok
          ? { commandId, command, consumerId, outcome: "ok", ...(outcome.detail === undefined ? {} : { detail: outcome.detail }) }
          : {
            commandId,
            command,
            consumerId,
            outcome: "rejected",
            rejection: outcome.rejection,
            ...(outcome.also.length === 0 ? {} : { also: outcome.also })
          }
      )
      if (outcome.ok) okCount++
      else {
        rejectedCount++
        const key = `${countedName(command)}:${outcome.rejection._tag}`
        rejections[key] = (rejections[key] ?? 0) + 1
      }
      return dispatcher.dispatch(e)
    }

    /** What the command does; its outcome. */
    const execute = (cmd: ControlCommand): Effect.Effect<Outcome> => {
      switch (cmd._tag) {
        case "Subscribe":
          return Effect.forEach(cmd.kinds, (kind) =>
            dispatcher.subscribe(cmd.consumerId, { symbol: cmd.symbol, kind, merged: false }), { discard: true }).pipe(
              Effect.as(ok()),
              Effect.catchTag("UnknownConsumer", unknownConsumer)
            )
        case "Unsubscribe":
          return Effect.forEach(cmd.kinds, (kind) =>
            dispatcher.unsubscribe(cmd.consumerId, { symbol: cmd.symbol, kind, merged: false }), { discard: true }).pipe(
              Effect.as(ok())
            )
        case "SubscribeMerged":
          return dispatcher.subscribe(cmd.consumerId, { symbol: cmd.symbol, kind: cmd.kind, merged: true }).pipe(
            Effect.zipRight(orchestrator.configureMerge({
              symbol: cmd.symbol,
              kind: cmd.kind,
              providers: cmd.providers,
              windowMs: cmd.windowMs,
              maxFragments: cmd.maxFragments,
              policy: cmd.policy,
              quorum: cmd.quorum
            })),
            Effect.as(ok()),
            Effect.catchTag("UnknownConsumer", unknownConsumer)
          )
        case "SubmitOrder":
          return venue.submit(cmd).pipe(
            Effect.map((order) => ok(order)),
            Effect.catchAll((e) => Effect.succeed(rejected(e)))
          )
        case "AmendOrder":
          return venue.amend(cmd).pipe(
            Effect.map((order) => ok(order)),
            Effect.catchAll((e) => Effect.succeed(rejected(e)))
          )
        case "CancelOrder":
          return venue.cancel(cmd).pipe(
            Effect.map((order) => ok(order)),
            Effect.catchAll((e) => Effect.succeed(rejected(e)))
          )
        case "QueryOrder":
          return venue.query(cmd).pipe(
            Effect.map((order) => ok(order)),
            Effect.catchAll((e) => Effect.succeed(rejected(e)))
          )
        case "KillSwitch":
          // who may act on which scope is the transport's (NATS: beyond one's own, an operator's only)
          return risk.killSwitch(cmd.engage, killSwitchTarget(cmd), cmd.consumerId).pipe(Effect.map((outcome) => ok(outcome)))
        case "StageRouting":
          return orchestrator.stage(cmd).pipe(Effect.map((stagedId) => ok({ stagedId })))
        case "FlipRouting":
          return orchestrator.flip(cmd.expectedStagedId).pipe(
            Effect.tap((version) =>
              // every consumer learns the new version from its own ack, ahead
              // of any market data still queued for it
              Effect.forEach(
                bus.mailboxes().filter((m) => m.consumerId !== cmd.consumerId),
                (m) => ack(m.consumerId, cmd.commandId, cmd._tag, version),
                { discard: true }
              )
            ),
            Effect.tap(() => Effect.sync(() => flips++)),
            Effect.map((routingVersion) => ok({ routingVersion })),
            Effect.catchTag("NothingStaged", nothingStaged)
          )
      }
    }

    const handle: (cmd: ControlCommand) => Effect.Effect<void> = Effect.fn("ControlPlane.handle")(
      function*(cmd: ControlCommand) {
        handled++
        const valid = validateCommand(cmd, { knownSymbols: topology.symbols, knownProviders: topology.providers })
        if (Either.isLeft(valid)) return yield* refuse(valid.left)
        // the ack comes first, ahead of anything the command causes (an
        // order's execution reports); a flip's ack carries the version it made
        if (cmd._tag !== "FlipRouting") yield* ack(cmd.consumerId, cmd.commandId, cmd._tag, orchestrator.routingVersion())
        const outcome = yield* execute(cmd)
        if (cmd._tag === "FlipRouting") yield* ack(cmd.consumerId, cmd.commandId, cmd._tag, orchestrator.routingVersion())
        yield* result(cmd.consumerId, cmd.commandId, cmd._tag, outcome)
      },
      (effect, cmd) => Effect.annotateLogs(effect, { command: cmd._tag, consumer_id: cmd.consumerId })
    )

    /** Answers a command that could not be accepted: an ack, then the typed rejection. */
    const refuse = (r: CommandRejected): Effect.Effect<void> =>
      Effect.zipRight(
        ack(r.consumerId, r.commandId, r.command, orchestrator.routingVersion()),
        result(r.consumerId, r.commandId, r.command, rejected(r.rejection, r.also))
      )

    /** Answers a command that did not decode (the buses call this). */
    const reject = (invalid: InvalidCommand): Effect.Effect<void> => refuse(rejectedAsInvalid(invalid))

    return {
      handle,
      reject,
      stats: (): ControlPlaneStats => ({
        handled,
        ok: okCount,
        rejected: rejectedCount,
        rejections: { ...rejections },
        flips
      })
    } as const
  })
}) {}
