/**
 * The strategy SDK, for a strategy's file:
 *
 * ```ts
 * import * as Strategy from "<path to meltica>/src/strategy/index.js"
 * export default Strategy.define({ id: "my-strategy", ... })
 * ```
 *
 * See `Strategy.ts` (definition, context, outcomes), `Event.ts` (the event
 * union) and `schema/Rejection.ts` (why a command is rejected).
 */
export * from "../../schema/Rejection.js"
export * from "./Errors.js"
export * from "./Event.js"
export {
  causeReason,
  type CommandError,
  define,
  type AmendRequest,
  type Handlers,
  isStrategy,
  type MergedRequest,
  observe,
  OrderAccepted,
  type OrderRequest,
  OrderState,
  type RunningStrategy,
  type Strategy,
  type StrategyContext,
  type StrategyDefinition,
  type StrategyPortfolio,
  KillSwitchResult,
  portfolioOf,
  type Topology
} from "./Strategy.js"
