/**
 * The binary wire codec: every kind of event round-trips (a property over the
 * wire schema's own arbitrary), batches keep their order and share strings,
 * and a hostile frame is refused with a typed error, takes nothing from the
 * pool, and never hides the good records around it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc } from "effect"
import { CancelOrder, SubmitOrder } from "../../schema/Control.js"
import {
  BookSnapshot,
  type Decimal,
  decimal,
  EVENT_SCHEMA_VERSION,
  ExecReportPayload,
  Ticker,
  type WireAny,
  WireAny as WireAnySchema
} from "../../schema/Event.js"
import {
  BINARY_FORMAT_VERSION,
  type BinaryFrameError,
  decodeCommandFrame,
  decodeEvent,
  decodeFrame,
  encodeCommandFrame,
  encodeEvent,
  encodeEvents,
  type EventSource,
  FrameWriter,
  isBinaryFrame,
  unpooled
} from "../../src/codec/Binary.js"
import { type AnyEvent, Event, ExecReport, MergedEvent } from "../../src/Event.js"

/** A pooled-like event holding a wire value (as `toPooled` makes them). */
const fromWire = (w: WireAny): AnyEvent => {
  switch (w._tag) {
    case "Event": {
      const e = new Event()
      e.fill(w)
      return e
    }
    case "MergedEvent": {
      const e = new MergedEvent()
      e.fill(w)
      return e
    }
    case "ExecReport": {
      const e = new ExecReport()
      e.fill(w)
      return e
    }
  }
}

/** An event source that counts what it hands out. */
const counting = () => {
  let acquired = 0
  const source: EventSource = {
    acquireEvent: () => (acquired++, new Event()),
    acquireMerged: () => (acquired++, new MergedEvent()),
    acquireExecReport: () => (acquired++, new ExecReport())
  }
  return { source, acquired: () => acquired }
}

const decodeAll = (frame: Uint8Array) => {
  const { acquired, source } = counting()
  const events: Array<AnyEvent> = []
  const errors: Array<BinaryFrameError> = []
  decodeFrame(frame, source, { onEvent: (e) => events.push(e), onError: (e) => errors.push(e) })
  return { events, errors, acquired: acquired() }
}

const tick = (seq: number, provider = "binance", bid = "100.5") => {
  // built without validation: the hostile cases write what no decoder may accept
  const e = new Event()
  e.traceId = `t-${seq}`
  e.provider = provider
  e.symbol = "BTC-USDT"
  e.seqProvider = seq
  e.epoch = "run-1"
  e.ingestTs = 1_700_000_000_000_000 + seq
  e.routingVersion = 3
  e.kind = "ticker"
  e.payload = new Ticker({
    bidPrice: bid as Decimal,
    bidQty: decimal("1.25"),
    askPrice: decimal("100.6"),
    askQty: decimal("0.10000000"),
    exchangeTs: 1_700_000_000_000
  }, true)
  return e
}

const report = (seq: number) => {
  const r = new ExecReport()
  r.traceId = `r-${seq}`
  r.provider = "paper"
  r.symbol = "BTC-USDT"
  r.ingestTs = 5
  r.payload = ExecReportPayload.make({
    orderId: `o-${seq}`,
    clientOrderId: `c-${seq}`,
    consumerId: "strategy-1",
    side: "buy",
    orderType: "limit",
    status: "partially_filled",
    price: decimal("101"),
    quantity: decimal("2"),
    filledQty: decimal("1"),
    lastFillPrice: decimal("101"),
    lastFillQty: decimal("1"),
    reportSeq: seq
  })
  return r
}

/** JSON text with every number exact (-0, NaN, Infinity kept apart). */
const canonical = (u: unknown): string =>
  JSON.stringify(u, (_k, v) => (typeof v === "number" ? `n:${Object.is(v, -0) ? "-0" : String(v)}` : v))

const bytesOf = (s: string) => new TextEncoder().encode(s)

/** The frame with the first occurrence of `from` (same length) replaced by `to`. */
const patch = (frame: Uint8Array, from: string, to: string | Uint8Array): Uint8Array => {
  const a = bytesOf(from)
  const b = typeof to === "string" ? bytesOf(to) : to
  assert.strictEqual(a.length, b.length, "a patch keeps the length")
  const out = frame.slice()
  outer: for (let i = 0; i + a.length <= out.length; i++) {
    for (let j = 0; j < a.length; j++) if (out[i + j] !== a[j]) continue outer
    out.set(b, i)
    return out
  }
  throw new Error(`${from} not in frame`)
}

