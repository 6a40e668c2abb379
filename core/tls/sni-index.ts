import { normalizeSni } from '../net/hostname.js'
import { persistentMapOf, type PersistentMap } from '../collections/persistent-map.js'

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

/** A pattern's claimants: the lone one as itself (the common case), else all of them, best first. */
type Claim<T> = T | readonly T[]

const isList = <T>(c: Claim<T>): c is readonly T[] => Array.isArray(c)
const winnerOf = <T>(c: Claim<T>): T => (isList(c) ? c[0]! : c)
const listOf = <T>(c: Claim<T> | undefined): readonly T[] => (c === undefined ? [] : isList(c) ? c : [c])

/**
 * What an index holds; every map is persistent, so an update shares what it does not touch. The
 * claimants of a pattern are kept in the map that serves it (one map per kind of pattern, no
 * array for a lone claimant): a worker holds one slot per ssl object, 100k of them.
 */
interface IndexState<T extends SniEntry> {
  /** exact pattern → claimants (only the first one serves) */
  readonly exact: PersistentMap<Claim<T>>
  /** wildcard text after `*` → claimants; `*.a.com` is stored under `.a.com`, `*` under '' */
  readonly wild: PersistentMap<Claim<T>>
  /** lengths of wildcard texts that do not start with a dot (`*test.com`) → how many: probed by length */
  readonly oddLengths: ReadonlyMap<number, number>
  /** the patterns claimed more than once */
  readonly conflicts: PersistentMap<SniConflict<T>>
}

/** Where an index built here keeps its state: on the index itself, so nothing outlives it (no module-level table). */
const STATE = Symbol('sni index state')

/** The distinct normalised patterns of an entry, in its order. */
function patternsOf(entry: SniEntry): string[] {
  // most objects claim one name: no Set for them (a full load visits 100k)
  if (entry.snis.length === 1) {
    const p = normalizeSni(entry.snis[0]!)
    return p === '' ? [] : [p]
  }
  const mine = new Set<string>()
  for (const raw of entry.snis) {
    const p = normalizeSni(raw)
    if (p !== '') mine.add(p)
  }
  return [...mine]
}

const byRank = (a: SniEntry, b: SniEntry): number => (outranks(a, b) ? -1 : outranks(b, a) ? 1 : 0)
const oddLength = (pattern: string): number | undefined => (pattern.startsWith('*') && pattern.length > 1 && pattern[1] !== '.' ? pattern.length - 1 : undefined)

/** The claimants of `pattern` in `st` (undefined: unclaimed). */
const claimsOf = <T extends SniEntry>(st: IndexState<T>, pattern: string): Claim<T> | undefined =>
  pattern.startsWith('*') ? st.wild.get(pattern.slice(1)) : st.exact.get(pattern)

/** The claimants sorted best first, as stored: the lone one itself, else a frozen list. */
function claimOf<T extends SniEntry>(list: T[]): Claim<T> {
  if (list.length === 1) return list[0]!
  list.sort(byRank)
  return Object.freeze(list)
}

const conflictOf = <T extends SniEntry>(pattern: string, list: readonly T[]): SniConflict<T> =>
  Object.freeze({ pattern, winner: list[0]!, losers: Object.freeze(list.slice(1)) })

/**
 * Pure: the state after the claimants of `pattern` became `list` (any order; empty: unclaimed).
 * Touches only that pattern's slots in each map.
 */
function setClaims<T extends SniEntry>(st: IndexState<T>, pattern: string, list: T[]): IndexState<T> {
  const had = claimsOf(st, pattern) !== undefined
  const claim = list.length > 0 ? claimOf(list) : undefined
  const wildcard = pattern.startsWith('*')
  const slot = wildcard ? pattern.slice(1) : pattern
  let { exact, wild, oddLengths, conflicts } = st
  if (wildcard) wild = claim !== undefined ? wild.set(slot, claim) : wild.delete(slot)
  else exact = claim !== undefined ? exact.set(slot, claim) : exact.delete(slot)
  conflicts = claim !== undefined && isList(claim) ? conflicts.set(pattern, conflictOf(pattern, claim)) : conflicts.delete(pattern)
  const odd = oddLength(pattern)
  if (odd !== undefined && had !== (claim !== undefined)) {
    const m = new Map(oddLengths)
    const n = (m.get(odd) ?? 0) + (claim !== undefined ? 1 : -1)
    if (n > 0) m.set(odd, n)
    else m.delete(odd)
    oddLengths = m
  }
  return { exact, wild, oddLengths, conflicts }
}

