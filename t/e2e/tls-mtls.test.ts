import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa, makePki } from '../lib/certs.js'
import { handshake, type TlsOpts } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { pemFiles, sClient } from '../lib/openssl.js'

// One etcd and one gateway: client-certificate requests and verification per SNI, depth, and
// session resumption between objects.
t.test('client certificates per SNI', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['strict.test'], ['open.test'], ['other.test'], ['skip.test'], ['depth0.test'], ['depth1.test']], clients: ['alice'] })
  const otherCa = makeCa('Other Strict CA')
  const otherClient = issue(otherCa, { cn: 'bob' })
  const inter = issue(pki.ca, { cn: 'Test Intermediate CA', ca: true })
  const viaInter = issue(inter, { cn: 'carol' })
  const alice = pki.clients['alice']!
  const files = pemFiles({ 'alice.pem': alice.cert, 'alice.key': alice.key })
  t.teardown(() => files.cleanup())
  const srv = (n: string) => pki.servers[n]!
  const put = async (id: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(`ssls/${id}`, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ssls/${id}: ${r.status} ${r.text}`)
  }
  await put('strict', { sni: 'strict.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca: pki.ca.cert } })
  await put('open', { sni: 'open.test', cert: srv('open.test').cert, key: srv('open.test').key })
  await put('other', { sni: 'other.test', cert: srv('other.test').cert, key: srv('other.test').key, client: { ca: otherCa.cert } })
  await put('skip', { sni: 'skip.test', cert: srv('skip.test').cert, key: srv('skip.test').key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/public/'] } })
  await put('depth0', { sni: 'depth0.test', cert: srv('depth0.test').cert, key: srv('depth0.test').key, client: { ca: pki.ca.cert, depth: 0 } })
  await put('depth1', { sni: 'depth1.test', cert: srv('depth1.test').cert, key: srv('depth1.test').key, client: { ca: pki.ca.cert, depth: 1 } })
  const describe = (): string => gw.output()
  await eventually(() => handshake({ port: gw.https, servername: 'depth1.test', cert: alice.cert, key: alice.key }), (r) => r.ok, { describe })

  const base = (servername: string, o: Partial<TlsOpts> = {}): TlsOpts & { keep?: boolean } => ({ port: gw.https, servername, ...o })
  const withCert = (c: { cert: string; key: string }): Partial<TlsOpts> => ({ cert: c.cert, key: c.key })

  t.test('a CertificateRequest only where the object has client.ca, naming only its CAs', async (t) => {
    // the block openssl prints between "Acceptable client certificate CA names" and the sigalgs
    const caNames = (out: string): string[] => (/Acceptable client certificate CA names\n([\s\S]*?)\n(?:Requested|Client Certificate Types|---)/.exec(out)?.[1] ?? '').split('\n').map((l) => l.trim()).filter(Boolean)
    const strict = await sClient(gw.https, ['-servername', 'strict.test', '-cert', files.path('alice.pem'), '-key', files.path('alice.key')])
    t.same(caNames(strict.stdout), ['CN = Test Root CA'], 'strict.test names its one CA')
    const other = await sClient(gw.https, ['-servername', 'other.test'])
    t.same(caNames(other.stdout), ['CN = Other Strict CA'], 'other.test names only its own CA')
    const open = await sClient(gw.https, ['-servername', 'open.test'])
    t.match(open.stdout, /No client certificate CA names sent/, 'an object without client never asks')
  })

  t.test('without skip_mtls_uri_regex: missing, untrusted or expired certificates fail; a good one passes (TLS 1.2 and 1.3)', async (t) => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const cases: [string, Partial<TlsOpts>, boolean][] = [
        ['no certificate', {}, false],
        ['certificate from a foreign CA', withCert(pki.foreignClient), false],
        ['expired certificate', withCert(pki.expiredClient), false],
        ['certificate of another object\'s CA', withCert(otherClient), false],
        ['certificate from the object\'s CA', withCert(alice), true],
      ]
      for (const [name, o, ok] of cases) {
        const r = await handshake(base('strict.test', { ...o, maxVersion }))
        t.equal(r.ok, ok, `${maxVersion} ${name} → ${ok ? 'served' : 'refused'} (${r.error ?? 'ok'})`)
      }
    }
    const r = await sClient(gw.https, ['-servername', 'strict.test', '-tls1_2'], 'GET /apisix/status HTTP/1.1\r\nHost: strict.test\r\n\r\n')
    t.notMatch(r.stdout, /HTTP\/1\.1 200/, 'openssl without a certificate gets no HTTP answer')
  })

  t.test('the other object takes only its own CA\'s certificates', async (t) => {
    t.equal((await handshake(base('other.test', withCert(otherClient)))).ok, true)
    t.equal((await handshake(base('other.test', withCert(alice)))).ok, false)
  })

  t.test('an object without client serves clients with or without a certificate', async (t) => {
    t.equal((await handshake(base('open.test'))).ok, true)
    t.equal((await handshake(base('open.test', withCert(pki.foreignClient)))).ok, true)
  })

  t.test('with skip_mtls_uri_regex the handshake passes without or with an unverifiable certificate', async (t) => {
    t.equal((await handshake(base('skip.test'))).ok, true, 'no certificate')
    t.equal((await handshake(base('skip.test', withCert(pki.foreignClient)))).ok, true, 'foreign certificate')
    t.equal((await handshake(base('skip.test', withCert(alice)))).ok, true, 'good certificate')
  })

  t.test('client.depth: depth N allows N intermediates', async (t) => {
    const chained = { cert: viaInter.cert + inter.cert, key: viaInter.key }
    t.equal((await handshake(base('depth0.test', withCert(alice)))).ok, true, 'depth 0, leaf issued by the CA → served')
    t.equal((await handshake(base('depth0.test', withCert(chained)))).ok, false, 'depth 0, one intermediate → refused')
    t.equal((await handshake(base('depth1.test', withCert(chained)))).ok, true, 'depth 1, one intermediate → served')
    t.equal((await handshake(base('strict.test', withCert(chained)))).ok, true, 'default depth 1, one intermediate → served')
    // the gateway keeps a certificate's chain length per object once it was within the depth
    t.equal((await handshake(base('depth0.test', withCert(chained)))).ok, false, 'depth 0 again, after that very certificate was served on depth 1 → still refused')
    t.equal((await handshake(base('depth1.test', withCert(chained)))).ok, true, 'depth 1 again → served')
    t.equal((await handshake(base('depth0.test', withCert(alice)))).ok, true, 'depth 0 again, leaf issued by the CA → served')
  })

  t.test('session resumption: within one object yes; from one object into another never (TLS 1.2 and 1.3 tickets)', async (t) => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await handshake(base('strict.test', { ...withCert(alice), maxVersion }))
      t.ok(first.ok && first.session, `${maxVersion}: a session from strict.test`)
      const again = await handshake(base('strict.test', { ...withCert(alice), maxVersion, session: first.session! }))
      t.equal(again.reused, true, `${maxVersion}: it resumes on strict.test`)
      const intoOpen = await handshake(base('open.test', { maxVersion, session: first.session! }))
      t.equal(intoOpen.ok && intoOpen.reused, false, `${maxVersion}: it does not resume on open.test`)
      const intoOther = await handshake(base('other.test', { maxVersion, session: first.session! }))
      t.equal(intoOther.ok, false, `${maxVersion}: on other.test (another CA) it buys nothing: no certificate, refused`)
      const open = await handshake(base('open.test', { maxVersion }))
      t.ok(open.ok && open.session, `${maxVersion}: a session from open.test`)
      const intoStrict = await handshake(base('strict.test', { maxVersion, session: open.session! }))
      t.equal(intoStrict.ok, false, `${maxVersion}: an open object's session does not get into strict.test without a certificate`)
    }
  })

  t.test('session resumption: TLS 1.2 session ids never carry into another object', async (t) => {
    const sess = pemFiles({})
    t.teardown(() => sess.cleanup())
    const out = await sClient(gw.https, ['-servername', 'open.test', '-tls1_2', '-no_ticket', '-sess_out', sess.path('s')])
    t.match(out.stdout, /New, TLSv1\.2/)
    const into = await sClient(gw.https, ['-servername', 'strict.test', '-tls1_2', '-no_ticket', '-sess_in', sess.path('s')])
    t.notMatch(into.stdout, /^Reused,/m, 'not reused on strict.test')
    t.match(into.all, /alert|Cipher is \(NONE\)|errno|error/i, 'and refused without a certificate')
  })

  t.test('a replaced object resumes nothing made under its previous version', async (t) => {
    const first = await handshake(base('strict.test', { ...withCert(alice), maxVersion: 'TLSv1.3' }))
    t.equal((await handshake(base('strict.test', { ...withCert(alice), session: first.session! }))).reused, true, 'resumes before the change')
    await put('strict', { sni: 'strict.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca: pki.ca.cert }, desc: 'replaced' })
    await eventually(() => handshake(base('strict.test', { ...withCert(alice), session: first.session! })), (r) => r.ok && r.reused === false, { timeoutMs: 2000, describe })
    t.pass('after the PUT the old ticket is not accepted')
  })
})
