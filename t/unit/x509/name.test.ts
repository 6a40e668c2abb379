import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildClientCertFacts } from '../../../core/x509/cert.js'
import { buildCertDer, makeKeyPair, T, type NameSpec } from '../tls/cert-builder.js'

const dir = mkdtempSync(join(tmpdir(), 'dn-test-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const key = makeKeyPair()

/** What `openssl x509 -nameopt RFC2253` prints for subject and issuer (the same printer nginx uses). */
function opensslNames(der: Buffer, name: string): { subject: string; issuer: string } {
  const file = join(dir, `${name}.der`)
  writeFileSync(file, der)
  const out = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', '-subject', '-issuer', '-nameopt', 'RFC2253'], { encoding: 'latin1' })
  const line = (prefix: string) => out.split('\n').find((l) => l.startsWith(prefix))?.slice(prefix.length)
  return { subject: line('subject=') ?? '<none>', issuer: line('issuer=') ?? '<none>' }
}

const CN = '2.5.4.3'
const O = '2.5.4.10'
const OU = '2.5.4.11'
const C = '2.5.4.6'
const ST = '2.5.4.8'
const L = '2.5.4.7'
const EMAIL = '1.2.840.113549.1.9.1'
const DC = '0.9.2342.19200300.100.1.25'
const UID = '0.9.2342.19200300.100.1.1'

const ascii = Array.from({ length: 127 }, (_, i) => String.fromCharCode(i + 1))

// [case name, subject, issuer]
const cases: [string, NameSpec, NameSpec?][] = [
  ['apisix test client', [[[C, T.PRINTABLE, 'cn']], [[ST, T.UTF8, 'GuangDong']], [[L, T.UTF8, 'ZhuHai']], [[CN, T.UTF8, 'client.apisix.dev']]], [[[C, T.PRINTABLE, 'cn']], [[ST, T.UTF8, 'GuangDong']], [[L, T.UTF8, 'ZhuHai']], [[CN, T.UTF8, 'ca.apisix.dev']], [[OU, T.UTF8, 'ops']]]],
  ['RFC 2253 specials', [[[CN, T.UTF8, 'a,b+c"d\\e<f>g;h=i/j']], [[O, T.PRINTABLE, 'Acme, Inc.']]]],
  ['leading and trailing spaces and #', [[[CN, T.UTF8, ' lead']], [[CN, T.UTF8, 'trail ']], [[CN, T.UTF8, '  both  ']], [[CN, T.UTF8, '#hash']], [[CN, T.UTF8, 'mid#dle']], [[CN, T.UTF8, 'end#']]]],
  ['one-character values', [[[CN, T.UTF8, '#']], [[CN, T.UTF8, ' ']], [[CN, T.UTF8, ',']], [[CN, T.UTF8, 'x']], [[CN, T.UTF8, '# ']], [[CN, T.UTF8, ' #']]]],
  ['empty value and empty issuer', [[[CN, T.UTF8, '']]], []],
  // OpenSSL 3 refuses to load invalid UTF-8, odd-length or surrogate BMPStrings and bad
  // UniversalStrings, so only valid text is compared here.
  ['UTF-8 in every string type', [
    [[CN, T.UTF8, 'Zoë Łódź 日本 🎉']],
    [[O, T.BMP, Buffer.from('\u005a\u006f\u00eb \u65e5\u672c', 'utf16le').swap16()]],
    [[OU, T.T61, Buffer.from([0x63, 0x61, 0x66, 0xe9])]],
    [[L, T.UNIVERSAL, Buffer.from([0, 0, 0, 0x41, 0, 1, 0xf3, 0x89])]],
    [[ST, T.IA5, 'plain']],
  ]],
  ['multi-valued RDNs', [[[C, T.PRINTABLE, 'FR']], [[O, T.UTF8, 'Gravitee'], [OU, T.UTF8, 'APIM']], [[CN, T.UTF8, 'a'], [UID, T.UTF8, 'u1'], [EMAIL, T.IA5, 'a@b.c']]]],
  ['many attributes with short names', [
    [[DC, T.IA5, 'com']], [[DC, T.IA5, 'example']], [[C, T.PRINTABLE, 'US']], [[ST, T.UTF8, 'CA']], [[L, T.UTF8, 'SF']],
    [['2.5.4.9', T.UTF8, '1 Main St']], [['2.5.4.17', T.UTF8, '94105']], [[O, T.UTF8, 'Org']], [[OU, T.UTF8, 'Unit']],
    [['2.5.4.12', T.UTF8, 'Dr']], [['2.5.4.42', T.UTF8, 'Given']], [['2.5.4.4', T.UTF8, 'Sur']], [['2.5.4.43', T.UTF8, 'GS']],
    [['2.5.4.5', T.PRINTABLE, '12345']], [['2.5.4.15', T.UTF8, 'Private Organization']], [['1.3.6.1.4.1.311.60.2.1.3', T.PRINTABLE, 'US']],
    [['2.5.4.97', T.UTF8, 'VATFR-123']], [['2.5.4.13', T.UTF8, 'desc']], [['2.5.4.65', T.UTF8, 'pseudo']], [['2.5.4.46', T.PRINTABLE, 'q']],
    [[UID, T.UTF8, 'jdoe']], [['0.9.2342.19200300.100.1.44', T.UTF8, 'uniq']], [[EMAIL, T.IA5, 'jdoe@example.com']], [['1.2.840.113549.1.9.2', T.IA5, 'unstructured']],
    [[CN, T.UTF8, 'John Doe']],
  ]],
  ['unknown OIDs dumped as #hex DER', [[['1.2.3.4.5', T.UTF8, 'hello']], [['1.3.6.1.4.1.99999.1', T.PRINTABLE, 'x,y']], [['2.999.1', T.IA5, '']], [[CN, T.UTF8, 'known']]]],
  // OpenSSL refuses to load a name holding invalid UTF-8, a VideotexString, an OCTET STRING or an
  // INTEGER, so such certificates never reach the gateway; a SEQUENCE loads and is dumped.
  ['known OID with a type OpenSSL does not print as text', [[[OU, T.RAW, Buffer.from([0x30, 3, 2, 1, 5])]], [[CN, T.UTF8, 'x']]]],
  ['numeric string', [[[CN, T.NUMERIC, '0123 456']]]],
  ['every ASCII character, first', [ascii.map((c) => [OU, T.UTF8, `${c}x`] as const)]],
  ['every ASCII character, middle', [ascii.map((c) => [OU, T.UTF8, `x${c}x`] as const)]],
  ['every ASCII character, last', [ascii.map((c) => [OU, T.UTF8, `x${c}`] as const)]],
  ['every ASCII character, alone', ascii.map((c) => [[OU, T.UTF8, c] as const])],
  ['every ASCII character in a T61String', [ascii.map((c) => [OU, T.T61, `${c}${c}${c}`] as const)]],
  ['Latin-1 bytes in a T61String', [[[OU, T.T61, Buffer.from(Array.from({ length: 128 }, (_, i) => 128 + i))]]]],
]

for (const [name, subject, issuer] of cases) {
  t.test(`dn: ${name} → same RFC 2253 text as openssl`, async (t) => {
    const der = buildCertDer(issuer === undefined ? { subject } : { subject, issuer }, key)
    const want = opensslNames(der, name.replaceAll(/\W+/g, '-'))
    const facts = buildClientCertFacts(der)
    t.ok(facts, 'the certificate parses')
    t.equal(facts?.subjectDn, want.subject, 'subject')
    t.equal(facts?.issuerDn, want.issuer, 'issuer')
  })
}

t.test('dn: a BMPString of odd length (OpenSSL refuses such certificates) → empty, never a throw', async (t) => {
  const der = buildCertDer({ subject: [[[CN, T.BMP, Buffer.from([0, 0x41, 0])]]], issuer: [[[CN, T.UTF8, 'ca']]] }, key)
  const facts = buildClientCertFacts(der)
  t.equal(facts?.subjectDn, '')
  t.equal(facts?.issuerDn, 'CN=ca')
})

t.test('dn: attributes come back in certificate order with their RDN index', async (t) => {
  const der = buildCertDer({ subject: [[[C, T.PRINTABLE, 'FR']], [[O, T.UTF8, 'G'], [OU, T.UTF8, 'A']]] }, key)
  const facts = buildClientCertFacts(der)
  t.same(
    facts?.subject.map((a) => [a.shortName, a.rdn, Buffer.from(a.value).toString()]),
    [
      ['C', 0, 'FR'],
      ['O', 1, 'G'],
      ['OU', 1, 'A'],
    ],
  )
})
