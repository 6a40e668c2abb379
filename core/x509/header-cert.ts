/**
 * Pure: the client certificate a TLS-terminating proxy passed in a header. Accepted forms:
 * base64 of DER (Cloudflare, Traefik without delimiters), base64 of PEM, URL-encoded PEM
 * (nginx's `$ssl_client_escaped_cert`, AWS ALB, Kong's `url_encoded`), PEM whose newlines
 * became spaces or tabs, Envoy's `x-forwarded-client-cert` with one element and a `Cert=`
 * field, and RFC 9440's `Client-Cert` (a structured-field byte sequence `:BASE64DER:`). Exactly
 * one certificate is accepted: a chain is refused rather than guessed at; intermediates come in
 * their own header (RFC 9440's `Client-Cert-Chain`, parseHeaderChain).
 */
import { X509Certificate } from 'node:crypto'
import { blockDer, pemBlocks } from './pem.js'

/**
 * A certificate from a header: its DER and the parsed certificate (node's X509Certificate costs
 * about 0.4 ms to build with OpenSSL 3.0 here, so callers reuse this one), or what was wrong.
 */
export type HeaderCertResult =
  | { readonly ok: true; readonly der: Buffer; readonly x509: X509Certificate }
  | { readonly ok: false; readonly error: string }

/** Longest header value accepted (characters); a client certificate is 1–3 KB. */
export const MAX_HEADER_CERT = 16384

const XFCC_KEY = /^(?:by|hash|cert|chain|subject|uri|dns)=/i
const B64 = /^[A-Za-z0-9+/]*={0,2}$/
const B64URL = /^[A-Za-z0-9_-]*={0,2}$/

const fail = (error: string): HeaderCertResult => ({ ok: false, error })

/** Splits Envoy's XFCC value into elements of key=value pairs, honouring quotes. */
function parseXfcc(s: string): Map<string, string>[] | string {
  const elements: Map<string, string>[] = []
  let pairs = new Map<string, string>()
  let i = 0
  for (;;) {
    const eq = s.indexOf('=', i)
    if (eq < 0) return 'x-forwarded-client-cert: expected key=value'
    const key = s.slice(i, eq).trim().toLowerCase()
    i = eq + 1
    let value = ''
    if (s[i] === '"') {
      i++
      for (;;) {
        const c = s[i]
        if (c === undefined) return 'x-forwarded-client-cert: unterminated quoted value'
        if (c === '"') break
        if (c === '\\' && i + 1 < s.length) i++
        value += s[i]
        i++
      }
      i++
    } else {
      while (i < s.length && s[i] !== ';' && s[i] !== ',') value += s[i++]
    }
    pairs.set(key, value.trim())
    while (s[i] === ' ' || s[i] === '\t') i++
    const sep = s[i]
    if (sep === undefined) break
    if (sep !== ';' && sep !== ',') return `x-forwarded-client-cert: unexpected "${sep}" after ${key}`
    i++
    if (sep === ',') {
      elements.push(pairs)
      pairs = new Map()
    }
  }
  elements.push(pairs)
  return elements
}

/** The DER bytes of `text` when it holds exactly one PEM certificate (not parsed), or what is wrong. */
export function pemDer(text: string): Buffer | string {
  const { blocks, unterminated } = pemBlocks(text)
  const first = blocks[0]
  if (!first) {
    if (unterminated === undefined) return 'PEM has no "-----BEGIN CERTIFICATE-----" line'
    if (unterminated !== 'CERTIFICATE') return `PEM holds a ${unterminated}, not a CERTIFICATE`
    const end = /-----END ([A-Z0-9 ]+)-----/.exec(text)?.[1]
    return end === undefined ? 'PEM has no "-----END CERTIFICATE-----" line' : `PEM block BEGIN CERTIFICATE ends with END ${end}`
  }
  if (first.label !== 'CERTIFICATE') return `PEM holds a ${first.label}, not a CERTIFICATE`
  const n = blocks.length + (unterminated === undefined ? 0 : 1)
  if (n > 1) return `PEM holds ${n} blocks; give only the client certificate, not a chain`
  const der = blockDer(first)
  return typeof der === 'string' ? 'PEM body is not base64' : der
}

/** The certificate inside `text` when it holds exactly one PEM certificate. */
function pemCertificate(text: string): HeaderCertResult {
  const der = pemDer(text)
  return typeof der === 'string' ? fail(der) : derCertificate(der)
}

/** Checks that `der` is one DER SEQUENCE with nothing after it and that it parses as X.509. */
export function derCertificate(der: Buffer): HeaderCertResult {
  const shape = derShape(der)
  if (shape !== undefined) return fail(shape)
  try {
    return { ok: true, der, x509: new X509Certificate(der) }
  } catch (e) {
    return fail(`not a valid X.509 certificate (${e instanceof Error ? e.message : String(e)})`)
  }
}

/** Why `der` is not exactly one DER SEQUENCE, or undefined when it is (no X.509 parsing). */
export function derShape(der: Buffer): string | undefined {
  if (der.length < 2 || der[0] !== 0x30) return 'not a DER certificate (it does not start with a SEQUENCE)'
  let len = der[1] as number
  let off = 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || der.length < 2 + n) return 'not a DER certificate (bad length)'
    len = 0
    for (let k = 0; k < n; k++) len = len * 256 + (der[2 + k] as number)
    off = 2 + n
  }
  if (off + len > der.length) return `DER certificate is truncated (${der.length} of ${off + len} bytes)`
  if (off + len < der.length) return `${der.length - off - len} bytes follow the DER certificate`
  return undefined
}

