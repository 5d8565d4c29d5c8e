/**
 * The strategy SDK: what a user writes in their own file, and how the gateway
 * runs it.
 *
 * ```ts
 * // my-strategy.ts
 * import { Effect, Schema } from "effect"
 * import * as Strategy from "<this repository>/src/strategy/index.js"
 *
 * export default Strategy.define({
 *   id: "my-strategy",
 *   options: Schema.Struct({ symbol: Schema.String }),
 *   init: () => ({ last: undefined as string | undefined }),
 *   start: (ctx) => ctx.subscribe(ctx.options.symbol, ["ticker"]),
 *   on: {
 *     ticker: (event, ctx) => Effect.sync(() => { ctx.state.last = event.payload.bidPrice })
 *   }
 * })
 * ```
 *
 * - `options` is a Schema: the options given on the command line or in the
 *   configuration are decoded with it before anything runs; options that do
 *   not decode are reported with the strategy's id and it does not start.
 * - `init` makes the strategy's state from its options, once per run.
 * - `start` runs once the strategy's mailbox is open, in a scope of its own:
 *   it subscribes, and may fork timers into that scope. If it fails (or dies),
 *   the failure is reported with the strategy's id and the cause, the
 *   strategy's scope is closed (its mailbox and timers with it), and the
 *   gateway and the other strategies go on.
 * - `on` handles events by kind (the handler's event is narrowed); `handle`
 *   gets every event not handled in `on`. Events are lent for the duration of
 *   the handler's effect (see `Event.ts`).
 * - `ctx.submit`, `ctx.cancel`, `ctx.amend` and `ctx.query` send a command and resolve
 *   with its typed outcome when the Control Plane's result comes back, or fail
 *   with the typed rejection (`schema/Rejection.ts`): the SDK matches results
 *   to commands by `commandId`. Waiting for a result takes no fiber of the
 *   gateway's: the strategy's own handler completes it.
 */
import {
  Cause,
  Clock,
  Data,
  Deferred,
  Effect,
  Either,
  Equal,
  ExecutionStrategy,
  Exit,
  Fiber,
  type FiberId,
  FiberSet,
  Option,
  ParseResult,
  Random,
  Schema,
  Scope
} from "effect"
import {
  type ControlCommand,
  decodeCommand,
  formatParseError,
  type MergeKind,
  type MergePolicy
} from "../../schema/Control.js"
import {
  type ControlResultPayload,
  Decimal,
  type MarketKind,
  OrderStatus,
  OrderType,
  Side
} from "../../schema/Event.js"
import { InvalidCommand, InvalidPrice, InvalidQuantity, isRejection, type Rejection, RejectedAsText } from "../../schema/Rejection.js"
import { type ConsumerHandle, Consumers } from "../Consumer.js"
import { ControlBus } from "../ControlBus.js"
import type { MailboxOptions } from "../DataBus.js"
import type { AnyEvent } from "../Event.js"
import type { Balance, PortfolioSnapshot, Position, QuoteTotals } from "../ExecutionVenue.js"
import { AwaitInHandler, ReplyTimedOut, StrategyOptionsInvalid, StrategyStartFailed, UnexpectedReply } from "./Errors.js"
import { type EventOf, MergedView, type StrategyEvent, type StrategyEventKind, strategyEventOf } from "./Event.js"

// ---------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------

/** An order as the venue holds it: the outcome of `cancel` and `query`, and inside `OrderAccepted`. */
export const OrderState = Schema.Struct({
  orderId: Schema.String,
  clientOrderId: Schema.String,
  consumerId: Schema.String,
  symbol: Schema.String,
  /** The venue the order trades on (absent from a venue of the first contract). */
  venue: Schema.optional(Schema.String),
  side: Side,
  type: OrderType,
  timeInForce: Schema.optional(Schema.Literal("GTC", "IOC", "FOK")),
  postOnly: Schema.optional(Schema.Boolean),
  reduceOnly: Schema.optional(Schema.Boolean),
  status: OrderStatus,
  price: Schema.optional(Decimal),
  quantity: Decimal,
  filledQty: Decimal,
  leavesQty: Decimal,
  avgPrice: Schema.optional(Decimal),
  reports: Schema.Number,
  reason: Schema.optional(Schema.String),
  submittedTs: Schema.Number,
  updatedTs: Schema.Number
})
export type OrderState = typeof OrderState.Type
/** Compiled once: a result's detail -> the order. */
const decodeOrderState = Schema.decodeUnknownEither(OrderState)

