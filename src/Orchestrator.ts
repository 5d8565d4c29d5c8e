/**
 * The Orchestrator: between the providers and the Dispatcher.
 *
 * - It is the one place that stamps `routingVersion` on every event it
 *   forwards, merged or not.
 * - It applies the active routing table: an event from a provider that does
 *   not feed its symbol is dropped (counted and recycled). With no table
 *   flipped in yet, every provider's events pass.
 * - It runs the windowed merges (`internal/mergeWindow.ts`): a fragment of a
 *   merged (symbol, kind) is cloned into its window while the original goes on
 *   to raw subscribers. A window that meets its merge's policy (all venues, a
 *   quorum, any) becomes one pooled `MergedEvent` whose payload names the
 *   venues missing from it (a partial merge, counted with them); one short of
 *   its policy is suppressed and counted with its missing providers; a late
 *   fragment is dropped and counted. Every fragment goes to the Recycler the
 *   moment its window closes.
 * - Routing updates are staged, then flipped atomically, which bumps the
 *   routing version.
 * - When an execution venue is present, it sees the market data first (it
 *   does not take ownership), so paper orders fill against the live book.
 */
import { Context, Data, Effect, FiberSet, Layer, Option } from "effect"
import type { MergeKind, StageRouting, SymbolRoute } from "../schema/Control.js"
import { Dispatcher } from "./Dispatcher.js"
import type { AnyEvent, Event, MergedEvent } from "./Event.js"
import { ExecutionVenue } from "./ExecutionVenue.js"
import { makeDeadlineTimer } from "./internal/deadlineTimer.js"
import { type MergeConfig, MergeWindows, type Outcome } from "./internal/mergeWindow.js"
import { Pool } from "./Pool.js"
import { generationOf, Holdings, Recycler } from "./Recycler.js"

export class NothingStaged extends Data.TaggedError("NothingStaged")<{
  readonly expectedStagedId: string | undefined
}> {
  override get message(): string {
    return this.expectedStagedId === undefined
      ? "no routing table is staged"
      : `the staged routing table is not ${this.expectedStagedId}`
  }
}

export interface OrchestratorStats {
  readonly routingVersion: number
  readonly stagedId: string | undefined
  readonly ingested: number
  readonly forwarded: number
  readonly unrouted: number
  /** Merged events emitted, partial ones included. */
  readonly merged: number
  /** Merged events emitted with venues missing (their policy is `quorum` or `any`). */
  readonly partial: number
  readonly suppressed: number
  /** Missing providers of suppressed windows, by provider. */
  readonly missing: Readonly<Record<string, number>>
  /** Missing providers of partial merged events, by provider. */
  readonly partialMissing: Readonly<Record<string, number>>
  readonly late: number
  readonly replaced: number
  readonly openWindows: number
  readonly heldFragments: number
}

export interface OrchestratorSettings {
  /** The routing version the gateway starts at. */
  readonly initialVersion: number
}

export class OrchestratorConfig extends Context.Tag("meltica/OrchestratorConfig")<
  OrchestratorConfig,
  OrchestratorSettings
>() {
  static readonly layer = (settings: Partial<OrchestratorSettings> = {}) =>
    Layer.succeed(OrchestratorConfig, { initialVersion: 1, ...settings })
  static readonly Default = OrchestratorConfig.layer()
}

interface ActiveRoute {
  readonly providers: ReadonlySet<string>
}

