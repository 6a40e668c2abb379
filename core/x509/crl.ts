/**
 * X.509 CRLs (RFC 5280 §5): parsing with the project's DER walk, the signature check against a
 * CA, and a compiled set that answers "is this certificate revoked" in O(1) whatever the size of
 * the list (a Set of serials per issuer). Pure except for node:crypto's signature check.
 *
 * Parsed here rather than with a library (pkijs): the checks run synchronously on the request
 * path (mtls-auth's header certificates) and pkijs' are asynchronous (WebCrypto); a 100k-entry
 * CRL is one DER walk adding 100k short strings to a Set (66 ms measured in a quiet moment here,
 * up to 500 ms with the machine at load average 20; not measured against pkijs).
 */
import { verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto'
import { readTime } from './cert.js'
import { certPathFacts } from './extensions.js'
import { children, decodeOid, DerError, expectTag, readDer, TAG } from './der.js'
import { formatRfc2253, readName } from './name.js'
import { OID } from './oids.js'
import { blockDer, pemBlocks, pemBlocksOf } from './pem.js'

/** One parsed CRL. */
export interface Crl {
  /** the issuer Name's DER, as latin1 (the lookup key: a certificate's issuer field, byte for byte) */
  readonly issuerKey: string
  /** the issuer, RFC 2253 as OpenSSL prints it */
  readonly issuer: string
  readonly thisUpdate: number
  /** epoch ms; undefined when the CRL has none (it never goes stale) */
  readonly nextUpdate: number | undefined
  /** serial content octets (latin1) of every revoked certificate */
  readonly revoked: ReadonlySet<string>
  /** @internal what the signature covers, its algorithm and value */
  readonly tbs: Buffer
  readonly sigAlg: string
  readonly signature: Buffer
}

/** Reads a DER CRL; throws DerError (with what is wrong) on anything else. */
export function parseCrl(der: Buffer): Crl {
  const top = expectTag(readDer(der, 0), TAG.SEQUENCE, 'CertificateList')
  if (top.end !== der.length) throw new DerError('bytes after the CRL')
  const [tbsNode, algNode, sigNode] = children(der, top)
  const tbs = expectTag(tbsNode, TAG.SEQUENCE, 'TBSCertList')
  const alg = expectTag(children(der, expectTag(algNode, TAG.SEQUENCE, 'signatureAlgorithm'))[0], TAG.OID, 'signature algorithm')
  const sig = expectTag(sigNode, TAG.BIT_STRING, 'signatureValue')
  let i = 0
  const fields = children(der, tbs)
  if (fields[0]?.cls === 0 && fields[0].tag === TAG.INTEGER) i++ // version
  i++ // signature AlgorithmIdentifier
  const issuerNode = fields[i++] ?? missing('issuer')
  const issuer = readName(der, issuerNode)
  const thisUpdate = readTime(der, fields[i++])
  let nextUpdate: number | undefined
  const next = fields[i]
  if (next && next.cls === 0 && (next.tag === TAG.UTC_TIME || next.tag === TAG.GENERALIZED_TIME)) {
    nextUpdate = readTime(der, next)
    i++
  }
  if (Number.isNaN(thisUpdate) || (nextUpdate !== undefined && Number.isNaN(nextUpdate))) throw new DerError('a CRL time is not in DER form')
  const revoked = new Set<string>()
  const list = fields[i]
  if (list && list.cls === 0 && list.tag === TAG.SEQUENCE) {
    i++
    // one pass over the entries, no node list: a 100k-entry CRL stays one walk
    for (let p = list.contentStart; p < list.end; ) {
      const entry = readDer(der, p, list.end)
      const serial = readDer(der, entry.contentStart, entry.end)
      if (serial.cls !== 0 || serial.tag !== TAG.INTEGER) throw new DerError('a revoked entry without a serial')
      revoked.add(der.toString('latin1', serial.contentStart, serial.end))
      const rest = readDer(der, serial.end, entry.end) // revocationDate
      if (rest.end < entry.end) checkCritical(der, readDer(der, rest.end, entry.end), [OID.crlReason, OID.invalidityDate], 'a revoked entry')
      p = entry.end
    }
  }
  const ext = fields[i]
  if (ext && ext.cls === 2 && ext.tag === 0) checkCritical(der, readDer(der, ext.contentStart, ext.end), [OID.crlNumber, OID.authorityKeyIdentifier], 'the CRL')
  return {
    issuerKey: der.toString('latin1', issuerNode.start, issuerNode.end),
    issuer: formatRfc2253(issuer) ?? '',
    thisUpdate,
    nextUpdate,
    revoked,
    tbs: der.subarray(tbs.start, tbs.end),
    sigAlg: decodeOid(der.subarray(alg.contentStart, alg.end)),
    signature: der.subarray(sig.contentStart + 1, sig.end),
  }
}

const missing = (what: string): never => {
  throw new DerError(`missing ${what}`)
}

/** RFC 5280 §5.2: a CRL with a critical extension we do not process must not be used. */
function checkCritical(der: Buffer, exts: ReturnType<typeof readDer>, known: readonly string[], where: string): void {
  for (const e of children(der, exts)) {
    const [id, crit] = children(der, e)
    if (!id || id.tag !== TAG.OID) throw new DerError(`an extension of ${where} has no OID`)
    const oid = decodeOid(der.subarray(id.contentStart, id.end))
    const critical = crit?.cls === 0 && crit.tag === 1 && der[crit.contentStart] !== 0
    if (!critical || known.includes(oid)) continue
    if (oid === OID.deltaCrlIndicator) throw new DerError('delta CRLs are not supported')
    if (oid === OID.issuingDistributionPoint) throw new DerError('CRLs with an issuingDistributionPoint (partitioned CRLs) are not supported')
    throw new DerError(`${where} has a critical extension ${oid} this gateway does not process`)
  }
}

/** Signature algorithm OID → the hash node:crypto's verify takes (null: the key decides). */
export const SIGNATURE_HASH: Readonly<Record<string, string | null>> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
  '1.3.101.113': null,
}