/** What a kill switch command did: its scope, the orders it canceled, the switch's state after it. */
export const KillSwitchResult = Schema.Struct({
  engaged: Schema.Boolean,
  /** `"*"` (the whole gateway) or a consumer id. */
  target: Schema.String,
  canceled: Schema.Number,
  state: Schema.Struct({ global: Schema.Boolean, consumers: Schema.Array(Schema.String) })
})
export type KillSwitchResult = typeof KillSwitchResult.Type
const decodeKillSwitchResult = Schema.decodeUnknownEither(KillSwitchResult)

/** The venue took the order: its id and state right after submission (it may already be filled). */
export class OrderAccepted extends Data.TaggedClass("OrderAccepted")<{
  readonly orderId: string
  readonly clientOrderId: string
  readonly status: OrderStatus
  readonly order: OrderState
}> {}

/** What `submit` takes: `clientOrderId` is made unique across restarts when absent. */
export interface OrderRequest {
  readonly clientOrderId?: string
  readonly symbol: string
  readonly side: "buy" | "sell"
  readonly type: "market" | "limit"
  /** An exact decimal string, e.g. "0.001". */
  readonly quantity: string
  /** Limit orders only. */
  readonly price?: string
  /** The venue whose market the order trades on: required when several venues quote the symbol. */
  readonly venue?: string
  /** Limit orders: GTC (the default), IOC or FOK. A market order is IOC. */
  readonly timeInForce?: "GTC" | "IOC" | "FOK"
  /** A GTC limit order that would take liquidity is refused (`PostOnlyWouldTake`) instead. */
  readonly postOnly?: boolean
  /** An order that would increase or flip the strategy's position is refused (`ReduceOnlyWouldIncrease`). */
  readonly reduceOnly?: boolean
}

/** What `amend` changes: the price, the total quantity, or both. */
export interface AmendRequest {
  readonly price?: string
  readonly quantity?: string
}

/** What a merged subscription asks for: the window over a set of venues. */
export interface MergedRequest {
  readonly symbol: string
  readonly kind: MergeKind
  readonly providers: readonly [string, string, ...Array<string>]
  readonly windowMs: number
  readonly maxFragments: number
  readonly policy?: MergePolicy
  readonly quorum?: number
}

/**
 * The strategy's share of the execution venue's accounts, now (`ctx.portfolio()`):
 * its positions per (venue, symbol) with their P&L and fees, its totals (one
 * amount when every position has one quote asset; else read `byQuote`), its
 * working orders, and the balances of the venues' accounts (shared by every
 * strategy of the gateway, as on an exchange). See `ExecutionVenue.ts`.
 */
export interface StrategyPortfolio {
  readonly positions: ReadonlyArray<Position>
  readonly realizedPnl: Decimal
  readonly unrealizedPnl: Decimal
  readonly fees: Decimal
  readonly byQuote: ReadonlyArray<QuoteTotals>
  readonly openOrders: number
  readonly balances: ReadonlyArray<Balance>
}

const ZERO_DECIMAL = Decimal.make("0")

/** One consumer's share of a venue's portfolio (nothing yet: no positions, zeros). */
export const portfolioOf = (snapshot: PortfolioSnapshot, consumerId: string): StrategyPortfolio => {
  const mine = snapshot.byConsumer.find((c) => c.consumerId === consumerId)
  return mine === undefined
    ? {
      positions: [],
      realizedPnl: ZERO_DECIMAL,
      unrealizedPnl: ZERO_DECIMAL,
      fees: ZERO_DECIMAL,
      byQuote: [],
      openOrders: 0,
      balances: snapshot.balances
    }
    : {
      positions: mine.positions,
      realizedPnl: mine.realizedPnl,
      unrealizedPnl: mine.unrealizedPnl,
      fees: mine.fees,
      byQuote: mine.byQuote,
      openOrders: mine.openOrders,
      balances: snapshot.balances
    }
}

/** A command's failure: its typed rejection, or no reply in time, or a reply of another contract. */
export type CommandError = Rejection | ReplyTimedOut | UnexpectedReply | AwaitInHandler

