/**
 * Reading a recording: the files a selection needs (chosen by path alone:
 * provider, symbol, kind, time range), merged into one stream in `ingest_ts`
 * order (ties: file path order, then row order, so the order is the same on
 * every run).
 *
 * Rules:
 * - Files are opened lazily, when the merge reaches their first timestamp:
 *   memory holds the files that overlap in time, not the recording.
 * - A `.tmp` file (a write a crash interrupted) and a file that fails its
 *   CRC or does not decode are skipped, each with a `CorruptRecording` naming
 *   the file and why (`skipped`); the rest of the recording replays.
 * - Bytes are read synchronously and decoded in memory: no real I/O
 *   interleaves with a replay's fibers (see `VirtualClock.ts`).
 */
import { readFileSync, statSync } from "node:fs"
import { relative, sep } from "node:path"
import type { MarketKind } from "../../schema/Event.js"
import type { Event } from "../Event.js"
import { filesUnder } from "../internal/files.js"
import { CorruptRecording, type DecodedFile, decodeFile, type FileInfo, parseFileName, type RecordedEvent } from "../record/Format.js"

/** Which part of a recording to replay. Times are epoch microseconds, `from` inclusive, `to` exclusive. */
export interface ReplaySelection {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly symbols?: ReadonlyArray<string> | undefined
  readonly providers?: ReadonlyArray<string> | undefined
  readonly kinds?: ReadonlyArray<MarketKind> | undefined
}

export interface RecordingListing {
  readonly files: ReadonlyArray<FileInfo>
  readonly skipped: ReadonlyArray<CorruptRecording>
}


/** The recording files under `dir` that the selection needs, in time order, and the unusable ones. */
export const listRecording = (dir: string, selection: ReplaySelection = {}): RecordingListing => {
  const paths: Array<string> = []
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) {
    return { files: [], skipped: [new CorruptRecording({ file: dir, cause: "no_directory", reason: "no such directory" })] }
  }
  filesUnder(dir, paths)
  paths.sort()
  const files: Array<FileInfo> = []
  const skipped: Array<CorruptRecording> = []
  const want = <A>(list: ReadonlyArray<A> | undefined, x: A) => list === undefined || list.includes(x)
  for (const p of paths) {
    const rel = relative(dir, p)
    if (p.endsWith(".parquet.tmp")) {
      skipped.push(new CorruptRecording({ file: rel, cause: "unfinished_write", reason: "an unfinished write (the recorder stopped while flushing it)" }))
      continue
    }
    if (!p.endsWith(".parquet")) continue
    const info = parseFileName(p, rel.split(sep))
    if (info === undefined) {
      skipped.push(new CorruptRecording({ file: rel, cause: "bad_name", reason: "its name is not <first>-<last>-<n>.<crc32>.parquet under <date>/<provider>/<symbol>/<kind>" }))
      continue
    }
    if (!want(selection.providers, info.provider) || !want(selection.symbols, info.symbol)) continue
    if (!want(selection.kinds as ReadonlyArray<string> | undefined, info.kind)) continue
    if (selection.from !== undefined && info.lastTs < selection.from) continue
    if (selection.to !== undefined && info.firstTs >= selection.to) continue
    files.push(info)
  }
  files.sort((a, b) => a.firstTs - b.firstTs || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { files, skipped }
}

interface Cursor {
  readonly file: DecodedFile
  readonly order: number
  /** The next row to hand out: always one inside the selection's time range. */
  index: number
}

const cursorBefore = (a: Cursor, b: Cursor): boolean => {
  const x = a.file.ingestTs[a.index]
  const y = b.file.ingestTs[b.index]
  return x < y || (x === y && a.order < b.order)
}

/**
 * The merged events of a listing. `needsLoad()` says whether a file must be
 * opened before `next()` can answer (then `load()`); `next()` is synchronous.
 * The selection's providers, symbols and kinds choose files (by path); its
 * time range chooses rows.
 */
