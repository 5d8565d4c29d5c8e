/**
 * Operator endpoints, on a loopback address only, read-only (GET) but one (below):
 *
 * | path | what |
 * |---|---|
 * | `/metrics` | every metric, Prometheus text format (OpenTelemetry's exporter, see `Prometheus.ts`) |
 * | `/health` | 200 while the process serves |
 * | `/ready` | 200 when every provider is connected with every book consistent; else 503 with the reasons |
 * | `/status.json` | the status snapshot: rates, totals, pools, consumers and lanes, latencies, providers, orders and fills per consumer |
 * | `/history.json` | the last ten minutes, one sample a second: throughput and the worst p99 dispatch-to-lambda latency, as columns (`internal/statusHistory.ts`) |
 * | `/assets/uPlot.iife.min.js`, `/assets/uPlot.min.css` | the chart library, served from the installed package (the page needs no network) |
 * | `/dead-letters` | the newest refused inputs (at most `?limit=`, 100 by default, 1,000 at most), truncated, credentials in URLs masked; counts per source and reason |
 * | `/` | a read-only status page that polls `/status.json` and `/history.json` every second and charts the history |
 *
 * One endpoint changes state, and only with a token: `POST /kill-switch`
 * (body `{ "engage": true|false, "target"?: "*" | <consumer id> }`, the whole
 * gateway when `target` is absent) engages or releases the execution venue's
 * kill switch (`execution/Risk.ts`: engaging cancels every open order in
 * scope and refuses new ones). It requires `Authorization: Bearer <token>`,
 * the token read once at start from the environment variable
 * `killSwitchTokenEnv` names (compared in constant time, never logged nor
 * echoed); with no token set it answers 503 and says which variable to set;
 * with a missing or wrong token, 401. A browser page of another site cannot
 * send that header without a CORS preflight, which this server never grants.
 *
 * Hardening, for a port that a browser on the same machine can reach:
 * - the Host header must name the bound address, a localhost form or one of
 *   `allowedHosts` (a page on another site that rebinds its DNS name to
 *   127.0.0.1 sends its own name: refused with 421);
 * - every answer carries `X-Content-Type-Options: nosniff`,
 *   `X-Frame-Options: DENY` with CSP `frame-ancestors 'none'`,
 *   `Referrer-Policy: no-referrer` and `Cache-Control: no-store`;
 * - a known path with another method than GET is answered 405 with `Allow`;
 * - a port already in use fails the start with one line naming the setting.
 *
 * The server is held by the layer's scope: closing it stops listening.
 */
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import { createRequire } from "node:module"
import {
  HttpMiddleware,
  HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { createHash, timingSafeEqual } from "node:crypto"
import { HttpIncomingMessage } from "@effect/platform"
import { Config, Effect, Either, Layer, MetricLabel, Option, Redacted, Schedule, Schema } from "effect"
import { redactUrls } from "./Config.js"
import { DeadLetter } from "./DeadLetter.js"
import { Risk } from "./execution/Risk.js"
import { type HistoryReading, HistoryRing } from "./internal/statusHistory.js"
import { httpKillSwitchApplied, httpKillSwitchRefusals } from "./Metrics.js"
import { Prometheus } from "./Prometheus.js"
import { Status } from "./Status.js"

export interface HttpOptions {
  readonly host: string
  /** 0 picks a free port; the bound address is logged. */
  readonly port: number
  /** Host names a request may name besides the bound address and localhost (a reverse proxy's name, say). */
  readonly allowedHosts?: ReadonlyArray<string>
  /** The environment variable that holds the kill switch's bearer token (default `MELTICA_KILL_SWITCH_TOKEN`). */
  readonly killSwitchTokenEnv?: string
}

/** The default of `http.killSwitchTokenEnv`. */
export const KILL_SWITCH_TOKEN_ENV = "MELTICA_KILL_SWITCH_TOKEN"
/** The largest `POST /kill-switch` body read. */
export const KILL_SWITCH_MAX_BODY = 4_096

/** The operator endpoints could not listen: the address, why, and the setting to change. */
export class HttpListenFailed extends Schema.TaggedError<HttpListenFailed>()("HttpListenFailed", {
  host: Schema.String,
  port: Schema.Number,
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return this.code === "EADDRINUSE"
      ? `cannot serve the operator endpoints: ${this.host}:${this.port} is already in use; ` +
        "set http.port (or MELTICA_HTTP_PORT) to a free port, 0 for any, or http.enabled: false"
      : `cannot serve the operator endpoints on ${this.host}:${this.port}: ${this.reason}; ` +
        "check http.host and http.port (MELTICA_HTTP_HOST, MELTICA_HTTP_PORT)"
  }
}

/** Refused inputs shown per request by default, and at most. */
export const DEAD_LETTERS_DEFAULT = 100
export const DEAD_LETTERS_MAX = 1_000
/** Characters of each refused input shown. */
export const DEAD_LETTER_RAW_CHARS = 512

const deadLetters = Effect.gen(function*() {
  const dl = yield* DeadLetter
  const request = yield* HttpServerRequest.HttpServerRequest
  const asked = Number(new URL(request.url, "http://x").searchParams.get("limit") ?? DEAD_LETTERS_DEFAULT)
  const limit = Number.isInteger(asked) && asked >= 0 ? Math.min(asked, DEAD_LETTERS_MAX) : DEAD_LETTERS_DEFAULT
  const all = dl.entries()
  const entries = all.slice(Math.max(0, all.length - limit)).reverse().map((e) => ({
    at: new Date(e.at).toISOString(),
    source: e.source,
    reason: e.reason,
    rawLength: e.raw.length,
    truncated: e.raw.length > DEAD_LETTER_RAW_CHARS,
    raw: redactUrls(e.raw.slice(0, DEAD_LETTER_RAW_CHARS))
  }))
  return HttpServerResponse.unsafeJson({ ...dl.stats(), shown: entries.length, counts: dl.counts(), entries })
})

// ---------------------------------------------------------------------------
// POST /kill-switch
// ---------------------------------------------------------------------------

/** What `POST /kill-switch` takes. */
export const KillSwitchBody = Schema.Struct({
  engage: Schema.Boolean,
  target: Schema.optional(
    Schema.String.pipe(
      Schema.filter((t) => (t.length > 0 && t.length <= 128) || "target must be \"*\" or a consumer id (1 to 128 characters)")
    )
  )
})
const decodeKillSwitchBody = Schema.decodeUnknownEither(Schema.parseJson(KillSwitchBody), { errors: "all" })

/** Equal tokens, compared in constant time whatever their lengths (their digests are compared). */
export const sameToken = (given: string, expected: string): boolean =>
  timingSafeEqual(createHash("sha256").update(given).digest(), createHash("sha256").update(expected).digest())

/** The bearer token of an `Authorization` header, if it has that form. */
export const bearerToken = (header: string | undefined): string | undefined => {
  const m = header === undefined ? null : /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header)
  return m === null ? undefined : m[1]
}

