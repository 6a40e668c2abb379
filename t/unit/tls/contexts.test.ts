import t, { type Test } from 'tap'
import { DEFAULT_CIPHERS, connect, type DetailedPeerCertificate, type SecureVersion } from 'node:tls'
import { compileClientRules, createPolicyCache, intermediatesIn, protocolOptions, sessionSecrets, ticketScope, type SslValue } from '../../../core/tls/contexts.js'
import { APISIX_SSL_CIPHERS, checkCiphers, parseProtocols } from '../../../core/tls/settings.js'
import type { Entry } from '../../../core/config/snapshot.js'
import { encryptKey } from '../../../core/resources/key-crypto.js'
import { issue, makeCa } from '../../lib/certs.js'
import { firstSecrets, rotateSecrets, type TicketSecrets } from '../../../core/tls/ticket-secrets.js'
import { parseClientHello } from '../../../core/tls/client-hello.js'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import type { PolicyCache, TlsPolicy } from '../../../core/tls/contexts.js'

const RING = ['qeddd145sfvddff3']

t.test('contexts: ssl_protocols → min/max version, a NO_ flag for a gap, SECLEVEL=0 only with TLSv1.1; the config\'s versions and ciphers when the object has none', async (t) => {
  const { SSL_OP_NO_TLSv1_2 } = (await import('node:crypto')).constants
  const tls13 = DEFAULT_CIPHERS.split(':').filter((c) => c.startsWith('TLS_')).join(':')
  const apisix = `${tls13}:${APISIX_SSL_CIPHERS}`
  const groups = { ecdhCurve: 'X25519MLKEM768:X25519:P-256' }
  const table: [string[] | undefined, object][] = [
    [undefined, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: apisix, ...groups }],
    [['TLSv1.3'], { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: apisix, ...groups }],
    [['TLSv1.2'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: apisix, ...groups }],
    [['TLSv1.3', 'TLSv1.2'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: apisix, ...groups }],
    [['TLSv1.1'], { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: `${apisix}:@SECLEVEL=0`, ...groups }],
    [['TLSv1.1', 'TLSv1.3'], { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.3', secureOptions: SSL_OP_NO_TLSv1_2, ciphers: `${apisix}:@SECLEVEL=0`, ...groups }],
  ]
  for (const [p, want] of table) t.same(protocolOptions(p), want, JSON.stringify(p))
  const conf = { protocols: ['TLSv1.3'] as const, ciphers: 'ECDHE-RSA-AES128-SHA' }
  t.same(protocolOptions(undefined, conf), { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: `${tls13}:ECDHE-RSA-AES128-SHA`, ...groups }, 'no ssl_protocols: the config\'s')
  t.same(protocolOptions(['TLSv1.2'], conf), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: `${tls13}:ECDHE-RSA-AES128-SHA`, ...groups }, 'the object\'s own list wins')
  t.equal(protocolOptions(undefined, { protocols: ['TLSv1.3'], ciphers: 'TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-SHA' }).ciphers, 'TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-SHA', 'a list naming TLS 1.3 suites keeps its own')
})

t.test('settings: ssl_protocols words and ssl_ciphers checked with the reason', async (t) => {
  t.same(parseProtocols('TLSv1.2 TLSv1.3'), ['TLSv1.2', 'TLSv1.3'])
  t.same(parseProtocols('  TLSv1.3\tTLSv1.1 '), ['TLSv1.1', 'TLSv1.3'], 'any spacing, oldest first')
  t.match(parseProtocols('TLSv1.2 TLSv1.4'), /"TLSv1.4" is not one of TLSv1.1, TLSv1.2, TLSv1.3/)
  t.match(parseProtocols('TLSv1 TLSv1.2'), /"TLSv1" is not one of/)
  t.match(parseProtocols(' '), /at least one of/)
  t.equal(checkCiphers(APISIX_SSL_CIPHERS), undefined, 'APISIX\'s list')
  t.equal(checkCiphers('HIGH:!aNULL'), undefined, 'an OpenSSL expression')
  t.match(checkCiphers('NO-SUCH-CIPHER'), /OpenSSL accepts none of these ciphers/)
})

