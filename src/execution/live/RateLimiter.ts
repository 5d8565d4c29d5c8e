/**
 * A venue's client-side rate limiter, following its documented limits.
 *
 * - Buckets: each documented limit is a bucket of `limit` units per
 *   `intervalMs` (Binance: REQUEST_WEIGHT 6,000 a minute, ORDERS 100 per
 *   10 s; OKX: 60 orders per 2 s ...). Windows are fixed and aligned on the
 *   clock, as the venues count them (a minute's weight resets at the minute).
 *   Each request states its cost per bucket (its documented weight).
 * - `acquire` waits (on the Effect Clock: `TestClock` in tests) until every
 *   bucket it draws from has room in the current window and any cool-down has
 *   passed, then reserves its cost at once, so concurrent callers never
 *   overdraw between them.
 * - Usage headers: when the venue says how much it has counted
 *   (`X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S`), `observeUsage` raises the
 *   bucket's use to it (the venue counts every client of the key or the IP,
 *   we only count ours).
 * - Back-off: a 429 (or a rate-limit error code) imposes a cool-down of the
 *   venue's Retry-After, or `defaultCoolDownMs`; a 418 (Binance: the IP is
 *   banned for repeating after a 429) the Retry-After, or `banCoolDownMs`.
 *   Nothing goes out before it has passed.
 * - `snapshot` is the budget per bucket, sampled into `/metrics`
 *   (`meltica_live_rate_budget_used` / `_limit`).
 */
import { type Clock, Duration, Effect } from "effect"

export interface LimitBucket {
  readonly name: string
  readonly limit: number
  readonly intervalMs: number
}

export interface RateLimiterOptions {
  readonly buckets: ReadonlyArray<LimitBucket>
  /** The cool-down after a 429 without a Retry-After. Default 10 s. */
  readonly defaultCoolDownMs?: number
  /** The cool-down after a 418 without a Retry-After. Default 2 min. */
  readonly banCoolDownMs?: number
  /** The longest cool-down honoured. Default 1 h. */
  readonly maxCoolDownMs?: number
}

export interface BucketUsage {
  readonly bucket: string
  readonly used: number
  readonly limit: number
}

export interface RateLimiter {
  /** Waits for room in every bucket named (cost per bucket) and for any cool-down, then reserves. */
  readonly acquire: (costs: Readonly<Record<string, number>>) => Effect.Effect<void>
  /** The venue's own count for a bucket in the current window. */
  readonly observeUsage: (bucket: string, used: number) => void
  /** A rate-limit answer (429, 418): the cool-down imposed, in ms. */
  readonly rateLimited: (status: number, retryAfterMs: number | undefined) => number
  readonly snapshot: () => ReadonlyArray<BucketUsage>
  readonly stats: () => { readonly delayed: number; readonly rateLimited: number; readonly banned: number }
}

export const makeRateLimiter = (options: RateLimiterOptions, clock: Clock.Clock): RateLimiter => {
  const buckets = options.buckets.map((b) => ({ ...b, windowStart: 0, used: 0 }))
  const byName = new Map(buckets.map((b) => [b.name, b]))
  let blockedUntil = 0
  let delayed = 0
  let limited = 0
  let banned = 0

  const roll = (b: (typeof buckets)[number], now: number) => {
    const start = Math.floor(now / b.intervalMs) * b.intervalMs
    if (start !== b.windowStart) {
      b.windowStart = start
      b.used = 0
    }
  }

  const acquire = (costs: Readonly<Record<string, number>>): Effect.Effect<void> => {
    let counted = false
    const attempt: Effect.Effect<void> = Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      let wait = Math.max(0, blockedUntil - now)
      for (const [name, cost] of Object.entries(costs)) {
        const b = byName.get(name)
        if (b === undefined || cost <= 0) continue
        roll(b, now)
        // a request costlier than the whole bucket goes out alone in a fresh window
        if (b.used + cost > b.limit && b.used > 0) wait = Math.max(wait, b.windowStart + b.intervalMs - now)
      }
      if (wait > 0) {
        if (!counted) {
          counted = true
          delayed++
        }
        return Effect.sleep(Duration.millis(wait)).pipe(Effect.zipRight(attempt))
      }
      for (const [name, cost] of Object.entries(costs)) {
        const b = byName.get(name)
        if (b !== undefined && cost > 0) b.used += cost
      }
      return Effect.void
    })
    return attempt
  }

  const observeUsage = (bucket: string, used: number): void => {
    const b = byName.get(bucket)
    if (b === undefined || !Number.isFinite(used) || used < 0) return
    roll(b, clock.unsafeCurrentTimeMillis())
    b.used = Math.max(b.used, used)
  }

  const rateLimited = (status: number, retryAfterMs: number | undefined): number => {
    const max = options.maxCoolDownMs ?? 3_600_000
    const fallback = status === 418 ? (options.banCoolDownMs ?? 120_000) : (options.defaultCoolDownMs ?? 10_000)
    const wait = Math.min(max, retryAfterMs ?? fallback)
    if (status === 418) banned++
    else limited++
    blockedUntil = Math.max(blockedUntil, clock.unsafeCurrentTimeMillis() + wait)
    return wait
  }

  const snapshot = (): ReadonlyArray<BucketUsage> => {
    const now = clock.unsafeCurrentTimeMillis()
    return buckets.map((b) => {
      roll(b, now)
      return { bucket: b.name, used: b.used, limit: b.limit }
    })
  }

  return { acquire, observeUsage, rateLimited, snapshot, stats: () => ({ delayed, rateLimited: limited, banned }) }
}
