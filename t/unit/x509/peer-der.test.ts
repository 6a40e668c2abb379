import t from 'tap'
import { once } from 'node:events'
import * as tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import { peerCertFromSession } from '../../../core/x509/peer-der.js'
import { issue, makeCa, makePki } from '../../lib/certs.js'

const pki = makePki({ clients: ['alice'] })
const alice = pki.clients['alice']!
const inter = issue(pki.ca, { cn: 'Intermediate', ca: true })
const leafViaInter = issue(inter, { cn: 'bob' })

interface Seen {
  fromSession: Buffer | undefined
  fromNode: Buffer | undefined
  chain: string[]
  reused: boolean
}

/** A server asking for a client certificate, reporting what it read of each connection. */
async function serverFor(maxVersion: tls.SecureVersion): Promise<{ port: number; next(): Promise<Seen>; close(): void }> {
  const server = tls.createServer({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca.cert], requestCert: true, rejectUnauthorized: false, maxVersion })
  const waiting: ((s: Seen) => void)[] = []
  server.on('secureConnection', (s: tls.TLSSocket) => {
    // the session first, as the TLS front does: the chain must still be whole afterwards
    const fromSession = peerCertFromSession(s.getSession())
    const detailed = s.getPeerCertificate(true) as Partial<tls.DetailedPeerCertificate>
    const chain: string[] = []
    for (let c: Partial<tls.DetailedPeerCertificate> | undefined = detailed; c?.subject && chain.length < 5; c = c.issuerCertificate === c ? undefined : c.issuerCertificate) chain.push(String(c.subject.CN))
    waiting.shift()?.({ fromSession, fromNode: detailed.raw, chain, reused: s.isSessionReused() })
    s.on('error', () => undefined)
    s.resume()
    s.on('end', () => s.end())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { port: (server.address() as AddressInfo).port, next: () => new Promise<Seen>((r) => waiting.push(r)), close: () => server.close() }
}

/** One real handshake; the client ends once it holds a session (its tickets arrive after the handshake) or resumed one. */
async function handshake(srv: Awaited<ReturnType<typeof serverFor>>, o: { maxVersion: tls.SecureVersion; cert?: string; key?: string; session?: Buffer | undefined }): Promise<{ seen: Seen; session: Buffer | undefined }> {
  const got = srv.next()
  const c = tls.connect({ port: srv.port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, maxVersion: o.maxVersion, ...(o.cert ? { cert: o.cert, key: o.key } : {}), ...(o.session ? { session: o.session } : {}) })
  let session: Buffer | undefined
  c.on('session', (s: Buffer) => {
    session = s
    c.end()
  })
  // a resumed TLS 1.2 handshake brings no new session: nothing more to wait for
  c.on('secureConnect', () => {
    if (c.isSessionReused()) c.end()
  })
  c.on('error', () => undefined)
  c.resume()
  const seen = await got
  await once(c, 'close')
  return { seen, session }
}

for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
  t.test(`${v}: the session holds the client certificate Node reports`, async (t) => {
    const srv = await serverFor(v)
    t.teardown(srv.close)
    const { seen } = await handshake(srv, { maxVersion: v, cert: alice.cert, key: alice.key })
    t.ok(seen.fromSession, 'found in the session')
    t.same(seen.fromSession, alice.der, 'the DER of the certificate the client sent')
    t.same(seen.fromSession, seen.fromNode, 'the same bytes as getPeerCertificate()')
  })

  t.test(`${v}: a client sending an intermediate keeps its chain after the session was read`, async (t) => {
    const srv = await serverFor(v)
    t.teardown(srv.close)
    const { seen } = await handshake(srv, { maxVersion: v, cert: leafViaInter.cert + inter.cert, key: leafViaInter.key })
    t.same(seen.fromSession, leafViaInter.der, 'the leaf, not the intermediate')
    t.same(seen.chain, ['bob', 'Intermediate', 'Test Root CA'], 'getPeerCertificate(true) still sees leaf, intermediate and root')
  })

  t.test(`${v}: no client certificate → undefined`, async (t) => {
    const srv = await serverFor(v)
    t.teardown(srv.close)
    const { seen } = await handshake(srv, { maxVersion: v })
    t.equal(seen.fromSession, undefined)
    t.equal(seen.fromNode, undefined, 'Node agrees: no certificate')
  })

  t.test(`${v}: a resumed session still carries the certificate of the first handshake`, async (t) => {
    const srv = await serverFor(v)
    t.teardown(srv.close)
    const first = await handshake(srv, { maxVersion: v, cert: alice.cert, key: alice.key })
    t.ok(first.session, 'the client got a session to resume')
    const again = await handshake(srv, { maxVersion: v, cert: alice.cert, key: alice.key, session: first.session })
    t.ok(again.seen.reused, 'the second handshake resumed')
    t.same(again.seen.fromSession, alice.der)
    t.same(again.seen.fromSession, again.seen.fromNode)
  })
}

t.test('bytes that are not a session give undefined, never a throw', async (t) => {
  t.equal(peerCertFromSession(undefined), undefined)
  t.equal(peerCertFromSession(Buffer.alloc(0)), undefined)
  t.equal(peerCertFromSession(Buffer.from('not der at all')), undefined)
  t.equal(peerCertFromSession(Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02, 0x01])), undefined, 'a length past the end')
  t.equal(peerCertFromSession(alice.der), undefined, 'a certificate is not a session')
  // a session-shaped SEQUENCE whose [3] holds something other than a certificate
  const bogus = Buffer.from([0x30, 0x08, 0x02, 0x01, 0x01, 0xa3, 0x03, 0x04, 0x01, 0x00])
  t.equal(peerCertFromSession(bogus), undefined)
  const other = makeCa('Unrelated')
  const wrapped = Buffer.concat([Buffer.from([0x30, 0x82]), u16(other.der.length + 4 + 3), Buffer.from([0x02, 0x01, 0x01, 0xa3, 0x82]), u16(other.der.length), other.der])
  t.same(peerCertFromSession(wrapped), other.der, 'a minimal session with [3] Certificate')
})

function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
