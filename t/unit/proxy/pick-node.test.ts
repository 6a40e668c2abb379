import t from 'tap'
import { buildPicker } from '../../../core/proxy/pick-node.js'
import type { BalanceNode } from '../../../core/proxy/pick-node.js'

type N = BalanceNode & { readonly name: string }
const node = (name: string, weight: number, priority?: number): N => ({ name, host: `10.0.0.${name.charCodeAt(0) - 96}`, port: 80, weight, priority })
const names = (ns: readonly (N | undefined)[]): string => ns.map((n) => n?.name ?? '-').join(' ')
const picks = (p: { pick(i?: object): N | undefined }, count: number, input: object = {}): (N | undefined)[] =>
  Array.from({ length: count }, () => p.pick(input))

t.test('roundrobin: nginx smooth weighted sequences', async (t) => {
  const cases: [N[], string][] = [
    [[node('a', 5), node('b', 1), node('c', 1)], 'a a b a c a a'],
    [[node('a', 1), node('b', 1), node('c', 1)], 'a b c'],
    [[node('a', 2), node('b', 1)], 'a b a'],
    [[node('a', 1), node('b', 0), node('c', 1)], 'a c'],
  ]
  for (const [nodes, seq] of cases) {
    const p = buildPicker('roundrobin', nodes)
    const cycle = seq.split(' ').length
    t.equal(names(picks(p, cycle * 3)), `${seq} ${seq} ${seq}`, `${nodes.map((n) => `${n.name}=${n.weight}`).join(',')} → ${seq} (repeating)`)
  }
})

t.test('roundrobin: counts over many picks equal the weights exactly', async (t) => {
  const nodes = [node('a', 7), node('b', 2), node('c', 1), node('d', 0)]
  const counts = new Map<string, number>()
  for (const n of picks(buildPicker('roundrobin', nodes), 10_000)) counts.set(n!.name, (counts.get(n!.name) ?? 0) + 1)
  t.same(Object.fromEntries(counts), { a: 7000, b: 2000, c: 1000 }, 'weight 0 never picked')
})

t.test('roundrobin: a retry excludes tried nodes; all tried → undefined', async (t) => {
  const [a, b, c] = [node('a', 5), node('b', 1), node('c', 1)]
  const p = buildPicker('roundrobin', [a, b, c])
  t.equal(p.pick({ tried: new Set([a]) })?.name, 'b')
  t.equal(p.pick({ tried: new Set([a, b]) })?.name, 'c')
  t.equal(p.pick({ tried: new Set([a, b, c]) }), undefined)
})

t.test('every type: all weights 0 → no node; a single node → always it', async (t) => {
  for (const type of ['roundrobin', 'chash', 'least_conn']) {
    t.equal(buildPicker(type, [node('a', 0), node('b', 0)]).pick({ key: 'k' }), undefined, `${type}: weights 0 → undefined`)
    t.equal(buildPicker(type, []).pick({ key: 'k' }), undefined, `${type}: no nodes → undefined`)
  }
  const single = node('a', 0)
  for (const type of ['roundrobin', 'chash'])
    t.equal(buildPicker(type, [single]).pick({ tried: new Set([single]) }), single, `${type}: one node, even weight 0 and tried`)
  t.equal(buildPicker('least_conn', [single]).pick(), undefined, 'least_conn: no single-node shortcut')
})

t.test('priority: the higher group first, the lower only when the higher is all tried', async (t) => {
  const [hi1, hi2, lo] = [node('a', 1, 10), node('b', 1, 10), node('c', 100, 0)]
  for (const type of ['roundrobin', 'chash', 'least_conn']) {
    const p = buildPicker(type, [lo, hi1, hi2])
    const first = picks(p, 20, { key: 'x' })
    t.ok(first.every((n) => n === hi1 || n === hi2), `${type}: only the priority-10 nodes`)
    t.equal(p.pick({ key: 'x', tried: new Set([hi1, hi2]) }), lo, `${type}: both tried → the priority-0 node`)
  }
})

