/**
 * How a test starts a TypeScript program in a child process, the way
 * `npm start` does: `spawn(process.execPath, [...TS_NODE, "bin/meltica.ts", ...])`.
 */
import { fileURLToPath } from "node:url"

export const TS_NODE: ReadonlyArray<string> = ["--import", fileURLToPath(new URL("../../bin/register.mjs", import.meta.url))]
