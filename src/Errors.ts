/**
 * Errors raised inside the process. Boundary errors live in `schema/Errors.ts`.
 */
import { Data } from "effect"
import type { EventKind } from "../schema/Event.js"
import type { PoolType } from "./Event.js"

/**
 * A pooled object was read or written after it was recycled. Raised (as a
 * defect) by debug mode's views on the first access, naming the field and
 * carrying the stack of the recycle that revoked the view.
 */
export class UseAfterRecycle extends Data.TaggedError("UseAfterRecycle")<{
  readonly pool: PoolType
  readonly field: string
  readonly operation: "get" | "set" | "has" | "delete" | "keys" | "define"
  readonly recycleStack: string
  readonly acquireStack: string
}> {
  override get message(): string {
    return `use after recycle: ${this.operation} '${this.field}' on a recycled ${this.pool}\n` +
      `recycled at:\n${this.recycleStack}`
  }
}

/** A consumer id that has no mailbox on the bus. */
export class UnknownConsumer extends Data.TaggedError("UnknownConsumer")<{
  readonly consumerId: string
}> {
  override get message(): string {
    return `unknown consumer: ${this.consumerId}`
  }
}

/** A hand-over to a consumer's mailbox that failed (a remote bus). */
export class DeliveryError extends Data.TaggedError("DeliveryError")<{
  readonly consumerId: string
  readonly reason: string
}> {}

/** One delivery of a fan-out that failed (a remote bus). */
export interface DeliveryFailure {
  readonly consumerId: string
  readonly traceId: string
  readonly kind: EventKind
  readonly cause: unknown
}

/** Every delivery of one fan-out that failed, not just the first. */
export class FanoutFailed extends Data.TaggedError("FanoutFailed")<{
  readonly failures: ReadonlyArray<DeliveryFailure>
}> {}
