import t from 'tap'
import { buildSniIndex, updateSniIndex, type SniEntry, type SniIndex } from '../../../core/tls/sni-index.js'
import { seeded } from '../../lib/random.js'

interface Obj extends SniEntry {
  readonly cert: string
}
const obj = (id: string, snis: string[], updateTime = 1): Obj => ({ id, snis, updateTime, cert: `cert-${id}` })

t.test('sni index: table of patterns and names (spec §5.3–5.5, §12.5)', async (t) => {
  // [objects, client SNI, id expected to serve it (undefined: handshake fails)]
  const cases: [Obj[], string, string | undefined][] = [
    [[obj('1', ['www.test.com'])], 'www.test.com', '1'],
    [[obj('1', ['www.test.com'])], 'no-cert.com', undefined],
    [[obj('1', ['*.test.com'])], 'www.test.com', '1'],
    [[obj('1', ['test.com'])], 'test.com', '1'],
    [[obj('1', ['*.test2.com'])], 'aa.bb.test2.com', undefined],
    [[obj('1', ['*.test.com'])], 'test.com', undefined],
    [[obj('1', ['test2.com', '*.test2.com'])], 'test2.com', '1'],
    [[obj('1', ['test2.com', '*.test2.com'])], 'aa.bb.test2.com', undefined],
    [[obj('1', ['*.TesT2.com'])], 'a.test2.com', '1'],
    [[obj('1', ['TesT2.com', 'a.com'])], 'TEST2.com', '1'],
    [[obj('1', ['*.test.com'])], 'a.test.com.', '1'],
    [[obj('1', ['test2.com', 'a.com'])], 'test2.com.', '1'],
    [[obj('1', ['www.test.com.'])], 'www.test.com', '1'],
    [[obj('1', ['www.test.com'])], 'www.test.com..', undefined],
    [[obj('1', ['www.test.com']), obj('2', ['*.test2.com']), obj('3', ['apisix.dev'])], 'www.test2.com', '2'],
    [[obj('1', ['www.test.com']), obj('2', ['*.test2.com']), obj('3', ['apisix.dev'])], 'apisix.dev', '3'],
    // S21: `*` is no fallback when a longer wildcard's suffix reaches the name
    [[obj('1', ['*']), obj('2', ['*.test.com'])], 'a.b.test.com', undefined],
    [[obj('1', ['*']), obj('2', ['*.test.com'])], 'a.test.com', '2'],
    [[obj('1', ['*']), obj('2', ['*.test.com'])], 'other.org', '1'],
    [[obj('1', ['*']), obj('2', ['*.test.com'])], 'test.com', '1'],
    [[obj('1', ['*'])], 'localhost', '1'],
    [[obj('1', ['*'])], 'a.b.c.d', '1'],
    // S22: exact beats wildcard, whatever the update times
    [[obj('1', ['www.test.com'], 1), obj('2', ['*.test.com'], 9)], 'www.test.com', '1'],
    // S23: the longest wildcard first
    [[obj('1', ['*.test.com']), obj('2', ['*.b.test.com'])], 'a.b.test.com', '2'],
    [[obj('1', ['*.test.com']), obj('2', ['*.b.test.com'])], 'b.test.com', '1'],
    [[obj('1', ['*.a.com'])], 'x.y.a.com', undefined],
    [[obj('1', ['*.a.com']), obj('2', ['*.y.a.com'])], 'x.y.a.com', '2'],
    [[obj('1', ['*.a.com']), obj('2', ['*.y.a.com'])], 'z.x.y.a.com', undefined],
    // odd patterns the schema allows
    [[obj('1', ['*test.com'])], 'test.com', '1'],
    [[obj('1', ['*test.com'])], 'xtest.com', '1'],
    [[obj('1', ['*test.com'])], 'a.test.com', undefined],
    [[obj('1', ['*test.com']), obj('2', ['*.com'])], 'a.xtest.com', undefined],
    [[obj('1', ['*test.com']), obj('2', ['*.com'])], 'best.com', '2'],
    [[obj('1', ['*test.com']), obj('2', ['*.test.com'])], 'a.test.com', '2'],
    // IP literals are plain strings
    [[obj('1', ['127.0.0.1'])], '127.0.0.1', '1'],
    [[obj('1', ['*.0.0.1'])], '127.0.0.1', '1'],
    // a wildcard's label is never empty
    [[obj('1', ['*.a.com'])], '.a.com', undefined],
    // a trailing dot on the pattern and one on the name are the same dot
    [[obj('1', ['*.a.com.'])], 'B.A.COM.', '1'],
    [[], 'a.com', undefined],
  ]
  for (const [objs, sni, want] of cases) {
    const got = buildSniIndex(objs).lookup(sni)
    t.equal(got?.id, want, `${objs.map((o) => `${o.id}:[${o.snis.join(',')}]`).join(' ')} + ${sni} → ${want ?? 'no match'}`)
  }
})

