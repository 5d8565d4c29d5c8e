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
 * Drains are not all alike: under a flood through ten consumers one drain is a
 * burst of events (about 160 us), and 2,048 of them hold the event loop for a
 * third of a second. A bound in time as well (5 ms of drains, then
 * `setImmediate`) was measured: it doubled the gateway's p99 dispatch-to-lambda
 * at 50,000 events/s (`bench:gateway`, BENCHMARKS.md), so the bound stays in
 * drains. A flood that long comes from a replay or a benchmark; a live feed
 * arrives through the event loop.
 */
import { FiberRef, Scheduler } from "effect"

export class ImmediateFallbackScheduler implements Scheduler.Scheduler {
  // One runner for every fiber: the fibers woken so far run together in each
  // drain, and past the bound they all yield to the event loop together.
  private readonly runner = new Scheduler.SchedulerRunner((depth, drain) => {
    if (depth >= this.maxDrainsBeforeYield) setImmediate(() => drain(0))
    else queueMicrotask(() => drain(depth + 1))
  })

  /** `maxDrainsBeforeYield`: consecutive microtask drains of one fiber before it yields to the event loop. */
  constructor(readonly maxDrainsBeforeYield: number) {}

  shouldYield(fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]): number | false {
    // the bound is read every 64 ops rather than at every op (a fiber-ref lookup
    // per step of every fiber); a fiber yields at most 63 ops past it
    const ops = fiber.currentOpCount
    return (ops & 63) === 0 && ops > fiber.getFiberRef(FiberRef.currentMaxOpsBeforeYield)
      ? fiber.getFiberRef(FiberRef.currentSchedulingPriority)
      : false
  }

  scheduleTask(task: Scheduler.Task, priority: number): void {
    this.runner.scheduleTask(task, priority)
  }
}

/** The gateway's scheduler: Effect's bound of 2,048 drains, with `setImmediate` rather than a 1 ms timer past it. */
export const gatewayScheduler: Scheduler.Scheduler = new ImmediateFallbackScheduler(2_048)
