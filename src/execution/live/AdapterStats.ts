/**
 * An adapter's `stats()`: its REST transport's, rate limiter's and private
 * stream's counters and its clock skew, read at the moment of the call (the
 * parts keep plain counters; `Metrics` samples this function).
 *
 * `extraRequests` counts requests that did not go through the REST transport
 * (Kraken places and cancels orders on its authenticated WebSocket).
 */
import type { VenueClock } from "./ClockSkew.js"
import type { LiveAdapterStats } from "./LiveAdapter.js"
import type { PrivateStream } from "./PrivateStream.js"
import type { RateLimiter } from "./RateLimiter.js"
import type { RestTransport } from "./Transport.js"

export interface AdapterParts {
  readonly transport: Pick<RestTransport, "stats">
  readonly limiter: Pick<RateLimiter, "stats" | "snapshot">
  readonly stream: Pick<PrivateStream, "stats">
  readonly venueClock: Pick<VenueClock, "skewMs">
  readonly extraRequests?: () => number
}

export const adapterStats = (parts: AdapterParts) => (): LiveAdapterStats => {
  const t = parts.transport.stats()
  const l = parts.limiter.stats()
  const s = parts.stream.stats()
  return {
    requests: t.requests + (parts.extraRequests?.() ?? 0),
    requestFailures: t.failures,
    rateLimited: t.rateLimited,
    requestsDelayed: l.delayed,
    dryRun: t.dryRun,
    streamConnects: s.connects,
    streamDisconnects: s.disconnects,
    streamMalformed: s.malformed,
    clockSkewMs: parts.venueClock.skewMs(),
    budget: parts.limiter.snapshot()
  }
}
