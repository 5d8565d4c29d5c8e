/**
 * Pre-trade risk checks and the kill switch, around any execution venue (the
 * paper venue now, a live adapter later): `Risk.layer` takes the venue the
 * layer below provides and provides the guarded one in its place, with the
 * `Risk` service beside it (the Control Plane's `KillSwitch`, `POST
 * /kill-switch`, the status sampler).
 *
 * Rules, checked in this order before a `SubmitOrder` or an `AmendOrder`
 * reaches the venue, per strategy (consumer); the first one broken refuses
 * the order with its typed rejection, counted per rule (`stats().refused`):
 * 1. the kill switch: engaged for the whole gateway or for the consumer ->
 *    `KillSwitchEngaged` (submissions and amends; cancels and queries pass);
 * 2. `max_open_orders`: the consumer's working orders, plus this one, above
 *    the limit -> `RiskLimit` (new orders only: an amend adds no order);
 * 3. `max_order_notional`: price x quantity (a market order: the venue's mid
 *    now; an amend: its new price and total quantity) above the limit;
 * 4. `max_position`: |the consumer's position on the order's (venue, symbol)
 *    if the rest of the order filled| above the limit. Other working orders
 *    count against `max_open_orders`, not here.
 * A resubmission of one of the consumer's existing orders (same
 * `clientOrderId`) is not counted as a new order or position: where
 * `max_open_orders` or `max_position` applies it goes to the venue unchecked,
 * kill switch apart (the venue answers it idempotently). The venue's accounts
 * are read only when one of those two limits applies, or to price a market
 * order that names no venue, and then only the consumer's own share
 * (`exposure`: its position on one (venue, symbol) and its working-order
 * count, never the whole `portfolio()` with every strategy's P&L): a strategy
 * without limits pays nothing but the kill switch test, one with limits a
 * few map reads (`npm run bench:risk`). When an order names no venue
 * and its symbol has a mark on exactly one venue, that venue is the order's;
 * when it cannot be told (several venues, or none with market data), the
 * position is the consumer's over every venue of the symbol, and a market
 * order's notional is left to the venue, which refuses such an order anyway
 * (`VenueRequired`, or no market data).
 *
 * Limits: the gateway's defaults (config `risk:`), and per strategy its own
 * (config `strategies.*.risk`), which win one by one; `setLimits` changes a
 * strategy's at run time.
 *
 * The kill switch: `killSwitch(true, target)` first marks the scope (so that
 * no order of it gets through from then on), then cancels every open order in
 * scope (`cancelAll`); `killSwitch(false, target)` releases that scope only
 * (releasing the gateway's switch leaves a consumer's own engaged). `target`
 * is a consumer id or `"*"`, the whole gateway. Who may engage which scope is
 * the transports' business (`ControlPlane`, `nats/Commands.ts`, `Http.ts`).
 */
import { Context, Effect, Layer } from "effect"
import type { SubmitOrder } from "../../schema/Control.js"
import { QueryOrder } from "../../schema/Control.js"
import type { Decimal, Side } from "../../schema/Event.js"
import { KillSwitchEngaged, RiskLimit } from "../../schema/Rejection.js"
import { ExecutionVenue, type ExecutionVenueShape, type OrderView } from "../ExecutionVenue.js"
import { dec, toDecimal, ZERO } from "../internal/decimal.js"

// ---------------------------------------------------------------------------
// Limits and checks (pure)
// ---------------------------------------------------------------------------

/** The limits a strategy trades under; an absent one does not apply. Decimals as exact strings. */
export interface RiskLimits {
  /** Price x quantity of one order, in the quote asset. */
  readonly maxOrderNotional?: string | undefined
  /** |position| on one (venue, symbol) after the order, in the base asset. */
  readonly maxPosition?: string | undefined
  /** Orders working at once. */
  readonly maxOpenOrders?: number | undefined
}

