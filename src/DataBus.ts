/**
 * The Data Bus: one mailbox per consumer, with two lanes.
 *
 * - Market-data lane: bounded. Under backpressure (the lane at its bound) the
 *   latest event per stream key wins: the most recent queued event of the same
 *   stream is replaced in place, and the replaced one is recycled and counted.
 *   A stream never loses its latest value, so the lane can exceed its bound
 *   only by the number of distinct streams.
 * - Critical lane (ExecReport, ControlAck, ControlResult): lossless up to its
 *   bound. Never coalesced or filtered; drained before queued market data; its
 *   depth is reported, with a warning when it crosses the high-water mark.
 *   At its bound (`criticalCapacity`, 10x the high-water mark by default) the
 *   consumer has stopped draining for so long that holding more would only
 *   move the failure to the whole process (memory): a critical event offered
 *   then is refused, never silently: counted per consumer
 *   (`meltica_mailbox_critical_refused`), logged at error level with its
 *   consumer, kind and trace id, and recycled. What is already queued is kept.
 *   A consumer's optional per-event timeout (`Consumer.ts`) keeps a lambda
 *   that never returns from getting there.
 * - A closed mailbox (its consumer stopped) refuses every offer: the event is
 *   recycled and counted as undeliverable, and a critical one is also counted
 *   on its own and logged at error level.
 *
 * `DataBus` is a port: `layerMemory` is the embedded default; a remote bus
 * delivers into the same local `Mailbox` on the consumer's side.
 */
import { Context, Effect, Layer, Queue, Scope } from "effect"
import { isCritical } from "../schema/Event.js"
import { DEFAULT_CRITICAL_CAPACITY, DEFAULT_CRITICAL_HIGH_WATER, DEFAULT_MARKET_LANE } from "../schema/Sizing.js"
import type { DeliveryError } from "./Errors.js"
import type { AnyEvent } from "./Event.js"
import { reusableWait } from "./internal/inlineEffect.js"
import { type Generation, generationOf, Recycler } from "./Recycler.js"

export interface MailboxOptions {
  /** Bound of the market-data lane. */
  readonly marketCapacity: number
  /** Critical-lane depth that triggers a high-water warning. */
  readonly criticalHighWater: number
  /** Bound of the critical lane: a critical event offered beyond it is refused loudly (see above). */
  readonly criticalCapacity: number
}

export const defaultMailboxOptions: MailboxOptions = {
  marketCapacity: DEFAULT_MARKET_LANE,
  criticalHighWater: DEFAULT_CRITICAL_HIGH_WATER,
  criticalCapacity: DEFAULT_CRITICAL_CAPACITY
}

export interface MailboxStats {
  readonly consumerId: string
  readonly marketDepth: number
  readonly criticalDepth: number
  readonly criticalHighWaterMark: number
  readonly offered: number
  readonly coalesced: number
  readonly criticalOffered: number
  /** Critical events refused at the lane's bound (absent where the mailbox is remote). */
  readonly criticalRefused?: number
}

/**
 * A growable FIFO ring of events, each with the generation it was received
 * with: O(1) push and shift, no allocation per element (a power-of-two size,
 * indexed by mask).
 */
class Lane {
  private items: Array<AnyEvent | undefined>
  private gens: Array<number>
  private head = 0
  private mask: number
  size = 0
  /** The generation of the event the last `shift` returned. */
  shiftedGen = 0 as Generation
  constructor(initial = 64) {
    this.items = new Array(initial).fill(undefined)
    this.gens = new Array(initial).fill(0)
    this.mask = initial - 1
  }
  push(e: AnyEvent, gen: Generation): void {
    if (this.size === this.items.length) this.grow()
    const i = (this.head + this.size) & this.mask
    this.items[i] = e
    this.gens[i] = gen
    this.size++
  }
  /** The oldest event (its generation in `shiftedGen`); the lane must not be empty. */
  shift(): AnyEvent {
    const i = this.head
    const e = this.items[i]!
    this.items[i] = undefined
    this.shiftedGen = this.gens[i]! as Generation
    this.head = (i + 1) & this.mask
    this.size--
    return e
  }
  /** Position (from the oldest) of the newest event satisfying `f`, or -1. */
  findLastIndex(f: (e: AnyEvent) => boolean): number {
    for (let i = this.size - 1; i >= 0; i--) {
      if (f(this.items[(this.head + i) & this.mask]!)) return i
    }
    return -1
  }
  at(i: number): AnyEvent {
    return this.items[(this.head + i) & this.mask]!
  }
  genAt(i: number): Generation {
    return this.gens[(this.head + i) & this.mask]! as Generation
  }
  set(i: number, e: AnyEvent, gen: Generation): void {
    const j = (this.head + i) & this.mask
    this.items[j] = e
    this.gens[j] = gen
  }
  private grow(): void {
    const n = this.items.length
    const items = new Array<AnyEvent | undefined>(n * 2).fill(undefined)
    const gens = new Array<number>(n * 2).fill(0)
    for (let i = 0; i < this.size; i++) {
      items[i] = this.items[(this.head + i) & this.mask]
      gens[i] = this.gens[(this.head + i) & this.mask]!
    }
    this.items = items
    this.gens = gens
    this.head = 0
    this.mask = n * 2 - 1
  }
}

