/**
 * API credentials by reference: the config names an environment variable
 * (`{ env: "BINANCE_API_KEY" }`) or a file (`{ file: "/etc/meltica/okx.secret" }`),
 * never the value. A file must be readable by its owner only (mode 0600 or
 * 0400): a file that its group or others may read is refused, as ssh refuses a
 * private key. Values come back `Redacted`, whose printed form is
 * "<redacted>", so a log line, an error or a status page that catches one by
 * mistake shows nothing. Errors name the reference, never the value.
 */
import { statSync, readFileSync } from "node:fs"
import { Data, Effect, Redacted } from "effect"

export type SecretRef = { readonly env: string } | { readonly file: string }

/** A credential could not be read: `ref` says which one and where, `reason` why. */
export class SecretUnavailable extends Data.TaggedError("SecretUnavailable")<{
  readonly venue: string
  /** The credential's role ("apiKey", "secret", "passphrase", "privateKey"). */
  readonly name: string
  /** "env FOO" or "file /path". */
  readonly ref: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.venue} ${this.name} (${this.ref}): ${this.reason}`
  }
}

export const describeRef = (ref: SecretRef): string => "env" in ref ? `env ${ref.env}` : `file ${ref.file}`

/**
 * Why a file may not hold a secret (its mode lets group or others read or
 * write it, it is not a regular file, it cannot be read), or undefined.
 */
export const fileSecretProblem = (path: string): string | undefined => {
  let st
  try {
    st = statSync(path)
  } catch (e) {
    return `cannot read it: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`
  }
  if (!st.isFile()) return "not a regular file"
  if ((st.mode & 0o077) !== 0) {
    return `its mode ${(st.mode & 0o777).toString(8).padStart(4, "0")} lets others read it: chmod 600 it`
  }
  return undefined
}

/** Why the reference cannot be resolved now, without reading the value into anything printable. */
export const secretProblem = (ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string | undefined => {
  if ("env" in ref) {
    const v = env[ref.env]
    return v === undefined || v.length === 0 ? "the environment variable is not set" : undefined
  }
  return fileSecretProblem(ref.file)
}

/** Reads a secret by reference (trailing whitespace of a file trimmed). */
export const readSecret = (
  venue: string,
  name: string,
  ref: SecretRef,
  env: NodeJS.ProcessEnv = process.env
): Effect.Effect<Redacted.Redacted<string>, SecretUnavailable> =>
  Effect.suspend(() => {
    const fail = (reason: string) => Effect.fail(new SecretUnavailable({ venue, name, ref: describeRef(ref), reason }))
    const problem = secretProblem(ref, env)
    if (problem !== undefined) return fail(problem)
    if ("env" in ref) return Effect.succeed(Redacted.make(env[ref.env]!))
    try {
      const text = readFileSync(ref.file, "utf8").trim()
      return text.length === 0 ? fail("the file is empty") : Effect.succeed(Redacted.make(text))
    } catch (e) {
      return fail(`cannot read it: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`)
    }
  })
