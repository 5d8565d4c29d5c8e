/**
 * A single-producer, single-consumer ring of byte frames in shared memory:
 * the main thread writes, one worker thread reads, and no frame is copied by
 * a structured clone.
 *
 * Rules (the spec of this module):
 * - The data region is a power of two of bytes. The write and read positions
 *   are free-running 32-bit counters (wrapping at 2^32); the bytes in use are
 *   `write - read` (unsigned), the offset of a position is `position & mask`.
 * - A frame is a 4-byte length, then its bytes, padded to a multiple of 4.
 *   A frame never straddles the end of the region: when it does not fit in
 *   the bytes left before the end, the writer stores a wrap marker (length
 *   -1) there and the frame starts at offset 0. The skipped bytes count as
 *   used until the reader passes the marker.
 * - A frame larger than half the region is refused (`tryWrite` throws
 *   `FrameTooLarge`): it could wait for room that never comes.
 * - Bytes are written before the write position is published with an atomic
 *   store, and read before the read position is released with one, so the
 *   other side never sees a frame half written or reused while it is read.
 * - Wake-ups cost no system call while both sides are busy: a side about to
 *   sleep raises its flag, checks again, then waits on a bell word; the other
 *   side rings the bell (an atomic add and a notify) only when the flag is up.
 *   Several rings may share one bell (a worker's critical and market rings).
 */
import { Data } from "effect"

/** A frame larger than a ring can ever hold. */
export class FrameTooLarge extends Data.TaggedError("FrameTooLarge")<{
  readonly size: number
  readonly max: number
}> {
  override get message(): string {
    return `a frame of ${this.size} bytes exceeds the ring's largest frame (${this.max} bytes)`
  }
}

// header slots (Int32): positions on separate 64-byte lines, then counters
const WRITE = 0
const READ = 16
/** Frames written (free-running), for the reader's and the tests' books. */
const FRAMES_WRITTEN = 32
/** Frames read. */
const FRAMES_READ = 33
/** An acknowledgement position the reader publishes (the critical lane's last processed frame). */
const ACKED = 34
const HEADER_INTS = 48
const HEADER_BYTES = HEADER_INTS * 4

const WRAP = -1

/** `Atomics.waitAsync` (Node 16+; typed in the es2024 library, newer than this project's target). */
const waitAsync = (Atomics as unknown as {
  readonly waitAsync: (
    array: Int32Array,
    index: number,
    value: number,
    timeoutMs?: number
  ) => { readonly async: true; readonly value: Promise<"ok" | "timed-out"> } | { readonly async: false; readonly value: "not-equal" | "timed-out" }
}).waitAsync

/** The shared memory of one ring: given to both sides (a `SharedArrayBuffer` crosses `postMessage` without a copy). */
export interface RingMemory {
  readonly buffer: SharedArrayBuffer
  readonly capacity: number
}

export const makeRingMemory = (capacity: number): RingMemory => {
  if (!Number.isInteger(capacity) || capacity < 64 || (capacity & (capacity - 1)) !== 0 || capacity > 2 ** 30) {
    throw new RangeError(`ring capacity must be a power of two between 64 bytes and 1 GiB (got ${capacity})`)
  }
  return { buffer: new SharedArrayBuffer(HEADER_BYTES + capacity), capacity }
}

const pad4 = (n: number): number => (n + 3) & ~3

/**
 * A bell shared by the rings of one direction: the sleeper raises `SLEEPING`,
 * re-checks its rings, and waits on `BELL`; the other side rings it.
 */
export class Bell {
  static readonly INTS = 2
  private static readonly BELL = 0
  private static readonly SLEEPING = 1
  readonly words: Int32Array
  constructor(readonly buffer: SharedArrayBuffer, index = 0) {
    this.words = new Int32Array(buffer, index * Bell.INTS * 4, Bell.INTS)
  }
  static memory(count = 1): SharedArrayBuffer {
    return new SharedArrayBuffer(count * Bell.INTS * 4)
  }
  /** Wakes the sleeper, if there is one. */
  ring(): void {
    if (Atomics.load(this.words, Bell.SLEEPING) !== 0) {
      Atomics.add(this.words, Bell.BELL, 1)
      Atomics.notify(this.words, Bell.BELL)
    }
  }
  /** The bell's value before checking for work; then `sleep(value)` if there was none. */
  arm(): number {
    Atomics.store(this.words, Bell.SLEEPING, 1)
    return Atomics.load(this.words, Bell.BELL)
  }
  disarm(): void {
    Atomics.store(this.words, Bell.SLEEPING, 0)
  }
  /**
   * Resolves when the bell rings after `armed` (or at once if it already has),
   * or after `timeoutMs`. Never blocks the thread.
   */
  sleep(armed: number, timeoutMs: number): Promise<unknown> {
    const r = waitAsync(this.words, Bell.BELL, armed, timeoutMs)
    return r.async ? r.value : Promise.resolve(r.value)
  }
  /** Blocks the thread (a worker only) until the bell rings after `armed`, or `timeoutMs`. */
  sleepSync(armed: number, timeoutMs: number): void {
    Atomics.wait(this.words, Bell.BELL, armed, timeoutMs)
  }
}