const sameStream = (a: AnyEvent, b: AnyEvent): boolean =>
  a._pool === b._pool && a.kind === b.kind && a.symbol === b.symbol && a.provider === b.provider

/**
 * A consumer's mailbox. `offer` is synchronous and never suspends: the
 * producer (the dispatcher) is never held up by a slow consumer.
 */
export class Mailbox {
  private readonly market = new Lane()
  private readonly critical = new Lane()
  /** The generation of the event the last `poll` returned: its taker keeps it to recycle with. */
  polledGeneration = 0 as Generation
  /** How to give back the critical event the last `poll` returned, if it is a remote delivery (see `close`). */
  polledGiveBack: (() => void) | undefined = undefined
  /**
   * The give-backs of the remote deliveries in the critical lane, read at the
   * hand-over: by the time the mailbox closes, an event's fields may no longer
   * be its holder's to read.
   */
  private giveBacks: Map<AnyEvent, () => void> | undefined = undefined
  private waiter: ((_: Effect.Effect<void>) => void) | undefined = undefined
  private closed = false
  /** Remote deliveries taken by the consumer and dropped unrun, to give back when the mailbox closes. */
  private givingBack: Array<() => void> | undefined = undefined
  private highWaterWarned = false
  offered = 0
  coalesced = 0
  criticalOffered = 0
  criticalRefused = 0
  criticalHighWaterMark = 0

  constructor(
    readonly consumerId: string,
    readonly options: MailboxOptions,
    private readonly recycle: (e: AnyEvent, gen: Generation) => boolean,
    private readonly warn: (message: string, depth: number) => void,
    /** Told of an event this mailbox refuses (closed, or its critical lane full), before it is recycled. */
    private readonly refused: (e: AnyEvent, reason: "closed" | "critical_lane_full") => void = () => {}
  ) {}

