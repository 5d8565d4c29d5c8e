/**
 * kill -9 during recording: a child process records two busy simulated
 * venues with a 100 ms flush interval; once it has written a few files it is
 * killed with SIGKILL. Every complete file it wrote replays; at most the
 * last flush interval is lost, and nothing half-written is taken for data.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { listRecording, openRecording } from "../../src/replay/Reader.js"
import { tempDir } from "./support.js"
import { TS_NODE } from "../support/tsNode.js"

describe("recorder crash", () => {
  it.scoped("kill -9 while recording: what was flushed replays, complete; a file caught mid-write is skipped with its reason", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const written = yield* Effect.async<number, Error>((resume) => {
        const child = spawn(process.execPath, [...TS_NODE, join(import.meta.dirname, "recordChild.ts"), dir], {
          stdio: ["ignore", "pipe", "inherit"]
        })
        let text = ""
        let killedAt: number | undefined
        child.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString()
          const lines = text.split("\n").filter((l) => l.startsWith("written "))
          const last = lines.length === 0 ? 0 : Number(lines[lines.length - 1].slice(8))
          // after the fifth flush that wrote something: kill it mid-run
          if (killedAt === undefined && lines.length >= 5) {
            killedAt = last
            child.kill("SIGKILL")
          }
        })
        child.on("exit", (code, signal) => {
          if (killedAt === undefined) resume(Effect.fail(new Error(`recorder exited before the kill (${code} ${signal})`)))
          else if (signal !== "SIGKILL") resume(Effect.fail(new Error(`recorder exited by ${signal}, not SIGKILL`)))
          else resume(Effect.succeed(killedAt))
        })
        return Effect.sync(() => child.kill("SIGKILL"))
      })
      const listing = listRecording(dir)
      const reader = openRecording(dir)
      const events = yield* Effect.promise(() => reader.readAll())
      // every file that was reported written replays in full (more may have been flushed before the kill landed)
      assert.isAtLeast(events.length, written)
      assert.isAbove(written, 0)
      // only .tmp files may be skipped: a complete file never fails its check
      for (const s of reader.skipped) assert.include(s.reason, "unfinished write")
      assert.strictEqual(reader.skipped.length, listing.skipped.length)
      for (let i = 1; i < events.length; i++) assert.isTrue(events[i].ingestTs >= events[i - 1].ingestTs)
    }), 60_000)
})
