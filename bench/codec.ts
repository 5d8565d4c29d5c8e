/**
 * The binary wire codec (`src/codec/Binary.ts`) beside the Schema JSON path
 * (`encodeWireJson` / `decodeWireJson`, what the NATS buses used before):
 * encode and decode nanoseconds per event, and bytes per event, for a ticker,
 * a 20-level book snapshot and an execution report, one event per frame and
 * batches of 64. Decoding takes events from a pool-like free list, as a
 * receiver does. Medians of alternating rounds.
 *
 * Also the choice of decimal form: the text bytes the codec writes, against a
 * scaled integer (a varint mantissa and a scale byte), decoded back into the
 * `Decimal` string the contract carries.
 *
 *   npm run bench:codec [-- --json] [-- --events N] [-- --rounds N]
 */
import { Effect, Either } from "effect"
import {
  BookSnapshot,
  type Decimal,
  decimal,
  decodeWireJson,
  encodeWireJson,
  ExecReportPayload
} from "../schema/Event.js"
import { decodeFrame, type EventSource, FrameWriter } from "../src/codec/Binary.js"
import { type AnyEvent, Event, ExecReport, MergedEvent } from "../src/Event.js"
import { alternatingMedians, arg, benchTicker, emitJson, machine, table } from "./internal/report.js"

const EVENTS = arg("--events", 50_000)
const ROUNDS = arg("--rounds", 5)
const BATCH = 64

/** A free list standing in for the pool: decoding takes from it, the bench puts back. */
const free: Array<AnyEvent> = []
const source: EventSource = {
  acquireEvent: () => (free.pop() as Event | undefined) ?? new Event(),
  acquireMerged: () => new MergedEvent(),
  acquireExecReport: () => new ExecReport()
}
const recycle = (e: AnyEvent) => {
  if (e._pool === "Event") free.push(e)
}

const ticker = (): Event => {
  const e = new Event()
  e.traceId = "binance-123456"
  e.provider = "binance"
  e.symbol = "BTC-USDT"
  e.seqProvider = 123_456
  e.epoch = "mio3k2x-4f1a9c0b2d7e"
  e.ingestTs = 1_764_500_000_000_000
  e.routingVersion = 1
  e.kind = "ticker"
  e.payload = benchTicker
  return e
}

const book = (): AnyEvent => {
  const e = ticker()
  e.kind = "book_snapshot"
  const level = (i: number) => [decimal(`${64000 + i}.${i}0`), decimal(`0.${i + 1}5`)] as const
  e.payload = BookSnapshot.make({
    bids: Array.from({ length: 20 }, (_, i) => level(i)),
    asks: Array.from({ length: 20 }, (_, i) => level(i + 20)),
    state: "consistent",
    checksum: 123456789
  })
  return e
}

const report = (): AnyEvent => {
  const r = new ExecReport()
  r.traceId = "paper-42"
  r.provider = "paper"
  r.symbol = "BTC-USDT"
  r.ingestTs = 1_764_500_000_000_000
  r.payload = ExecReportPayload.make({
    orderId: "o-000042",
    clientOrderId: "strategy-1-000042",
    consumerId: "strategy-1",
    side: "buy",
    orderType: "limit",
    status: "partially_filled",
    price: decimal("64000.1"),
    quantity: decimal("0.5"),
    filledQty: decimal("0.25"),
    lastFillPrice: decimal("64000.1"),
    lastFillQty: decimal("0.25"),
    reportSeq: 2
  })
  return r
}

const utf8 = new TextDecoder()
const utf8Encoder = new TextEncoder()

/** Nanoseconds per event of `f` run `n` times over events. */
const nsPer = (n: number, f: () => void) =>
  Effect.sync(() => {
    const start = process.hrtime.bigint()
    f()
    return Number(process.hrtime.bigint() - start) / n
  })

interface Row {
  readonly event: string
  readonly jsonEncodeNs: number
  readonly jsonDecodeNs: number
  readonly binaryEncodeNs: number
  readonly binaryDecodeNs: number
  readonly batchEncodeNs: number
  readonly batchDecodeNs: number
  readonly jsonBytes: number
  readonly binaryBytes: number
  readonly batchBytesPerEvent: number
}

