import t from 'tap'
import { certificateRecords, splitPemCertificates, type ParsedCert, type SkippedCert } from '../../../core/x509/records.js'

// A stand-in PEM: the body is base64 of JSON {subject, notAfter}, so the parser stays trivial.
const pem = (subject: string, notAfter = '2027-01-01T00:00:00Z'): string =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(JSON.stringify({ subject, notAfter })).toString('base64')}\n-----END CERTIFICATE-----\n`
const parse = (block: string): ParsedCert => {
  const body = block.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').trim()
  const j = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as { subject: string; notAfter: string }
  if (j.subject === 'broken') throw new Error('cannot parse')
  return { subject: j.subject, notAfter: new Date(j.notAfter) }
}

const run = (ssls: Parameters<typeof certificateRecords>[0], consumers: Parameters<typeof certificateRecords>[1] = []) => {
  const skipped: SkippedCert[] = []
  const records = certificateRecords(ssls, consumers, parse, (s) => skipped.push(s))
  return { records: records.map((r) => [r.kind, r.id, r.names.join(','), r.subject]), skipped }
}

t.test('cert records: ssl objects and consumers → one record per certificate, in input order', async (t) => {
  const cases: { name: string; ssls: Parameters<typeof certificateRecords>[0]; consumers?: Parameters<typeof certificateRecords>[1]; want: string[][] }[] = [
    { name: 'snis list → names', ssls: [{ id: '1', cert: pem('CN=a'), snis: ['a.test', '*.a.test'] }], want: [['server', '1', 'a.test,*.a.test', 'CN=a']] },
    { name: 'single sni → names', ssls: [{ id: 2, cert: pem('CN=b'), sni: 'b.test' }], want: [['server', '2', 'b.test', 'CN=b']] },
    { name: 'no sni at all → no names', ssls: [{ id: '3', cert: pem('CN=c') }], want: [['server', '3', '', 'CN=c']] },
    {
      name: 'cert with a chain → the leaf only; certs[] → one record each',
      ssls: [{ id: '4', cert: pem('CN=leaf') + pem('CN=intermediate'), certs: [pem('CN=ecdsa')], snis: ['d.test'] }],
      want: [
        ['server', '4', 'd.test', 'CN=leaf'],
        ['server', '4', 'd.test', 'CN=ecdsa'],
      ],
    },
    {
      name: 'client.ca bundle of two → two client-ca records without names',
      ssls: [{ id: '5', cert: pem('CN=e'), snis: ['e.test'], client: { ca: pem('CN=Root A') + pem('CN=Root B') } }],
      want: [
        ['server', '5', 'e.test', 'CN=e'],
        ['client-ca', '5', '', 'CN=Root A'],
        ['client-ca', '5', '', 'CN=Root B'],
      ],
    },
    {
      name: 'consumer with two mtls-auth certificates (rotation) → two consumer records',
      ssls: [],
      consumers: [
        { username: 'alice', plugins: { 'mtls-auth': { certificates: [pem('CN=alice old'), pem('CN=alice new')] } } },
        { username: 'bob', plugins: { 'key-auth': { key: 'x' } } },
        { username: 'carol' },
      ],
      want: [
        ['consumer', 'alice', '', 'CN=alice old'],
        ['consumer', 'alice', '', 'CN=alice new'],
      ],
    },
  ]
  for (const c of cases) {
    const got = run(c.ssls, c.consumers)
    t.same(got.records, c.want, c.name)
    t.same(got.skipped, [], `${c.name}: nothing skipped`)
  }
})

t.test('cert records: values without a PEM block or that fail to parse → skipped with a reason, others kept', async (t) => {
  const got = run(
    [
      { id: '1', cert: '$secret://vault/ssl/a.crt', snis: ['a.test'] },
      { id: '2', cert: pem('broken'), snis: ['b.test'], client: { ca: 'not pem' } },
      { id: '3', cert: pem('CN=ok'), snis: ['c.test'] },
    ],
    [{ username: 'dave', plugins: { 'mtls-auth': { certificates: [42, pem('CN=dave')] } } }],
  )
  t.same(got.records, [
    ['server', '3', 'c.test', 'CN=ok'],
    ['consumer', 'dave', '', 'CN=dave'],
  ])
  t.same(got.skipped, [
    { kind: 'server', id: '1', reason: 'no PEM certificate' },
    { kind: 'server', id: '2', reason: 'cannot parse' },
    { kind: 'client-ca', id: '2', reason: 'no PEM certificate' },
    { kind: 'consumer', id: 'dave', reason: 'no PEM certificate' },
  ])
})

t.test('cert records: not-after taken from the parser as given', async (t) => {
  const [r] = certificateRecords([{ id: '1', cert: pem('CN=a', '2030-05-06T07:08:09Z') }], [], parse)
  t.equal(r?.notAfter.toISOString(), '2030-05-06T07:08:09.000Z')
})

t.test('splitPemCertificates: bundles, CRLF, surrounding text, other PEM types', async (t) => {
  const a = pem('CN=a').trim()
  const b = pem('CN=b').trim().replace(/\n/g, '\r\n')
  const key = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'
  const cases: [string, string[]][] = [
    ['', []],
    [a, [a]],
    [`subject=CN=a\n${a}\n\n${b}\n`, [a, b]],
    [`${key}\n${a}`, [a]],
    ['-----BEGIN CERTIFICATE-----\nAAAA', []],
  ]
  for (const [input, want] of cases) t.same(splitPemCertificates(input), want, JSON.stringify(input.slice(0, 30)))
})
