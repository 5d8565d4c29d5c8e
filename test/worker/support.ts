/**
 * Helpers for the worker tests: shared-memory books the fixture strategy
 * writes, and waits on them that take no CPU (the worker is a real thread,
 * so they wait in real time, bounded: a condition that never comes fails).
 */
import { Context, Effect, Layer } from "effect"
import type { ControlCommand } from "../../schema/Control.js"
import { ControlResultPayload } from "../../schema/Event.js"
import { ControlBus } from "../../src/ControlBus.js"
import { DataBus } from "../../src/DataBus.js"
import { Dispatcher, DispatcherConfig, type DispatcherSettings } from "../../src/Dispatcher.js"
import { Pool } from "../../src/Pool.js"
import { Recycler } from "../../src/Recycler.js"

export interface Books {
  readonly seenMemory: SharedArrayBuffer
  readonly gateMemory: SharedArrayBuffer
  readonly seen: Int32Array
  readonly gate: Int32Array
  /** The codes the strategy recorded, in order. */
  readonly codes: () => Array<number>
  /** Opens the gate a handler waits at. */
  readonly open: () => void
}

export const books = (capacity = 4_096): Books => {
  const seenMemory = new SharedArrayBuffer((capacity + 1) * 4)
  const gateMemory = new SharedArrayBuffer(16)
  const seen = new Int32Array(seenMemory)
  const gate = new Int32Array(gateMemory)
  return {
    seenMemory,
    gateMemory,
    seen,
    gate,
    codes: () => Array.from(seen.subarray(1, 1 + Atomics.load(seen, 0))),
    open: () => {
      Atomics.store(gate, 0, 1)
      Atomics.notify(gate, 0)
    }
  }
}

const waitAsync = (Atomics as unknown as {
  readonly waitAsync: (a: Int32Array, i: number, v: number, t: number) => { readonly async: boolean; readonly value: unknown }
}).waitAsync

/** Waits on `word` of `array` changing, at most `ms` of real time (no timer: the wait is the atomics'). */
export const changeOf = (array: Int32Array, index: number, ms: number) =>
  Effect.promise(async () => {
    const r = waitAsync(array, index, Atomics.load(array, index), ms)
    if (r.async) await r.value
  })

/** Waits until `done()` holds, checking whenever `array[index]` changes and every 10 ms; at most `maxMs` in all. */
export const until = (done: () => boolean, what: string, array: Int32Array = new Int32Array(new SharedArrayBuffer(4)), index = 0, maxMs = 20_000) =>
  Effect.gen(function*() {
    for (let waited = 0; waited < maxMs; waited += 10) {
      if (done()) return
      yield* changeOf(array, index, 10)
    }
    if (!done()) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })

/**
 * The main-thread pipeline for the worker tests: Pool, Recycler, the
 * in-memory Data Bus, the Dispatcher, and a Control Bus that records every
 * command and answers a Subscribe as the Control Plane does (the routes set
 * through the Dispatcher, then an ok result on the consumer's critical lane).
 */
export class SentCommands extends Context.Tag("test/SentCommands")<SentCommands, Array<ControlCommand>>() {}

const answeringControlBus = Layer.effect(
  ControlBus,
  Effect.gen(function*() {
    const dispatcher = yield* Dispatcher
    const bus = yield* DataBus
    const pool = yield* Pool
    const sent = yield* SentCommands
    return {
      submit: (command: ControlCommand) =>
        Effect.gen(function*() {
          sent.push(command)
          if (command._tag === "Subscribe") {
            for (const kind of command.kinds) {
              yield* Effect.orDie(dispatcher.subscribe(command.consumerId, { symbol: command.symbol, kind, merged: false }))
            }
          }
          const e = pool.acquireEvent()
          e.kind = "control_result"
          e.provider = "control"
          e.traceId = `result-${command.commandId}`
          e.payload = ControlResultPayload.make({
            commandId: command.commandId,
            command: command._tag,
            consumerId: command.consumerId,
            outcome: "ok"
          })
          yield* bus.publish(command.consumerId, e)
        }),
      submitJson: () => Effect.dieMessage("not used"),
      stats: () => ({ submitted: sent.length, malformed: 0 })
    }
  })
)

export const layerMain = (settings: Partial<DispatcherSettings> = {}) =>
  answeringControlBus.pipe(
    Layer.provideMerge(Layer.sync(SentCommands, () => [])),
    Layer.provideMerge(Dispatcher.DefaultWithoutDependencies),
    Layer.provideMerge(DispatcherConfig.layer(settings)),
    Layer.provideMerge(DataBus.layerMemory),
    Layer.provideMerge(Recycler.DefaultWithoutDependencies),
    Layer.provideMerge(Pool.layer())
  )
