/**
 * The direction of dependencies (README, Architecture): `layers/` composes
 * `src/` and nothing in `src/` imports it; the NATS implementations in
 * `src/nats/` import the core, and the core reaches them only through tags;
 * `schema/` (the wire contracts) imports neither. Read from the sources'
 * import statements.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")

const sources = (dir: string): Array<string> =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : []
  )

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)"(\.{1,2}\/[^"]+)"/gm

/** The files of this repository that `file` imports, as paths from the root (`src/nats/Market.ts`). */
const importsOf = (file: string): Array<string> => {
  const text = readFileSync(join(root, file), "utf8")
  return [...text.matchAll(IMPORT)].map((m) =>
    relative(root, resolve(root, dirname(file), m[1]!)).replace(/\.js$/, ".ts")
  )
}

/** Every import of a file under `from` (but not `except`) that lands under `to`, as "file -> import". */
const crossings = (from: string, to: string, except: (file: string) => boolean = () => false) =>
  sources(from).filter((f) => !except(f)).flatMap((f) =>
    importsOf(f).filter((i) => i.startsWith(to)).map((i) => `${f} -> ${i}`)
  )

const natsOutsideNats = (f: string) => f.startsWith("src/nats/")

describe("architecture", () => {
  it("the import reader sees relative imports, static and dynamic", () => {
    const found = [...`import { a } from "../x.js"\nimport type { B } from "./y.js"\nconst m = await import("../z.js")\nimport "./side.js"`
      .matchAll(IMPORT)].map((m) => m[1])
    assert.deepStrictEqual(found, ["../x.js", "./y.js", "../z.js", "./side.js"])
    assert.include(importsOf("src/nats/NatsDataBus.ts"), "src/DataBus.ts")
  })

  it("nothing in src/ imports layers/", () => {
    assert.deepStrictEqual(crossings("src", "layers/"), [])
  })

  it("the core reaches the NATS implementations only through tags", () => {
    assert.deepStrictEqual(crossings("src", "src/nats/", natsOutsideNats), [])
  })

  it("the wire contracts import no runtime code", () => {
    assert.deepStrictEqual(crossings("schema", "src/"), [])
    assert.deepStrictEqual(crossings("schema", "layers/"), [])
  })
})