const plain = (body: string, status: number, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(body, { status, headers })

/** The endpoint's answers since start: switches applied, requests refused by reason (logged as they happen). */
interface KillSwitchRequests {
  applied: number
  /** 401: no bearer token, or a wrong one. */
  unauthorized: number
  /** 503: no token configured. */
  no_token: number
  /** 503: this process runs no execution venue. */
  no_venue: number
  /** 400: the body is not a kill switch request. */
  invalid_body: number
  /** 413: the body is larger than `KILL_SWITCH_MAX_BODY`. */
  body_too_large: number
}

/** The reasons a request is refused for: `meltica_http_kill_switch_refusals{reason}`, each exported from start. */
export const KILL_SWITCH_REFUSALS = ["unauthorized", "no_token", "no_venue", "invalid_body", "body_too_large"] as const

const killSwitchRoute = (
  token: Option.Option<Redacted.Redacted<string>>,
  tokenEnv: string,
  killSwitchRequests: KillSwitchRequests
) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (Option.isNone(token)) {
      killSwitchRequests.no_token++
      return plain(
        `the kill switch is not available over HTTP: no token is configured; set the environment variable ${tokenEnv} ` +
          "(named by http.killSwitchTokenEnv) for the gateway, and send it as Authorization: Bearer <token>\n",
        503
      )
    }
    const given = bearerToken(request.headers["authorization"])
    if (given === undefined || !sameToken(given, Redacted.value(token.value))) {
      killSwitchRequests.unauthorized++
      yield* Effect.logWarning("kill switch request refused: missing or wrong bearer token").pipe(
        Effect.annotateLogs({
          remote: Option.getOrElse(request.remoteAddress, () => "unknown"),
          token_given: given !== undefined,
          refused: killSwitchRequests.unauthorized
        })
      )
      return plain("a valid bearer token is required (Authorization: Bearer <token>)\n", 401, {
        "www-authenticate": "Bearer realm=\"meltica\""
      })
    }
    const risk = yield* Effect.serviceOption(Risk)
    if (Option.isNone(risk)) {
      killSwitchRequests.no_venue++
      return plain("this process has no execution venue: send the kill switch to the process that runs it (the feed)\n", 503)
    }
    // a body announced larger than the bound is refused unread (one sent chunked is cut off at the bound)
    if (Number(request.headers["content-length"] ?? 0) > KILL_SWITCH_MAX_BODY) {
      killSwitchRequests.body_too_large++
      return plain(`the body is larger than ${KILL_SWITCH_MAX_BODY} bytes\n`, 413)
    }
    const text = yield* request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(KILL_SWITCH_MAX_BODY)),
      Effect.either
    )
    const body = Either.isLeft(text) ? undefined : decodeKillSwitchBody(text.right)
    if (body === undefined || Either.isLeft(body)) {
      killSwitchRequests.invalid_body++
      return plain(
        `expected a JSON body { "engage": true|false, "target"?: "*" | <consumer id> } of at most ${KILL_SWITCH_MAX_BODY} bytes\n`,
        400
      )
    }
    const outcome = yield* risk.value.killSwitch(body.right.engage, body.right.target ?? "*", "http")
    // Risk logs the change (by: http)
    killSwitchRequests.applied++
    return HttpServerResponse.unsafeJson(outcome)
  })

