/**
 * Authentication and least privilege on NATS, against a real nats-server run
 * under the generated per-role configuration (`src/nats/Permissions.ts`): a
 * feed, two strategies (alice, bob) and an operator, each its own user.
 * What an attacker holding bob's credentials tries is refused by the server
 * (a subject bob may not publish on) or by the feed (a payload that claims
 * another consumer, or routing from a strategy subject), and counted.
 */
import { assert, describe, it } from "@effect/vitest"
import { type NatsConnection as Client, nkeys } from "@nats-io/transport-node"
import { Context, Effect, Either, Exit, Layer, Schedule, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerNatsFeed } from "../../layers/Nats.js"
import {
  CancelOrder,
  type ControlCommand,
  encodeControlJson,
  envelope,
  FlipRouting,
  StageRouting,
  SubmitOrder,
  SymbolRoute
} from "../../schema/Control.js"
import { decimal, Ticker } from "../../schema/Event.js"
import { ExecutionVenue } from "../../src/ExecutionVenue.js"
import { CommandConsumer, commandMsgId, CommandPublisher, commandSubjectOf } from "../../src/nats/Commands.js"
import { type NatsAuth, NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import { deploymentRoles, passwordVariable, type Roles, serverConfig } from "../../src/nats/Permissions.js"
import {
  commandSubject,
  CRITICAL_STREAM,
  criticalDurable,
  criticalSubject,
  operatorSubject
} from "../../src/nats/Subjects.js"
import { stageAndFlip } from "../../src/nats/Operator.js"
import { Orchestrator } from "../../src/Orchestrator.js"
import { Pool } from "../../src/Pool.js"
import { natsServerWith } from "./support/server.js"
import { parseText, summary, validate } from "../../src/Config.js"

const roles: Roles = {
  feeds: [{ user: "feed" }],
  strategies: [{ user: "alice", consumers: ["alice"] }, { user: "bob", consumers: ["bob"] }],
  operators: [{ user: "ops", id: "ops" }]
}

/** Fresh passwords: in nats-server's environment, and by reference (a file for the feed, variables for the rest). */
const secrets = () => {
  const dir = mkdtempSync(join(tmpdir(), "meltica-sec-"))
  const password = (user: string) => `${user}-${Math.random().toString(36).slice(2)}`
  const users = ["feed", "alice", "bob", "ops"]
  const values = new Map(users.map((u) => [u, password(u)]))
  const serverEnv: Record<string, string> = {}
  for (const [u, p] of values) serverEnv[passwordVariable(u)] = p
  const feedFile = join(dir, "feed.password")
  writeFileSync(feedFile, `${values.get("feed")}\n`)
  const auth = (user: string): NatsAuth => {
    if (user === "feed") return { user, password: { file: feedFile } }
    const variable = `MELTICA_TEST_${user.toUpperCase()}_PW`
    process.env[variable] = values.get(user)!
    return { user, password: { env: variable } }
  }
  const conf = join(dir, "server.conf")
  writeFileSync(conf, serverConfig(roles))
  return { conf, serverEnv, auth }
}

const eventually = <A, E, R>(check: Effect.Effect<A, E, R>, what: string) =>
  check.pipe(
    Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo("20 seconds"))),
    Effect.mapError(() => new Error(`not within 20 s: ${what}`))
  )

const expect = (ok: boolean) => (ok ? Effect.void : Effect.fail("not yet"))

/** A strategy's or operator's client: its connection and command publisher, as that user. */
const client = (url: string, name: string, auth: NatsAuth) =>
  Layer.build(
    CommandPublisher.Default.pipe(
      Layer.provideMerge(NatsConnection.Default),
      Layer.provide(NatsConfig.layer({ servers: [url], name, auth }))
    )
  ).pipe(Effect.map((ctx) => ({ commands: Context.get(ctx, CommandPublisher), connection: Context.get(ctx, NatsConnection) })))

