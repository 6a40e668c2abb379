/**
 * Pure: which consumer a client certificate identifies (mtls-auth). Consumers carry
 * `plugins["mtls-auth"].certificates`, each PEM or base64 of DER; a certificate is known by the
 * SHA-256 of its DER (lower-case hex, as ClientCert.sha256). The index is built once per
 * generation; the admin uses the same decoding to refuse a certificate another consumer owns.
 */
import { createHash } from 'node:crypto'
import { decodeBase64, derCertificate, derShape, pemDer } from '../x509/header-cert.js'

/** A consumer as far as this index reads it. */
export interface CertConsumer {
  readonly username: string
  readonly plugins?: Readonly<Record<string, unknown>> | undefined
}

/** A certificate entry decoded: its DER and SHA-256, or what is wrong with it. */
export type NormalizedCert = { readonly ok: true; readonly der: Buffer; readonly sha256: string } | { readonly ok: false; readonly error: string }

/** Certificate hash → username, plus what could not be indexed (for the log). */
export interface ConsumerIndex {
  readonly byCert: ReadonlyMap<string, string>
  /** the same certificate under several consumers: the first username in sort order keeps it */
  readonly conflicts: readonly { readonly sha256: string; readonly usernames: readonly string[] }[]
  /** entries that are not certificates: never match */
  readonly invalid: readonly { readonly username: string; readonly index: number; readonly error: string }[]
}

const PLUGIN = 'mtls-auth'

/** SHA-256 of a DER certificate, lower-case hex. */
export const certificateSha256 = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex')

/** The raw `certificates` list of a consumer's mtls-auth conf ([] when absent or malformed). */
export function consumerCertificates(c: CertConsumer): readonly unknown[] {
  const conf = c.plugins?.[PLUGIN]
  if (typeof conf !== 'object' || conf === null) return []
  const list = (conf as { certificates?: unknown }).certificates
  return Array.isArray(list) ? list : []
}

const disabled = (c: CertConsumer): boolean => {
  const conf = c.plugins?.[PLUGIN] as { _meta?: { disable?: unknown } } | undefined
  return conf?._meta?.disable === true
}

function decode(s: unknown, parse: boolean): NormalizedCert {
  if (typeof s !== 'string') return { ok: false, error: 'a certificate must be a string (PEM or base64 of DER)' }
  const text = s.trim()
  if (text === '') return { ok: false, error: 'the certificate is empty' }
  const der = text.includes('-----BEGIN') ? pemDer(text) : decodeBase64(text)
  if (typeof der === 'string') return { ok: false, error: der.startsWith('PEM') ? der : `the certificate ${der}` }
  if (parse) {
    const r = derCertificate(der)
    if (!r.ok) return { ok: false, error: r.error }
  } else {
    const why = derShape(der)
    if (why !== undefined) return { ok: false, error: why }
  }
  return { ok: true, der, sha256: certificateSha256(der) }
}

/**
 * Decodes one certificate entry and checks its DER framing without an X.509 parse (cheap enough
 * for the data plane's decoder on a bulk load): the DER and its SHA-256, or what is wrong.
 */
export const decodeCertificate = (s: unknown): NormalizedCert => decode(s, false)

/**
 * Decodes and checks one certificate entry (PEM with exactly one certificate, or base64 of
 * DER) for the admin: the DER, its SHA-256, or a message saying what is wrong.
 */
export const normalizeCertificate = (s: unknown): NormalizedCert => decode(s, true)

/**
 * Builds the certificate → username index. Entries are decoded without a full X.509 parse
 * (the admin checked them); `cache` (a WeakMap the caller keeps across generations) maps an
 * unchanged consumer object to its hashes so a new generation does not decode it again.
 */
export function buildConsumerIndex(consumers: Iterable<CertConsumer>, cache?: WeakMap<object, readonly NormalizedCert[]>): ConsumerIndex {
  const owners = new Map<string, string[]>()
  const invalid: { username: string; index: number; error: string }[] = []
  for (const c of consumers) {
    if (disabled(c)) continue
    let certs = cache?.get(c)
    if (!certs) {
      certs = consumerCertificates(c).map((s) => decode(s, false))
      cache?.set(c, certs)
    }
    certs.forEach((r, index) => {
      if (!r.ok) return void invalid.push({ username: c.username, index, error: r.error })
      const list = owners.get(r.sha256)
      if (!list) owners.set(r.sha256, [c.username])
      else if (!list.includes(c.username)) list.push(c.username)
    })
  }
  const byCert = new Map<string, string>()
  const conflicts: { sha256: string; usernames: string[] }[] = []
  for (const [sha256, usernames] of owners) {
    if (usernames.length > 1) {
      usernames.sort()
      conflicts.push({ sha256, usernames })
    }
    byCert.set(sha256, usernames[0] as string)
  }
  return { byCert, conflicts, invalid }
}

/**
 * The username of the first consumer (other than `except`) that already carries `cert`,
 * or undefined. `cert` is an entry as a consumer gives it, or a SHA-256 hex.
 */
export function findCertificateOwner(consumers: Iterable<CertConsumer>, cert: string, except?: string): string | undefined {
  const sha256 = /^[0-9a-f]{64}$/.test(cert) ? cert : decode(cert, false)
  const want = typeof sha256 === 'string' ? sha256 : sha256.ok ? sha256.sha256 : undefined
  if (want === undefined) return undefined
  for (const c of consumers) {
    if (c.username === except) continue
    for (const s of consumerCertificates(c)) {
      const r = decode(s, false)
      if (r.ok && r.sha256 === want) return c.username
    }
  }
  return undefined
}

/**
 * The admin's check of a consumer's mtls-auth certificates against the other consumers:
 * each must be a certificate, appear once, and belong to no other consumer. Returns a message
 * naming the entry (and the owner), or undefined when all is well.
 */
export function checkConsumerCertificates(username: string, certificates: readonly unknown[], consumers: Iterable<CertConsumer>): string | undefined {
  const seen = new Map<string, number>()
  for (const [index, s] of certificates.entries()) {
    const r = normalizeCertificate(s)
    if (!r.ok) return `certificates[${index}]: ${r.error}`
    const before = seen.get(r.sha256)
    if (before !== undefined) return `certificates[${index}] is the same certificate as certificates[${before}]`
    seen.set(r.sha256, index)
  }
  for (const c of consumers) {
    if (c.username === username) continue
    for (const s of consumerCertificates(c)) {
      const r = decode(s, false)
      if (!r.ok) continue
      const index = seen.get(r.sha256)
      if (index !== undefined) return `certificates[${index}] already belongs to consumer ${JSON.stringify(c.username)}`
    }
  }
  return undefined
}
