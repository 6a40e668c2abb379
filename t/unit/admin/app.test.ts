import t from 'tap'
import { pino } from 'pino'
import { buildAdminApp } from '../../../admin/app.js'
import { buildAuth } from '../../../admin/auth.js'
import { KeyedQueue } from '../../../admin/kv.js'
import { MemoryStore } from '../../lib/memory-store.js'
import { buildRegistry } from '../../../core/resources/registry.js'
import { pluginByName } from '../../../core/plugins/registry.js'
import { decryptKey } from '../../../core/resources/key-crypto.js'
import { makeTestPki } from '../resources/pki.js'

const KEY = 'test-admin-key'
const NOW = Date.UTC(2030, 0, 1)
const pki = makeTestPki(NOW)
const site = pki.leaf('test.com', ['test.com'])
const up = { type: 'roundrobin', nodes: { '127.0.0.1:1980': 1 } }

function setup(o: { keyring?: string[]; maxAttempts?: number } = {}) {
  const store = new MemoryStore()
  const app = buildAdminApp({
    store,
    registry: buildRegistry(pluginByName),
    plugins: pluginByName,
    keyring: o.keyring ?? ['qeddd145sfvddff3', 'edd1c9f0985e76a2'],
    prefix: '/apisix',
    now: () => NOW,
    queue: new KeyedQueue(),
    maxAttempts: o.maxAttempts ?? 8,
    pluginNames: ['proxy-rewrite', 'mtls-auth'],
    auth: buildAuth([{ name: 'admin', key: KEY, role: 'admin' }, { name: 'v', key: 'viewer', role: 'viewer' }], []),
    log: pino({ level: 'silent' }),
  })
  const call = async (method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS', url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await app.inject({
      method,
      url: `/apisix/admin/${url}`,
      headers: { 'x-api-key': KEY, ...headers },
      ...(body === undefined ? {} : { payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    })
    let json: Record<string, unknown> = {}
    try {
      json = JSON.parse(res.body) as Record<string, unknown>
    } catch {
      json = {}
    }
    return { status: res.statusCode, json, res }
  }
  return { store, app, call }
}

t.test('ssls: PUT 201 then 200, stored as sent + id + timestamps, key encrypted, GET without key', async (t) => {
  const { store, call } = setup()
  const first = await call('PUT', 'ssls/1', { cert: site.cert, key: site.key, sni: 'test.com' })
  t.equal(first.status, 201)
  t.equal((first.json['key'] as string), '/apisix/ssls/1')
  const value = first.json['value'] as Record<string, unknown>
  t.same(Object.keys(value).sort(), ['cert', 'create_time', 'id', 'key', 'sni', 'update_time'], 'no schema defaults in the stored object')
  t.not(value['key'], site.key, 'the echoed key is encrypted')
  t.same(decryptKey(value['key'] as string, ['qeddd145sfvddff3']), { ok: true, value: site.key })
  t.equal(value['create_time'], NOW / 1000)
  const stored = await store.get('/apisix/ssls/1')
  t.same(stored?.value, value, 'etcd holds what was echoed')
  t.equal((await call('PUT', 'ssls/1', { cert: site.cert, key: site.key, sni: 'test.com' })).status, 200)
  const got = await call('GET', 'ssls/1')
  t.equal(got.status, 200)
  t.match(got.json, { key: '/apisix/ssls/1', value: { sni: 'test.com' }, createdIndex: Number, modifiedIndex: Number })
  t.notOk('key' in (got.json['value'] as object), 'GET never returns the key')
  const list = await call('GET', 'ssls')
  t.equal(list.json['total'], 1)
  t.notOk('key' in ((list.json['list'] as Array<{ value: object }>)[0]?.value ?? {}))
})

t.test('ssls: empty keyring → key stored in plain text and left out of every answer', async (t) => {
  const { store, call } = setup({ keyring: [] })
  const r = await call('PUT', 'ssls/1', { cert: site.cert, key: site.key, sni: 'test.com' })
  t.equal(r.status, 201)
  t.notOk('key' in (r.json['value'] as object))
  t.equal((await store.get('/apisix/ssls/1'))?.value && ((await store.get('/apisix/ssls/1'))?.value as { key: string }).key, site.key)
})

