/**
 * Runs the TypeScript sources directly: `node --import ./bin/register.mjs bin/meltica.ts`
 * (what `npm start`, the benchmarks and the strategy workers do). Registers
 * `loader.mjs` and turns on source maps for stack traces.
 */
import { register } from "node:module"

process.setSourceMapsEnabled(true)
register("./loader.mjs", import.meta.url)
