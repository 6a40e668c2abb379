import { snisOf, type Ssl } from '../core/resources/ssl.js'
import { isObject } from './patch.js'

/**
 * The admin's shared-SNI facts: which stored ssl objects claim which names. An ssl PUT warns
 * when another object claims one of its names; answering that from an index kept in memory
 * (fed by one etcd watch, admin/sni-watch.ts) costs a few Map probes instead of a listing of
 * every ssl object.
 */

/** One stored ssl object that claims a name: its key and its normalised SNIs in stored order. */
export interface SniClaim {
  readonly key: string
  readonly snis: readonly string[]
}

/**
 * The normalised SNIs a stored value claims, or undefined when it takes no part in SNI matching
 * (not an object, status 0, type client), as the shared-SNI warning has always counted them.
 */
export function claimedSnis(value: unknown): readonly string[] | undefined {
  if (!isObject(value) || value['status'] === 0 || value['type'] === 'client') return undefined
  const v = value as Pick<Ssl, 'sni' | 'snis'>
  // a foreign writer may have stored anything: only names that are strings count
  const snis: unknown = v.snis ?? (v.sni === undefined ? [] : [v.sni])
  if (!Array.isArray(snis) || !snis.every((s) => typeof s === 'string')) return []
  return snisOf({ snis: snis as string[] })
}

/** Byte order of UTF-8 keys, as etcd lists them. */
export const byKeyBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/**
 * Pure: the claims of `kvs` (key, parsed value) other than `except` that share a name with
 * `names`, in key byte order. The reference the index must agree with.
 */
export function claimsIn(kvs: Iterable<{ readonly key: string; readonly value: unknown }>, names: ReadonlySet<string>, except: string): SniClaim[] {
  const out: SniClaim[] = []
  for (const kv of kvs) {
    if (kv.key === except) continue
    const snis = claimedSnis(kv.value)
    if (snis && snis.some((s) => names.has(s))) out.push({ key: kv.key, snis })
  }
  return out.sort((a, b) => byKeyBytes(a.key, b.key))
}

/** A mutable name → claimants index; each change costs O(names of the changed object). */
export interface SniClaims {
  /** Records the stored value of `key` (undefined: not JSON), replacing what it claimed before. */
  put(key: string, value: unknown): void
  delete(key: string): void
  clear(): void
  /** Like claimsIn over everything recorded. */
  sharing(names: ReadonlySet<string>, except: string): SniClaim[]
  /** Keys recorded as claiming at least one name. */
  readonly size: number
}

/** One name's claimants: a lone key as itself (most names have one), else the keys in claim order. */
type Claimants = string | string[]

/** A key's stored names: a lone name as itself, else the normalised list as stored (duplicates kept). */
type Names = string | readonly string[]

const namesList = (n: Names): readonly string[] => (typeof n === 'string' ? [n] : n)

/**
 * Creates an empty index. Lean on purpose (the primary holds one entry per ssl object, 100k of
 * them): key → names and name → key(s), a bare string where there is only one, no Set per name.
 */
export function createSniClaims(): SniClaims {
  const byKey = new Map<string, Names>()
  const byName = new Map<string, Claimants>()
  const unclaim = (name: string, key: string): void => {
    const c = byName.get(name)
    if (c === undefined) return
    if (typeof c === 'string') {
      if (c === key) byName.delete(name)
      return
    }
    const i = c.indexOf(key)
    if (i < 0) return
    c.splice(i, 1)
    if (c.length === 1) byName.set(name, c[0]!)
  }
  const claim = (name: string, key: string): void => {
    const c = byName.get(name)
    if (c === undefined) byName.set(name, key)
    else if (typeof c === 'string') {
      if (c !== key) byName.set(name, [c, key])
      // a key's names are claimed in one go after drop(key): a repeated name finds the key last
    } else if (c[c.length - 1] !== key) c.push(key)
  }
  const drop = (key: string): void => {
    const old = byKey.get(key)
    if (old === undefined) return
    byKey.delete(key)
    if (typeof old === 'string') unclaim(old, key)
    else for (const n of old) unclaim(n, key)
  }
  return {
    put(key, value) {
      drop(key)
      const snis = claimedSnis(value)
      if (!snis || snis.length === 0) return
      const first = snis[0]!
      byKey.set(key, snis.length === 1 ? first : snis)
      for (const n of snis) claim(n, key)
    },
    delete: drop,
    clear() {
      byKey.clear()
      byName.clear()
    },
    sharing(names, except) {
      const keys = new Set<string>()
      for (const n of names) {
        const c = byName.get(n)
        if (c === undefined) continue
        if (typeof c === 'string') {
          if (c !== except) keys.add(c)
        } else for (const k of c) if (k !== except) keys.add(k)
      }
      return [...keys].sort(byKeyBytes).map((key) => ({ key, snis: namesList(byKey.get(key) ?? []) }))
    },
    get size() {
      return byKey.size
    },
  }
}

/**
 * The envelope warnings for an ssl object claiming `mine` (normalised), one per other object
 * sharing a name, worded as they always were.
 */
export function sharedSniWarnings(mine: readonly string[], claims: readonly SniClaim[]): string[] {
  const set = new Set(mine)
  const out: string[] = []
  for (const c of claims) {
    const theirs = c.snis.filter((s) => set.has(s))
    if (theirs.length > 0) {
      out.push(`sni ${theirs.map((s) => JSON.stringify(s)).join(', ')} also claimed by ssl ${c.key.slice(c.key.lastIndexOf('/') + 1)}; the object updated last serves it`)
    }
  }
  return out
}
