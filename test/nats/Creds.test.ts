/**
 * `.creds` authentication (JWT accounts) against a real nats-server in
 * operator mode. The operator, its account and the account's users are made
 * here with `@nats-io/jwt` (keys and signed JWTs, as `nsc` would make them);
 * the server trusts the operator and knows the account from a memory
 * resolver. The gateway's connection takes the `.creds` file by reference from
 * the configuration's `bus.auth.credsFile`, as it does in production.
 *
 * What is shown: the right `.creds` connects and may publish and subscribe
 * where its JWT allows, and nowhere else (the server refuses, the client
 * counts); a `.creds` the server must not trust (a user of an account it does
 * not know, a JWT altered after signing, an expired JWT, a seed that is not
 * the JWT's) is refused with a typed error; neither the seed nor the JWT ever
 * appears in an error or a log line.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  type KeyPair,
  type User
} from "@nats-io/jwt"
import { Context, Effect, Either, Layer, Logger, Schedule } from "effect"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseText, summary, validate } from "../../src/Config.js"
import { NatsConfig, NatsConnection } from "../../src/nats/Connection.js"
import { natsServerWith } from "./support/server.js"

const text = (b: Uint8Array): string => new TextDecoder().decode(b)

/** What the user's JWT allows: publish and subscribe on `md.>`, replies under `_INBOX.>`. */
const allowed: Partial<User> = {
  pub: { allow: ["md.>"] },
  sub: { allow: ["md.>", "_INBOX.>"] }
}

/** An operator, the one account the server will know, and its user; and what an attacker might hold instead. */
const pki = Effect.promise(async () => {
  const operator = createOperator()
  const system = createAccount() // the server's own account (JetStream needs one)
  const account = createAccount()
  const user = createUser()
  const operatorJwt = await encodeOperator("meltica-test", operator, { system_account: system.getPublicKey() })
  const systemJwt = await encodeAccount("SYS", system, {}, { signer: operator })
  // an account JWT without limits allows no connection at all: these are nsc's defaults (unlimited, no JetStream)
  const limits = { conn: -1, leaf: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true }
  const accountJwt = await encodeAccount("meltica", account, { limits }, { signer: operator })
  const userJwt = await encodeUser("strategy", user, account, allowed)

  const stranger = createAccount() // an account the operator never signed and the server does not know
  const strangerUser = createUser()
  const strangerJwt = await encodeUser("strategy", strangerUser, stranger, allowed)
  const expiredJwt = await encodeUser("strategy", user, account, allowed, { exp: Math.floor(Date.now() / 1000) - 60 })
  const otherUser = createUser()
  return { system, systemJwt, account, user, operatorJwt, accountJwt, userJwt, strangerUser, strangerJwt, expiredJwt, otherUser }
})

/** The JWT with its claims widened to publish anywhere, the signature left as it was. */
const widened = (jwt: string): string => {
  const [header, payload, signature] = jwt.split(".")
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8"))
  claims.nats.pub = { allow: [">"] }
  claims.nats.sub = { allow: [">"] }
  return [header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".")
}

/** The server's configuration: the trusted operator, its accounts preloaded in a memory resolver. */
const operatorMode = (
  p: { operatorJwt: string; system: KeyPair; systemJwt: string; account: KeyPair; accountJwt: string }
): string =>
  [
    `operator: ${p.operatorJwt}`,
    `system_account: ${p.system.getPublicKey()}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${p.system.getPublicKey()}: ${p.systemJwt}`,
    `  ${p.account.getPublicKey()}: ${p.accountJwt}`,
    "}"
  ].join("\n")

/** A gateway configuration whose bus authenticates with `credsFile`, validated as a configuration file is. */
const configWith = (url: string, credsFile: string) => {
  const raw = parseText(
    JSON.stringify({
      bus: { type: "nats", url, role: "feed", auth: { credsFile } },
      strategies: { bbo: { enabled: false }, orders: { enabled: false } }
    }),
    "creds-test.json"
  )
  const config = Either.getOrThrow(Either.flatMap(raw, (r) => validate(r, "creds-test.json")))
  if (config.bus._tag !== "nats") throw new Error("expected a nats bus")
  return { config, bus: config.bus }
}

/** The connection made from the configuration's bus section, as the gateway makes it. */
const connectWith = (url: string, credsFile: string) => {
  const { bus } = configWith(url, credsFile)
  return Layer.build(
    NatsConnection.Default.pipe(
      Layer.provide(NatsConfig.layer({ servers: [bus.url], name: "creds-test", auth: bus.auth, requestTimeoutMs: 2_000 }))
    )
  ).pipe(Effect.map((ctx) => Context.get(ctx, NatsConnection)), Effect.either)
}

const eventually = <A, E>(check: Effect.Effect<A, E>, what: string) =>
  check.pipe(
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.mapError(() => new Error(`not within 10 s: ${what}`))
  )