t.test('ssls: validation errors are 400 with the field named', async (t) => {
  const { call } = setup()
  const cases: Array<[unknown, RegExp]> = [
    [{ sni: 'foo.com' }, /invalid configuration: property "cert" is required/],
    [{ cert: site.cert, key: site.key, sni: 'a.com', name: 'x' }, /invalid configuration: additional properties forbidden, found name/],
    [{ cert: site.cert, key: site.key, sni: 'a.com', create_time: 1 }, /^the property is forbidden: {2}create_time$/],
    [{ cert: site.cert.slice(0, 400), key: site.key, sni: 'a.com' }, /^failed to parse cert: PEM_read_bio_X509_AUX\(\) failed$/],
    [{ cert: site.cert, key: pki.leaf('x', ['x']).key, sni: 'a.com' }, /does not match/],
    [{ cert: site.cert, key: site.key, sni: 'a.com', client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['(?!x)'] } }, /skip_mtls_uri_regex\[0\]/],
    [[1, 2], /must be a JSON object/],
  ]
  for (const [body, msg] of cases) {
    const r = await call('PUT', 'ssls/1', body)
    t.equal(r.status, 400, String(msg))
    t.match(r.json['error_msg'], msg)
  }
  t.match(await call('PUT', 'ssls/*invalid', { cert: site.cert, key: site.key, sni: 'a.com' }), { status: 400 })
  t.match(await call('PUT', 'ssls/2', { id: '3', cert: site.cert, key: site.key, sni: 'a.com' }), { status: 400, json: { error_msg: 'wrong ssl id' } })
  t.match(await call('PUT', 'ssls', { cert: site.cert, key: site.key, sni: 'a.com' }), { status: 400, json: { error_msg: 'missing ssl id' } })
})

