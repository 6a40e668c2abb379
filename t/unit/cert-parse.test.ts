import t from 'tap'
import { parseCertPem } from '../../core/cert-parse.js'
import { issue, makeCa } from '../lib/certs.js'

t.test('parseCertPem: a real certificate → RFC 2253 subject (last RDN first) and not-after', async (t) => {
  const ca = makeCa('Root')
  const notAfter = new Date(Date.UTC(2031, 5, 1, 12, 0, 0))
  const cases: [string, Parameters<typeof issue>[1], string][] = [
    ['one RDN', { cn: 'a.test', notAfter }, 'CN=a.test'],
    ['three RDNs, reversed', { subject: [{ shortName: 'CN', value: 'alice' }, { shortName: 'O', value: 'Test Org' }, { shortName: 'C', value: 'FR' }], notAfter }, 'C=FR,O=Test Org,CN=alice'],
    ['specials escaped', { subject: [{ shortName: 'CN', value: 'x,y+z' }], notAfter }, 'CN=x\\,y\\+z'],
  ]
  for (const [name, o, subject] of cases) t.same(parseCertPem(issue(ca, o).cert), { subject, notAfter }, name)
})

t.test('parseCertPem: a chain → the first block; text around the block is ignored', async (t) => {
  const ca = makeCa('Root')
  const leaf = issue(ca, { cn: 'leaf' })
  t.equal(parseCertPem(`subject=leaf\n${leaf.cert}${ca.cert}`).subject, 'CN=leaf')
})

t.test('parseCertPem: not a certificate → throws', async (t) => {
  const cases: [string, string][] = [
    ['no block', 'hello'],
    ['no end marker', '-----BEGIN CERTIFICATE-----\nAAAA\n'],
    ['garbage body', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
  ]
  for (const [name, pem] of cases) t.throws(() => parseCertPem(pem), name)
})
