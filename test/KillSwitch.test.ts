/**
 * The kill switch from each place it can be reached: the `KillSwitch` control
 * command (one's own scope, the whole gateway in memory, operator-only beyond
 * one's own over NATS), `POST /kill-switch` with its bearer token, and
 * `meltica kill-switch` against a running gateway.
 */
import { execFile } from "node:child_process"
import { request } from "node:http"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Redacted, Schedule } from "effect"
import { layerMemory } from "../layers/Memory.js"
import { layerNatsFeed, layerNatsStrategy } from "../layers/Nats.js"
import { layerTest, testConfig } from "../layers/Test.js"
import { KillSwitch, QueryOrder, SubmitOrder } from "../schema/Control.js"
import { BookSnapshot, decimal, Ticker } from "../schema/Event.js"
import { encodeRejection, KillSwitchEngaged, type Rejection } from "../schema/Rejection.js"
import { Consumers } from "../src/Consumer.js"
import { ControlBus } from "../src/ControlBus.js"
import { DeadLetter } from "../src/DeadLetter.js"
import { ExecutionVenue } from "../src/ExecutionVenue.js"
import { Risk } from "../src/execution/Risk.js"
import * as Http from "../src/Http.js"
import { describeKillSwitch, KillSwitchRequestFailed, requestKillSwitch } from "../src/main.js"
import { CommandConsumer } from "../src/nats/Commands.js"
import { CommandRefused } from "../src/nats/Errors.js"
import { NatsConsumers } from "../src/nats/NatsConsumers.js"
import { NatsConnection } from "../src/nats/Connection.js"
import { commandSubject, operatorSubject } from "../src/nats/Subjects.js"
import { Orchestrator } from "../src/Orchestrator.js"
import { Pool } from "../src/Pool.js"
import * as Strategy from "../src/strategy/index.js"
import { run } from "../src/strategy/Strategy.js"
import { eventually } from "./support/events.js"
import { natsServer } from "./nats/support/server.js"
import { TS_NODE } from "./support/tsNode.js"

const SYM = "BTC-USDT"

/** The same rejection: its class, and its wire form. */
const same = (got: Rejection | undefined, expected: Rejection) => {
  assert.isDefined(got, expected._tag)
  assert.strictEqual(got!.constructor, expected.constructor, expected._tag)
  assert.deepStrictEqual(encodeRejection(got!), encodeRejection(expected))
}

interface Result {
  readonly commandId: string
  readonly outcome: string
  readonly detail?: unknown
  readonly rejection?: Rejection | undefined
}

/** A consumer that keeps its control results. */
const collector = (id: string) =>
  Effect.gen(function*() {
    const consumers = yield* Consumers
    const got: Array<Result> = []
    yield* consumers.start({
      id,
      handle: (e) =>
        Effect.sync(() => {
          if (e._pool !== "Event" || e.payload?._tag !== "control_result") return
          const p = e.payload
          got.push({ commandId: p.commandId, outcome: p.outcome, detail: p.detail, rejection: p.rejection })
        })
    })
    return got
  })

/** A consistent sim-a book into the Orchestrator (the paper venue's market view). */
const seedBook = Effect.gen(function*() {
  const pool = yield* Pool
  const orchestrator = yield* Orchestrator
  const e = pool.acquireEvent()
  e.provider = "sim-a"
  e.symbol = SYM
  e.kind = "book_snapshot"
  e.traceId = "book-1"
  e.payload = BookSnapshot.make({
    bids: [[decimal("99"), decimal("10")]],
    asks: [[decimal("101"), decimal("10")]],
    state: "consistent"
  })
  yield* orchestrator.ingest(e)
})

let next = 0
const restingBuy = (consumerId: string, clientOrderId: string) =>
  SubmitOrder.make({
    commandId: `c-${++next}`,
    consumerId,
    clientOrderId,
    symbol: SYM,
    side: "buy",
    orderType: "limit",
    quantity: decimal("0.1"),
    price: decimal("90"),
    venue: "sim-a"
  })