t.test('sni index: match() names the pattern that served', async (t) => {
  const idx = buildSniIndex([obj('1', ['WWW.a.com', '*.A.com.']), obj('2', ['*'])])
  t.same(idx.match('www.a.com'), { entry: idx.lookup('www.a.com'), pattern: 'www.a.com' })
  t.equal(idx.match('x.a.com')?.pattern, '*.a.com')
  t.equal(idx.match('b.org')?.pattern, '*')
  t.equal(idx.match('x.a.com')?.entry.cert, 'cert-1', 'the payload comes back whole')
  t.equal(idx.size, 3)
})

t.test('sni index: two objects claim one name → the later update_time serves, then the greater id', async (t) => {
  const a = obj('a', ['x.com', '*.y.com'], 100)
  const b = obj('b', ['X.com.', 'z.com'], 200)
  const c = obj('c', ['*.y.com'], 100)
  const idx = buildSniIndex([a, b, c])
  t.equal(idx.lookup('x.com')?.id, 'b', 'update_time 200 beats 100')
  t.equal(idx.lookup('q.y.com')?.id, 'c', 'same update_time: id c beats a')
  t.same(
    idx.conflicts().map((c) => ({ pattern: c.pattern, winner: c.winner.id, losers: c.losers.map((l) => l.id) })),
    [
      { pattern: '*.y.com', winner: 'c', losers: ['a'] },
      { pattern: 'x.com', winner: 'b', losers: ['a'] },
    ],
  )
  const reversed = buildSniIndex([c, b, a])
  t.equal(reversed.lookup('x.com')?.id, 'b', 'input order does not matter')
  t.equal(reversed.lookup('q.y.com')?.id, 'c', 'input order does not matter')
})

t.test('sni index: one object listing a name twice (any case, dot) → no conflict', async (t) => {
  const idx = buildSniIndex([obj('1', ['a.com', 'A.COM', 'a.com.'])])
  t.same(idx.conflicts(), [])
  t.equal(idx.size, 1)
})


/**
 * The obvious reference: scan every pattern of every object. Exact first; else the wildcard
 * with the longest text after `*` that ends the name, decided with no fallback.
 */
function reference(objs: readonly Obj[], rawSni: string): Obj | undefined {
  const norm = (s: string) => (s.endsWith('.') ? s.slice(0, -1) : s).toLowerCase()
  const sni = norm(rawSni)
  const best = (list: Obj[]) =>
    list.reduce<Obj | undefined>((w, o) => (!w || o.updateTime > w.updateTime || (o.updateTime === w.updateTime && o.id > w.id) ? o : w), undefined)
  const exact = objs.filter((o) => o.snis.some((p) => norm(p) === sni && !p.startsWith('*')))
  if (exact.length > 0) return best(exact)
  let longest = -1
  for (const o of objs) for (const p of o.snis.map(norm)) if (p.startsWith('*') && sni.endsWith(p.slice(1))) longest = Math.max(longest, p.length - 1)
  if (longest < 0) return undefined
  const holders = objs.filter((o) => o.snis.some((p) => norm(p).startsWith('*') && norm(p).length - 1 === longest && sni.endsWith(norm(p).slice(1))))
  if (longest === 0) return best(holders)
  const rest = sni.slice(sni.length - longest)
  const covered = sni.slice(0, sni.length - longest)
  if (covered.includes('.') || (covered === '' && rest.startsWith('.'))) return undefined
  return best(holders)
}

t.test('sni index: agrees with a slow reference over 300 generated name sets (fixed seed)', async (t) => {
  const rand = seeded(20260402)
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <X>(xs: readonly X[]): X => xs[int(xs.length)]!
  const labels = ['a', 'b', 'c', 'ab', 'x']
  const name = (n: number) => Array.from({ length: n }, () => pick(labels)).join('.')
  const decorate = (s: string) => {
    const cased = rand() < 0.3 ? s.toUpperCase() : s
    return rand() < 0.2 ? `${cased}.` : cased
  }
  let checked = 0
  let disagreements = 0
  let matched = 0
  for (let set = 0; set < 300; set++) {
    const objs: Obj[] = []
    for (let i = 0, n = 1 + int(12); i < n; i++) {
      const snis: string[] = []
      for (let k = 0, m = 1 + int(3); k < m; k++) {
        const r = rand()
        const base = name(1 + int(3))
        if (r < 0.45) snis.push(decorate(base))
        else if (r < 0.85) snis.push(decorate(`*.${base}`))
        else if (r < 0.95) snis.push(decorate(`*${base}`))
        else snis.push('*')
      }
      objs.push(obj(String(int(20)), snis, int(3)))
    }
    const idx = buildSniIndex(objs)
    const queries: string[] = []
    for (let q = 0; q < 30; q++) queries.push(decorate(name(1 + int(5))))
    for (const o of objs)
      for (const p of o.snis) {
        queries.push(p.replace('*', pick(labels)), p.replace('*', `${pick(labels)}.${pick(labels)}`), p.replace('*', ''))
      }
    for (const q of queries) {
      const want = reference(objs, q)
      const got = idx.lookup(q)
      checked++
      if (want) matched++
      if (got !== want) {
        disagreements++
        if (disagreements <= 5) t.fail(`set ${set}: ${q} → index ${got?.id}, reference ${want?.id}; ${JSON.stringify(objs.map((o) => [o.id, o.snis, o.updateTime]))}`)
      }
    }
  }
  t.equal(disagreements, 0, `${checked} lookups agree`)
  t.ok(matched > checked / 4 && matched < checked, `both outcomes are exercised: ${matched} of ${checked} matched`)
})

