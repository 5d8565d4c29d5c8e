/**
 * The runtime we stand on, measured side by side: Effect 3.22 (what the
 * project runs) and Effect 4 (the `effect4` alias, used by benchmarks only).
 *
 * For each: Effect's PubSub with one subscriber fiber per subscriber, and a
 * minimal mailbox-plus-consumer-loop of our shape (one fiber per consumer
 * draining a ring in batches, the lambda as the body of `Effect.whileLoop`,
 * the producer handing each event to every mailbox in place). The minimal
 * loop has no pool, ordering or routing: it measures what the runtime costs
 * per delivery, on both versions, with the same code.
 *
 * Every variant is driven the same way as `bench/fanout.ts`: events pushed in
 * bursts, the subscriber fibers running between bursts, an `Effect.sync`
 * lambda per delivery.
 */
import { Effect, PubSub, Queue } from "effect"
import { Effect as Effect4, PubSub as PubSub4 } from "effect4"

export interface RuntimeFigures {
  readonly nsPerEvent: number
  readonly deliveriesPerSec: number
}

const BATCH = 256

/** A ring of pending messages and one waiting consumer: the shape of our `Mailbox`. */
class MiniBox<W> {
  private items: Array<number> = new Array(1024)
  private head = 0
  size = 0
  waiter: W | undefined = undefined
  push(x: number): W | undefined {
    if (this.size === this.items.length) {
      const next = new Array<number>(this.items.length * 2)
      for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) % this.items.length]!
      this.items = next
      this.head = 0
    }
    this.items[(this.head + this.size) % this.items.length] = x
    this.size++
    const w = this.waiter
    this.waiter = undefined
    return w
  }
  shift(): number {
    const x = this.items[this.head]!
    this.head = (this.head + 1) % this.items.length
    this.size--
    return x
  }
}

const timedSync = (events: number, n: number, t0: bigint): RuntimeFigures => {
  const ns = Number(process.hrtime.bigint() - t0)
  return { nsPerEvent: ns / events, deliveriesPerSec: (events * n * 1e9) / ns }
}

// --- Effect 3.22 --------------------------------------------------------------

const flood3 = (events: number, burst: number, publish: (i: number) => Effect.Effect<void>, done: () => boolean) =>
  Effect.gen(function*() {
    let i = 0
    yield* Effect.whileLoop({
      while: () => i < events,
      body: () => (i % burst === burst - 1 ? Effect.zipRight(publish(i), Effect.yieldNow()) : publish(i)),
      step: () => i++
    })
    while (!done()) yield* Effect.yieldNow()
  })

/** The minimal mailbox-plus-consumer-loop on Effect 3.22. */
export const loop3 = (n: number, events: number, burst: number) =>
  Effect.scoped(Effect.gen(function*() {
    type Resume = (_: Effect.Effect<void>) => void
    let count = 0
    const lambda = (_: number) => Effect.sync(() => void count++)
    const boxes: Array<MiniBox<Resume>> = []
    for (let s = 0; s < n; s++) {
      const box = new MiniBox<Resume>()
      boxes.push(box)
      const batch: Array<number> = []
      let index = 0
      const wait = Effect.async<void>((resume) => {
        if (box.size > 0) return resume(Effect.void)
        box.waiter = resume
      })
      const drain = Effect.suspend(() => {
        batch.length = 0
        index = 0
        while (batch.length < BATCH && box.size > 0) batch.push(box.shift())
        return batch.length === 0
          ? wait
          : Effect.whileLoop({ while: () => index < batch.length, body: () => lambda(batch[index]!), step: () => index++ })
      })
      yield* Effect.forkScoped(Effect.forever(drain))
    }
    const publish = (i: number) =>
      Effect.sync(() => {
        for (let s = 0; s < n; s++) boxes[s]!.push(i)?.(Effect.void)
      })
    const warm = Math.min(events, 50_000)
    yield* flood3(warm, burst, publish, () => count >= warm * n)
    count = 0
    const t0 = process.hrtime.bigint()
    yield* flood3(events, burst, publish, () => count >= events * n)
    return timedSync(events, n, t0)
  }))

// --- Effect 4 -----------------------------------------------------------------

const flood4 = (events: number, burst: number, publish: (i: number) => Effect4.Effect<unknown>, done: () => boolean) =>
  Effect4.gen(function*() {
    let i = 0
    yield* Effect4.whileLoop({
      while: () => i < events,
      body: () => (i % burst === burst - 1 ? Effect4.andThen(publish(i), Effect4.yieldNow) : publish(i)),
      step: () => i++
    })
    while (!done()) yield* Effect4.yieldNow
  })