const statusOf = (consumerId: string, clientOrderId: string) =>
  Effect.flatMap(ExecutionVenue, (v) =>
    v.query(QueryOrder.make({ commandId: `q-${++next}`, consumerId, clientOrderId })).pipe(Effect.map((o) => o.status)))

describe("kill switch: the control command, in memory", () => {
  it.scoped("own scope by default; any local consumer may stop the whole gateway; each release frees its own scope", () =>
    Effect.gen(function*() {
      const control = yield* ControlBus
      const alpha = yield* collector("alpha")
      const beta = yield* collector("beta")
      yield* seedBook
      yield* control.submit(restingBuy("alpha", "a-1"))
      yield* control.submit(restingBuy("beta", "b-1"))
      yield* eventually(() => alpha.length === 1 && beta.length === 1, "both orders taken")

      yield* control.submit(KillSwitch.make({ commandId: "ks-1", consumerId: "alpha", engage: true }))
      yield* eventually(() => alpha.length === 2, "alpha's kill switch result")
      assert.deepStrictEqual(alpha[1], {
        commandId: "ks-1",
        outcome: "ok",
        detail: { engaged: true, target: "alpha", canceled: 1, state: { global: false, consumers: ["alpha"] } },
        rejection: undefined
      })
      assert.strictEqual(yield* statusOf("alpha", "a-1"), "canceled")
      assert.strictEqual(yield* statusOf("beta", "b-1"), "new")
      yield* control.submit(restingBuy("alpha", "a-2"))
      yield* eventually(() => alpha.length === 3, "alpha's refused order")
      same(alpha[2]!.rejection, new KillSwitchEngaged({ clientOrderId: "a-2", consumerId: "alpha", scope: "alpha" }))

      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "KillSwitch", commandId: "ks-2", consumerId: "beta", engage: true, target: "*" }
      }))
      yield* eventually(() => beta.length === 2, "beta's gateway-wide kill switch")
      assert.strictEqual((beta[1]!.detail as { canceled: number }).canceled, 1)
      assert.strictEqual(yield* statusOf("beta", "b-1"), "canceled")
      yield* control.submit(restingBuy("beta", "b-2"))
      yield* eventually(() => beta.length === 3, "beta's refused order")
      assert.strictEqual(beta[2]!.rejection?._tag, "KillSwitchEngaged")

      yield* control.submitJson(JSON.stringify({
        schemaVersion: 1,
        command: { _tag: "KillSwitch", commandId: "ks-3", consumerId: "beta", engage: false, target: "*" }
      }))
      yield* control.submit(restingBuy("beta", "b-3"))
      yield* control.submit(restingBuy("alpha", "a-3"))
      yield* eventually(() => beta.length === 5 && alpha.length === 4, "the orders after the release")
      assert.strictEqual(beta[4]!.outcome, "ok", "the gateway's switch is released")
      assert.strictEqual(alpha[3]!.rejection?._tag, "KillSwitchEngaged", "alpha's own switch stays engaged")
      assert.deepStrictEqual((yield* Risk).stats().refused.kill_switch, 3)
    }).pipe(Effect.provide(layerMemory({ symbols: [SYM], providers: ["sim-a", "sim-b"] }))))
})

describe("kill switch: the strategy SDK", () => {
  it.scoped("ctx.killSwitch stops the strategy's own orders and refuses new ones with the typed rejection, until released", () =>
    Effect.gen(function*() {
      yield* seedBook
      const outcomes: Array<string> = []
      const self = Strategy.define({
        id: "self-stopper",
        start: (ctx) =>
          Effect.gen(function*() {
            const order = (clientOrderId: string) =>
              ctx.submit({ clientOrderId, symbol: SYM, side: "buy", type: "limit", quantity: "0.1", price: "90", venue: "sim-a" })
            yield* order("s-1")
            const on = yield* ctx.killSwitch(true)
            outcomes.push(`engaged ${on.target} canceled ${on.canceled}`)
            yield* order("s-2").pipe(
              Effect.catchTag("KillSwitchEngaged", (e) => Effect.sync(() => outcomes.push(`refused ${e.clientOrderId} scope ${e.scope}`)))
            )
            const off = yield* ctx.killSwitch(false)
            outcomes.push(`released ${JSON.stringify(off.state)}`)
            outcomes.push(`s-3 ${(yield* order("s-3")).status}`)
          })
      })
      yield* run(self)
      assert.deepStrictEqual(outcomes, [
        "engaged self-stopper canceled 1",
        "refused s-2 scope self-stopper",
        "released {\"global\":false,\"consumers\":[]}",
        "s-3 new"
      ])
    }).pipe(Effect.provide(layerMemory({ symbols: [SYM], providers: ["sim-a", "sim-b"] }))))
})

