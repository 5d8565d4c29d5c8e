/**
 * Before the suite: the servers and tools some tests drive, installed from
 * Debian's packages when missing (`nats-server` for the NATS tests, `chromium`
 * for the status-page test), so that `npm install && npm test` passes on a
 * fresh machine. Where they cannot be installed, the suite stops here with the
 * reason rather than failing later in the middle of a test.
 */
import { execFileSync, execSync } from "node:child_process"
import { existsSync } from "node:fs"

const has = (command: string): boolean => {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

const needed = (): Array<string> => [
  ...(has("nats-server") ? [] : ["nats-server"]),
  ...(existsSync("/usr/bin/chromium") ? [] : ["chromium"])
]

export default function setup(): void {
  const missing = needed()
  if (missing.length === 0) return
  if (!has("apt-get") || process.getuid?.() !== 0) {
    throw new Error(`the tests need ${missing.join(" and ")}: install them (apt-get install -y ${missing.join(" ")})`)
  }
  console.log(`installing ${missing.join(", ")} from Debian's packages for the tests`)
  execSync(`apt-get update && apt-get install -y ${missing.join(" ")}`, { stdio: "inherit" })
  const still = needed()
  if (still.length > 0) throw new Error(`could not install ${still.join(" and ")}`)
}
