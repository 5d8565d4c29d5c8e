/**
 * Signed REST requests to a venue: the one path every live adapter's
 * request takes, so that limits, timeouts, dry-run and redaction hold for all.
 *
 * - The adapter builds and signs the request (`RestRequest`); the transport
 *   draws its cost from the venue's `RateLimiter`, sends it with a timeout,
 *   feeds the venue's usage headers back to the limiter, and turns a 429/418
 *   (or a body the venue uses for "too many requests") into a cool-down and a
 *   `VenueRateLimited`.
 * - A request that changes state at the venue (`mutating`) that times out or
 *   loses its connection is an `OutcomeUnknown`: it may have been executed, so
 *   the engine queries it and never resends it.
 * - Dry-run: a mutating request is logged, signed as it would be sent (its
 *   credential headers redacted), and not sent: `RequestNotSent` "dry-run".
 *   Reads (queries, server time, instruments) still go out.
 * - Headers named in `secretHeaders` (API keys, passphrases) never reach a log
 *   or an error.
 */
import { Duration, Effect } from "effect"
import type { HttpClient } from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { isRateLimitBody, retryAfterMs } from "../../providers/internal/connection.js"
import { OutcomeUnknown, RequestNotSent, VenueRateLimited } from "./LiveAdapter.js"
import type { RateLimiter } from "./RateLimiter.js"

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE"

export interface RestRequest {
  /** What it does ("place", "cancel", "query", ...): in errors and logs. */
  readonly operation: string
  readonly method: HttpMethod
  /** The path ("/api/v3/order"). */
  readonly path: string
  /** The encoded query string, signature included, without the "?" ("" for none). */
  readonly query?: string | undefined
  /** The body as sent (JSON text or a form), if any. */
  readonly body?: string | undefined
  readonly contentType?: string | undefined
  readonly headers: Readonly<Record<string, string>>
  /** Its cost per limiter bucket (the documented weight). */
  readonly costs: Readonly<Record<string, number>>
  /** Changes state at the venue: not sent in dry-run; a timeout is an unknown outcome. */
  readonly mutating: boolean
}

export interface RestResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface RestTransportOptions {
  readonly venue: string
  /** "https://api.binance.com" (no trailing slash). */
  readonly baseUrl: string
  readonly http: HttpClient
  readonly limiter: RateLimiter
  readonly timeoutMs: number
  readonly dryRun: boolean
  /** Header names (lower case) whose values are credentials. */
  readonly secretHeaders: ReadonlyArray<string>
  /** Reads the venue's usage headers into the limiter (lower-case header names). */
  readonly observe?: ((headers: Readonly<Record<string, string>>, limiter: RateLimiter) => void) | undefined
  /** A body that means "too many requests" although the status is not 429 (default: the shared recogniser). */
  readonly isRateLimitBody?: ((status: number, body: string) => boolean) | undefined
}

export interface RestTransportStats {
  readonly requests: number
  readonly failures: number
  readonly rateLimited: number
  readonly dryRun: number
}

export interface RestTransport {
  readonly send: (request: RestRequest) => Effect.Effect<RestResponse, OutcomeUnknown | RequestNotSent | VenueRateLimited>
  /** The request as a log would show it (credential headers redacted). */
  readonly describe: (request: RestRequest) => Readonly<Record<string, unknown>>
  readonly stats: () => RestTransportStats
}

export const REDACTED = "<redacted>"

export const makeRestTransport = (options: RestTransportOptions): Effect.Effect<RestTransport> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const secret = new Set(options.secretHeaders.map((h) => h.toLowerCase()))
    const counters = { requests: 0, failures: 0, rateLimited: 0, dryRun: 0 }
    const rateLimitBody = options.isRateLimitBody ?? ((_status: number, body: string) => isRateLimitBody(body))

    const urlOf = (r: RestRequest) =>
      `${options.baseUrl}${r.path}${r.query === undefined || r.query === "" ? "" : `?${r.query}`}`

    const describe = (r: RestRequest) => ({
      venue: options.venue,
      operation: r.operation,
      method: r.method,
      url: urlOf(r),
      headers: Object.fromEntries(
        Object.entries(r.headers).map(([k, v]) => [k, secret.has(k.toLowerCase()) ? REDACTED : v])
      ),
      ...(r.body === undefined ? {} : { body: r.body })
    })

    const send = (r: RestRequest): Effect.Effect<RestResponse, OutcomeUnknown | RequestNotSent | VenueRateLimited> =>
      Effect.gen(function*() {
        if (r.mutating && options.dryRun) {
          counters.dryRun++
          yield* Effect.logInfo("dry-run: signed request logged, not sent").pipe(Effect.annotateLogs(describe(r)))
          return yield* new RequestNotSent({ venue: options.venue, operation: r.operation, reason: "dry-run" })
        }
        yield* options.limiter.acquire(r.costs)
        counters.requests++
        let request = HttpClientRequest.make(r.method)(urlOf(r)).pipe(HttpClientRequest.setHeaders(r.headers))
        if (r.body !== undefined) request = HttpClientRequest.bodyText(request, r.body, r.contentType ?? "application/json")
        const unknown = (reason: string) => {
          counters.failures++
          return r.mutating
            ? new OutcomeUnknown({ venue: options.venue, operation: r.operation, reason })
            : new OutcomeUnknown({ venue: options.venue, operation: r.operation, reason })
        }
        const response = yield* options.http.execute(request).pipe(
          Effect.flatMap((res) => Effect.map(res.text, (body) => ({ status: res.status, headers: res.headers, body }))),
          Effect.mapError((e) => unknown(e._tag === "RequestError" ? `transport: ${e.reason}` : `response: ${e.reason}`)),
          Effect.timeoutFail({
            duration: Duration.millis(options.timeoutMs),
            onTimeout: () => unknown(`no answer in ${options.timeoutMs} ms`)
          }),
          Effect.scoped
        )
        options.observe?.(response.headers, options.limiter)
        if (response.status === 429 || response.status === 418 || rateLimitBody(response.status, response.body)) {
          counters.rateLimited++
          const wait = options.limiter.rateLimited(
            response.status === 418 ? 418 : 429,
            retryAfterMs(response.headers["retry-after"], clock.unsafeCurrentTimeMillis())
          )
          return yield* new VenueRateLimited({ venue: options.venue, status: response.status, retryAfterMs: wait })
        }
        return response
      })

    return { send, describe, stats: () => ({ ...counters }) }
  })