t.test('contexts: session secrets are the same for one object version, different for another id or revision', async (t) => {
  const secret = Buffer.alloc(48, 7)
  const a = sessionSecrets(secret, '1', '10')
  t.equal(a.ticketKeys.length, 48)
  t.equal(a.sessionIdContext.length, 32)
  t.same(sessionSecrets(secret, '1', '10'), a, 'deterministic: every worker agrees')
  t.not(sessionSecrets(secret, '1', '11').ticketKeys.toString('hex'), a.ticketKeys.toString('hex'), 'a replaced object gets new keys')
  t.not(sessionSecrets(secret, '2', '10').ticketKeys.toString('hex'), a.ticketKeys.toString('hex'), 'another object gets other keys')
  t.not(sessionSecrets(Buffer.alloc(48, 8), '1', '10').ticketKeys.toString('hex'), a.ticketKeys.toString('hex'), 'another gateway gets other keys')
  t.not(sessionSecrets(secret, '1', '10', ticketScope({ client: { ca: 'x' } } as never)).ticketKeys.toString('hex'), a.ticketKeys.toString('hex'), 'an object with client: this worker\'s own keys')
  t.equal(ticketScope({}), '', 'an object without client: every worker\'s keys')
  t.same(sessionSecrets(secret, '1', '10', ''), a, 'no scope: the keys every worker derives')
})

t.test('contexts: client rules compile the skip regexes and default depth 1', async (t) => {
  t.equal(compileClientRules({}), undefined)
  const r = compileClientRules({ client: { ca: 'CA', depth: 2, skip_mtls_uri_regex: ['^/a', '/b[0-9]+'] } })
  t.equal(r?.depth, 2)
  t.same(r?.skip.map((x) => x.test('/x/b12')), [false, true], 'unanchored unless the pattern anchors')
})

t.test('contexts: intermediates are counted between the leaf and a self-issued anchor', async (t) => {
  const chain = (n: number, anchored: boolean): DetailedPeerCertificate => {
    const certs = Array.from({ length: n }, (_, i) => ({ fingerprint256: `F${i}` }) as unknown as DetailedPeerCertificate)
    certs.forEach((c, i) => ((c as { issuerCertificate: DetailedPeerCertificate }).issuerCertificate = certs[i + 1] ?? (anchored ? c : (undefined as unknown as DetailedPeerCertificate))))
    return certs[0]!
  }
  const table: [number, boolean, number][] = [
    [1, true, 0], // the client certificate is the configured CA itself
    [2, true, 0], // leaf → root
    [3, true, 1], // leaf → intermediate → root
    [4, true, 2],
    [2, false, 1], // anchor missing from Node's chain: the last one is an intermediate
  ]
  for (const [n, anchored, want] of table) t.equal(intermediatesIn(chain(n, anchored)), want, `${n} certificates, anchored ${anchored}`)
})

t.test('contexts: a policy is cached by its entry, built lazily or eagerly, and a bad key yields an Error once', async (t) => {
  const ca = makeCa('Unit CA')
  const leaf = issue(ca, { cn: 'p.test', sans: ['p.test'] })
  const errors: string[] = []
  const cache = createPolicyCache({ keyring: RING, tickets: () => firstSecrets(Buffer.alloc(48, 1)), onBuildError: (id, why) => errors.push(`${id}:${why}`) })
  const entry = (id: string, key: string, extra: Partial<SslValue> = {}): Entry<SslValue> =>
    Object.freeze({ id, modRevision: '5', createRevision: '5', value: Object.freeze({ id, type: 'server', status: 1, sni: 'p.test', cert: leaf.cert, key, ...extra } as SslValue) })
  const e1 = entry('1', encryptKey(leaf.key, RING), { client: { ca: ca.cert, depth: 1 }, update_time: 42 })
  const p = cache.policyFor(e1, false)
  t.equal(p.built(), false, 'lazy after a full load')
  t.equal(cache.policyFor(e1, true), p, 'the same entry → the same policy')
  t.equal(p.built(), false, 'a cached policy is not rebuilt eagerly')
  t.same([p.id, p.snis, p.updateTime, p.client?.depth], ['1', ['p.test'], 42, 1])
  const s = p.server()
  t.notOk(s instanceof Error, 'an encrypted key decrypts with the keyring')
  t.equal(p.server(), s, 'built once')
  const e2 = entry('2', leaf.key)
  t.equal(cache.policyFor(e2, true).built(), true, 'eager after a watched change')
  const bad = cache.policyFor(entry('3', 'bm90IGEga2V5'), false)
  t.type(bad.server(), Error)
  bad.server()
  t.equal(errors.length, 1, 'logged once')
  t.match(errors[0], /^3:key: /)
})

