import t from 'tap'
import { parseDn } from '../../../core/x509/name-parse.js'

const CN = '2.5.4.3'
const O = '2.5.4.10'
const C = '2.5.4.6'
const EMAIL = '1.2.840.113549.1.9.1'

/** The parse as [type, value] per attribute, per RDN; or the error text. */
const shape = (s: string, strict = false): string[][][] | string => {
  const r = parseDn(s, strict)
  return r.ok ? r.rdns.map((rdn) => rdn.map((a) => [a.type, a.value])) : `error: ${r.error}`
}

t.test('dn parse: table of names → RDNs with canonical types and unescaped values', async (t) => {
  const cases: [string, string[][][]][] = [
    ['CN=localhost,O=GraviteeSource,C=FR', [[[CN, 'localhost']], [[O, 'GraviteeSource']], [[C, 'FR']]]],
    [' CN = a , O = b ', [[[CN, 'a']], [[O, 'b']]]],
    ['CN=a;O=b', [[[CN, 'a']], [[O, 'b']]]],
    ['cn=a,o=b,c=FR', [[[CN, 'a']], [[O, 'b']], [[C, 'FR']]]],
    ['O=Acme\\, Inc.,C=US', [[[O, 'Acme, Inc.']], [[C, 'US']]]],
    ['O="Acme, Inc.",C=US', [[[O, 'Acme, Inc.']], [[C, 'US']]]],
    ['O="say \\"hi\\"" , C=US', [[[O, 'say "hi"']], [[C, 'US']]]],
    ['CN=Lu\\C4\\8Di\\C4\\87', [[[CN, 'Lučić']]]],
    ['CN=a\\2Cb', [[[CN, 'a,b']]]],
    ['CN=a\\+b\\;c\\\\d\\<e\\>\\=\\#', [[[CN, 'a+b;c\\d<e>=#']]]],
    ['CN=a=b', [[[CN, 'a=b']]]],
    ['CN=\\ a\\ ', [[[CN, ' a ']]]],
    ['CN=a b  ', [[[CN, 'a b']]]],
    ['CN=#0c0161', [[[CN, 'a']]]],
    ['CN=#13026869', [[[CN, 'hi']]]],
    ['CN=#1e0400680069', [[[CN, 'hi']]]],
    ['CN=#0401FF', [[[CN, '#0401ff']]]],
    ['CN=#0c05', [[[CN, '#0c05']]]],
    ['CN=a+UID=b,O=c', [[[CN, 'a'], ['0.9.2342.19200300.100.1.1', 'b']], [[O, 'c']]]],
    ['2.5.4.3=x', [[[CN, 'x']]]],
    ['OID.2.5.4.3=x', [[[CN, 'x']]]],
    ['1.2.3.4=x', [[['1.2.3.4', 'x']]]],
    ['E=x@y,EMAILADDRESS=x@y,emailAddress=x@y', [[[EMAIL, 'x@y']], [[EMAIL, 'x@y']], [[EMAIL, 'x@y']]]],
    ['S=Paris,ST=Paris', [[['2.5.4.8', 'Paris']], [['2.5.4.8', 'Paris']]]],
    ['CN=', [[[CN, '']]]],
    ['', []],
    ['   ', []],
    ['XX=a', [[['XX', 'a']]]],
  ]
  for (const [s, want] of cases) t.same(shape(s), want, `${JSON.stringify(s)} → ${JSON.stringify(want)}`)
})

t.test('dn parse: unescaped * and ? are flagged as wildcards, escaped ones are not', async (t) => {
  const r = parseDn('CN=*\\*?\\3F,O="*"')
  if (!r.ok) return t.fail(r.error)
  t.same(r.rdns[0]?.[0]?.wild, [true, false, true, false])
  t.same(r.rdns[1]?.[0]?.wild, [true])
})

t.test('dn parse: malformed names → a message naming the position and the problem', async (t) => {
  const cases: [string, RegExp][] = [
    ['CN', /at character 3: expected "=" after CN/],
    ['CN=a,', /expected an attribute type after the separator/],
    ['=a', /at character 1: expected an attribute type/],
    ['CN="a', /unterminated quoted value/],
    ['CN="a"b', /unexpected "b"/],
    ['CN=#0c0', /unexpected "0"/],
    ['CN=#', /expected hex pairs/],
    ['CN=a\\', /"\\" at the end/],
    ['CN=\\C4', /not valid UTF-8/],
    ['2.5.04.3=x', /not a valid OID/],
    ['OID.=x', /expected an OID/],
    ['/C=FR/O=x/CN=y', /expected an attribute type/],
  ]
  for (const [s, re] of cases) t.match(shape(s), re, `${JSON.stringify(s)} → ${re}`)
})

t.test('dn parse: strict mode refuses unknown keywords, lenient keeps them upper-cased', async (t) => {
  t.match(shape('CN=a,XX=b', true), /at character 6: unknown attribute type XX/)
  t.same(shape('CN=a,xx=b'), [[[CN, 'a']], [['XX', 'b']]])
})
