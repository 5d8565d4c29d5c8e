/**
 * A nats-server configuration with one user per role and the least each role
 * needs, so that identity is what the server enforces:
 *
 * | role | publishes | subscribes |
 * |---|---|---|
 * | feed | market data `md.>`, critical events `critical.>`, heartbeats `feed.heartbeat.>`, the routing version `feed.routing`; manages the streams and the Control Plane's durable consumer; the paper venue's key-value bucket and the Control Plane's lease (`meltica_control`) | `feed.routing`, its own inbox |
 * | strategy | commands on `control.commands.<each of its consumer ids>` only; its consumers' durable consumers on `critical.<id>` (create, read, ack) | market data, heartbeats, its own inbox |
 * | operator | commands on `control.operator.<its id>` (routing: stage, flip); its own durable consumer on `critical.<id>` | its own inbox |
 *
 * No one but the feed may publish market data, heartbeats or critical events;
 * no strategy may publish as another or read another's critical stream; only
 * the operator may send routing commands (the feed refuses them from a
 * strategy subject as well). Replies go to `_INBOX.<user>.>`, which only that
 * user may read (the client's `inboxPrefix`, see `inboxPrefixOf`).
 *
 * Passwords are not in the file: each is a variable (`$MELTICA_NATS_<USER>_PASSWORD`)
 * that nats-server reads from its environment. A user may have an NKey
 * (public key) instead.
 */
import { inboxPrefixOf } from "./Connection.js"
import {
  COMMANDS_DURABLE,
  COMMANDS_STREAM,
  commandSubject,
  CONTROL_SUBJECTS,
  CRITICAL_PREFIX,
  CRITICAL_STREAM,
  criticalDurable,
  criticalSubject,
  HEARTBEAT_PREFIX,
  HEARTBEAT_SUBJECTS,
  ROUTING_SUBJECT,
  MARKET_PREFIX,
  operatorSubject
} from "./Subjects.js"

/** The key-value bucket in which the feed keeps the paper venue's open orders. */
export const PAPER_BUCKET = "meltica_paper"

/** The key-value bucket holding the Control Plane's lease (`ControlPlaneLease.ts`). */
export const CONTROL_BUCKET = "meltica_control"

/** How a user authenticates: a password from nats-server's environment, or an NKey. */
export type UserAuth = { readonly _tag: "password" } | { readonly _tag: "nkey"; readonly publicKey: string }

export interface FeedUser {
  readonly user: string
  readonly auth?: UserAuth
}

export interface StrategyUser {
  readonly user: string
  /** The consumer ids (strategies) this user's process runs. */
  readonly consumers: ReadonlyArray<string>
  readonly auth?: UserAuth
}

export interface OperatorUser {
  readonly user: string
  /** The consumer id the operator's commands name (replies come back on `critical.<id>`). */
  readonly id: string
  readonly auth?: UserAuth
}

export interface Roles {
  readonly feeds: ReadonlyArray<FeedUser>
  readonly strategies: ReadonlyArray<StrategyUser>
  readonly operators: ReadonlyArray<OperatorUser>
}

export interface Permissions {
  readonly publish: ReadonlyArray<string>
  readonly subscribe: ReadonlyArray<string>
}

const API = "$JS.API"

/** What reading one consumer's critical events takes: its durable consumer, and nothing of anyone else's. */
const criticalReader = (consumerId: string): ReadonlyArray<string> => {
  const durable = criticalDurable(consumerId)
  return [
    `${API}.CONSUMER.CREATE.${CRITICAL_STREAM}.${durable}.${criticalSubject(consumerId)}`,
    `${API}.CONSUMER.INFO.${CRITICAL_STREAM}.${durable}`,
    `${API}.CONSUMER.MSG.NEXT.${CRITICAL_STREAM}.${durable}`,
    `$JS.ACK.${CRITICAL_STREAM}.${durable}.>`
  ]
}

const streamInfo = [`${API}.STREAM.INFO.${CRITICAL_STREAM}`, `${API}.STREAM.INFO.${COMMANDS_STREAM}`]

const inbox = (user: string): string => `${inboxPrefixOf({ user })}.>`

