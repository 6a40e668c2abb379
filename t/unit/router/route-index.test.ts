import t from 'tap'
import { buildRouteIndex } from '../../../core/router/route-index.js'
import type { MatchInput, RouteLike } from '../../../core/router/route-index.js'
import { compileVars } from '../../../core/resources/vars.js'
import type { VarValue } from '../../../core/resources/vars.js'
import { compileUri, uriMatches } from '../../../core/router/uri.js'
import { buildCidrSet } from '../../../core/net/cidr.js'
import { seeded } from '../../lib/random.js'

type R = RouteLike & { readonly id: string }

const req = (o: Partial<Omit<MatchInput, 'varOf'>> & { vars?: Record<string, VarValue> } = {}): MatchInput => {
  const vars = o.vars ?? {}
  return {
    method: o.method ?? 'GET',
    host: o.host ?? 'example.com',
    path: o.path ?? '/',
    remoteAddr: o.remoteAddr ?? '127.0.0.1',
    varOf: (n) => vars[n],
  }
}

t.test('route index: spec §2.5 cases', async (t) => {
  const cases: [string, R[], MatchInput, string | undefined][] = [
    ['exact path beats a prefix of higher priority', [{ id: 'p', uri: '/foo*', priority: 10 }, { id: 'e', uri: '/foo' }], req({ path: '/foo' }), 'e'],
    ['longest prefix first', [{ id: 'a', uri: '/a*' }, { id: 'ab', uri: '/a/b*' }], req({ path: '/a/b/c' }), 'ab'],
    ['shorter prefix when the longer does not cover the path', [{ id: 'a', uri: '/a*' }, { id: 'ab', uri: '/a/b*' }], req({ path: '/a/c' }), 'a'],
    ['same path: higher priority first', [{ id: 'lo', uri: '/x', priority: 1 }, { id: 'hi', uri: '/x', priority: 5 }], req({ path: '/x' }), 'hi'],
    ['same path and priority: first inserted wins', [{ id: 'one', uri: '/x*' }, { id: 'two', uri: '/x*' }], req({ path: '/xy' }), 'one'],
    ['negative priority sorts after the default', [{ id: 'neg', uri: '/x', priority: -1 }, { id: 'def', uri: '/x' }], req({ path: '/x' }), 'def'],
    ['same prefix key: longer original path first', [{ id: 'short', uri: '/a/*' }, { id: 'long', uri: '/a/*/c' }], req({ path: '/a/b/c' }), 'long'],
    ['/foo* covers /foobar', [{ id: 'f', uri: '/foo*' }], req({ path: '/foobar' }), 'f'],
    ['/foo* does not cover /fo', [{ id: 'f', uri: '/foo*' }], req({ path: '/fo' }), undefined],
    ['/* covers the root', [{ id: 'all', uri: '/*' }], req({ path: '/' }), 'all'],
    ['nothing matches → undefined', [{ id: 'a', uri: '/a' }], req({ path: '/b' }), undefined],
    ['uris: any of them', [{ id: 'm', uris: ['/a', '/b*'] }], req({ path: '/bcd' }), 'm'],
    ['uris wins over uri when both are present', [{ id: 'm', uri: '/a', uris: ['/b'] }], req({ path: '/a' }), undefined],
    ['status 0 routes take no part', [{ id: 'off', uri: '/x', status: 0 }, { id: 'on', uri: '/x*' }], req({ path: '/x' }), 'on'],
    ['methods: listed method', [{ id: 'g', uri: '/x', methods: ['GET'] }], req({ path: '/x', method: 'GET' }), 'g'],
    ['methods: other method → next candidate', [{ id: 'p', uri: '/x', methods: ['POST'] }, { id: 'any', uri: '/x*' }], req({ path: '/x', method: 'GET' }), 'any'],
    ['methods: HEAD is not GET', [{ id: 'g', uri: '/x', methods: ['GET'] }], req({ path: '/x', method: 'HEAD' }), undefined],
    ['methods: empty list means any', [{ id: 'g', uri: '/x', methods: [] }], req({ path: '/x', method: 'PURGE' }), 'g'],
    ['remote_addrs: inside the CIDR', [{ id: 'in', uri: '/x', remote_addrs: ['10.0.0.0/8'] }], req({ path: '/x', remoteAddr: '10.9.9.9' }), 'in'],
    ['remote_addrs: outside the CIDR', [{ id: 'in', uri: '/x', remote_addrs: ['10.0.0.0/8'] }], req({ path: '/x', remoteAddr: '11.0.0.1' }), undefined],
    ['remote_addr: a single address', [{ id: 'one', uri: '/x', remote_addr: '::1' }], req({ path: '/x', remoteAddr: '::1' }), 'one'],
    ['vars: satisfied', [{ id: 'v', uri: '/x', vars: [['arg_v', '==', '1']] }], req({ path: '/x', vars: { arg_v: '1' } }), 'v'],
    ['vars: not satisfied → next candidate', [{ id: 'v', uri: '/x', vars: [['arg_v', '==', '1']], priority: 9 }, { id: 'w', uri: '/x' }], req({ path: '/x' }), 'w'],
    ['host: exact', [{ id: 'h', uri: '/x', host: 'a.com' }], req({ host: 'a.com', path: '/x' }), 'h'],
    ['host: other host → no match', [{ id: 'h', uri: '/x', host: 'a.com' }], req({ host: 'b.com', path: '/x' }), undefined],
    ['host: configured upper case still matches', [{ id: 'h', uri: '/x', hosts: ['A.COM'] }], req({ host: 'a.com', path: '/x' }), 'h'],
    ['host: *.foo.com matches any depth', [{ id: 'w', uri: '/x', host: '*.foo.com' }], req({ host: 'a.b.foo.com', path: '/x' }), 'w'],
    ['host: *.foo.com does not match foo.com', [{ id: 'w', uri: '/x', host: '*.foo.com' }], req({ host: 'foo.com', path: '/x' }), undefined],
    ['host: *foo.com is a plain suffix', [{ id: 'w', uri: '/x', host: '*foo.com' }], req({ host: 'barfoo.com', path: '/x' }), 'w'],
    ['host: * matches every host', [{ id: 'star', uri: '/x', host: '*' }], req({ host: 'q.r', path: '/x' }), 'star'],
    ['host routes before host-less ones, even exact vs prefix', [{ id: 'plain', uri: '/x' }, { id: 'host', uri: '/x*', host: 'a.com' }], req({ host: 'a.com', path: '/x' }), 'host'],
    ['host routes that fail fall through to host-less ones', [{ id: 'host', uri: '/x', host: 'a.com', methods: ['POST'] }, { id: 'plain', uri: '/x' }], req({ host: 'a.com', path: '/x' }), 'plain'],
    ['exact host before wildcard host', [{ id: 'w', uri: '/x', host: '*.a.com' }, { id: 'e', uri: '/x', host: 'b.a.com' }], req({ host: 'b.a.com', path: '/x' }), 'e'],
    ['longest wildcard suffix first', [{ id: 'short', uri: '/x', host: '*.com' }, { id: 'long', uri: '/x', host: '*.a.com' }], req({ host: 'b.a.com', path: '/x' }), 'long'],
    ['a failing host group falls to the next wildcard', [{ id: 'short', uri: '/x', host: '*.com' }, { id: 'long', uri: '/y', host: '*.a.com' }], req({ host: 'b.a.com', path: '/x' }), 'short'],
    ['* is the last host group before host-less routes', [{ id: 'star', uri: '/x', host: '*' }, { id: 'w', uri: '/x*', host: '*.com' }], req({ host: 'a.com', path: '/x' }), 'w'],
    ['hosts: any of them', [{ id: 'm', uri: '/x', hosts: ['a.com', 'b.com'] }], req({ host: 'b.com', path: '/x' }), 'm'],
    [':param is literal in this router', [{ id: 'p', uri: '/user/:id' }], req({ path: '/user/1' }), undefined],
  ]
  for (const [name, routes, input, want] of cases) t.equal(buildRouteIndex(routes).match(input)?.id, want, `${name} → ${want ?? 'no route'}`)
})

