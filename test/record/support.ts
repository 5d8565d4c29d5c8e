/** Test support for recordings: a temporary directory for the life of the scope. */
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "meltica-rec-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)
