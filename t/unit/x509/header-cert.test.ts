import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { MAX_HEADER_CERT, parseHeaderCert, parseHeaderChain } from '../../../core/x509/header-cert.js'
import { issue, makeCa } from '../../lib/certs.js'

const ca = makeCa('Header Test CA')
const leaf = issue(ca, { cn: 'client.example' })
const pem = leaf.cert
const der = leaf.der
const b64 = der.toString('base64')
const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')

t.test('header cert: every accepted form → the same DER', async (t) => {
  const forms: [string, string][] = [
    ['base64 of DER', b64],
    ['base64 of DER with line breaks and spaces', b64.replace(/(.{64})/g, '$1\n ')],
    ['base64url of DER without padding', der.toString('base64url')],
    ['base64 of PEM', Buffer.from(pem).toString('base64')],
    ['URL-encoded PEM (nginx $ssl_client_escaped_cert)', encodeURIComponent(pem)],
    ['URL-encoded PEM keeping + = / (AWS ALB)', encodeURIComponent(pem).replace(/%2B/g, '+').replace(/%3D/g, '=').replace(/%2F/g, '/')],
    ['PEM with spaces for newlines', pem.replace(/\n/g, ' ')],
    ['PEM with tabs for newlines', pem.replace(/\n/g, '\t')],
    ['PEM with CRLF', pem.replace(/\n/g, '\r\n')],
    ['quoted URL-encoded PEM', `"${encodeURIComponent(pem)}"`],
    ['URL-escaped base64 body (Traefik)', encodeURIComponent(body)],
    ['Envoy XFCC with one element', `By=spiffe://cluster.local/ns/a;Hash=abc123;Cert="${encodeURIComponent(pem)}";Subject="CN=client.example,O=x";URI=`],
    ['Envoy XFCC, Cert unquoted', `Hash=abc;Cert=${encodeURIComponent(pem)};DNS=a.example`],
    ['surrounding whitespace', `  ${b64}  `],
  ]
  for (const [name, value] of forms) {
    const r = parseHeaderCert(value)
    t.ok(r.ok && r.der.equals(der) && r.x509.raw.equals(der), `${name} → DER and the parsed certificate`)
  }
})

t.test('header cert: malformed values → a message saying what was wrong', async (t) => {
  const other = issue(ca, { cn: 'other' })
  const cases: [string, unknown, RegExp][] = [
    ['missing', undefined, /missing/],
    ['sent twice', [b64, b64], /more than once/],
    ['empty', '', /empty/],
    ['blank', '   ', /empty/],
    ['too long', 'A'.repeat(MAX_HEADER_CERT + 4), /longer than 16384 characters/],
    ['not base64', 'MIIB!abc', /neither PEM nor base64 \(character "!" at position 5\)/],
    ['impossible base64 length', 'MIIBa', /length is impossible/],
    ['mixed base64 alphabets', 'ab+_', /not valid base64/],
    ['truncated DER', der.subarray(0, der.length - 10).toString('base64'), /truncated/],
    ['bytes after the DER', Buffer.concat([der, Buffer.from([0, 1, 2])]).toString('base64'), /3 bytes follow/],
    ['not a SEQUENCE', Buffer.from('hello world').toString('base64'), /does not start with a SEQUENCE/],
    ['a SEQUENCE that is not X.509', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]).toString('base64'), /not a valid X\.509 certificate/],
    ['a private key', leaf.key, /holds a RSA PRIVATE KEY, not a CERTIFICATE/],
    ['a chain', pem + other.cert, /holds 2 blocks; give only the client certificate/],
    ['no END line', pem.replace(/-----END CERTIFICATE-----\n?/, ''), /no "-----END CERTIFICATE-----" line/],
    ['END of another type', pem.replace('END CERTIFICATE', 'END PRIVATE KEY'), /ends with END PRIVATE KEY/],
    ['PEM body not base64', pem.replace(/\n(.)/, '\n!$1'), /PEM body is not base64/],
    ['bad URL-encoding', `${encodeURIComponent(pem)}%E0%A4%A`, /not valid URL-encoding/],
    ['two comma-separated certificates', `${b64},${b64}`, /comma-separated/],
    ['XFCC with two elements', `Hash=a;Cert="${encodeURIComponent(pem)}",Hash=b;Cert="${encodeURIComponent(pem)}"`, /holds 2 elements/],
    ['XFCC without Cert', 'By=spiffe://x;Hash=abc;Subject="CN=a"', /has no Cert field/],
    ['XFCC with an unterminated quote', 'Cert="abc', /unterminated/],
  ]
  for (const [name, value, re] of cases) {
    const r = parseHeaderCert(value)
    t.match(r.ok ? 'accepted' : r.error, re, `${name} → ${re}`)
  }
})

