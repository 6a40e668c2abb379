import t from 'tap'
import { parseCertPem } from '../../../core/x509/cert.js'
import { issue, makeCa } from '../../lib/certs.js'
import { seeded } from '../../lib/random.js'
import { buildClientCertFacts } from '../../../core/x509/cert.js'

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

t.test('parseCertPem: accepts exactly what buildClientCertFacts reads, with the same subject and not-after (seeded byte corruptions)', async (t) => {
  const ca = makeCa('Root')
  const certs = [
    issue(ca, { cn: 'a.test' }),
    issue(ca, { subject: [{ shortName: 'CN', value: 'alice' }, { shortName: 'O', value: 'Org' }, { shortName: 'C', value: 'FR' }] }),
    ca,
  ]
  const rand = seeded(7)
  let accepted = 0
  let refused = 0
  for (const c of certs) {
    const der = Buffer.from(c.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64')
    const variants: Buffer[] = [der, der.subarray(0, der.length - 1), Buffer.concat([der, Buffer.from([0])])]
    for (let i = 0; i < 300; i++) {
      const v = Buffer.from(der)
      const at = Math.floor(rand() * v.length)
      v[at] = Math.floor(rand() * 256)
      variants.push(v)
    }
    for (const v of variants) {
      const pem = `-----BEGIN CERTIFICATE-----\n${v.toString('base64')}\n-----END CERTIFICATE-----\n`
      const facts = buildClientCertFacts(v)
      let got: { subject: string; notAfter: number } | string
      try {
        const p = parseCertPem(pem)
        got = { subject: p.subject, notAfter: p.notAfter.getTime() }
      } catch {
        got = 'refused'
      }
      const want = facts === undefined ? 'refused' : { subject: facts.subjectDn, notAfter: facts.notAfter }
      if (want === 'refused') refused++
      else accepted++
      if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`differs on a variant of ${c.x509.subject}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`)
    }
  }
  t.ok(accepted > 30 && refused > 30, `both outcomes exercised (${accepted} read, ${refused} refused)`)
})