export class Orchestrator extends Effect.Service<Orchestrator>()("meltica/Orchestrator", {
  scoped: Effect.gen(function*() {
    const settings = yield* OrchestratorConfig
    const pool = yield* Pool
    const recycler = yield* Recycler
    const dispatcher = yield* Dispatcher
    const venue = yield* Effect.serviceOption(ExecutionVenue)
    const clock = yield* Effect.clock
    const timers = yield* FiberSet.make<void>()
    const recycle = recycler.unsafeRecycle
    const nowMs = () => clock.unsafeCurrentTimeMillis()

    const windows = new MergeWindows()
    // the merge windows' fragments (our clones), with the generation of each
    const fragments = new Holdings()
    const recycleFragment = (f: AnyEvent): void => {
      recycle(f, fragments.letGo(f))
    }
    const recycleFragments = (fs: Iterable<AnyEvent>): void => {
      for (const f of fs) recycleFragment(f)
    }
    let version = settings.initialVersion
    // the venue's execution reports carry the version current at their creation
    if (Option.isSome(venue)) venue.value.followRoutingVersion(() => version)
    let routes: ReadonlyMap<string, ActiveRoute> | undefined
    let staged: { readonly id: string; readonly routes: ReadonlyArray<SymbolRoute> } | undefined
    let mergeSeq = 0
    const counts = { ingested: 0, forwarded: 0, unrouted: 0, merged: 0, partial: 0, suppressed: 0, late: 0, replaced: 0 }
    const missing: Record<string, number> = {}
    const partialMissing: Record<string, number> = {}

    const forward = (e: Event | MergedEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        e.routingVersion = version
        counts.forwarded++
        return dispatcher.dispatch(e)
      })

    /** Turns the engine's outcomes into events, counts and recycles. */
    const settle = (outcomes: ReadonlyArray<Outcome>): Effect.Effect<void> => {
      let out: Effect.Effect<void> = Effect.void
      for (const o of outcomes) {
        switch (o._tag) {
          case "Merged": {
            recycleFragments(o.fragments)
            counts.merged++
            if (o.missing.length > 0) {
              counts.partial++
              for (const p of o.missing) partialMissing[p] = (partialMissing[p] ?? 0) + 1
            }
            const m = pool.acquireMerged()
            m.kind = o.kind
            m.symbol = o.symbol
            m.provider = "merged"
            m.mergeId = o.mergeId
            m.traceId = `merge-${o.mergeId}-${++mergeSeq}`
            m.sourceProviders = o.sourceProviders
            m.payload = o.payload
            m.ingestTs = clock.unsafeCurrentTimeMillis() * 1000
            out = Effect.zipRight(out, forward(m))
            break
          }
          case "Suppressed":
            recycleFragments(o.fragments)
            counts.suppressed++
            for (const p of o.missing) missing[p] = (missing[p] ?? 0) + 1
            break
          case "Late":
            counts.late++
            recycleFragment(o.fragment)
            break
          case "Replaced":
            counts.replaced++
            recycleFragment(o.fragment)
            break
          case "Ignored":
            recycleFragment(o.fragment)
            break
        }
      }
      return out
    }

    /** Closes the windows whose duration has elapsed. */
    const windowTimer = makeDeadlineTimer({
      fibers: timers,
      nowMs,
      nextDeadline: () => windows.nextDeadline(),
      expire: (now) => Effect.suspend(() => settle(windows.expire(now)))
    })

    // a venue without the unsafe form gives an effect that does its work when run, after the call
    const tapVenue = Option.isSome(venue) ? (venue.value.unsafeOnMarketData ?? venue.value.onMarketData) : undefined

    /** Ingests `e` now: its ownership passes at the call; answers what is left to run. */
    const ingestNow = (e: Event): Effect.Effect<void> => {
      counts.ingested++
      if (routes !== undefined && routes.get(e.symbol)?.providers.has(e.provider) !== true) {
        counts.unrouted++
        recycle(e, generationOf(e))
        return Effect.void
      }
      // the venue sees the event first; what that produced (reports) is handed over before the event goes on
      const tap = tapVenue === undefined ? Effect.void : tapVenue(e)
      if (!windows.has(e.symbol, e.kind)) {
        if (tap !== Effect.void) return Effect.zipRight(tap, forward(e))
        e.routingVersion = version
        counts.forwarded++
        return dispatcher.unsafeDispatch(e)
      }
      const fragment = pool.clone(e)
      fragments.hold(fragment)
      const settled = settle(windows.add(fragment, nowMs()))
      return Effect.zipRight(tap, Effect.zipRight(settled, Effect.zipRight(windowTimer.arm(), forward(e))))
    }

    /** Takes ownership of `e` when the returned effect runs. */
    const ingest = (e: Event): Effect.Effect<void> => Effect.suspend(() => ingestNow(e))

    /**
     * Configures (or reconfigures) a merge; fragments of a window cut short are
     * recycled. A request without a policy keeps the policy of the merge already
     * running for its key (the routing table's, say): a strategy subscribing to a
     * configured merge does not turn it back to the default.
     */
    const configureMerge = (cfg: MergeConfig): Effect.Effect<void> =>
      Effect.sync(() => {
        const running = cfg.policy === undefined
          ? windows.configs().find((c) => c.symbol === cfg.symbol && c.kind === cfg.kind)
          : undefined
        const effective = running === undefined ? cfg : { ...cfg, policy: running.policy, quorum: running.quorum }
        recycleFragments(windows.configure(effective))
      })

    const stage = (cmd: StageRouting): Effect.Effect<string> =>
      Effect.sync(() => {
        staged = { id: cmd.commandId, routes: cmd.routes }
        return cmd.commandId
      })

    /** Switches to the staged table in one step and bumps the routing version. */
    const flip = (expectedStagedId?: string): Effect.Effect<number, NothingStaged> =>
      Effect.suspend(() => {
        if (staged === undefined || (expectedStagedId !== undefined && staged.id !== expectedStagedId)) {
          return Effect.fail(new NothingStaged({ expectedStagedId }))
        }
        const next = staged
        staged = undefined
        const wanted = new Map<string, MergeConfig>()
        for (const r of next.routes) {
          for (const m of r.merges) {
            wanted.set(`${r.symbol}|${m.kind}`, {
              symbol: r.symbol,
              kind: m.kind,
              providers: m.providers,
              windowMs: m.windowMs,
              maxFragments: m.maxFragments,
              policy: m.policy,
              quorum: m.quorum
            })
          }
        }
        for (const c of windows.configs()) {
          if (!wanted.has(`${c.symbol}|${c.kind}`)) recycleFragments(windows.remove(c.symbol, c.kind))
        }
        for (const c of wanted.values()) recycleFragments(windows.configure(c))
        routes = new Map(next.routes.map((r) => [r.symbol, { providers: new Set(r.providers) }]))
        version++
        return Effect.succeed(version)
      })

    yield* Effect.addFinalizer(() => Effect.sync(() => recycleFragments(windows.drain())))

    return {
      ingest,
      routingVersion: () => version,
      configureMerge,
      removeMerge: (symbol: string, kind: MergeKind) =>
        Effect.sync(() => recycleFragments(windows.remove(symbol, kind))),
      stage,
      flip,
      stats: (): OrchestratorStats => ({
        routingVersion: version,
        stagedId: staged?.id,
        ...counts,
        missing: { ...missing },
        partialMissing: { ...partialMissing },
        openWindows: windows.openWindows(),
        heldFragments: windows.heldFragments()
      })
    } as const
  }),
  dependencies: [OrchestratorConfig.Default]
}) {}
