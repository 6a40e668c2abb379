/**
 * An immutable string-keyed map (a hash array mapped trie): `set` and `delete` return a new map
 * sharing every untouched node with the old one, so a change costs O(log32 n) whatever the size,
 * and an old version stays valid for whoever still holds it. It implements ReadonlyMap, so code
 * that reads a snapshot's maps needs no change; its iteration order is the keys' hash order.
 */

interface Leaf<V> {
  readonly t: 0
  readonly hash: number
  readonly key: string
  readonly value: V
}
interface Collision<V> {
  readonly t: 1
  readonly hash: number
  readonly pairs: readonly Leaf<V>[]
}
interface Branch<V> {
  readonly t: 2
  readonly bitmap: number
  readonly kids: readonly Node<V>[]
}
type Node<V> = Leaf<V> | Collision<V> | Branch<V>

/** An immutable map: ReadonlyMap plus `set`/`delete` returning the next version. */
export interface PersistentMap<V> extends ReadonlyMap<string, V> {
  set(key: string, value: V): PersistentMap<V>
  delete(key: string): PersistentMap<V>
}

/** One key whose value differs between two versions (undefined: absent on that side). */
export interface MapChange<V> {
  readonly key: string
  readonly before: V | undefined
  readonly after: V | undefined
}

const BITS = 5
const MASK = 31

/** Bits of a key's hash: 30, so that it is a small integer (a 32-bit one is a heap number per leaf). */
const HASH_BITS = 30

/** FNV-1a over UTF-16 code units, its low 30 bits (keys whose 32-bit hashes collide still do). */
function hashOf(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h & 0x3fffffff
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff
}

const frag = (hash: number, shift: number): number => (hash >>> shift) & MASK

function lookup<V>(root: Node<V> | undefined, hash: number, key: string): Leaf<V> | undefined {
  let node = root
  let shift = 0
  while (node) {
    if (node.t === 0) return node.key === key ? node : undefined
    if (node.t === 1) return node.hash === hash ? node.pairs.find((p) => p.key === key) : undefined
    const bit = 1 << frag(hash, shift)
    if ((node.bitmap & bit) === 0) return undefined
    node = node.kids[popcount(node.bitmap & (bit - 1))]
    shift += BITS
  }
  return undefined
}

/** Two nodes with different hashes under one new branch at `shift`. */
function join<V>(a: Leaf<V> | Collision<V>, b: Leaf<V>, shift: number): Branch<V> {
  const fa = frag(a.hash, shift)
  const fb = frag(b.hash, shift)
  if (fa === fb) return { t: 2, bitmap: 1 << fa, kids: [join(a, b, shift + BITS)] }
  return { t: 2, bitmap: (1 << fa) | (1 << fb), kids: fa < fb ? [a, b] : [b, a] }
}

function insert<V>(node: Node<V> | undefined, leaf: Leaf<V>, shift: number): Node<V> {
  if (!node) return leaf
  if (node.t === 0) {
    if (node.key === leaf.key) return node.value === leaf.value ? node : leaf
    if (node.hash === leaf.hash) return { t: 1, hash: leaf.hash, pairs: [node, leaf] }
    return join(node, leaf, shift)
  }
  if (node.t === 1) {
    if (node.hash !== leaf.hash) return join(node, leaf, shift)
    const i = node.pairs.findIndex((p) => p.key === leaf.key)
    if (i >= 0 && node.pairs[i]!.value === leaf.value) return node
    const pairs = i >= 0 ? node.pairs.map((p, j) => (j === i ? leaf : p)) : [...node.pairs, leaf]
    return { t: 1, hash: node.hash, pairs }
  }
  const bit = 1 << frag(leaf.hash, shift)
  const idx = popcount(node.bitmap & (bit - 1))
  if ((node.bitmap & bit) === 0) {
    const kids = node.kids.slice()
    kids.splice(idx, 0, leaf)
    return { t: 2, bitmap: node.bitmap | bit, kids }
  }
  const kid = node.kids[idx]!
  const next = insert(kid, leaf, shift + BITS)
  if (next === kid) return node
  const kids = node.kids.slice()
  kids[idx] = next
  return { t: 2, bitmap: node.bitmap, kids }
}