const measure = (name: string, make: () => AnyEvent) =>
  Effect.gen(function*() {
    const e = make()
    const n = name === "book snapshot (20+20 levels)" ? Math.max(1, Math.floor(EVENTS / 10)) : EVENTS
    const jsonText = encodeWireJson(e.toWire())
    const jsonBytes = utf8Encoder.encode(jsonText)
    const writer = new FrameWriter()
    const single = writer.begin().add(e).finish()
    const batch = Array.from({ length: BATCH }, make)
    const batchFrame = writer.begin()
    for (const x of batch) batchFrame.add(x)
    const batchBytes = batchFrame.finish()
    let sink = 0
    const handler = {
      onEvent: (x: AnyEvent) => {
        sink += x.ingestTs > 0 ? 1 : 0
        recycle(x)
      },
      onError: () => {
        throw new Error("the bench frame did not decode")
      }
    }

    const jsonEncode = nsPer(n, () => {
      for (let i = 0; i < n; i++) sink += utf8Encoder.encode(encodeWireJson(e.toWire())).length
    })
    const binaryEncode = nsPer(n, () => {
      for (let i = 0; i < n; i++) sink += writer.begin().add(e).finish().length
    })
    const [jsonEnc, binEnc] = yield* alternatingMedians(ROUNDS, jsonEncode, binaryEncode)

    const jsonDecode = nsPer(n, () => {
      for (let i = 0; i < n; i++) {
        const w = decodeWireJson(utf8.decode(jsonBytes))
        if (Either.isLeft(w)) throw new Error("the bench JSON did not decode")
        const x = w.right
        if (x._tag === "Event") {
          const p = source.acquireEvent()
          p.fill(x)
          recycle(p)
        } else sink++
      }
    })
    const binaryDecode = nsPer(n, () => {
      for (let i = 0; i < n; i++) decodeFrame(single, source, handler)
    })
    const [jsonDec, binDec] = yield* alternatingMedians(ROUNDS, jsonDecode, binaryDecode)

    const frames = Math.max(1, Math.floor(n / BATCH))
    const batchEncode = nsPer(frames * BATCH, () => {
      for (let f = 0; f < frames; f++) {
        writer.begin()
        for (const x of batch) writer.add(x)
        sink += writer.finish().length
      }
    })
    const batchDecode = nsPer(frames * BATCH, () => {
      for (let f = 0; f < frames; f++) decodeFrame(batchBytes, source, handler)
    })
    const [batchEnc, batchDec] = yield* alternatingMedians(ROUNDS, batchEncode, batchDecode)
    if (sink === 0) console.log("")
    return {
      event: name,
      jsonEncodeNs: jsonEnc,
      jsonDecodeNs: jsonDec,
      binaryEncodeNs: binEnc,
      binaryDecodeNs: binDec,
      batchEncodeNs: batchEnc,
      batchDecodeNs: batchDec,
      jsonBytes: jsonBytes.length,
      binaryBytes: single.length,
      batchBytesPerEvent: batchBytes.length / BATCH
    } satisfies Row
  })

// -- the decimal form ---------------------------------------------------------

const DECIMALS: ReadonlyArray<Decimal> = ["64000.10", "1.5", "0.00012345", "0.10000000", "12345678.9"].map(decimal)

/** A decimal as a varint mantissa (digits without the point, up to 2^53) and a scale byte. */
const scaledEncode = (s: string, out: Array<number>) => {
  const dot = s.indexOf(".")
  const scale = dot < 0 ? 0 : s.length - dot - 1
  let m = Number(dot < 0 ? s : s.slice(0, dot) + s.slice(dot + 1))
  out.push(scale)
  while (m >= 0x80) {
    out.push((m % 0x80) | 0x80)
    m = Math.floor(m / 0x80)
  }
  out.push(m)
}