/** What an index answers, for comparing two indexes: lookups of `queries`, conflicts, size. */
function answers(idx: SniIndex<Obj>, queries: readonly string[]): unknown {
  return {
    lookups: queries.map((q) => {
      const m = idx.match(q)
      return m ? `${q}→${m.entry.id}@${m.entry.updateTime} ${m.pattern}` : `${q}→none`
    }),
    conflicts: idx.conflicts().map((c) => [c.pattern, c.winner.id, c.losers.map((l) => l.id)]),
    size: idx.size,
  }
}

t.test('sni index update: table of changes → the same answers as a rebuild, the previous index unchanged', async (t) => {
  // [name, removed ids, added objects]
  const steps: Array<[string, string[], Obj[]]> = [
    ['first objects', [], [obj('1', ['a.com', '*.a.com']), obj('2', ['b.com'])]],
    ['a later object takes a.com', [], [obj('3', ['A.com.'], 5)]],
    ['the winner disabled (removed)', ['3'], []],
    ['an odd wildcard arrives', [], [obj('4', ['*test.com'])]],
    ['object 1 loses its wildcard', ['1'], [obj('1', ['a.com'])]],
    ['catch-all and a name listed twice', [], [obj('5', ['*', 'c.com', 'C.COM'])]],
    ['odd wildcard gone', ['4'], []],
    ['two objects tie on update_time: greater id serves', [], [obj('6', ['b.com']), obj('7', ['b.com'])]],
    ['everything removed', ['1', '2', '5', '6', '7'], []],
  ]
  const queries = ['a.com', 'x.a.com', 'b.com', 'test.com', 'xtest.com', 'a.test.com', 'c.com', 'other.org', 'y.x.a.com']
  const live = new Map<string, Obj>()
  let idx = buildSniIndex<Obj>([])
  for (const [name, removed, added] of steps) {
    const prev = idx
    const prevAnswers = answers(prev, queries)
    idx = updateSniIndex(idx, removed.map((id) => live.get(id)!), added)
    for (const id of removed) live.delete(id)
    for (const o of added) live.set(o.id, o)
    t.same(answers(idx, queries), answers(buildSniIndex([...live.values()]), queries), name)
    t.same(answers(prev, queries), prevAnswers, `${name}: the previous index answers as before`)
  }
  t.equal(idx.size, 0)
})

t.test('sni index update: an index not built here → TypeError', async (t) => {
  const fake = { lookup: () => undefined, match: () => undefined, conflicts: () => [], size: 0 }
  t.throws(() => updateSniIndex<Obj>(fake, [], []), TypeError)
})

t.test('sni index update: 1,500 seeded random changes → always the answers of a rebuild', async (t) => {
  const rand = seeded(99)
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <X>(xs: readonly X[]): X => xs[int(xs.length)]!
  const labels = ['a', 'b', 'ab', 'x']
  const name = (n: number) => Array.from({ length: n }, () => pick(labels)).join('.')
  const pattern = (): string => {
    const r = rand()
    const base = name(1 + int(2))
    const p = r < 0.45 ? base : r < 0.85 ? `*.${base}` : r < 0.95 ? `*${base}` : '*'
    return rand() < 0.2 ? `${p.toUpperCase()}.` : p
  }
  const queries: string[] = []
  for (let q = 0; q < 60; q++) queries.push(name(1 + int(4)))
  const live = new Map<string, Obj>()
  let idx = buildSniIndex<Obj>([])
  let differ = 0
  for (let step = 0; step < 1500; step++) {
    const removed: Obj[] = []
    const added: Obj[] = []
    // a batch of 1–3 changes to distinct ids, as one watch response brings them
    const ids = new Set(Array.from({ length: 1 + int(3) }, () => String(int(25))))
    for (const id of ids) {
      const old = live.get(id)
      if (old) removed.push(old)
      if (!old || rand() < 0.7) added.push(obj(id, Array.from({ length: 1 + int(3) }, pattern), int(3)))
    }
    idx = updateSniIndex(idx, removed, added)
    for (const o of removed) live.delete(o.id)
    for (const o of added) live.set(o.id, o)
    if (JSON.stringify(answers(idx, queries)) !== JSON.stringify(answers(buildSniIndex([...live.values()]), queries))) {
      differ++
      if (differ <= 3) t.fail(`step ${step}: ${JSON.stringify([...live.values()].map((o) => [o.id, o.snis, o.updateTime]))}`)
    }
  }
  t.equal(differ, 0, 'every step answers as a rebuild')
  t.ok(live.size > 5, `the sequence kept objects alive (${live.size} at the end)`)
})
