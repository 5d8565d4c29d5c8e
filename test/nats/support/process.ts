/**
 * A child process running a TypeScript script (`node --import tsx`), held by
 * a Scope (killed when it closes). Lines it prints with the `@@ ` prefix are
 * the test protocol; everything else is kept as its log for diagnostics.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Data, type Duration, Effect, Schedule } from "effect"
import { exited } from "./server.js"
import { TS_NODE } from "../../support/tsNode.js"

export class NotYet extends Data.TaggedError("NotYet")<{ readonly what: string; readonly log: string }> {}

const PREFIX = "@@ "

export interface Child {
  readonly lines: Array<string>
  readonly log: () => string
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
  readonly process: ChildProcess
}

export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

export const runScript = (script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const proc = spawn(process.execPath, [...TS_NODE, script], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<string> = []
      let log = ""
      let partial = ""
      proc.stdout!.on("data", (b: Buffer) => {
        partial += b.toString()
        let i: number
        while ((i = partial.indexOf("\n")) >= 0) {
          const line = partial.slice(0, i)
          partial = partial.slice(i + 1)
          if (line.startsWith(PREFIX)) lines.push(line.slice(PREFIX.length))
          else log += line + "\n"
        }
      })
      proc.stderr!.on("data", (b: Buffer) => {
        log += b.toString()
      })
      const child: Child = {
        lines,
        log: () => log.slice(-4_000),
        kill: (signal = "SIGKILL") =>
          Effect.suspend(() => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
            return exited(proc)
          }),
        process: proc
      }
      return child
    }),
    (child) => child.kill("SIGKILL")
  )

/**
 * Waits, polling, until `done()` holds; fails with the child's log after
 * `within`. The default is generous: child processes start slowly on a loaded
 * machine, and a bound exists only so that a broken run ends.
 */
export const waitUntil = (done: () => boolean, what: string, child?: Child, within: Duration.DurationInput = "90 seconds") =>
  Effect.suspend(() => (done() ? Effect.void : Effect.fail(new NotYet({ what, log: child?.log() ?? "" })))).pipe(
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo(within)))
  )
