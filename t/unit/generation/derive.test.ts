import t from 'tap'
import { applyEvents, type ConfigEvent, type Decode } from '../../../core/config/apply.js'
import { emptySnapshot, type Entry, type Snapshot } from '../../../core/config/snapshot.js'
import { deriveGeneration, deriveSni, type BuildDeps } from '../../../core/generation/derive.js'
import { createPlanCache } from '../../../core/generation/http-plan.js'
import { emptyGeneration } from '../../../core/generation/generation.js'
import { isPersistentMap } from '../../../core/collections/persistent-map.js'
import type { PolicyCache, SslValue, TlsPolicy } from '../../../core/tls/contexts.js'
import type { SniIndex } from '../../../core/tls/sni-index.js'
import { ok } from '../../../core/schema/decode.js'
import { seeded } from '../../lib/random.js'
import { encryptKey } from '../../../core/resources/key-crypto.js'

// ssl objects as the data plane holds them, without certificates: the SNI index only reads these fields
const decode: Decode = (_res, id, raw) => ok(Object.freeze({ ...(raw as object), id }))
const put = (id: string, value: object, rev: number): ConfigEvent => ({
  type: 'put', key: `/apisix/ssls/${id}`, value: JSON.stringify(value), modRevision: String(rev), createRevision: String(rev),
})
const del = (id: string, rev: number): ConfigEvent => ({ type: 'delete', key: `/apisix/ssls/${id}`, value: '', modRevision: String(rev), createRevision: '0' })

/** A policy cache that builds no server and counts the entries it is asked about. */
function fakePolicies(): PolicyCache & { calls: number; eager: string[] } {
  const cache = new WeakMap<object, TlsPolicy>()
  const self = {
    calls: 0,
    eager: [] as string[],
    policyFor(entry: Entry<SslValue>, eager: boolean): TlsPolicy {
      self.calls++
      let p = cache.get(entry)
      if (!p) {
        const ssl = entry.value
        p = Object.freeze({
          id: ssl.id,
          snis: ssl.snis ?? (ssl.sni === undefined ? [] : [ssl.sni]),
          updateTime: ssl.update_time ?? 0,
          modRevision: entry.modRevision,
          client: undefined,
          server: () => new Error('no server in this test'),
          built: () => false,
          dropTickets: () => undefined,
        })
        cache.set(entry, p)
        if (eager) self.eager.push(ssl.id)
      }
      return p
    },
  }
  return self
}

const QUERIES = ['a.test', 'b.test', 'x.w.test', 'y.x.w.test', 'other.org', 'c.test']
function answers(idx: SniIndex<TlsPolicy>): unknown {
  return { lookups: QUERIES.map((q) => `${q}→${idx.match(q)?.entry.id ?? '-'}`), conflicts: idx.conflicts().map((c) => [c.pattern, c.winner.id, c.losers.map((l) => l.id)]), size: idx.size }
}
const apply = (s: Snapshot, evs: ConfigEvent[], rev: number) => applyEvents(s, evs, String(rev), '/apisix', decode)
/** The caches a worker makes in core/main.ts, fresh for a test. */
const depsOf = (policies: PolicyCache = fakePolicies(), keyring: readonly string[] = []): BuildDeps => ({ policies, plans: createPlanCache(), consumerCerts: new WeakMap(), keyring })

