/**
 * The web UI's server side without a browser: deployment.admin.enable_admin_ui, allow_admin,
 * the headers that protect the page, the read views the UI calls, and the size of what it ships.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { startEtcd } from '../lib/etcd.js'
import { KEY, ROOT, startGateway, VIEWER_KEY } from '../lib/gateway.js'
import { httpGet } from '../lib/tls-client.js'
import { issue, makeCa } from '../lib/certs.js'
import { OpensslCa } from '../lib/openssl-ca.js'

const FROM = '127.0.0.2' // the address allow_admin lets in; the tests' other requests come from 127.0.0.1

t.test('web UI: served on admin_listen, behind allow_admin, with the page protected', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, config: { deployment: { admin: { allow_admin: [`${FROM}/32`] } } } })
  const get = (path: string, headers: Record<string, string> = {}) => httpGet(gw.admin, path, { localAddress: FROM, headers })
  const call = (method: string, path: string, key: string, body?: unknown) =>
    httpGet(gw.admin, `/apisix/admin/${path}`, { localAddress: FROM, method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })

  t.test('/ui/ answers the page with CSP, X-Frame-Options and nosniff; /ui redirects', async (t) => {
    const r = await get('/ui/')
    t.equal(r.status, 200)
    t.match(r.headers['content-type'], /^text\/html/)
    t.match(r.headers['content-security-policy'], /^default-src 'self';/)
    t.notMatch(r.headers['content-security-policy'], /unsafe/)
    t.equal(r.headers['x-frame-options'], 'DENY')
    t.equal(r.headers['x-content-type-options'], 'nosniff')
    t.match(r.text, /<script type="module" src="app.js"><\/script>/)
    const js = await get('/ui/app.js')
    t.equal(js.status, 200)
    t.match(js.headers['content-type'], /^text\/javascript/)
    t.equal(js.headers['x-content-type-options'], 'nosniff')
    const again = await get('/ui/app.js', { 'if-none-match': String(js.headers['etag']) })
    t.equal(again.status, 304, 'an unchanged file is not sent again')
    const redirect = await get('/ui')
    t.equal(redirect.status, 302)
    t.equal(redirect.headers['location'], '/ui/')
    t.equal((await get('/ui/nothing.js')).status, 404)
    t.equal((await get('/ui/..%2fpackage.json')).status, 404, 'only the built files')
  })

  t.test('allow_admin applies to the UI', async (t) => {
    const r = await httpGet(gw.admin, '/ui/')
    t.equal(r.status, 403)
    t.match(r.json?.error_msg, /allow_admin/)
  })

  t.test("the UI's read views: whoami, certificates, inspect, TLS counters; a viewer key may read them", async (t) => {
    t.same((await call('GET', 'ui/whoami', KEY)).json, { role: 'admin' })
    t.same((await call('GET', 'ui/whoami', VIEWER_KEY)).json, { role: 'viewer' })
    t.equal((await call('GET', 'ui/whoami', 'wrong')).status, 401)
    const ca = makeCa('View CA')
    const leaf = issue(ca, { cn: 'v.test', sans: ['v.test', 'w.test'] })
    const put = await call('PUT', 'ssls/v', KEY, { snis: ['v.test'], cert: leaf.cert, key: leaf.key, client: { ca: ca.cert, skip_mtls_uri_regex: ['^/pub/'] } })
    t.equal(put.status, 201, put.text)
    const view = await call('GET', 'ui/certificates', VIEWER_KEY)
    t.equal(view.status, 200)
    t.match(view.json.ssls, [
      {
        id: 'v',
        snis: ['v.test'],
        certs: [{ keyType: 'RSA', subject: 'CN=v.test', issuer: 'CN=View CA', sans: ['v.test', 'w.test'] }],
        client: { ca: [{ subject: 'CN=View CA' }], depth: 1, skip_mtls_uri_regex: ['^/pub/'] },
        warnings: [],
      },
    ])
    const inspected = await call('POST', 'ui/inspect', VIEWER_KEY, { cert: leaf.cert })
    t.match(inspected.json, { certs: [{ sans: ['v.test', 'w.test'], keyType: 'RSA' }] })
    const bad = await call('POST', 'ui/inspect', KEY, { cert: 'nope' })
    t.equal(bad.status, 400)
    t.match(bad.json.error_msg, /"cert"/)
    // a CRL's next update is part of the view (the certificates page and the expiry timeline show it)
    const ossl = new OpensslCa('View CRL CA')
    t.teardown(() => ossl.cleanup())
    const srv = issue(ca, { cn: 'c.test', sans: ['c.test'] })
    const next = new Date(Date.now() + 5 * 86_400_000)
    const withCrl = await call('PUT', 'ssls/c', KEY, { snis: ['c.test'], cert: srv.cert, key: srv.key, client: { ca: ossl.self.cert, crl: ossl.crl({ nextUpdate: next }) } })
    t.equal(withCrl.status, 201, withCrl.text)
    const c = (await call('GET', 'ui/certificates', VIEWER_KEY)).json.ssls.find((s: { id: string }) => s.id === 'c')
    t.same(c.client.crl, [{ issuer: 'CN=View CRL CA', nextUpdate: `${next.toISOString().slice(0, 19)}.000Z` }])
    const tls = await call('GET', 'ui/tls', VIEWER_KEY)
    t.equal(tls.status, 200, tls.text)
    t.match(tls.json, { time: Number, handshakes: {}, client_cert_failures: {} })
  })

  t.test('the shipped assets are small: gzip-compressed under 300 KB', async (t) => {
    const dir = join(ROOT, 'dist', 'ui')
    const total = readdirSync(dir).reduce((n, f) => n + gzipSync(readFileSync(join(dir, f)), { level: 9 }).length, 0)
    t.ok(total < 300 * 1024, `${total} bytes gzipped`)
  })
})

t.test('web UI off: /ui/ answers 404', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, config: { deployment: { admin: { enable_admin_ui: false } } } })
  for (const p of ['/ui/', '/ui', '/ui/app.js']) t.equal((await httpGet(gw.admin, p)).status, 404, p)
  const r = await httpGet(gw.admin, '/apisix/admin/ui/whoami', { headers: { 'x-api-key': KEY } })
  t.equal(r.status, 404, 'nor do its views')
  t.equal((await httpGet(gw.admin, '/apisix/admin/routes', { headers: { 'x-api-key': KEY } })).status, 200, 'the admin API itself is on')
})
