import { createHash } from 'node:crypto'
import type { ClientCert } from '../plugins/types.js'
import { children, DerError, expectTag, readDer, TAG, type DerNode } from './der.js'
import { formatRfc2253, readName, type DnAttribute } from './name.js'
import { pemBlocksOf, toPem } from './pem.js'

/** A client certificate's facts in nginx's variable formats (spec §7). */
export interface ClientCertFacts {
  /** `$ssl_client_fingerprint`: SHA-1 of the DER, lower-case hex, no separators. */
  readonly fingerprint: string
  /** SHA-256 of the DER, lower-case hex (for mtls-auth and logs). */
  readonly sha256: string
  /** `$ssl_client_serial`: upper-case hex as OpenSSL's i2a_ASN1_INTEGER prints it. */
  readonly serial: string
  /** `$ssl_client_s_dn`: subject, RFC 2253 as OpenSSL prints it ('' where OpenSSL cannot). */
  readonly subjectDn: string
  /** `$ssl_client_i_dn`: issuer, same format. */
  readonly issuerDn: string
  /** The subject and issuer attributes in certificate order (for allow-lists). */
  readonly subject: readonly DnAttribute[]
  readonly issuer: readonly DnAttribute[]
  /** `$ssl_client_raw_cert`: PEM with 64-column lines, ending in a newline. */
  readonly pem: string
  /** `$ssl_client_escaped_cert`: the PEM URL-encoded as nginx's ngx_escape_uri (component) does. */
  readonly escapedPem: string
  /** Validity bounds, epoch milliseconds. */
  readonly notBefore: number
  readonly notAfter: number
  /** `$ssl_client_v_start` / `$ssl_client_v_end`: OpenSSL's ASN1_TIME_print text. */
  readonly vStart: string
  readonly vEnd: string
}

/**
 * Reads a DER certificate into nginx's facts. Undefined when the bytes are not a certificate
 * this reader can walk (callers then treat the certificate as absent from the variables).
 */
export function buildClientCertFacts(der: Uint8Array): ClientCertFacts | undefined {
  try {
    return read(der)
  } catch (err) {
    if (err instanceof DerError) return undefined
    throw err
  }
}

/** The fields of a TBSCertificate this project reads, as DER nodes of `der`. */
export interface TbsFields {
  readonly serial: DerNode
  readonly issuer: DerNode
  readonly validity: readonly DerNode[]
  readonly subject: DerNode
  /** the `[3] EXPLICIT Extensions` SEQUENCE; undefined for a certificate without extensions */
  readonly extensions: DerNode | undefined
  /** the whole TBSCertificate (what the signature covers) */
  readonly tbs: DerNode
}

/** The one TBSCertificate walk (certificate facts, the expiry report, path validation). Throws DerError. */
export function readTbs(der: Uint8Array): TbsFields {
  const cert = expectTag(readDer(der, 0), TAG.SEQUENCE, 'Certificate')
  if (cert.end !== der.length) throw new DerError('bytes after the certificate')
  const tbs = expectTag(children(der, cert)[0], TAG.SEQUENCE, 'TBSCertificate')
  const fields = children(der, tbs)
  // version [0] EXPLICIT is optional (absent = v1)
  const at = fields[0]?.cls === 2 && fields[0].tag === 0 ? 1 : 0
  const serial = expectTag(fields[at], TAG.INTEGER, 'serialNumber')
  const validity = children(der, expectTag(fields[at + 3], TAG.SEQUENCE, 'validity'))
  const ext = fields.slice(at + 6).find((f) => f.cls === 2 && f.tag === 3)
  const extensions = ext ? expectTag(readDer(der, ext.contentStart, ext.end), TAG.SEQUENCE, 'Extensions') : undefined
  return { serial, issuer: fields[at + 2] ?? missing('issuer'), validity, subject: fields[at + 4] ?? missing('subject'), extensions, tbs }
}

function read(der: Uint8Array): ClientCertFacts {
  const f = readTbs(der)
  const serial = f.serial
  const issuer = readName(der, f.issuer)
  const subject = readName(der, f.subject)
  const notBefore = readTime(der, f.validity[0])
  const notAfter = readTime(der, f.validity[1])
  // The PEM forms and SHA-256 are computed on first use: most requests never read them.
  let pem: string | undefined
  let escaped: string | undefined
  let sha256: string | undefined
  return {
    fingerprint: createHash('sha1').update(der).digest('hex'),
    get sha256() {
      return (sha256 ??= createHash('sha256').update(der).digest('hex'))
    },
    serial: formatSerial(der.subarray(serial.contentStart, serial.end)),
    subjectDn: formatRfc2253(subject) ?? '',
    issuerDn: formatRfc2253(issuer) ?? '',
    subject,
    issuer,
    get pem() {
      return (pem ??= toPem(der))
    },
    get escapedPem() {
      return (escaped ??= escapeUriComponent(this.pem))
    },
    notBefore,
    notAfter,
    vStart: formatAsn1Time(notBefore),
    vEnd: formatAsn1Time(notAfter),
  }
}

