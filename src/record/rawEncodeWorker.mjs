// The raw-frame recorder's encoder thread (`RawFrames.ts`): encodes Parquet
// files off the event loop. A request is `{ id, columnData, kvMetadata,
// createdBy }` (what `parquetWriteBuffer` takes); the answer is `{ id, bytes }`
// with the file's bytes transferred, or `{ id, error }`. Plain JavaScript: it
// needs no loader, and imports nothing of ours.
import { parquetWriteBuffer } from "hyparquet-writer"
import { parentPort } from "node:worker_threads"

parentPort.on("message", (request) => {
  const { columnData, createdBy, id, kvMetadata } = request
  try {
    const bytes = parquetWriteBuffer({ columnData, kvMetadata, createdBy })
    parentPort.postMessage({ id, bytes }, [bytes])
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) })
  }
})