function remove<V>(node: Node<V>, hash: number, key: string, shift: number): Node<V> | undefined {
  if (node.t === 0) return node.key === key ? undefined : node
  if (node.t === 1) {
    if (node.hash !== hash) return node
    const pairs = node.pairs.filter((p) => p.key !== key)
    if (pairs.length === node.pairs.length) return node
    return pairs.length === 1 ? pairs[0] : { t: 1, hash, pairs }
  }
  const bit = 1 << frag(hash, shift)
  if ((node.bitmap & bit) === 0) return node
  const idx = popcount(node.bitmap & (bit - 1))
  const kid = node.kids[idx]!
  const next = remove(kid, hash, key, shift + BITS)
  if (next === kid) return node
  if (next === undefined) {
    if (node.kids.length === 1) return undefined
    const kids = node.kids.filter((_, j) => j !== idx)
    // a lone leaf (or collision) can sit higher up: lookups compare the whole key
    if (kids.length === 1 && kids[0]!.t !== 2) return kids[0]
    return { t: 2, bitmap: node.bitmap & ~bit, kids }
  }
  if (node.kids.length === 1 && next.t !== 2) return next
  const kids = node.kids.slice()
  kids[idx] = next
  return { t: 2, bitmap: node.bitmap, kids }
}

/** Every leaf under `node`, depth first, with an explicit stack (nested generators cost a hop per level). */
function* leaves<V>(node: Node<V> | undefined): Generator<Leaf<V>, undefined, unknown> {
  if (!node) return undefined
  const nodes: Node<V>[] = [node]
  while (nodes.length > 0) {
    const n = nodes.pop()!
    if (n.t === 0) yield n
    else if (n.t === 1) yield* n.pairs
    else for (let i = n.kids.length - 1; i >= 0; i--) nodes.push(n.kids[i]!)
  }
  return undefined
}

/**
 * An iterator over the leaves picking one thing each: a plain object with next() and an explicit
 * stack, about ten times cheaper per element than nested generators (readers iterate every ssl
 * object per change).
 */
function each<V, T>(root: Node<V> | undefined, pick: (l: Leaf<V>) => T): MapIterator<T> {
  const nodes: Node<V>[] = root ? [root] : []
  let pairs: readonly Leaf<V>[] = []
  let p = 0
  const it = {
    next(): IteratorResult<T, undefined> {
      for (;;) {
        if (p < pairs.length) return { done: false, value: pick(pairs[p++]!) }
        const n = nodes.pop()
        if (n === undefined) return { done: true, value: undefined }
        if (n.t === 0) return { done: false, value: pick(n) }
        if (n.t === 1) {
          pairs = n.pairs
          p = 0
        } else for (let i = n.kids.length - 1; i >= 0; i--) nodes.push(n.kids[i]!)
      }
    },
    [Symbol.iterator]: () => it,
  }
  return it as MapIterator<T>
}

/** Maps that came out of this module, with their root (for diff). */
const roots = new WeakMap<object, Node<unknown> | undefined>()

function wrap<V>(root: Node<V> | undefined, size: number): PersistentMap<V> {
  const map: PersistentMap<V> = {
    size,
    get: (key) => lookup(root, hashOf(key), key)?.value,
    has: (key) => lookup(root, hashOf(key), key) !== undefined,
    set(key, value) {
      const hash = hashOf(key)
      const had = lookup(root, hash, key) !== undefined
      const next = insert(root, { t: 0, hash, key, value }, 0)
      return next === root ? map : wrap(next, had ? size : size + 1)
    },
    delete(key) {
      if (!root) return map
      const next = remove(root, hashOf(key), key, 0)
      return next === root ? map : wrap(next, size - 1)
    },
    forEach(fn, thisArg?: unknown) {
      const it = each(root, (l) => l)
      for (let r = it.next(); r.done !== true; r = it.next()) fn.call(thisArg, r.value.value, r.value.key, map)
    },
    entries: () => each(root, (l): [string, V] => [l.key, l.value]),
    keys: () => each(root, (l) => l.key),
    values: () => each(root, (l) => l.value),
    [Symbol.iterator]: () => map.entries(),
  }
  roots.set(map, root)
  return Object.freeze(map)
}

const EMPTY = wrap<never>(undefined, 0)

/** The empty map. */
export const emptyPersistentMap = <V>(): PersistentMap<V> => EMPTY as PersistentMap<V>

/** A node holding `leaves` (distinct keys) below `shift`, built in one pass (no path copying). */
function bulk<V>(leaves: Leaf<V>[], shift: number): Node<V> {
  if (leaves.length === 1) return leaves[0]!
  // every hash bit used: the keys left share one hash
  if (shift >= HASH_BITS) return { t: 1, hash: leaves[0]!.hash, pairs: leaves }
  const buckets: Leaf<V>[][] = []
  let bitmap = 0
  for (const l of leaves) {
    const f = frag(l.hash, shift)
    const b = buckets[f]
    if (b) b.push(l)
    else {
      buckets[f] = [l]
      bitmap |= 1 << f
    }
  }
  // sized once: an array grown by push keeps spare capacity, and a 100k-key trie has ~30k branches
  const kids = new Array<Node<V>>(popcount(bitmap))
  let i = 0
  for (let f = 0; f <= MASK; f++) {
    const b = buckets[f]
    if (b) kids[i++] = bulk(b, shift + BITS)
  }
  return { t: 2, bitmap, kids }
}