/** One history sample a second, ten minutes of them. */
export const HISTORY_INTERVAL_MS = 1_000
export const HISTORY_SAMPLES = 600

/**
 * The status page's history, sampled from the gateway's status once every
 * `HISTORY_INTERVAL_MS` by one fiber of the layer's scope (a fresh snapshot:
 * the chart's second is the second that passed, whatever `statusIntervalMs`).
 */
export const makeStatusHistory = (read: Effect.Effect<HistoryReading>, capacity = HISTORY_SAMPLES) =>
  Effect.gen(function*() {
    const ring = new HistoryRing(capacity, HISTORY_INTERVAL_MS)
    const record = Effect.flatMap(read, (r) => Effect.sync(() => ring.record(r)))
    yield* Effect.forkScoped(Effect.repeat(record, Schedule.spaced(HISTORY_INTERVAL_MS)))
    return { columns: () => ring.columns(), samples: () => ring.samples() } as const
  })

export class StatusHistory extends Effect.Service<StatusHistory>()("meltica/StatusHistory", {
  scoped: Effect.flatMap(Status, (status) =>
    makeStatusHistory(Effect.map(status.snapshot, (s) => ({
      at: s.at,
      eventsIn: s.totals.eventsIn,
      dispatched: s.totals.dispatched,
      deliveries: s.totals.deliveries,
      p99DispatchToLambdaUs: s.p99DispatchToLambdaUs
    }))))
}) {}