t.test('route index: routes that fail to compile are reported, the rest still route', async (t) => {
  const idx = buildRouteIndex<R>([
    { id: 'bad-vars', uri: '/x', vars: [['a', '??', 'b']] },
    { id: 'bad-cidr', uri: '/x', remote_addrs: ['nope'] },
    { id: 'good', uri: '/x' },
  ])
  t.same(idx.rejected.map((r) => r.id), ['bad-vars', 'bad-cidr'])
  t.match(idx.rejected[0]?.reason, /invalid operator/)
  t.equal(idx.match(req({ path: '/x' }))?.id, 'good')
})

// ---- conformance: the index against a slow, obvious reference over generated route sets ----


const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!

const SEGS = ['a', 'b', 'ab', ':id']
const PATTERN_TAILS = ['', '*', '/*', '/*/a', '/:id/*']
const HOSTS = ['a.com', 'x.a.com', 'y.x.a.com', 'b.com', 'ba.com']
const ROUTE_HOSTS = [...HOSTS, '*.a.com', '*.com', '*a.com', '*', 'X.A.COM', '*.x.a.com']
const METHODS = ['GET', 'POST', 'PUT']

function genPath(r: () => number, max: number): string {
  const n = Math.floor(r() * (max + 1))
  let p = ''
  for (let i = 0; i < n; i++) p += `/${pick(r, SEGS)}`
  return p
}

