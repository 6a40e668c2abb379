/**
 * Pure: verifies a client certificate against a PEM bundle of CAs, as mtls-auth's
 * `validate_certificate` does for certificates that did not go through this connection's
 * handshake (those from a trusted proxy's header). It follows what OpenSSL does in Node's
 * handshake, checked on this machine: the chain is built through certificates of the bundle
 * and must end at a self-issued certificate of the bundle (an intermediate alone is not a
 * trust anchor); every issuer must be a CA; each signature must verify; every certificate of
 * the chain must be within its validity dates; a leaf with extendedKeyUsage must allow
 * clientAuth. node:crypto does the parsing and signature checks; the time is passed in.
 */
import { X509Certificate } from 'node:crypto'
import { checkRevocation, type ChainLink, type CrlSet } from './crl.js'
import { DerError } from './der.js'
import { certPathFacts, KU_KEY_CERT_SIGN, nameConstraintViolation, type CertPathFacts } from './extensions.js'
import { pemBlocksOf } from './pem.js'
import { OID } from './oids.js'

/** Which check failed, as mtls-auth reports it. */
export type ChainCheck = 'signature' | 'expired' | 'not_yet_valid' | 'untrusted' | 'malformed' | 'revoked' | 'crl_expired'

/**
 * The verdict for one certificate. A refusal carries OpenSSL's X509_V_ERR name (`code`, as
 * Node's authorizationError gives it) so that `$ssl_client_verify` can be written from it.
 */
export type ChainResult = { readonly ok: true; /** CAs between the leaf and its trust anchor */ readonly intermediates: number } | { readonly ok: false; readonly check: ChainCheck; readonly message: string; readonly code: string }

interface Entry {
  readonly x509: X509Certificate
  readonly der: Buffer
  readonly facts: CertPathFacts
  readonly selfIssued: boolean
  readonly notBefore: number
  readonly notAfter: number
}

/** A CA bundle compiled once (per generation): certificates indexed by subject. */
export interface TrustStore {
  readonly size: number
  /** the earliest not-after of the bundle's certificates, epoch ms: no chain through it verifies later */
  readonly earliestNotAfter: number
  /** @internal */ readonly bySubject: ReadonlyMap<string, readonly Entry[]>
  /** @internal */ readonly all: readonly Entry[]
}

/** A compiled bundle, or a message naming the certificate that could not be read. */
export type TrustStoreResult = { readonly ok: true; readonly store: TrustStore } | { readonly ok: false; readonly error: string }

const oneLine = (name: string): string => name.split('\n').join(', ')

function entry(x509: X509Certificate): Entry | string {
  const notBefore = Date.parse(x509.validFrom)
  const notAfter = Date.parse(x509.validTo)
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) return `unreadable validity dates (${x509.validFrom} – ${x509.validTo})`
  // OpenSSL's test, checked against Node's handshake: a self-signed leaf without keyCertSign
  // fails checkIssued on itself yet is accepted when it is in the CA bundle.
  let facts: CertPathFacts
  try {
    facts = certPathFacts(x509.raw)
  } catch (e) {
    if (e instanceof DerError) return `extensions that cannot be read (${e.message})`
    throw e
  }
  const selfIssued = x509.checkIssued(x509) || (x509.subject === x509.issuer && x509.verify(x509.publicKey))
  return { x509, der: x509.raw, facts, selfIssued, notBefore, notAfter }
}

/** Compiles a PEM bundle of one or more CA certificates (trust anchors and intermediates). */
export function compileTrustStore(pem: string): TrustStoreResult {
  if (typeof pem !== 'string') return { ok: false, error: 'the CA bundle must be a PEM string' }
  const all: Entry[] = []
  const bySubject = new Map<string, Entry[]>()
  let n = 0
  for (const block of pemBlocksOf(pem, 'CERTIFICATE')) {
    n++
    let x509: X509Certificate
    try {
      x509 = new X509Certificate(block.text)
    } catch (e) {
      return { ok: false, error: `certificate ${n} of the CA bundle cannot be read: ${e instanceof Error ? e.message : String(e)}` }
    }
    const e = entry(x509)
    if (typeof e === 'string') return { ok: false, error: `certificate ${n} of the CA bundle has ${e}` }
    all.push(e)
    const list = bySubject.get(x509.subject)
    if (list) list.push(e)
    else bySubject.set(x509.subject, [e])
  }
  if (n === 0) return { ok: false, error: 'the CA bundle holds no "-----BEGIN CERTIFICATE-----" block' }
  const earliestNotAfter = Math.min(...all.map((e) => e.notAfter))
  return { ok: true, store: { size: n, earliestNotAfter, bySubject, all } }
}

