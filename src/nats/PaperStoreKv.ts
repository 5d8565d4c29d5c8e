/**
 * The paper venue's store (`execution/PaperStore.ts`) on NATS: the JetStream
 * key-value bucket `meltica_paper` (file storage, one key per open order,
 * named by a digest of its consumer and client order id so any id fits the
 * key alphabet, and one for the order counter). The NATS feed's default, so a
 * feed restarted on the same server finds its orders.
 */
import { Kvm } from "@nats-io/kv"
import { Effect, Either, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { PaperStore, PaperStoreFailed, type PaperChanges, type StoredOrder, StoredJson } from "../execution/PaperStore.js"
import { NatsConnection } from "./Connection.js"
import { NatsSetupFailed, reasonOf } from "./Errors.js"
import { PAPER_BUCKET } from "./Permissions.js"
import { untilReady } from "./Streams.js"

const decodeStored = Schema.decodeUnknownEither(StoredJson)
const encodeStored = Schema.encodeSync(StoredJson)

const orderKey = (consumerId: string, clientOrderId: string): string =>
  `order.${createHash("sha256").update(`${consumerId}\u0000${clientOrderId}`).digest("hex")}`
const COUNTER_KEY = "next-order"

/** The JetStream key-value bucket `meltica_paper` (created if missing). */
export const layer: Layer.Layer<PaperStore, never, NatsConnection> = Layer.effect(
  PaperStore,
  Effect.gen(function*() {
    const { nc } = yield* NatsConnection
    const kv = yield* untilReady(
      `key-value bucket ${PAPER_BUCKET}`,
      Effect.tryPromise({
        try: () => new Kvm(nc).create(PAPER_BUCKET, { history: 1 }),
        catch: (e) => new NatsSetupFailed({ stream: `KV_${PAPER_BUCKET}`, reason: reasonOf(e) })
      })
    ).pipe(Effect.orDie) // retried until the server answers: it never fails
    const failed = (e: unknown) => new PaperStoreFailed({ store: `bucket ${PAPER_BUCKET}`, reason: reasonOf(e) })
    const load = Effect.tryPromise({
      try: async () => {
        const orders: Array<StoredOrder> = []
        const keys = await kv.keys("order.*")
        for await (const key of keys) {
          const entry = await kv.get(key)
          if (entry === null || entry.operation !== "PUT") continue
          const decoded = decodeStored(entry.string())
          if (Either.isRight(decoded)) orders.push(decoded.right)
        }
        const counter = await kv.get(COUNTER_KEY)
        const nextOrder = counter === null || counter.operation !== "PUT" ? 0 : Number(counter.string()) || 0
        return { orders, nextOrder }
      },
      catch: failed
    })
    const save = (changes: PaperChanges) =>
      Effect.tryPromise({
        try: async () => {
          for (const o of changes.upsert) await kv.put(orderKey(o.consumerId, o.clientOrderId), encodeStored(o))
          for (const r of changes.remove) await kv.delete(orderKey(r.consumerId, r.clientOrderId))
          await kv.put(COUNTER_KEY, String(changes.nextOrder))
        },
        catch: failed
      })
    return { name: `bucket ${PAPER_BUCKET}`, load, save }
  })
)