/** True when `ca`'s key made the CRL's signature (and the CRL names `ca` as its issuer). */
export function crlSignedBy(crl: Crl, ca: X509Certificate, subjectKey?: string): boolean {
  const hash = SIGNATURE_HASH[crl.sigAlg]
  if (hash === undefined) return false
  if (subjectKey === undefined) {
    try {
      const f = certPathFacts(ca.raw)
      subjectKey = f.subjectDer.toString('latin1')
    } catch {
      return false
    }
  }
  if (subjectKey !== crl.issuerKey) return false
  try {
    return verifySignature(hash, crl.tbs, ca.publicKey as KeyObject, crl.signature)
  } catch {
    return false
  }
}

/** The CRLs of a PEM text (every `X509 CRL` block), or what is wrong with the first bad one. */
export function parseCrlPem(text: string): { readonly ok: true; readonly crls: Crl[] } | { readonly ok: false; readonly error: string } {
  const { blocks, unterminated } = pemBlocks(text)
  if (unterminated !== undefined) return { ok: false, error: `a "-----BEGIN ${unterminated}-----" block has no END line` }
  const crlBlocks = blocks.filter((b) => b.label === 'X509 CRL')
  if (crlBlocks.length === 0) return { ok: false, error: 'holds no "-----BEGIN X509 CRL-----" block' }
  const other = blocks.find((b) => b.label !== 'X509 CRL')
  if (other) return { ok: false, error: `holds a ${other.label} block; only X509 CRL blocks belong here` }
  const crls: Crl[] = []
  for (const [n, b] of crlBlocks.entries()) {
    const der = blockDer(b)
    const which = crlBlocks.length > 1 ? `CRL ${n + 1}` : 'the CRL'
    if (typeof der === 'string') return { ok: false, error: `${which}: ${der}` }
    try {
      crls.push(parseCrl(der))
    } catch (e) {
      if (e instanceof DerError) return { ok: false, error: `${which} cannot be read: ${e.message}` }
      throw e
    }
  }
  return { ok: true, crls }
}

/** CRLs by issuer, compiled once per ssl object version (per generation). */
export interface CrlSet {
  readonly byIssuer: ReadonlyMap<string, Crl>
  /** the earliest nextUpdate of the set (Infinity when none has one): verdicts made before it hold until then */
  readonly earliestNextUpdate: number
}

/** Compiles parsed CRLs; with several for one issuer the newest (latest thisUpdate) wins. */
export function compileCrlSet(crls: readonly Crl[]): CrlSet {
  const byIssuer = new Map<string, Crl>()
  for (const c of crls) {
    const had = byIssuer.get(c.issuerKey)
    if (!had || had.thisUpdate < c.thisUpdate) byIssuer.set(c.issuerKey, c)
  }
  let earliestNextUpdate = Infinity
  for (const c of byIssuer.values()) if (c.nextUpdate !== undefined) earliestNextUpdate = Math.min(earliestNextUpdate, c.nextUpdate)
  return { byIssuer, earliestNextUpdate }
}

/** One certificate of a chain as the revocation check sees it: who issued it, and its serial. */
export interface ChainLink {
  readonly issuerKey: string
  readonly serialKey: string
}

/** The link of a DER certificate; undefined when it cannot be read. */
export function chainLink(der: Uint8Array): ChainLink | undefined {
  try {
    const f = certPathFacts(der)
    return { issuerKey: f.issuerDer.toString('latin1'), serialKey: f.serial.toString('latin1') }
  } catch (e) {
    if (e instanceof DerError) return undefined
    throw e
  }
}

