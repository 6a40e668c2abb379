import t from 'tap'
import { parseCertPem, rfc2253FromNodeSubject } from '../../core/cert-parse.js'
import { issue, makeCa } from '../lib/certs.js'

t.test('Node subject → RFC 2253 as nginx prints it', async (t) => {
  const cases: [string, string, string][] = [
    ['one RDN', 'CN=a.test', 'CN=a.test'],
    ['order reversed', 'C=FR\nO=Test Org\nCN=alice', 'CN=alice,O=Test Org,C=FR'],
    ['escaped specials kept', 'CN=x\\,y\\+z', 'CN=x\\,y\\+z'],
    ['multi-valued RDN joined with +', 'O=Org\nCN=a + UID=7', 'CN=a+UID=7,O=Org'],
    ['non-ASCII as \\XX of its UTF-8 bytes', 'CN=é', 'CN=\\C3\\A9'],
    ['empty', '', ''],
  ]
  for (const [name, input, want] of cases) t.equal(rfc2253FromNodeSubject(input), want, name)
})

t.test('parseCertPem: a real certificate → RFC 2253 subject and not-after', async (t) => {
  const ca = makeCa('Root')
  const notAfter = new Date(Date.UTC(2031, 5, 1, 12, 0, 0))
  const c = issue(ca, { subject: [{ shortName: 'CN', value: 'alice' }, { shortName: 'O', value: 'Test Org' }, { shortName: 'C', value: 'FR' }], notAfter })
  t.same(parseCertPem(c.cert), { subject: 'C=FR,O=Test Org,CN=alice', notAfter })
})

t.test('parseCertPem: not a certificate → throws', async (t) => {
  t.throws(() => parseCertPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'))
})