t.test('derive: table of ssl changes → the incremental SNI index answers as a full rebuild, visiting only what changed', async (t) => {
  const steps: Array<[string, ConfigEvent[]]> = [
    ['two objects', [put('1', { snis: ['a.test', '*.w.test'], update_time: 1 }, 2), put('2', { sni: 'b.test', update_time: 1 }, 2)]],
    ['a later object claims a.test', [put('3', { sni: 'A.test', update_time: 5 }, 3)]],
    ['it is disabled (status 0)', [put('3', { sni: 'a.test', update_time: 6, status: 0 }, 4)]],
    ['a client certificate takes no part', [put('4', { sni: 'c.test', type: 'client' }, 5)]],
    ['it becomes a server certificate', [put('4', { sni: 'c.test', type: 'server' }, 6)]],
    ['object 1 deleted', [del('1', 7)]],
    ['catch-all', [put('5', { snis: ['*'] }, 8)]],
    ['put and deleted in one batch', [put('6', { sni: 'a.test', update_time: 9 }, 9), del('6', 9)]],
  ]
  const policies = fakePolicies()
  const deps = depsOf(policies)
  let gen = emptyGeneration()
  for (const [name, evs] of steps) {
    const prev = gen
    const prevAnswers = answers(prev.sni)
    const { snapshot, changed } = apply(prev.snapshot, evs, Number(evs[0]?.modRevision))
    t.ok(isPersistentMap(snapshot.objects.ssls), `${name}: ssls kept in a persistent map`)
    t.same([...changed.keys()], ['ssls'], `${name}: apply names the resource`)
    policies.calls = 0
    gen = deriveGeneration(snapshot, prev, { full: false, changed }, deps)
    t.ok(policies.calls <= 2 * evs.length, `${name}: ${policies.calls} policies visited for ${evs.length} change(s)`)
    t.same(answers(gen.sni), answers(deriveSni(snapshot, fakePolicies())), name)
    t.same(answers(prev.sni), prevAnswers, `${name}: the previous generation's index is unchanged`)
  }
  t.equal(policies.calls, 0, 'an object put and deleted in one batch is not visited')
  t.same(policies.eager.sort(), ['1', '2', '3', '4', '5'], 'every changed object that serves had its server built at once (not 3 disabled, not 4 as a client certificate)')
})

t.test('derive: after a full load held in plain Maps → every later change visits only what changed', async (t) => {
  const policies = fakePolicies()
  const deps = depsOf(policies)
  const loaded = apply(emptySnapshot(), [put('1', { sni: 'a.test' }, 2), put('2', { sni: 'b.test' }, 2)], 2).snapshot
  // a full load may hand over plain Maps (core/config/full-load.ts)
  const plain: Snapshot = { revision: '2', objects: { ...loaded.objects, ssls: new Map(loaded.objects.ssls) } }
  const g1 = deriveGeneration(plain, emptyGeneration(), { full: true }, deps)
  t.same(policies.eager, [], 'a full load builds no server up front')
  const a2 = apply(plain, [put('3', { sni: 'c.test' }, 3)], 3)
  const s2 = a2.snapshot
  t.ok(isPersistentMap(s2.objects.ssls), 'the first change turns ssls into a persistent map')
  policies.calls = 0
  const g2 = deriveGeneration(s2, g1, { full: false, changed: a2.changed }, deps)
  t.equal(policies.calls, 1, 'the first change after the load visits only the new object')
  t.same(answers(g2.sni), answers(deriveSni(s2, fakePolicies())))
  policies.calls = 0
  const a3 = apply(s2, [put('2', { sni: 'c.test', update_time: 9 }, 4)], 4)
  const g3 = deriveGeneration(a3.snapshot, g2, { full: false, changed: a3.changed }, deps)
  t.equal(policies.calls, 2, 'one changed object: its old and new policy')
  t.equal(g3.sni.lookup('c.test')?.id, '2')
  t.equal(g3.sni.lookup('b.test'), undefined)
  t.equal(g2.sni.lookup('b.test')?.id, '2', 'the generation before still serves b.test')
})

