import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { closeAgents, httpGet, httpsGet } from '../lib/tls-client.js'
import { makePki, type Issued } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'

// 127.0.0.1 is the trusted proxy; a client bound to 127.0.0.2 is anybody else
const TRUSTED = '127.0.0.1'
const UNTRUSTED = '127.0.0.2'

t.test('certificates from a trusted proxy header (apisix.ssl.client_cert_header)', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, {
    etcd: etcd.url,
    config: { apisix: { ssl: { client_cert_header: { name: 'X-Client-Cert', trusted_proxies: [`${TRUSTED}/32`] } } } },
  })
  const admin = adminOf(gw)
  const echo = await startEcho(t)
  t.teardown(closeAgents)
  const pki = makePki({ server: ['api.test'], clients: ['alice', 'stranger'] })
  const c = (name: string): Issued => pki.clients[name] as Issued
  const upstream = { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } }
  const forms = (x: Issued): [string, string][] => [
    ['base64 DER', x.der.toString('base64')],
    ['base64 PEM', Buffer.from(x.cert).toString('base64')],
    ['URL-encoded PEM', encodeURIComponent(x.cert)],
  ]
  const b64 = (x: Issued): string => x.der.toString('base64')
  const get = (path: string, from: string, headers: Record<string, string> = {}) => httpGet(gw.http, path, { localAddress: from, headers })

  t.equal((await admin.put('consumers/alice', { username: 'alice', plugins: { 'mtls-auth': { certificates: [c('alice').cert] } } })).status, 201)
  const put = async (id: string, plugins: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(`routes/${id}`, { uri: `/${id}`, upstream, plugins })
    t.ok(r.status === 201 || r.status === 200, `PUT routes/${id}: ${r.text}`)
    await eventually(() => get(`/${id}`, TRUSTED), (x) => !(x.status === 404 && x.text.includes('Route Not Found')), { describe: gw.output })
  }
  await put('echo', {})
  await put('h', { 'mtls-auth': { ca: pki.ca.cert } })
  await put('h-noca', { 'mtls-auth': {} })
  await put('enforce', { 'ssl-enforcement': { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=alice,O=*,C=FR'] } })
  await put('ssl-only', { 'ssl-enforcement': {} })

  t.test('from the trusted proxy: each header form identifies the consumer', async (t) => {
    for (const [form, value] of forms(c('alice'))) {
      const r = await get('/h', TRUSTED, { 'x-client-cert': value, 'x-consumer-username': 'admin' })
      t.equal(r.status, 200, `${form} → 200 (${r.text.slice(0, 200)})`)
      t.equal(r.json?.headers['x-consumer-username'], 'alice', `${form}: upstream sees alice`)
    }
  })

  t.test('from the trusted proxy: validate_certificate checks the header certificate', async (t) => {
    const cases: [string, string, RegExp][] = [
      ['a foreign CA', b64(pki.foreignClient), /^mtls-auth: validate_certificate failed: the issuer of .*Foreign CA.* is not in the trusted CA bundle/],
      ['an expired certificate', b64(pki.expiredClient), /^mtls-auth: validate_certificate failed: the client certificate expired at/],
      ['a certificate of no consumer', b64(c('stranger')), /^mtls-auth: consumer_required failed/],
      ['garbage', 'not-a-cert!', /^mtls-auth: client certificate failed: the X-Client-Cert header from the proxy: .*neither PEM nor base64/],
      ['a truncated certificate', c('alice').der.subarray(0, 300).toString('base64'), /X-Client-Cert header from the proxy: DER certificate is truncated/],
    ]
    for (const [name, value, re] of cases) {
      const r = await get('/h', TRUSTED, { 'x-client-cert': value })
      t.equal(r.status, 401, `${name} → 401`)
      t.match(r.json?.error_msg, re, `${name}: ${r.text}`)
    }
    const noCa = await get('/h-noca', TRUSTED, { 'x-client-cert': b64(c('alice')) })
    t.equal(noCa.status, 401, 'no ca on the plugin and plain HTTP (no ssl object) → 401')
    t.match(noCa.json.error_msg, /validate_certificate failed: no CA/)
  })

  t.test('from another address: the header is stripped, never trusted, never proxied', async (t) => {
    for (const [form, value] of forms(c('alice'))) {
      const r = await get('/h', UNTRUSTED, { 'x-client-cert': value })
      t.equal(r.status, 401, `${form} from ${UNTRUSTED} → 401`)
      t.match(r.json.error_msg, /no client certificate was presented/)
    }
    const seen = await get('/echo', UNTRUSTED, { 'x-client-cert': b64(c('alice')), 'x-forwarded-proto': 'https' })
    t.equal(seen.status, 200)
    t.equal(seen.json.headers['x-client-cert'], undefined, 'the upstream never sees the header from an untrusted peer')
    t.equal(seen.json.headers['x-forwarded-proto'], 'http', 'nor its X-Forwarded-Proto')
    t.notOk(seen.json.rawHeaders.some((h: string) => h.toLowerCase() === 'x-client-cert'), 'not under any spelling')
    const spelled = await get('/echo', UNTRUSTED, { 'X-CLIENT-CERT': b64(c('alice')) })
    t.equal(spelled.json.headers['x-client-cert'], undefined, 'the header name is matched without case')
    const fromProxy = await get('/echo', TRUSTED, { 'x-client-cert': b64(c('alice')) })
    t.equal(fromProxy.json.headers['x-client-cert'], b64(c('alice')), 'from the trusted proxy it is passed on')
  })

  t.test('X-Forwarded-Proto: https counts as TLS from the trusted proxy only', async (t) => {
    t.equal((await get('/ssl-only', TRUSTED, { 'x-forwarded-proto': 'https' })).status, 200)
    t.equal((await get('/ssl-only', TRUSTED, { 'x-forwarded-proto': 'http' })).status, 403)
    t.equal((await get('/ssl-only', TRUSTED)).status, 403)
    const r = await get('/ssl-only', UNTRUSTED, { 'x-forwarded-proto': 'https' })
    t.equal(r.status, 403)
    t.equal(r.json.key, 'SSL_ENFORCEMENT_SSL_REQUIRED')
  })

  t.test('ssl-enforcement with a header certificate: authenticated and matched from the trusted proxy only', async (t) => {
    const https = { 'x-forwarded-proto': 'https' }
    t.equal((await get('/enforce', TRUSTED, { ...https, 'x-client-cert': b64(c('alice')) })).status, 200)
    const other = await get('/enforce', TRUSTED, { ...https, 'x-client-cert': b64(c('stranger')) })
    t.equal(other.status, 403)
    t.same(other.json, { error_msg: "You're not allowed to access this resource", key: 'SSL_ENFORCEMENT_CLIENT_FORBIDDEN', name: 'C=FR,O=Test Org,CN=stranger' })
    t.equal((await get('/enforce', TRUSTED, https)).status, 401, 'no header → 401')
    t.equal((await get('/enforce', UNTRUSTED, { ...https, 'x-client-cert': b64(c('alice')) })).status, 403, 'untrusted: not TLS, no certificate')
  })

  t.test('$ssl_client_* variables come from the header certificate', async (t) => {
    await put('vars', { 'proxy-rewrite': { headers: { set: { 'X-Serial': '$ssl_client_serial', 'X-Dn': '$ssl_client_s_dn', 'X-Verify': '$ssl_client_verify' } } } })
    const r = await get('/vars', TRUSTED, { 'x-client-cert': b64(c('alice')) })
    t.equal(r.json.headers['x-serial'], c('alice').serialHex)
    t.equal(r.json.headers['x-dn'], 'C=FR,O=Test Org,CN=alice')
    t.equal(r.json.headers['x-verify'], 'SUCCESS')
    const u = await get('/vars', UNTRUSTED, { 'x-client-cert': b64(c('alice')) })
    t.equal(u.json.headers['x-verify'], 'NONE')
  })

  t.test('over TLS from the trusted proxy: the header wins over the proxy own handshake', async (t) => {
    const ssl = await admin.put('ssls/api', { sni: 'api.test', cert: pki.server.cert, key: pki.server.key })
    t.equal(ssl.status, 201, ssl.text)
    const o = { port: gw.https, servername: 'api.test', ca: pki.ca.cert }
    const r = await eventually(() => httpsGet('/h', o, { headers: { 'x-client-cert': b64(c('alice')) } }), (x) => x.status === 200, { describe: gw.output })
    t.equal(r.json.headers['x-consumer-username'], 'alice')
  })
})
