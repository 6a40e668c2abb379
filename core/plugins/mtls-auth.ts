/**
 * mtls-auth (CONTRACT.md "Client-certificate plugins"): a client certificate identifies a
 * consumer. On a route or global rule it checks, in this order, that a certificate is there,
 * `validate_certificate`, `validate_issuer_acl`, then looks the consumer up by the SHA-256 of
 * the DER. Each failure is a 401 naming the check.
 *
 * What validate_certificate means per source:
 * - from this connection's handshake and verified there: OpenSSL already checked signature,
 *   chain (against the ssl object's client.ca) and dates; the dates are checked again against
 *   the request's clock, because a keep-alive connection can outlive its certificate;
 * - from the handshake but not verified (an ssl object with skip_mtls_uri_regex): refused with
 *   OpenSSL's reason;
 * - from a trusted proxy's header: the chain is verified here against `ca`, else the ssl
 *   object's client.ca; with neither (plain HTTP), refused.
 */
import { createHash } from 'node:crypto'
import { Type, type Static } from 'typebox'
import { checkDnPattern, compileDnPatterns, type DnMatcher } from './dn-pattern.js'
import { decodeCertificate } from './consumer-index.js'
import { compileTrustStore, verifyChain, type TrustStore, type TrustStoreResult } from '../x509/verify.js'
import { chainLink, checkCrls, checkRevocation, compileCrlSet, parseCrlPem, type CrlSet } from '../x509/crl.js'
import { buildClientCertFacts } from '../x509/cert.js'
import { definePlugin, type ClientCert, type RequestContext, type Step } from './types.js'

