import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import * as forgeNs from 'node-forge'
import { compileTrustStore, verifyChain, type ChainCheck, type TrustStore } from '../../../core/x509/verify.js'
import { issue, makeCa, type Issued } from '../../lib/certs.js'

const forge = ((forgeNs as unknown as { default?: typeof forgeNs }).default ?? forgeNs) as typeof forgeNs
const DAY = 86_400_000
const NOW = Date.now()

const root = makeCa('Chain Root CA')
const inter = issue(root, { cn: 'Chain Intermediate CA', ca: true })
const leaf = issue(inter, { cn: 'alice' })
const direct = issue(root, { cn: 'bob' })
const expired = issue(inter, { cn: 'expired', notBefore: new Date(NOW - 10 * DAY), notAfter: new Date(NOW - DAY) })
const future = issue(inter, { cn: 'future', notBefore: new Date(NOW + DAY), notAfter: new Date(NOW + 10 * DAY) })
const foreignCa = makeCa('Foreign CA')
const foreign = issue(foreignCa, { cn: 'mallory' })
const selfSigned = issue(undefined, { cn: 'selfie' })
const impostorCa = makeCa('Chain Root CA')
const impostor = issue(impostorCa, { cn: 'eve' })
const notCa = issue(root, { cn: 'Not A CA' })
const underNotCa = issue(notCa, { cn: 'carol' })
const oldInter = issue(root, { cn: 'Old Intermediate CA', ca: true, notBefore: new Date(NOW - 10 * DAY), notAfter: new Date(NOW - DAY) })
const underOldInter = issue(oldInter, { cn: 'dave' })

/** A leaf from `issuer` whose extendedKeyUsage allows serverAuth only. */
function serverOnly(issuer: Issued): Buffer {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()) as forgeNs.pki.rsa.PrivateKey
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  cert.serialNumber = '1a2b3c'
  cert.validity.notBefore = new Date(NOW - DAY)
  cert.validity.notAfter = new Date(NOW + DAY)
  cert.setSubject([{ shortName: 'CN', value: 'server-only' }])
  cert.setIssuer(issuer.forgeCert.subject.attributes)
  cert.setExtensions([{ name: 'extKeyUsage', serverAuth: true }])
  cert.sign(issuer.forgeKey, forge.md.sha256.create())
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary')
}

const store = (...certs: Issued[]): TrustStore => {
  const r = compileTrustStore(certs.map((c) => c.cert).join(''))
  if (!r.ok) throw new Error(r.error)
  return r.store
}
const full = store(root, inter, oldInter)

const tampered = Buffer.from(leaf.der)
tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0xff

