/**
 * The scheduler the gateway runs on (`layers/Application.ts`), and the one
 * the benchmarks run on, so that they measure what ships.
 *
 * Effect 3.22's default scheduler runs woken fibers in microtask drains and,
 * once one fiber's tasks have been drained 2,048 times in a row (a fiber that
 * keeps yielding without ever waiting: a busy consumer, a flood through the
 * dispatcher), moves it to `setTimeout(0)`: at least 1 ms in Node, however
 * little is left to do. Under load, that fiber then waits a timer tick
 * while the process is idle.
 *
 * The bound counts per fiber (since Effect 3.20): a producer and its
 * consumers that all stay busy reach it at different moments, and whichever
 * reaches it first waits for the timer while the others run on, so a busy
 * consumer falls behind its producer by up to 2,048 drains' worth of events
 * (`bench:fanout` saw 65,000 events queued per consumer at N = 10).
 *
 * This one counts drains across all fibers, as Effect did before 3.20: every
 * fiber woken so far runs in each drain, and past the bound they all yield to
 * the event loop together, through `setImmediate` (sockets and due timers get
 * one turn, then the drains go on at once; what Effect 4's scheduler does)
 * rather than a 1 ms timer. `npm run bench:fanout -- --scheduler default` measures against the
 * default; `npm run bench:gateway` shows the latency under load.
 *
 * Drains are not all alike: under a flood through ten consumers one drain is
 * a burst of events (about 160 us), and 2,048 of them held the event loop for
 * a third of a second, during which no socket was read and no timer fired. The
 * gateway's scheduler also yields once a chain of drains has run 5 ms (a clock
 * read per drain), so that sockets and timers get a turn at least every 5 ms
 * of work, at a cost under one percent of a flood's throughput.
 */
import { FiberRef, Scheduler } from "effect"

export class ImmediateFallbackScheduler implements Scheduler.Scheduler {
  // when the current chain of microtask drains began (the clock's milliseconds)
  private sliceStart = 0
  // One runner for every fiber: the fibers woken so far run together in each
  // drain, and past the bound they all yield to the event loop together.
  private readonly runner = new Scheduler.SchedulerRunner((depth, drain) => {
    if (depth === 0) {
      // a new chain: after the event loop's turn, or after every fiber waited
      if (this.maxSliceMs !== Infinity) this.sliceStart = this.now()
      queueMicrotask(() => drain(1))
    } else if (depth >= this.maxDrainsBeforeYield || (this.maxSliceMs !== Infinity && this.now() - this.sliceStart >= this.maxSliceMs)) {
      setImmediate(() => drain(0))
    } else queueMicrotask(() => drain(depth + 1))
  })

  constructor(
    /** Consecutive microtask drains before the fibers yield to the event loop. */
    readonly maxDrainsBeforeYield: number,
    /** The longest a chain of drains holds the event loop, milliseconds (checked between drains). */
    readonly maxSliceMs: number = Infinity,
    private readonly now: () => number = () => performance.now()
  ) {}

  shouldYield(fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]): number | false {
    const ops = fiber.currentOpCount
    return (ops & 63) === 0 && ops > fiber.getFiberRef(FiberRef.currentMaxOpsBeforeYield)
      ? fiber.getFiberRef(FiberRef.currentSchedulingPriority)
      : false
  }

  scheduleTask(task: Scheduler.Task, priority: number): void {
    this.runner.scheduleTask(task, priority)
  }
}

/**
 * The gateway's scheduler: Effect's bound of 2,048 drains, and at most 5 ms
 * of drains in a row, with `setImmediate` rather than a 1 ms timer past either.
 */
export const gatewayScheduler: Scheduler.Scheduler = new ImmediateFallbackScheduler(2_048, 5)
