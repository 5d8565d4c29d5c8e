/**
 * Every TypeScript block of README.md compiles, as a user's file would.
 *
 * - A block fenced ```ts or ```typescript is type-checked with the compiler
 *   API under the project's tsconfig options. ```ts-fragment marks a block
 *   that is deliberately not a whole file; it is skipped (and only it).
 * - Where a block is: a block whose first line is a comment naming a path
 *   (`// examples/tutorial/spreadWatcher.ts`, `// my-strategy.ts`) is checked
 *   as that file, relative to the repository root; any other block as a file
 *   at the repository root. Imports resolve from there exactly as for a user's
 *   file (`./src/strategy/index.js` from the root, packages from the
 *   repository's node_modules). The blocks are served to the compiler from
 *   memory at those paths, so nothing is written into the working tree.
 * - The tutorial's strategy and test are real files (the test runs in the
 *   suite): each has exactly one block, which names it and must equal it
 *   (`MIRRORED`). A file of the same name on disk is shadowed by its block,
 *   so a reader's own `my-strategy.ts` does not disturb the check.
 *
 * A failure names the README line and the diagnostic.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const ROOT = path.resolve(import.meta.dirname, "..")

/** Blocks that must be in the README, each equal to its file. */
const MIRRORED = ["examples/tutorial/spreadWatcher.ts", "test/tutorial.test.ts"]

interface Block {
  /** The document it comes from, for messages. */
  readonly doc: string
  /** 1-based line of the block's first line of code (after the fence). */
  readonly line: number
  readonly lang: string
  readonly code: string
  /** The path the block names on its first line, relative to the root. */
  readonly names: string | undefined
}

const FENCE_OPEN = /^```([\w-]*)\s*$/
const FENCE_CLOSE = /^```\s*$/
const NAMES_FILE = /^\/\/ ((?:[\w.-]+\/)*[\w.-]+\.tsx?)\s*$/

export const extractBlocks = (doc: string, markdown: string): Array<Block> => {
  const lines = markdown.split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i]!)
    if (open === null) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !FENCE_CLOSE.test(lines[end]!)) end++
    if (end === lines.length) throw new Error(`${doc}:${i + 1}: a code fence that is never closed`)
    const code = lines.slice(start, end).join("\n") + "\n"
    const first = NAMES_FILE.exec(lines[start] ?? "")
    blocks.push({ doc, line: start + 1, lang: open[1]!, code, names: first?.[1] })
    i = end
  }
  return blocks
}

const isChecked = (b: Block) => b.lang === "ts" || b.lang === "typescript"

/** Where the compiler sees a block: the file it names, or a file of its own at the root. */
const placeOf = (b: Block) =>
  path.join(ROOT, b.names ?? `${b.doc.replace(/[^\w]/g, "_")}.L${b.line}.ts`)

const compilerOptions = (): ts.CompilerOptions => {
  const file = path.join(ROOT, "tsconfig.json")
  const read = ts.readConfigFile(file, ts.sys.readFile)
  if (read.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"))
  return ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, file).options
}

/** Each block that names a mirrored file must equal it. */
export const mirrorProblems = (blocks: ReadonlyArray<Block>): Array<string> => {
  const problems: Array<string> = []
  for (const b of blocks.filter(isChecked)) {
    if (b.names === undefined || !MIRRORED.includes(b.names)) continue
    const file = fs.readFileSync(path.join(ROOT, b.names), "utf8")
    if (file === b.code) continue
    const a = b.code.split("\n")
    const f = file.split("\n")
    let k = 0
    while (k < a.length && a[k] === f[k]) k++
    problems.push(
      `${b.doc}:${b.line + k}: the block differs from ${b.names} at its line ${k + 1}: ` +
        `${JSON.stringify(a[k] ?? "<end>")} in the README, ${JSON.stringify(f[k] ?? "<end>")} in the file`
    )
  }
  return problems
}

/**
 * Type-checks the blocks in one program, each at its place (served from
 * memory, in front of any file there). Returns one line per problem.
 */
