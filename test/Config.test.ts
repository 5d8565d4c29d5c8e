import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import { runGateway } from "../layers/Application.js"
import { InvalidConfig } from "../schema/Errors.js"
import * as Config from "../src/Config.js"

const dir = "test/fixtures/config"
const noEnv = Layer.mergeAll(NodeContext.layer, Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
const withEnv = (env: Record<string, string>) =>
  Layer.mergeAll(NodeContext.layer, Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

/** Every problem, as "path: message" lines. */
const problems = (file: string | undefined, layer = noEnv) =>
  Config.load({ file }).pipe(
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`)),
    Effect.provide(layer)
  )

const badFiles: ReadonlyArray<readonly [file: string, expected: ReadonlyArray<string>]> = [
  ["syntax.yaml", ["(line 4, column 1): Sequence item without - indicator"]],
  ["not-a-mapping.yaml", ["(root): expected a mapping of settings (got a list)"]],
  ["empty-venues.json", ["venues: at least one venue is required"]],
  ["nats-without-url.yaml", ["bus.url: is missing", "bus.role: is missing"]],
  ["nats-bad-role.yaml", [`bus.role: role must be feed, strategy or operator (got "both")`]],
  ["many-problems.yaml", [
    `colour: is unexpected, expected: "venues" | "merges" | "pool" | "mailbox" | "dispatcher" | "http" | "bus" | "debug" | "statusIntervalMs" | "strategies" | "paper" | "risk" | "live" | "record"`,
    "venues[0].symbols[0]: a canonical symbol is BASE-QUOTE, e.g. BTC-USDT",
    "venues[0].tradesPerSecond: a rate must be a number of events per second in 0..100000 (got -1)",
    `venues[1].type: Expected "simulated" | "binance" | "kraken" | "okx" | "coinbase", actual "bitstamp"`,
    "pool.capacity.Event: Event must be an integer in 1..1048576 (got 0)",
    "mailbox.marketCapacity: marketCapacity must be an integer in 1..1048576 (got 1.5)",
    `dispatcher.latenessMs: Expected number, actual "fast"`,
    `http.host: operator endpoints listen on loopback only: 127.0.0.1, localhost or ::1 (got "0.0.0.0")`,
    "http.port: port must be an integer in 0..65535 (got 70000)"
  ]],
  ["bad-window.yaml", [
    `merges[0].kind: kind must be one of ticker, book_snapshot, trade (got "candles")`,
    "merges[0].providers: a merge needs at least 2 providers (got 1)",
    "merges[0].windowMs: windowMs must be an integer in 1..60000 (got 0)"
  ]],
  ["bad-merge.yaml", [
    `venues[2].name: duplicate venue name "sim-a" (also venues[0])`,
    `merges[0].providers[1]: venue "sim-b" does not quote BTC-USDT`,
    `merges[0].providers[2]: unknown venue "sim-z" (configured: sim-a, sim-b)`,
    "strategies.orders.symbol: no venue quotes DOGE-USDT"
  ]],
  ["does-not-exist.yaml", ["(file): cannot read test/fixtures/config/does-not-exist.yaml"]]
]

/** Problems of a configuration given as text, through the file loader (size bound, YAML limits, environment). */
const problemsOfText = (text: string, layer = noEnv) =>
  Effect.suspend(() => {
    const file = join(mkdtempSync(join(tmpdir(), "meltica-config-")), "gateway.yaml")
    writeFileSync(file, text)
    return problems(file, layer).pipe(Effect.map((lines) => lines.map((l) => l.replaceAll(file, "<file>"))))
  })

/** One venue, no merge, no strategy: only the setting under test can be wrong. */
const isolated = (venue: string, more = "") =>
  `venues:\n  - ${venue}\nmerges: []\nstrategies: { bbo: { enabled: false }, orders: { enabled: false } }\n${more}`
const sim = "{ type: simulated, name: sim, symbols: [BTC-USDT] }"

const aliasBomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
  .concat(["b", "c", "d", "e", "f", "g", "h", "i"].map((k, i) => {
    const prev = "abcdefghi"[i]
    return `${k}: &${k} [${Array.from({ length: 9 }, () => `*${prev}`).join(", ")}]`
  }))
  .join("\n")

/** Values that parse and look plausible but must not start a gateway: each refused with its path. */
const hostileValues: ReadonlyArray<readonly [what: string, text: string, expected: ReadonlyArray<string>, env?: Record<string, string>]> = [
  ["an order quantity of 0", isolated(sim, "strategies: { bbo: { enabled: false }, orders: { symbol: BTC-USDT, quantity: \"0.000\" } }").replace(/strategies: \{ bbo: \{ enabled: false \}, orders: \{ enabled: false \} \}\n/, ""), [
    `strategies.orders.quantity: quantity must be above 0 (got "0.000")`
  ]],
  ["a quantity with 40 digits", isolated(sim, "").replace("orders: { enabled: false }", `orders: { symbol: BTC-USDT, quantity: "${"9".repeat(40)}" }`), [
    `strategies.orders.quantity: quantity must be a decimal string, e.g. "0.001" (at most 12 digits before and after the point)`
  ]],
  ["a status interval of 3e9 ms", isolated(sim, "statusIntervalMs: 3000000000"), [
    "statusIntervalMs: statusIntervalMs must be an integer in 1..3600000 (got 3000000000)"
  ]],
  ["prewarm above a pool's capacity", isolated(sim, "pool: { prewarm: 5000, capacity: { MergedEvent: 1024 } }"), [
    "pool.prewarm: prewarm (5000) is above pool.capacity.MergedEvent (1024): every pool is prewarmed with that many objects"
  ]],
  ["a book depth of 10,000,000", isolated("{ type: simulated, name: sim, symbols: [BTC-USDT], depth: 10000000 }"), [
    "venues[0].depth: depth must be an integer in 1..5000 (got 10000000)"
  ]],
  ["a WebSocket URL that is not a URL", isolated(`{ type: binance, symbols: [BTC-USDT], wsUrl: "not a url" }`), [
    `venues[0].wsUrl: wsUrl must be a ws:// or wss:// URL (got "not a url")`
  ]],
  ["a REST URL on file://", isolated(`{ type: okx, symbols: [BTC-USDT], restUrl: "file:///etc/passwd" }`), [
    `venues[0].restUrl: restUrl must be a http:// or https:// URL (got "file:///etc/passwd")`
  ]],
  ["a backoff that starts above its maximum", isolated("{ type: kraken, symbols: [BTC-USD], backoff: { initialMs: 60000, maxMs: 1000 } }"), [
    "venues[0].backoff: initialMs (60000) must not be above maxMs (1000)"
  ]],
  ["a mailbox of 10,000,000 events", isolated(sim, "mailbox: { marketCapacity: 10000000 }"), [
    "mailbox.marketCapacity: marketCapacity must be an integer in 1..1048576 (got 10000000)"
  ]],
  ["a critical lane bound of 0 and a handler limit of 2 hours", isolated(sim, "mailbox: { criticalCapacity: 0, eventTimeoutMs: 7200000 }"), [
    "mailbox.criticalCapacity: criticalCapacity must be an integer in 1..1048576 (got 0)",
    "mailbox.eventTimeoutMs: eventTimeoutMs must be an integer in 1..3600000 (got 7200000)"
  ]],
  ["a sequence jump window of 0 and a resync after 0", isolated(sim, "dispatcher: { jumpWindow: 0, resyncAfter: 0 }"), [
    "dispatcher.jumpWindow: jumpWindow must be an integer in 1..1000000000 (got 0)",
    "dispatcher.resyncAfter: resyncAfter must be an integer in 1..1000 (got 0)"
  ]],
  ["a latency sampling target of a billion a second", isolated(sim, "dispatcher: { latencySamplesPerSecond: 1000000000 }"), [
    "dispatcher.latencySamplesPerSecond: latencySamplesPerSecond must be an integer in 0..1000000 (got 1000000000)"
  ]],
  ["a paper venue that remembers no closed order", isolated(sim, "paper: { retainClosed: 0 }"), [
    "paper.retainClosed: retainClosed must be an integer in 1..10000000 (got 0)"
  ]],
  ["a port with spaces, from the environment", isolated(sim), [
    `http.port (from MELTICA_HTTP_PORT): expected an integer, digits only (got " 8080 ")`
  ], { MELTICA_HTTP_PORT: " 8080 " }],
  ["a YAML alias bomb", aliasBomb, [
    "(file): too many YAML alias expansions (at most 100; an alias bomb?): Excessive alias count indicates a resource exhaustion attack"
  ]],
  ["credentials in a URL are not repeated in the error", isolated(sim, `bus: { type: nats, url: "http://alice:s3cret@10.0.0.5:4222", role: feed }`), [
    `bus.url: url must be a nats:// (or tls://, ws://, wss://) URL (got "http://***@10.0.0.5:4222")`
  ]]
]