const wire = (command: ControlCommand): string => Either.getOrThrow(encodeControlJson(envelope(command)))

/** A JetStream publication, refused (Left) or stored (Right); a refusal the client never hears of is a timeout. */
const tryPublish = (connection: NatsConnection, subject: string, data: string, msgID: string) =>
  Effect.tryPromise(() => connection.js.publish(subject, data, { msgID, timeout: 3_000 })).pipe(Effect.either)

const flush = (nc: Client) => Effect.promise(() => nc.flush())

const restingOrder = (consumerId: string, clientOrderId: string) =>
  SubmitOrder.make({
    commandId: `${clientOrderId}-submit`,
    consumerId,
    clientOrderId,
    symbol: "BTC-USDT",
    side: "buy",
    orderType: "limit",
    price: decimal("1"),
    quantity: decimal("1")
  })

const route = SymbolRoute.make({ symbol: "BTC-USDT", providers: ["sim-a"] })

const feedIn = (url: string, auth: NatsAuth) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(
      layerNatsFeed({ symbols: ["BTC-USDT"], providers: ["sim-a"], nats: { servers: [url], auth, ackWaitMs: 1_000, name: "feed" } })
    )
    const pool = Context.get(ctx, Pool)
    const orchestrator = Context.get(ctx, Orchestrator)
    let seq = 0
    /** One sim-a ticker through the Orchestrator: the paper venue's market view, published on md.* */
    const tick = Effect.suspend(() => {
      const e = pool.acquireEvent()
      e.provider = "sim-a"
      e.symbol = "BTC-USDT"
      e.kind = "ticker"
      e.seqProvider = ++seq
      e.ingestTs = Date.now() * 1_000
      e.traceId = `feed-tick-${seq}`
      e.payload = Ticker.make({
        bidPrice: decimal("64000"),
        bidQty: decimal("5"),
        askPrice: decimal("64001"),
        askQty: decimal("5"),
        exchangeTs: Date.now()
      })
      return orchestrator.ingest(e)
    })
    return {
      tick,
      orchestrator,
      venue: Context.get(ctx, ExecutionVenue),
      commands: Context.get(ctx, CommandConsumer),
      connection: Context.get(ctx, NatsConnection)
    }
  })

const startAll = Effect.gen(function*() {
  const s = secrets()
  const server = yield* natsServerWith({ args: ["-c", s.conf], env: s.serverEnv })
  const feed = yield* feedIn(server.url, s.auth("feed"))
  const alice = yield* client(server.url, "alice", s.auth("alice"))
  const bob = yield* client(server.url, "bob", s.auth("bob"))
  const ops = yield* client(server.url, "ops", s.auth("ops"))
  return { server, feed, alice, bob, ops }
})

const orderStatus = (venue: ExecutionVenue["Type"], consumerId: string, clientOrderId: string) =>
  venue.query({ consumerId, clientOrderId } as never).pipe(Effect.map((o) => o.status))

const natsBus = (auth: unknown) => ({
  bus: { type: "nats", url: "nats://127.0.0.1:4222", role: "feed", auth },
  strategies: { bbo: { enabled: false }, orders: { enabled: false } }
})