export interface RiskSettings {
  /** Every strategy's limits unless its own say otherwise. */
  readonly defaults?: RiskLimits
  /** Per strategy (consumer id): its own limits, over the defaults one by one. */
  readonly byConsumer?: Readonly<Record<string, RiskLimits>>
}

export const RISK_LIMIT_NAMES = ["max_order_notional", "max_position", "max_open_orders"] as const
export type RiskLimitName = (typeof RISK_LIMIT_NAMES)[number]
/** What refusals are counted by: each limit, and the kill switch. */
export type RefusalReason = RiskLimitName | "kill_switch"
export const REFUSAL_REASONS: ReadonlyArray<RefusalReason> = [...RISK_LIMIT_NAMES, "kill_switch"]

/** A strategy's limits: its own over the defaults, one by one. */
export const mergeLimits = (defaults: RiskLimits | undefined, own: RiskLimits | undefined): RiskLimits => ({
  maxOrderNotional: own?.maxOrderNotional ?? defaults?.maxOrderNotional,
  maxPosition: own?.maxPosition ?? defaults?.maxPosition,
  maxOpenOrders: own?.maxOpenOrders ?? defaults?.maxOpenOrders
})

/** What the checks need to know of an order. */
export interface Exposure {
  readonly clientOrderId: string
  readonly side: Side
  /** The order's total quantity (its notional's). */
  readonly quantity: string
  /** What may still fill: the quantity, less what filled (an amend). */
  readonly remaining: string
  /** The limit price, or the mark for a market order; undefined when unknown. */
  readonly price: string | undefined
  /** The consumer's signed position now on the order's (venue, symbol). */
  readonly position: string
  /** The consumer's working orders now, for a new order; undefined for an amend. */
  readonly openOrders: number | undefined
}

const refusal = (clientOrderId: string, limit: RiskLimitName, value: string, maximum: string) =>
  new RiskLimit({ clientOrderId, limit, value, maximum })