t.test('ssls: warnings for expiring certificates, uncovered SNIs and SNIs claimed twice', async (t) => {
  const { call } = setup()
  const soon = pki.leaf('soon.com', ['soon.com'], { days: 3 })
  const r = await call('PUT', 'ssls/1', { cert: soon.cert, key: soon.key, snis: ['soon.com', 'other.com'] })
  t.equal(r.status, 201)
  t.match(r.json['warning'], /cert expires at .*; the certificate's SANs do not cover "other.com"/)
  const two = await call('PUT', 'ssls/2', { cert: site.cert, key: site.key, snis: ['test.com', 'SOON.com.'] })
  t.match(two.json['warning'], /sni "soon.com" also claimed by ssl 1/)
  const clean = await call('PUT', 'ssls/3', { cert: site.cert, key: site.key, sni: 'test.com', status: 0 })
  t.equal(clean.json['warning'], undefined, 'a disabled object claims nothing')
})

t.test('POST: generated 20-digit id; id in the body refused', async (t) => {
  const { call } = setup()
  const r = await call('POST', 'routes', { uri: '/a', upstream: up })
  t.equal(r.status, 201)
  const id = (r.json['value'] as { id: string }).id
  t.match(id, /^\d{20}$/)
  t.equal(r.json['key'], `/apisix/routes/${id}`)
  t.match(await call('POST', 'routes', { id: '1', uri: '/a', upstream: up }), { status: 400, json: { error_msg: 'wrong route id, do not need it' } })
  t.match(await call('POST', 'routes/1', { uri: '/a', upstream: up }), { status: 400 })
})

t.test('PATCH: merge and sub-path; result re-validated; timestamps', async (t) => {
  const { call } = setup()
  await call('PUT', 'routes/1', { uri: '/a', upstream: up, labels: { a: '1' } })
  const m = await call('PATCH', 'routes/1', { labels: { b: '2' }, desc: 'd' })
  t.equal(m.status, 200)
  t.match(m.json['value'], { uri: '/a', labels: { a: '1', b: '2' }, desc: 'd', id: '1' })
  const s = await call('PATCH', 'routes/1/plugins', { 'proxy-rewrite': { uri: '/x' } })
  t.equal(s.status, 200)
  t.match(s.json['value'], { plugins: { 'proxy-rewrite': { uri: '/x' } } })
  t.match(await call('PATCH', 'routes/1', { uri: null }), { status: 400, json: { error_msg: /uri/ } }, 'merge result is validated')
  t.match(await call('PATCH', 'routes/1/plugins', { 'no-such': {} }), { status: 400, json: { error_msg: 'unknown plugin [no-such]' } })
  const ts = await call('PATCH', 'routes/1', { create_time: 0, update_time: 1 })
  t.match(ts.json['value'], { create_time: 0, update_time: 1 }, 'PATCH may set timestamps, 0 included')
  t.match(await call('PATCH', 'routes/9', { desc: 'x' }), { status: 404, json: { message: 'Key not found' } })
  t.match(await call('PATCH', 'routes/1'), { status: 400, json: { error_msg: 'missing new configuration' } })
})

t.test('PATCH on an ssl key sub-path encrypts the new key', async (t) => {
  const { call } = setup()
  await call('PUT', 'ssls/1', { cert: site.cert, key: site.key, snis: ['test.com'] })
  const r = await call('PATCH', 'ssls/1/snis', ['update1.com', 'update2.com'])
  t.match(r.json['value'], { snis: ['update1.com', 'update2.com'] })
  const k = await call('PATCH', 'ssls/1/key', JSON.stringify(site.key))
  t.equal(k.status, 200)
  t.not((k.json['value'] as { key: string }).key, site.key)
})

t.test('DELETE: 200 with APISIX body, 404 when absent, upstream references need force', async (t) => {
  const { call } = setup()
  t.match(await call('DELETE', 'routes/1'), { status: 404, json: { message: 'Key not found' } })
  await call('PUT', 'upstreams/u1', up)
  t.match(await call('PUT', 'routes/1', { uri: '/a', upstream_id: 'nope' }), { status: 400, json: { error_msg: 'failed to fetch upstream info by upstream id [nope], response code: 404' } })
  t.equal((await call('PUT', 'routes/1', { uri: '/a', upstream_id: 'u1' })).status, 201)
  t.match(await call('DELETE', 'upstreams/u1'), { status: 400, json: { error_msg: 'can not delete this upstream, route [1] is still using it now' } })
  t.match(await call('DELETE', 'upstreams/u1?force=yes'), { status: 400 })
  t.match(await call('DELETE', 'upstreams/u1?force=true'), { status: 200, json: { deleted: '1', key: '/apisix/upstreams/u1' } })
  t.match(await call('DELETE', 'routes/1'), { status: 200, json: { deleted: '1', key: '/apisix/routes/1' } })
})

t.test('upstreams: tls client pair checked and encrypted; client_cert_id must name a client-type ssl', async (t) => {
  const { store, call } = setup()
  const other = pki.leaf('o', ['o'])
  t.match(await call('PUT', 'upstreams/1', { ...up, tls: { client_cert: site.cert, client_key: other.key } }), { status: 400, json: { error_msg: /^tls: .*does not match/ } })
  const ok = await call('PUT', 'upstreams/1', { ...up, tls: { client_cert: site.cert, client_key: site.key } })
  t.equal(ok.status, 201)
  const inStore = (await store.get('/apisix/upstreams/1'))?.value as { tls: { client_key: string } }
  t.same(decryptKey(inStore.tls.client_key, ['qeddd145sfvddff3']), { ok: true, value: site.key }, 'client_key encrypted at rest')
  t.equal(((await call('GET', 'upstreams/1')).json['value'] as { tls: object }).tls.hasOwnProperty('client_key'), false, 'and never read back')
  t.match(await call('PUT', 'upstreams/2', { ...up, tls: { client_cert_id: 's1' } }), { status: 400, json: { error_msg: 'failed to fetch ssl info by ssl id [s1], response code: 404' } })
  await call('PUT', 'ssls/s1', { cert: site.cert, key: site.key, sni: 'test.com' })
  t.match(await call('PUT', 'upstreams/2', { ...up, tls: { client_cert_id: 's1' } }), { status: 400, json: { error_msg: /wrong ssl type/ } })
  await call('PUT', 'ssls/c1', { type: 'client', cert: site.cert, key: site.key })
  t.equal((await call('PUT', 'upstreams/2', { ...up, tls: { client_cert_id: 'c1' } })).status, 201)
  t.match(await call('PUT', 'routes/1', { uri: '/a', upstream: { ...up, tls: { client_cert: site.cert, client_key: other.key } } }), { status: 400, json: { error_msg: /^upstream.tls: / } })
})

t.test('consumers: PUT by username, POST and PATCH 405, certificate owned once', async (t) => {
  const { call } = setup()
  const alice = pki.leaf('alice', [])
  const c = { username: 'alice', plugins: { 'mtls-auth': { certificates: [alice.cert] } } }
  const r = await call('PUT', 'consumers', c)
  t.equal(r.status, 201)
  t.equal(r.json['key'], '/apisix/consumers/alice')
  t.notOk('id' in (r.json['value'] as object), 'consumers carry no id')
  t.match(await call('PUT', 'consumers/bob', c), { status: 400, json: { error_msg: 'wrong username' } })
  t.match(await call('PUT', 'consumers/bob', { username: 'bob', plugins: { 'mtls-auth': { certificates: [alice.cert] } } }), {
    status: 400,
    json: { error_msg: /already belongs to consumer "alice"/ },
  })
  t.equal((await call('PUT', 'consumers/alice', c)).status, 200, 'the owner may re-send its own certificate')
  t.match(await call('POST', 'consumers', c), { status: 405, json: { error_msg: 'not supported `POST` method for consumer' } })
  t.match(await call('PATCH', 'consumers/alice', { desc: 'x' }), { status: 405 })
  const soon = pki.leaf('carol', [], { days: 2 })
  const carol = await call('PUT', 'consumers/carol', { username: 'carol', plugins: { 'mtls-auth': { certificates: [soon.cert] } } })
  t.equal(carol.status, 201)
  t.match(carol.json['warning'], /mtls-auth certificates\[0\] expires at/)
  t.match(await call('PUT', 'consumers/dave', { username: 'dave', plugins: { 'mtls-auth': { certificates: ['x'.repeat(100)] } } }), {
    status: 400,
    json: { error_msg: /plugin mtls-auth err: certificates\[0\]/ },
  })
})

t.test('list: filters and pagination', async (t) => {
  const { call } = setup()
  for (let i = 1; i <= 12; i++) await call('PUT', `routes/${i}`, { uri: `/r${i}`, name: `route-${i}`, upstream: up, labels: { n: String(i % 2) } })
  const all = await call('GET', 'routes')
  t.equal(all.json['total'], 12)
  t.same((all.json['list'] as Array<{ key: string }>).slice(0, 3).map((x) => x.key), ['/apisix/routes/1', '/apisix/routes/10', '/apisix/routes/11'], 'etcd key order')
  t.equal((await call('GET', 'routes?name=route-1')).json['total'], 4)
  t.equal((await call('GET', 'routes?label=n:1')).json['total'], 6)
  t.equal((await call('GET', 'routes?uri=^/r1$')).json['total'], 1)
  const p2 = await call('GET', 'routes?page=2&page_size=10')
  t.equal(p2.json['total'], 12)
  t.same((p2.json['list'] as Array<{ key: string }>).map((x) => x.key), ['/apisix/routes/11', '/apisix/routes/12'], 'sorted by createdIndex')
  t.match(await call('GET', 'routes?page=1&page_size=5'), { status: 400, json: { error_msg: 'page_size must be between 10 and 500' } })
  t.match(await call('GET', 'routes?name=(?=a)b'), { status: 400 })
  t.match(await call('GET', 'routes?name=(?<=route-)1'), { status: 200, json: { total: 4 } }, 'a lookbehind runs in linear time on Node 24: accepted')
  t.same((await call('GET', 'ssls')).json, { total: 0, list: [] })
})

t.test('routes: ssl-enforcement whitelist without client authentication → stored with a warning', async (t) => {
  const { call } = setup()
  const r = await call('PUT', 'routes/1', { uri: '/a', upstream: up, plugins: { 'ssl-enforcement': { whitelistClientCertificates: ['CN=a'] } } })
  t.equal(r.status, 201)
  t.match(r.json['warning'], /plugin ssl-enforcement/)
})

t.test('HTTP edges: auth, unknown resource, bad bodies, 413, CORS, etcd down', async (t) => {
  const { store, call } = setup()
  t.match(await call('GET', 'routes', undefined, { 'x-api-key': '' }), { status: 401, json: { error_msg: 'failed to check token', description: 'missing apikey' } })
  t.match(await call('GET', 'routes', undefined, { 'x-api-key': 'nope' }), { status: 401, json: { description: 'wrong apikey' } })
  t.match(await call('PUT', 'routes/1', { uri: '/a', upstream: up }, { 'x-api-key': 'viewer' }), { status: 403 })
  t.equal((await call('GET', 'routes', undefined, { 'x-api-key': 'viewer' })).status, 200)
  t.match(await call('GET', 'services'), { status: 404, json: { error_msg: 'Unsupported resource type: services' } })
  const names = await call('GET', 'plugins/list')
  t.same([names.status, JSON.parse(names.res.body)], [200, ['mtls-auth', 'proxy-rewrite']], 'plugins/list names the built-in plugins')
  t.match(await call('PUT', 'routes/1', '{"uri":'), { status: 400, json: { error_msg: /^invalid request body/ } })
  t.match(await call('PUT', 'routes/1', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])), { status: 400, json: { error_msg: /UTF-8/ } })
  t.match(await call('PUT', 'routes/1', `${'['.repeat(5000)}${']'.repeat(5000)}`), { status: 400, json: { error_msg: /nested deeper/ } })
  const big = await call('PUT', 'routes/1', JSON.stringify({ uri: '/a', desc: 'x'.repeat(1.6 * 1024 * 1024) }))
  t.equal(big.status, 413)
  t.match(big.json, { error_msg: /larger than/ })
  t.match(await call('PUT', 'routes/1', 'uri=/a', { 'content-type': 'application/x-www-form-urlencoded' }), { status: 400 }, 'a form body is parsed as JSON and refused')
  const form = await call('PUT', 'routes/1', JSON.stringify({ uri: '/a', upstream: up }), { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(form.status, 201, 'curl -d sends a form content type with a JSON body')
  const pre = await call('OPTIONS', 'routes/1', undefined, { 'x-api-key': '' })
  t.equal(pre.status, 200)
  t.equal(pre.res.headers['access-control-allow-origin'], '*')
  t.equal((await call('HEAD', '', undefined, { 'x-api-key': '' })).status, 401, 'HEAD /apisix/admin/ needs no resource but a key')
  store.down = true
  t.match(await call('GET', 'routes/1'), { status: 503, json: { error_msg: /etcd/ } })
  t.match(await call('PUT', 'routes/2', { uri: '/a', upstream: up }), { status: 503 })
})

t.test('compare-and-swap: a concurrent foreign write is not lost, the PATCH re-applies on top', async (t) => {
  const { store, call } = setup()
  await call('PUT', 'routes/1', { uri: '/a', upstream: up, labels: { a: '1' } })
  let interleaved = false
  store.beforeWrite = (key) => {
    if (interleaved) return
    interleaved = true
    const cur = JSON.parse(JSON.stringify({ uri: '/a', upstream: up, id: '1', labels: { a: '1', foreign: 'yes' } })) as object
    store.set(key, JSON.stringify(cur))
  }
  const r = await call('PATCH', 'routes/1', { labels: { mine: 'yes' } })
  t.equal(r.status, 200)
  t.match(r.json['value'], { labels: { a: '1', foreign: 'yes', mine: 'yes' } })
})

t.test('compare-and-swap: a key that keeps moving → 409 after the attempts', async (t) => {
  const { store, call } = setup({ maxAttempts: 3 })
  await call('PUT', 'routes/1', { uri: '/a', upstream: up })
  store.beforeWrite = (key) => store.set(key, JSON.stringify({ uri: '/a', upstream: up, id: '1' }))
  t.match(await call('PATCH', 'routes/1', { desc: 'x' }), { status: 409, json: { error_msg: /changed by another writer/ } })
})

t.test('200 concurrent PATCHes adding one label each → all 200 labels survive', async (t) => {
  const { call } = setup()
  await call('PUT', 'routes/1', { uri: '/a', upstream: up })
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => call('PATCH', 'routes/1', { labels: { [`l${i}`]: String(i) } })))
  t.same(results.filter((r) => r.status !== 200).length, 0)
  const labels = ((await call('GET', 'routes/1')).json['value'] as { labels: object }).labels
  t.equal(Object.keys(labels).length, 200)
})