describe("NATS credentials in the configuration", () => {
  it("are references, one mechanism at a time, and the summary names the reference only", () => {
    const bad: ReadonlyArray<readonly [unknown, string]> = [
      [{ user: "alice", password: "hunter2" }, "never inline"],
      [{ token: "s3cret-token" }, "never inline"],
      [{ user: "alice", password: { env: "X" }, token: { env: "Y" } }, "one of password, token"],
      [{ password: { env: "X" } }, "a password needs a user"],
      [{ user: "alice" }, "a user needs a password"],
      [{ nkeySeed: { env: "not a name" } }, "never inline"],
      [{ tls: { certFile: "/c.pem" } }, "certFile and keyFile go together"],
      [{ credsFile: "" }, "credsFile"],
      [{ inboxPrefix: "_INBOX.>" }, "inboxPrefix"]
    ]
    for (const [auth, expected] of bad) {
      const result = validate(natsBus(auth), "test")
      assert.isTrue(Either.isLeft(result), JSON.stringify(auth))
      const text = Either.isLeft(result) ? result.left.issues.map((i) => `${i.path}: ${i.message}`).join("\n") : ""
      assert.include(text, expected, JSON.stringify(auth))
      assert.notInclude(text, "hunter2")
      assert.notInclude(text, "s3cret-token")
    }
    const good = validate(natsBus({ user: "alice", password: { env: "ALICE_PW" }, tls: { caFile: "/ca.pem" } }), "test")
    assert.isTrue(Either.isRight(good))
    if (Either.isRight(good)) {
      assert.include(summary(good.right), "user alice with password from env ALICE_PW, tls")
    }
  })
})

describe("the example deployment (examples/nats/)", () => {
  const example = (name: string) => readFileSync(new URL(`../../examples/nats/${name}`, import.meta.url), "utf8")

  it("server.conf is what the generator makes for the embedded default's strategies, and nats-server accepts it", () => {
    const text = example("server.conf")
    assert.strictEqual(
      text.trimEnd(),
      serverConfig(deploymentRoles(["bbo-follower", "paper-trader"]), { storeDir: "./nats-data" }).trimEnd(),
      "regenerate with: npx tsx bin/meltica.ts nats-config > examples/nats/server.conf"
    )
    const env = { ...process.env }
    for (const user of ["feed", "strategies", "operator"]) env[passwordVariable(user)] = "x"
    const out = execFileSync("nats-server", ["-t", "-c", fileOf("server.conf")], { env, encoding: "utf8", stdio: "pipe" })
    assert.include(out + "valid", "valid")
    assert.notInclude(text, "password: \"", "no password in the file")
  })

  it("the feed, strategy and operator configurations are valid and give credentials by reference", () => {
    for (const name of ["feed.yaml", "strategy.yaml", "operator.yaml"]) {
      const parsed = parseText(example(name), name)
      assert.isTrue(Either.isRight(parsed), name)
      const config = Either.flatMap(parsed, (raw) => validate(raw, name))
      assert.isTrue(Either.isRight(config), `${name}: ${Either.isLeft(config) ? config.left.message : ""}`)
      if (Either.isRight(config)) assert.include(summary(config.right), "with password from env MELTICA_NATS_PASSWORD")
    }
  })
})

const fileOf = (name: string) => new URL(`../../examples/nats/${name}`, import.meta.url).pathname