const CODE: Readonly<Record<ChainCheck, string>> = {
  signature: 'CERT_SIGNATURE_FAILURE',
  expired: 'CERT_HAS_EXPIRED',
  not_yet_valid: 'CERT_NOT_YET_VALID',
  untrusted: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  malformed: 'UNSPECIFIED',
  revoked: 'CERT_REVOKED',
  crl_expired: 'CRL_HAS_EXPIRED',
}

const refuse = (check: ChainCheck, message: string, code: string = CODE[check]): ChainResult => ({ ok: false, check, message, code })

/**
 * Certificates that issued `cert` by name and key identifier, skipping those already in the
 * path: the store's first, then those the client sent along (never trust anchors themselves).
 */
function issuersOf(store: TrustStore, sent: readonly Entry[], cert: X509Certificate, path: readonly Entry[]): Entry[] {
  const inPath = (e: Entry): boolean => path.some((p) => p.der.equals(e.der))
  const byName = (store.bySubject.get(cert.issuer) ?? []).filter((e) => !inPath(e) && cert.checkIssued(e.x509))
  if (byName.length > 0) return byName
  // Names that differ only in encoding or case: let OpenSSL compare them.
  const any = store.all.filter((e) => !inPath(e) && cert.checkIssued(e.x509))
  return any.length > 0 ? any : sent.filter((e) => !inPath(e) && cert.checkIssued(e.x509))
}

/**
 * Verifies a client certificate (DER, or already parsed: parsing costs about 0.4 ms) against
 * `store` at time `nowMs`. `maxDepth` is OpenSSL's verify depth: the
 * number of intermediate CAs allowed between the leaf and the trust anchor (unlimited when
 * undefined). `crls`: the CRLs every certificate of the chain whose issuer has one is checked
 * against (CONTRACT.md "Revocation"). `sent` are intermediates the client sent after its leaf (a
 * TLS chain): they help build the path but are never trust anchors. Never throws.
 */