t.test('derive: 800 seeded random batches of ssl changes → incremental equals full rebuild every time', async (t) => {
  const rnd = seeded(31337)
  const int = (n: number) => Math.floor(rnd() * n)
  const pick = <X>(xs: readonly X[]): X => xs[int(xs.length)]!
  const names = ['a.test', 'B.test', 'b.test.', '*.w.test', 'x.w.test', '*', 'c.test', '*.test']
  const deps = depsOf()
  let gen = emptyGeneration()
  let rev = 1
  let differ = 0
  for (let i = 0; i < 800; i++) {
    rev++
    const evs: ConfigEvent[] = []
    for (let j = 0, n = 1 + int(3); j < n; j++) {
      const id = String(int(15))
      if (rnd() < 0.2) evs.push(del(id, rev))
      else {
        const snis = Array.from({ length: 1 + int(2) }, () => pick(names))
        evs.push(put(id, { ...(rnd() < 0.5 ? { snis } : { sni: snis[0] }), update_time: int(3), ...(rnd() < 0.1 ? { status: 0 } : {}), ...(rnd() < 0.1 ? { type: 'client' } : {}) }, rev))
      }
    }
    const { snapshot, changed } = apply(gen.snapshot, evs, rev)
    gen = changed.size > 0 ? deriveGeneration(snapshot, gen, { full: false, changed }, deps) : { ...gen, snapshot }
    if (JSON.stringify(answers(gen.sni)) !== JSON.stringify(answers(deriveSni(snapshot, fakePolicies())))) differ++
  }
  t.equal(differ, 0)
  t.ok(gen.snapshot.objects.ssls.size > 3, `objects alive at the end: ${gen.snapshot.objects.ssls.size}`)
})

t.test('derive: upstream client certificates resolve through the ssl objects and the keyring, and follow ssl changes', async (t) => {
  const RING = ['qeddd145sfvddff3']
  const pem = (n: string): string => `-----BEGIN PRIVATE KEY-----\n${n}\n-----END PRIVATE KEY-----\n`
  const ev = (res: string, id: string, value: object, rev: number): ConfigEvent => ({
    type: 'put', key: `/apisix/${res}/${id}`, value: JSON.stringify(value), modRevision: String(rev), createRevision: String(rev),
  })
  const nodes = { '127.0.0.1:8443': 1 }
  const deps = depsOf(fakePolicies(), RING)
  const derive = (a: ReturnType<typeof apply>, prev: ReturnType<typeof emptyGeneration>) => deriveGeneration(a.snapshot, prev, { full: false, changed: a.changed }, deps)
  const routeOf = (gen: ReturnType<typeof emptyGeneration>, path: string) =>
    gen.http.routes.match({ method: 'GET', host: 'h', path, remoteAddr: '127.0.0.1', varOf: () => undefined })
  const pairOf = (gen: ReturnType<typeof emptyGeneration>, path: string) => {
    const o = [...(routeOf(gen, path)?.upstream?.poolOptions.values() ?? [])][0]
    return o && { cert: o.clientCert, key: o.clientKey }
  }

  let s = apply(emptySnapshot(), [
    ev('ssls', 'c', { type: 'client', cert: 'CERT-1', key: encryptKey(pem('one'), RING) }, 2),
    ev('ssls', 's', { sni: 'a.test', cert: 'CERT-S', key: pem('s') }, 2),
    ev('upstreams', 'by-id', { scheme: 'https', nodes, tls: { client_cert_id: 'c' } }, 2),
    ev('upstreams', 'server-type', { scheme: 'https', nodes, tls: { client_cert_id: 's' } }, 2),
    ev('routes', 'r1', { uri: '/by-id', upstream_id: 'by-id' }, 2),
    ev('routes', 'r2', { uri: '/inline', upstream: { scheme: 'https', nodes, tls: { client_cert: 'CERT-2', client_key: encryptKey(pem('two'), RING) } } }, 2),
    ev('routes', 'r3', { uri: '/plain', upstream: { scheme: 'http', nodes, tls: { client_cert: 'CERT-2', client_key: encryptKey(pem('two'), RING) } } }, 2),
    ev('routes', 'r4', { uri: '/server-type', upstream_id: 'server-type' }, 2),
    ev('routes', 'r5', { uri: '/bad-key', upstream: { scheme: 'https', nodes, tls: { client_cert: 'CERT-3', client_key: encryptKey(pem('three'), ['0123456789abcdef']) } } }, 2),
  ], 2)
  const g1 = derive(s, emptyGeneration())
  t.same(pairOf(g1, '/by-id'), { cert: 'CERT-1', key: pem('one') }, 'client_cert_id: the ssl object\'s certificate, its key decrypted')
  t.same(pairOf(g1, '/inline'), { cert: 'CERT-2', key: pem('two') }, 'inline pair: the key decrypted')
  t.same(pairOf(g1, '/plain'), { cert: undefined, key: undefined }, 'a plain upstream presents no certificate')
  t.same(routeOf(g1, '/server-type')?.missing, { status: 502, msg: 'failed to get ssl cert: ssl [s] is of type server, a client certificate needs type client (upstream tls.client_cert_id)' })
  t.match(routeOf(g1, '/bad-key')?.upstream?.unusable, /^upstream tls\.client_key does not decrypt with apisix\.data_encryption\.keyring/, 'a key the keyring cannot open: 503 naming it')
  t.ok(g1.http.namesSsls)

  s = apply(s.snapshot, [ev('ssls', 'c', { type: 'client', cert: 'CERT-1b', key: encryptKey(pem('one-b'), RING) }, 3)], 3)
  const g2 = derive(s, g1)
  t.same(pairOf(g2, '/by-id'), { cert: 'CERT-1b', key: pem('one-b') }, 'the named ssl object changed: the plan follows, the upstream object unchanged')
  t.equal(routeOf(g2, '/inline')?.upstream, routeOf(g1, '/inline')?.upstream, 'plans that name no ssl object are reused')
  t.not([...routeOf(g2, '/by-id')!.upstream!.poolOptions.keys()][0], [...routeOf(g1, '/by-id')!.upstream!.poolOptions.keys()][0], 'a new certificate means a new pool')

  s = apply(s.snapshot, [{ type: 'delete', key: '/apisix/ssls/c', value: '', modRevision: '4', createRevision: '0' }], 4)
  const g3 = derive(s, g2)
  t.same(routeOf(g3, '/by-id')?.missing, { status: 502, msg: 'failed to get ssl cert: ssl id [c] does not exist (upstream tls.client_cert_id)' })

  // without an upstream naming an ssl object, ssl changes leave the HTTP plan alone
  const plainOnly = apply(emptySnapshot(), [ev('routes', 'r', { uri: '/x', upstream: { nodes } }, 2)], 2)
  const h1 = derive(plainOnly, emptyGeneration())
  const h2 = derive(apply(plainOnly.snapshot, [ev('ssls', 'z', { sni: 'z.test', cert: 'C', key: pem('z') }, 3)], 3), h1)
  t.equal(h2.http, h1.http, 'the same plan object')
})

