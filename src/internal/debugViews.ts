/**
 * Debug mode's poisoning: whoever holds a pooled object holds a view of it,
 * and the recycle revokes that view, so the first access after it fails with
 * `UseAfterRecycle` naming the field and the recycle's stack. The holders of
 * a shared event (a fan-out, `sharing.ts`) hold read-only views: a write
 * fails at once with `SharedEventWrite`, since every other holder reads the
 * same object.
 */
import { Data } from "effect"
import type { AnyEvent, PoolType } from "../Event.js"
import { UseAfterRecycle } from "../Errors.js"

/** A holder of a shared (read-only) event tried to change it. */
export class SharedEventWrite extends Data.TaggedError("SharedEventWrite")<{
  readonly pool: PoolType
  readonly field: string
  readonly operation: "set" | "delete" | "define"
  readonly traceId: string
  readonly acquireStack: string
}> {
  override get message(): string {
    return `write to a shared ${this.pool}: ${this.operation} '${this.field}' (trace ${this.traceId}); ` +
      `a fan-out's subscribers share one read-only event`
  }
}

export interface ViewRecord {
  readonly target: AnyEvent
  readonly view: AnyEvent
  readonly acquired: StackTrace
  recycled: StackTrace | undefined
}

/**
 * A call stack captured now and formatted only when read: V8 records the
 * frames cheaply at construction, the text (with source maps) costs more.
 */
export class StackTrace {
  private readonly error = new Error()
  private text: string | undefined
  constructor(private readonly skip: number) {}
  get stack(): string {
    if (this.text === undefined) {
      this.text = (this.error.stack ?? "").split("\n").slice(this.skip + 2).join("\n")
    }
    return this.text
  }
}

export const captureStack = (skip: number): StackTrace => new StackTrace(skip + 1)

export class DebugViews {
  private readonly records = new WeakMap<object, ViewRecord>()
  /** Views handed out and not yet recycled: the leak report. */
  readonly outstanding = new Set<ViewRecord>()

  /** A view of `target` for its holder; `readOnly` for a holder of a shared event. */
  wrap(target: AnyEvent, readOnly = false): AnyEvent {
    const record: ViewRecord = {
      target,
      view: undefined as unknown as AnyEvent,
      acquired: captureStack(2),
      recycled: undefined
    }
    const check = (operation: UseAfterRecycle["operation"], field: PropertyKey) => {
      if (record.recycled !== undefined) {
        throw new UseAfterRecycle({
          pool: target._pool,
          field: String(field),
          operation,
          recycleStack: record.recycled.stack,
          acquireStack: record.acquired.stack
        })
      }
    }
    const write = (operation: SharedEventWrite["operation"], field: PropertyKey) => {
      check(operation, field)
      if (readOnly) {
        throw new SharedEventWrite({
          pool: target._pool,
          field: String(field),
          operation,
          traceId: target.traceId,
          acquireStack: record.acquired.stack
        })
      }
    }
    const view = new Proxy(target, {
      get(t, p) {
        check("get", p)
        return Reflect.get(t, p)
      },
      set(t, p, v) {
        write("set", p)
        return Reflect.set(t, p, v)
      },
      has(t, p) {
        check("has", p)
        return Reflect.has(t, p)
      },
      deleteProperty(t, p) {
        write("delete", p)
        return Reflect.deleteProperty(t, p)
      },
      ownKeys(t) {
        check("keys", "*")
        return Reflect.ownKeys(t)
      },
      defineProperty(t, p, d) {
        write("define", p)
        return Reflect.defineProperty(t, p, d)
      }
    })
    ;(record as { view: AnyEvent }).view = view
    this.records.set(view, record)
    this.outstanding.add(record)
    return view
  }

  /** The record behind a view, or undefined for an object that is not a view. */
  resolve(obj: object): ViewRecord | undefined {
    return this.records.get(obj)
  }
}
