import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { normalizeSni } from '../net/hostname.js'
import { pemBlocks } from './pem.js'

export { certBlocks } from './pem.js'

/**
 * Server-certificate checks shared by the admin (checks at write time), the TLS engine and the ops tools
 * (expiry reports). They never throw: a value that does not parse is `undefined`.
 */

/**
 * Parses a certificate chain (leaf first). Like nginx's parse_pem_cert, the first certificate
 * must parse; so must every further block. Returns undefined otherwise.
 */
export function parseCertChain(pem: string): X509Certificate[] | undefined {
  const { blocks, unterminated } = pemBlocks(pem)
  // an unterminated block after good ones (OpenSSL: "bad end line") refuses the whole text
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE')
  if (certs.length === 0 || unterminated !== undefined) return undefined
  const out: X509Certificate[] = []
  for (const b of certs) {
    try {
      out.push(new X509Certificate(b.text))
    } catch {
      return undefined
    }
  }
  return out
}

/** Parses an unencrypted PEM private key (PKCS#1, SEC1, PKCS#8); undefined otherwise. */
export function parsePrivateKey(pem: string): KeyObject | undefined {
  if (!pem.includes('-----BEGIN')) return undefined
  try {
    const key = createPrivateKey({ key: pem, format: 'pem' })
    return key.type === 'private' ? key : undefined
  } catch {
    return undefined
  }
}

/** True when `key` is the private half of `cert`'s public key. */
export function keyMatchesCert(key: KeyObject, cert: X509Certificate): boolean {
  try {
    return cert.checkPrivateKey(key)
  } catch {
    return false
  }
}

/** The certificate's not-after, epoch milliseconds. */
export const notAfterMs = (cert: X509Certificate): number => Date.parse(cert.validTo)

/** The certificate's not-before, epoch milliseconds. */
export const notBeforeMs = (cert: X509Certificate): number => Date.parse(cert.validFrom)

/** The DNS names of the subjectAltName extension, lower-cased. */
export function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName
  if (!san) return []
  const out: string[] = []
  for (const part of san.split(', ')) {
    if (part.startsWith('DNS:')) out.push(part.slice(4).toLowerCase())
  }
  return out
}

export { normalizeSni }

/**
 * True when the certificate serves `sni` without a name mismatch: an exact SAN, a SAN wildcard
 * covering one label, or (for a wildcard SNI) the same wildcard among the SANs.
 */
export function certCoversSni(cert: X509Certificate, sni: string): boolean {
  const name = normalizeSni(sni)
  if (name === '*') return false
  if (name.startsWith('*.')) return dnsNames(cert).includes(name)
  return cert.checkHost(name) !== undefined
}

/** The SNIs among `snis` that no certificate of `certs` covers. */
export function uncoveredSnis(certs: readonly X509Certificate[], snis: readonly string[]): string[] {
  return snis.filter((s) => !certs.some((c) => certCoversSni(c, s)))
}

/** Days from `nowMs` until the certificate expires (negative once expired), rounded down. */
export const daysLeft = (cert: X509Certificate, nowMs: number): number => Math.floor((notAfterMs(cert) - nowMs) / 86_400_000)

/** A warning when the certificate has expired or expires within `withinDays`; undefined otherwise. */
export function expiryWarning(cert: X509Certificate, nowMs: number, what: string, withinDays = 30): string | undefined {
  const end = notAfterMs(cert)
  const when = new Date(end).toISOString()
  if (end <= nowMs) return `${what} expired at ${when}`
  if (end - nowMs <= withinDays * 86_400_000) return `${what} expires at ${when} (in ${daysLeft(cert, nowMs)} days)`
  return undefined
}
