/**
 * Pure: every certificate the gateway holds (ssl objects' server certificates and client CAs,
 * consumers' mtls-auth certificates) as one flat list of records. Used by `bin/apisix certs`
 * and by the expiry gauge. The PEM parser is passed in so this module does no crypto itself.
 */
import type { ParsedCert } from './cert.js'
import { certBlocks } from './pem.js'

/** Which part of the config a certificate comes from. */
export type CertKind = 'server' | 'client-ca' | 'consumer' | 'crl'

/** One certificate: where it lives, what it is called and when it expires. */
export interface CertRecord {
  readonly kind: CertKind
  /** The ssl object's id, or the consumer's username. */
  readonly id: string
  /** The ssl object's SNIs for a server certificate; empty for the other kinds. */
  readonly names: readonly string[]
  /** Subject DN, RFC 2253. */
  readonly subject: string
  readonly notAfter: Date
}

export type { ParsedCert } from './cert.js'

/** The fields of an ssl object this module reads (APISIX's names). */
export interface SslLike {
  readonly id?: string | number | undefined
  readonly cert?: string | undefined
  readonly certs?: readonly string[] | undefined
  readonly sni?: string | undefined
  readonly snis?: readonly string[] | undefined
  readonly client?: { readonly ca?: string | undefined; readonly crl?: string | undefined } | undefined
}

/** The fields of a consumer this module reads. */
export interface ConsumerLike {
  readonly username?: string | undefined
  readonly plugins?: { readonly [name: string]: unknown } | undefined
}

/** A certificate that could not be read, and why. */
export interface SkippedCert {
  readonly kind: CertKind
  readonly id: string
  readonly reason: string
}

/** Every PEM certificate block in `text`, in order (a CA bundle may hold several). */
export const splitPemCertificates = certBlocks

/**
 * Lists every certificate of `ssls` and `consumers` in input order. A server `cert` (or
 * `certs[i]`) counts by its first block, the leaf; every block of `client.ca` is a client CA;
 * each entry of a consumer's `mtls-auth.certificates` counts by its leaf. Values that hold no
 * PEM block (for example `$secret://` references) and blocks `parse` throws on are reported
 * through `onSkip` and left out.
 */
export function certificateRecords(
  ssls: Iterable<SslLike>,
  consumers: Iterable<ConsumerLike>,
  parse: (pem: string) => ParsedCert,
  onSkip: (skipped: SkippedCert) => void = () => {},
  parseCrls?: (pem: string) => ParsedCert[],
): CertRecord[] {
  const out: CertRecord[] = []
  const add = (kind: CertKind, id: string, names: readonly string[], pem: string): void => {
    try {
      const { subject, notAfter } = parse(pem)
      out.push({ kind, id, names, subject, notAfter })
    } catch (err) {
      onSkip({ kind, id, reason: err instanceof Error ? err.message : String(err) })
    }
  }
  const leaf = (kind: CertKind, id: string, names: readonly string[], value: unknown): void => {
    const first = typeof value === 'string' ? splitPemCertificates(value)[0] : undefined
    if (first === undefined) onSkip({ kind, id, reason: 'no PEM certificate' })
    else add(kind, id, names, first)
  }
  for (const ssl of ssls) {
    const id = String(ssl.id ?? '')
    const names = ssl.snis ?? (ssl.sni === undefined || ssl.sni === '' ? [] : [ssl.sni])
    if (ssl.cert !== undefined) leaf('server', id, names, ssl.cert)
    for (const c of ssl.certs ?? []) leaf('server', id, names, c)
    const crl = ssl.client?.crl
    if (crl !== undefined && parseCrls) {
      // a CRL's row: its issuer and its nextUpdate (CONTRACT.md `certs`)
      try {
        for (const { subject, notAfter } of parseCrls(crl)) out.push({ kind: 'crl', id, names: [], subject, notAfter })
      } catch (err) {
        onSkip({ kind: 'crl', id, reason: err instanceof Error ? err.message : String(err) })
      }
    }
    const ca = ssl.client?.ca
    if (ca === undefined) continue
    const blocks = splitPemCertificates(ca)
    if (blocks.length === 0) onSkip({ kind: 'client-ca', id, reason: 'no PEM certificate' })
    for (const block of blocks) add('client-ca', id, [], block)
  }
  for (const consumer of consumers) {
    const id = consumer.username ?? ''
    const conf = consumer.plugins?.['mtls-auth'] as { certificates?: unknown } | undefined
    const certs = conf?.certificates
    if (!Array.isArray(certs)) continue
    for (const c of certs as unknown[]) leaf('consumer', id, [], c)
  }
  return out
}
