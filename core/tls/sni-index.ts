import { normalizeSni } from '../net/hostname.js'

/**
 * What the index needs from an ssl object (or anything carrying one). The caller passes only the
 * objects that take part in SNI matching: `type` server (or absent) and `status` 1 (or absent),
 * as APISIX's radixtree_sni does (spec §5.2); `snis` is the object's `snis`, or `[sni]`.
 */
export interface SniEntry {
  readonly id: string
  readonly snis: readonly string[]
  /** The object's update_time (unix seconds); the later one serves a name two objects claim. */
  readonly updateTime: number
}

/** A name claimed by several objects: who serves it and who does not. */
export interface SniConflict<T extends SniEntry> {
  /** The normalised pattern (`a.com`, `*.a.com`, `*`). */
  readonly pattern: string
  readonly winner: T
  /** The other claimants, best first. */
  readonly losers: readonly T[]
}

/** A successful lookup: the entry and the normalised pattern that matched. */
export interface SniMatch<T extends SniEntry> {
  readonly entry: T
  readonly pattern: string
}

/** An immutable SNI → entry index; lookups cost a few Map probes whatever the entry count. */
export interface SniIndex<T extends SniEntry> {
  /** The entry serving `sni` (normalised here: case and one trailing dot ignored), if any. */
  lookup(sni: string): T | undefined
  /** Like lookup, with the pattern that matched (for logs). */
  match(sni: string): SniMatch<T> | undefined
  /** Every pattern claimed by more than one entry, in pattern order. */
  conflicts(): readonly SniConflict<T>[]
  /** Number of distinct patterns indexed. */
  readonly size: number
}

/** True when `a` takes precedence over `b` for a shared name: later update_time, then greater id. */
export function outranks(a: SniEntry, b: SniEntry): boolean {
  if (a.updateTime !== b.updateTime) return a.updateTime > b.updateTime
  return a.id > b.id
}

/**
 * Builds the index. Matching follows APISIX's radixtree_sni (spec §5.3–5.5):
 * - an exact name beats every wildcard;
 * - among wildcards, the one whose text after `*` is the longest suffix of the name is chosen,
 *   and then it must cover exactly one label (`*.a.com` takes `x.a.com`, never `a.com` nor
 *   `y.x.a.com`); when it does not, there is no fallback to a shorter wildcard or to `*`;
 * - `*` alone takes any name that no other pattern's suffix reaches;
 * - a pattern like `*test.com` (no dot after `*`) takes `test.com` and `xtest.com`, not `a.test.com`.
 * Deviation: APISIX's `snis: ["*"]` takes only dot-less names (a quirk of its post-check); here
 * `*` means the same in `sni` and `snis`.
 */
export function buildSniIndex<T extends SniEntry>(entries: Iterable<T>): SniIndex<T> {
  // pattern → claimants, best first (only the first one serves)
  const claims = new Map<string, T[]>()
  for (const entry of entries) {
    const mine = new Set<string>()
    for (const raw of entry.snis) {
      const p = normalizeSni(raw)
      if (p === '' || mine.has(p)) continue
      mine.add(p)
      const list = claims.get(p)
      if (list) list.push(entry)
      else claims.set(p, [entry])
    }
  }
  const exact = new Map<string, T>()
  // wildcard text after `*` → winner; `*.a.com` is stored under `.a.com`, `*` under ''
  const wild = new Map<string, T>()
  // lengths of wildcard texts that do not start with a dot (`*test.com`): probed by length
  const oddLengths = new Set<number>()
  const conflicts: SniConflict<T>[] = []
  for (const [pattern, list] of claims) {
    if (list.length > 1) {
      list.sort((a, b) => (outranks(a, b) ? -1 : outranks(b, a) ? 1 : 0))
      conflicts.push({ pattern, winner: list[0]!, losers: list.slice(1) })
    }
    const winner = list[0]!
    if (pattern.startsWith('*')) {
      const rest = pattern.slice(1)
      wild.set(rest, winner)
      if (rest !== '' && !rest.startsWith('.')) oddLengths.add(rest.length)
    } else {
      exact.set(pattern, winner)
    }
  }
  conflicts.sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0))
  const frozenConflicts = Object.freeze(conflicts)
  const hasOdd = oddLengths.size > 0

  function match(raw: string): SniMatch<T> | undefined {
    const sni = normalizeSni(raw)
    const hit = exact.get(sni)
    if (hit) return { entry: hit, pattern: sni }
    // Longest suffix first: probe at each dot (for `*.x` patterns) and at the lengths of odd
    // patterns; the first pattern found decides, as APISIX's longest-prefix radix lookup does.
    for (let i = 0; i < sni.length; i++) {
      if (sni.charCodeAt(i) !== 0x2e && !(hasOdd && oddLengths.has(sni.length - i))) continue
      const rest = sni.slice(i)
      const w = wild.get(rest)
      if (!w) continue
      const covered = sni.slice(0, i)
      // The covered part is one label: no dot, and not empty in front of a dot (`*.a.com` ≠ `.a.com`).
      if (covered.includes('.') || (covered === '' && rest.startsWith('.'))) return undefined
      return { entry: w, pattern: `*${rest}` }
    }
    const any = wild.get('')
    return any ? { entry: any, pattern: '*' } : undefined
  }

  return Object.freeze({
    lookup: (sni: string) => match(sni)?.entry,
    match,
    conflicts: () => frozenConflicts,
    size: claims.size,
  })
}