/** The first limit the order breaks, or undefined (rules 2 to 4 of the module's doc). */
export const checkLimits = (limits: RiskLimits, e: Exposure): RiskLimit | undefined => {
  if (limits.maxOpenOrders !== undefined && e.openOrders !== undefined && e.openOrders + 1 > limits.maxOpenOrders) {
    return refusal(e.clientOrderId, "max_open_orders", String(e.openOrders + 1), String(limits.maxOpenOrders))
  }
  if (limits.maxOrderNotional !== undefined && e.price !== undefined) {
    const notional = dec(e.price).times(e.quantity)
    if (notional.gt(limits.maxOrderNotional)) {
      return refusal(e.clientOrderId, "max_order_notional", toDecimal(notional), limits.maxOrderNotional)
    }
  }
  if (limits.maxPosition !== undefined) {
    const signed = e.side === "buy" ? dec(e.remaining) : dec(e.remaining).negated()
    const after = dec(e.position).plus(signed).abs()
    if (after.gt(limits.maxPosition)) {
      return refusal(e.clientOrderId, "max_position", toDecimal(after), limits.maxPosition)
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------
// Kill switch state
// ---------------------------------------------------------------------------

/** The whole gateway's switch is `"*"`. */
export const ALL = "*"

export interface KillSwitchState {
  /** Engaged for the whole gateway. */
  readonly global: boolean
  /** Consumers whose own switch is engaged. */
  readonly consumers: ReadonlyArray<string>
}

/** What a `killSwitch` call did (a `KillSwitch` command's result detail, `POST /kill-switch`'s answer). */
export interface KillSwitchOutcome {
  readonly engaged: boolean
  /** `"*"` or a consumer id. */
  readonly target: string
  /** Orders it canceled (engaging only). */
  readonly canceled: number
  /** The state after it. */
  readonly state: KillSwitchState
}

export interface RiskStats {
  /** Orders and amends checked against a limit. */
  readonly checked: number
  /** Refused, by reason. */
  readonly refused: Readonly<Record<RefusalReason, number>>
  readonly killSwitch: KillSwitchState
  /** Times a scope was engaged, and orders canceled by it. */
  readonly engagements: number
  readonly canceledByKillSwitch: number
}

export interface RiskShape {
  /** The venue with the checks in front of it. */
  readonly venue: ExecutionVenueShape
  /** Engages (`true`) or releases the switch of `target` (`"*"` or a consumer id); `by` is logged. */
  readonly killSwitch: (engage: boolean, target: string, by: string) => Effect.Effect<KillSwitchOutcome>
  readonly killSwitchState: () => KillSwitchState
  /** The limits the consumer trades under now. */
  readonly limitsOf: (consumerId: string) => RiskLimits
  /** Sets a consumer's own limits (over the defaults). */
  readonly setLimits: (consumerId: string, limits: RiskLimits) => void
  readonly stats: () => RiskStats
}

// ---------------------------------------------------------------------------
// The guard
// ---------------------------------------------------------------------------

/** The `Risk` service around `inner`. */
export const makeRisk = (inner: ExecutionVenueShape, settings: RiskSettings = {}) =>
  Effect.sync((): RiskShape => {
    const own = new Map<string, RiskLimits>(Object.entries(settings.byConsumer ?? {}))
    const limitsOf = (consumerId: string) => mergeLimits(settings.defaults, own.get(consumerId))
    let global = false
    const killed = new Set<string>()
    let checked = 0
    let engagements = 0
    let canceledByKillSwitch = 0
    const refused: Record<RefusalReason, number> = { max_order_notional: 0, max_position: 0, max_open_orders: 0, kill_switch: 0 }
    const state = (): KillSwitchState => ({ global, consumers: [...killed] })

    const killSwitchFor = (consumerId: string, clientOrderId: string): KillSwitchEngaged | undefined => {
      if (!global && !killed.has(consumerId)) return undefined
      refused.kill_switch++
      return new KillSwitchEngaged({ clientOrderId, consumerId, scope: global ? ALL : consumerId })
    }

    const check = (consumerId: string, exposure: Exposure): RiskLimit | undefined => {
      checked++
      const broken = checkLimits(limitsOf(consumerId), exposure)
      if (broken !== undefined) refused[broken.limit as RiskLimitName]++
      return broken
    }

    const existing = (consumerId: string, clientOrderId: string, commandId: string) =>
      // unvalidated: its fields come from a command that decoded
      inner.query(new QueryOrder({ commandId, consumerId, clientOrderId }, true)).pipe(Effect.option)

    const submit: ExecutionVenueShape["submit"] = (order: SubmitOrder) =>
      Effect.suspend(() => {
        const limits = limitsOf(order.consumerId)
        const needsMark = limits.maxOrderNotional !== undefined && order.price === undefined
        const needsPosition = limits.maxPosition !== undefined || limits.maxOpenOrders !== undefined
        const checkThenSubmit = (resubmitted: boolean) => {
          // checked last thing before the venue, so that an engagement in between is seen
          const off = killSwitchFor(order.consumerId, order.clientOrderId)
          if (off !== undefined) return Effect.fail(off)
          if (resubmitted || (!needsPosition && limits.maxOrderNotional === undefined)) return inner.submit(order)
          // the consumer's exposure (O(1), never the venue's whole `portfolio()`) is read only when a limit needs it
          const exposure = needsPosition || (needsMark && order.venue === undefined)
            ? inner.exposure(order.consumerId, order.symbol, order.venue)
            : undefined
          const venue = exposure === undefined ? order.venue : exposure.venue
          const openOrders = exposure?.openOrders ?? 0
          const position = exposure?.position ?? "0"
          const price = order.price ?? (!needsMark || venue === undefined ? undefined : inner.markPrice(venue, order.symbol))
          const broken = check(order.consumerId, {
            clientOrderId: order.clientOrderId,
            side: order.side,
            quantity: order.quantity,
            remaining: order.quantity,
            price,
            position,
            openOrders
          })
          return broken === undefined ? inner.submit(order) : Effect.fail(broken)
        }
        // a resubmission adds no order, so it is looked for where the working orders count (the same order
        // breaks a notional limit the second time as it did the first)
        return needsPosition
          ? Effect.flatMap(existing(order.consumerId, order.clientOrderId, order.commandId), (found) =>
            checkThenSubmit(found._tag === "Some"))
          : checkThenSubmit(false)
      })

    const amend: ExecutionVenueShape["amend"] = (cmd) =>
      Effect.suspend(() => {
        return Effect.flatMap(existing(cmd.consumerId, cmd.clientOrderId, cmd.commandId), (found) => {
          const off = killSwitchFor(cmd.consumerId, cmd.clientOrderId)
          if (off !== undefined) return Effect.fail(off)
          // an order that is not there (or not open) is the venue's to refuse
          if (found._tag === "None") return inner.amend(cmd)
          const o: OrderView = found.value
          const quantity: Decimal = cmd.quantity ?? o.quantity
          const remaining = dec(quantity).minus(o.filledQty)
          const position = limitsOf(cmd.consumerId).maxPosition === undefined
            ? "0"
            : inner.exposure(cmd.consumerId, o.symbol, o.venue).position
          const broken = check(cmd.consumerId, {
            clientOrderId: cmd.clientOrderId,
            side: o.side,
            quantity,
            remaining: toDecimal(remaining.gt(0) ? remaining : ZERO),
            price: cmd.price ?? o.price,
            position,
            openOrders: undefined
          })
          return broken === undefined ? inner.amend(cmd) : Effect.fail(broken)
        })
      })

    const killSwitch = (engage: boolean, target: string, by: string): Effect.Effect<KillSwitchOutcome> =>
      Effect.gen(function*() {
        const scope = target === ALL ? {} : { consumerId: target }
        if (!engage) {
          if (target === ALL) global = false
          else killed.delete(target)
          yield* Effect.logWarning("kill switch released").pipe(Effect.annotateLogs({ target, by }))
          return { engaged: false, target, canceled: 0, state: state() }
        }
        // marked first: from here on no order of the scope gets through
        if (target === ALL) global = true
        else killed.add(target)
        engagements++
        const canceled = yield* inner.cancelAll(scope, `kill switch engaged (${target === ALL ? "the whole gateway" : target})`)
        canceledByKillSwitch += canceled.length
        yield* Effect.logWarning("kill switch engaged").pipe(Effect.annotateLogs({ target, by, canceled: canceled.length }))
        return { engaged: true, target, canceled: canceled.length, state: state() }
      })

    return {
      venue: { ...inner, submit, amend },
      killSwitch,
      killSwitchState: state,
      limitsOf,
      setLimits: (consumerId, limits) => {
        own.set(consumerId, limits)
      },
      stats: () => ({ checked, refused: { ...refused }, killSwitch: state(), engagements, canceledByKillSwitch })
    }
  })

/** Risk checks and the kill switch of the execution venue. */
export class Risk extends Context.Tag("meltica/Risk")<Risk, RiskShape>() {
  /**
   * The venue of the layer below, guarded: provides `ExecutionVenue` (the
   * guarded one) and `Risk`. Give it the inner venue with `Layer.provide`, so
   * that only the guarded venue is seen above.
   */
  static readonly layer = (settings: RiskSettings = {}): Layer.Layer<Risk | ExecutionVenue, never, ExecutionVenue> =>
    Layer.effectContext(
      Effect.gen(function*() {
        const risk = yield* makeRisk(yield* ExecutionVenue, settings)
        return Context.make(Risk, risk).pipe(Context.add(ExecutionVenue, risk.venue))
      })
    )

  /** `inner`, guarded. */
  static readonly over = <E, R>(inner: Layer.Layer<ExecutionVenue, E, R>, settings: RiskSettings = {}) =>
    Risk.layer(settings).pipe(Layer.provide(inner))
}
