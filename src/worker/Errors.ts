/**
 * What can go wrong with a strategy worker, with the context an operator
 * needs: the strategy's consumer id always.
 */
import { Data } from "effect"

/** The worker thread ended without being asked to: restarted, or given up after too many crashes. */
export class WorkerCrashed extends Data.TaggedError("WorkerCrashed")<{
  readonly consumerId: string
  readonly exitCode: number
  /** The uncaught error's first line, when there was one. */
  readonly reason: string
  /** Crashes so far, this one included. */
  readonly crashes: number
  /** Critical events the worker had taken and not handled: replayed to the next worker. */
  readonly replayed: number
}> {
  override get message(): string {
    return `strategy worker ${this.consumerId} crashed (exit code ${this.exitCode}): ${this.reason}`
  }
}

/** The worker crashed more often than its restart budget allows: the strategy is stopped. */
export class WorkerGaveUp extends Data.TaggedError("WorkerGaveUp")<{
  readonly consumerId: string
  readonly crashes: number
}> {
  override get message(): string {
    return `strategy worker ${this.consumerId} stopped after ${this.crashes} crashes`
  }
}

/** A command from a worker that names another consumer than the worker's own: refused, counted. */
export class ForeignCommand extends Data.TaggedError("ForeignCommand")<{
  readonly consumerId: string
  readonly claimed: string
  readonly command: string
}> {
  override get message(): string {
    return `strategy worker ${this.consumerId} sent a ${this.command} command in the name of ${this.claimed}: refused`
  }
}

/** An event the main thread could not put on a worker's ring (it does not encode, or its frame is larger than the ring takes). */
export class RingWriteFailed extends Data.TaggedError("RingWriteFailed")<{
  readonly consumerId: string
  readonly traceId: string
  readonly kind: string
  readonly reason: string
}> {
  override get message(): string {
    return `event ${this.kind} ${this.traceId} for strategy worker ${this.consumerId} not written: ${this.reason}`
  }
}
