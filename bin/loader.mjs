/**
 * Module hooks that run TypeScript files: each `.ts`/`.mts` file outside
 * `node_modules` is transpiled by esbuild (types stripped, nothing bundled,
 * an inline source map), and a relative `./x.js` import finds `./x.ts` when
 * no `./x.js` exists (the sources import each other by their `.js` names).
 *
 * Why not tsx: tsx transpiles with esbuild's `keepNames`, which wraps every
 * function created under an inferred name in a `__name(fn, "name")` call
 * (an `Object.defineProperty` per closure created), on the hot path as
 * anywhere else: the replay benchmark ran 19% slower under it. esbuild
 * does not rename anything here, so names are kept without it.
 */
import { transform } from "esbuild"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"

const TS = /\.[cm]?ts$/
const JS_NAME = /\.(m?)js$/

/** @type {import("node:module").ResolveHook} */
export const resolve = async (specifier, context, next) => {
  try {
    return await next(specifier, context)
  } catch (error) {
    const relative = specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("file:")
    if (!relative || error?.code !== "ERR_MODULE_NOT_FOUND" || !JS_NAME.test(specifier)) throw error
    try {
      return await next(specifier.replace(JS_NAME, ".$1ts"), context)
    } catch {
      throw error
    }
  }
}

/** @type {import("node:module").LoadHook} */
export const load = async (url, context, next) => {
  if (!url.startsWith("file:") || !TS.test(url) || url.includes("/node_modules/")) return next(url, context)
  const file = fileURLToPath(url)
  const source = await readFile(file, "utf8")
  const { code } = await transform(source, {
    loader: "ts",
    format: "esm",
    target: `node${process.versions.node}`,
    sourcemap: "inline",
    sourcefile: file
  })
  return { format: "module", source: code, shortCircuit: true }
}