describe("NATS security", { sequential: true }, () => {
  it.scopedLive("a forged cancel and a forged flip are refused and counted; the owner and the operator are obeyed", () =>
    Effect.gen(function*() {
      const { alice, bob, feed, ops } = yield* startAll
      yield* feed.tick
      yield* alice.commands.submit(restingOrder("alice", "alice-o-1"))
      yield* eventually(
        orderStatus(feed.venue, "alice", "alice-o-1").pipe(Effect.flatMap((s) => expect(s === "new"))),
        "alice's order rests"
      )
      const version = feed.orchestrator.stats().routingVersion

      // bob cancels alice's order: on alice's subject the server refuses; on his own the feed does
      const cancel = CancelOrder.make({ commandId: "bob-c-1", consumerId: "alice", clientOrderId: "alice-o-1" })
      const onAlice = yield* tryPublish(bob.connection, commandSubject("alice"), wire(cancel), "forged-1")
      assert.isTrue(Either.isLeft(onAlice), "the server refuses bob on alice's subject")
      const onBob = yield* tryPublish(bob.connection, commandSubject("bob"), wire(cancel), "forged-2")
      assert.isTrue(Either.isRight(onBob), "bob may publish on his own subject")

      // bob stages and flips: the server refuses the operator subject; the feed refuses routing from a strategy
      const stage = StageRouting.make({ commandId: "bob-s-1", consumerId: "bob", routes: [route] })
      const flip = FlipRouting.make({ commandId: "bob-f-1", consumerId: "bob" })
      assert.strictEqual(commandSubjectOf(flip), operatorSubject("bob"))
      const asOperator = yield* tryPublish(bob.connection, operatorSubject("ops"), wire(flip), "forged-3")
      assert.isTrue(Either.isLeft(asOperator), "the server refuses bob on the operator subject")
      // through the publisher (routing goes on bob's operator subject, which he may not use): it fails at once,
      // counted, instead of being retried for ever
      const failedBefore = bob.commands.stats().failed
      yield* bob.commands.submit(flip).pipe(
        Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error("a refused publish retried for ever") })
      )
      assert.strictEqual(bob.commands.stats().failed, failedBefore + 1, "counted as failed")
      for (const [i, c] of [stage, flip].entries()) {
        const r = yield* tryPublish(bob.connection, commandSubject("bob"), wire(c), `forged-${4 + i}`)
        assert.isTrue(Either.isRight(r))
      }

      // the operator stages and flips: obeyed, after every command above (one stream, in order)
      yield* ops.commands.submit(StageRouting.make({ commandId: "ops-s-1", consumerId: "ops", routes: [route] }))
      yield* ops.commands.submit(FlipRouting.make({ commandId: "ops-f-1", consumerId: "ops", expectedStagedId: "ops-s-1" }))
      yield* eventually(
        Effect.suspend(() => expect(feed.orchestrator.stats().routingVersion === version + 1)),
        "the operator's flip"
      )
      const stats = feed.commands.stats()
      assert.strictEqual(stats.forged, 1, "the cancel naming alice on bob's subject")
      const before = stats
      assert.strictEqual(stats.unauthorized, 2, "bob's stage and flip")
      assert.strictEqual(yield* orderStatus(feed.venue, "alice", "alice-o-1"), "new", "alice's order untouched")
      assert.isAtLeast(bob.connection.stats().permissionDenied, 2, "the server's refusals, counted by the client")
      assert.strictEqual(feed.connection.stats().permissionDenied, 0, "the feed's permissions cover all it does")
      assert.strictEqual(alice.connection.stats().permissionDenied, 0, "a strategy's permissions cover all it does")
      assert.strictEqual(ops.connection.stats().permissionDenied, 0, "the operator's permissions cover all it does")

      // alice cancels her own order
      yield* alice.commands.submit(CancelOrder.make({ commandId: "alice-c-1", consumerId: "alice", clientOrderId: "alice-o-1" }))
      yield* eventually(
        orderStatus(feed.venue, "alice", "alice-o-1").pipe(Effect.flatMap((s) => expect(s === "canceled"))),
        "alice's own cancel"
      )

      // bob publishes first with the message id alice's next order would have: JetStream de-duplicates
      // across the stream, but alice's ids carry a secret of her run, so hers still goes through
      const next = restingOrder("alice", "alice-o-2")
      const preempt = yield* tryPublish(bob.connection, commandSubject("bob"), wire(next), commandMsgId(next))
      assert.isTrue(Either.isRight(preempt))
      yield* alice.commands.submit(next)
      yield* eventually(
        orderStatus(feed.venue, "alice", "alice-o-2").pipe(Effect.flatMap((s) => expect(s === "new"))),
        "alice's order despite bob's pre-empted id"
      )
      assert.strictEqual(feed.commands.stats().forged, before.forged + 1, "bob's copy refused")
      assert.strictEqual(alice.commands.stats().duplicates, 0, "not taken for a duplicate")
      assert.strictEqual(feed.venue.stats().storeFailures, 0, "the feed keeps its open orders in its key-value bucket")
    }))

  it.scopedLive("the operator's routing change (meltica route) applies; the same from a strategy user is refused", () =>
    Effect.gen(function*() {
      const { bob, feed, ops } = yield* startAll
      const version = feed.orchestrator.stats().routingVersion
      const applied = yield* stageAndFlip([route], { operatorId: "ops" }).pipe(
        Effect.provideService(NatsConnection, ops.connection),
        Effect.provideService(CommandPublisher, ops.commands)
      )
      assert.strictEqual(applied, version + 1)
      assert.strictEqual(feed.orchestrator.stats().routingVersion, version + 1)
      const refused = yield* stageAndFlip([route], { operatorId: "ops", timeout: "3 seconds" }).pipe(
        Effect.provideService(NatsConnection, bob.connection),
        Effect.provideService(CommandPublisher, bob.commands),
        Effect.flip
      )
      assert.strictEqual(refused._tag, "RoutingNotApplied")
      assert.strictEqual(feed.orchestrator.stats().routingVersion, version + 1, "no flip from bob")
      assert.isAbove(bob.connection.stats().permissionDenied, 0)
    }))

  it.scopedLive("forged market data and forged critical events are refused by the server", () =>
    Effect.gen(function*() {
      const { alice, bob, feed } = yield* startAll
      const seen: Array<string> = []
      const nc = alice.connection.nc
      nc.subscribe("md.>", {
        callback: (_e, m) => {
          seen.push(m.string())
        }
      })
      yield* flush(nc)
      const before = bob.connection.stats().permissionDenied

      bob.connection.nc.publish("md.sim-a.BTC-USDT.ticker", "forged market data")
      bob.connection.nc.publish("feed.heartbeat.sim-a", "forged heartbeat")
      yield* flush(bob.connection.nc)
      // the feed's own tick comes after bob's publications reached the server
      yield* feed.tick
      yield* eventually(Effect.suspend(() => expect(seen.length > 0)), "the feed's market data")
      assert.isFalse(seen.some((m) => m.includes("forged")), "no forged market data delivered")

      const critical = yield* tryPublish(bob.connection, criticalSubject("alice"), "forged report", "forged-critical")
      assert.isTrue(Either.isLeft(critical), "the server refuses bob on critical.alice")
      const read = yield* Effect.tryPromise(() =>
        bob.connection.jsm.consumers.add(CRITICAL_STREAM, {
          durable_name: criticalDurable("alice"),
          filter_subject: criticalSubject("alice")
        })
      ).pipe(Effect.either)
      assert.isTrue(Either.isLeft(read), "bob may not read alice's critical events")
      const info = yield* Effect.tryPromise(() =>
        feed.connection.jsm.streams.info(CRITICAL_STREAM, { subjects_filter: criticalSubject("alice") })
      )
      assert.strictEqual(info.state.messages, 0, "nothing stored for alice")
      yield* eventually(
        Effect.suspend(() => expect(bob.connection.stats().permissionDenied >= before + 3)),
        "the refusals counted"
      )
    }))

  it.scopedLive("a wrong password or a missing secret fails to connect, naming the reference and never the secret", () =>
    Effect.gen(function*() {
      const s = secrets()
      const server = yield* natsServerWith({ args: ["-c", s.conf], env: s.serverEnv })
      process.env["MELTICA_TEST_WRONG_PW"] = "not-the-password"
      const wrong = yield* client(server.url, "x", { user: "bob", password: { env: "MELTICA_TEST_WRONG_PW" } }).pipe(
        Effect.flip
      )
      assert.strictEqual(wrong._tag, "NatsConnectFailed")
      assert.notInclude(JSON.stringify(wrong), "not-the-password")
      const missing = yield* client(server.url, "x", { user: "bob", password: { env: "MELTICA_TEST_UNSET_PW" } }).pipe(
        Effect.flip
      )
      assert.include(missing.message + JSON.stringify(missing), "MELTICA_TEST_UNSET_PW")
      const noFile = yield* client(server.url, "x", { user: "bob", password: { file: "/nonexistent/pw" } }).pipe(
        Effect.flip
      )
      assert.include(JSON.stringify(noFile), "/nonexistent/pw")
    }))
})

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in `dir`. */
const certificates = (dir: string) => {
  const ssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  ssl("req", "-x509", ...key, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=meltica-test-ca")
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  for (const who of ["server", "client"]) {
    ssl("req", ...key, "-keyout", `${who}-key.pem`, "-out", `${who}.csr`, "-subj", `/CN=${who}`)
    ssl("x509", "-req", "-in", `${who}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", `${who}.pem`, "-days", "1", "-extfile", "san.ext")
  }
  return (name: string) => join(dir, name)
}

const connectAs = (url: string, auth: NatsAuth) =>
  Layer.build(NatsConnection.Default.pipe(Layer.provide(NatsConfig.layer({ servers: [url], name: "auth-test", auth })))).pipe(
    Effect.map((ctx) => Context.get(ctx, NatsConnection)),
    Effect.either
  )

describe("each authentication mechanism of the server", { sequential: true }, () => {
  it.scopedLive("token, NKey and TLS with a client certificate: the right credential connects, a wrong or missing one does not", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "meltica-auth-"))
      const file = (name: string, text: string) => {
        const path = join(dir, name)
        writeFileSync(path, text)
        return path
      }
      const user = nkeys.createUser()
      const other = nkeys.createUser()
      const seed = (k: typeof user) => new TextDecoder().decode(k.getSeed())
      const cert = certificates(dir)
      const token = `tok-${Math.random().toString(36).slice(2)}`
      const cases: ReadonlyArray<{
        readonly name: string
        readonly server: string
        readonly good: NatsAuth
        readonly bad: ReadonlyArray<NatsAuth>
      }> = [
        {
          name: "token",
          server: `authorization: { token: "${token}" }`,
          good: { token: { file: file("good.token", token) } },
          bad: [{ token: { file: file("wrong.token", "not-it") } }, {}]
        },
        {
          name: "nkey",
          server: `authorization: { users: [ { nkey: "${user.getPublicKey()}" } ] }`,
          good: { nkeySeed: { file: file("user.nk", seed(user)) } },
          bad: [{ nkeySeed: { file: file("other.nk", seed(other)) } }, {}]
        },
        {
          name: "tls client certificate",
          server: `tls: { cert_file: "${cert("server.pem")}", key_file: "${cert("server-key.pem")}", ca_file: "${cert("ca.pem")}", verify: true }`,
          good: { tls: { caFile: cert("ca.pem"), certFile: cert("client.pem"), keyFile: cert("client-key.pem") } },
          bad: [{ tls: { caFile: cert("ca.pem") } }]
        }
      ]
      for (const c of cases) {
        const conf = file(`${c.name.replace(/\s/g, "-")}.conf`, c.server)
        const scope = yield* Scope.make()
        const server = yield* natsServerWith({ args: ["-c", conf] }).pipe(Scope.extend(scope))
        const ok = yield* connectAs(server.url, c.good).pipe(Scope.extend(scope))
        assert.isTrue(Either.isRight(ok), `${c.name}: ${Either.isLeft(ok) ? ok.left.reason : ""}`)
        if (Either.isRight(ok)) {
          yield* Effect.promise(() => ok.right.nc.flush())
          assert.isTrue(ok.right.stats().connected, c.name)
        }
        for (const bad of c.bad) {
          const refused = yield* connectAs(server.url, bad).pipe(Scope.extend(scope))
          assert.isTrue(Either.isLeft(refused), `${c.name}: refused with ${JSON.stringify(bad)}`)
        }
        yield* Scope.close(scope, Exit.void)
      }
    }), { timeout: 60_000 })
})

