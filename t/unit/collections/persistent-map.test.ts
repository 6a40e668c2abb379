import t from 'tap'
import { asPersistent, diffMaps, diffPersistentMaps, emptyPersistentMap, isPersistentMap, persistentMapOf, type PersistentMap } from '../../../core/collections/persistent-map.js'
import { seeded } from '../../lib/random.js'

/** FNV-1a as the map hashes keys: used to find two keys with one hash (a collision node). */
function fnv(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
function collidingPair(): [string, string] {
  const seen = new Map<number, string>()
  for (let i = 0; ; i++) {
    const k = `k${i}`
    const h = fnv(k)
    const other = seen.get(h)
    if (other !== undefined) return [other, k]
    seen.set(h, k)
  }
}
const [c1, c2] = collidingPair()

const sorted = <V>(m: ReadonlyMap<string, V>): Array<[string, V]> => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))

/** The reference diff: keys whose value differs by identity. */
function naiveDiff<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()])
  return [...keys].filter((k) => a.has(k) !== b.has(k) || a.get(k) !== b.get(k)).sort()
}

t.test('persistent map: table of operations → the same contents as a Map, old versions unchanged', async (t) => {
  const ops: Array<[string, (m: PersistentMap<number>) => PersistentMap<number>, Array<[string, number]>]> = [
    ['set on empty', (m) => m.set('a', 1), [['a', 1]]],
    ['set a second key', (m) => m.set('b', 2), [['a', 1], ['b', 2]]],
    ['replace a value', (m) => m.set('a', 3), [['a', 3], ['b', 2]]],
    ['delete a key', (m) => m.delete('a'), [['b', 2]]],
    ['delete a missing key', (m) => m.delete('zz'), [['b', 2]]],
    ['two keys with one hash', (m) => m.set(c1, 10).set(c2, 11), [['b', 2], [c1, 10], [c2, 11]].sort() as Array<[string, number]>],
    ['replace inside a collision', (m) => m.set(c2, 12), [['b', 2], [c1, 10], [c2, 12]].sort() as Array<[string, number]>],
    ['delete from a collision', (m) => m.delete(c1), [['b', 2], [c2, 12]].sort() as Array<[string, number]>],
    ['delete everything', (m) => m.delete('b').delete(c2), []],
  ]
  let m = emptyPersistentMap<number>()
  for (const [name, op, want] of ops) {
    const before = sorted(m)
    const prev = m
    m = op(m)
    t.same(sorted(m), want, name)
    t.equal(m.size, want.length, `${name}: size`)
    for (const [k, v] of want) t.ok(m.has(k) && m.get(k) === v, `${name}: get ${k}`)
    t.same(sorted(prev), before, `${name}: the previous version is unchanged`)
  }
  t.equal(m.get('a'), undefined)
  t.notOk(m.has('a'))
})

t.test('persistent map: setting the same value or deleting a missing key → the same map', async (t) => {
  const m = persistentMapOf([['a', 1], ['b', 2]])
  t.equal(m.set('a', 1), m)
  t.equal(m.delete('c'), m)
  t.equal(emptyPersistentMap().delete('x'), emptyPersistentMap())
})

t.test('persistent map: built from entries → a later duplicate wins, as with new Map', async (t) => {
  const m = persistentMapOf([['a', 1], ['b', 2], ['a', 3], [c1, 4], [c2, 5]])
  t.same(sorted(m), sorted(new Map([['a', 3], ['b', 2], [c1, 4], [c2, 5]])))
  t.equal(m.size, 4)
  t.ok(isPersistentMap(m))
  t.notOk(isPersistentMap(new Map()))
  const seen: string[] = []
  m.forEach((v, k, self) => {
    t.equal(self, m)
    seen.push(`${k}=${v}`)
  })
  t.same(seen.sort(), [`${c1}=4`, `${c2}=5`, 'a=3', 'b=2'].sort())
  t.same([...m.keys()].sort(), [...m].map(([k]) => k).sort())
})

t.test('persistent map: diff of two maps not made here → undefined', async (t) => {
  t.equal(diffPersistentMaps(new Map(), persistentMapOf([])), undefined)
})

