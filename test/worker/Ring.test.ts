/**
 * The shared-memory ring: frames come out in order and intact across the
 * wrap, a full ring refuses without writing, a frame too large is a typed
 * error, and the bell wakes a sleeper only when it sleeps.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Bell, FrameTooLarge, makeRingMemory, RingReader, RingWriter } from "../../src/worker/Ring.js"

const frame = (n: number, size: number): Uint8Array => {
  const f = new Uint8Array(size)
  for (let i = 0; i < size; i++) f[i] = (n * 31 + i) & 0xff
  return f
}

const readAll = (r: RingReader): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let len = r.peek(); len >= 0; len = r.peek()) {
    out.push(r.bytes.slice(r.offset, r.offset + len))
    r.consume()
  }
  return out
}

describe("Ring", () => {
  it("carries frames of every size in order across many wraps", () => {
    const memory = makeRingMemory(256)
    const w = new RingWriter(memory)
    const r = new RingReader(memory)
    let sent = 0
    let received = 0
    // sizes that do not divide the capacity, so frames meet the end at every offset
    for (let round = 0; round < 500; round++) {
      const size = (round * 7) % 61
      while (!w.tryWriteBytes(frame(sent, size))) {
        const got = readAll(r)
        for (const g of got) {
          const want = frame(received, (received * 7) % 61)
          assert.deepStrictEqual(g, want)
          received++
        }
      }
      sent++
    }
    for (const g of readAll(r)) {
      assert.deepStrictEqual(g, frame(received, (received * 7) % 61))
      received++
    }
    assert.strictEqual(received, 500)
    assert.strictEqual(w.used, 0)
    assert.strictEqual(w.framesWritten, 500)
    assert.strictEqual(r.framesRead, 500)
  })

  it("a full ring refuses a frame and writes nothing; room comes back as the reader consumes", () => {
    const memory = makeRingMemory(64)
    const w = new RingWriter(memory)
    const r = new RingReader(memory)
    assert.isTrue(w.tryWriteBytes(frame(1, 20))) // 24 bytes
    assert.isTrue(w.tryWriteBytes(frame(2, 20))) // 48
    assert.isFalse(w.tryWriteBytes(frame(3, 20))) // would need 72
    assert.strictEqual(w.full, 1)
    assert.strictEqual(w.used, 48)
    assert.strictEqual(r.peek(), 20)
    r.consume()
    // 16 bytes left at the end: the next frame wraps, the marker's bytes count until passed
    assert.isTrue(w.tryWriteBytes(frame(3, 20)))
    const got = readAll(r)
    assert.deepStrictEqual(got, [frame(2, 20), frame(3, 20)])
  })

  it("hostile sizes: too large, negative, or a capacity that is not a power of two are typed errors", () => {
    const memory = makeRingMemory(128)
    const w = new RingWriter(memory)
    const cases: ReadonlyArray<number> = [w.maxFrame + 1, 128, 1 << 20, -1]
    for (const size of cases) {
      assert.throws(() => w.tryWrite(size, () => {}), FrameTooLarge)
    }
    assert.isTrue(w.tryWrite(w.maxFrame, () => {}))
    for (const capacity of [0, 63, 100, 2 ** 31, 1.5]) assert.throws(() => makeRingMemory(capacity), RangeError)
  })

  it("the positions wrap at 2^32 without losing a frame", () => {
    const memory = makeRingMemory(64)
    const header = new Int32Array(memory.buffer, 0, 48)
    header[0] = -40 // 2^32 - 40
    header[16] = -40
    const w = new RingWriter(memory)
    const r = new RingReader(memory)
    for (let i = 0; i < 20; i++) {
      assert.isTrue(w.tryWriteBytes(frame(i, 12)))
      assert.strictEqual(r.peek(), 12)
      assert.deepStrictEqual(r.bytes.slice(r.offset, r.offset + 12), frame(i, 12))
      r.consume()
    }
    assert.strictEqual(w.used, 0)
  })

  it.effect("the bell wakes an armed sleeper and costs nothing when no one sleeps", () =>
    Effect.gen(function*() {
      const bell = new Bell(Bell.memory())
      bell.ring() // nobody sleeps: the bell word does not move
      assert.strictEqual(Atomics.load(bell.words, 0), 0)
      const armed = bell.arm()
      const woke = bell.sleep(armed, 60_000)
      bell.ring()
      const result = yield* Effect.promise(() => woke)
      assert.strictEqual(result, "ok")
      bell.disarm()
      // a ring between arm and sleep is not missed: the sleep returns at once
      const armed2 = bell.arm()
      bell.ring()
      assert.strictEqual(yield* Effect.promise(() => bell.sleep(armed2, 60_000)), "not-equal")
    }))
})