const feedPermissions = (user: string): Permissions => {
  // the paper venue's bucket and the Control Plane's lease
  const buckets = [PAPER_BUCKET, CONTROL_BUCKET]
  const kvs = buckets.map((b) => `KV_${b}`)
  return {
    publish: [
      `${MARKET_PREFIX}.>`,
      `${CRITICAL_PREFIX}.>`,
      `${HEARTBEAT_PREFIX}.>`,
      ROUTING_SUBJECT,
      `${API}.INFO`,
      ...[CRITICAL_STREAM, COMMANDS_STREAM, ...kvs].map((s) => `${API}.STREAM.*.${s}`),
      ...kvs.flatMap((kv) => [`${API}.STREAM.MSG.GET.${kv}`, `${API}.DIRECT.GET.${kv}.>`]),
      `${API}.CONSUMER.*.${COMMANDS_STREAM}.${COMMANDS_DURABLE}`,
      `${API}.CONSUMER.*.${COMMANDS_STREAM}.${COMMANDS_DURABLE}.>`,
      `${API}.CONSUMER.MSG.NEXT.${COMMANDS_STREAM}.${COMMANDS_DURABLE}`,
      `$JS.ACK.${COMMANDS_STREAM}.${COMMANDS_DURABLE}.>`,
      ...kvs.flatMap((kv) => [`${API}.CONSUMER.*.${kv}`, `${API}.CONSUMER.*.${kv}.>`, `$JS.FC.${kv}.>`]),
      ...buckets.map((b) => `$KV.${b}.>`)
    ],
    // a market-data-only feed follows the Control Plane feed's routing version
    subscribe: [ROUTING_SUBJECT, inbox(user)]
  }
}

const strategyPermissions = (user: string, consumers: ReadonlyArray<string>): Permissions => ({
  publish: [...consumers.map(commandSubject), ...streamInfo, ...consumers.flatMap(criticalReader)],
  subscribe: [`${MARKET_PREFIX}.>`, HEARTBEAT_SUBJECTS, inbox(user)]
})

const operatorPermissions = (user: string, id: string): Permissions => ({
  publish: [operatorSubject(id), ...streamInfo, ...criticalReader(id)],
  subscribe: [inbox(user)]
})

/** The environment variable from which nats-server reads a user's password. */
export const passwordVariable = (user: string): string =>
  `MELTICA_NATS_${user.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_PASSWORD`

const quote = (s: string): string => JSON.stringify(s)
const list = (xs: ReadonlyArray<string>, indent: string): string =>
  `[\n${xs.map((x) => `${indent}  ${quote(x)}`).join(",\n")}\n${indent}]`

const userBlock = (user: string, auth: UserAuth | undefined, p: Permissions, comment: string): string => {
  const credential = auth?._tag === "nkey" ? `nkey: ${quote(auth.publicKey)}` : `user: ${quote(user)}, password: $${passwordVariable(user)}`
  return [
    `    # ${comment}`,
    `    {`,
    `      ${credential}`,
    `      permissions: {`,
    `        publish: { allow: ${list(p.publish, "        ")} }`,
    `        subscribe: { allow: ${list(p.subscribe, "        ")} }`,
    `      }`,
    `    }`
  ].join("\n")
}

/**
 * The roles of one deployment: a feed user `feed`, one strategy user
 * `strategies` running the given consumers, and an operator `operator`
 * (commands as consumer `operator`).
 */
export const deploymentRoles = (consumers: ReadonlyArray<string>): Roles => ({
  feeds: [{ user: "feed" }],
  strategies: consumers.length === 0 ? [] : [{ user: "strategies", consumers }],
  operators: [{ user: "operator", id: "operator" }]
})

export interface ServerOptions {
  readonly host?: string
  readonly port?: number
  /** JetStream's store directory (default: the server's, or its `-sd` flag). */
  readonly storeDir?: string
}

/** The server configuration for `roles`, as nats-server reads it. */
export const serverConfig = (roles: Roles, options: ServerOptions = {}): string => {
  const users = [
    ...roles.feeds.map((f) => userBlock(f.user, f.auth, feedPermissions(f.user), `feed ${f.user}`)),
    ...roles.strategies.map((s) =>
      userBlock(s.user, s.auth, strategyPermissions(s.user, s.consumers), `strategy ${s.user}: ${s.consumers.join(", ")}`)
    ),
    ...roles.operators.map((o) => userBlock(o.user, o.auth, operatorPermissions(o.user, o.id), `operator ${o.user}: ${o.id}`))
  ]
  return [
    "# Meltica: nats-server configuration with one user per role and least privilege.",
    "# Generated by `meltica nats-config`; see the Security section of the README.",
    "# Passwords are not here: nats-server reads each $MELTICA_NATS_<USER>_PASSWORD from its environment.",
    `# Commands are taken from ${CONTROL_SUBJECTS}: the subject names the sender, the feed refuses a payload naming another.`,
    `listen: ${quote(`${options.host ?? "127.0.0.1"}:${options.port ?? 4222}`)}`,
    options.storeDir === undefined ? "jetstream: enabled" : `jetstream: { store_dir: ${quote(options.storeDir)} }`,
    "authorization: {",
    "  users: [",
    users.join(",\n"),
    "  ]",
    "}",
    ""
  ].join("\n")
}
