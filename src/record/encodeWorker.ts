/**
 * The recorder's encoder thread (`Recorder.ts`): turns the recorder's frames
 * into Parquet files off the event loop (`encodeFrames` in `Format.ts`). A
 * request is `{ id, frames }` (the frames' buffers transferred); the answer
 * is `{ id, result }` with the files' bytes transferred, or `{ id, error }`.
 */
import { parentPort } from "node:worker_threads"
import { encodeFrames } from "./Format.js"

const port = parentPort!
port.on("message", (request: { readonly id: number; readonly frames: ReadonlyArray<Uint8Array> }) => {
  try {
    const result = encodeFrames(request.frames)
    port.postMessage({ id: request.id, result }, result.files.map((f) => f.bytes.buffer as ArrayBuffer))
  } catch (e) {
    port.postMessage({ id: request.id, error: e instanceof Error ? e.message : String(e) })
  }
})