describe("kill switch: a strategy that may engage its own scope only (a NATS strategy process)", () => {
  it.scoped("ctx.killSwitch beyond its own scope is refused at once with InvalidCommand; its own scope goes through", () =>
    Effect.gen(function*() {
      yield* seedBook
      const outcomes: Array<string> = []
      const own = Strategy.define({
        id: "own-only",
        start: (ctx) =>
          Effect.gen(function*() {
            for (const target of ["*", "someone-else"]) {
              const refused = yield* Effect.flip(ctx.killSwitch(true, target))
              outcomes.push(`${target}: ${refused._tag}${refused._tag === "InvalidCommand" ? ` ${refused.command} ${refused.consumerId}` : ""}`)
            }
            outcomes.push(`release *: ${(yield* Effect.flip(ctx.killSwitch(false, "*")))._tag}`)
            outcomes.push(`own: ${JSON.stringify((yield* ctx.killSwitch(true, "own-only")).state)}`)
            outcomes.push(`own released: ${JSON.stringify((yield* ctx.killSwitch(false)).state)}`)
          })
      })
      yield* run(own, { ownKillSwitchOnly: true })
      assert.deepStrictEqual(outcomes, [
        "*: InvalidCommand KillSwitch own-only",
        "someone-else: InvalidCommand KillSwitch own-only",
        "release *: InvalidCommand",
        "own: {\"global\":false,\"consumers\":[\"own-only\"]}",
        "own released: {\"global\":false,\"consumers\":[]}"
      ])
      const risk = yield* Risk
      assert.deepStrictEqual(risk.stats().engagements, 1, "only its own scope was engaged")
    }).pipe(Effect.provide(layerMemory({ symbols: [SYM], providers: ["sim-a", "sim-b"] }))))
})

// ---------------------------------------------------------------------------
// Over NATS
// ---------------------------------------------------------------------------

const ALICE = "alice"
const waitFor = (check: () => boolean, what: string) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail(new Error(`not within 30 s: ${what}`)))).pipe(
    Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo("30 seconds")))
  )

