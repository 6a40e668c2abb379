import t from 'tap'
import { claimedSnis, claimsIn, createSniClaims, sharedSniWarnings } from '../../../admin/sni-claims.js'
import { seeded } from '../../lib/random.js'

const DIR = '/apisix/ssls/'

t.test('claimed snis: which stored values take part and with which names', async (t) => {
  const cases: Array<[string, unknown, readonly string[] | undefined]> = [
    ['snis, normalised in order', { snis: ['A.com.', '*.b.com', 'a.com'] }, ['a.com', '*.b.com', 'a.com']],
    ['sni alone', { sni: 'X.com' }, ['x.com']],
    ['snis wins over sni', { sni: 'x.com', snis: ['y.com'] }, ['y.com']],
    ['neither', { cert: 'c' }, []],
    ['status 0 → no part', { sni: 'x.com', status: 0 }, undefined],
    ['type client → no part', { sni: 'x.com', type: 'client' }, undefined],
    ['status 1 and type server → part', { sni: 'x.com', status: 1, type: 'server' }, ['x.com']],
    ['not an object', 'text', undefined],
    ['not JSON (undefined)', undefined, undefined],
    ['an array', [1], undefined],
    ['snis not an array', { snis: 'x.com' }, []],
    ['snis with a number', { snis: ['x.com', 1] }, []],
  ]
  for (const [name, value, want] of cases) t.same(claimedSnis(value), want, name)
})

t.test('claims index: table of changes → the same claims as the reference over the stored values', async (t) => {
  const steps: Array<[string, string, unknown]> = [
    ['first object', 'a', { snis: ['x.com', 'y.com'] }],
    ['second shares x.com', 'b', { sni: 'X.com' }],
    ['third unrelated', 'c', { sni: 'z.com' }],
    ['b disabled', 'b', { sni: 'x.com', status: 0 }],
    ['b back, now on y.com', 'b', { snis: ['y.com'] }],
    ['a becomes a client certificate', 'a', { snis: ['x.com'], type: 'client' }],
    ['c deleted', 'c', null],
    ['a not JSON any more', 'a', undefined],
    ['nested key under the directory', 'd/e', { sni: 'y.com' }],
  ]
  const idx = createSniClaims()
  const stored = new Map<string, unknown>()
  const queries: Array<[string[], string]> = [[['x.com'], ''], [['y.com'], DIR + 'b'], [['x.com', 'y.com', 'z.com'], DIR + 'a'], [['none.com'], '']]
  for (const [name, id, value] of steps) {
    const key = DIR + id
    if (value === null) {
      idx.delete(key)
      stored.delete(key)
    } else {
      idx.put(key, value)
      stored.set(key, value)
    }
    const kvs = [...stored].map(([k, v]) => ({ key: k, value: v }))
    for (const [names, except] of queries) {
      t.same(idx.sharing(new Set(names), except), claimsIn(kvs, new Set(names), except), `${name}: ${names.join(',')} except ${except || 'none'}`)
    }
  }
})

t.test('claims index: key byte order, self excluded, duplicates kept as stored', async (t) => {
  const idx = createSniClaims()
  for (const id of ['b', 'a10', 'a9', 'Z']) idx.put(DIR + id, { snis: ['s.com', 'S.com'] })
  const got = idx.sharing(new Set(['s.com']), DIR + 'a9')
  t.same(got.map((c) => c.key), [DIR + 'Z', DIR + 'a10', DIR + 'b'])
  t.same(got[0]?.snis, ['s.com', 's.com'])
  t.equal(idx.size, 4)
  idx.clear()
  t.equal(idx.size, 0)
  t.same(idx.sharing(new Set(['s.com']), ''), [])
})

t.test('shared-sni warnings: one per other object, its shared names in its order', async (t) => {
  t.same(sharedSniWarnings(['a.com', 'b.com'], [{ key: DIR + '1', snis: ['b.com', 'c.com', 'a.com'] }, { key: DIR + '2', snis: ['c.com'] }]), [
    'sni "b.com", "a.com" also claimed by ssl 1; the object updated last serves it',
  ])
  t.same(sharedSniWarnings(['a.com'], []), [])
})

t.test('claims index: 3,000 seeded random changes → always the reference answer', async (t) => {
  const rnd = seeded(20261202)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const names = ['a.com', 'B.com', 'b.com.', '*.a.com', 'c.com', 'd.com', '*']
  const ids = Array.from({ length: 12 }, (_, i) => `${i}`)
  const value = (): unknown => {
    const r = rnd()
    if (r < 0.05) return undefined
    if (r < 0.1) return 'text'
    const snis = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(names))
    const o: Record<string, unknown> = rnd() < 0.5 ? { snis } : { sni: snis[0] }
    if (rnd() < 0.15) o['status'] = 0
    if (rnd() < 0.1) o['type'] = 'client'
    return o
  }
  const idx = createSniClaims()
  const stored = new Map<string, unknown>()
  let mismatches = 0
  for (let i = 0; i < 3000; i++) {
    const key = DIR + pick(ids)
    if (rnd() < 0.2) {
      idx.delete(key)
      stored.delete(key)
    } else {
      const v = value()
      idx.put(key, v)
      stored.set(key, v)
    }
    const q = new Set(Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => pick(names).toLowerCase().replace(/\.$/, '')))
    const except = rnd() < 0.5 ? DIR + pick(ids) : ''
    const want = claimsIn([...stored].map(([k, v]) => ({ key: k, value: v })), q, except)
    if (JSON.stringify(idx.sharing(q, except)) !== JSON.stringify(want)) mismatches++
  }
  t.equal(mismatches, 0)
})
