/**
 * One PEM certificate → the facts the expiry report and gauge need: the subject as RFC 2253
 * (exactly as nginx's $ssl_client_s_dn prints it, through core/tls/dn.ts) and the not-after
 * time. Shared by `bin/apisix certs` and the workers' expiry gauge.
 */
import type { ParsedCert } from './cert-records.js'
import { buildClientCertFacts } from './tls/client-cert.js'

const BEGIN = '-----BEGIN CERTIFICATE-----'
const END = '-----END CERTIFICATE-----'

/**
 * Parses one PEM certificate block (the first, when there are several); throws when it is not a
 * certificate (certificateRecords turns the throw into a skipped record).
 */
export function parseCertPem(pem: string): ParsedCert {
  const start = pem.indexOf(BEGIN)
  const end = start < 0 ? -1 : pem.indexOf(END, start + BEGIN.length)
  if (end < 0) throw new Error('no PEM certificate block')
  const der = Buffer.from(pem.slice(start + BEGIN.length, end), 'base64')
  const facts = buildClientCertFacts(der)
  if (facts === undefined) throw new Error('not a DER certificate')
  return { subject: facts.subjectDn, notAfter: new Date(facts.notAfter) }
}