describe("kill switch over NATS", { sequential: true }, () => {
  it.scopedLive("a strategy's own scope is taken; beyond it, from a strategy subject, refused as unauthorized; from the operator, taken", () =>
    Effect.gen(function*() {
      const server = yield* natsServer
      const nats = (name: string) => ({ servers: [server.url], ackWaitMs: 1_000, name })
      const feed = yield* Layer.build(layerNatsFeed({ symbols: [SYM], providers: ["sim-a"], nats: nats("feed") }))
      const strategy = yield* Layer.build(layerNatsStrategy({ nats: nats(ALICE) }))
      const results: Array<Result> = []
      yield* Context.get(strategy, NatsConsumers).start({
        id: ALICE,
        subscriptions: [],
        handle: (e) =>
          Effect.sync(() => {
            if (e._pool !== "Event" || e.payload?._tag !== "control_result") return
            results.push({ commandId: e.payload.commandId, outcome: e.payload.outcome, detail: e.payload.detail })
          })
      })
      const pool = Context.get(feed, Pool)
      const e = pool.acquireEvent()
      e.provider = "sim-a"
      e.symbol = SYM
      e.kind = "ticker"
      e.traceId = "tick-1"
      e.payload = Ticker.make({ bidPrice: decimal("99"), bidQty: decimal("5"), askPrice: decimal("100"), askQty: decimal("5"), exchangeTs: 1 })
      yield* Context.get(feed, Orchestrator).ingest(e)
      const risk = Context.get(feed, Risk)
      const commands = Context.get(feed, CommandConsumer)
      const js = Context.get(feed, NatsConnection).js
      const publish = (subject: string, command: Record<string, unknown>) =>
        Effect.promise(() =>
          js.publish(subject, JSON.stringify({ schemaVersion: 1, command: { consumerId: ALICE, ...command } }), {
            msgID: String(command.commandId)
          })
        )

      // her own scope, sent through her process's Control Bus
      yield* Context.get(strategy, ControlBus).submit(KillSwitch.make({ commandId: "k1", consumerId: ALICE, engage: true }))
      yield* waitFor(() => results.length === 1, "her own kill switch answered")
      assert.deepStrictEqual(risk.killSwitchState(), { global: false, consumers: [ALICE] })

      // the whole gateway, and another consumer's scope, from her strategy subject: refused, never answered
      yield* publish(commandSubject(ALICE), { _tag: "KillSwitch", commandId: "k2", engage: true, target: "*" })
      yield* publish(commandSubject(ALICE), { _tag: "KillSwitch", commandId: "k3", engage: true, target: "bob" })
      yield* waitFor(() => commands.stats().unauthorized === 2, "both refused")
      assert.deepStrictEqual(risk.killSwitchState(), { global: false, consumers: [ALICE] }, "nothing engaged by them")
      assert.includeMembers(
        Context.get(feed, DeadLetter).entries().map((l) => l.reason),
        [new CommandRefused({ refusal: "unauthorized", subject: commandSubject(ALICE), command: "KillSwitch", commandId: "k2", consumerId: ALICE }).message]
      )
      // the same from an operator subject is taken and answered
      yield* publish(operatorSubject(ALICE), { _tag: "KillSwitch", commandId: "k4", engage: true, target: "*" })
      yield* waitFor(() => results.length === 2, "the operator's kill switch answered")
      assert.deepStrictEqual(results.map((r) => r.commandId), ["k1", "k4"])
      assert.deepStrictEqual(risk.killSwitchState(), { global: true, consumers: [ALICE] })
    }), { timeout: 120_000 })
})

// ---------------------------------------------------------------------------
// HTTP and the command line
// ---------------------------------------------------------------------------

const TOKEN_ENV = "MELTICA_TEST_KILL_SWITCH_TOKEN"
const TOKEN = "s3cret-kill-switch-token"

/** The operator endpoints over the test application, the token's variable set (or not) in the config provider. */
const endpoints = (token: string | undefined) =>
  Http.layer({ host: "127.0.0.1", port: 0, killSwitchTokenEnv: TOKEN_ENV }).pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(token === undefined ? [] : [[TOKEN_ENV, token]])))),
    Layer.provideMerge(layerTest(testConfig()))
  )

const portOf = Effect.map(HttpServer.HttpServer, (s) => (s.address._tag === "TcpAddress" ? s.address.port : 0))

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
}

const post = (port: number, body: string, authorization?: string, path = "/kill-switch", method = "POST") =>
  Effect.async<Answer>((resume) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method,
        headers: { "content-type": "application/json", ...(authorization === undefined ? {} : { authorization }) }
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => (text += chunk))
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: text })))
      }
    )
    req.on("error", (e) => resume(Effect.die(e)))
    req.end(body)
  })

/** Two resting orders of two strategies on sim-a, through the guarded venue. */
const twoOrders = Effect.gen(function*() {
  const venue = yield* ExecutionVenue
  yield* seedBook
  yield* venue.submit(restingBuy("strat-x", "x-1"))
  yield* venue.submit(restingBuy("strat-y", "y-1"))
})

