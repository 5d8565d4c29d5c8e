// The first module a strategy worker runs: when the entry module is
// TypeScript (as `npm start` and the tests run it) it registers the project's
// TypeScript loader in the worker, whose modules do not inherit the main
// thread's hooks, then imports the worker's entry module.
import { workerData } from "node:worker_threads"

if (workerData.entry.endsWith(".ts")) await import(new URL("../../bin/register.mjs", import.meta.url).href)
await import(workerData.entry)