/** Effect 4's PubSub, one subscriber fiber per subscriber, as `bench/fanout.ts` runs 3.22's. */
const pubsub4Program = (n: number, events: number, burst: number) =>
  Effect4.scoped(Effect4.gen(function*() {
    const hub = yield* PubSub4.unbounded<number>()
    let count = 0
    const lambda = (_: number) => Effect4.sync(() => void count++)
    for (let s = 0; s < n; s++) {
      const sub = yield* PubSub4.subscribe(hub)
      yield* PubSub4.takeBetween(sub, 1, BATCH).pipe(
        Effect4.flatMap((items) => Effect4.forEach(items, lambda, { discard: true })),
        Effect4.forever,
        Effect4.forkScoped
      )
    }
    const warm = Math.min(events, 50_000)
    yield* flood4(warm, burst, (i) => PubSub4.publish(hub, i), () => count >= warm * n)
    count = 0
    const t0 = process.hrtime.bigint()
    yield* flood4(events, burst, (i) => PubSub4.publish(hub, i), () => count >= events * n)
    return timedSync(events, n, t0)
  }))

/** The minimal mailbox-plus-consumer-loop on Effect 4, the same code as `loop3`. */
const loop4Program = (n: number, events: number, burst: number) =>
  Effect4.scoped(Effect4.gen(function*() {
    type Resume = (_: Effect4.Effect<void>) => void
    let count = 0
    const lambda = (_: number) => Effect4.sync(() => void count++)
    const boxes: Array<MiniBox<Resume>> = []
    for (let s = 0; s < n; s++) {
      const box = new MiniBox<Resume>()
      boxes.push(box)
      const batch: Array<number> = []
      let index = 0
      const wait = Effect4.callback<void>((resume) => {
        if (box.size > 0) return resume(Effect4.void)
        box.waiter = resume
      })
      const drain = Effect4.suspend(() => {
        batch.length = 0
        index = 0
        while (batch.length < BATCH && box.size > 0) batch.push(box.shift())
        return batch.length === 0
          ? wait
          : Effect4.whileLoop({ while: () => index < batch.length, body: () => lambda(batch[index]!), step: () => index++ })
      })
      yield* Effect4.forkScoped(Effect4.forever(drain))
    }
    const publish = (i: number) =>
      Effect4.sync(() => {
        for (let s = 0; s < n; s++) boxes[s]!.push(i)?.(Effect4.void)
      })
    const warm = Math.min(events, 50_000)
    yield* flood4(warm, burst, publish, () => count >= warm * n)
    count = 0
    const t0 = process.hrtime.bigint()
    yield* flood4(events, burst, publish, () => count >= events * n)
    return timedSync(events, n, t0)
  }))

/** Effect 4's PubSub, run on Effect 4's own runtime from a 3.22 program. */
export const pubsub4 = (n: number, events: number, burst: number): Effect.Effect<RuntimeFigures> =>
  Effect.promise(() => Effect4.runPromise(pubsub4Program(n, events, burst)))

/** The minimal loop on Effect 4's own runtime, from a 3.22 program. */
export const loop4 = (n: number, events: number, burst: number): Effect.Effect<RuntimeFigures> =>
  Effect.promise(() => Effect4.runPromise(loop4Program(n, events, burst)))

/** Effect 3.22's PubSub with the same driver (the figures `bench/fanout.ts` keeps are its own run's). */
export const pubsub3 = (n: number, events: number, burst: number) =>
  Effect.scoped(Effect.gen(function*() {
    const hub = yield* PubSub.unbounded<number>()
    let count = 0
    const lambda = (_: number) => Effect.sync(() => void count++)
    for (let s = 0; s < n; s++) {
      const sub = yield* PubSub.subscribe(hub)
      yield* Queue.takeBetween(sub, 1, BATCH).pipe(
        Effect.flatMap((chunk) => Effect.forEach(chunk, lambda, { discard: true })),
        Effect.forever,
        Effect.forkScoped
      )
    }
    const warm = Math.min(events, 50_000)
    yield* flood3(warm, burst, (i) => Effect.asVoid(PubSub.publish(hub, i)), () => count >= warm * n)
    count = 0
    const t0 = process.hrtime.bigint()
    yield* flood3(events, burst, (i) => Effect.asVoid(PubSub.publish(hub, i)), () => count >= events * n)
    return timedSync(events, n, t0)
  }))
