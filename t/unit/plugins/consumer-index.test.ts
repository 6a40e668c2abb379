import t from 'tap'
import { createHash } from 'node:crypto'
import {
  buildConsumerIndex,
  checkConsumerCertificates,
  findCertificateOwner,
  normalizeCertificate,
  type CertConsumer,
  type NormalizedCert,
} from '../../../core/plugins/consumer-index.js'
import { issue, makeCa } from '../../lib/certs.js'

const ca = makeCa('Consumer CA')
const [a1, a2, b1, c1] = ['alice-2025', 'alice-2026', 'bob', 'carol'].map((cn) => issue(ca, { cn }))
if (!a1 || !a2 || !b1 || !c1) throw new Error('certificates')
const sha = (der: Buffer): string => createHash('sha256').update(der).digest('hex')
const consumer = (username: string, certificates?: unknown[], extra: Record<string, unknown> = {}): CertConsumer => ({
  username,
  plugins: certificates === undefined ? {} : { 'mtls-auth': { certificates, ...extra } },
})

const alice = consumer('alice', [a1.cert, a2.der.toString('base64')])
const bob = consumer('bob', [b1.cert])
const nobody = consumer('nobody')

t.test('consumer certificates: PEM and base64 DER normalise to the same DER and SHA-256', async (t) => {
  const forms: [string, string][] = [
    ['PEM', a1.cert],
    ['PEM with CRLF', a1.cert.replace(/\n/g, '\r\n')],
    ['PEM with surrounding blanks', `\n  ${a1.cert}  \n`],
    ['base64 DER', a1.der.toString('base64')],
    ['base64 DER in 64-column lines', a1.der.toString('base64').replace(/(.{64})/g, '$1\n')],
  ]
  for (const [name, s] of forms) {
    const r = normalizeCertificate(s)
    t.ok(r.ok && r.der.equals(a1.der) && r.sha256 === sha(a1.der), `${name} → the DER and its SHA-256`)
  }
})

t.test('consumer certificates: entries that are not one certificate → a message saying why', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['a number', 42, /must be a string/],
    ['empty', '  ', /empty/],
    ['a private key', a1.key, /holds a RSA PRIVATE KEY, not a CERTIFICATE/],
    ['a chain', a1.cert + ca.cert, /holds 2 blocks/],
    ['not base64', 'hello world!', /the certificate is neither PEM nor base64/],
    ['base64 of text', Buffer.from('hello').toString('base64'), /does not start with a SEQUENCE/],
    ['truncated DER', a1.der.subarray(0, 100).toString('base64'), /truncated/],
    ['a SEQUENCE that is not X.509', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]).toString('base64'), /not a valid X\.509 certificate/],
  ]
  for (const [name, s, re] of cases) {
    const r = normalizeCertificate(s)
    t.match(r.ok ? 'accepted' : r.error, re, `${name} → ${re}`)
  }
})

t.test('consumer index: each certificate of each consumer → its username', async (t) => {
  const idx = buildConsumerIndex([alice, bob, nobody])
  t.equal(idx.byCert.get(sha(a1.der)), 'alice', 'first certificate of a consumer with two')
  t.equal(idx.byCert.get(sha(a2.der)), 'alice', 'second certificate (rotation) of the same consumer')
  t.equal(idx.byCert.get(sha(b1.der)), 'bob')
  t.equal(idx.byCert.get(sha(c1.der)), undefined, 'a certificate nobody carries → no consumer')
  t.equal(idx.byCert.size, 3)
  t.same(idx.conflicts, [])
  t.same(idx.invalid, [])
})

t.test('consumer index: a disabled mtls-auth conf identifies nobody', async (t) => {
  const idx = buildConsumerIndex([consumer('off', [c1.cert], { _meta: { disable: true } })])
  t.equal(idx.byCert.size, 0)
})

t.test('consumer index: unreadable entries are reported and skipped, the rest still index', async (t) => {
  const idx = buildConsumerIndex([consumer('dave', ['garbage!', c1.cert, 7])])
  t.equal(idx.byCert.get(sha(c1.der)), 'dave')
  t.match(idx.invalid, [
    { username: 'dave', index: 0, error: /neither PEM nor base64/ },
    { username: 'dave', index: 2, error: /must be a string/ },
  ])
})

t.test('consumer index: a certificate under two consumers goes to the first username in sort order and is reported', async (t) => {
  const idx = buildConsumerIndex([consumer('zed', [c1.cert]), consumer('amy', [c1.der.toString('base64')])])
  t.equal(idx.byCert.get(sha(c1.der)), 'amy')
  t.same(idx.conflicts, [{ sha256: sha(c1.der), usernames: ['amy', 'zed'] }])
})

t.test('consumer index: an unchanged consumer object is read from the cache, not decoded again', async (t) => {
  const cache = new WeakMap<object, readonly NormalizedCert[]>()
  buildConsumerIndex([alice], cache)
  t.equal(cache.get(alice)?.length, 2)
  cache.set(alice, [{ ok: true, der: c1.der, sha256: 'f'.repeat(64) }])
  const idx = buildConsumerIndex([alice], cache)
  t.equal(idx.byCert.get('f'.repeat(64)), 'alice', 'the cached hashes are used')
  t.equal(idx.byCert.get(sha(a1.der)), undefined)
})

t.test('certificate owner: found by any form of the certificate, or by its SHA-256', async (t) => {
  const all = [alice, bob, nobody]
  t.equal(findCertificateOwner(all, a2.cert), 'alice', 'PEM of a certificate stored as base64 DER')
  t.equal(findCertificateOwner(all, a1.der.toString('base64')), 'alice', 'base64 DER of a certificate stored as PEM')
  t.equal(findCertificateOwner(all, sha(b1.der)), 'bob', 'SHA-256 hex')
  t.equal(findCertificateOwner(all, a1.cert, 'alice'), undefined, 'the consumer itself is excepted')
  t.equal(findCertificateOwner(all, c1.cert), undefined, 'nobody carries it')
  t.equal(findCertificateOwner(all, 'garbage!'), undefined, 'not a certificate')
})

t.test('admin check: a consumer\'s certificates against the others → message naming the entry and owner', async (t) => {
  const all = [alice, bob]
  const cases: [string, string, unknown[], RegExp | undefined][] = [
    ['a new consumer with fresh certificates', 'carol', [c1.cert], undefined],
    ['alice updating her own two certificates', 'alice', [a1.cert, a2.cert], undefined],
    ['alice rotating: old, new and a third', 'alice', [a2.cert, c1.cert], undefined],
    ['a new consumer with bob\'s certificate', 'carol', [c1.cert, b1.der.toString('base64')], /^certificates\[1\] already belongs to consumer "bob"$/],
    ['bob taking alice\'s certificate', 'bob', [b1.cert, a1.cert], /^certificates\[1\] already belongs to consumer "alice"$/],
    ['the same certificate twice in one list', 'carol', [c1.cert, c1.der.toString('base64')], /^certificates\[1\] is the same certificate as certificates\[0\]$/],
    ['an entry that is not a certificate', 'carol', [c1.cert, a1.key], /^certificates\[1\]: PEM holds a RSA PRIVATE KEY/],
  ]
  for (const [name, username, certs, want] of cases) {
    const got = checkConsumerCertificates(username, certs, all)
    if (want === undefined) t.equal(got, undefined, `${name} → accepted`)
    else t.match(got, want, `${name} → ${want}`)
  }
})
