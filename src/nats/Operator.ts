/**
 * The operator's routing change over NATS: stage a routing table, flip to it,
 * and wait for both results, as the operator identity.
 *
 * Routing commands are taken only from `control.operator.<operatorId>`, a
 * subject only the operator user may publish on (see `Permissions.ts`); their
 * results come back on `critical.<operatorId>`, read here through the
 * operator's own durable consumer (`critical-<operatorId>`), acknowledging
 * every message. `meltica route` runs it.
 */
import { Data, Duration, Effect, Random } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { FlipRouting, StageRouting, type SymbolRoute } from "../../schema/Control.js"
import type { ControlResultPayload } from "../../schema/Event.js"
import type { Rejection } from "../../schema/Rejection.js"
import { CommandPublisher } from "./Commands.js"
import { NatsConnection } from "./Connection.js"
import { reasonOf } from "./Errors.js"
import { unpooled } from "../codec/Binary.js"
import type { AnyEvent } from "../Event.js"
import { decodeMessage } from "./internal/frames.js"
import { criticalStream, ensureDurable, ensureStream, untilReady } from "./Streams.js"
import { CRITICAL_STREAM, criticalDurable, criticalSubject } from "./Subjects.js"

/** The operator's consumer id in the generated configuration (`deploymentRoles`). */
export const OPERATOR_ID = "operator"

/** The feed rejected the routing change, or gave no answer in time. */
export class RoutingNotApplied extends Data.TaggedError("RoutingNotApplied")<{
  readonly command: string
  readonly reason: string
  /** The feed's rejection, as it came (absent when no answer came). */
  readonly rejection?: Rejection | undefined
}> {
  override get message(): string {
    return `routing not applied (${this.command}): ${this.reason}`
  }
}

type Result = ControlResultPayload

/**
 * Stages `routes` and flips to them; succeeds with the new routing version.
 * Fails when the feed rejects either command, or when it is not done within
 * `timeout` (the server refuses this user, or the feed is down).
 */
export const stageAndFlip = (
  routes: NonEmptyReadonlyArray<SymbolRoute>,
  options: { readonly operatorId?: string; readonly timeout?: Duration.DurationInput } = {}
) =>
  Effect.gen(function*() {
    const { js, jsm, settings } = yield* NatsConnection
    const publisher = yield* CommandPublisher
    const id = options.operatorId ?? OPERATOR_ID
    const durable = criticalDurable(id)
    yield* untilReady("critical stream", ensureStream(criticalStream))
    yield* untilReady(`durable consumer ${durable}`, ensureDurable(jsm, settings, CRITICAL_STREAM, durable, criticalSubject(id)))
    const consumer = yield* Effect.tryPromise({
      try: () => js.consumers.get(CRITICAL_STREAM, durable),
      catch: (e) => new RoutingNotApplied({ command: "StageRouting", reason: reasonOf(e) })
    })
    const run = (yield* Random.nextIntBetween(0, 36 ** 6)).toString(36)
    const stage = StageRouting.make({ commandId: `${id}-stage-${run}`, consumerId: id, routes })
    const flip = FlipRouting.make({ commandId: `${id}-flip-${run}`, consumerId: id, expectedStagedId: stage.commandId })
    yield* publisher.submit(stage)
    yield* publisher.submit(flip)

    /** The results in the next message for this operator (a binary batch or one JSON event; every message read is acknowledged). */
    const nextResults: Effect.Effect<ReadonlyArray<Result>, RoutingNotApplied> = Effect.tryPromise({
      try: () => consumer.next({ expires: 1_000 }),
      catch: (e) => new RoutingNotApplied({ command: "FlipRouting", reason: reasonOf(e) })
    }).pipe(Effect.map((msg) => {
      if (msg === null) return []
      msg.ack()
      const events: Array<AnyEvent> = []
      decodeMessage(`nats:${msg.subject}`, msg.data, unpooled, events, [])
      return events.flatMap((e) => (e.payload?._tag === "control_result" ? [e.payload] : []))
    }))

    /** Results not looked at yet, oldest first. */
    const seen: Array<Result> = []
    const nextResult: Effect.Effect<Result | undefined, RoutingNotApplied> = Effect.suspend(() =>
      seen.length > 0
        ? Effect.succeed(seen.shift())
        : Effect.map(nextResults, (rs) => {
          seen.push(...rs)
          return seen.shift()
        })
    )

    const awaitVersion: Effect.Effect<number, RoutingNotApplied> = Effect.flatMap(nextResult, (r) => {
      if (r === undefined || (r.commandId !== stage.commandId && r.commandId !== flip.commandId)) return awaitVersion
      if (r.outcome === "rejected") {
        return Effect.fail(
          new RoutingNotApplied({ command: r.command, reason: r.rejection?.message ?? "rejected", rejection: r.rejection })
        )
      }
      if (r.commandId === stage.commandId) return awaitVersion
      const version = (r.detail as { readonly routingVersion?: number } | undefined)?.routingVersion
      return Effect.succeed(version ?? 0)
    })
    return yield* awaitVersion
  }).pipe(
    Effect.timeoutFail({
      duration: options.timeout ?? "30 seconds",
      onTimeout: () =>
        new RoutingNotApplied({
          command: "FlipRouting",
          reason: "no result in time (is the feed up, and may this user act as the operator?)"
        })
    })
  )