describe("Config: hostile values", () => {
  for (const [what, text, expected, env] of hostileValues) {
    it.effect(`${what}: refused with its path`, () =>
      Effect.gen(function*() {
        const got = yield* problemsOfText(text, env === undefined ? noEnv : withEnv(env))
        assert.deepStrictEqual(got, expected)
      }))
  }

  it.effect("deep nesting: a typed problem, not a stack overflow", () =>
    Effect.gen(function*() {
      const got = yield* problemsOfText(`a: ${"[".repeat(100_000)}${"]".repeat(100_000)}`)
      assert.strictEqual(got.length > 0, true)
      assert.isTrue(got.every((l) => l.startsWith("(file)") || l.startsWith("(line")), got.join("; "))
    }))

  it.effect("a file above 1 MiB is refused before it is read", () =>
    Effect.gen(function*() {
      const got = yield* problemsOfText(`# ${"x".repeat(1_048_576)}\n`)
      assert.deepStrictEqual(got, ["(file): <file> is 1048579 bytes, above the limit of 1048576"])
    }))

  it.effect("credentials in the NATS URL are refused (they belong in bus.auth), and the refusal does not repeat them", () =>
    Effect.gen(function*() {
      const got = yield* problems(undefined, withEnv({
        MELTICA_BUS: "nats",
        MELTICA_NATS_URL: "nats://alice:s3cret@10.0.0.5:4222",
        MELTICA_NATS_ROLE: "feed"
      }))
      assert.deepStrictEqual(got, [
        `bus.url (from MELTICA_NATS_URL): url must not hold credentials: give them in bus.auth, by file or environment variable (got "nats://***@10.0.0.5:4222")`
      ])
    }))

  it.effect("a URL's credentials never reach the summary (start-up log, check-config)", () =>
    Effect.gen(function*() {
      const loaded = yield* Config.load({}).pipe(Effect.provide(noEnv))
      const config = { ...loaded, bus: { _tag: "nats" as const, url: "nats://alice:s3cret@10.0.0.5:4222", role: "feed" as const } }
      const text = Config.summary(config)
      assert.notInclude(text, "s3cret")
      assert.notInclude(text, "alice")
      assert.include(text, "bus: nats nats://***@10.0.0.5:4222, feed process")
    }))

  it("redactUrls hides userinfo of every URL, and nothing else", () => {
    for (const [input, output] of [
      ["nats://alice:s3cret@host:4222", "nats://***@host:4222"],
      ["nats://token@host:4222,nats://bob:pw@other:4222", "nats://***@host:4222,nats://***@other:4222"],
      ["wss://ws.example.com/stream?x=a@b", "wss://ws.example.com/stream?x=a@b"],
      ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
      [`got "tls://u:p@h"`, `got "tls://***@h"`]
    ] as const) assert.strictEqual(Config.redactUrls(input), output)
  })
})