/** Any NKey seed, in any text: `S` + a key type letter + base32. */
const SEED = /S[UAON][A-Z2-7]{50,}/

describe(".creds authentication (JWT accounts) against nats-server in operator mode", { sequential: true }, () => {
  it.scopedLive("the right .creds connects and is held to its JWT's permissions; untrusted ones are refused, never showing the seed or the JWT", () => {
    const logs: Array<string> = []
    const collect = Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, (line) => void logs.push(line)))
    return Effect.gen(function*() {
      const p = yield* pki
      const dir = mkdtempSync(join(tmpdir(), "meltica-creds-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))) // seeds included
      const write = (name: string, content: string | Uint8Array, mode = 0o600) => {
        const path = join(dir, name)
        writeFileSync(path, content, { mode })
        return path
      }
      const conf = write("server.conf", operatorMode(p), 0o644)
      const server = yield* natsServerWith({ args: ["-c", conf] })

      const seed = text(p.user.getSeed())
      const secrets = [seed, text(p.strangerUser.getSeed()), text(p.otherUser.getSeed()), p.userJwt, p.strangerJwt]
      assert.match(seed, /^SU/)

      // the right .creds, by reference from the configuration
      const credsFile = write("strategy.creds", fmtCreds(p.userJwt, p.user))
      assert.strictEqual(statSync(credsFile).mode & 0o777, 0o600)
      const { config } = configWith(server.url, credsFile)
      const shown = summary(config)
      assert.include(shown, `creds file ${credsFile}`)
      for (const s of secrets) assert.notInclude(shown, s)

      const connected = yield* connectWith(server.url, credsFile)
      if (Either.isLeft(connected)) return assert.fail(`the right .creds is refused: ${connected.left.reason}`)
      const connection = connected.right
      const nc = connection.nc

      // allowed: subscribe and publish on md.>, request-reply under _INBOX
      const seen: Array<string> = []
      nc.subscribe("md.sim-a.BTC-USDT.ticker", { callback: (_e, m) => void seen.push(m.string()) })
      yield* Effect.promise(() => nc.flush())
      nc.publish("md.sim-a.BTC-USDT.ticker", "from a JWT user")
      yield* eventually(Effect.suspend(() => (seen.length === 1 ? Effect.void : Effect.fail("not yet"))), "own message back")
      assert.deepStrictEqual(seen, ["from a JWT user"])
      assert.strictEqual(connection.stats().permissionDenied, 0)

      // beyond the JWT's permissions: the server refuses, the client counts and logs the refusal
      nc.publish("control.operator.ops", "a routing command")
      nc.subscribe("critical.>")
      yield* Effect.promise(() => nc.flush())
      yield* eventually(
        Effect.suspend(() => (connection.stats().permissionDenied >= 2 ? Effect.void : Effect.fail("not yet"))),
        "both refusals counted"
      )
      assert.isTrue(logs.some((l) => l.includes("control.operator.ops")), "the refused publication is logged by subject")

      // what the server must not trust is refused by the server; what is not a .creds file, before connecting
      const violation = "Authorization Violation"
      const hostile: ReadonlyArray<readonly [string, string | Uint8Array | undefined, string]> = [
        ["a user of an account the operator never signed", fmtCreds(p.strangerJwt, p.strangerUser), violation],
        ["the user's JWT widened after signing", fmtCreds(widened(p.userJwt), p.user), violation],
        ["an expired JWT", fmtCreds(p.expiredJwt, p.user), violation],
        ["the user's JWT with another user's seed", fmtCreds(p.userJwt, p.otherUser), violation],
        ["a file that is not a .creds file", "not a creds file\n", "is not a NATS .creds file"],
        ["a .creds file that is not there", undefined, "cannot read the creds file"]
      ]
      for (const [what, creds, reason] of hostile) {
        const name = `${what.replace(/\W+/g, "-")}.creds`
        const file = creds === undefined ? join(dir, name) : write(name, creds)
        const refused = yield* connectWith(server.url, file)
        if (Either.isRight(refused)) return assert.fail(`${what}: connected`)
        const error = refused.left
        assert.strictEqual(error._tag, "NatsConnectFailed", what)
        assert.include(error.reason, reason, what)
        const shownError = `${error.message}\n${String(error)}\n${JSON.stringify(error)}\n${error.reason}`
        for (const s of [...secrets, widened(p.userJwt), p.expiredJwt]) assert.notInclude(shownError, s, what)
        assert.notMatch(shownError, SEED, what)
      }
      assert.isTrue(connection.stats().connected, "the refusals left the good connection alone")

      const allLogs = logs.join("\n")
      for (const s of secrets) assert.notInclude(allLogs, s)
      assert.notMatch(allLogs, SEED)
    }).pipe(Effect.provide(collect))
  }, { timeout: 20_000 })
})
