/**
 * One PEM certificate → the facts the expiry report and gauge need: the subject as RFC 2253
 * and the not-after time. Shared by `bin/apisix certs` and the workers' expiry gauge.
 */
import { X509Certificate } from 'node:crypto'
import type { ParsedCert } from './cert-records.js'

/**
 * Parses one PEM certificate block; throws when it is not a certificate (certificateRecords
 * turns the throw into a skipped record).
 */
export function parseCertPem(pem: string): ParsedCert {
  const x = new X509Certificate(pem)
  return { subject: rfc2253FromNodeSubject(x.subject), notAfter: new Date(Date.parse(x.validTo)) }
}

/**
 * Node's `X509Certificate.subject` (OpenSSL's multi-line form, certificate order, values already
 * escaped as RFC 2253 asks) → RFC 2253 as nginx's $ssl_client_s_dn prints it: RDNs in reverse
 * order joined by `,`, `+` inside a multi-valued RDN, bytes above 0x7f as `\XX`.
 * A minimal converter until core/tls/dn.ts (DER-exact, OpenSSL-identical) is on main.
 */
export function rfc2253FromNodeSubject(subject: string): string {
  if (subject === '') return ''
  return subject
    .split('\n')
    .reverse()
    .map((rdn) => rdn.split(' + ').join('+'))
    .join(',')
    .replace(/[^\x00-\x7f]/gu, (c) =>
      Array.from(Buffer.from(c, 'utf8'), (b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
    )
}
