/**
 * Default sizes of the pools and mailboxes, derived from one another so that
 * the defaults are coherent: the Event pool's free list can hold everything
 * the default mailboxes let be in flight at once, so a burst that fills every
 * consumer's market lane is served from the pool, not from the heap.
 *
 * - A consumer's market lane holds at most `DEFAULT_MARKET_LANE` events (it
 *   coalesces beyond that).
 * - The defaults are sized for `PLANNED_CONSUMERS` consumers.
 * - Outside the mailboxes, events are also held by reorder buffers, merge
 *   windows and fan-outs in transit: a quarter more.
 *
 * So the Event pool's capacity is 10 x 4,096 x 1.25 = 51,200. A free list
 * costs memory only for what is returned to it (it is pre-warmed with a few
 * hundred objects), so a capacity sized for the worst case costs nothing in
 * the common case. A deployment with more consumers or larger lanes sizes
 * `pool.capacity.Event` the same way; `Status.ts` warns when the pool falls
 * back to the heap for several samples in a row.
 */
export const DEFAULT_MARKET_LANE = 4_096
export const DEFAULT_CRITICAL_HIGH_WATER = 10_000
/** The critical lane's bound: ten times its high-water mark (see `DataBus.ts`). */
export const DEFAULT_CRITICAL_CAPACITY = 10 * DEFAULT_CRITICAL_HIGH_WATER
export const PLANNED_CONSUMERS = 10
/** Events held outside mailboxes (reorder buffers, merge windows, fan-outs in transit), as a share of what mailboxes hold. */
export const IN_TRANSIT_SHARE = 0.25

export const DEFAULT_EVENT_POOL_CAPACITY = Math.ceil(PLANNED_CONSUMERS * DEFAULT_MARKET_LANE * (1 + IN_TRANSIT_SHARE))
