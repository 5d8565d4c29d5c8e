/**
 * The strategies of this process and how each is doing: what `/status.json`
 * lists by id, and what readiness reports (a strategy that failed to start
 * makes the process not ready, naming it and the cause).
 */
import { Effect } from "effect"

export type StrategyState = "starting" | "running" | "failed" | "stopped"

export interface StrategyStatus {
  /** The strategy's id; for a module that did not load, its file. */
  readonly id: string
  readonly module?: string
  readonly description?: string
  readonly state: StrategyState
  /** Why it failed, one line. */
  readonly reason?: string
}

export class StrategyRegistry extends Effect.Service<StrategyRegistry>()("meltica/StrategyRegistry", {
  sync: () => {
    const entries = new Map<string, StrategyStatus>()
    const set = (status: StrategyStatus) => {
      entries.set(status.id, status)
    }
    return {
      set,
      /** Marks a known strategy's state (keeps its module and description). */
      mark: (id: string, state: StrategyState, reason?: string) => {
        const current = entries.get(id) ?? { id, state }
        const { reason: _old, ...rest } = current
        set(reason === undefined ? { ...rest, state } : { ...rest, state, reason })
      },
      list: (): ReadonlyArray<StrategyStatus> => [...entries.values()],
      /** One reason per strategy that failed: `strategy <id>: <cause>`. */
      readinessReasons: (): ReadonlyArray<string> => {
        const reasons: Array<string> = []
        for (const s of entries.values()) {
          if (s.state !== "failed") continue
          const reason = s.reason ?? "failed"
          // a strategy's own errors already name it (`strategy <id>: ...`)
          reasons.push(reason.startsWith(`strategy ${s.id}: `) ? reason : `strategy ${s.id}: ${reason}`)
        }
        return reasons
      }
    }
  }
}) {}