// ---------------------------------------------------------------------------
// Definition
// ---------------------------------------------------------------------------

/** What the gateway carries: a strategy reads it to choose venues and merges. */
export interface Topology {
  readonly symbols: ReadonlyArray<string>
  readonly providers: ReadonlyArray<string>
  /** Configured merges (the routing table's). */
  readonly merges: ReadonlyArray<{
    readonly symbol: string
    readonly kind: MergeKind
    readonly providers: ReadonlyArray<string>
    readonly windowMs: number
    readonly maxFragments: number
  }>
}

export interface StrategyContext<O = unknown, S = unknown> {
  /** The strategy's id: also its consumer id (its commands name it, its reports come back to it). */
  readonly id: string
  readonly options: O
  /** What `init` returned. */
  readonly state: S
  readonly topology: Topology
  /** A fresh id unique across restarts (a client order id): a deduplicating bus never drops a restart's orders. */
  readonly newId: (label: string) => string
  /** `{ commandId, consumerId }` for a command built by hand (`command`). */
  readonly ids: () => { readonly commandId: string; readonly consumerId: string }
  readonly subscribe: (symbol: string, kinds: ReadonlyArray<MarketKind>) => Effect.Effect<void, CommandError>
  readonly unsubscribe: (symbol: string, kinds: ReadonlyArray<MarketKind>) => Effect.Effect<void, CommandError>
  readonly subscribeMerged: (request: MergedRequest) => Effect.Effect<void, CommandError>
  readonly submit: (order: OrderRequest) => Effect.Effect<OrderAccepted, CommandError>
  readonly cancel: (clientOrderId: string) => Effect.Effect<OrderState, CommandError>
  /**
   * Amends a resting limit order of this strategy: a new price, a new total
   * quantity, or both (exact decimal strings). Resolves with the order as
   * amended; fails with the venue's rejection (the order not open, a quantity
   * at or below what filled, the instrument rules, the account, the risk
   * limits), as `submit` does.
   */
  readonly amend: (clientOrderId: string, change: AmendRequest) => Effect.Effect<OrderState, CommandError>
  readonly query: (clientOrderId: string) => Effect.Effect<OrderState, CommandError>
  /** Any command, built by hand (with `ids()`): its result, or its rejection. */
  readonly command: (command: ControlCommand) => Effect.Effect<ControlResultPayload, CommandError>
  /**
   * Runs an effect beside the handlers, in the strategy's scope (its failure
   * is logged). A handler that needs a command's outcome forks it: a handler
   * waiting for a result would wait on itself (results arrive through the
   * same handler loop), so a command awaited inside a handler fails at once
   * with `AwaitInHandler`.
   */
  readonly fork: (effect: Effect.Effect<unknown, unknown>) => Effect.Effect<void>
  /** Logs annotated with this strategy's id (and the event's trace id and kind when given). */
  readonly log: (message: string, fields?: Readonly<Record<string, unknown>>, event?: StrategyEvent) => Effect.Effect<void>
  /**
   * This strategy's positions, P&L, fees and working orders, and the venues'
   * balances, read now from the execution venue (synchronous, no command).
   * Undefined where the process has no venue (a NATS strategy process: the
   * feed holds the accounts, and `/status.json` there shows them).
   */
  readonly portfolio: () => StrategyPortfolio | undefined
  /**
   * Engages (`true`) or releases (`false`) the kill switch: of this
   * strategy's own orders by default (its open orders canceled, its new orders
   * and amends refused with `KillSwitchEngaged` until released), or of
   * `target` (`"*"`: the whole gateway; another strategy's id), which over
   * NATS is an operator's action: refused there at once with `InvalidCommand`.
   */
  readonly killSwitch: (engage: boolean, target?: string) => Effect.Effect<KillSwitchResult, CommandError>
}

export type Handlers<O, S> = {
  readonly [K in StrategyEventKind]?: (event: EventOf<K>, ctx: StrategyContext<O, S>) => Effect.Effect<unknown, unknown>
}