t.test('persistent map: 4,000 seeded random operations → same as a Map; diffs equal the naive diff', async (t) => {
  const rnd = seeded(4242)
  const keys = [...Array.from({ length: 300 }, (_, i) => `key-${i}`), c1, c2]
  const values = Array.from({ length: 5 }, (_, i) => ({ v: i }))
  let ref = new Map<string, { v: number }>()
  let m = emptyPersistentMap<{ v: number }>()
  let mismatches = 0
  let diffMismatches = 0
  let changed = 0
  for (let i = 0; i < 4000; i++) {
    const before = m
    const refBefore = new Map(ref)
    // a batch of 1–5 operations, then compare
    for (let j = 0, n = 1 + Math.floor(rnd() * 5); j < n; j++) {
      const k = keys[Math.floor(rnd() * keys.length)]!
      if (rnd() < 0.3) {
        m = m.delete(k)
        ref.delete(k)
      } else {
        const v = values[Math.floor(rnd() * values.length)]!
        m = m.set(k, v)
        ref.set(k, v)
      }
    }
    if (m.size !== ref.size || JSON.stringify(sorted(m)) !== JSON.stringify(sorted(ref))) mismatches++
    const d = diffPersistentMaps(before, m)
    const got = (d ?? []).map((c) => c.key).sort()
    const want = naiveDiff(refBefore, ref)
    if (d === undefined || JSON.stringify(got) !== JSON.stringify(want)) diffMismatches++
    for (const c of d ?? []) if (c.before !== refBefore.get(c.key) || c.after !== ref.get(c.key)) diffMismatches++
    changed += want.length
    if (i === 2000) {
      // a bulk-built map diffs against its own later versions too
      m = persistentMapOf(m)
      ref = new Map(ref)
    }
  }
  t.equal(mismatches, 0, 'contents match after every batch')
  t.equal(diffMismatches, 0, 'every diff names exactly the changed keys with both values')
  t.ok(changed > 1000, `the sequence changed keys (${changed})`)
})

t.test('persistent map: one change in 10,000 keys → the diff names exactly the changed keys', async (t) => {
  const big = persistentMapOf(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i] as const))
  const next = big.set('k5', -1).delete('k9').set('new', 1)
  const d = diffPersistentMaps(big, next) ?? []
  t.same(d.map((c) => c.key).sort(), ['k5', 'k9', 'new'])
  // the untouched versions share structure: iterating the diff of identical maps finds nothing
  t.same(diffPersistentMaps(next, next), [])
})

t.test('diff of any two maps: plain Maps on either side → the same changes as the naive diff', async (t) => {
  const x = { v: 1 }
  const y = { v: 2 }
  const cases: Array<[string, Array<[string, object]>, Array<[string, object]>]> = [
    ['identical', [['a', x]], [['a', x]]],
    ['a value replaced', [['a', x], ['b', y]], [['a', y], ['b', y]]],
    ['added and removed', [['a', x]], [['b', x]]],
    ['empty to full', [], [['a', x], ['b', y]]],
  ]
  for (const [name, a, b] of cases) {
    const want = naiveDiff(new Map(a), new Map(b))
    for (const [how, ma, mb] of [
      ['Map → Map', new Map(a), new Map(b)],
      ['Map → persistent', new Map(a), persistentMapOf(b)],
      ['persistent → Map', persistentMapOf(a), new Map(b)],
      ['persistent → persistent', persistentMapOf(a), persistentMapOf(b)],
    ] as const) {
      t.same(diffMaps(ma, mb).map((c) => c.key).sort(), want, `${name}, ${how}`)
    }
  }
})

t.test('asPersistent: a plain map → one remembered copy; versions set on it diff against the plain map through it', async (t) => {
  const plain = new Map(Array.from({ length: 2000 }, (_, i) => [`k${i}`, { i }] as const))
  const copy = asPersistent(plain)
  t.equal(asPersistent(plain), copy, 'made once')
  t.equal(asPersistent(copy), copy, 'a persistent map is its own copy')
  t.same(sorted(copy), sorted(plain))
  const next = copy.set('k1', { i: -1 }).delete('k2')
  t.same(diffMaps(plain, next).map((c) => c.key).sort(), ['k1', 'k2'])
  t.equal(diffPersistentMaps(plain, next), undefined, 'the trie diff alone does not know plain maps')
})
