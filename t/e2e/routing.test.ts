import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { httpGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'

t.test('routing through a real gateway (radixtree_host_uri semantics)', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const names = ['exact', 'prefix', 'longer', 'uris', 'host', 'wild', 'get', 'prio-lo', 'prio-hi', 'vars', 'cidr', 'off', 'byid']
  const echo = await startEcho(t, 'routing')
  // every route tags its requests with its own id through proxy-rewrite, so the answer names the route
  const up = { nodes: { [echo.hostPort]: 1 } }
  const tag = (id: string): Record<string, unknown> => ({ 'proxy-rewrite': { headers: { set: { 'x-route': '$route_id' } } }, _id: id })
  const routes: Record<string, Record<string, unknown>> = {
    exact: { uri: '/r/exact' },
    prefix: { uri: '/r/*' },
    longer: { uri: '/r/deep/*' },
    uris: { uris: ['/u/one', '/u/two'] },
    host: { uri: '/h/*', host: 'api.example.com' },
    wild: { uri: '/h/*', hosts: ['*.example.com'] },
    get: { uri: '/m', methods: ['GET'] },
    'prio-lo': { uri: '/p', priority: 1 },
    'prio-hi': { uri: '/p', priority: 10, vars: [['http_x_p', '==', 'yes']] },
    vars: { uri: '/v', vars: [['arg_k', '==', 'v'], ['OR', ['http_x_a', '~~', '^a+$'], ['cookie_c', 'in', ['1', '2']]]] },
    cidr: { uri: '/c', remote_addrs: ['10.0.0.0/8', '127.0.0.0/24'] },
    off: { uri: '/off', status: 0 },
  }
  for (const [id, r] of Object.entries(routes)) {
    const { _id, ...plugins } = tag(id)
    void _id
    const res = await admin.put(`routes/${id}`, { ...r, upstream: up, plugins })
    t.equal(res.status, 201, `${id}: ${res.text}`)
  }
  t.equal((await admin.put('upstreams/u1', up)).status, 201)
  t.equal((await admin.put('routes/byid', { uri: '/byid', upstream_id: 'u1', plugins: { 'proxy-rewrite': { headers: { set: { 'x-route': '$route_id' } } } } })).status, 201)
  void names
  const which = async (path: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<string> => {
    const r = await httpGet(gw.http, path, o)
    return r.status === 200 ? String(r.json.headers['x-route']) : String(r.status)
  }
  await eventually(() => which('/byid'), (v) => v === 'byid', { timeoutMs: 15_000 })

  const cases: [string, string, { method?: string; headers?: Record<string, string> }, string][] = [
    ['exact path before a prefix', '/r/exact', {}, 'exact'],
    ['a prefix catches the rest', '/r/exactly', {}, 'prefix'],
    ['the longest prefix first', '/r/deep/x', {}, 'longer'],
    ['/r/* covers /r/ itself', '/r/', {}, 'prefix'],
    ['uris: first', '/u/one', {}, 'uris'],
    ['uris: second', '/u/two', {}, 'uris'],
    ['exact host before a wildcard', '/h/x', { headers: { host: 'API.example.com:9080' } }, 'host'],
    ['wildcard host, any depth', '/h/x', { headers: { host: 'a.b.example.com' } }, 'wild'],
    ['no host route for another host', '/h/x', { headers: { host: 'other.org' } }, '404'],
    ['methods: GET allowed', '/m', {}, 'get'],
    ['methods: POST refused', '/m', { method: 'POST' }, '404'],
    ['priority: the higher one when its vars hold', '/p', { headers: { 'x-p': 'yes' } }, 'prio-hi'],
    ['priority: the lower one otherwise', '/p', {}, 'prio-lo'],
    ['vars: all hold (OR branch by header)', '/v?k=v', { headers: { 'x-a': 'aaa' } }, 'vars'],
    ['vars: all hold (OR branch by cookie)', '/v?k=v', { headers: { cookie: 'c=2' } }, 'vars'],
    ['vars: one fails', '/v?k=w', { headers: { 'x-a': 'aaa' } }, '404'],
    ['remote_addrs: 127.0.0.1 is in 127.0.0.0/24', '/c', {}, 'cidr'],
    ['status 0: never matched', '/off', {}, '404'],
    ['upstream_id resolves', '/byid', {}, 'byid'],
  ]
  for (const [what, path, o, want] of cases) t.equal(await which(path, o), want, `${what}: ${path} → ${want}`)

  t.test('a changed upstream object is used by the routes naming it, without a restart', async (t) => {
    const other = await startEcho(t, 'other')
    t.equal((await admin.put('upstreams/u1', { nodes: { [other.hostPort]: 1 } })).status, 200)
    const r = await eventually(() => httpGet(gw.http, '/byid'), (x) => x.headers['x-upstream'] === 'other', { timeoutMs: 10_000 })
    t.equal(r.headers['x-upstream'], 'other')
  })

  t.test('a route whose upstream_id names nothing answers 502; a deleted route 404', async (t) => {
    // written to etcd directly would bypass the admin's reference check: delete the upstream under the route instead
    t.equal((await admin.put('routes/dangling', { uri: '/dangling', upstream_id: 'u2' })).status >= 400, true, 'the admin refuses a dangling reference')
    t.equal((await admin.delete('routes/exact')).status, 200)
    await eventually(() => which('/r/exact'), (v) => v === 'prefix', { timeoutMs: 10_000 })
  })

  t.test('a global rule runs before the route: both plugins apply, the route last', async (t) => {
    t.equal((await admin.put('global_rules/g1', { plugins: { 'proxy-rewrite': { headers: { set: { 'x-global': 'g', 'x-route': 'from-global' } } } } })).status, 201)
    const r = await eventually(() => httpGet(gw.http, '/m'), (x) => x.json?.headers['x-global'] === 'g', { timeoutMs: 10_000 })
    t.equal(r.json.headers['x-route'], 'get', 'the route plugin ran after the global one')
    t.equal((await admin.delete('global_rules/g1')).status, 200)
  })
})