/** A map of these entries (a later duplicate key wins, as with `new Map`); O(n). */
export function persistentMapOf<V>(entries: Iterable<readonly [string, V]>): PersistentMap<V> {
  if (isPersistentMap(entries)) return entries as PersistentMap<V>
  // a Map's keys are distinct already: no copy of it (100k entries at a full load)
  const unique = entries instanceof Map ? (entries as ReadonlyMap<string, V>) : new Map<string, V>(entries)
  if (unique.size === 0) return emptyPersistentMap()
  const leaves = new Array<Leaf<V>>(unique.size)
  let i = 0
  for (const [key, value] of unique) leaves[i++] = { t: 0, hash: hashOf(key), key, value }
  return wrap(bulk(leaves, 0), unique.size)
}

/** Persistent copies of plain maps, made once per map (a snapshot's maps are never mutated). */
const copies = new WeakMap<ReadonlyMap<string, unknown>, PersistentMap<unknown>>()

/**
 * `m` itself when it is a persistent map, else its persistent copy, made once and remembered:
 * the maps of a frozen snapshot never change, so the copy stays equal to them. Versions derived
 * from the copy diff against `m` through it (diffMaps).
 */
export function asPersistent<V>(m: ReadonlyMap<string, V>): PersistentMap<V> {
  if (isPersistentMap(m)) return m as PersistentMap<V>
  let c = copies.get(m) as PersistentMap<V> | undefined
  if (!c) {
    c = persistentMapOf(m)
    copies.set(m, c)
  }
  return c
}

/** True for a map made by this module. */
export const isPersistentMap = (m: unknown): m is PersistentMap<unknown> => typeof m === 'object' && m !== null && roots.has(m)

function collect<V>(node: Node<V> | undefined, into: Map<string, V>): void {
  for (const l of leaves(node)) into.set(l.key, l.value)
}

function diffNodes<V>(a: Node<V> | undefined, b: Node<V> | undefined, out: MapChange<V>[]): void {
  if (a === b) return
  if (a && b && a.t === 2 && b.t === 2) {
    const bits = a.bitmap | b.bitmap
    for (let f = 0; f <= MASK; f++) {
      const bit = 1 << f
      if ((bits & bit) === 0) continue
      const ka = a.bitmap & bit ? a.kids[popcount(a.bitmap & (bit - 1))] : undefined
      const kb = b.bitmap & bit ? b.kids[popcount(b.bitmap & (bit - 1))] : undefined
      diffNodes(ka, kb, out)
    }
    return
  }
  // a leaf or collision on either side: the subtrees are small, compare them entry by entry
  const ma = new Map<string, V>()
  const mb = new Map<string, V>()
  collect(a, ma)
  collect(b, mb)
  for (const [key, before] of ma) {
    const after = mb.get(key)
    if (!mb.has(key)) out.push({ key, before, after: undefined })
    else if (after !== before) out.push({ key, before, after })
  }
  for (const [key, after] of mb) if (!ma.has(key)) out.push({ key, before: undefined, after })
}

/**
 * The keys whose value differs (by identity) between two versions of a map, visiting only the
 * nodes they do not share: O(changes × log n) for versions derived from one another. Undefined
 * when either map was not made by this module.
 */
export function diffPersistentMaps<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): MapChange<V>[] | undefined {
  if (!roots.has(a) || !roots.has(b)) return undefined
  const out: MapChange<V>[] = []
  diffNodes(roots.get(a) as Node<V> | undefined, roots.get(b) as Node<V> | undefined, out)
  return out
}

/**
 * The keys whose value differs (by identity) between any two maps: the trie walk when both are
 * persistent maps, else one pass over each (O(n) Map probes, still far cheaper than rebuilding
 * what was derived from them).
 */
export function diffMaps<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): MapChange<V>[] {
  // a plain Map whose persistent copy was made (asPersistent) diffs through that copy
  const fast = diffPersistentMaps((copies.get(a) as ReadonlyMap<string, V> | undefined) ?? a, (copies.get(b) as ReadonlyMap<string, V> | undefined) ?? b)
  if (fast) return fast
  const out: MapChange<V>[] = []
  if (a === b) return out
  for (const [key, before] of a) {
    const after = b.get(key)
    if (after === undefined && !b.has(key)) out.push({ key, before, after: undefined })
    else if (after !== before) out.push({ key, before, after })
  }
  for (const [key, after] of b) if (!a.has(key)) out.push({ key, before: undefined, after })
  return out
}