t.test('derive: compiled parts live in the PlanCache the caller passes: its own generations reuse them, another cache compiles its own', async (t) => {
  const route = (id: string, uri: string, rev: number): ConfigEvent => ({
    type: 'put', key: `/apisix/routes/${id}`, value: JSON.stringify({ uri, upstream: { nodes: { '127.0.0.1:8080': 1 } } }), modRevision: String(rev), createRevision: String(rev),
  })
  const planOf = (g: ReturnType<typeof emptyGeneration>, path: string) => g.http.routes.match({ method: 'GET', host: 'h', path, remoteAddr: '127.0.0.1', varOf: () => undefined })?.upstream
  const a1 = apply(emptySnapshot(), [route('1', '/one', 2)], 2)
  const worker = depsOf()
  const g1 = deriveGeneration(a1.snapshot, emptyGeneration(), { full: true }, worker)
  const a2 = apply(a1.snapshot, [route('2', '/two', 3)], 3)
  const g2 = deriveGeneration(a2.snapshot, g1, { full: false, changed: a2.changed }, worker)
  t.ok(planOf(g1, '/one'), 'the route has its upstream plan')
  t.equal(planOf(g2, '/one'), planOf(g1, '/one'), 'the same cache: the unchanged route keeps its compiled plan')
  const other = deriveGeneration(a2.snapshot, emptyGeneration(), { full: true }, depsOf())
  t.not(planOf(other, '/one'), planOf(g1, '/one'), 'another cache (explain\'s) compiles its own: no table is shared between them')
  t.same(planOf(other, '/one')?.timeouts, planOf(g1, '/one')?.timeouts, 'and compiles the same plan')
})
