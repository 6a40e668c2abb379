import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { closeAgents, httpGet, httpsGet, type TlsOpts } from '../lib/tls-client.js'
import { issue, makePki, type Issued } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'

t.test('ssl-enforcement: Gravitee fields, keys and statuses through a real gateway', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t)
  t.teardown(closeAgents)
  const pki = makePki({ server: ['api.test'], clients: [] })
  const person = (subject: [string, string][]): Issued => issue(pki.ca, { subject: subject.map(([shortName, value]) => ({ shortName, value })) })
  const alice = person([['CN', 'alice.acme.com'], ['O', 'Acme'], ['C', 'FR']])
  const bob = person([['CN', 'bob'], ['OU', 'Dev  Team'], ['O', 'Acme Corp'], ['C', 'US']])
  const upstream = { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } }

  // every path skips the handshake's client-certificate requirement, so the plugin decides
  const ssl = await admin.put('ssls/api', { sni: 'api.test', cert: pki.server.cert, key: pki.server.key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/'] } })
  t.equal(ssl.status, 201, ssl.text)
  const tlsAs = (c?: Issued): TlsOpts => ({ port: gw.https, servername: 'api.test', ca: pki.ca.cert, ...(c ? { cert: c.cert, key: c.key } : {}) })
  const route = async (id: string, plugin: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(`routes/${id}`, { uri: `/${id}`, upstream, plugins: { 'ssl-enforcement': plugin } })
    t.ok(r.status === 201 || r.status === 200, `PUT routes/${id}: ${r.text}`)
  }
  const served = (id: string, c?: Issued) =>
    eventually(() => httpsGet(`/${id}`, tlsAs(c)), (r) => !(r.status === 404 && r.text.includes('Route Not Found')), { describe: gw.output })

  t.test('requiresSsl (default true): plain HTTP → 403 SSL_ENFORCEMENT_SSL_REQUIRED, HTTPS → proxied', async (t) => {
    await route('ssl', {})
    t.equal((await served('ssl')).status, 200)
    const r = await httpGet(gw.http, '/ssl')
    t.equal(r.status, 403)
    t.same(r.json, { error_msg: 'Access to the resource requires SSL certificate.', key: 'SSL_ENFORCEMENT_SSL_REQUIRED' })
    t.equal(r.headers['content-type'], 'application/json')
  })

  t.test('requiresSsl false: plain HTTP → proxied', async (t) => {
    await route('nossl', { requiresSsl: false })
    await served('nossl')
    t.equal((await httpGet(gw.http, '/nossl')).status, 200)
  })

  t.test('requiresClientAuthentication: no certificate or an unverified one → 401, a verified one → proxied', async (t) => {
    await route('auth', { requiresClientAuthentication: true })
    const none = await served('auth')
    t.equal(none.status, 401)
    t.same(none.json, { error_msg: 'Unauthorized', key: 'SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED' })
    const foreign = await httpsGet('/auth', tlsAs(pki.foreignClient))
    t.equal(foreign.status, 401, 'a certificate from another CA does not authenticate')
    t.equal((await httpsGet('/auth', tlsAs(pki.expiredClient))).status, 401, 'an expired certificate does not authenticate')
    t.equal((await httpsGet('/auth', tlsAs(alice))).status, 200)
  })

  t.test('whitelistClientCertificates: pattern cases against real certificates', async (t) => {
    const cases: [id: string, pattern: string, alice: boolean, bob: boolean][] = [
      ['exact', 'CN=alice.acme.com,O=Acme,C=FR', true, false],
      ['star', 'CN=*.acme.com,O=Acme,C=FR', true, false],
      ['globstar', 'CN=**,OU=**,O=Acme*,C=**', false, true],
      ['question', 'CN=alice.acme.com,O=Acme,C=??', true, false],
      ['question-short', 'CN=alice.acme.com,O=Acme,C=?', false, false],
      ['spaces', 'CN = bob , OU = dev team , O = acme   corp , C = us', false, true],
      ['attr-case', 'cn=ALICE.ACME.COM,o=acme,c=fr', true, false],
      ['reversed', 'C=FR,O=Acme,CN=alice.acme.com', true, false],
      ['other-order', 'O=Acme,CN=alice.acme.com,C=FR', false, false],
      ['fewer-rdns', 'CN=alice.acme.com,O=Acme', false, false],
      ['literal-dot', 'CN=alice?acme?com,O=Acme,C=FR', true, false],
      ['no-regex', 'CN=alice.acme.co[m],O=Acme,C=FR', false, false],
    ]
    for (const [id, pattern] of cases) await route(`wl-${id}`, { requiresClientAuthentication: true, whitelistClientCertificates: [pattern] })
    for (const [id] of cases) await served(`wl-${id}`, alice)
    for (const [id, pattern, a, b] of cases) {
      const ra = await httpsGet(`/wl-${id}`, tlsAs(alice))
      t.equal(ra.status, a ? 200 : 403, `${pattern} vs alice → ${a ? 200 : 403}`)
      if (!a) t.same(ra.json, { error_msg: "You're not allowed to access this resource", key: 'SSL_ENFORCEMENT_CLIENT_FORBIDDEN', name: 'C=FR,O=Acme,CN=alice.acme.com' })
      const rb = await httpsGet(`/wl-${id}`, tlsAs(bob))
      t.equal(rb.status, b ? 200 : 403, `${pattern} vs bob → ${b ? 200 : 403}`)
    }
  })

  t.test('whitelistClientCertificates: any entry of the list allows', async (t) => {
    await route('wl-any', { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=nobody', 'CN=bob,OU=*,O=*,C=US'] })
    t.equal((await served('wl-any', bob)).status, 200)
    t.equal((await httpsGet('/wl-any', tlsAs(alice))).status, 403)
  })

  t.test('response_templates: each key answers its own status, body and type; {{name}} is the DN', async (t) => {
    await route('tpl', {
      requiresClientAuthentication: true,
      whitelistClientCertificates: ['CN=bob,OU=*,O=*,C=*'],
      response_templates: {
        SSL_ENFORCEMENT_SSL_REQUIRED: { status: 426, body: 'TLS please', content_type: 'text/plain' },
        SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED: { status: 495, body: '{"message":"certificate needed"}' },
        SSL_ENFORCEMENT_CLIENT_FORBIDDEN: { status: 451, body: '{"message":"{{name}} may not pass"}' },
      },
    })
    const none = await served('tpl')
    t.equal(none.status, 495)
    t.same(none.json, { message: 'certificate needed' })
    t.equal(none.headers['content-type'], 'application/json')
    const plain = await httpGet(gw.http, '/tpl')
    t.equal(plain.status, 426)
    t.equal(plain.text, 'TLS please')
    t.equal(plain.headers['content-type'], 'text/plain')
    const forbidden = await httpsGet('/tpl', tlsAs(alice))
    t.equal(forbidden.status, 451)
    t.same(forbidden.json, { message: 'C=FR,O=Acme,CN=alice.acme.com may not pass' })
    t.equal((await httpsGet('/tpl', tlsAs(bob))).status, 200)
  })

  t.test('a Gravitee policy configuration pasted unchanged → stored and enforced', async (t) => {
    const gravitee = JSON.parse(`{
      "requiresSsl": true,
      "requiresClientAuthentication": true,
      "certificateLocation": "SESSION",
      "certificateHeaderName": "ssl-client-cert",
      "whitelistClientCertificates": ["CN=alice.acme.com,O=Acme,C=FR"]
    }`) as Record<string, unknown>
    const r = await admin.put('routes/gravitee', { uri: '/gravitee', upstream, plugins: { 'ssl-enforcement': gravitee } })
    t.equal(r.status, 201, r.text)
    t.match(r.json.warning, /client_cert_header/, 'the header fields are accepted, with a warning naming the gateway-wide setting')
    t.equal((await served('gravitee', alice)).status, 200)
    t.equal((await httpsGet('/gravitee', tlsAs(bob))).status, 403)
    t.equal((await httpsGet('/gravitee', tlsAs())).status, 401)
    t.equal((await httpGet(gw.http, '/gravitee')).status, 403)
  })

  t.test('admin: an allow-list without requiresClientAuthentication → stored with a warning; a broken name → 400 naming it', async (t) => {
    const w = await admin.put('routes/warn', { uri: '/warn', upstream, plugins: { 'ssl-enforcement': { whitelistClientCertificates: ['CN=x'] } } })
    t.equal(w.status, 201, w.text)
    t.match(w.json.warning, /whitelistClientCertificates has no effect without requiresClientAuthentication/)
    const bad = await admin.put('routes/bad', { uri: '/bad', upstream, plugins: { 'ssl-enforcement': { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=ok', 'just words'] } } })
    t.equal(bad.status, 400)
    t.match(bad.json.error_msg, /ssl-enforcement.*whitelistClientCertificates\[1\]/)
    const typo = await admin.put('routes/bad', { uri: '/bad', upstream, plugins: { 'ssl-enforcement': { requireSsl: true } } })
    t.equal(typo.status, 400)
    t.match(typo.json.error_msg, /requireSsl/)
  })
})
