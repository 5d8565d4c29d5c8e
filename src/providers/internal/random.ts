/**
 * A small seeded PRNG (mulberry32): the same seed yields the same stream on
 * every platform, which is what makes simulated venues reproducible.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number
  chance(p: number): boolean
}

const hash = (s: string): number => {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return h >>> 0
}

export const makeRng = (seed: number, salt = ""): Rng => {
  let a = (hash(`${seed}|${salt}`) ^ seed) >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => p > 0 && next() < p
  }
}

/** An integer amount of 10^-dp units as a fixed-precision decimal string. */
export const formatUnits = (units: number, dp: number): string => {
  if (dp === 0) return String(units)
  const s = String(units).padStart(dp + 1, "0")
  return `${s.slice(0, -dp)}.${s.slice(-dp)}`
}
