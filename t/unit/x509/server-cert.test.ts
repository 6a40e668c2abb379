import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { makeTestPki } from '../resources/pki.js'
import {
  certBlocks, certCoversSni, expiryWarning, keyMatchesCert, normalizeSni, parseCertChain, parsePrivateKey, uncoveredSnis,
} from '../../../core/x509/server-cert.js'

const NOW = Date.now()
const pki = makeTestPki(NOW)
const site = pki.leaf('a.test', ['a.test', '*.wild.test'])
const other = pki.leaf('b.test', ['b.test'])

t.test('pem: a chain parses leaf first; garbage around blocks is tolerated', async (t) => {
  const chain = parseCertChain(`junk before\n${site.cert}${pki.ca.cert}trailing text`)
  t.equal(chain?.length, 2)
  t.match(chain?.[0]?.subject ?? '', /CN=a.test/)
  t.equal(certBlocks('no pem here').length, 0)
})

t.test('pem: broken certificates and keys → undefined', async (t) => {
  t.equal(parseCertChain(site.cert.slice(0, 200)), undefined, 'truncated certificate')
  t.equal(parseCertChain(site.cert.replace(/[A-Z]{10}/, 'xxxxxxxxxx')), undefined, 'corrupted body')
  t.equal(parseCertChain(site.cert + site.cert.slice(0, 100)), undefined, 'a good certificate followed by an unterminated block')
  t.equal(parsePrivateKey(site.key.slice(0, 300)), undefined, 'truncated key')
  t.equal(parsePrivateKey('hello'), undefined, 'not a PEM')
  t.ok(parsePrivateKey(site.key), 'a PKCS#1 RSA key parses')
})

t.test('pem: key matches its own certificate only', async (t) => {
  const cert = new X509Certificate(site.cert)
  t.ok(keyMatchesCert(parsePrivateKey(site.key)!, cert))
  t.notOk(keyMatchesCert(parsePrivateKey(other.key)!, cert))
})

t.test('pem: SAN coverage of SNIs', async (t) => {
  const cert = new X509Certificate(site.cert)
  const cases: Array<[string, boolean]> = [
    ['a.test', true],
    ['A.TEST.', true],
    ['x.wild.test', true],
    ['x.y.wild.test', false],
    ['*.wild.test', true],
    ['*.a.test', false],
    ['b.test', false],
    ['*', false],
  ]
  for (const [sni, want] of cases) t.equal(certCoversSni(cert, sni), want, `${sni} → ${want ? 'covered' : 'not covered'}`)
  t.same(uncoveredSnis([cert, new X509Certificate(other.cert)], ['a.test', 'b.test', 'c.test']), ['c.test'])
  t.equal(normalizeSni('WWW.Test.com.'), 'www.test.com')
})

t.test('pem: expiry warnings for expired and soon-expiring certificates only', async (t) => {
  const soon = new X509Certificate(pki.leaf('s', ['s'], { days: 10 }).cert)
  const gone = new X509Certificate(pki.leaf('g', ['g'], { days: -1, fromDays: 30 }).cert)
  const fine = new X509Certificate(site.cert)
  t.match(expiryWarning(soon, NOW, 'cert'), /^cert expires at .* \(in (9|10) days\)$/)
  t.match(expiryWarning(gone, NOW, 'cert'), /^cert expired at /)
  t.equal(expiryWarning(fine, NOW, 'cert'), undefined)
})