export class RecordingReader {
  private readonly heap: Array<Cursor> = []
  private pending = 0
  private readonly from: number
  private readonly to: number
  readonly skipped: Array<CorruptRecording>
  filesRead = 0
  bytesRead = 0

  constructor(private readonly listing: RecordingListing, selection: ReplaySelection = {}) {
    this.skipped = [...listing.skipped]
    this.from = selection.from ?? Number.NEGATIVE_INFINITY
    this.to = selection.to ?? Number.POSITIVE_INFINITY
  }

  needsLoad(): boolean {
    const next = this.listing.files[this.pending]
    if (next === undefined) return false
    const top = this.heap[0]
    return top === undefined || next.firstTs <= top.file.ingestTs[top.index]
  }

  /** Opens every file that starts at or before the merge's next event. */
  async load(): Promise<void> {
    while (this.needsLoad()) {
      const order = this.pending++
      const info = this.listing.files[order]
      try {
        const bytes = readFileSync(info.path)
        this.bytesRead += bytes.byteLength
        const file = await decodeFile(info, bytes)
        this.filesRead++
        const cursor: Cursor = { file, order, index: 0 }
        if (this.settle(cursor)) this.push(cursor)
      } catch (e) {
        this.skipped.push(
          e instanceof CorruptRecording ? e : new CorruptRecording({ file: info.path, cause: "unreadable", reason: e instanceof Error ? e.message : String(e) })
        )
      }
    }
  }

  /** Moves the cursor to its next row inside the time range; false when it has none left. */
  private settle(c: Cursor): boolean {
    const ts = c.file.ingestTs
    while (c.index < ts.length && (ts[c.index] < this.from || ts[c.index] >= this.to)) c.index++
    return c.index < ts.length
  }

  /** The next event in time order; undefined at the end (or when `needsLoad()`). */
  next(): RecordedEvent | undefined {
    const top = this.heap[0]
    if (top === undefined) return undefined
    const e = top.file.event(top.index++)
    this.advance(top)
    return e
  }

  /** The next event's `ingestTs`, without taking it; undefined at the end (or when `needsLoad()`). */
  peekTs(): number | undefined {
    const top = this.heap[0]
    return top === undefined ? undefined : top.file.ingestTs[top.index]
  }

  /** The next event's provider, without taking it (after `peekTs` answered a time). */
  peekProvider(): string {
    return this.heap[0]!.file.info.provider
  }

  /** Takes the next event into `e` (after `peekTs` answered a time). */
  takeInto(e: Event): void {
    const top = this.heap[0]!
    top.file.fill(top.index++, e)
    this.advance(top)
  }

  /** The merge's order after its top cursor moved. */
  private advance(top: Cursor): void {
    if (this.settle(top)) this.down(0)
    else {
      const last = this.heap.pop()!
      if (this.heap.length > 0) {
        this.heap[0] = last
        this.down(0)
      }
    }
  }

  /** Every selected event, in order (tests, small recordings). */
  async readAll(): Promise<Array<RecordedEvent>> {
    const out: Array<RecordedEvent> = []
    for (;;) {
      if (this.needsLoad()) await this.load()
      const e = this.next()
      if (e === undefined) return out
      out.push(e)
    }
  }

  private push(c: Cursor): void {
    const h = this.heap
    h.push(c)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!cursorBefore(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  private down(i: number): void {
    const h = this.heap
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && cursorBefore(h[l], h[m])) m = l
      if (r < h.length && cursorBefore(h[r], h[m])) m = r
      if (m === i) return
      ;[h[i], h[m]] = [h[m], h[i]]
      i = m
    }
  }
}

/** A reader over `dir` for a selection. */
export const openRecording = (dir: string, selection: ReplaySelection = {}): RecordingReader =>
  new RecordingReader(listRecording(dir, selection), selection)
