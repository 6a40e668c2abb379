/**
 * A compressed prefix tree (what lua-resty-radixtree keeps in rax): insert keys once, then ask
 * for every stored key that is a prefix of a string, longest first, in one walk of that string.
 */

interface Node<V> {
  label: string
  value: V | undefined
  children: Map<string, Node<V>> | undefined
}

const node = <V>(label: string, value: V | undefined): Node<V> => ({ label, value, children: undefined })

/** A prefix tree from string keys to values; built once, read many times. */
export interface PrefixTree<V> {
  /** The value stored under exactly `key`, creating it with `make` when absent. */
  upsert(key: string, make: () => V): V
  /** Values of all stored keys that are prefixes of `s`, longest key first. */
  prefixesOf(s: string): V[]
  /** The first non-undefined `visit(value)` over the prefixes of `s`, longest first; no allocation. */
  firstOfPrefixes<T, C>(s: string, visit: (v: V, ctx: C) => T | undefined, ctx: C): T | undefined
  /** As firstOfPrefixes, over the prefixes of `s` read backwards (keys stored reversed: host suffixes). */
  firstOfReversedPrefixes<T, C>(s: string, visit: (v: V, ctx: C) => T | undefined, ctx: C): T | undefined
  /** Number of stored keys. */
  readonly size: number
}

function commonLength(a: string, b: string, from: number): number {
  let n = 0
  while (n < a.length && from + n < b.length && a.charCodeAt(n) === b.charCodeAt(from + n)) n++
  return n
}

/** Descends first and visits on the way back up, so the longest prefix is visited first. */
function walk<V, T, C>(n: Node<V>, s: string, i: number, visit: (v: V, ctx: C) => T | undefined, ctx: C): T | undefined {
  if (i < s.length) {
    const next = n.children?.get(s[i]!)
    if (next && s.startsWith(next.label, i)) {
      const found = walk(next, s, i + next.label.length, visit, ctx)
      if (found !== undefined) return found
    }
  }
  return n.value === undefined ? undefined : visit(n.value, ctx)
}

/** walk() reading `s` from index `p` towards 0, so a reversed key matches a suffix of `s`. */
function walkBack<V, T, C>(n: Node<V>, s: string, p: number, visit: (v: V, ctx: C) => T | undefined, ctx: C): T | undefined {
  if (p >= 0) {
    const next = n.children?.get(s[p]!)
    if (next && next.label.length <= p + 1) {
      const l = next.label
      let j = 1 // the first character was the map key
      while (j < l.length && l.charCodeAt(j) === s.charCodeAt(p - j)) j++
      if (j === l.length) {
        const found = walkBack(next, s, p - l.length, visit, ctx)
        if (found !== undefined) return found
      }
    }
  }
  return n.value === undefined ? undefined : visit(n.value, ctx)
}

/** Creates an empty prefix tree. */
export function buildPrefixTree<V>(): PrefixTree<V> {
  const root = node<V>('', undefined)
  let size = 0
  return {
    get size() {
      return size
    },
    upsert(key, make) {
      let cur = root
      let i = 0
      for (;;) {
        if (i === key.length) {
          if (cur.value === undefined) {
            cur.value = make()
            size++
          }
          return cur.value
        }
        const first = key[i]!
        const next = cur.children?.get(first)
        if (!next) {
          const leaf = node<V>(key.slice(i), make())
          size++
          ;(cur.children ??= new Map()).set(first, leaf)
          return leaf.value!
        }
        const common = commonLength(next.label, key, i)
        if (common < next.label.length) {
          // split the edge: cur → mid(common part) → next(rest of its label)
          const mid = node<V>(next.label.slice(0, common), undefined)
          next.label = next.label.slice(common)
          mid.children = new Map([[next.label[0]!, next]])
          cur.children!.set(first, mid)
          cur = mid
        } else {
          cur = next
        }
        i += common
      }
    },
    firstOfPrefixes(s, visit, ctx) {
      return walk(root, s, 0, visit, ctx)
    },
    firstOfReversedPrefixes(s, visit, ctx) {
      return walkBack(root, s, s.length - 1, visit, ctx)
    },
    prefixesOf(s) {
      const found: V[] = []
      let cur: Node<V> | undefined = root
      let i = 0
      while (cur) {
        if (cur.value !== undefined) found.push(cur.value)
        if (i >= s.length) break
        const next: Node<V> | undefined = cur.children?.get(s[i]!)
        if (!next || !s.startsWith(next.label, i)) break
        i += next.label.length
        cur = next
      }
      return found.reverse()
    },
  }
}
