import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { closeAgents, httpGet, httpsGet, type TlsOpts } from '../lib/tls-client.js'
import { issue, makePki, type Issued } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'

t.test('mtls-auth: certificates identify consumers through a real gateway', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t)
  t.teardown(closeAgents)
  const pki = makePki({ server: ['api.test'], clients: ['alice', 'bob', 'stranger'] })
  const c = (name: string): Issued => pki.clients[name] as Issued
  const aliceNext = issue(pki.ca, { cn: 'alice' }) // the rotation certificate
  const upstream = { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } }

  const ssl = await admin.put('ssls/api', { sni: 'api.test', cert: pki.server.cert, key: pki.server.key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/'] } })
  t.equal(ssl.status, 201, ssl.text)
  const tlsAs = (cert?: Issued): TlsOpts => ({ port: gw.https, servername: 'api.test', ca: pki.ca.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}) })
  const route = async (id: string, plugin: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> => {
    const r = await admin.put(`routes/${id}`, { uri: `/${id}`, upstream, plugins: { 'mtls-auth': plugin, ...extra } })
    t.ok(r.status === 201 || r.status === 200, `PUT routes/${id}: ${r.text}`)
  }
  const served = (id: string, cert?: Issued) =>
    eventually(() => httpsGet(`/${id}`, tlsAs(cert)), (r) => !(r.status === 404 && r.text.includes('Route Not Found')), { describe: gw.output })

  t.test('consumers: two certificates (PEM and base64 DER) for one consumer; a duplicate or malformed one → 400 saying why', async (t) => {
    const alice = await admin.put('consumers/alice', { username: 'alice', plugins: { 'mtls-auth': { certificates: [c('alice').cert, aliceNext.der.toString('base64')] } } })
    t.equal(alice.status, 201, alice.text)
    t.equal((await admin.put('consumers/bob', { username: 'bob', plugins: { 'mtls-auth': { certificates: [c('bob').cert] } } })).status, 201)
    const dup = await admin.put('consumers/carol', { username: 'carol', plugins: { 'mtls-auth': { certificates: [pki.foreignClient.cert, aliceNext.cert] } } })
    t.equal(dup.status, 400)
    t.match(dup.json.error_msg, /certificates\[1\] already belongs to consumer "alice"/, 'the same certificate in another form is still a duplicate')
    const cases: [string, string, RegExp][] = [
      ['not base64', 'this is not a certificate: not even base64 at all; it is prose that goes on for a while', /certificates\[0\]: .*neither PEM nor base64/],
      ['a private key', pki.server.key, /certificates\[0\]: PEM holds a .*PRIVATE KEY, not a CERTIFICATE/],
      ['a chain', c('bob').cert + pki.ca.cert, /certificates\[0\]: PEM holds 2 blocks/],
      ['truncated DER', c('bob').der.subarray(0, 200).toString('base64'), /certificates\[0\]: DER certificate is truncated/],
    ]
    for (const [name, cert, re] of cases) {
      const r = await admin.put('consumers/dave', { username: 'dave', plugins: { 'mtls-auth': { certificates: [cert] } } })
      t.equal(r.status, 400, `${name} → 400`)
      t.match(r.json.error_msg, re, `${name}: says why`)
    }
    t.equal((await admin.get('consumers/dave')).status, 404, 'nothing stored')
  })

  t.test('a consumer certificate → proxied with X-Consumer-Username; the client cannot set it', async (t) => {
    await route('m', {})
    t.equal((await served('m', c('alice'))).status, 200)
    for (const [name, cert, who] of [['alice, first certificate', c('alice'), 'alice'], ['alice, second certificate', aliceNext, 'alice'], ['bob', c('bob'), 'bob']] as const) {
      const r = await httpsGet('/m', tlsAs(cert), { headers: { 'x-consumer-username': 'admin' } })
      t.equal(r.status, 200, `${name} → 200`)
      t.equal(r.json.headers['x-consumer-username'], who, `${name}: upstream sees ${who}`)
    }
  })

  t.test('each failing check → 401 naming it', async (t) => {
    const cases: [string, Issued | undefined, RegExp][] = [
      ['no certificate', undefined, /^mtls-auth: client certificate failed: no client certificate was presented$/],
      ['a certificate of no consumer', c('stranger'), /^mtls-auth: consumer_required failed: no consumer owns this certificate/],
      ['a certificate from a foreign CA', pki.foreignClient, /^mtls-auth: validate_certificate failed: .*(unable to get local issuer|self-signed|unable to verify)/],
      ['an expired certificate', pki.expiredClient, /^mtls-auth: validate_certificate failed: .*certificate has expired/],
    ]
    for (const [name, cert, re] of cases) {
      const r = await httpsGet('/m', tlsAs(cert), { headers: { 'x-consumer-username': 'admin' } })
      t.equal(r.status, 401, `${name} → 401`)
      t.match(r.json?.error_msg, re, `${name}: ${r.text}`)
    }
    const plain = await httpGet(gw.http, '/m')
    t.equal(plain.status, 401, 'plain HTTP → no certificate → 401')
  })

  t.test('validate_certificate false: an expired certificate of a consumer still identifies it', async (t) => {
    const expiredOwner = await admin.put('consumers/old', { username: 'old', plugins: { 'mtls-auth': { certificates: [pki.expiredClient.cert] } } })
    t.equal(expiredOwner.status, 201, expiredOwner.text)
    t.match(expiredOwner.json.warning, /expired/)
    await route('novalidate', { validate_certificate: false })
    const r = await eventually(() => httpsGet('/novalidate', tlsAs(pki.expiredClient)), (x) => x.status === 200, { describe: gw.output })
    t.equal(r.json.headers['x-consumer-username'], 'old')
  })

  t.test('validate_issuer_acl: the issuer must match issuer_acl', async (t) => {
    await route('acl-ok', { validate_issuer_acl: true, issuer_acl: ['cn=test root *'] })
    await route('acl-no', { validate_issuer_acl: true, issuer_acl: ['CN=Other CA', 'CN=Test Root CA,O=*'] })
    t.equal((await served('acl-ok', c('alice'))).status, 200)
    const r = await served('acl-no', c('alice'))
    t.equal(r.status, 401)
    t.match(r.json.error_msg, /^mtls-auth: validate_issuer_acl failed: the issuer "CN=Test Root CA" matches no issuer_acl pattern$/)
  })

  t.test('consumer_required false: a verified certificate of no consumer passes without X-Consumer-Username', async (t) => {
    await route('optional', { consumer_required: false })
    const r = await served('optional', c('stranger'))
    t.equal(r.status, 200)
    t.equal(r.json.headers['x-consumer-username'], undefined)
    const spoof = await httpsGet('/optional', tlsAs(c('stranger')), { headers: { 'x-consumer-username': 'alice' } })
    t.equal(spoof.json.headers['x-consumer-username'], undefined, 'a client-sent name is removed even when no consumer matched')
  })

  t.test('$consumer_name is set for later plugins', async (t) => {
    await route('var', {}, { 'proxy-rewrite': { headers: { set: { 'X-Who': 'consumer=$consumer_name' } } } })
    const r = await served('var', aliceNext)
    t.equal(r.status, 200)
    t.equal(r.json.headers['x-who'], 'consumer=alice')
  })

  t.test('rotation: removing a certificate from the consumer refuses it, the other still works', async (t) => {
    const r = await admin.put('consumers/alice', { username: 'alice', plugins: { 'mtls-auth': { certificates: [aliceNext.cert] } } })
    t.equal(r.status, 200, r.text)
    await eventually(() => httpsGet('/m', tlsAs(c('alice'))), (x) => x.status === 401, { describe: gw.output })
    t.equal((await httpsGet('/m', tlsAs(aliceNext))).status, 200)
    t.equal((await admin.put('consumers/carol', { username: 'carol', plugins: { 'mtls-auth': { certificates: [c('alice').cert] } } })).status, 201, 'the released certificate may go to another consumer')
    const carol = await eventually(() => httpsGet('/m', tlsAs(c('alice'))), (x) => x.status === 200, { describe: gw.output })
    t.equal(carol.json.headers['x-consumer-username'], 'carol')
  })

  t.test('global rules run before the route: a global mtls-auth refuses before the route ssl-enforcement (higher priority) runs', async (t) => {
    await admin.put('routes/g', { uri: '/g', upstream, plugins: { 'ssl-enforcement': { requiresClientAuthentication: true } } })
    await served('g')
    t.match((await httpsGet('/g', tlsAs())).json, { key: 'SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED' }, 'the route alone')
    const g = await admin.put('global_rules/1', { plugins: { 'mtls-auth': {} } })
    t.equal(g.status, 201, g.text)
    const r = await eventually(() => httpsGet('/g', tlsAs()), (x) => /^mtls-auth/.test(String(x.json?.error_msg)), { describe: gw.output })
    t.equal(r.status, 401)
    t.equal(r.json.key, undefined, 'the global rule answered, not the route plugin')
    t.equal((await httpsGet('/g', tlsAs(c('bob')))).status, 200, 'a consumer certificate passes both')
    t.equal((await httpsGet('/optional', tlsAs(c('stranger')))).status, 401, 'the global rule applies to every route (consumer_required there)')
    t.equal((await admin.delete('global_rules/1')).status, 200)
    await eventually(() => httpsGet('/g', tlsAs()), (x) => x.json?.key === 'SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED', { describe: gw.output })
  })
})