const missing = (what: string): never => {
  throw new DerError(`missing ${what}`)
}

const HEX = '0123456789ABCDEF'

/**
 * An INTEGER's content octets as OpenSSL's i2a_ASN1_INTEGER prints them: upper-case hex of the
 * magnitude (sign padding dropped), `-` for negatives, `00` for zero, and a backslash-newline
 * after every 35 bytes.
 */
export function formatSerial(content: Uint8Array): string {
  if (content.length === 0) return '00'
  const negative = (content[0]! & 0x80) !== 0
  let mag = Array.from(content)
  if (negative) {
    // two's complement → magnitude
    mag = mag.map((b) => ~b & 0xff)
    for (let i = mag.length - 1; i >= 0; i--) {
      mag[i] = (mag[i]! + 1) & 0xff
      if (mag[i] !== 0) break
    }
  }
  while (mag.length > 1 && mag[0] === 0) mag.shift()
  let out = negative ? '-' : ''
  mag.forEach((b, i) => {
    if (i !== 0 && i % 35 === 0) out += '\\\n'
    out += HEX[b >> 4]! + HEX[b & 15]!
  })
  return out
}

/** A validity Time as epoch ms; NaN for a form DER does not allow (fractions, no seconds, offsets). */
export function readTime(der: Uint8Array, node: DerNode | undefined): number {
  if (!node || node.cls !== 0 || (node.tag !== TAG.UTC_TIME && node.tag !== TAG.GENERALIZED_TIME)) throw new DerError('expected a Time')
  const s = String.fromCharCode(...der.subarray(node.contentStart, node.end))
  const m = node.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  if (!m) return Number.NaN
  let year = Number(m[1])
  if (node.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900 // RFC 5280 §4.1.2.5.1
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const two = (n: number): string => String(n).padStart(2, '0')

/** OpenSSL's ASN1_TIME_print text for an instant: `Dec  1 10:19:57 2022 GMT` ('' for NaN). */
export function formatAsn1Time(ms: number): string {
  if (Number.isNaN(ms)) return ''
  const d = new Date(ms)
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`
}

/** `$ssl_client_v_remain`: whole days from `nowMs` until `notAfterMs`, 0 once expired. */
export function daysRemaining(notAfterMs: number, nowMs: number): number {
  return notAfterMs <= nowMs ? 0 : Math.floor((notAfterMs - nowMs) / 86_400_000)
}

// ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT) keeps only these bytes; every other becomes %XX.
const uriComponentTable: readonly string[] = Array.from({ length: 256 }, (_, b) => {
  const keep = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e
  return keep ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`
})

/**
 * nginx's ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT): every byte except `A-Z a-z 0-9 - . _ ~`
 * becomes `%XX` (upper-case hex). Unlike encodeURIComponent, `! ' ( ) *` are escaped too.
 */
export function escapeUriComponent(s: string): string {
  const bytes = Buffer.from(s, 'utf8')
  const parts = new Array<string>(bytes.length)
  for (let i = 0; i < bytes.length; i++) parts[i] = uriComponentTable[bytes[i]!]!
  return parts.join('')
}

/** What a failed or absent client certificate counts as in `apisix_client_cert_failures_total`. */
export type CertFailureReason = 'no_certificate' | 'untrusted' | 'expired' | 'depth' | 'revoked' | 'crl_expired'

// Node's authorizationError codes (OpenSSL X509_V_ERR_* names) → X509_verify_cert_error_string
// text of OpenSSL 3, which nginx puts after `FAILED:` in $ssl_client_verify.
const verifyText: Readonly<Record<string, string>> = {
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_CRL: 'unable to get certificate CRL',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: "unable to decrypt certificate's signature",
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: "unable to decrypt CRL's signature",
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: 'unable to decode issuer public key',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CRL_SIGNATURE_FAILURE: 'CRL signature failure',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CRL_NOT_YET_VALID: 'CRL is not yet valid',
  CRL_HAS_EXPIRED: 'CRL has expired',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: "format error in certificate's notBefore field",
  ERROR_IN_CERT_NOT_AFTER_FIELD: "format error in certificate's notAfter field",
  ERROR_IN_CRL_LAST_UPDATE_FIELD: "format error in CRL's lastUpdate field",
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: "format error in CRL's nextUpdate field",
  OUT_OF_MEM: 'out of memory',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  CERT_CHAIN_TOO_LONG: 'certificate chain too long',
  CERT_REVOKED: 'certificate revoked',
  INVALID_CA: 'invalid CA certificate',
  PATH_LENGTH_EXCEEDED: 'path length constraint exceeded',
  INVALID_PURPOSE: 'unsuitable certificate purpose',
  CERT_UNTRUSTED: 'certificate not trusted',
  CERT_REJECTED: 'certificate rejected',
  HOSTNAME_MISMATCH: 'hostname mismatch',
  UNHANDLED_CRITICAL_EXTENSION: 'unhandled critical extension',
  PERMITTED_VIOLATION: 'permitted subtree violation',
  EXCLUDED_VIOLATION: 'excluded subtree violation',
  UNSPECIFIED: 'unspecified certificate verification error',
}

/** OpenSSL's text for a Node authorizationError code; unknown codes count as unspecified. */
export function verifyErrorText(code: string): string {
  return verifyText[code] ?? verifyText['UNSPECIFIED']!
}

/**
 * `$ssl_client_verify` in nginx's words: `NONE` without a certificate (also when none was
 * asked for), `SUCCESS` when it verified, else `FAILED:<OpenSSL reason>`. A verified chain
 * past `client.depth` is reported by the caller as `CERT_CHAIN_TOO_LONG`, as OpenSSL would.
 */
export function verifyString(authorized: boolean, authorizationError: string | undefined, hadCert: boolean): string {
  if (!hadCert) return 'NONE'
  if (authorized && authorizationError === undefined) return 'SUCCESS'
  return `FAILED:${verifyErrorText(authorizationError ?? 'UNSPECIFIED')}`
}

/** The metrics reason of a failed verification; undefined when the certificate verified. */
export function reasonCategory(authorized: boolean, authorizationError: string | undefined, hadCert: boolean): CertFailureReason | undefined {
  if (!hadCert) return 'no_certificate'
  if (authorized && authorizationError === undefined) return undefined
  switch (authorizationError) {
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return 'expired'
    case 'CERT_CHAIN_TOO_LONG':
    case 'PATH_LENGTH_EXCEEDED':
      return 'depth'
    case 'CERT_REVOKED':
      return 'revoked'
    case 'CRL_HAS_EXPIRED':
      return 'crl_expired'
    default:
      return 'untrusted'
  }
}

/** Subject (RFC 2253) and not-after of a certificate: what the expiry report and gauge need. */
export interface ParsedCert {
  readonly subject: string
  readonly notAfter: Date
}

/**
 * Parses one PEM certificate block (the first, when there are several) for the expiry report;
 * throws when it is not a certificate (the records module turns the throw into a skipped record).
 * A short read, not buildClientCertFacts: no fingerprint, serial or time strings (a gauge over
 * 100k ssl objects reads every certificate at start-up); it accepts exactly what that accepts.
 */
export function parseCertPem(pem: string): ParsedCert {
  const block = pemBlocksOf(pem, 'CERTIFICATE')[0]
  if (block === undefined) throw new Error('no PEM certificate block')
  const der = Buffer.from(block.body, 'base64')
  try {
    const f = readTbs(der)
    readName(der, f.issuer)
    const subject = readName(der, f.subject)
    readTime(der, f.validity[0])
    return { subject: formatRfc2253(subject) ?? '', notAfter: new Date(readTime(der, f.validity[1])) }
  } catch (err) {
    if (err instanceof DerError) throw new Error('not a DER certificate')
    throw err
  }
}

/** The handshake's verdict on a client certificate under an ssl object's `client` rules. */
export interface ClientVerdict {
  /** verified, and within `client.depth` */
  readonly authorized: boolean
  /** `$ssl_client_verify` */
  readonly verify: string
  /** the failure category; undefined when the certificate verified */
  readonly reason: CertFailureReason | undefined
  /** true: refused at the handshake (no `skip_mtls_uri_regex`, so no request is ever read) */
  readonly refuse: boolean
}

/**
 * What the TLS front decides once the TLS stack has verified (or not) the client's chain: a
 * verified chain with more intermediates than `client.depth` fails as OpenSSL's verify depth
 * would (CERT_CHAIN_TOO_LONG); any failure refuses the handshake unless the object has a skip
 * list, in which case the request pipeline judges each request (mtls-gate.ts). `intermediates`
 * is undefined when it was not counted (no certificate, or not verified).
 */
export function clientVerdict(
  rules: { readonly depth: number; readonly skip: readonly unknown[] },
  hadCert: boolean,
  authorized: boolean,
  error: string | undefined,
  intermediates: number | undefined,
): ClientVerdict {
  if (hadCert && authorized && intermediates !== undefined && intermediates > rules.depth) {
    authorized = false
    error = 'CERT_CHAIN_TOO_LONG'
  }
  const reason = reasonCategory(authorized, error, hadCert)
  return { authorized, verify: verifyString(authorized, error, hadCert), reason, refuse: reason !== undefined && rules.skip.length === 0 }
}

/** A client certificate as the pipeline reads it (plugins, variables); the SHA-256 is computed on first use. */
export function clientCertOf(der: Buffer, f: ClientCertFacts, verified: boolean, verify: string): ClientCert {
  return {
    verified,
    source: 'tls',
    der,
    verify,
    fingerprint: f.fingerprint,
    serial: f.serial,
    subjectDn: f.subjectDn,
    issuerDn: f.issuerDn,
    get sha256() {
      return f.sha256
    },
    // mtls-auth re-checks the dates per request (a keep-alive connection can outlive them)
    notBefore: f.notBefore,
    notAfter: f.notAfter,
  }
}