describe("binary codec: round trips", () => {
  it("every kind of the wire contract round-trips (property over the wire schema's arbitrary)", () => {
    const arb = Arbitrary.make(WireAnySchema).filter((w) =>
      // `detail` is open-ended JSON: only values that JSON itself round-trips (no undefined, NaN, -0)
      w._tag !== "Event" || w.payload._tag !== "control_result" ||
      JSON.stringify(w.payload.detail) === JSON.stringify(JSON.parse(JSON.stringify(w.payload.detail ?? null))) &&
        !JSON.stringify(w.payload.detail ?? null).includes("-0")
    )
    fc.assert(
      fc.property(fc.array(arb, { minLength: 1, maxLength: 4 }), (ws) => {
        const frame = encodeEvents(ws.map(fromWire))
        const { acquired, errors, events } = decodeAll(frame)
        assert.deepStrictEqual(errors, [])
        assert.strictEqual(events.length, ws.length)
        assert.strictEqual(acquired, ws.length)
        events.forEach((e, i) => {
          const expected = fromWire(ws[i]!).toWire()
          const got = e.toWire()
          // an optional field present as undefined (the arbitrary makes those) reads back absent, as through JSON
          assert.strictEqual(canonical(got), canonical(expected))
          assert.strictEqual(got.payload.constructor, expected.payload.constructor)
          assert.strictEqual(got.schemaVersion, EVENT_SCHEMA_VERSION)
        })
      }),
      { numRuns: 300 }
    )
  })

  it("a batch keeps its order, shares provider, symbol and epoch, and is smaller than one frame per event", () => {
    const events = [tick(1), tick(2), tick(3, "okx"), report(1), tick(4, "okx", "99.99")]
    const frame = encodeEvents(events)
    const singles = events.reduce((n, e) => n + Either.getOrThrow(encodeEvent(e)).length, 0)
    assert.isTrue(frame.length < singles, `${frame.length} < ${singles}`)
    const { errors, events: out } = decodeAll(frame)
    assert.deepStrictEqual(errors, [])
    assert.deepStrictEqual(out.map((e) => e.toWire()), events.map((e) => e.toWire()))
  })

  it("a ticker takes fewer bytes than its JSON", () => {
    const e = tick(7)
    const binary = Either.getOrThrow(encodeEvent(e)).length
    const json = JSON.stringify(e.toWire()).length
    assert.isTrue(binary * 2 < json, `binary ${binary} bytes, JSON ${json}`)
  })

  it("commands round-trip; an invalid one is the JSON path's typed rejection", () => {
    const submit = SubmitOrder.make({
      commandId: "cmd-1",
      consumerId: "s1",
      clientOrderId: "c-1",
      symbol: "BTC-USDT",
      side: "buy",
      orderType: "limit",
      quantity: decimal("0.5"),
      price: decimal("100")
    })
    const cancel = CancelOrder.make({ commandId: "cmd-2", consumerId: "s1", clientOrderId: "c-1" })
    for (const c of [submit, cancel]) assert.deepStrictEqual(Either.getOrThrow(decodeCommandFrame(encodeCommandFrame(c))), c)
    // a market order with a price: written by hand (the writer encodes valid commands only), refused on decode
    const bad = commandFrame(JSON.stringify({ schemaVersion: 1, command: { ...submit, orderType: "market" } }))
    const decoded = decodeCommandFrame(bad)
    assert.isTrue(Either.isLeft(decoded))
    if (Either.isLeft(decoded)) {
      assert.strictEqual(decoded.left._tag, "InvalidCommand")
      if (decoded.left._tag === "InvalidCommand") {
        assert.strictEqual(decoded.left.commandId, "cmd-1")
        assert.include(decoded.left.reason, "a market order must not carry a price")
      }
    }
  })

  it("a frame in shared memory (a worker ring) decodes, non-ASCII and long strings included", () => {
    const e = tick(9, "bö-rse")
    e.traceId = "x".repeat(200)
    const frame = encodeEvents([e, tick(10)])
    const shared = new Uint8Array(new SharedArrayBuffer(frame.length + 16), 8, frame.length)
    shared.set(frame)
    const { errors, events } = decodeAll(shared)
    assert.deepStrictEqual(errors, [])
    assert.deepStrictEqual(events.map((x) => x.toWire()), [e.toWire(), tick(10).toWire()])
  })

  it("a frame is told from JSON by its first byte", () => {
    assert.isTrue(isBinaryFrame(Either.getOrThrow(encodeEvent(tick(1)))))
    assert.isFalse(isBinaryFrame(bytesOf(JSON.stringify(tick(1).toWire()))))
  })

  it("a writer is reused: begin starts a new frame, finish copies", () => {
    const w = new FrameWriter(16)
    const a = w.begin().add(tick(1)).add(tick(2)).finish()
    const b = w.begin().add(tick(3)).finish()
    assert.strictEqual(decodeAll(a).events.length, 2)
    assert.deepStrictEqual(decodeAll(b).events.map((e) => e.seqProvider), [3])
    assert.deepStrictEqual(decodeAll(a).events.map((e) => e.seqProvider), [1, 2])
  })
})

