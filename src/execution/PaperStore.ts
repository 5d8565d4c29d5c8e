/**
 * Where the paper venue keeps its open orders across restarts, so that a
 * resting order survives a feed restart: after the restart it still rests,
 * fills, and can be queried and canceled, and it gets its final report.
 *
 * - `layerNone`: nothing kept (the embedded in-memory gateway by default: its
 *   strategies restart with it, so a previous run's orders have no owner).
 * - `layerFile(path)`: a JSON file, rewritten whole (to a temporary file, then
 *   renamed) after every change of an open order; for `bus: memory` with
 *   `paper.stateFile` set.
 * - `PaperStoreKv.layer` (`src/nats/PaperStoreKv.ts`): the JetStream
 *   key-value bucket `meltica_paper`; the NATS feed's default, so a feed
 *   restarted on the same server finds its orders.
 *
 * Only open orders are kept (`new`, `partially_filled`): an order leaves the
 * store with its final report. The venue saves before it hands the reports of
 * a change to the sink, so a report is never ahead of what a restart restores.
 */
import { Context, Data, Effect, Either, Layer, Schema } from "effect"
import { readFileSync, renameSync, writeFileSync } from "node:fs"

/** An open order as kept: every figure a decimal string, as on the wire. */
export class StoredOrder extends Schema.Class<StoredOrder>("StoredOrder")({
  orderId: Schema.String,
  clientOrderId: Schema.String,
  consumerId: Schema.String,
  symbol: Schema.String,
  /** The venue the order trades on (absent in orders stored before orders named their venue). */
  venue: Schema.optional(Schema.String),
  side: Schema.Literal("buy", "sell"),
  type: Schema.Literal("market", "limit"),
  timeInForce: Schema.optional(Schema.Literal("GTC", "IOC", "FOK")),
  postOnly: Schema.optional(Schema.Boolean),
  reduceOnly: Schema.optional(Schema.Boolean),
  price: Schema.optional(Schema.String),
  quantity: Schema.String,
  filled: Schema.String,
  notional: Schema.String,
  status: Schema.Literal("new", "partially_filled"),
  reportSeq: Schema.Number,
  submittedTs: Schema.Number,
  updatedTs: Schema.Number
}) {}

export interface PaperState {
  readonly orders: ReadonlyArray<StoredOrder>
  /** Order numbers up to this one may have been used: a restarted venue numbers after it (reserved a block at a time). */
  readonly nextOrder: number
}

export interface PaperChanges {
  readonly upsert: ReadonlyArray<StoredOrder>
  /** Orders that closed (by client order id and consumer). */
  readonly remove: ReadonlyArray<{ readonly clientOrderId: string; readonly consumerId: string }>
  readonly nextOrder: number
}

/** The store could not be read or written (it names the file or the bucket, and why). */
export class PaperStoreFailed extends Data.TaggedError("PaperStoreFailed")<{
  readonly store: string
  readonly reason: string
}> {}

export interface PaperStoreShape {
  readonly load: Effect.Effect<PaperState, PaperStoreFailed>
  readonly save: (changes: PaperChanges) => Effect.Effect<void, PaperStoreFailed>
  /** Where (for logs). */
  readonly name: string
}

const FileState = Schema.parseJson(Schema.Struct({
  nextOrder: Schema.Number,
  orders: Schema.Array(StoredOrder)
}))
const decodeFile = Schema.decodeUnknownEither(FileState)
const encodeFile = Schema.encodeSync(FileState)

/** One stored order as JSON text (for stores that keep an order per key). */
export const StoredJson = Schema.parseJson(StoredOrder)

const reasonOf = (u: unknown): string => (u instanceof Error ? `${u.name}: ${u.message}` : String(u))

const idOf = (o: { readonly consumerId: string; readonly clientOrderId: string }) => `${o.consumerId}\u0000${o.clientOrderId}`

export class PaperStore extends Context.Tag("meltica/PaperStore")<PaperStore, PaperStoreShape>() {
  static readonly layerNone: Layer.Layer<PaperStore> = Layer.succeed(PaperStore, {
    name: "none",
    load: Effect.succeed({ orders: [], nextOrder: 0 }),
    save: () => Effect.void
  })

  static readonly layerFile = (path: string): Layer.Layer<PaperStore> =>
    Layer.sync(PaperStore, () => {
      const open = new Map<string, StoredOrder>()
      let nextOrder = 0
      const failed = (reason: string) => new PaperStoreFailed({ store: path, reason })
      const load = Effect.suspend(() => {
        let text: string
        try {
          text = readFileSync(path, "utf8")
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed({ orders: [], nextOrder: 0 })
          return Effect.fail(failed(reasonOf(e)))
        }
        const decoded = decodeFile(text)
        if (Either.isLeft(decoded)) return Effect.fail(failed("the file is not a paper venue state"))
        open.clear()
        for (const o of decoded.right.orders) open.set(idOf(o), o)
        nextOrder = decoded.right.nextOrder
        return Effect.succeed({ orders: decoded.right.orders, nextOrder })
      })
      const save = (changes: PaperChanges) =>
        Effect.try({
          try: () => {
            for (const r of changes.remove) open.delete(idOf(r))
            for (const o of changes.upsert) open.set(idOf(o), o)
            nextOrder = changes.nextOrder
            const tmp = `${path}.tmp`
            writeFileSync(tmp, encodeFile({ nextOrder, orders: [...open.values()] }))
            renameSync(tmp, path)
          },
          catch: (e) => failed(reasonOf(e))
        })
      return { name: `file ${path}`, load, save }
    })
}
