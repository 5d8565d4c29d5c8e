/** Every file under `dir`, depth first, as paths joined to `dir`. */
import { readdirSync } from "node:fs"
import { join } from "node:path"

export const filesUnder = (dir: string, out: Array<string> = []): Array<string> => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) filesUnder(p, out)
    else if (entry.isFile()) out.push(p)
  }
  return out
}