export function verifyChain(
  cert: Buffer | X509Certificate,
  store: TrustStore,
  nowMs: number,
  maxDepth?: number,
  crls?: CrlSet,
  sent: readonly (Buffer | X509Certificate)[] = [],
): ChainResult {
  let leaf: Entry
  const extra: Entry[] = []
  try {
    for (const c of sent) {
      const x = entry(c instanceof X509Certificate ? c : new X509Certificate(c))
      if (typeof x !== 'string') extra.push(x)
    }
    const e = entry(cert instanceof X509Certificate ? cert : new X509Certificate(cert))
    if (typeof e === 'string') return refuse('malformed', `the client certificate has ${e}`)
    leaf = e
  } catch (e) {
    return refuse('malformed', `the client certificate cannot be read: ${e instanceof Error ? e.message : String(e)}`)
  }
  try {
    const eku = leaf.x509.keyUsage
    if (eku && eku.length > 0 && !eku.includes(OID.clientAuth) && !eku.includes(OID.anyExtendedKeyUsage))
      return refuse('untrusted', 'the client certificate is not for client authentication (its extendedKeyUsage lacks clientAuth)')

    const path: Entry[] = [leaf]
    let cur = leaf
    for (;;) {
      if (cur.selfIssued && store.all.some((e) => e.der.equals(cur.der))) break // reached a trust anchor
      if (path.length > store.size + extra.length + 1) return refuse('untrusted', 'the chain loops')
      const subject = oneLine(cur.x509.subject)
      if (cur.selfIssued)
        return refuse('untrusted', `self-signed certificate ${subject} is not in the trusted CA bundle`, cur === leaf ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN')
      const candidates = issuersOf(store, extra, cur.x509, path)
      if (candidates.length === 0) {
        const named = store.bySubject.get(cur.x509.issuer)?.find((e) => e.facts.keyUsage !== undefined && (e.facts.keyUsage & KU_KEY_CERT_SIGN) === 0)
        if (named) return refuse('untrusted', `the issuer of ${subject} (${oneLine(named.x509.subject)}) may not sign certificates (its keyUsage lacks keyCertSign)`, 'INVALID_CA')
        // OpenSSL: a lone leaf whose issuer is unknown cannot have its signature checked
        return refuse('untrusted', `the issuer of ${subject} (${oneLine(cur.x509.issuer)}) is not in the trusted CA bundle`, path.length === 1 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
      }
      const issuer = candidates.find((c) => cur.x509.verify(c.x509.publicKey))
      if (!issuer) return refuse('signature', `the signature of ${subject} does not verify with the key of ${oneLine(cur.x509.issuer)}`)
      if (!issuer.x509.ca || issuer.facts.basicConstraints?.ca !== true)
        return refuse('untrusted', `the issuer of ${subject} (${oneLine(issuer.x509.subject)}) is not a CA (basicConstraints cA is not set)`, 'INVALID_CA')
      if (issuer.facts.keyUsage !== undefined && (issuer.facts.keyUsage & KU_KEY_CERT_SIGN) === 0)
        return refuse('untrusted', `the issuer of ${subject} (${oneLine(issuer.x509.subject)}) may not sign certificates (its keyUsage lacks keyCertSign)`, 'INVALID_CA')
      path.push(issuer)
      cur = issuer
    }
    const intermediates = Math.max(0, path.length - 2)
    if (maxDepth !== undefined && intermediates > maxDepth)
      return refuse('untrusted', `the chain has ${intermediates} intermediate CAs, more than the verify depth ${maxDepth}`, 'CERT_CHAIN_TOO_LONG')
    const rfc5280 = checkPath(path)
    if (rfc5280) return rfc5280
    for (const e of path) {
      const who = e === leaf ? 'the client certificate' : `CA certificate ${oneLine(e.x509.subject)}`
      if (nowMs < e.notBefore) return refuse('not_yet_valid', `${who} is not valid before ${new Date(e.notBefore).toISOString()}`)
      if (nowMs > e.notAfter) return refuse('expired', `${who} expired at ${new Date(e.notAfter).toISOString()}`)
    }
    if (crls) {
      const links: ChainLink[] = path.slice(0, -1).map((e) => ({ issuerKey: e.facts.issuerDer.toString('latin1'), serialKey: e.facts.serial.toString('latin1') }))
      const revoked = checkRevocation(links, crls, nowMs)
      if (revoked === 'CERT_REVOKED') return refuse('revoked', 'a certificate of the chain is revoked by its issuer\'s CRL')
      if (revoked === 'CRL_HAS_EXPIRED') return refuse('crl_expired', 'the CRL of an issuer in the chain has expired (its nextUpdate has passed)')
    }
    return { ok: true, intermediates }
  } catch (e) {
    return refuse('malformed', `the client certificate cannot be verified: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/**
 * RFC 5280 §6.1 basics over a built path (leaf first, trust anchor last): every critical
 * extension must be one we process; a CA's pathLenConstraint bounds the non-self-issued
 * intermediates below it; a CA's nameConstraints bound the names of every certificate below it
 * (self-issued intermediates excepted, the leaf always, with its host-like CN when it has no SAN
 * dNSName, as OpenSSL does).
 */
function checkPath(path: readonly Entry[]): ChainResult | undefined {
  for (const [i, e] of path.entries()) {
    const who = i === 0 ? 'the client certificate' : `CA certificate ${oneLine(e.x509.subject)}`
    const unknown = e.facts.unknownCritical[0]
    if (unknown !== undefined) return refuse('untrusted', `${who} has a critical extension ${unknown} that is not understood`, 'UNHANDLED_CRITICAL_EXTENSION')
    if (i === 0) continue
    const pathLen = e.facts.basicConstraints?.pathLen
    if (pathLen !== undefined) {
      const below = path.slice(1, i).filter((c) => !c.selfIssued).length
      if (below > pathLen) return refuse('untrusted', `${who} allows ${pathLen} intermediate CAs below it (pathLenConstraint), the chain has ${below}`, 'PATH_LENGTH_EXCEEDED')
    }
    const nc = e.facts.nameConstraints
    if (nc) {
      for (const [j, c] of path.slice(0, i).entries()) {
        if (j > 0 && c.selfIssued) continue
        const why = nameConstraintViolation(c.facts, nc, j === 0)
        if (why) {
          const whose = j === 0 ? 'the client certificate' : `CA certificate ${oneLine(c.x509.subject)}`
          return refuse('untrusted', `${whose}: ${why} of the name constraints of ${oneLine(e.x509.subject)}`, why.includes('excluded') ? 'EXCLUDED_VIOLATION' : 'PERMITTED_VIOLATION')
        }
      }
    }
  }
  return undefined
}
