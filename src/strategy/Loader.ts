/**
 * Loading a strategy from a user's file: its default export is the strategy.
 *
 * The file is imported as a module (under `bin/register.mjs`, as `npm start` runs, a
 * TypeScript file imports as it is). A file that does not import, or whose
 * default export is not a strategy, is a `StrategyModuleFailed` naming the
 * file and the cause: reported, and the other strategies go on.
 */
import { basename, isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import { StrategyModuleFailed } from "./Errors.js"
import { define, isStrategy, type Strategy } from "./Strategy.js"

/** The file a module path names: absolute, or relative to `base` (the configuration's directory, or the working one). */
export const resolveModule = (module: string, base: string): string => (isAbsolute(module) ? module : resolve(base, module))

/** The first line of an error, bounded: an import error's message, never its stack or a code frame. */
const firstLine = (e: unknown): string => {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  const line = text.split("\n", 1)[0]!
  return line.length > 300 ? `${line.slice(0, 300)}...` : line
}

/** An object shaped like a strategy (a `start`, `on` or `handle`, an id if any) that was not made with `define`. */
const looksLikeStrategy = (u: unknown): u is Parameters<typeof define>[0] => {
  if (typeof u !== "object" || u === null) return false
  const o = u as Record<string, unknown>
  return (o.id === undefined || typeof o.id === "string") &&
    (typeof o.start === "function" || typeof o.handle === "function" || (typeof o.on === "object" && o.on !== null))
}

/** A strategy without an id is named after its file: `strategies/my-strategy.ts` is `my-strategy`. */
export const idOfFile = (module: string): string => basename(module).replace(/\.[^.]*$/, "") || "strategy"

const named = (strategy: Strategy, module: string): Strategy =>
  strategy.id === "" ? { ...strategy, id: idOfFile(module) } : strategy

export const loadStrategy = (module: string, base: string): Effect.Effect<Strategy, StrategyModuleFailed> =>
  Effect.gen(function*() {
    const file = resolveModule(module, base)
    const imported = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(file).href) as Promise<Record<string, unknown>>,
      catch: (e) => new StrategyModuleFailed({ module, reason: firstLine(e) })
    })
    const candidate = imported.default
    if (isStrategy(candidate)) return named(candidate, module)
    if (looksLikeStrategy(candidate)) return named(define(candidate), module)
    return yield* new StrategyModuleFailed({
      module,
      reason: candidate === undefined
        ? "it has no default export (export default Strategy.define({ id, ... }))"
        : "its default export is not a strategy (export default Strategy.define({ id, ... }))"
    })
  })
