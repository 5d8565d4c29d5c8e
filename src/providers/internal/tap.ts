/**
 * The frame tap: the one place where a venue adapter's raw traffic can be
 * observed (the raw-frame recorder, `src/record/RawFrames.ts`, is its user).
 *
 * Rules:
 * - A tap is a property of a run, not a dependency of the adapter: whoever
 *   runs a provider sets it around `run` (`Effect.provideService(FrameTap,
 *   tap)`); by default there is none and each hook costs one branch.
 * - What is observed: every text frame the WebSocket receives (in order, at
 *   its receive time), every frame the adapter sends (subscriptions and
 *   resubscriptions; application keepalives are not), every REST body the
 *   adapter uses (a depth snapshot: its URL and its arrival time), and every
 *   new connection. Never a header; URLs reach the tap as the adapter holds
 *   them, and the tap masks their credentials before they go anywhere.
 * - The hooks run synchronously on the adapter's path and must not block or
 *   fail: a tap copies references into buffers and returns.
 */
import type { Clock } from "effect"
import { Context } from "effect"
import type { RealVenueConfig } from "../../../schema/ProviderConfig.js"

/** What a run of a venue adapter tells the tap about itself. */
export interface TapRun {
  /** The provider's name on events ("binance", "kraken-eu", ...). */
  readonly provider: string
  /** The provider's configuration (its URLs are masked before they are written anywhere). */
  readonly config: RealVenueConfig
  /** The WebSocket address. */
  readonly url: string
  /** Canonical symbol -> the venue's, for every symbol of the run. */
  readonly symbolMap: Readonly<Record<string, string>>
  /** The run's clock: receive times are read from it. */
  readonly clock: Clock.Clock
}

/** The hooks of one run. */
export interface RunTap {
  /** A connection opened (the frames that follow belong to it). */
  readonly connected: () => void
  /** A text frame received on the current connection. */
  readonly received: (data: string) => void
  /** A text frame sent on the current connection. */
  readonly sent: (data: string) => void
  /** A REST body the adapter received and uses. */
  readonly fetched: (url: string, body: string) => void
}

/** The tap of the current run, if any (none by default). */
export class FrameTap extends Context.Reference<FrameTap>()("meltica/FrameTap", {
  defaultValue: (): { readonly open: ((run: TapRun) => RunTap) | undefined } => ({ open: undefined })
}) {}
