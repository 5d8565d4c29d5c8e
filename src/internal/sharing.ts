/**
 * One pooled event shared read-only by several holders (a fan-out to N
 * subscribers) instead of N clones.
 *
 * Rules:
 * - Sharing ends its one owner's period and starts N holder periods on the
 *   same object. Each holder gets its own generation: the N values after the
 *   object's generation at the share, handed out one per hand-over (the one
 *   `generationOf` read each hand-over makes); the object's generation then
 *   moves past all of them, so any later read yields a generation no holder
 *   has.
 * - A holder recycles with its generation: the first recycle of each is
 *   accepted and counted down; the last one recycles the object, exactly once.
 * - A generation outside the share's range, or one already recycled (a
 *   holder releasing twice), is refused as a stale holder's: the object stays
 *   with the holders that still hold it.
 * - Nobody writes a shared event: the debug views of its holders refuse
 *   writes (`debugViews.ts`).
 *
 * The state lives in one object per pooled event, made at its first share
 * and reused: a share costs no allocation.
 */
export class SharedHolders {
  /** Holders that have not recycled yet; 0 when the event is not shared. */
  refs = 0
  /** The first and last holder generations of the current share. */
  first = 1
  last = 0
  /** The next holder generation to hand out (past `last`: all handed out). */
  next = 1
  /** One bit per holder: set once it has recycled. */
  private released = new Uint32Array(2)

  /** Starts a share among `n` holders after generation `base`. */
  begin(base: number, n: number): void {
    const words = (n + 31) >>> 5
    if (words > this.released.length) this.released = new Uint32Array(Math.max(words, this.released.length * 2))
    else for (let w = 0; w < words; w++) this.released[w] = 0 // one or two words: cheaper than a call to fill
    this.refs = n
    this.first = base + 1
    this.last = base + n
    this.next = base + 1
  }

  /**
   * A holder with generation `gen` recycles: "stale" when `gen` is no holder
   * of this share or has recycled already; "last" when it was the last
   * holder (the share is over); "held" when others still hold the event.
   */
  release(gen: number): "stale" | "last" | "held" {
    if (gen < this.first || gen > this.last) return "stale"
    const i = gen - this.first
    const word = i >>> 5
    const bit = 1 << (i & 31)
    const w = this.released[word]!
    if ((w & bit) !== 0) return "stale"
    this.released[word] = w | bit
    if (--this.refs > 0) return "held"
    this.first = 1
    this.last = 0
    this.next = 1
    return "last"
  }
}