/** A file of the chart library, read once from the installed package, served under `/assets/`. */
const asset = (file: string, contentType: string) => {
  const body = readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${file}`), "utf8")
  return { path: `/assets/${file}` as const, handler: Effect.sync(() => HttpServerResponse.text(body, { contentType })) }
}
const chartScript = asset("uPlot.iife.min.js", "text/javascript; charset=utf-8")
const chartStyle = asset("uPlot.min.css", "text/css; charset=utf-8")

const router = (killSwitch: ReturnType<typeof killSwitchRoute>) => HttpRouter.empty.pipe(
  HttpRouter.post("/kill-switch", killSwitch),
  HttpRouter.get(
    "/metrics",
    Effect.flatMap(Prometheus, (m) => m.scrape).pipe(
      Effect.map((body) => HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    )
  ),
  HttpRouter.get("/health", Effect.flatMap(Status, (m) => m.latest).pipe(
    Effect.map((s) => HttpServerResponse.unsafeJson({ status: "ok", uptimeMs: s.uptimeMs }))
  )),
  HttpRouter.get(
    "/ready",
    Effect.flatMap(Status, (m) => m.snapshot).pipe(
      Effect.map(({ readiness }) => HttpServerResponse.unsafeJson(readiness, { status: readiness.ready ? 200 : 503 }))
    )
  ),
  HttpRouter.get(
    "/status.json",
    Effect.flatMap(Status, (m) => m.latest).pipe(
      Effect.map((s) => HttpServerResponse.unsafeJson(s, { headers: { "cache-control": "no-store" } }))
    )
  ),
  HttpRouter.get("/history.json", Effect.map(StatusHistory, (h) => HttpServerResponse.unsafeJson(h.columns()))),
  HttpRouter.get("/dead-letters", deadLetters),
  HttpRouter.get("/", Effect.sync(() => HttpServerResponse.html(statusPage))),
  HttpRouter.get(chartScript.path, chartScript.handler),
  HttpRouter.get(chartStyle.path, chartStyle.handler)
)

/** The method each known path answers. */
const paths: ReadonlyMap<string, "GET" | "POST"> = new Map([
  ...["/metrics", "/health", "/ready", "/status.json", "/history.json", "/dead-letters", "/", chartScript.path, chartStyle.path]
    .map((p) => [p, "GET"] as const),
  ["/kill-switch", "POST"] as const
])

/** 405 with `Allow` for a known path asked with another method; 404 otherwise. */
const app = (killSwitch: ReturnType<typeof killSwitchRoute>) =>
  router(killSwitch).pipe(
    Effect.catchTag("RouteNotFound", (e) => {
      const path = new URL(e.request.url, "http://x").pathname
      const method = paths.get(path)
      return Effect.succeed(
        method !== undefined
          ? HttpServerResponse.text(`${e.request.method} is not allowed on ${path}: ${method} only\n`, {
            status: 405,
            headers: { allow: method }
          })
          : HttpServerResponse.text("not found\n", { status: 404 })
      )
    })
  )

const securityHeaders = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}

/** Host names every server answers to, whatever its bound address. */
const localNames = ["localhost", "127.0.0.1", "[::1]", "::1"]

/**
 * The Host header's name and port, when it has the form `name[:port]` or
 * `[v6][:port]`.
 */
export const parseHost = (host: string): { readonly name: string; readonly port: number | undefined } | undefined => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+)(?::(\d{1,5}))?$/.exec(host)
  if (m === null) return undefined
  return { name: m[1]!.toLowerCase(), port: m[2] === undefined ? undefined : Number(m[2]) }
}

/**
 * Refuses a request whose Host header names neither this server (its bound
 * address or a localhost form, on its port) nor one of `allowedHosts`, and
 * puts the security headers on every answer.
 */
const harden = (allowedHosts: ReadonlyArray<string>) =>
  HttpMiddleware.make((inner) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const server = yield* HttpServer.HttpServer
      const address = server.address
      const host = parseHost(request.headers["host"] ?? "")
      const bound = address._tag === "TcpAddress" ? address : undefined
      const boundName = bound === undefined ? undefined : bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname
      const allowed = host !== undefined && (
        allowedHosts.some((h) => h.toLowerCase() === host.name) ||
        ((host.name === boundName || localNames.includes(host.name)) &&
          (host.port ?? 80) === (bound?.port ?? host.port ?? 80))
      )
      const response = allowed ? yield* inner : HttpServerResponse.text(
        "misdirected request: the Host header does not name this server " +
          "(add the name to http.allowedHosts if a proxy sends it)\n",
        { status: 421 }
      )
      return HttpServerResponse.setHeaders(response, securityHeaders)
    })
  )

/** Logs the bound address (the e2e test and operators read it there). */
const announce = HttpServer.addressFormattedWith((url) =>
  Effect.logInfo("operator endpoints listening").pipe(Effect.annotateLogs({ http_url: url }))
)

/** The listen failure as one line an operator can act on. */
const listenFailed = (options: HttpOptions) => (e: HttpServerError.ServeError): HttpListenFailed => {
  const cause = e.cause as { readonly code?: unknown; readonly message?: unknown } | undefined
  return new HttpListenFailed({
    host: options.host,
    port: options.port,
    code: typeof cause?.code === "string" ? cause.code : "unknown",
    reason: typeof cause?.message === "string" ? cause.message : String(e.cause)
  })
}

/** The endpoints on a Node HTTP server bound to `options` (the server, for its bound address). */
export const layer = (options: HttpOptions): Layer.Layer<HttpServer.HttpServer, HttpListenFailed, Prometheus | Status | DeadLetter> =>
  // wrapped around the app, not passed as `serve`'s middleware: the server
  // writes the app's answer before a middleware sees it
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const tokenEnv = options.killSwitchTokenEnv ?? KILL_SWITCH_TOKEN_ENV
      // read once at start; an empty variable is no token
      const token = yield* Config.option(Config.redacted(tokenEnv)).pipe(
        Effect.map(Option.filter((t) => Redacted.value(t).length > 0)),
        Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
      )
      const requests: KillSwitchRequests = { applied: 0, unauthorized: 0, no_token: 0, no_venue: 0, invalid_body: 0, body_too_large: 0 }
      const status = yield* Status
      status.contribute((sink) => {
        for (const reason of KILL_SWITCH_REFUSALS) {
          sink.count(httpKillSwitchRefusals, requests[reason], [MetricLabel.make("reason", reason)])
        }
        sink.count(httpKillSwitchApplied, requests.applied)
      })
      return Layer.mergeAll(
        HttpServer.serve(harden(options.allowedHosts ?? [])(app(killSwitchRoute(token, tokenEnv, requests)))),
        Layer.effectDiscard(announce)
      )
    })
  ).pipe(
    Layer.provide(StatusHistory.Default),
    Layer.provideMerge(
      NodeHttpServer.layer(createServer, { host: options.host, port: options.port }).pipe(Layer.mapError(listenFailed(options)))
    )
  )

const statusPage = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Meltica gateway</title>
<link rel="stylesheet" href="/assets/uPlot.min.css">
<script src="/assets/uPlot.iife.min.js"></script>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
  h3 { font-size: .9rem; margin: .8rem 0 .3rem; }
  table { border-collapse: collapse; }
  th, td { padding: .2rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .figures { display: flex; gap: 1.5rem; flex-wrap: wrap; }
  .figure b { display: block; font-size: 1.3rem; font-variant-numeric: tabular-nums; }
  .ok { color: #16794c; } .bad { color: #b3261e; }
  #error { color: #b3261e; }
  .charts { display: flex; gap: 1.5rem; flex-wrap: wrap; }
  .chart { min-height: 260px; }
</style>
</head>
<body>
<h1>Meltica gateway</h1>
<div>updated <span id="updated">never</span>, uptime <span id="uptime">0</span> s, routing version <span id="routing-version">-</span>,
 <span id="ready">-</span> <span id="error"></span></div>
<h2>Flow</h2>
<div class="figures">
  <div class="figure">events in /s<b id="events-in-rate">-</b></div>
  <div class="figure">events out /s<b id="events-out-rate">-</b></div>
  <div class="figure">deliveries /s<b id="deliveries-rate">-</b></div>
  <div class="figure">rate window<b id="rate-window">-</b></div>
  <div class="figure">p99 dispatch&rarr;lambda (&micro;s)<b id="p99-latency">-</b></div>
  <div class="figure">fan-out p95 / max &micro;s (most subscribers)<b id="fanout">-</b></div>
  <div class="figure">events in<b id="events-in-total">0</b></div>
  <div class="figure">deliveries<b id="deliveries-total">0</b></div>
  <div class="figure">merged<b id="merged-total">0</b></div>
  <div class="figure">merged with venues missing<b id="merged-partial-total">0</b></div>
  <div class="figure">dropped<b id="dropped-total">0</b></div>
  <div class="figure">coalesced<b id="coalesced-total">0</b></div>
  <div class="figure">skipped<b id="skipped-total">0</b></div>
  <div class="figure">orders / fills / reports<b id="orders-total">0</b></div>
</div>
<h2>The last minutes (one sample a second, ten minutes kept)</h2>
<div class="charts">
  <div class="chart" id="chart-throughput" data-points="0"></div>
  <div class="chart" id="chart-latency" data-points="0"></div>
</div>
<h2>Strategies: orders and fills on the paper venue</h2>
<table><thead><tr><th>consumer</th><th>orders</th><th>fills</th><th>resting</th><th>rejected</th></tr></thead>
<tbody id="strategies"></tbody></table>
<h2>Portfolio</h2>
<div class="figures">
  <div class="figure">kill switch<b id="kill-switch">-</b></div>
  <div class="figure">refused by risk checks<b id="risk-refused">-</b></div>
</div>
<h3>P&amp;L per strategy (quote asset; net = realized + unrealized - fees)</h3>
<table><thead><tr><th>strategy</th><th>realized</th><th>unrealized</th><th>fees</th><th>net</th><th>open orders</th><th>positions</th></tr></thead>
<tbody id="strategy-pnl"></tbody></table>
<h3>Positions of the accounts</h3>
<table><thead><tr><th>venue symbol</th><th>quantity</th><th>avg entry</th><th>mark</th><th>realized</th><th>unrealized</th><th>fees</th></tr></thead>
<tbody id="positions"></tbody></table>
<h3>Balances</h3>
<table><thead><tr><th>venue asset</th><th>total</th><th>available</th><th>reserved</th></tr></thead>
<tbody id="balances"></tbody></table>
<h2>Pools</h2>
<table><thead><tr><th>pool</th><th>outstanding</th><th>free</th><th>capacity</th><th>utilization</th><th>heap allocations</th></tr></thead>
<tbody id="pools"></tbody></table>
<h2>Consumers and lanes</h2>
<table><thead><tr><th>consumer</th><th>processed</th><th>failures</th><th>skipped stale</th><th>market lane</th><th>critical lane</th>
<th>coalesced</th><th>p50 &micro;s</th><th>p99 &micro;s</th><th>max &micro;s</th><th>processing p99 &micro;s</th><th>min version</th></tr></thead>
<tbody id="consumers"></tbody></table>
<h2>Providers</h2>
<table><thead><tr><th>provider</th><th>connected</th><th>events</th><th>malformed</th><th>gaps</th><th>resyncs</th><th>books</th></tr></thead>
<tbody id="providers"></tbody></table>
<script>
const fmt = (n, d = 0) => n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const text = (id, v) => { document.getElementById(id).textContent = v; };
const cell = (v) => { const td = document.createElement("td"); td.textContent = v; return td; };
const money = (x) => x === null || x === undefined ? "-" : Number(x).toLocaleString("en-US", { maximumFractionDigits: 8 });
const rows = (id, items, f) => {
  const body = document.getElementById(id);
  body.replaceChildren(...items.map((it) => { const tr = document.createElement("tr"); tr.dataset.key = f(it)[0]; tr.append(...f(it).map(cell)); return tr; }));
};
const palette = ["#1f6feb", "#16794c", "#b35900", "#b3261e"];
const chart = (id, title, unit, names) => new uPlot({
  title, width: 620, height: 220,
  scales: { x: { time: true } },
  series: [{}, ...names.map((label, i) => ({ label, stroke: palette[i], width: 1.5, spanGaps: false,
    value: (u, v) => v === null || v === undefined ? "-" : fmt(v, 1) }))],
  axes: [{}, { label: unit, size: 70 }]
}, [[], ...names.map(() => [])], document.getElementById(id));
const charts = typeof uPlot === "function" ? {
  throughput: chart("chart-throughput", "Throughput", "per second", ["events in /s", "events out /s", "deliveries /s"]),
  latency: chart("chart-latency", "Dispatch to lambda, worst consumer p99", "µs", ["p99 µs"])
} : undefined;
const lastOf = (xs) => { for (let i = xs.length - 1; i >= 0; i--) if (xs[i] !== null) return xs[i]; return null; };
async function drawHistory() {
  if (charts === undefined) { text("error", "chart library not loaded"); return; }
  const h = await (await fetch("/history.json", { cache: "no-store" })).json();
  charts.throughput.setData([h.at, h.eventsInPerSec, h.eventsOutPerSec, h.deliveriesPerSec]);
  charts.latency.setData([h.at, h.p99DispatchToLambdaUs]);
  for (const [id, series] of [["chart-throughput", h.eventsInPerSec], ["chart-latency", h.p99DispatchToLambdaUs]]) {
    const el = document.getElementById(id);
    el.dataset.points = String(h.at.length);
    el.dataset.last = String(lastOf(series));
  }
}
async function tick() {
  try {
    const r = await fetch("/status.json", { cache: "no-store" });
    const s = await r.json();
    text("updated", new Date(s.at).toISOString().slice(11, 19));
    text("uptime", fmt(s.uptimeMs / 1000));
    text("routing-version", s.routingVersion);
    const ready = document.getElementById("ready");
    ready.textContent = s.readiness.ready ? "ready" : "not ready: " + s.readiness.reasons.join("; ");
    ready.className = s.readiness.ready ? "ok" : "bad";
    text("events-in-rate", fmt(s.rates && s.rates.eventsIn, 1));
    text("events-out-rate", fmt(s.rates && s.rates.eventsOut, 1));
    text("deliveries-rate", fmt(s.rates && s.rates.deliveries, 1));
    text("rate-window", s.rates ? fmt(s.rates.windowMs / 1000, 1) + " s" : "-");
    text("p99-latency", fmt(s.p99DispatchToLambdaUs, 1));
    text("fanout", fmt(s.fanout.p95Us, 1) + " / " + fmt(s.fanout.maxUs, 1) + " (" + s.fanout.maxParallelism + ")");
    text("events-in-total", s.totals.eventsIn);
    text("deliveries-total", s.totals.deliveries);
    text("merged-total", s.totals.merged);
    text("merged-partial-total", s.totals.mergedPartial);
    text("dropped-total", s.totals.dropped);
    text("coalesced-total", s.totals.coalesced);
    text("skipped-total", s.totals.skipped);
    text("orders-total", s.totals.orders + " / " + s.totals.fills + " / " + s.totals.execReports);
    rows("pools", s.pools, (p) => [p.pool, p.outstanding, p.free, p.capacity, fmt(p.utilization * 100, 2) + "%", p.heapAllocated]);
    rows("consumers", s.consumers, (c) => [c.id, c.processed, c.failures, c.skippedStale, c.marketDepth, c.criticalDepth,
      c.coalesced, fmt(c.p50Us, 1), fmt(c.p99Us, 1), fmt(c.maxUs, 1), fmt(c.processingP99Us, 1), c.minVersion]);
    rows("strategies", s.ordersByConsumer || [], (c) => [c.consumerId, c.orders, c.fills, c.resting, c.rejected]);
    const pf = s.portfolio;
    if (pf) {
      const ks = pf.killSwitch;
      text("kill-switch", !ks ? "-" : ks.global ? "engaged: whole gateway" + (ks.consumers.length ? ", " + ks.consumers.join(", ") : "")
        : ks.consumers.length ? "engaged: " + ks.consumers.join(", ") : "off");
      document.getElementById("kill-switch").className = ks && (ks.global || ks.consumers.length) ? "bad" : "ok";
      text("risk-refused", pf.riskRefused ? Object.entries(pf.riskRefused).map(([k, n]) => k + " " + n).join(", ") : "-");
      rows("strategy-pnl", pf.byConsumer, (c) => [c.consumerId, money(c.realizedPnl), money(c.unrealizedPnl), money(c.fees),
        money(Number(c.realizedPnl) + Number(c.unrealizedPnl) - Number(c.fees)), c.openOrders,
        c.positions.map((p) => p.symbol + "@" + p.venue + " " + p.quantity).join(", ")]);
      rows("positions", pf.positions, (p) => [p.venue + " " + p.symbol, money(p.quantity), money(p.avgEntry), money(p.mark),
        money(p.realizedPnl), money(p.unrealizedPnl), money(p.fees)]);
      rows("balances", pf.balances, (b) => [b.venue + " " + b.asset, money(b.total), money(b.available), money(b.reserved)]);
    }
    await drawHistory();
    rows("providers", s.providers, (p) => [p.name, p.connected ? "yes" : "no", p.events, p.malformed, p.gaps, p.resyncs,
      p.books.map((b) => b.symbol + " " + b.state).join(", ")]);
    text("error", "");
  } catch (e) {
    text("error", "status unavailable: " + e);
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
`
