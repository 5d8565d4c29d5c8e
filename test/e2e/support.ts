/**
 * End-to-end support: the real entry point as a child process, and polling in
 * real time (real processes run on the real clock).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Data, Deferred, Effect, Schedule } from "effect"
import { TS_NODE } from "../support/tsNode.js"

export class NotYet extends Data.TaggedError("NotYet")<{ readonly what: string }> {}

export interface GatewayProcess {
  readonly name: string
  readonly process: ChildProcess
  /** Its JSON log lines. */
  readonly lines: Array<Record<string, unknown>>
  /** Everything it printed, line by line. */
  readonly raw: Array<string>
  readonly exited: Deferred.Deferred<number | null>
}

/**
 * `bin/meltica.ts --config <file> [extra...]` as a child process (or through `npm start`, as a user runs it),
 * collecting its log lines; killed when the scope closes.
 */
export const startGateway = (name: string, file: string, via: "node" | "npm" = "node", extra: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const exited = yield* Deferred.make<number | null>()
      const [command, args] = via === "npm"
        ? ["npm", ["start", "--silent", "--", "--config", file, ...extra]] as const
        : [process.execPath, [...TS_NODE, "bin/meltica.ts", "--config", file, ...extra]] as const
      const child = spawn(command, args, {
        cwd: process.cwd(),
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<Record<string, unknown>> = []
      const raw: Array<string> = []
      let buffer = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString()
        let i: number
        while ((i = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, i)
          buffer = buffer.slice(i + 1)
          raw.push(line)
          try {
            lines.push(JSON.parse(line) as Record<string, unknown>)
          } catch {
            // not a log line
          }
        }
      })
      child.stderr!.on("data", (chunk: Buffer) => raw.push(chunk.toString()))
      child.on("exit", (code) => Deferred.unsafeDone(exited, Effect.succeed(code)))
      return { name, process: child, lines, raw, exited } satisfies GatewayProcess
    }),
    (g) => Effect.sync(() => g.process.exitCode === null && g.process.signalCode === null && g.process.kill("SIGKILL"))
  )

/** `bin/meltica.ts <args>` to completion: its exit code and what it printed on each stream. */
export const runMain = (args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = spawn(process.execPath, [...TS_NODE, "bin/meltica.ts", ...args], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  })

/**
 * Polls until `f` gives a value, at most about `seconds`; when it never does,
 * shows the tail of `g`'s output.
 */
export const until = <A>(what: string, seconds: number, f: () => Promise<A | undefined>, g?: GatewayProcess) =>
  Effect.tryPromise({ try: f, catch: () => new NotYet({ what }) }).pipe(
    Effect.flatMap((a) => (a === undefined ? Effect.fail(new NotYet({ what })) : Effect.succeed(a))),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(seconds * 10)))),
    Effect.tapError(() =>
      Effect.sync(() => g !== undefined && console.error(`${g.name}:\n${g.raw.join("\n").slice(-3_000)}`))
    )
  )

/** The operator endpoints' URL a gateway logs once they listen (`http_url`), polled for up to `seconds`. */
export const endpointsUrl = (g: GatewayProcess, seconds: number) =>
  until(`${g.name}: the endpoints' address in the log`, seconds, async () =>
    (g.lines.find((l) => (l.annotations as Record<string, unknown> | undefined)?.http_url !== undefined)
      ?.annotations as { http_url: string } | undefined)?.http_url, g)