/** A two-byte varint (values below 16,384). */
const varint2 = (n: number) => [(n & 0x7f) | 0x80, n >>> 7]

/** A frame of one command record holding this JSON text, written by hand. */
const commandFrame = (json: string): Uint8Array => {
  const text = bytesOf(json)
  const body = [48, ...varint2(text.length), ...text]
  return new Uint8Array([0xb1, BINARY_FORMAT_VERSION, 1, 0, 0, 0, ...varint2(body.length), ...body])
}

interface Hostile {
  readonly name: string
  readonly frame: () => Uint8Array
  readonly error: string
  /** Records expected to decode despite the bad one (default 0). */
  readonly good?: number
}

const oneTick = () => Either.getOrThrow(encodeEvent(tick(1)))
const withHeaderCount = (frame: Uint8Array, count: number) => {
  const out = frame.slice()
  new DataView(out.buffer).setUint32(2, count, true)
  return out
}
const bigBook = () => {
  const e = new Event()
  e.provider = "p"
  e.symbol = "s"
  e.kind = "book_snapshot"
  e.payload = BookSnapshot.make({ bids: [[decimal("1"), decimal("2")]], asks: [], state: "consistent" })
  return e
}

const hostile: ReadonlyArray<Hostile> = [
  { name: "empty", frame: () => new Uint8Array(0), error: "shorter than its header" },
  { name: "JSON text", frame: () => bytesOf(JSON.stringify(tick(1).toWire())), error: "not a binary frame" },
  {
    name: "unknown version",
    frame: () => {
      const f = oneTick()
      f[1] = BINARY_FORMAT_VERSION + 1
      return f
    },
    error: "unsupported binary frame version 2"
  },
  { name: "truncated in the middle of a record", frame: () => oneTick().subarray(0, 30), error: "past the end of the frame" },
  { name: "truncated by one byte", frame: () => { const f = oneTick(); return f.subarray(0, f.length - 1) }, error: "past the end" },
  { name: "count of 4 billion records", frame: () => withHeaderCount(oneTick(), 0xffff_ffff), error: "cannot fit" },
  { name: "count larger than the records", frame: () => withHeaderCount(oneTick(), 2), error: "past the end", good: 1 },
  { name: "bytes after the last record", frame: () => withHeaderCount(encodeEvents([tick(1), tick(2)]), 1), error: "after the last record", good: 1 },
  { name: "decimal with an exponent", frame: () => patch(oneTick(), "100.5", "1e3.5"), error: "bidPrice is not a plain decimal" },
  { name: "negative decimal", frame: () => patch(oneTick(), "100.5", "-00.5"), error: "bidPrice is not a plain decimal" },
  { name: "decimal with a leading zero", frame: () => patch(oneTick(), "100.5", "010.5"), error: "bidPrice is not a plain decimal" },
  { name: "decimal ending in a point", frame: () => patch(oneTick(), "100.5", "1005."), error: "bidPrice is not a plain decimal" },
  { name: "decimal with two points", frame: () => patch(oneTick(), "100.5", "1.0.5"), error: "bidPrice is not a plain decimal" },
  {
    name: "decimal of 21 integer digits",
    frame: () => Either.getOrThrow(encodeEvent(tick(1, "binance", "123456789012345678901"))),
    error: "more than 20 integer digits"
  },
  {
    name: "string length past the end of its record",
    frame: () => patch(oneTick(), "\x07binance", "\x7fbinance"),
    error: "provider runs past the end"
  },
  {
    name: "provider over its bound",
    frame: () => Either.getOrThrow(encodeEvent(tick(1, "p".repeat(65)))),
    error: "provider must be at most 64 characters"
  },
  { name: "invalid UTF-8", frame: () => patch(oneTick(), "binance", new Uint8Array([0xc3, 0x28, 0x80, 0x80, 0x80, 0x80, 0x80])), error: "not valid UTF-8" },
  {
    name: "unknown record type",
    frame: () => {
      const f = oneTick()
      f[10] = 99
      return f
    },
    error: "unknown record type 99"
  },
  {
    name: "unknown side code",
    frame: () => {
      const r = report(1)
      r.payload = ExecReportPayload.make({ ...r.payload!, side: "buy" })
      ;(r.payload as { side: string }).side = "hold"
      return Either.getOrThrow(encodeEvent(r))
    },
    error: "side: unknown code 255"
  },
  {
    name: "ingestTs not finite",
    frame: () => {
      const e = tick(1)
      e.ingestTs = Number.POSITIVE_INFINITY
      return Either.getOrThrow(encodeEvent(e))
    },
    error: "ingestTs must be finite"
  },
  {
    name: "book levels count of a billion",
    frame: () => {
      const f = Either.getOrThrow(encodeEvent(bigBook()))
      // the bids count (1) follows the snapshot's flags byte (0): make it a 5-byte varint of ~2^31
      const i = f.indexOf(1, f.length - 1 - 2 - 4 - 1 - 1 - 1)
      const out = new Uint8Array(f.length + 4)
      out.set(f.subarray(0, i))
      out.set([0xff, 0xff, 0xff, 0xff, 0x07], i)
      out.set(f.subarray(i + 1), i + 5)
      out[6] += 4 // the record's length grew by four bytes
      return out
    },
    error: "bids must hold at most 5000 items"
  },
  {
    name: "varint longer than 8 bytes",
    frame: () => {
      const f = oneTick()
      f.set([0xff, 0xff, 0xff, 0xff], 6)
      return f
    },
    error: "record length"
  },
  {
    name: "unknown envelope flag bits",
    frame: () => {
      const f = oneTick()
      f[11] = 0x80
      return f
    },
    error: "envelope flags: unknown bits"
  },
  {
    name: "a command where events are expected",
    frame: () => encodeCommandFrame(CancelOrder.make({ commandId: "x", consumerId: "y", clientOrderId: "z" })),
    error: "a command record where events are expected"
  }
]

