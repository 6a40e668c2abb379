import t from 'tap'
import { createClientCertSource } from '../../../core/pipeline/client-cert-source.js'
import type { TlsFacts } from '../../../core/tls/facts.js'
import { issue, makeCa } from '../../lib/certs.js'
import { clientCertOf } from '../plugins/ctx.js'

const ca = makeCa('Source CA')
const proxyCert = issue(ca, { cn: 'lb.internal' })
const user = issue(ca, { cn: 'user' })
const tls = (cert = proxyCert): TlsFacts => ({ sni: 'api.test', sslId: '1', protocol: 'TLSv1.3', clientCert: clientCertOf(cert), verify: 'SUCCESS', client: undefined } as unknown as TlsFacts)
const b64 = user.der.toString('base64')
const cfg = { name: 'X-Client-Cert', trusted_proxies: ['127.0.0.1/32', '10.0.0.0/8', '::1'] }

t.test('client cert source: trusted peer, untrusted peer, TLS and plain HTTP', async (t) => {
  const src = createClientCertSource(cfg)
  const cases: [string, string, Record<string, string>, TlsFacts | undefined, { cn?: string; secure: boolean; strip: string[]; source?: string }][] = [
    ['trusted peer, header, plain HTTP', '127.0.0.1', { 'x-client-cert': b64 }, undefined, { cn: 'CN=user', secure: false, strip: [], source: 'header' }],
    ['trusted peer (IPv4-mapped), header and X-Forwarded-Proto https', '::ffff:10.1.2.3', { 'x-client-cert': b64, 'x-forwarded-proto': 'https' }, undefined, { cn: 'CN=user', secure: true, strip: [] }],
    ['trusted IPv6 peer, X-Forwarded-Proto "https, http"', '::1', { 'x-forwarded-proto': 'HTTPS, http' }, undefined, { secure: true, strip: [] }],
    ['trusted peer, X-Forwarded-Proto http', '127.0.0.1', { 'x-forwarded-proto': 'http' }, undefined, { secure: false, strip: [] }],
    ['trusted peer over TLS with its own certificate and a header: the header wins', '127.0.0.1', { 'x-client-cert': b64 }, tls(), { cn: 'CN=user', secure: true, strip: [], source: 'header' }],
    ['trusted peer over TLS without a header: the handshake certificate', '127.0.0.1', {}, tls(), { cn: 'CN=lb.internal', secure: true, strip: [], source: 'tls' }],
    ['untrusted peer, header and X-Forwarded-Proto: both stripped, nothing believed', '127.0.0.2', { 'x-client-cert': b64, 'x-forwarded-proto': 'https' }, undefined, { secure: false, strip: ['x-client-cert', 'x-forwarded-proto'] }],
    ['untrusted peer over TLS: its handshake certificate, the header stripped', '192.168.1.1', { 'x-client-cert': b64 }, tls(), { cn: 'CN=lb.internal', secure: true, strip: ['x-client-cert'], source: 'tls' }],
    ['untrusted peer, nothing to strip', '127.0.0.2', {}, undefined, { secure: false, strip: [] }],
  ]
  for (const [name, addr, headers, facts, want] of cases) {
    const r = src.resolve(addr, headers, facts)
    t.equal(r.clientCert?.subjectDn, want.cn, `${name}: certificate ${want.cn ?? 'none'}`)
    t.equal(r.secure, want.secure, `${name}: secure ${want.secure}`)
    t.same(r.strip, want.strip, `${name}: strip ${want.strip.join(',') || 'nothing'}`)
    if (want.source) t.equal(r.clientCert?.source, want.source, `${name}: from the ${want.source}`)
    t.equal(r.clientCertError, undefined)
  }
})

t.test('client cert source: a header certificate has the facts plugins need', async (t) => {
  const r = createClientCertSource(cfg).resolve('127.0.0.1', { 'x-client-cert': encodeURIComponent(user.cert) }, undefined)
  const c = r.clientCert
  t.ok(c)
  if (!c) return
  t.same({ verified: c.verified, source: c.source, verify: c.verify, serial: c.serial, issuerDn: c.issuerDn }, { verified: true, source: 'header', verify: 'SUCCESS', serial: user.serialHex, issuerDn: 'CN=Source CA' })
  t.equal(c.sha256, clientCertOf(user).sha256)
  t.ok(c.der.equals(user.der))
  t.equal(c.notAfter, Date.parse(user.x509.validTo))
  t.ok(c.x509, 'the parsed certificate is kept for chain verification')
})