/** A listener that hands each connection to `pick(ticket key name)`'s server, as the TLS front does. */
async function frontFor(t: Test, pick: () => TlsPolicy): Promise<number> {
  const srv = createNetServer((socket: Socket) => {
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      const r = parseClientHello(chunk)
      const server = pick().server(r.state === 'ok' ? r.ticketKeyName : undefined)
      if (server instanceof Error) return socket.destroy()
      socket.unshift(chunk)
      server.emit('connection', socket)
    })
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  t.teardown(() => srv.close())
  return (srv.address() as AddressInfo).port
}
/** One handshake; resolves with whether it resumed and the newest session the client holds. */
function handshake(port: number, version: SecureVersion, session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'p.test', rejectUnauthorized: false, minVersion: version, maxVersion: version, ...(session ? { session } : {}) })
    s.once('secureConnect', () => {
      const done = (sess: Buffer | undefined): void => {
        resolve({ reused: s.isSessionReused(), session: sess })
        s.destroy()
      }
      // TLS 1.2: the session is known now; TLS 1.3: a new session's ticket follows the handshake
      // (a resumed one keeps the ticket it offered: stateless tickets can be offered again)
      if (version === 'TLSv1.2') return done(s.getSession() ?? session)
      if (s.isSessionReused()) return done(session)
      s.once('session', done)
      s.resume()
    })
    s.on('error', reject)
  })
}

t.test('contexts: tickets resume on another worker, still after one rotation, no more after two, never on another object', async (t) => {
  const ca = makeCa('Unit CA')
  const leaf = issue(ca, { cn: 'p.test', sans: ['p.test'] })
  const entry = (id: string): Entry<SslValue> =>
    Object.freeze({ id, modRevision: '5', createRevision: '5', value: Object.freeze({ id, type: 'server', status: 1, sni: 'p.test', cert: leaf.cert, key: leaf.key } as SslValue) })
  const A = entry('a')
  const B = entry('b')
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    let secrets: TicketSecrets = firstSecrets(Buffer.alloc(48, 1))
    const worker = (): PolicyCache => createPolicyCache({ keyring: RING, tickets: () => secrets, onBuildError: () => undefined })
    const [w1, w2] = [worker(), worker()]
    const p1 = await frontFor(t, () => w1.policyFor(A, false))
    const p2 = await frontFor(t, () => w2.policyFor(A, false))
    const other = await frontFor(t, () => w2.policyFor(B, false))
    const first = await handshake(p1, version)
    t.equal(first.reused, false, `${version}: a new session`)
    t.equal((await handshake(p2, version, first.session)).reused, true, `${version}: resumed on the other worker`)
    t.equal((await handshake(other, version, first.session)).reused, false, `${version}: object b never resumes a ticket of object a`)
    secrets = rotateSecrets(secrets, Buffer.alloc(48, 2))
    const w3 = worker()
    const p3 = await frontFor(t, () => w3.policyFor(A, false))
    t.equal((await handshake(p1, version, first.session)).reused, true, `${version}: after a rotation, on a worker that rotated`)
    t.equal((await handshake(p3, version, first.session)).reused, true, `${version}: after a rotation, on a worker started after it`)
    const fresh = await handshake(p1, version)
    t.equal((await handshake(p3, version, fresh.session)).reused, true, `${version}: a ticket made after the rotation resumes on the newer worker`)
    secrets = rotateSecrets(secrets, Buffer.alloc(48, 3))
    t.equal((await handshake(p1, version, first.session)).reused, false, `${version}: two rotations later the old ticket is refused`)
    t.equal((await handshake(p2, version, fresh.session)).reused, true, `${version}: the previous period's ticket still resumes`)
  }
})