describe("binary codec: hostile frames", () => {
  for (const h of hostile) {
    it(`${h.name}: refused with a typed error, nothing taken from the pool for it`, () => {
      const { acquired, errors, events } = decodeAll(h.frame())
      assert.isAtLeast(errors.length, 1)
      assert.include(errors[0]!.message, h.error)
      assert.include(["MalformedBinaryFrame", "UnsupportedFrameVersion"], errors[0]!._tag)
      assert.strictEqual(events.length, h.good ?? 0)
      assert.strictEqual(acquired, h.good ?? 0)
    })
  }

  it("a bad record between good ones: the good ones are decoded, in order, the bad one reported", () => {
    const w = new FrameWriter()
    w.begin().add(tick(1)).add(tick(2, "okx", "1e5")).add(tick(3)).add(tick(4, "okx"))
    const { acquired, errors, events } = decodeAll(w.finish())
    assert.deepStrictEqual(events.map((e) => [e.seqProvider, e.provider]), [[1, "binance"], [3, "binance"], [4, "okx"]])
    assert.strictEqual(acquired, 3)
    assert.strictEqual(errors.length, 1)
    assert.include(errors[0]!.message, "record 1")
  })

  it("a record naming the provider of a bad record before it reads that provider, not an older one", () => {
    const w = new FrameWriter()
    // the third record says "the previous record's provider" (okx): the second fails on its decimal, after its envelope
    w.begin().add(tick(1)).add(tick(2, "okx", "1e5")).add(tick(3, "okx"))
    const { errors, events } = decodeAll(w.finish())
    assert.strictEqual(errors.length, 1)
    assert.deepStrictEqual(events.map((e) => [e.seqProvider, e.provider]), [[1, "binance"], [3, "okx"]])
  })

  it("a record naming the provider of a record whose provider did not decode is refused, not given another", () => {
    const w = new FrameWriter()
    w.begin().add(tick(1)).add(tick(2, "p".repeat(65))).add(tick(3, "p".repeat(65)))
    const { errors, events } = decodeAll(w.finish())
    assert.deepStrictEqual(events.map((e) => e.seqProvider), [1])
    assert.strictEqual(errors.length, 2)
    assert.include(errors[1]!.message, "provider as the previous record's")
  })

  it("decodeEvent refuses a frame of several events (it would leave the rest unowned)", () => {
    const decoded = decodeEvent(encodeEvents([tick(1), tick(2)]), unpooled)
    assert.isTrue(Either.isLeft(decoded))
  })

  it("errors never carry the frame's bytes", () => {
    const secret = "s3cr3t-token-value"
    const { errors } = decodeAll(Either.getOrThrow(encodeEvent(tick(1, secret + "x".repeat(60)))))
    assert.notInclude(errors[0]!.message, secret)
  })
})
