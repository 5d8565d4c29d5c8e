// The recorder's encoder thread (`Recorder.ts`): encodes Parquet files off the
// event loop. A request is `{ id, columnData, kvMetadata, createdBy }` (see
// `EncodeRequest` in `Format.ts`); the answer is `{ id, bytes }` with the
// file's bytes transferred, or `{ id, error }`. Plain JavaScript: it needs no
// loader, and imports nothing of ours.
import { parquetWriteBuffer } from "hyparquet-writer"
import { parentPort } from "node:worker_threads"

parentPort.on("message", (request) => {
  const { id, kvMetadata, createdBy } = request
  try {
    // a column of one repeated value comes as { fill, length } (`compact` in Recorder.ts)
    const columnData = request.columnData.map((c) =>
      c.data !== undefined ? c : { name: c.name, type: c.type, nullable: c.nullable, data: new Array(c.length).fill(c.fill) }
    )
    const bytes = parquetWriteBuffer({ columnData, kvMetadata, createdBy })
    parentPort.postMessage({ id, bytes }, [bytes])
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) })
  }
})