export const compileProblems = (blocks: ReadonlyArray<Block>): Array<string> => {
  const problems: Array<string> = []
  const byPlace = new Map<string, Block>()
  for (const b of blocks.filter(isChecked)) {
    const place = placeOf(b)
    const other = byPlace.get(place)
    if (other !== undefined) {
      problems.push(`${b.doc}:${b.line}: a second block at ${path.relative(ROOT, place)} (the first: ${other.doc}:${other.line})`)
      continue
    }
    byPlace.set(place, b)
  }
  const options = compilerOptions()
  const host = ts.createCompilerHost(options, true)
  const { fileExists, getSourceFile, readFile } = host
  host.fileExists = (f) => byPlace.has(path.resolve(f)) || fileExists.call(host, f)
  host.readFile = (f) => byPlace.get(path.resolve(f))?.code ?? readFile.call(host, f)
  host.getSourceFile = (f, language, onError, shouldCreate) => {
    const block = byPlace.get(path.resolve(f))
    return block !== undefined
      ? ts.createSourceFile(f, block.code, language, true)
      : getSourceFile.call(host, f, language, onError, shouldCreate)
  }
  const program = ts.createProgram({ rootNames: [...byPlace.keys()], options, host })
  for (const [place, b] of byPlace) {
    const source = program.getSourceFile(place)
    if (source === undefined) {
      problems.push(`${b.doc}:${b.line}: not compiled`)
      continue
    }
    for (const d of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
      const at = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line
      problems.push(`${b.doc}:${b.line + at}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`)
    }
  }
  return problems
}

describe("README", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8")
  const blocks = extractBlocks("README.md", readme)

  // hostile cases, checked in the same program as the README (one compile)
  const sample = [
    "```ts",
    "const n: number = \"one\"", // line 2: a type error
    "export default n",
    "```",
    "```ts-fragment",
    "ctx.submit(order) // not a whole file: skipped",
    "```",
    "```ts",
    "// examples/tutorial/spreadWatcher.ts",
    "export {}", // line 10: not the file's line 2
    "```",
    "```typescript",
    "import { nothing } from \"./src/strategy/index.js\"", // line 13: resolved from the root, no such export
    "export default nothing",
    "```"
  ].join("\n")

  // one program for the README's blocks and the samples' (a compile takes seconds)
  let compiled: Array<string> | undefined
  const problemsOf = (doc: string) =>
    // (the sample's block naming a mirrored file is only compared, not compiled: its place is the README's block's)
    (compiled ??= compileProblems([...blocks, ...extractBlocks("sample.md", sample).filter((b) => b.names === undefined)]))
      .filter((p) =>
      p.startsWith(`${doc}:`)
    )

  it("type-checks every ts block where a user's file would be, and holds each mirrored file's block to it", () => {
    const own = blocks.filter(isChecked)
    assert.isAbove(own.length, 0)
    for (const file of MIRRORED) {
      assert.strictEqual(own.filter((b) => b.names === file).length, 1, `README.md has no block (or several) of ${file}`)
    }
    const problems = [...mirrorProblems(own), ...problemsOf("README.md")]
    assert.deepStrictEqual(problems, [], problems.join("\n"))
  })

  it("a broken block fails with its README line and the diagnostic; a fragment is skipped", () => {
    const sampleBlocks = extractBlocks("sample.md", sample)
    assert.deepStrictEqual(sampleBlocks.map((b) => b.lang), ["ts", "ts-fragment", "ts", "typescript"])
    const differs = mirrorProblems(sampleBlocks)
    assert.strictEqual(differs.length, 1, differs.join("\n"))
    assert.match(differs[0]!, /^sample\.md:10: the block differs from examples\/tutorial\/spreadWatcher\.ts at its line 2/)
    const problems = problemsOf("sample.md")
    assert.strictEqual(problems.length, 2, problems.join("\n"))
    assert.match(problems[0]!, /^sample\.md:2: TS2322 Type 'string' is not assignable to type 'number'/)
    assert.match(problems[1]!, /^sample\.md:13: TS2305 .*has no exported member 'nothing'/)
    assert.throws(() => extractBlocks("open.md", "```ts\nconst x = 1\n"), /open\.md:1: a code fence that is never closed/)
  })
})