/** The revocation verdict, as OpenSSL's X509_V_ERR names it; undefined: nothing revoked. */
export type RevocationError = 'CERT_REVOKED' | 'CRL_HAS_EXPIRED'

/**
 * Checks every link whose issuer has a CRL in `set` (links without one are not checked, unlike
 * OpenSSL's X509_V_FLAG_CRL_CHECK_ALL). A CRL past its nextUpdate fails every certificate its
 * issuer signed (fail closed). O(1) per link.
 */
export function checkRevocation(links: readonly ChainLink[], set: CrlSet, nowMs: number): RevocationError | undefined {
  for (const l of links) {
    const crl = set.byIssuer.get(l.issuerKey)
    if (!crl) continue
    if (crl.nextUpdate !== undefined && nowMs > crl.nextUpdate) return 'CRL_HAS_EXPIRED'
    if (crl.revoked.has(l.serialKey)) return 'CERT_REVOKED'
  }
  return undefined
}

/**
 * The admin's and the watcher's check of a `crl` field against its CA bundle: every CRL parses
 * and is signed by a certificate of `caPem` (named by its issuer, verified with its key). The
 * message says what is wrong, for a 400 naming the field.
 */
export function checkCrls(crlPem: string, caPem: string): { readonly ok: true; readonly crls: Crl[] } | { readonly ok: false; readonly error: string } {
  const parsed = parseCrlPem(crlPem)
  if (!parsed.ok) return parsed
  const cas: { x509: X509Certificate; subjectKey: string }[] = []
  for (const b of pemBlocksOf(caPem, 'CERTIFICATE')) {
    try {
      const x509 = new X509Certificate(b.text)
      cas.push({ x509, subjectKey: certPathFacts(x509.raw).subjectDer.toString('latin1') })
    } catch {
      // the CA field's own check names an unreadable CA
    }
  }
  for (const [n, crl] of parsed.crls.entries()) {
    const which = parsed.crls.length > 1 ? `CRL ${n + 1} (issuer ${crl.issuer})` : `the CRL (issuer ${crl.issuer})`
    const named = cas.filter((c) => c.subjectKey === crl.issuerKey)
    if (named.length === 0) return { ok: false, error: `${which} was not issued by a certificate of the CA bundle` }
    if (SIGNATURE_HASH[crl.sigAlg] === undefined) return { ok: false, error: `${which} is signed with an algorithm this gateway does not verify (${crl.sigAlg})` }
    if (!named.some((c) => crlSignedBy(crl, c.x509, c.subjectKey))) return { ok: false, error: `the signature of ${which} does not verify with the key of its CA` }
  }
  return { ok: true, crls: parsed.crls }
}

// The CRLs the decoder checked, by the `client` block (or conf) they came from: the data plane's
// compile reuses them instead of parsing a large CRL a second time. Keyed by identity, weakly.
const checked = new WeakMap<object, readonly Crl[]>()

/** checkCrls, remembering the parsed CRLs for `owner` (the object holding the field). */
export function checkCrlsOf(owner: object, crlPem: string, caPem: string): ReturnType<typeof checkCrls> {
  const r = checkCrls(crlPem, caPem)
  if (r.ok) checked.set(owner, r.crls)
  return r
}

/** The CRLs checkCrlsOf parsed for `owner`, else `crlPem` parsed now (an unreadable one: none). */
export function crlsOf(owner: object, crlPem: string): readonly Crl[] {
  const hit = checked.get(owner)
  if (hit) return hit
  const parsed = parseCrlPem(crlPem)
  return parsed.ok ? parsed.crls : []
}

/** Warnings for CRLs whose nextUpdate has passed or falls within `withinMs` (24 hours). */
export function crlWarnings(crls: readonly Crl[], nowMs: number, field: string, withinMs = 86_400_000): string[] {
  const out: string[] = []
  for (const c of crls) {
    if (c.nextUpdate === undefined) continue
    const at = new Date(c.nextUpdate).toISOString()
    if (c.nextUpdate <= nowMs) out.push(`${field}: the CRL of ${c.issuer} expired at ${at} (its nextUpdate): every certificate its issuer signed is refused until a newer CRL is set`)
    else if (c.nextUpdate - nowMs <= withinMs) out.push(`${field}: the CRL of ${c.issuer} is due at ${at} (its nextUpdate is within 24 hours)`)
  }
  return out
}

/** The report's view of a `crl` field: each CRL's issuer and nextUpdate (those without one are left out); throws when it cannot be read. */
export function crlReportRows(pem: string): { subject: string; notAfter: Date }[] {
  const r = parseCrlPem(pem)
  if (!r.ok) throw new Error(r.error)
  return r.crls.filter((c) => c.nextUpdate !== undefined).map((c) => ({ subject: c.issuer, notAfter: new Date(c.nextUpdate as number) }))
}