t.test('chain verify: table of certificates and bundles → verdict and failed check', async (t) => {
  const cases: [string, Buffer, TrustStore, ChainCheck | 'ok', (RegExp | undefined)?, number?, number?][] = [
    ['leaf via intermediate, bundle root+intermediate', leaf.der, full, 'ok'],
    ['leaf issued by the root', direct.der, full, 'ok'],
    ['bundle order does not matter', leaf.der, store(inter, root), 'ok'],
    ['intermediate missing from the bundle', leaf.der, store(root), 'untrusted', /issuer of CN=alice \(CN=Chain Intermediate CA\) is not in the trusted CA bundle/],
    ['intermediate alone is not a trust anchor', leaf.der, store(inter), 'untrusted', /CN=Chain Root CA\) is not in the trusted CA bundle/],
    ['expired leaf', expired.der, full, 'expired', /the client certificate expired at/],
    ['not-yet-valid leaf', future.der, full, 'not_yet_valid', /the client certificate is not valid before/],
    ['leaf valid now, expired a year later', leaf.der, full, 'expired', /expired/, NOW + 400 * DAY],
    ['leaf under an expired intermediate', underOldInter.der, full, 'expired', /CA certificate CN=Old Intermediate CA expired/],
    ['leaf from a foreign CA', foreign.der, full, 'untrusted', /CN=Foreign CA\) is not in the trusted CA bundle/],
    ['self-signed leaf', selfSigned.der, full, 'untrusted', /self-signed certificate CN=selfie is not in the trusted CA bundle/],
    ['self-signed leaf that is itself in the bundle', selfSigned.der, store(root, selfSigned), 'ok'],
    ['leaf with a tampered signature', tampered, full, 'signature', /signature of CN=alice does not verify/],
    ['leaf from an impostor CA with the root\'s name', impostor.der, full, 'untrusted', /is not in the trusted CA bundle/],
    ['leaf issued by a certificate that is not a CA', underNotCa.der, store(root, notCa), 'untrusted'],
    ['leaf whose extendedKeyUsage lacks clientAuth', serverOnly(root), full, 'untrusted', /not for client authentication/],
    ['not a certificate', Buffer.from('not a certificate'), full, 'malformed', /cannot be read/],
    ['empty input', Buffer.alloc(0), full, 'malformed'],
    ['depth 0, leaf directly under the root', direct.der, full, 'ok', undefined, NOW, 0],
    ['depth 0, one intermediate', leaf.der, full, 'untrusted', /1 intermediate CAs, more than the verify depth 0/, NOW, 0],
    ['depth 1, one intermediate', leaf.der, full, 'ok', undefined, NOW, 1],
  ]
  for (const [name, der, s, want, re, now, depth] of cases) {
    const r = verifyChain(der, s, now ?? NOW, depth)
    if (want === 'ok') t.match(r, { ok: true }, `${name} → ok`)
    else {
      t.equal(r.ok ? 'ok' : r.check, want, `${name} → ${want}`)
      if (re && !r.ok) t.match(r.message, re, `${name}: message says why`)
    }
  }
})

t.test('chain verify: a bundle that cannot be read → a message naming the certificate', async (t) => {
  t.match(compileTrustStore('hello'), { ok: false, error: /holds no "-----BEGIN CERTIFICATE-----" block/ })
  t.match(compileTrustStore(`${root.cert}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`), { ok: false, error: /certificate 2 of the CA bundle cannot be read/ })
  t.match(compileTrustStore(root.cert + inter.cert), { ok: true, store: { size: 2 } })
})

t.test('chain verify: an already parsed certificate gives the same verdicts', async (t) => {
  t.same(verifyChain(leaf.x509, full, NOW), { ok: true, intermediates: 1 })
  t.match(verifyChain(expired.x509, full, NOW), { ok: false, check: 'expired' })
  t.match(verifyChain(foreign.x509, full, NOW), { ok: false, check: 'untrusted' })
})

t.test('chain verify: refusals carry the OpenSSL code a handshake reports; sent intermediates build the path', async (t) => {
  t.match(verifyChain(expired.x509, full, NOW), { ok: false, code: 'CERT_HAS_EXPIRED' })
  t.match(verifyChain(foreign.x509, full, NOW), { ok: false, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
  t.match(verifyChain(leaf.der, full, NOW, 0), { ok: false, code: 'CERT_CHAIN_TOO_LONG' })
  const rootOnly = compileTrustStore(root.cert)
  if (!rootOnly.ok) throw new Error(rootOnly.error)
  t.match(verifyChain(leaf.der, rootOnly.store, NOW), { ok: false, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'the intermediate is missing')
  t.same(verifyChain(leaf.der, rootOnly.store, NOW, 1, undefined, [inter.der]), { ok: true, intermediates: 1 }, 'the client sent it')
  t.match(verifyChain(leaf.der, rootOnly.store, NOW, 0, undefined, [inter.der]), { ok: false, code: 'CERT_CHAIN_TOO_LONG' })
  // a client that sends a root of its own does not make it trusted
  t.match(verifyChain(foreign.der, rootOnly.store, NOW, 1, undefined, [foreignCa.der]), { ok: false, code: 'SELF_SIGNED_CERT_IN_CHAIN' })
})