  /** Takes ownership of `e` (in the ownership period it has now). */
  offer(e: AnyEvent): void {
    const gen = generationOf(e)
    if (this.closed) {
      this.refused(e, "closed")
      e._giveBack?.()
      this.recycle(e, gen)
      return
    }
    if (isCritical(e.kind)) {
      this.criticalOffered++
      if (this.critical.size >= this.options.criticalCapacity) {
        this.criticalRefused++
        this.refused(e, "critical_lane_full")
        this.recycle(e, gen)
        return
      }
      this.critical.push(e, gen)
      const giveBack = e._giveBack
      if (giveBack !== undefined) (this.giveBacks ??= new Map()).set(e, giveBack)
      const depth = this.critical.size
      if (depth > this.criticalHighWaterMark) this.criticalHighWaterMark = depth
      if (depth >= this.options.criticalHighWater && !this.highWaterWarned) {
        this.highWaterWarned = true
        this.warn("critical lane above its high-water mark", depth)
      } else if (this.highWaterWarned && depth < this.options.criticalHighWater / 2) {
        this.highWaterWarned = false
      }
    } else {
      this.offered++
      if (this.market.size >= this.options.marketCapacity) {
        // the stream's most recent queued value gives way: values of one
        // stream stay in order and the newest is always the last one seen
        const i = this.market.findLastIndex((q) => sameStream(q, e))
        if (i >= 0) {
          const replaced = this.market.at(i)
          const replacedGen = this.market.genAt(i)
          this.market.set(i, e, gen)
          this.coalesced++
          this.recycle(replaced, replacedGen)
          return
        }
      }
      this.market.push(e, gen)
    }
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      w(Effect.void)
    }
  }

  /** The next event: critical lane first (its generation in `polledGeneration`). */
  poll(): AnyEvent | undefined {
    if (this.critical.size > 0) return this.pollCritical()
    if (this.market.size === 0) return undefined
    const e = this.market.shift()
    this.polledGeneration = this.market.shiftedGen
    return e
  }

  /** The next critical event (the lane must not be empty), with its give-back if it is remote. */
  private pollCritical(): AnyEvent {
    const e = this.critical.shift()
    this.polledGeneration = this.critical.shiftedGen
    const backs = this.giveBacks
    if (backs !== undefined && backs.size > 0) {
      this.polledGiveBack = backs.get(e)
      backs.delete(e)
    } else this.polledGiveBack = undefined
    return e
  }

  get size(): number {
    return this.critical.size + this.market.size
  }

  /**
   * Completes when the mailbox holds an event (at once if it already does).
   * One waiter at a time: its consumer. No canceler: a waiter whose fiber was
   * interrupted stays until the next wait replaces it or an offer calls it,
   * and the runtime ignores a resume of an interrupted wait (a canceler would
   * cost the wait an interruption handler: a third of a wake-up's time).
   */
  readonly awaitEvent: Effect.Effect<void> = reusableWait((resume) => {
    if (this.size > 0 || this.closed) resume(Effect.void)
    else this.waiter = resume
  })

  /**
   * Gives a remote delivery back to its source when the mailbox closes (at
   * once if it has): its consumer took it from here and stopped before its
   * lambda ran to the end. Not earlier: until the mailbox closes, the source
   * may still be delivering, and would hand it straight back to this mailbox.
   */
  giveBackOnClose(giveBack: () => void): void {
    if (this.closed) giveBack()
    else (this.givingBack ??= []).push(giveBack)
  }

  /**
   * Refuses further offers and recycles everything still queued; remote
   * deliveries are given back to their source first (`_giveBack`, kept from
   * the hand-over), the one its consumer had taken before those still queued.
   */
  close(): void {
    this.closed = true
    const taken = this.givingBack
    this.givingBack = undefined
    if (taken !== undefined) for (const giveBack of taken) giveBack()
    let e: AnyEvent | undefined
    while ((e = this.poll()) !== undefined) {
      this.polledGiveBack?.()
      this.polledGiveBack = undefined
      this.recycle(e, this.polledGeneration)
    }
  }

  stats(): MailboxStats {
    return {
      consumerId: this.consumerId,
      marketDepth: this.market.size,
      criticalDepth: this.critical.size,
      criticalHighWaterMark: this.criticalHighWaterMark,
      offered: this.offered,
      coalesced: this.coalesced,
      criticalOffered: this.criticalOffered,
      criticalRefused: this.criticalRefused
    }
  }
}

/** Where the dispatcher delivers a consumer's events. */
export interface Endpoint {
  readonly consumerId: string
  /**
   * Hands `e` over at once if that can be done without suspending, and says
   * whether it did (ownership passes only on true). An in-memory mailbox
   * always can; a remote bus can for fire-and-forget market data.
   */
  readonly offer: (e: AnyEvent) => boolean
  /** Hands `e` over, suspending as long as it takes (ownership passes). */
  readonly deliver: (e: AnyEvent) => Effect.Effect<void, DeliveryError>
}

export interface DataBusShape {
  /** Opens the consumer's mailbox for the life of the scope; closing it recycles what is left. */
  readonly register: (
    consumerId: string,
    options?: Partial<MailboxOptions>,
    /**
     * The endpoint the dispatcher delivers through, in front of the mailbox
     * (a strategy worker's shared ring, `src/worker/`); absent: the mailbox
     * itself. A remote bus delivers into the mailbox and ignores it.
     */
    endpoint?: (box: Mailbox) => Endpoint
  ) => Effect.Effect<Mailbox, never, Scope.Scope>
  /** The endpoint that delivers to a registered consumer, if it is registered. */
  readonly endpoint: (consumerId: string) => Endpoint | undefined
  /** Delivers to a consumer by id; an event for an unknown consumer is recycled and counted. */
  readonly publish: (consumerId: string, e: AnyEvent) => Effect.Effect<void>
  readonly mailboxes: () => ReadonlyArray<MailboxStats>
  readonly stats: () => DataBusStats
}