const scaledDecode = (b: Uint8Array, at: { pos: number }): string => {
  const scale = b[at.pos++]!
  let m = 0
  let mul = 1
  for (;;) {
    const x = b[at.pos++]!
    m += (x & 0x7f) * mul
    if (x < 0x80) break
    mul *= 0x80
  }
  const digits = m.toString()
  if (scale === 0) return digits
  const padded = digits.length <= scale ? "0".repeat(scale - digits.length + 1) + digits : digits
  return `${padded.slice(0, padded.length - scale)}.${padded.slice(padded.length - scale)}`
}

const decimalForms = Effect.gen(function*() {
  const writer = new FrameWriter()
  const e = ticker()
  const textFrame = writer.begin().add(e).finish()
  const textBytes = DECIMALS.reduce((n, d) => n + 1 + d.length, 0)
  const scaled: Array<number> = []
  for (const d of DECIMALS) scaledEncode(d, scaled)
  const scaledBytes = new Uint8Array(scaled)
  // check the scaled form reads back each decimal exactly
  const at = { pos: 0 }
  for (const d of DECIMALS) {
    const back = scaledDecode(scaledBytes, at)
    if (back !== d) throw new Error(`scaled form changed ${d} into ${back}`)
  }
  const n = EVENTS * 4
  let sink = 0
  const handler = { onEvent: (x: AnyEvent) => recycle(x), onError: () => sink++ }
  // a ticker frame carries four decimals: the codec's whole decode, per decimal, is an upper bound of the text form
  const textDecode = nsPer(n, () => {
    for (let i = 0; i < n / 4; i++) decodeFrame(textFrame, source, handler)
  })
  const scaledDecodeAll = nsPer(n, () => {
    for (let i = 0; i < n / DECIMALS.length; i++) {
      const p = { pos: 0 }
      for (let j = 0; j < DECIMALS.length; j++) sink += scaledDecode(scaledBytes, p).length
    }
  })
  const [text, scaledNs] = yield* alternatingMedians(ROUNDS, textDecode, scaledDecodeAll)
  return {
    textBytesPerDecimal: textBytes / DECIMALS.length,
    scaledBytesPerDecimal: scaledBytes.length / DECIMALS.length,
    textTickerDecodeNsPerDecimal: text,
    scaledDecodeNsPerDecimal: scaledNs,
    sink
  }
})

const program = Effect.gen(function*() {
  const rows: Array<Row> = []
  for (const [name, make] of [
    ["ticker", ticker],
    ["book snapshot (20+20 levels)", book],
    ["exec report", report]
  ] as const) rows.push(yield* measure(name, make))
  const decimals = yield* decimalForms
  console.log(`machine: ${machine()}, date: ${new Date().toISOString().slice(0, 10)}`)
  table(
    `Wire codecs, ns per event (median of ${ROUNDS} alternating rounds; batches of ${BATCH})`,
    ["event", "JSON enc", "JSON dec", "binary enc", "binary dec", "batch enc", "batch dec", "JSON B", "binary B", "batch B/event"],
    rows.map((r) => [
      r.event,
      r.jsonEncodeNs,
      r.jsonDecodeNs,
      r.binaryEncodeNs,
      r.binaryDecodeNs,
      r.batchEncodeNs,
      r.batchDecodeNs,
      r.jsonBytes,
      r.binaryBytes,
      r.batchBytesPerEvent
    ])
  )
  table(
    "Decimal form (decode back into the contract's string)",
    ["form", "bytes per decimal", "ns per decimal"],
    [
      ["text bytes (the codec; a whole ticker decode / 4)", decimals.textBytesPerDecimal, decimals.textTickerDecodeNsPerDecimal],
      ["scaled integer (varint mantissa + scale)", decimals.scaledBytesPerDecimal, decimals.scaledDecodeNsPerDecimal]
    ]
  )
  const t = rows[0]!
  emitJson({
    machine: machine(),
    codecTickerEncodeNs: t.binaryEncodeNs,
    codecTickerDecodeNs: t.binaryDecodeNs,
    codecTickerBatchDecodeNs: t.batchDecodeNs,
    jsonTickerEncodeNs: t.jsonEncodeNs,
    jsonTickerDecodeNs: t.jsonDecodeNs,
    rows,
    decimals: { ...decimals, sink: undefined }
  })
})

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exit(1)
})
