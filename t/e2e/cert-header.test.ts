import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { closeAgents, httpGet, httpsGet } from '../lib/tls-client.js'
import { issue, makePki, type Issued } from '../lib/certs.js'
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
    ['RFC 9440 byte sequence', `:${x.der.toString('base64')}:`],
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
    await put('vars', { 'proxy-rewrite': { headers: { set: { 'X-Serial': '$ssl_client_serial', 'X-Dn': '$ssl_client_s_dn', 'X-Verify': '$ssl_client_verify', 'Client-Cert': '$ssl_client_cert_rfc9440' } } } })
    const r = await get('/vars', TRUSTED, { 'x-client-cert': b64(c('alice')) })
    t.equal(r.json.headers['client-cert'], `:${b64(c('alice'))}:`, '$ssl_client_cert_rfc9440 passes it on in RFC 9440 form')
    t.equal(r.json.headers['x-serial'], c('alice').serialHex)
    t.equal(r.json.headers['x-dn'], 'C=FR,O=Test Org,CN=alice')
    t.equal(r.json.headers['x-verify'], 'SUCCESS')
    const u = await get('/vars', UNTRUSTED, { 'x-client-cert': b64(c('alice')) })
    t.equal(u.json.headers['x-verify'], 'NONE')
  })

  t.test('RFC 9440: Client-Cert with the intermediates in its -Chain header, from the trusted proxy only', async (t) => {
    const inter = issue(pki.ca, { cn: 'Proxy Intermediate', ca: true })
    const dave = issue(inter, { cn: 'dave' })
    const sf = (x: Issued): string => `:${x.der.toString('base64')}:`
    t.equal((await admin.put('consumers/dave', { username: 'dave', plugins: { 'mtls-auth': { certificates: [dave.cert] } } })).status, 201)
    const chained = { 'x-client-cert': sf(dave), 'x-client-cert-chain': sf(inter) }
    const r = await eventually(() => get('/h', TRUSTED, chained), (x) => x.status !== 401 || !/consumer_required/.test(x.text), { describe: gw.output })
    t.equal(r.status, 200, `the chain header completes the chain to the plugin's ca (${r.text.slice(0, 200)})`)
    t.equal(r.json?.headers['x-consumer-username'], 'dave')
    const cases: [string, Record<string, string>, RegExp][] = [
      ['without the chain header', { 'x-client-cert': sf(dave) }, /validate_certificate failed: the issuer of .*Proxy Intermediate.* is not in the trusted CA bundle/],
      ['a chain member that is not a certificate', { 'x-client-cert': sf(dave), 'x-client-cert-chain': ':AAAA:' }, /the X-Client-Cert-Chain header from the proxy: member 1: not a DER certificate/],
      ['a chain member that is not a byte sequence', { 'x-client-cert': sf(dave), 'x-client-cert-chain': inter.der.toString('base64') }, /the X-Client-Cert-Chain header from the proxy: member 1 is not a byte sequence/],
      ['a byte sequence that is not base64', { 'x-client-cert': ':not base64!:' }, /the X-Client-Cert header from the proxy: the header is a byte sequence that is not base64/],
      ['a byte sequence that is not a certificate', { 'x-client-cert': `:${Buffer.from('hello').toString('base64')}:` }, /the X-Client-Cert header from the proxy: not a DER certificate/],
    ]
    for (const [name, headers, re] of cases) {
      const x = await get('/h', TRUSTED, headers)
      t.equal(x.status, 401, `${name} → 401`)
      t.match(x.json?.error_msg, re, `${name}: names the header (${x.text})`)
    }
    const from = await get('/h', UNTRUSTED, chained)
    t.equal(from.status, 401, 'from another address: not trusted')
    t.match(from.json.error_msg, /no client certificate was presented/)
    const seen = await get('/echo', UNTRUSTED, chained)
    t.equal(seen.json.headers['x-client-cert'], undefined, 'both headers are removed before the upstream')
    t.equal(seen.json.headers['x-client-cert-chain'], undefined)
    const passed = await get('/echo', TRUSTED, chained)
    t.equal(passed.json.headers['x-client-cert-chain'], sf(inter), 'from the trusted proxy they are passed on')
  })

  t.test('RFC 9440: the -Chain intermediates count for client.depth when mtls-auth verifies against the ssl object', async (t) => {
    const inter = issue(pki.ca, { cn: 'Depth Intermediate', ca: true })
    const erin = issue(inter, { cn: 'erin' })
    t.equal((await admin.put('consumers/erin', { username: 'erin', plugins: { 'mtls-auth': { certificates: [erin.cert] } } })).status, 201)
    for (const depth of [0, 1]) {
      const server = issue(pki.ca, { cn: `depth${depth}.test`, sans: [`depth${depth}.test`] })
      const r = await admin.put(`ssls/depth${depth}`, { sni: `depth${depth}.test`, cert: server.cert, key: server.key, client: { ca: pki.ca.cert, depth, skip_mtls_uri_regex: ['^/'] } })
      t.equal(r.status, 201, r.text)
    }
    const headers = { 'x-client-cert': `:${erin.der.toString('base64')}:`, 'x-client-cert-chain': `:${inter.der.toString('base64')}:` }
    const at = (depth: number) => httpsGet('/h-noca', { port: gw.https, servername: `depth${depth}.test` }, { headers })
    const one = await eventually(() => at(1), (x) => x.status === 200, { describe: gw.output })
    t.equal(one.json.headers['x-consumer-username'], 'erin', 'depth 1, one intermediate from the chain header → served')
    // the two objects were written in this order: with depth1 served, depth0 is there too
    const zero = await at(0)
    t.equal(zero.status, 401, 'depth 0, one intermediate → 401')
    t.match(zero.json.error_msg, /1 intermediate CAs, more than the verify depth 0/)
  })

  t.test('over TLS from the trusted proxy: the header wins over the proxy own handshake', async (t) => {
    const ssl = await admin.put('ssls/api', { sni: 'api.test', cert: pki.server.cert, key: pki.server.key })
    t.equal(ssl.status, 201, ssl.text)
    const o = { port: gw.https, servername: 'api.test', ca: pki.ca.cert }
    const r = await eventually(() => httpsGet('/h', o, { headers: { 'x-client-cert': b64(c('alice')) } }), (x) => x.status === 200, { describe: gw.output })
    t.equal(r.json.headers['x-consumer-username'], 'alice')
  })
})