t.test('header cert: the size cap can be lowered', async (t) => {
  const r = parseHeaderCert(b64, 100)
  t.match(r.ok ? 'accepted' : r.error, /longer than 100 characters/)
})

/** mulberry32: a small seeded PRNG so the fuzz run is the same every time. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('header cert: 4000 seeded mutations of valid values never throw', async (t) => {
  const rand = rng(20261202)
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)] as T
  const seeds = [b64, Buffer.from(pem).toString('base64'), encodeURIComponent(pem), pem.replace(/\n/g, ' '), `Cert="${encodeURIComponent(pem)}"`, body]
  const alphabet = ['%', '-', '=', '"', ',', ';', '+', '/', ' ', '\t', 'A', '0', '%0A', '%E0', '-----BEGIN CERTIFICATE-----', '-----END CERTIFICATE-----', 'Cert=', '\u00e9', '\ud800']
  let ok = 0
  let threw = 0
  for (let n = 0; n < 4000; n++) {
    let s = pick(seeds)
    const edits = 1 + Math.floor(rand() * 4)
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (s.length + 1))
      const op = rand()
      if (op < 0.3) s = s.slice(0, at) + pick(alphabet) + s.slice(at)
      else if (op < 0.6) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 40))
      else if (op < 0.8) s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + s.slice(at + 1)
      else s = s.slice(0, at)
    }
    try {
      const r = parseHeaderCert(s)
      if (r.ok) {
        ok++
        new X509Certificate(r.der)
      } else if (typeof r.error !== 'string' || r.error === '') threw++
    } catch {
      threw++
    }
  }
  t.equal(threw, 0, 'no throw, and every refusal carries a message')
  t.ok(ok > 0 && ok < 4000, `some mutations still parse (${ok}), most do not`)
})

t.test('header cert: RFC 9440 Client-Cert, a structured-field byte sequence :BASE64DER:', async (t) => {
  const r = parseHeaderCert(`:${b64}:`)
  t.ok(r.ok && r.der.equals(der), ':base64 of DER: → the certificate')
  const cases: [string, string, RegExp][] = [
    ['unterminated', `:${b64}`, /byte sequence|neither PEM nor base64/],
    ['base64url inside (RFC 8941 allows only the standard alphabet)', `:${der.toString('base64url')}:`, /byte sequence that is not base64/],
    ['empty', '::', /the header is an empty byte sequence/],
    ['not a certificate', `:${Buffer.from('hello').toString('base64')}:`, /does not start with a SEQUENCE/],
    ['two byte sequences', `:${b64}:, :${b64}:`, /one byte sequence/],
  ]
  for (const [name, value, re] of cases) {
    const x = parseHeaderCert(value)
    t.match(x.ok ? 'accepted' : x.error, re, `${name} → ${re}`)
  }
})

t.test('header cert: RFC 9440 Client-Cert-Chain, comma-separated byte sequences of DER', async (t) => {
  const inter = issue(ca, { cn: 'Header Intermediate', ca: true })
  const two = parseHeaderChain(`:${inter.der.toString('base64')}:, :${ca.der.toString('base64')}:`)
  t.ok(two.ok && two.ders.length === 2 && two.ders[0]!.equals(inter.der) && two.ders[1]!.equals(ca.der), 'two certificates, in order')
  const params = parseHeaderChain(`:${inter.der.toString('base64')}:;a=1`)
  t.ok(params.ok && params.ders.length === 1, 'member parameters are ignored (RFC 8941 lists)')
  const cases: [string, unknown, RegExp][] = [
    ['sent twice', ['a', 'b'], /more than once/],
    ['empty', '', /empty/],
    ['a member that is not a byte sequence', `:${inter.der.toString('base64')}:, ${b64}`, /member 2 is not a byte sequence/],
    ['a member that is not a certificate', `:${inter.der.toString('base64')}:, :AAAA:`, /member 2: not a DER certificate/],
    ['an empty member', `:${inter.der.toString('base64')}:,,`, /member 2 is empty/],
    ['too many members', Array(11).fill(`:${inter.der.toString('base64')}:`).join(','), /more than 10 certificates/],
  ]
  for (const [name, value, re] of cases) {
    const x = parseHeaderChain(value)
    t.match(x.ok ? 'accepted' : x.error, re, `${name} → ${re}`)
  }
})