abstract class RingSide {
  protected readonly header: Int32Array
  protected readonly data: Uint8Array
  protected readonly lengths: Int32Array
  protected readonly mask: number
  readonly capacity: number
  /** The largest frame this ring takes. */
  readonly maxFrame: number
  constructor(memory: RingMemory) {
    this.capacity = memory.capacity
    this.mask = memory.capacity - 1
    this.maxFrame = memory.capacity / 2 - 4
    this.header = new Int32Array(memory.buffer, 0, HEADER_INTS)
    this.data = new Uint8Array(memory.buffer, HEADER_BYTES, memory.capacity)
    this.lengths = new Int32Array(memory.buffer, HEADER_BYTES, memory.capacity / 4)
  }
  /** Bytes in use (frames not yet read, with any wrap padding). */
  get used(): number {
    return (Atomics.load(this.header, WRITE) - Atomics.load(this.header, READ)) >>> 0
  }
  get framesWritten(): number {
    return Atomics.load(this.header, FRAMES_WRITTEN) >>> 0
  }
  get framesRead(): number {
    return Atomics.load(this.header, FRAMES_READ) >>> 0
  }
  /** The acknowledgement position the reader last published. */
  get acked(): number {
    return Atomics.load(this.header, ACKED) >>> 0
  }
}

/** The producer's side. One writer per ring. */
export class RingWriter extends RingSide {
  /** Frames refused for want of room (the caller waited or buffered elsewhere). */
  full = 0

  /** Whether a frame of `size` bytes fits now. */
  fits(size: number): boolean {
    return this.room(size) >= 0
  }

  /** The offset where a frame of `size` bytes would start, -1 when it does not fit, -2 - offset when it wraps. */
  private room(size: number): number {
    const write = Atomics.load(this.header, WRITE) >>> 0
    const used = (write - (Atomics.load(this.header, READ) >>> 0)) >>> 0
    const free = this.capacity - used
    const need = 4 + pad4(size)
    const at = write & this.mask
    const tail = this.capacity - at
    if (need <= tail) return need <= free ? at : -1
    return tail + need <= free ? -2 - at : -1
  }

  /**
   * Writes one frame: `fill(bytes, offset)` writes exactly `size` bytes at
   * `offset` of `bytes` (the ring's data, for that call only). Returns false,
   * and writes nothing, when the frame does not fit now.
   */
  tryWrite(size: number, fill: (bytes: Uint8Array, offset: number) => void): boolean {
    if (size > this.maxFrame || size < 0) throw new FrameTooLarge({ size, max: this.maxFrame })
    let at = this.room(size)
    if (at === -1) {
      this.full++
      return false
    }
    let write = Atomics.load(this.header, WRITE) >>> 0
    if (at < -1) {
      const tailAt = -2 - at
      this.lengths[tailAt >> 2] = WRAP
      write = (write + (this.capacity - tailAt)) >>> 0
      at = 0
    }
    this.lengths[at >> 2] = size
    fill(this.data, at + 4)
    Atomics.store(this.header, WRITE, (write + 4 + pad4(size)) | 0)
    Atomics.add(this.header, FRAMES_WRITTEN, 1)
    return true
  }

  /** Writes `frame` as one frame (a copy); false when it does not fit now. */
  tryWriteBytes(frame: Uint8Array): boolean {
    return this.tryWrite(frame.length, (bytes, offset) => bytes.set(frame, offset))
  }
}

/** The consumer's side. One reader per ring. */
export class RingReader extends RingSide {
  /** The data the last `peek` points into. */
  get bytes(): Uint8Array {
    return this.data
  }
  /** Offset of the frame the last `peek` found. */
  offset = 0
  private next = 0

  /**
   * The length of the next frame (its bytes at `bytes[offset..offset+length)`),
   * or -1 when the ring is empty. The frame stays valid until `consume`.
   */
  peek(): number {
    let read = Atomics.load(this.header, READ) >>> 0
    const write = Atomics.load(this.header, WRITE) >>> 0
    if (read === write) return -1
    let at = read & this.mask
    let length = this.lengths[at >> 2]!
    if (length === WRAP) {
      read = (read + (this.capacity - at)) >>> 0
      Atomics.store(this.header, READ, read | 0)
      if (read === write) return -1
      at = 0
      length = this.lengths[0]!
    }
    this.offset = at + 4
    this.next = (read + 4 + pad4(length)) >>> 0
    return length
  }

  /** Releases the frame the last `peek` returned: its bytes may be overwritten from now on. */
  consume(): void {
    Atomics.store(this.header, READ, this.next | 0)
    Atomics.add(this.header, FRAMES_READ, 1)
  }

  /** Publishes an acknowledgement position for the writer (the last critical frame processed). */
  ack(position: number): void {
    Atomics.store(this.header, ACKED, position | 0)
  }
}
