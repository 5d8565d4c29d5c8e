// The first module a strategy worker runs: under tsx (as `npm start` and the
// tests run) it registers tsx's loader in the worker, whose modules do not
// inherit the main thread's, then imports the worker's entry module.
import { workerData } from "node:worker_threads"

if (workerData.entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api")
  register()
}
await import(workerData.entry)