/** Decodes base64 (standard or URL-safe, padding optional) or says where it stops being base64. */
export function decodeBase64(s: string): Buffer | string {
  const compact = s.replace(/\s+/g, '')
  if (compact.includes(',')) return 'holds several comma-separated values; send only the client certificate'
  if (!B64.test(compact) && !B64URL.test(compact)) {
    const bad = /[^A-Za-z0-9+/=_-]/.exec(compact)
    return bad ? `is neither PEM nor base64 (character ${JSON.stringify(bad[0])} at position ${bad.index + 1})` : 'is not valid base64 (misplaced "=" or mixed alphabets)'
  }
  if (compact.replace(/=+$/, '').length % 4 === 1) return 'is not valid base64 (its length is impossible)'
  return Buffer.from(compact, B64.test(compact) ? 'base64' : 'base64url')
}

/** Most certificates accepted in a chain header (RFC 9440 `Client-Cert-Chain`). */
export const MAX_CHAIN = 10

/**
 * The bytes of an RFC 8941 byte sequence (`:base64:`, the standard alphabet, parameters after it
 * ignored), or what is wrong with it, worded to follow "the header". `s` starts with ":".
 */
function byteSequence(s: string): Buffer | string {
  const end = s.indexOf(':', 1)
  if (end < 0) return 'is a byte sequence without its closing ":"'
  const rest = s.slice(end + 1).trim()
  if (rest.startsWith(',')) return 'holds more than one byte sequence; send only the client certificate (intermediates go in the -Chain header)'
  if (rest !== '' && !rest.startsWith(';')) return `has ${JSON.stringify(rest.slice(0, 20))} after its byte sequence`
  const body = s.slice(1, end)
  if (body === '') return 'is an empty byte sequence'
  if (!B64.test(body) || body.replace(/=+$/, '').length % 4 === 1) return 'is a byte sequence that is not base64 (RFC 8941: the standard alphabet)'
  return Buffer.from(body, 'base64')
}

/** Certificates from a chain header, in the order sent, or what was wrong. */
export type HeaderChainResult = { readonly ok: true; readonly ders: readonly Buffer[] } | { readonly ok: false; readonly error: string }

/**
 * Parses RFC 9440's `Client-Cert-Chain`: a list of byte sequences, each the DER of one
 * certificate (framed as DER here; chain building parses them). Never throws.
 */
export function parseHeaderChain(value: unknown, max: number = MAX_HEADER_CERT * 4): HeaderChainResult {
  const no = (error: string): HeaderChainResult => ({ ok: false, error })
  if (Array.isArray(value)) return no('the header was sent more than once')
  if (typeof value !== 'string') return no('the header is missing')
  const s = value.trim()
  if (s === '') return no('the header is empty')
  if (s.length > max) return no(`the header is longer than ${max} characters`)
  // base64 has no comma: the list splits on every one
  const members = s.split(',')
  if (members.length > MAX_CHAIN) return no(`the header holds more than ${MAX_CHAIN} certificates`)
  const ders: Buffer[] = []
  for (const [i, raw] of members.entries()) {
    const m = raw.trim()
    if (m === '') return no(`member ${i + 1} is empty`)
    if (!m.startsWith(':')) return no(`member ${i + 1} is not a byte sequence (:base64 of DER:)`)
    const der = byteSequence(m)
    if (typeof der === 'string') return no(`member ${i + 1} ${der}`)
    const shape = derShape(der)
    if (shape !== undefined) return no(`member ${i + 1}: ${shape}`)
    ders.push(der)
  }
  return { ok: true, ders }
}

/** Parses a certificate header value into DER; never throws. */
export function parseHeaderCert(value: unknown, max: number = MAX_HEADER_CERT): HeaderCertResult {
  if (Array.isArray(value)) return fail('the header was sent more than once')
  if (typeof value !== 'string') return fail('the header is missing')
  let s = value.trim()
  if (s === '') return fail('the header is empty')
  if (s.length > max) return fail(`the header is longer than ${max} characters`)
  try {
    if (s.startsWith(':')) {
      const der = byteSequence(s)
      return typeof der === 'string' ? fail(`the header ${der}`) : derCertificate(der)
    }
    if (XFCC_KEY.test(s)) {
      const elements = parseXfcc(s)
      if (typeof elements === 'string') return fail(elements)
      if (elements.length > 1) return fail(`x-forwarded-client-cert holds ${elements.length} elements; only one is accepted`)
      const cert = elements[0]?.get('cert')
      if (cert === undefined || cert === '') return fail('x-forwarded-client-cert has no Cert field')
      s = cert
    }
    if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1).trim()
    if (s.includes('%')) {
      try {
        s = decodeURIComponent(s)
      } catch {
        return fail('is not valid URL-encoding')
      }
    }
    if (s.includes('-----BEGIN')) return pemCertificate(s)
    const bytes = decodeBase64(s)
    if (typeof bytes === 'string') return fail(`the header ${bytes}`)
    if (bytes.length === 0) return fail('the header is empty')
    if (bytes.subarray(0, 10).toString('latin1') === '-----BEGIN') return pemCertificate(bytes.toString('latin1'))
    return derCertificate(bytes)
  } catch (e) {
    return fail(`cannot be read (${e instanceof Error ? e.message : String(e)})`)
  }
}
