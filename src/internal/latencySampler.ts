/**
 * Which dispatched events carry a dispatch timestamp, from which every
 * subscriber measures its dispatch-to-lambda latency and processing time.
 *
 * Timing an event costs a clock read at the dispatcher and two clock reads and
 * four histogram records per subscriber: at N = 10, about 2.6 us per timed
 * event, so timing one event in eight cost a fifth of a fan-out's time under a
 * flood (`bench:fanout`). Timing a fixed share of events either costs that
 * under load or leaves too few samples at low rates (20 events/s: one sample in
 * 0.4 s).
 *
 * One event in `step` is timed. At the end of each period the step is set from
 * the period's event count so that about `perSecond` events a second are
 * timed: every event (`minEvery`) while fewer arrive, one in thousands under a
 * flood. The hot path pays a counter and a countdown per event. A period ends
 * at the first timed event past it (`timedAt`, with the time already read for
 * that event: a flood that never lets the event loop in, like a replay, still
 * adapts) or at the owner's timer (`periodEnded`: a rate that drops after a
 * flood is followed without waiting for the next of few timed events).
 */
export class LatencySampler {
  /** Timed events are one in `step`. */
  step: number
  private countdown: number
  /** Events seen since the last `adapt`. */
  private events = 0
  /** When the current period began (milliseconds, the caller's monotonic clock); NaN before the first. */
  private periodStart = Number.NaN

  constructor(
    /** The smallest step: 1 times every event while the rate allows it. */
    readonly minEvery: number,
    /** Timed events wanted per second; 0 keeps the step at `minEvery`. */
    readonly perSecond: number,
    /** The largest step, however high the rate. */
    readonly maxEvery: number = 1 << 20,
    /** The length of a period, milliseconds. */
    readonly periodMs: number = 100
  ) {
    this.step = Math.max(1, Math.floor(minEvery))
    this.countdown = this.step
  }

  /** Called once per dispatched event: true when this one is to be timed. */
  take(): boolean {
    this.events++
    if (--this.countdown > 0) return false
    this.countdown = this.step
    return true
  }

  /** A timed event at `nowMs`: ends the period if it has run its length. */
  timedAt(nowMs: number): void {
    if (nowMs - this.periodStart >= this.periodMs) this.periodEnded(nowMs)
  }

  /** The owner's timer at `nowMs`: ends the current period (the first call starts one). */
  periodEnded(nowMs: number): void {
    if (!Number.isNaN(this.periodStart)) this.adapt(nowMs - this.periodStart)
    else this.events = 0
    this.periodStart = nowMs
  }

  /** The period that ended lasted `periodMs`: sets the step from its event count. */
  adapt(periodMs: number): void {
    const events = this.events
    this.events = 0
    if (this.perSecond <= 0 || periodMs <= 0) return
    const wanted = (this.perSecond * periodMs) / 1000
    const step = Math.min(this.maxEvery, Math.max(this.minEvery, Math.ceil(events / wanted)))
    if (step === this.step) return
    this.step = step
    // a lower step applies at once rather than after the rest of a long countdown
    if (this.countdown > step) this.countdown = step
  }
}
