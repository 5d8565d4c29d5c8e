/**
 * Why a strategy did not run, and what a strategy's command can fail with
 * besides a rejection (`schema/Rejection.ts`).
 *
 * A strategy that cannot run is reported with its id (or its file when it has
 * none) and the cause, and stopped alone: the gateway and the other strategies
 * go on.
 */
import { Data } from "effect"

/** The strategy's module could not be imported, or its default export is not a strategy. */
export class StrategyModuleFailed extends Data.TaggedError("StrategyModuleFailed")<{
  readonly module: string
  readonly reason: string
}> {
  override get message(): string {
    return `strategy module ${this.module} did not load: ${this.reason}`
  }
}

/** The options given to the strategy do not decode with its options schema. */
export class StrategyOptionsInvalid extends Data.TaggedError("StrategyOptionsInvalid")<{
  readonly strategyId: string
  readonly module: string | undefined
  readonly reason: string
}> {
  override get message(): string {
    return `strategy ${this.strategyId}: invalid options: ${this.reason}`
  }
}

/** The strategy's `start` failed or died: `reason` is the cause, rendered once. */
export class StrategyStartFailed extends Data.TaggedError("StrategyStartFailed")<{
  readonly strategyId: string
  readonly module: string | undefined
  readonly reason: string
}> {
  override get message(): string {
    return `strategy ${this.strategyId}: start failed: ${this.reason}`
  }
}

/** Two strategies with the same id: the second is not started (ids name consumers, which are unique). */
export class StrategyIdTaken extends Data.TaggedError("StrategyIdTaken")<{
  readonly strategyId: string
  readonly module: string | undefined
}> {
  override get message(): string {
    return `strategy ${this.strategyId}: another strategy already runs with this id`
  }
}

export type StrategyFailure = StrategyModuleFailed | StrategyOptionsInvalid | StrategyStartFailed | StrategyIdTaken

/** No reply came for a command within the strategy's reply timeout (the Control Plane unreachable). */
export class ReplyTimedOut extends Data.TaggedError("ReplyTimedOut")<{
  readonly strategyId: string
  readonly commandId: string
  readonly command: string
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `strategy ${this.strategyId}: no reply to ${this.command} ${this.commandId} within ${this.timeoutMs} ms`
  }
}

/** A successful reply whose detail is not what the command answers with (a peer on another contract). */
export class UnexpectedReply extends Data.TaggedError("UnexpectedReply")<{
  readonly strategyId: string
  readonly commandId: string
  readonly command: string
  readonly reason: string
}> {
  override get message(): string {
    return `strategy ${this.strategyId}: unexpected reply to ${this.command} ${this.commandId}: ${this.reason}`
  }
}

/** A handler waited for a command's result: it would wait on itself. Fork the command (`ctx.fork`). */
export class AwaitInHandler extends Data.TaggedError("AwaitInHandler")<{
  readonly strategyId: string
  readonly command: string
}> {
  override get message(): string {
    return `strategy ${this.strategyId}: a handler cannot wait for ${this.command}'s result (results arrive through the handlers): use ctx.fork`
  }
}
