/**
 * The venue's clock, as seen from ours. Signed requests carry a timestamp
 * that the venue checks against its own clock and a receive window (Binance:
 * `recvWindow`, 5 s by default; OKX: 30 s; Kraken: nonces must increase).
 *
 * `sync` asks the venue's server time and measures the skew as the server's
 * time minus the midpoint of our request (half the round trip is assumed to
 * be each way); `now` is our clock corrected by the last skew measured. A skew
 * beyond the receive window is a typed `ClockSkewTooLarge`: with it every
 * signed request would be refused, and correcting silently by that much would
 * hide a broken host clock.
 */
import { type Clock, Effect } from "effect"
import { ClockSkewTooLarge } from "./LiveAdapter.js"

export interface VenueClock {
  /** Our clock plus the last skew measured: the timestamp to sign with (epoch ms). */
  readonly now: () => number
  /** Venue time minus ours (ms), last measured. */
  readonly skewMs: () => number
  /** Measures the skew from one server-time request; fails past the receive window (and keeps the old skew). */
  readonly sync: <E>(serverTimeMs: Effect.Effect<number, E>) => Effect.Effect<number, E | ClockSkewTooLarge>
}

export const makeVenueClock = (venue: string, recvWindowMs: number, clock: Clock.Clock): VenueClock => {
  let skew = 0
  return {
    now: () => Math.round(clock.unsafeCurrentTimeMillis() + skew),
    skewMs: () => skew,
    sync: <E>(serverTimeMs: Effect.Effect<number, E>) =>
      Effect.gen(function*() {
        const sent = clock.unsafeCurrentTimeMillis()
        const server = yield* serverTimeMs
        const received = clock.unsafeCurrentTimeMillis()
        const measured = Math.round(server - (sent + received) / 2)
        if (Math.abs(measured) > recvWindowMs) {
          return yield* new ClockSkewTooLarge({ venue, skewMs: measured, recvWindowMs })
        }
        skew = measured
        return measured
      })
  }
}