export interface StrategyDefinition<O, S> {
  /** Also its consumer id; absent: the name of its file (without the extension). */
  readonly id?: string
  /** One line shown in the logs and the status page. */
  readonly description?: string
  /** Decodes the options given to the strategy (absent: no options, whatever is given is ignored). */
  readonly options?: Schema.Schema<O, any>
  /** The strategy's state, made once per run from its options. */
  readonly init?: (options: O) => S
  /** Subscriptions and timers; runs once the mailbox is open, in the strategy's own scope. */
  readonly start?: (ctx: StrategyContext<O, S>) => Effect.Effect<unknown, unknown, Scope.Scope>
  /** Handlers by kind: the event is narrowed. */
  readonly on?: Handlers<O, S>
  /** Every event without a handler in `on`. */
  readonly handle?: (event: StrategyEvent, ctx: StrategyContext<O, S>) => Effect.Effect<unknown, unknown>
  /** Mailbox bounds, when not the gateway's. */
  readonly mailbox?: Partial<MailboxOptions>
  /**
   * Longest one handler call may take: past it the call is interrupted and
   * counted as a failure and a timeout (`LambdaTimedOut`), and the strategy
   * goes on with its next event. Default: the gateway's `mailbox.eventTimeoutMs`
   * (none unless configured).
   */
  readonly eventTimeoutMs?: number
  /** How long a command waits for its result (default 30 s). */
  readonly replyTimeoutMs?: number
  /** How long `start` may take before the strategy is reported as failed (default 60 s). */
  readonly startTimeoutMs?: number
}

export const TypeId: unique symbol = Symbol.for("meltica/Strategy")
export type TypeId = typeof TypeId

export interface Strategy<O = any, S = any> extends StrategyDefinition<O, S> {
  /** Empty until the loader names it after its file, when the definition has none. */
  readonly id: string
  readonly [TypeId]: TypeId
}

/** Makes a strategy: a user's file's default export. */
export const define = <O = undefined, S = undefined>(definition: StrategyDefinition<O, S>): Strategy<O, S> => ({
  ...definition,
  id: definition.id ?? "",
  [TypeId]: TypeId
})

/**
 * The same strategy with its state kept for a test to read, under another id
 * when given (two runs of one strategy side by side need two ids).
 */
export const observe = <O, S>(strategy: Strategy<O, S>, id: string = strategy.id) => {
  let state: S | undefined
  const init = strategy.init
  const observed = define<O, S>({
    ...strategy,
    id,
    init: (options) => (state = init === undefined ? (undefined as S) : init(options))
  })
  return {
    strategy: observed,
    /** The state of the current run (undefined before it starts). */
    state: (): S => state as S
  } as const
}

export const isStrategy = (u: unknown): u is Strategy =>
  typeof u === "object" && u !== null && (u as { [TypeId]?: unknown })[TypeId] === TypeId &&
  typeof (u as { id?: unknown }).id === "string"

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

export const DEFAULT_REPLY_TIMEOUT_MS = 30_000
export const DEFAULT_START_TIMEOUT_MS = 60_000

class StartTimedOut extends Data.TaggedError("StartTimedOut")<{ readonly message: string }> {}

export interface RunSettings {
  /** The execution venue's accounts, where the process has one (`ctx.portfolio`). */
  readonly portfolio?: () => PortfolioSnapshot
  /** The raw options (from the command line or the configuration), decoded with the strategy's schema. */
  readonly options?: unknown
  /** The gateway's mailbox bounds (the strategy's own win). */
  readonly mailbox?: Partial<MailboxOptions>
  /** The gateway's limit on one handler call (the strategy's own wins). */
  readonly eventTimeoutMs?: number
  readonly topology?: Topology
  /** The file the strategy came from, for reports. */
  readonly module?: string
  /**
   * The transport takes a strategy's kill switch over its own orders only (a
   * NATS strategy process: the whole gateway's and other strategies' are the
   * operator's, and its server permissions would drop such a command
   * unanswered): `ctx.killSwitch` beyond its own scope is refused at once with
   * `InvalidCommand`, instead of waiting for a reply that never comes.
   */
  readonly ownKillSwitchOnly?: boolean
}

export interface RunningStrategy<S = unknown> {
  readonly id: string
  /** What `init` made (a test reads it). */
  readonly state: S
  readonly consumer: ConsumerHandle
  /** Stops the strategy alone: its timers, then its mailbox (at shutdown the mailbox outlives the timers, to drain). */
  readonly stop: Effect.Effect<void>
}

