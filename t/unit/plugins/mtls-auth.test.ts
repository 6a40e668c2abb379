import t from 'tap'
import { checkMtlsAuth, checkMtlsAuthConsumer, compileMtlsAuth, runMtlsAuth, warnMtlsAuth } from '../../../core/plugins/mtls-auth.js'
import type { RequestContext } from '../../../core/plugins/types.js'
import { issue, makeCa } from '../../lib/certs.js'
import { clientCertOf, makeCtx } from './ctx.js'

type Conf = Parameters<typeof compileMtlsAuth>[0]
const conf = (c: Partial<Conf>): Conf => ({ validate_certificate: true, validate_issuer_acl: false, consumer_required: true, ...c })
const run = (c: Partial<Conf>, ctx: RequestContext) => runMtlsAuth(compileMtlsAuth(conf(c)), ctx)

const DAY = 86_400_000
const ca = makeCa('Mtls CA')
const other = makeCa('Other CA')
const alice = issue(ca, { cn: 'alice' })
const alice2 = issue(ca, { cn: 'alice' })
const stranger = issue(ca, { cn: 'stranger' })
const expired = issue(ca, { cn: 'old', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
const foreign = issue(other, { cn: 'alice' })
const owners = { [clientCertOf(alice).sha256]: 'alice', [clientCertOf(alice2).sha256]: 'alice', [clientCertOf(foreign).sha256]: 'mallory', [clientCertOf(expired).sha256]: 'old' }

const msg = (r: ReturnType<typeof run>): string => String((r?.body as { error_msg?: string } | undefined)?.error_msg)

t.test('mtls-auth: a consumer certificate → passes, consumer and X-Consumer-Username set', async (t) => {
  for (const [name, cert] of [['first certificate', alice], ['second certificate of the same consumer', alice2]] as const) {
    const ctx = makeCtx({ owners, clientCert: clientCertOf(cert) })
    t.equal(run({}, ctx), undefined, `${name} → passes`)
    t.same(ctx.consumer, { username: 'alice' })
    t.equal(ctx.upstream.setHeaders.get('x-consumer-username'), 'alice')
    t.notOk(ctx.upstream.removeHeaders.has('x-consumer-username'), 'set replaces the client value')
  }
})

t.test('mtls-auth: each failing check → 401 naming it', async (t) => {
  const cases: [string, Partial<Conf>, Partial<RequestContext>, RegExp][] = [
    ['no certificate', {}, {}, /^mtls-auth: client certificate failed: no client certificate was presented$/],
    ['a malformed header certificate', {}, { clientCertError: 'the X-Client-Cert header from the proxy: PEM body is not base64' }, /PEM body is not base64/],
    ['handshake certificate that did not verify', {}, { clientCert: clientCertOf(alice, { verified: false }) }, /^mtls-auth: validate_certificate failed: .*unable to get local issuer/],
    ['handshake certificate past its dates on a long connection', {}, { clientCert: clientCertOf(expired) }, /validate_certificate failed: the client certificate expired at/],
    ['handshake certificate past its dates, dates read from the DER', {}, { clientCert: clientCertOf(expired, { dates: false }) }, /validate_certificate failed: the client certificate expired/],
    ['header certificate without any CA', {}, { clientCert: clientCertOf(alice, { source: 'header' }) }, /validate_certificate failed: no CA/],
    ['header certificate from a foreign CA (plugin ca)', { ca: ca.cert }, { clientCert: clientCertOf(foreign, { source: 'header' }) }, /validate_certificate failed: the issuer of .* is not in the trusted CA bundle/],
    ['expired header certificate', { ca: ca.cert }, { clientCert: clientCertOf(expired, { source: 'header' }) }, /validate_certificate failed: the client certificate expired/],
    ['header certificate from a foreign CA (ssl client.ca)', {}, { sslClientCa: ca.cert, clientCert: clientCertOf(foreign, { source: 'header' }) }, /not in the trusted CA bundle/],
    ['issuer outside issuer_acl', { validate_issuer_acl: true, issuer_acl: ['CN=Other*'] }, { clientCert: clientCertOf(alice) }, /^mtls-auth: validate_issuer_acl failed: the issuer "CN=Mtls CA" matches no issuer_acl pattern$/],
    ['certificate no consumer owns', {}, { clientCert: clientCertOf(stranger) }, /^mtls-auth: consumer_required failed: no consumer owns this certificate \(subject "CN=stranger"\)$/],
  ]
  for (const [name, c, o, re] of cases) {
    const ctx = makeCtx({ owners, ...o })
    const r = run(c, ctx)
    t.equal(r?.status, 401, `${name} → 401`)
    t.match(msg(r), re, `${name}: message`)
    t.equal(ctx.consumer, undefined)
    t.ok(ctx.upstream.removeHeaders.has('x-consumer-username'), `${name}: a client-sent X-Consumer-Username is removed`)
  }
})

t.test('mtls-auth: checks that pass', async (t) => {
  const cases: [string, Partial<Conf>, Partial<RequestContext>, string | undefined][] = [
    ['header certificate verified against the plugin ca', { ca: ca.cert }, { clientCert: clientCertOf(alice, { source: 'header' }) }, 'alice'],
    ['header certificate verified against the ssl object client.ca', {}, { sslClientCa: ca.cert, clientCert: clientCertOf(alice, { source: 'header' }) }, 'alice'],
    ['the plugin ca wins over the ssl object client.ca', { ca: other.cert }, { sslClientCa: ca.cert, clientCert: clientCertOf(foreign, { source: 'header' }) }, 'mallory'],
    ['validate_certificate false: an expired certificate still names its consumer', { validate_certificate: false }, { clientCert: clientCertOf(expired) }, 'old'],
    ['issuer on issuer_acl (reversed, case-insensitive)', { validate_issuer_acl: true, issuer_acl: ['cn=mtls ca'] }, { clientCert: clientCertOf(alice) }, 'alice'],
    ['issuer_acl set but validate_issuer_acl false → ignored', { issuer_acl: ['CN=nobody'] }, { clientCert: clientCertOf(alice) }, 'alice'],
    ['consumer_required false: an unknown certificate passes without consumer', { consumer_required: false }, { clientCert: clientCertOf(stranger) }, undefined],
    ['every check off: no certificate passes', { validate_certificate: false, consumer_required: false }, {}, undefined],
  ]
  for (const [name, c, o, who] of cases) {
    const ctx = makeCtx({ owners, ...o })
    const r = run(c, ctx)
    t.equal(r, undefined, `${name} → passes${r ? ` (${msg(r)})` : ''}`)
    t.equal(ctx.consumer?.username, who, `${name}: consumer ${who ?? 'none'}`)
  }
})

t.test('mtls-auth: the ssl object CA bundle is compiled once per conf', async (t) => {
  const c = compileMtlsAuth(conf({}))
  for (let i = 0; i < 3; i++) t.equal(runMtlsAuth(c, makeCtx({ owners, sslClientCa: ca.cert, clientCert: clientCertOf(alice, { source: 'header' }) })), undefined)
  t.equal(c.sslCas.size, 1)
  const r = runMtlsAuth(c, makeCtx({ owners, sslClientCa: 'not a bundle', clientCert: clientCertOf(alice, { source: 'header' }) }))
  t.match(msg(r), /client\.ca cannot be used/)
})

t.test('mtls-auth: the admin checks patterns, the ca bundle and consumer certificates', async (t) => {
  t.equal(checkMtlsAuth(conf({ validate_issuer_acl: true, issuer_acl: ['CN=*'], ca: ca.cert })), undefined)
  t.match(checkMtlsAuth(conf({ validate_issuer_acl: true })), /issuer_acl is required/)
  t.match(checkMtlsAuth(conf({ issuer_acl: ['CN=a', '=x'] })), /^issuer_acl\[1\]: /)
  t.match(checkMtlsAuth(conf({ ca: `-----BEGIN CERTIFICATE-----\n${'A'.repeat(80)}\n-----END CERTIFICATE-----\n` })), /^ca: certificate 1 of the CA bundle cannot be read/)
  t.equal(checkMtlsAuthConsumer({ certificates: [alice.cert, alice2.der.toString('base64')] }), undefined, 'PEM and base64 DER')
  t.match(checkMtlsAuthConsumer({ certificates: [alice.cert, 'not a certificate: at all clearly....'] }), /^certificates\[1\]: the certificate is neither PEM nor base64 \(character ":"/)
  t.match(checkMtlsAuthConsumer({ certificates: [alice.cert + alice2.cert] }), /^certificates\[0\]: PEM holds 2 blocks/)
  t.match(warnMtlsAuth(conf({ issuer_acl: ['CN=a'] })), /validate_issuer_acl/)
})

t.test('mtls-auth: a kept chain verdict never outlives the certificate or a minute', async (t) => {
  const c = compileMtlsAuth(conf({ ca: ca.cert }))
  const cert = clientCertOf(alice, { source: 'header' })
  const now = Date.now()
  t.equal(runMtlsAuth(c, makeCtx({ owners, clientCert: cert, nowMs: now })), undefined, 'verified once')
  t.equal(runMtlsAuth(c, makeCtx({ owners, clientCert: cert, nowMs: now + 1000 })), undefined, 'kept')
  const late = runMtlsAuth(c, makeCtx({ owners, clientCert: cert, nowMs: (cert.notAfter ?? 0) + 1 }))
  t.match(msg(late), /expired/, 'past the not-after the chain is verified again → expired')
  const bad = clientCertOf(foreign, { source: 'header' })
  t.equal(runMtlsAuth(c, makeCtx({ owners, clientCert: bad, nowMs: now }))?.status, 401)
  t.equal(runMtlsAuth(c, makeCtx({ owners, clientCert: bad, nowMs: now + 30_000 }))?.status, 401, 'a failure is kept too')
})
