/**
 * The debug application layer: the in-memory default with the Pool in debug
 * mode. Every holder gets a view that the recycle revokes (a read after the
 * recycle fails at once with `UseAfterRecycle`, naming the field), a double
 * put carries both stacks, and the leak report that `main.ts` prints at
 * shutdown lists every object still outstanding with the stack that acquired
 * it. Slower: for finding ownership bugs, not for production.
 *
 * `npm start -- --debug`, `debug: true` in the configuration, or
 * `RECYCLER_DEBUG_MODE=true` select it.
 */
import { Effect, Layer } from "effect"
import { layerMemory, type MemoryOptions } from "./Memory.js"

export const layerDebug = (options: MemoryOptions) =>
  layerMemory({ ...options, pool: { ...options.pool, debug: true } }).pipe(
    Layer.tap(() =>
      Effect.logWarning("pool debug mode: poisoning views, double-put stacks, leak report with acquire stacks")
    )
  )