const EMPTY_TOPOLOGY: Topology = { symbols: [], providers: [], merges: [] }

/** A cause as one line for a report: the first failure or defect, never a stack. */
export const causeReason = (cause: Cause.Cause<unknown>): string => {
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  const e = Cause.squash(cause)
  if (e instanceof Error) {
    const tag = (e as { _tag?: unknown })._tag
    const name = typeof tag === "string" ? tag : e.name
    return e.message.length > 0 ? `${name}: ${e.message}` : name
  }
  try {
    return String(JSON.stringify(e)).slice(0, 512)
  } catch {
    return typeof e
  }
}

const optionsReason = (error: ParseResult.ParseError) => formatParseError(error)

/**
 * The rejection a rejected result carries (a peer on the first contract sent
 * text: its decoder made that a `RejectedAsText` already).
 */
export const rejectionOf = (result: ControlResultPayload): Rejection =>
  isRejection(result.rejection) ? result.rejection : new RejectedAsText({ text: `${result.command} rejected` })

/**
 * Runs a strategy: decodes its options, opens its mailbox (a consumer named
 * by its id), runs its `start`. Everything it starts lives in a scope of its
 * own inside the caller's: a failure closes that scope only.
 */
export const run = <O, S>(
  strategy: Strategy<O, S>,
  settings: RunSettings = {}
): Effect.Effect<RunningStrategy<S>, StrategyOptionsInvalid | StrategyStartFailed, Scope.Scope | Consumers | ControlBus> =>
  Effect.gen(function*() {
    const consumers = yield* Consumers
    const control = yield* ControlBus
    const parent = yield* Effect.scope
    // a strategy without an id is named by the runner (after its file); run directly, it is "strategy"
    const id = strategy.id === "" ? "strategy" : strategy.id
    const module = settings.module

    let options: unknown = undefined
    if (strategy.options !== undefined) {
      const decoded = Schema.decodeUnknownEither(strategy.options, { errors: "all" })(settings.options ?? {})
      if (Either.isLeft(decoded)) {
        return yield* new StrategyOptionsInvalid({ strategyId: id, module, reason: optionsReason(decoded.left) })
      }
      options = decoded.right
    }
    const state = yield* Effect.try({
      try: () => strategy.init?.(options as O) as S,
      catch: (e) => new StrategyStartFailed({ strategyId: id, module, reason: `init: ${causeReason(Cause.die(e))}` })
    })

    // one token per run, so ids never repeat those of an earlier run
    const runToken = `${(yield* Clock.currentTimeMillis).toString(36)}${(yield* Random.nextIntBetween(0, 36 ** 4)).toString(36)}`
    let next = 0
    const newId = (label: string) => `${id}-${runToken}-${label}-${++next}`
    const ids = () => ({ commandId: newId("cmd"), consumerId: id })
    const replyTimeoutMs = strategy.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS

    /** Commands sent through the SDK, waiting for their result, by commandId. */
    const pending = new Map<string, Deferred.Deferred<ControlResultPayload>>()

    /** The fiber that runs the handlers, known from the first event. */
    let handlerFiber: FiberId.FiberId | undefined

    const command = (cmd: ControlCommand): Effect.Effect<ControlResultPayload, CommandError> =>
      Effect.gen(function*() {
        if (handlerFiber !== undefined && Equal.equals(yield* Effect.fiberId, handlerFiber)) {
          return yield* new AwaitInHandler({ strategyId: id, command: cmd._tag })
        }
        const reply = yield* Deferred.make<ControlResultPayload>()
        pending.set(cmd.commandId, reply)
        yield* control.submit(cmd)
        const result = yield* Deferred.await(reply).pipe(
          Effect.timeoutFail({
            duration: replyTimeoutMs,
            onTimeout: () => new ReplyTimedOut({ strategyId: id, commandId: cmd.commandId, command: cmd._tag, timeoutMs: replyTimeoutMs })
          }),
          Effect.ensuring(Effect.sync(() => pending.delete(cmd.commandId)))
        )
        return result.outcome === "ok" ? result : yield* Effect.fail(rejectionOf(result))
      })

    /** A command built from what the strategy gave, decoded here: a bad field is a typed rejection, never a throw. */
    const build = (raw: Record<string, unknown>): Effect.Effect<ControlCommand, Rejection> => {
      const decoded = decodeCommand(raw)
      if (Either.isRight(decoded)) return Effect.succeed(decoded.right)
      const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
      const fields = new Set(issues.map((i) => String(i.path[0] ?? "")))
      const rule = formatParseError(decoded.left)
      const clientOrderId = String(raw.clientOrderId ?? "")
      const symbol = String(raw.symbol ?? "")
      const order = raw._tag === "SubmitOrder" || raw._tag === "AmendOrder"
      if (order && fields.size === 1 && fields.has("quantity")) {
        return Effect.fail(new InvalidQuantity({ clientOrderId, symbol, quantity: String(raw.quantity).slice(0, 64), rule }))
      }
      if (order && fields.size === 1 && fields.has("price")) {
        return Effect.fail(
          new InvalidPrice({ clientOrderId, symbol, ...(raw.price === undefined ? {} : { price: String(raw.price).slice(0, 64) }), rule })
        )
      }
      return Effect.fail(
        new InvalidCommand({
          commandId: String(raw.commandId),
          command: String(raw._tag),
          consumerId: id,
          reason: rule
        })
      )
    }

    const orderDetail = (result: ControlResultPayload): Effect.Effect<OrderState, UnexpectedReply> => {
      const order = decodeOrderState(result.detail)
      return Either.isRight(order)
        ? Effect.succeed(order.right)
        : Effect.fail(
          new UnexpectedReply({
            strategyId: id,
            commandId: result.commandId,
            command: result.command,
            reason: formatParseError(order.left)
          })
        )
    }

    const scope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
    const forked = yield* FiberSet.make().pipe(Scope.extend(scope))

    const ctx: StrategyContext<O, S> = {
      id,
      options: options as O,
      state,
      fork: (effect) =>
        FiberSet.run(
          forked,
          effect.pipe(
            Effect.catchAllCause((cause) =>
              Effect.logWarning("strategy task failed").pipe(Effect.annotateLogs({ consumer_id: id, reason: causeReason(cause) }))
            )
          )
        ).pipe(Effect.asVoid),
      topology: settings.topology ?? EMPTY_TOPOLOGY,
      newId,
      ids,
      command,
      subscribe: (symbol, kinds) =>
        build({ _tag: "Subscribe", ...ids(), symbol, kinds }).pipe(Effect.flatMap(command), Effect.asVoid),
      unsubscribe: (symbol, kinds) =>
        build({ _tag: "Unsubscribe", ...ids(), symbol, kinds }).pipe(Effect.flatMap(command), Effect.asVoid),
      subscribeMerged: (request) =>
        build({ _tag: "SubscribeMerged", ...ids(), ...request }).pipe(Effect.flatMap(command), Effect.asVoid),
      submit: (order) => {
        const clientOrderId = order.clientOrderId ?? newId("order")
        const { type, ...rest } = order
        if (type === "limit" && order.price === undefined) {
          return Effect.fail(new InvalidPrice({ clientOrderId, symbol: order.symbol, rule: "a limit order needs a price" }))
        }
        if (type === "market" && order.price !== undefined) {
          return Effect.fail(
            new InvalidPrice({ clientOrderId, symbol: order.symbol, price: order.price.slice(0, 64), rule: "a market order carries no price" })
          )
        }
        return build({ _tag: "SubmitOrder", ...ids(), ...rest, orderType: type, clientOrderId }).pipe(
          Effect.flatMap(command),
          Effect.flatMap(orderDetail),
          Effect.map((o) => new OrderAccepted({ orderId: o.orderId, clientOrderId: o.clientOrderId, status: o.status, order: o }))
        )
      },
      cancel: (clientOrderId) =>
        build({ _tag: "CancelOrder", ...ids(), clientOrderId }).pipe(Effect.flatMap(command), Effect.flatMap(orderDetail)),
      amend: (clientOrderId, change) =>
        build({
          _tag: "AmendOrder",
          ...ids(),
          clientOrderId,
          ...(change.price === undefined ? {} : { price: change.price }),
          ...(change.quantity === undefined ? {} : { quantity: change.quantity })
        }).pipe(Effect.flatMap(command), Effect.flatMap(orderDetail)),
      query: (clientOrderId) =>
        build({ _tag: "QueryOrder", ...ids(), clientOrderId }).pipe(Effect.flatMap(command), Effect.flatMap(orderDetail)),
      portfolio: () => (settings.portfolio === undefined ? undefined : portfolioOf(settings.portfolio(), id)),
      killSwitch: (engage, target) =>
        settings.ownKillSwitchOnly === true && target !== undefined && target !== id
          ? Effect.fail(
            new InvalidCommand({
              ...ids(),
              command: "KillSwitch",
              reason: `a strategy engages or releases its own kill switch only (${id}); the whole gateway's (*) and other strategies' are the operator's: meltica kill-switch or POST /kill-switch`
            })
          )
          : build({ _tag: "KillSwitch", ...ids(), engage, ...(target === undefined ? {} : { target }) }).pipe(
          Effect.flatMap(command),
          Effect.flatMap((result) => {
            const r = decodeKillSwitchResult(result.detail)
            return Either.isRight(r) ? Effect.succeed(r.right) : Effect.fail(
              new UnexpectedReply({ strategyId: id, commandId: result.commandId, command: result.command, reason: formatParseError(r.left) })
            )
          })
        ),
      log: (message, fields = {}, event) =>
        Effect.logInfo(message).pipe(
          Effect.annotateLogs(
            event === undefined
              ? { ...fields, consumer_id: id }
              : { ...fields, consumer_id: id, trace_id: event.traceId, kind: event.kind }
          )
        )
    }

    const merged = new MergedView()
    const on = (strategy.on ?? {}) as {
      readonly [K in StrategyEventKind]?: (e: StrategyEvent, c: typeof ctx) => Effect.Effect<unknown, unknown>
    }
    const fallback = strategy.handle as ((e: StrategyEvent, c: typeof ctx) => Effect.Effect<unknown, unknown>) | undefined

    /** The consumer's lambda: replies to the SDK's own commands complete them; everything else goes to the handlers. */
    const handle = (event: AnyEvent): Effect.Effect<unknown, unknown> => {
      if (handlerFiber === undefined) {
        const current = Fiber.getCurrentFiber()
        if (Option.isSome(current)) handlerFiber = current.value.id()
      }
      if (event._pool === "Event") {
        const p = event.payload
        if (p !== undefined && p._tag === "control_result") {
          const reply = pending.get(p.commandId)
          if (reply !== undefined) return Deferred.succeed(reply, p)
        } else if (p !== undefined && p._tag === "control_ack" && pending.has(p.commandId)) {
          return Effect.void
        }
      }
      const e = strategyEventOf(event, merged)
      if (e === undefined) return Effect.void
      const h = on[e.kind] ?? fallback
      return h === undefined ? Effect.void : h(e, ctx)
    }

    const eventTimeoutMs = strategy.eventTimeoutMs ?? settings.eventTimeoutMs
    const consumer = yield* consumers.start({
      id,
      handle,
      mailbox: { ...settings.mailbox, ...strategy.mailbox },
      ...(eventTimeoutMs === undefined ? {} : { eventTimeout: eventTimeoutMs })
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.zipRight(
          Scope.close(scope, Exit.void),
          new StrategyStartFailed({ strategyId: id, module, reason: causeReason(cause) })
        )
      )
    )
    // The mailbox is not tied to the strategy's scope: at shutdown the scope
    // closes (timers stop) before the critical lanes are drained, and the
    // consumer runtime closes the mailbox after that, so no report still
    // queued for the strategy is lost. A strategy stopped alone stops both.
    const stopAlone = Effect.zipRight(
      Scope.close(scope, Exit.void),
      Effect.zipRight(consumer.stop, Effect.sync(() => merged.clear()))
    )

    if (strategy.start !== undefined) {
      const start = strategy.start
      const startTimeoutMs = strategy.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
      yield* Effect.suspend(() => start(ctx)).pipe(
        Effect.timeoutFail({
          duration: startTimeoutMs,
          onTimeout: () => new StartTimedOut({ message: `start did not finish within ${startTimeoutMs} ms` })
        }),
        Scope.extend(scope),
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            stopAlone,
            Effect.fail(new StrategyStartFailed({ strategyId: id, module, reason: causeReason(cause) }))
          )
        )
      )
    }
    return { id, state, consumer, stop: stopAlone }
  })