describe("Config", () => {
  for (const [file, expected] of badFiles) {
    it.effect(`${file}: every problem listed by path and reason`, () =>
      Effect.gen(function*() {
        const got = yield* problems(`${dir}/${file}`)
        if (file === "does-not-exist.yaml") {
          assert.strictEqual(got.length, 1)
          assert.isTrue(got[0]!.startsWith(expected[0]!), got[0])
        } else {
          assert.deepStrictEqual(got, expected)
        }
      }))
  }

  it.effect("the message names the file and lists each problem on its own line", () =>
    Effect.gen(function*() {
      const error = yield* Config.load({ file: `${dir}/bad-window.yaml` }).pipe(Effect.flip, Effect.provide(noEnv))
      assert.strictEqual(
        error.message,
        `invalid configuration (${dir}/bad-window.yaml):\n` +
          `  - merges[0].kind: kind must be one of ticker, book_snapshot, trade (got "candles")\n` +
          "  - merges[0].providers: a merge needs at least 2 providers (got 1)\n" +
          "  - merges[0].windowMs: windowMs must be an integer in 1..60000 (got 0)"
      )
    }))

  it.effect("no file: the embedded default (three simulated venues, two ticker merges, production pools)", () =>
    Effect.gen(function*() {
      const config = yield* Config.load({}).pipe(Effect.provide(noEnv))
      assert.deepStrictEqual(config.venues.map((v) => v.name), ["sim-a", "sim-b", "sim-c"])
      assert.deepStrictEqual(config.merges.map((m) => `${m.symbol}/${m.kind}`), ["BTC-USDT/ticker", "ETH-USDT/ticker"])
      assert.strictEqual(config.debug, false)
      assert.strictEqual(config.http.host, "127.0.0.1")
      assert.strictEqual(config.bus._tag, "memory")
    }))

  it.effect("YAML and JSON files load with their values and defaults filled in", () =>
    Effect.gen(function*() {
      const yaml = yield* Config.load({ file: `${dir}/good.yaml` }).pipe(Effect.provide(noEnv))
      assert.deepStrictEqual(yaml.venues.map((v) => v.name), ["sim-a", "sim-b"])
      assert.strictEqual(yaml.pool.capacity.Event, 8192)
      assert.strictEqual(yaml.pool.capacity.MergedEvent, 2048)
      assert.strictEqual(yaml.dispatcher.latenessMs, 20)
      assert.strictEqual(yaml.http.port, 0)
      const json = yield* Config.load({ file: `${dir}/good.json` }).pipe(Effect.provide(noEnv))
      assert.deepStrictEqual(json.venues.map((v) => v.name), ["solo"])
      assert.strictEqual(json.strategies.bbo.enabled, false)
    }))

  it.effect("environment overrides: RECYCLER_DEBUG_MODE, port and bus; --debug wins", () =>
    Effect.gen(function*() {
      const env = withEnv({ RECYCLER_DEBUG_MODE: "true", MELTICA_HTTP_PORT: "9999" })
      const config = yield* Config.load({ file: `${dir}/good.yaml` }).pipe(Effect.provide(env))
      assert.strictEqual(config.debug, true)
      assert.strictEqual(config.http.port, 9999)
      const flagged = yield* Config.load({ debug: true }).pipe(Effect.provide(withEnv({ RECYCLER_DEBUG_MODE: "false" })))
      assert.strictEqual(flagged.debug, true)
    }))

  it.effect("bad environment values are problems too, named by variable, alongside the file's", () =>
    Effect.gen(function*() {
      const got = yield* problems(
        `${dir}/bad-window.yaml`,
        withEnv({ RECYCLER_DEBUG_MODE: "maybe", MELTICA_HTTP_PORT: "80000", MELTICA_BUS: "nats", MELTICA_NATS_URL: "localhost" })
      )
      assert.deepStrictEqual(got, [
        `debug (from RECYCLER_DEBUG_MODE): expected true or false (got "maybe")`,
        `merges[0].kind: kind must be one of ticker, book_snapshot, trade (got "candles")`,
        "merges[0].providers: a merge needs at least 2 providers (got 1)",
        "merges[0].windowMs: windowMs must be an integer in 1..60000 (got 0)",
        "http.port (from MELTICA_HTTP_PORT): port must be an integer in 0..65535 (got 80000)",
        `bus.url (from MELTICA_NATS_URL): url must be a nats:// (or tls://, ws://, wss://) URL (got "localhost")`,
        "bus.role: is missing"
      ])
      const role = yield* problems(
        undefined,
        withEnv({ MELTICA_BUS: "nats", MELTICA_NATS_URL: "nats://127.0.0.1:4222", MELTICA_NATS_ROLE: "leader" })
      )
      assert.deepStrictEqual(role, [`bus.role (from MELTICA_NATS_ROLE): role must be feed, strategy or operator (got "leader")`])
    }))

  it.effect("bus: nats with a url and a role; MELTICA_NATS_ROLE picks the role of one shared file", () =>
    Effect.gen(function*() {
      const strategy = yield* Config.load({ file: `${dir}/nats-strategy-ok.yaml` }).pipe(Effect.provide(noEnv))
      assert.deepStrictEqual(strategy.bus, { _tag: "nats", url: "nats://127.0.0.1:4222", role: "strategy" })
      assert.include(Config.summary(strategy), "bus: nats nats://127.0.0.1:4222, strategy process")
      const feed = yield* Config.load({ file: `${dir}/nats-strategy-ok.yaml` }).pipe(
        Effect.provide(withEnv({ MELTICA_NATS_ROLE: "feed" }))
      )
      assert.deepStrictEqual(feed.bus, { _tag: "nats", url: "nats://127.0.0.1:4222", role: "feed" })
      const fromEnv = yield* Config.load({}).pipe(
        Effect.provide(withEnv({ MELTICA_BUS: "nats", MELTICA_NATS_URL: "nats://10.0.0.5:4222", MELTICA_NATS_ROLE: "strategy" }))
      )
      assert.deepStrictEqual(fromEnv.bus, { _tag: "nats", url: "nats://10.0.0.5:4222", role: "strategy" })
    }))

  it("parseText reports YAML syntax errors without throwing", () => {
    const r = Config.parseText("a: [1, 2", "inline")
    assert.isTrue(Either.isLeft(r))
  })
})

describe("a NATS strategy process without strategies", () => {
  it.effect("its configuration loads (the command line may bring them); run with none from either, it is refused before connecting", () =>
    Effect.gen(function*() {
      const config = yield* Config.load({ file: `${dir}/nats-strategy-without-strategies.yaml` }).pipe(Effect.provide(noEnv))
      const refused = yield* runGateway({ config, strategies: [] }).pipe(Effect.flip)
      assert.instanceOf(refused, InvalidConfig)
      assert.deepStrictEqual(refused.issues.map((i) => `${i.path}: ${i.message}`), [
        "bus.role: a strategy process runs strategies: enable one in the configuration (strategies) or give --strategy"
      ])
    }))
})