function genRoute(r: () => number, id: number): R {
  const path = () => (genPath(r, 3) || '') + pick(r, PATTERN_TAILS) || '/'
  const route: { -readonly [K in keyof R]: R[K] } = { id: `r${id}` }
  if (r() < 0.2) route.uris = [path(), path()].filter((v, i, a) => a.indexOf(v) === i)
  else route.uri = path()
  const h = r()
  if (h < 0.3) route.host = pick(r, ROUTE_HOSTS)
  else if (h < 0.45) route.hosts = [pick(r, ROUTE_HOSTS), pick(r, ROUTE_HOSTS)]
  if (r() < 0.3) route.methods = METHODS.filter(() => r() < 0.5)
  if (r() < 0.5) route.priority = pick(r, [-1, 0, 1, 2, 5])
  if (r() < 0.15) route.remote_addrs = ['10.0.0.0/8']
  if (r() < 0.15) route.vars = [['arg_v', '==', '1']]
  if (r() < 0.1) route.status = 0
  return route
}

function genRequest(r: () => number): MatchInput {
  const path = genPath(r, 4) + (r() < 0.2 ? '/' : '')
  return req({
    host: pick(r, HOSTS),
    path: path || '/',
    method: pick(r, METHODS),
    remoteAddr: pick(r, ['10.1.1.1', '192.168.1.1']),
    vars: r() < 0.5 ? { arg_v: '1' } : {},
  })
}

/** The obvious reading of spec §2.5: rank every (route, host, path) candidate, take the first that passes. */
function reference(routes: readonly R[], q: MatchInput): string | undefined {
  const cands: { rank: number[]; route: R }[] = []
  routes.forEach((route, seq) => {
    if (route.status !== undefined && route.status !== 1) return
    const hosts = route.hosts ?? (route.host !== undefined ? [route.host] : undefined)
    const hostRanks: number[][] = []
    if (!hosts) hostRanks.push([2, 0])
    else
      for (const raw of hosts) {
        const h = raw.toLowerCase()
        if (h.startsWith('*')) {
          if (q.host.endsWith(h.slice(1))) hostRanks.push([1, -(h.length - 1)])
        } else if (h === q.host) hostRanks.push([0, 0])
      }
    const paths = route.uris ?? (route.uri !== undefined ? [route.uri] : [])
    for (const hr of hostRanks)
      for (const p of paths) {
        const c = compileUri(p)
        if (!uriMatches(c, q.path)) continue
        // exact hits skip the parameter check, so an exact path only needs to be equal
        const pathRank = c.prefix ? [1, -c.key.length] : [0, 0]
        cands.push({ rank: [...hr, ...pathRank, -(route.priority ?? 0), -p.length, seq], route })
      }
  })
  cands.sort((a, b) => {
    for (let i = 0; i < a.rank.length; i++) if (a.rank[i] !== b.rank[i]) return a.rank[i]! - b.rank[i]!
    return 0
  })
  for (const { route } of cands) {
    if (route.methods && route.methods.length > 0 && !route.methods.includes(q.method)) continue
    if (route.remote_addrs && !buildCidrSet(route.remote_addrs).has(q.remoteAddr)) continue
    if (route.vars && !compileVars(route.vars)(q.varOf)) continue
    return route.id
  }
  return undefined
}

t.test('route index: agrees with the reference matcher on generated route sets (seeded)', async (t) => {
  const r = seeded(20261202)
  let compared = 0
  let matched = 0
  const mismatches: string[] = []
  for (let set = 0; set < 300; set++) {
    const routes = Array.from({ length: 1 + Math.floor(r() * 40) }, (_, i) => genRoute(r, i))
    const idx = buildRouteIndex(routes)
    for (let k = 0; k < 100; k++) {
      const q = genRequest(r)
      const want = reference(routes, q)
      const got = idx.match(q)?.id
      compared++
      if (want !== undefined) matched++
      if (got !== want && mismatches.length < 5)
        mismatches.push(`${JSON.stringify(routes)} ${q.method} ${q.host}${q.path}: index ${got}, reference ${want}`)
    }
  }
  t.same(mismatches, [], `${compared} requests compared`)
  t.ok(matched > compared / 4, `the generated sets exercise matches (${matched} of ${compared} found a route)`)
})
