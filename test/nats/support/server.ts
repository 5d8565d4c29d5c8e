/**
 * A real `nats-server` for tests: JetStream on 127.0.0.1, a free port and a
 * temporary store directory, held by a Scope (stopped, and its directory
 * removed, when the scope closes). `restart` kills it and starts it again on
 * the same port and store, as a crash would.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Data, Effect, Schedule } from "effect"

class ServerNotReady extends Data.TaggedError("ServerNotReady")<{ readonly log: string }> {}

const freePort = Effect.async<number>((resume) => {
  const srv = createServer()
  srv.listen(0, "127.0.0.1", () => {
    const addr = srv.address()
    const port = typeof addr === "object" && addr !== null ? addr.port : 0
    srv.close(() => resume(Effect.succeed(port)))
  })
})

/** Resolves when the process has exited (at once if it already has). */
export const exited = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

export interface NatsServer {
  readonly url: string
  readonly port: number
  readonly dir: string
  /** Kills the server (SIGKILL) and starts it again on the same port and store. */
  readonly restart: Effect.Effect<void, ServerNotReady>
  readonly stop: Effect.Effect<void>
  readonly start: Effect.Effect<void, ServerNotReady>
}

export interface ServerOptions {
  /** Extra arguments, e.g. `["-c", "server.conf"]` (the port, address and store flags above still apply). */
  readonly args?: ReadonlyArray<string>
  /** Extra environment (a configuration's `$VARIABLES`). */
  readonly env?: Readonly<Record<string, string>>
}

export const natsServer = Effect.suspend(() => natsServerWith({}))

export const natsServerWith = (options: ServerOptions) => Effect.gen(function*() {
  const port = yield* freePort
  const dir = mkdtempSync(join(tmpdir(), "meltica-nats-"))
  let child: ChildProcess | undefined
  let log = ""

  const start = Effect.suspend(() => {
    log = ""
    const c = spawn("nats-server", [...(options.args ?? []), "-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env }
    })
    child = c
    const collect = (b: Buffer) => {
      log += b.toString()
    }
    c.stdout!.on("data", collect)
    c.stderr!.on("data", collect)
    return Effect.suspend(() =>
      log.includes("Server is ready") ? Effect.void : Effect.fail(new ServerNotReady({ log }))
    ).pipe(Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))))
  })

  const kill = (signal: NodeJS.Signals) =>
    Effect.suspend(() => {
      const c = child
      child = undefined
      if (c === undefined) return Effect.void
      c.kill(signal)
      return exited(c)
    })

  const stop = kill("SIGTERM")
  yield* Effect.acquireRelease(start, () =>
    Effect.zipRight(stop, Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    restart: Effect.zipRight(kill("SIGKILL"), start),
    stop,
    start
  } satisfies NatsServer
})