describe("kill switch over HTTP", () => {
  it.scopedLive("no token configured: 503 saying which variable to set; nothing changes", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      yield* twoOrders
      const a = yield* post(port, JSON.stringify({ engage: true }), `Bearer ${TOKEN}`)
      assert.strictEqual(a.status, 503)
      assert.include(a.body, TOKEN_ENV)
      const metrics = (yield* post(port, "", undefined, "/metrics", "GET")).body
      assert.match(metrics, /meltica_http_kill_switch_refusals_total\{reason="no_token"\} [1-9]/)
      assert.deepStrictEqual((yield* Risk).killSwitchState(), { global: false, consumers: [] })
      assert.strictEqual(yield* statusOf("strat-x", "x-1"), "new")
    }).pipe(Effect.provide(endpoints(undefined))))

  it.scopedLive("a missing or wrong token: 401, never echoed; the right one: 200, orders canceled, new ones refused; release", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      yield* twoOrders
      const venue = yield* ExecutionVenue
      const engage = JSON.stringify({ engage: true })
      const hostile: ReadonlyArray<readonly [string, string | undefined]> = [
        ["no header", undefined],
        ["empty bearer", "Bearer "],
        ["wrong token", "Bearer not-the-token"],
        ["a prefix of the token", `Bearer ${TOKEN.slice(0, -1)}`],
        ["the token and more", `Bearer ${TOKEN}x`],
        ["basic scheme", `Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}`],
        ["the token without a scheme", TOKEN],
        ["a huge header", `Bearer ${"a".repeat(8_000)}`]
      ]
      for (const [name, header] of hostile) {
        const a = yield* post(port, engage, header)
        assert.strictEqual(a.status, 401, name)
        assert.strictEqual(a.headers["www-authenticate"], "Bearer realm=\"meltica\"", name)
        assert.notInclude(a.body, TOKEN, name)
      }
      assert.deepStrictEqual((yield* Risk).killSwitchState(), { global: false, consumers: [] }, "no refused request changed anything")

      // a bad body with the right token: 400
      for (const body of ["", "{", "[]", JSON.stringify({ engage: "yes" }), JSON.stringify({ engage: true, target: "" })]) {
        assert.strictEqual((yield* post(port, body, `Bearer ${TOKEN}`)).status, 400, body)
      }
      assert.strictEqual((yield* post(port, JSON.stringify({ engage: true, pad: "x".repeat(5_000) }), `Bearer ${TOKEN}`)).status, 413)
      // GET on the path: 405, POST only
      const get = yield* post(port, "", `Bearer ${TOKEN}`, "/kill-switch", "GET")
      assert.deepStrictEqual([get.status, get.headers["allow"]], [405, "POST"])

      const on = yield* post(port, engage, `Bearer ${TOKEN}`)
      assert.strictEqual(on.status, 200)
      assert.deepStrictEqual(JSON.parse(on.body), { engaged: true, target: "*", canceled: 2, state: { global: true, consumers: [] } })
      assert.strictEqual(yield* statusOf("strat-x", "x-1"), "canceled")
      assert.strictEqual(yield* statusOf("strat-y", "y-1"), "canceled")
      const refused = yield* Effect.flip(venue.submit(restingBuy("strat-x", "x-2")))
      same(refused, new KillSwitchEngaged({ clientOrderId: "x-2", consumerId: "strat-x", scope: "*" }))

      const off = yield* post(port, JSON.stringify({ engage: false }), `Bearer ${TOKEN}`)
      assert.deepStrictEqual([off.status, JSON.parse(off.body).state], [200, { global: false, consumers: [] }])
      assert.strictEqual((yield* venue.submit(restingBuy("strat-x", "x-2"))).status, "new")
    }).pipe(Effect.provide(endpoints(TOKEN))))

  it.scopedLive("/metrics counts the endpoint's refusals by reason (each at 0 from start) and the switches applied", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      /** `meltica_http_kill_switch_*` series of a scrape, by name and labels. */
      const scrape = Effect.map(post(port, "", undefined, "/metrics", "GET"), (a) =>
        Object.fromEntries(
          a.body.split("\n")
            .filter((l) => l.startsWith("meltica_http_kill_switch_"))
            .map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))])
        ))
      const series = (counts: Readonly<Record<string, number>>, applied: number) => {
        const out: Record<string, number> = {}
        for (const reason of Http.KILL_SWITCH_REFUSALS) out[`meltica_http_kill_switch_refusals_total{reason="${reason}"}`] = counts[reason] ?? 0
        out["meltica_http_kill_switch_applied_total"] = applied
        return out
      }
      // the metrics registry is the process's: earlier tests' requests are in it, so this one reads differences
      const before = yield* scrape
      assert.deepStrictEqual(Object.keys(before).sort(), Object.keys(series({}, 0)).sort(), "every reason exported from start")
      yield* post(port, JSON.stringify({ engage: true }))
      yield* post(port, JSON.stringify({ engage: true }), "Bearer wrong")
      yield* post(port, "{", `Bearer ${TOKEN}`)
      yield* post(port, JSON.stringify({ engage: true, pad: "x".repeat(5_000) }), `Bearer ${TOKEN}`)
      yield* post(port, JSON.stringify({ engage: false }), `Bearer ${TOKEN}`)
      const after = yield* scrape
      const moved = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]))
      assert.deepStrictEqual(moved, series({ unauthorized: 2, invalid_body: 1, body_too_large: 1 }, 1))
    }).pipe(Effect.provide(endpoints(TOKEN))))

  it.scopedLive("the command line's request: engage one strategy, release it; a wrong token is a typed failure with the status", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      yield* twoOrders
      const url = `http://127.0.0.1:${port}`
      const on = yield* requestKillSwitch({ url, token: Redacted.make(TOKEN), engage: true, target: "strat-y" })
      assert.deepStrictEqual(on, { engaged: true, target: "strat-y", canceled: 1, state: { global: false, consumers: ["strat-y"] } })
      assert.strictEqual(describeKillSwitch(on), "kill switch engaged for strat-y: 1 open order(s) canceled, new orders refused (now engaged for strat-y)")
      assert.strictEqual(yield* statusOf("strat-x", "x-1"), "new")
      assert.strictEqual(yield* statusOf("strat-y", "y-1"), "canceled")
      const wrong = yield* Effect.flip(requestKillSwitch({ url, token: Redacted.make("nope"), engage: false, target: "strat-y" }))
      assert.instanceOf(wrong, KillSwitchRequestFailed)
      assert.strictEqual(wrong.status, 401)
      const off = yield* requestKillSwitch({ url, token: Redacted.make(TOKEN), engage: false, target: "strat-y" })
      assert.strictEqual(describeKillSwitch(off), "kill switch released for strat-y (now off)")
      const down = yield* Effect.flip(requestKillSwitch({ url: "http://127.0.0.1:1", token: Redacted.make(TOKEN), engage: true }))
      assert.isUndefined(down.status)
      assert.include(down.message, "cannot reach http://127.0.0.1:1/kill-switch")
    }).pipe(Effect.provide(Layer.merge(endpoints(TOKEN), FetchHttpClient.layer))))

  it.scopedLive("meltica kill-switch, as a child process, against a running gateway: the token from the environment", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      yield* twoOrders
      const run = (args: ReadonlyArray<string>, env: Record<string, string>) =>
        Effect.async<{ readonly code: number; readonly out: string; readonly err: string }>((resume) => {
          execFile(
            process.execPath,
            [...TS_NODE, "bin/meltica.ts", "kill-switch", ...args],
            { env: { ...process.env, ...env }, timeout: 60_000 },
            (error, out, err) => resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), out, err }))
          )
        })
      const url = `http://127.0.0.1:${port}`
      const engaged = yield* run(["--engage", "--url", url], { MELTICA_KILL_SWITCH_TOKEN: TOKEN })
      assert.strictEqual(engaged.code, 0, engaged.err)
      assert.include(engaged.out, "kill switch engaged for the whole gateway: 2 open order(s) canceled")
      assert.deepStrictEqual((yield* Risk).killSwitchState(), { global: true, consumers: [] })
      // released through the same request the command line makes
      yield* requestKillSwitch({ url, token: Redacted.make(TOKEN), engage: false }).pipe(Effect.provide(FetchHttpClient.layer))
      assert.deepStrictEqual((yield* Risk).killSwitchState(), { global: false, consumers: [] })
      assert.notInclude(engaged.out + engaged.err, TOKEN, "the token is never printed")
    }).pipe(
      // the gateway reads its token from the variable the CLI reads by default
      Effect.provide(
        Http.layer({ host: "127.0.0.1", port: 0 }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["MELTICA_KILL_SWITCH_TOKEN", TOKEN]])))),
          Layer.provideMerge(layerTest(testConfig()))
        )
      )
    ), { timeout: 90_000 })
})