/** mtls-auth on a route or global rule (CONTRACT.md). */
export const MtlsAuthSchema = Type.Object(
  {
    validate_certificate: Type.Boolean({ default: true }),
    validate_issuer_acl: Type.Boolean({ default: false }),
    issuer_acl: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    ca: Type.Optional(Type.String({ minLength: 64, maxLength: 65536 })),
    /** PEM CRLs checked with `ca` (each signed by a certificate of it when `ca` is set) */
    crl: Type.Optional(Type.String({ minLength: 1 })),
    consumer_required: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
)

/** mtls-auth on a consumer: the certificates that identify it (several allow rotation). */
export const MtlsAuthConsumerSchema = Type.Object(
  { certificates: Type.Array(Type.String({ minLength: 64, maxLength: 65536 }), { minItems: 1, maxItems: 16 }) },
  { additionalProperties: false },
)

type Conf = Static<typeof MtlsAuthSchema>

/** The upstream header that names the consumer. */
export const CONSUMER_HEADER = 'x-consumer-username'

/** How many distinct ssl-object CA bundles one compiled conf keeps compiled. */
const MAX_CA_CACHE = 64
/** How many header-certificate verdicts one trust store keeps, and for how long at most. */
const MAX_VERDICTS = 1024
const VERDICT_MS = 60_000

/** A chain verdict kept for a while: the message of a failure, or undefined for a pass. */
interface Verdict {
  readonly why: string | undefined
  readonly until: number
}

/** mtls-auth compiled once per generation. */
export interface MtlsAuthCompiled {
  readonly validateCertificate: boolean
  readonly issuerAcl: DnMatcher | undefined
  readonly consumerRequired: boolean
  /** the plugin's own `ca`, compiled */
  readonly ca: TrustStore | undefined
  /** the plugin's own `crl`, compiled */
  readonly crls: CrlSet | undefined
  /** ssl objects' client.ca bundles compiled on first use (bounded; this conf lives one generation) */
  readonly sslCas: Map<string, TrustStoreResult>
  /** chain verdicts of header certificates per trust store, by SHA-256 (bounded, time-limited) */
  readonly verdicts: WeakMap<object, Map<string, Verdict>>
  /** issuer_acl verdicts per certificate object (parsing a DN costs about 10 µs) */
  readonly issuerSeen: WeakMap<object, boolean>
}

/** Compiles a validated conf: the CA bundle and the issuer patterns, once. */
export function compileMtlsAuth(conf: Conf): MtlsAuthCompiled {
  const ca = conf.ca === undefined ? undefined : compileTrustStore(conf.ca)
  const crl = conf.crl === undefined ? undefined : parseCrlPem(conf.crl)
  return {
    crls: crl?.ok ? compileCrlSet(crl.crls) : undefined,
    validateCertificate: conf.validate_certificate,
    issuerAcl: conf.validate_issuer_acl ? compileDnPatterns(conf.issuer_acl ?? []) : undefined,
    consumerRequired: conf.consumer_required,
    ca: ca?.ok ? ca.store : undefined,
    sslCas: new Map(),
    verdicts: new WeakMap(),
    issuerSeen: new WeakMap(),
  }
}

const refuse = (check: string, why: string): Step => ({ status: 401, body: { error_msg: `mtls-auth: ${check} failed: ${why}` } })

function sslStore(c: MtlsAuthCompiled, pem: string): TrustStoreResult {
  let r = c.sslCas.get(pem)
  if (!r) {
    if (c.sslCas.size >= MAX_CA_CACHE) c.sslCas.clear()
    r = compileTrustStore(pem)
    c.sslCas.set(pem, r)
  }
  return r
}

/** The validity bounds of a certificate, from its source or from its DER. */
function datesOf(cert: ClientCert): { notBefore: number; notAfter: number } | undefined {
  if (cert.notBefore !== undefined && cert.notAfter !== undefined) return { notBefore: cert.notBefore, notAfter: cert.notAfter }
  const f = buildClientCertFacts(cert.der)
  return f ? { notBefore: f.notBefore, notAfter: f.notAfter } : undefined
}

/** validate_certificate: a message saying what failed, or undefined. */
function validate(c: MtlsAuthCompiled, cert: ClientCert, ctx: Pick<RequestContext, 'sslClientCa' | 'sslClientDepth' | 'sslClientCrls' | 'nowMs'>): string | undefined {
  if (cert.source === 'tls') {
    if (!cert.verified) return `the certificate did not verify in the TLS handshake (${cert.verify})`
    const d = datesOf(cert)
    if (!d) return 'the certificate cannot be read'
    if (ctx.nowMs < d.notBefore) return `the client certificate is not valid before ${new Date(d.notBefore).toISOString()}`
    if (ctx.nowMs > d.notAfter) return `the client certificate expired at ${new Date(d.notAfter).toISOString()}`
    // the ssl object's CRLs were applied to the handshake's verdict; the plugin's own apply here
    if (c.crls) {
      const link = chainLink(cert.der)
      const revoked = link ? checkRevocation([link], c.crls, ctx.nowMs) : undefined
      if (revoked) return `the client certificate ${revoked === 'CERT_REVOKED' ? 'is revoked (crl)' : 'cannot be checked: the CRL of its issuer has expired (crl)'}`
    }
    return undefined
  }
  let store = c.ca
  // the ssl object's client.ca comes with its client.depth (the plugin's own ca has no depth)
  let depth: number | undefined
  let crls = c.crls
  if (!store && ctx.sslClientCa !== undefined) {
    const r = sslStore(c, ctx.sslClientCa)
    if (!r.ok) return `the ssl object's client.ca cannot be used: ${r.error}`
    store = r.store
    depth = ctx.sslClientDepth
    crls ??= ctx.sslClientCrls
  }
  if (!store) return 'no CA to verify a certificate from the proxy header against (set the plugin\'s "ca", or client.ca on the ssl object)'
  return verdict(c, store, crls, cert, ctx.nowMs, depth)
}

/**
 * verifyChain costs about 150 µs (signatures); a proxy sends the same certificates again and
 * again, so a verdict is kept per trust store and certificate for up to a minute, and a pass
 * never past the leaf's or any CA's not-after (validity only ends; not-before already passed).
 */
function verdict(c: MtlsAuthCompiled, store: TrustStore, crls: CrlSet | undefined, cert: ClientCert, nowMs: number, depth: number | undefined): string | undefined {
  // kept per CRL set when there is one: a new client.crl (a new set) is never judged by the old verdicts
  const byKey: object = crls ?? store
  let byCert = c.verdicts.get(byKey)
  if (!byCert) c.verdicts.set(byKey, (byCert = new Map()))
  // the same leaf with other intermediates (RFC 9440 Client-Cert-Chain) or depth is another verdict
  const sent = cert.intermediates ?? []
  const key = sent.length === 0 && depth === undefined ? cert.sha256 : `${cert.sha256}/${depth ?? ''}/${sent.length === 0 ? '' : createHash('sha256').update(Buffer.concat(sent)).digest('hex')}`
  const hit = byCert.get(key)
  if (hit && nowMs <= hit.until) return hit.why
  const r = verifyChain(cert.x509 ?? cert.der, store, nowMs, depth, crls, sent)
  const why = r.ok ? undefined : r.message
  let until = nowMs + VERDICT_MS
  if (crls) until = Math.min(until, crls.earliestNextUpdate)
  if (r.ok) until = Math.min(until, store.earliestNotAfter, cert.notAfter ?? nowMs)
  if (byCert.size >= MAX_VERDICTS) byCert.clear()
  byCert.set(key, { why, until })
  return why
}

function issuerAllowed(c: MtlsAuthCompiled, acl: DnMatcher, cert: ClientCert): boolean {
  let ok = c.issuerSeen.get(cert)
  if (ok === undefined) c.issuerSeen.set(cert, (ok = acl.matches(cert.issuerDn)))
  return ok
}

/** The rewrite phase: certificate → checks → consumer; sets X-Consumer-Username and the consumer on success. */
export function runMtlsAuth(c: MtlsAuthCompiled, ctx: RequestContext): Step {
  // whatever happens next, the client never chooses the consumer name the upstream sees
  ctx.upstream.setHeaders.delete(CONSUMER_HEADER)
  ctx.upstream.removeHeaders.add(CONSUMER_HEADER)
  const cert = ctx.clientCert
  if (!cert) {
    if (!c.validateCertificate && !c.issuerAcl && !c.consumerRequired) return undefined
    const why = ctx.clientCertError ?? 'no client certificate was presented'
    return refuse('client certificate', why)
  }
  if (c.validateCertificate) {
    const why = validate(c, cert, ctx)
    if (why) return refuse('validate_certificate', why)
  }
  if (c.issuerAcl && !issuerAllowed(c, c.issuerAcl, cert))
    return refuse('validate_issuer_acl', `the issuer ${JSON.stringify(cert.issuerDn)} matches no issuer_acl pattern`)
  const username = ctx.consumerByCertSha256(cert.sha256)
  if (username === undefined) {
    if (c.consumerRequired) return refuse('consumer_required', `no consumer owns this certificate (subject ${JSON.stringify(cert.subjectDn)})`)
    return undefined
  }
  ctx.consumer = { username }
  // "set" replaces whatever the client sent under that name
  ctx.upstream.removeHeaders.delete(CONSUMER_HEADER)
  ctx.upstream.setHeaders.set(CONSUMER_HEADER, username)
  return undefined
}

/** The admin's semantic check of a route-side conf. */
export function checkMtlsAuth(conf: Conf): string | undefined {
  if (conf.validate_issuer_acl && !conf.issuer_acl) return 'issuer_acl is required when validate_issuer_acl is true'
  for (const [i, p] of (conf.issuer_acl ?? []).entries()) {
    const why = checkDnPattern(p)
    if (why) return `issuer_acl[${i}]: ${why}`
  }
  if (conf.ca !== undefined) {
    const r = compileTrustStore(conf.ca)
    if (!r.ok) return `ca: ${r.error}`
  }
  if (conf.crl !== undefined) {
    const r = conf.ca !== undefined ? checkCrls(conf.crl, conf.ca) : parseCrlPem(conf.crl)
    if (!r.ok) return `crl: ${r.error}`
  }
  return undefined
}

/**
 * The check of a consumer-side conf (admin and data plane): each entry is one certificate, PEM
 * or base64 of DER, framed as DER. The admin parses each fully besides (admin/checks.ts).
 */
export function checkMtlsAuthConsumer(conf: unknown): string | undefined {
  const list = (conf as { certificates?: unknown }).certificates
  if (!Array.isArray(list)) return 'certificates must be an array'
  for (const [i, s] of list.entries()) {
    const r = decodeCertificate(s)
    if (!r.ok) return `certificates[${i}]: ${r.error}`
  }
  return undefined
}

/** A warning for a valid conf that does nothing. */
export function warnMtlsAuth(conf: Conf): string | undefined {
  if (conf.issuer_acl && !conf.validate_issuer_acl) return 'issuer_acl has no effect without validate_issuer_acl: true'
  return undefined
}

/** mtls-auth: a client certificate identifies a consumer (rewrite phase, after ssl-enforcement). */
export const mtlsAuth = definePlugin({
  name: 'mtls-auth',
  version: '0.1',
  priority: 2590,
  schema: MtlsAuthSchema,
  consumerSchema: MtlsAuthConsumerSchema,
  check: checkMtlsAuth,
  checkConsumer: checkMtlsAuthConsumer,
  warn: warnMtlsAuth,
  compile: compileMtlsAuth,
  rewrite: runMtlsAuth,
})