export interface DataBusStats {
  /** Events for a consumer without a mailbox, or offered to a closed one: recycled. */
  readonly undeliverable: number
  /** Critical events refused, by reason: the consumer's mailbox closed, or its critical lane at its bound. */
  readonly criticalRefused?: { readonly closed: number; readonly critical_lane_full: number }
}

export class DataBus extends Context.Tag("meltica/DataBus")<DataBus, DataBusShape>() {
  /** The embedded default: mailboxes in this process. */
  static readonly layerMemory: Layer.Layer<DataBus, never, Recycler> = Layer.scoped(
    DataBus,
    Effect.gen(function*() {
      const recycler = yield* Recycler
      const warnings = yield* Queue.sliding<{ consumerId: string; message: string; depth: number }>(256)
      yield* Queue.take(warnings).pipe(
        Effect.flatMap((w) =>
          Effect.logWarning(w.message).pipe(Effect.annotateLogs({ consumer_id: w.consumerId, depth: w.depth }))
        ),
        Effect.forever,
        Effect.forkScoped
      )
      // a refused critical event is logged at error level off the hot path; the
      // queue slides under a flood (the log thins out), the counts stay exact
      const refusals = yield* Queue.sliding<{ consumerId: string; reason: string; kind: string; traceId: string }>(256)
      yield* Queue.take(refusals).pipe(
        Effect.flatMap((r) =>
          Effect.logError(`critical event refused: ${r.reason === "closed" ? "the consumer's mailbox is closed" : "the consumer's critical lane is at its bound"}`).pipe(
            Effect.annotateLogs({ consumer_id: r.consumerId, kind: r.kind, trace_id: r.traceId, reason: r.reason })
          )
        ),
        Effect.forever,
        Effect.forkScoped
      )
      const boxes = new Map<string, Mailbox>()
      const endpoints = new Map<string, Endpoint>()
      let undeliverable = 0
      const criticalRefused = { closed: 0, critical_lane_full: 0 }
      const refused = (consumerId: string) => (e: AnyEvent, reason: "closed" | "critical_lane_full") => {
        if (reason === "closed") undeliverable++
        if (!isCritical(e.kind)) return
        criticalRefused[reason]++
        Queue.unsafeOffer(refusals, { consumerId, reason, kind: e.kind, traceId: e.traceId })
      }

      const register = (consumerId: string, options: Partial<MailboxOptions> = {}, endpoint?: (box: Mailbox) => Endpoint) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const box = new Mailbox(
              consumerId,
              { ...defaultMailboxOptions, ...options },
              recycler.unsafeRecycle,
              (message, depth) => Queue.unsafeOffer(warnings, { consumerId, message, depth }),
              refused(consumerId)
            )
            boxes.set(consumerId, box)
            endpoints.set(consumerId, endpoint !== undefined ? endpoint(box) : {
              consumerId,
              offer: (e) => {
                box.offer(e)
                return true
              },
              deliver: (e) => Effect.sync(() => box.offer(e))
            })
            return box
          }),
          (box) =>
            Effect.sync(() => {
              if (boxes.get(consumerId) === box) {
                boxes.delete(consumerId)
                endpoints.delete(consumerId)
              }
              box.close()
            })
        )

      const publish = (consumerId: string, e: AnyEvent) =>
        Effect.sync(() => {
          const box = boxes.get(consumerId)
          if (box === undefined) {
            undeliverable++
            recycler.unsafeRecycle(e, generationOf(e))
          } else if (!endpoints.get(consumerId)!.offer(e)) box.offer(e) // through the endpoint in front of the mailbox, if any
        })

      return {
        register,
        endpoint: (id) => endpoints.get(id),
        publish,
        mailboxes: () => [...boxes.values()].map((b) => b.stats()),
        stats: () => ({ undeliverable, criticalRefused: { ...criticalRefused } })
      }
    })
  )
}
