/**
 * One PEM certificate → the facts the expiry report and gauge need: the subject as RFC 2253
 * (exactly as nginx's $ssl_client_s_dn prints it, through core/tls/dn.ts) and the not-after
 * time. Shared by `bin/apisix certs` and the workers' expiry gauge.
 *
 * A short DER walk, not the request path's buildClientCertFacts: no fingerprint, serial, issuer
 * text or time strings (a gauge over 100k ssl objects reads every certificate at start-up). It
 * accepts exactly the certificates buildClientCertFacts accepts (t/unit/cert-parse.test.ts).
 */
import type { ParsedCert } from './cert-records.js'
import { readTime } from './tls/client-cert.js'
import { children, DerError, expectTag, readDer, TAG } from './tls/der.js'
import { formatRfc2253, readName } from './tls/dn.js'

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
  try {
    return readSubjectAndExpiry(der)
  } catch (err) {
    if (err instanceof DerError) throw new Error('not a DER certificate')
    throw err
  }
}

/** Subject and not-after of a DER certificate; throws DerError where buildClientCertFacts gives undefined. */
function readSubjectAndExpiry(der: Uint8Array): ParsedCert {
  const cert = expectTag(readDer(der, 0), TAG.SEQUENCE, 'Certificate')
  if (cert.end !== der.length) throw new DerError('bytes after the certificate')
  const tbs = expectTag(children(der, cert)[0], TAG.SEQUENCE, 'TBSCertificate')
  const fields = children(der, tbs)
  // version [0] EXPLICIT is optional (absent = v1)
  const at = fields[0]?.cls === 2 && fields[0].tag === 0 ? 1 : 0
  expectTag(fields[at], TAG.INTEGER, 'serialNumber')
  readName(der, fields[at + 2] ?? missing('issuer'))
  const validity = children(der, expectTag(fields[at + 3], TAG.SEQUENCE, 'validity'))
  const subject = readName(der, fields[at + 4] ?? missing('subject'))
  readTime(der, validity[0])
  return { subject: formatRfc2253(subject) ?? '', notAfter: new Date(readTime(der, validity[1])) }
}

const missing = (what: string): never => {
  throw new DerError(`missing ${what}`)
}