t.test('least_conn: lowest (active + 1) / weight, first on ties', async (t) => {
  const [a, b, c] = [node('a', 1), node('b', 2), node('c', 1)]
  const p = buildPicker('least_conn', [a, b, c])
  const active = new Map<N, number>([[a, 0], [b, 0], [c, 0]])
  const activeOf = (n: N): number => active.get(n) ?? 0
  const cases: [number, number, number, string][] = [
    [0, 0, 0, 'b'], // scores 1, 0.5, 1
    [0, 1, 0, 'a'], // 1, 1, 1 → the first
    [1, 1, 0, 'b'], // 2, 1, 1 → the first of b and c
    [3, 5, 2, 'b'], // 4, 3, 3
    [3, 7, 1, 'c'], // 4, 4, 2
  ]
  for (const [na, nb, nc, want] of cases) {
    active.set(a, na).set(b, nb).set(c, nc)
    t.equal(p.pick({ activeOf })?.name, want, `active ${na},${nb},${nc} → ${want}`)
  }
  active.set(a, 9).set(b, 0).set(c, 9)
  t.equal(p.pick({ activeOf, tried: new Set([b]) })?.name, 'a', 'tried node skipped even when least loaded')
})

t.test('chash: the same key → the same node; weights shape the share', async (t) => {
  const nodes = [node('a', 1), node('b', 1), node('c', 2)]
  const p = buildPicker('chash', nodes)
  const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`)
  const counts = new Map<string, number>()
  let unstable = 0
  const rebuilt = buildPicker('chash', [...nodes].reverse())
  for (const k of keys) {
    const n = p.pick({ key: k })!
    if (p.pick({ key: k }) !== n || rebuilt.pick({ key: k }) !== n) unstable++
    counts.set(n.name, (counts.get(n.name) ?? 0) + 1)
  }
  t.equal(unstable, 0, 'every key maps to the same node on every pick, and after a rebuild with the nodes in another order')
  const share = (n: string): number => (counts.get(n) ?? 0) / keys.length
  t.ok(Math.abs(share('c') - 0.5) < 0.1, `weight 2 of 4 → about half (${share('c').toFixed(3)})`)
  t.ok(Math.abs(share('a') - 0.25) < 0.08, `weight 1 of 4 → about a quarter (${share('a').toFixed(3)})`)
})

t.test('chash: adding or removing a node moves only that node\'s keys', async (t) => {
  const base = [node('a', 1), node('b', 1), node('c', 1), node('d', 1)]
  const added = [...base, node('e', 1)]
  const before = buildPicker('chash', base)
  const after = buildPicker('chash', added)
  const removed = buildPicker('chash', base.filter((n) => n.name !== 'b'))
  let moved = 0
  let wrongMove = 0
  let removedWrong = 0
  const total = 20_000
  for (let i = 0; i < total; i++) {
    const key = `k${i}`
    const x = before.pick({ key })!
    const y = after.pick({ key })!
    if (x.name !== y.name) {
      moved++
      if (y.name !== 'e') wrongMove++
    }
    const z = removed.pick({ key })!
    if (x.name !== 'b' && z.name !== x.name) removedWrong++
  }
  t.equal(wrongMove, 0, 'keys that move on an add all go to the new node')
  t.ok(moved / total > 0.1 && moved / total < 0.3, `about 1/5 of keys move on an add (${(moved / total).toFixed(3)})`)
  t.equal(removedWrong, 0, 'on a removal, keys of the other nodes stay')
})

t.test('chash: a retry walks to another node, deterministically', async (t) => {
  const nodes = [node('a', 1), node('b', 1), node('c', 1)]
  const p = buildPicker('chash', nodes)
  const first = p.pick({ key: 'session-42' })!
  const second = p.pick({ key: 'session-42', tried: new Set([first]) })!
  t.not(second, first)
  t.equal(p.pick({ key: 'session-42', tried: new Set([first]) }), second)
  t.equal(p.pick({ key: 'session-42', tried: new Set(nodes) }), undefined)
})