t.test('client cert source: a malformed header from a trusted peer → no certificate and the reason', async (t) => {
  const src = createClientCertSource(cfg)
  const r = src.resolve('127.0.0.1', { 'x-client-cert': 'bm90IGEgY2VydA==' }, tls())
  t.equal(r.clientCert, undefined, 'the proxy\'s own handshake certificate does not stand in')
  t.match(r.clientCertError, /^the X-Client-Cert header from the proxy: not a DER certificate/)
})

t.test('client cert source: header values are parsed once and cached, bounded', async (t) => {
  const src = createClientCertSource(cfg, 2)
  const a = src.resolve('127.0.0.1', { 'x-client-cert': b64 }, undefined).clientCert
  const b = src.resolve('127.0.0.1', { 'x-client-cert': b64 }, undefined).clientCert
  t.equal(a, b, 'the same value → the same cached certificate object')
  src.resolve('127.0.0.1', { 'x-client-cert': encodeURIComponent(user.cert) }, undefined)
  src.resolve('127.0.0.1', { 'x-client-cert': Buffer.from(user.cert).toString('base64') }, undefined)
  const c = src.resolve('127.0.0.1', { 'x-client-cert': b64 }, undefined).clientCert
  t.not(c, a, 'evicted after two other values')
  t.equal(c?.sha256, a?.sha256)
})

t.test('client cert source: header name empty → only X-Forwarded-Proto is governed', async (t) => {
  const src = createClientCertSource({ name: '', trusted_proxies: ['127.0.0.1'] })
  t.same(src.resolve('127.0.0.2', { 'x-client-cert': b64, 'x-forwarded-proto': 'https' }, undefined), { clientCert: undefined, clientCertError: undefined, secure: false, trusted: false, strip: ['x-forwarded-proto'] })
  const r = src.resolve('127.0.0.1', { 'x-client-cert': b64, 'x-forwarded-proto': 'https' }, undefined)
  t.equal(r.clientCert, undefined)
  t.equal(r.secure, true)
})

t.test('client cert source: no trusted proxies (the default) → nobody is trusted', async (t) => {
  const src = createClientCertSource({ name: 'X-Client-Cert', trusted_proxies: [] })
  const r = src.resolve('127.0.0.1', { 'x-client-cert': b64 }, undefined)
  t.equal(r.clientCert, undefined)
  t.same(r.strip, ['x-client-cert'])
})

t.test('client cert source: RFC 9440 Client-Cert with its -Chain header', async (t) => {
  const inter = issue(ca, { cn: 'Source Intermediate', ca: true })
  const leaf = issue(inter, { cn: 'chained' })
  const sf = (der: Buffer): string => `:${der.toString('base64')}:`
  const src = createClientCertSource({ name: 'Client-Cert', trusted_proxies: ['127.0.0.1/32'] })
  const r = src.resolve('127.0.0.1', { 'client-cert': sf(leaf.der), 'client-cert-chain': sf(inter.der) }, undefined)
  t.equal(r.clientCert?.subjectDn, 'CN=chained')
  t.equal(r.clientCert?.intermediates?.length, 1, 'the chain header gives the intermediates')
  t.ok(r.clientCert?.intermediates?.[0]?.equals(inter.der))
  const alone = src.resolve('127.0.0.1', { 'client-cert': sf(leaf.der) }, undefined)
  t.same(alone.clientCert?.intermediates ?? [], [], 'no chain header: no intermediates')
  const bad = src.resolve('127.0.0.1', { 'client-cert': sf(leaf.der), 'client-cert-chain': ':AAAA:' }, undefined)
  t.equal(bad.clientCert, undefined, 'a chain that is not certificates: no certificate')
  t.match(bad.clientCertError, /^the Client-Cert-Chain header from the proxy: member 1: not a DER certificate/)
  const untrusted = src.resolve('127.0.0.2', { 'client-cert': sf(leaf.der), 'client-cert-chain': sf(inter.der) }, undefined)
  t.same(untrusted.strip, ['client-cert', 'client-cert-chain'], 'from any other address both headers are removed')
  t.equal(untrusted.clientCert, undefined)
  const chainOnly = src.resolve('127.0.0.2', { 'client-cert-chain': sf(inter.der) }, undefined)
  t.same(chainOnly.strip, ['client-cert-chain'], 'the chain header alone too')
})