function indexOf<T extends SniEntry>(st: IndexState<T>): SniIndex<T> {
  const { exact, wild, oddLengths } = st
  const hasOdd = oddLengths.size > 0
  let sorted: readonly SniConflict<T>[] | undefined

  function match(raw: string): SniMatch<T> | undefined {
    const sni = normalizeSni(raw)
    const hit = exact.get(sni)
    if (hit !== undefined) return { entry: winnerOf(hit), pattern: sni }
    // Longest suffix first: probe at each dot (for `*.x` patterns) and at the lengths of odd
    // patterns; the first pattern found decides, as APISIX's longest-prefix radix lookup does.
    for (let i = 0; i < sni.length; i++) {
      if (sni.charCodeAt(i) !== 0x2e && !(hasOdd && oddLengths.has(sni.length - i))) continue
      const rest = sni.slice(i)
      const w = wild.get(rest)
      if (w === undefined) continue
      const covered = sni.slice(0, i)
      // The covered part is one label: no dot, and not empty in front of a dot (`*.a.com` ≠ `.a.com`).
      if (covered.includes('.') || (covered === '' && rest.startsWith('.'))) return undefined
      return { entry: winnerOf(w), pattern: `*${rest}` }
    }
    const any = wild.get('')
    return any !== undefined ? { entry: winnerOf(any), pattern: '*' } : undefined
  }

  const index: SniIndex<T> & { readonly [STATE]: IndexState<T> } = Object.freeze({
    [STATE]: st,
    lookup: (sni: string) => match(sni)?.entry,
    match,
    conflicts: () => (sorted ??= Object.freeze([...st.conflicts.values()].sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0)))),
    size: st.exact.size + st.wild.size,
  })
  return index
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
  // claimants gathered straight into the two maps (a list only where a pattern is shared), then
  // each map turned into a persistent map in one pass
  const exact = new Map<string, T | T[]>()
  const wild = new Map<string, T | T[]>()
  for (const entry of entries) {
    for (const p of patternsOf(entry)) {
      const wildcard = p.startsWith('*')
      const into = wildcard ? wild : exact
      const slot = wildcard ? p.slice(1) : p
      const c = into.get(slot)
      if (c === undefined) into.set(slot, entry)
      else if (Array.isArray(c)) c.push(entry)
      else into.set(slot, [c, entry])
    }
  }
  const oddLengths = new Map<number, number>()
  const conflicts = new Map<string, SniConflict<T>>()
  const settle = (m: Map<string, T | T[]>, prefix: string): PersistentMap<Claim<T>> => {
    for (const [slot, c] of m) {
      if (Array.isArray(c)) {
        const claim = claimOf(c) as readonly T[]
        m.set(slot, claim as T[])
        conflicts.set(prefix + slot, conflictOf(prefix + slot, claim))
      }
      const odd = prefix === '*' ? oddLength(prefix + slot) : undefined
      if (odd !== undefined) oddLengths.set(odd, (oddLengths.get(odd) ?? 0) + 1)
    }
    return persistentMapOf(m)
  }
  return indexOf({ exact: settle(exact, ''), wild: settle(wild, '*'), oddLengths, conflicts: persistentMapOf(conflicts) })
}

/**
 * Pure: `prev` with the entries `removed` taken out (by id) and `added` put in, as if built
 * again from the resulting entries. Costs O(patterns of the changed entries × their
 * claimants), whatever the size of the index; `prev` stays valid and unchanged.
 */
export function updateSniIndex<T extends SniEntry>(prev: SniIndex<T>, removed: Iterable<T>, added: Iterable<T>): SniIndex<T> {
  const st0 = STATE in prev ? (prev as { readonly [STATE]: IndexState<T> })[STATE] : undefined
  if (!st0) throw new TypeError('updateSniIndex: the index was not built by buildSniIndex')
  const gone = new Set<string>()
  const touched = new Set<string>()
  for (const e of removed) {
    gone.add(e.id)
    for (const p of patternsOf(e)) touched.add(p)
  }
  const incoming = new Map<string, T[]>()
  for (const e of added) {
    // an entry put in again replaces the one with its id
    gone.add(e.id)
    for (const p of patternsOf(e)) {
      touched.add(p)
      const list = incoming.get(p)
      if (list) list.push(e)
      else incoming.set(p, [e])
    }
  }
  let st = st0
  for (const p of touched) {
    const list = listOf(claimsOf(st0, p)).filter((e) => !gone.has(e.id))
    list.push(...(incoming.get(p) ?? []))
    st = setClaims(st, p, list)
  }
  return indexOf(st)
}
