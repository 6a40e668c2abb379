import { Type, type Static } from 'typebox'
import type { X509Certificate } from 'node:crypto'
import { CertPem, Desc, Host, KeyPem, Labels, Meta, closed } from './defs.js'
import { keyMatchesCert, parseCertChain, parsePrivateKey, expiryWarning, normalizeSni, uncoveredSnis } from '../x509/server-cert.js'
import { checkCrls, checkCrlsOf, crlWarnings, type Crl } from '../x509/crl.js'
import { decryptKey, isPlainPem } from './key-crypto.js'
import { checkPattern } from './regex.js'
import { fail, ok, type Result } from '../schema/decode.js'

/** The ssl object, as APISIX 3.x's `_M.ssl` (spec §1.1); `sni`/`snis` rules are in checkSsl. */
export const SslSchema = Type.Object(
  {
    ...Meta,
    desc: Type.Optional(Desc),
    labels: Type.Optional(Labels),
    type: Type.Enum(['server', 'client'], { default: 'server' }),
    cert: CertPem,
    key: KeyPem,
    sni: Type.Optional(Host),
    snis: Type.Optional(Type.Array(Host, { minItems: 1 })),
    certs: Type.Optional(Type.Array(CertPem)),
    keys: Type.Optional(Type.Array(KeyPem)),
    client: Type.Optional(
      Type.Object(
        {
          ca: CertPem,
          depth: Type.Integer({ minimum: 0, default: 1 }),
          skip_mtls_uri_regex: Type.Optional(Type.Array(Type.String(), { minItems: 1, uniqueItems: true })),
          /** PEM X.509 CRLs, each signed by a certificate of `ca` (CONTRACT.md "Revocation") */
          crl: Type.Optional(Type.String({ minLength: 1 })),
        },
        closed,
      ),
    ),
    status: Type.Enum([1, 0], { default: 1 }),
    ocsp_stapling: Type.Optional(
      Type.Object(
        {
          enabled: Type.Boolean({ default: false }),
          skip_verify: Type.Boolean({ default: false }),
          cache_ttl: Type.Integer({ minimum: 60, default: 3600 }),
        },
        closed,
      ),
    ),
    ssl_protocols: Type.Optional(Type.Array(Type.Enum(['TLSv1.1', 'TLSv1.2', 'TLSv1.3']), { maxItems: 3, uniqueItems: true })),
  },
  closed,
)

/** A validated ssl object (schema defaults filled). */
export type Ssl = Static<typeof SslSchema>

/**
 * Cross-field rules every reader applies (admin and data plane): a server object names its SNIs
 * with exactly one of `sni`/`snis`; `certs` and `keys` pair up; skip regexes run in linear time.
 */
export function checkSsl(ssl: Ssl): string | undefined {
  if (ssl.type === 'server') {
    if (ssl.sni === undefined && ssl.snis === undefined) return 'one of sni or snis is required'
    if (ssl.sni !== undefined && ssl.snis !== undefined) return 'only one of sni or snis is allowed'
  }
  if ((ssl.certs?.length ?? 0) !== (ssl.keys?.length ?? 0)) return 'mismatched number of certs and keys'
  const skips = ssl.client?.skip_mtls_uri_regex ?? []
  for (const [i, p] of skips.entries()) {
    // linear on the data plane too: a pattern V8 cannot run linearly (backreference, lookaround)
    // gets no backtracking fallback and could hold a worker for hours
    const why = checkPattern(p, true)
    if (why) return `property "client.skip_mtls_uri_regex[${i}]" validation failed: ${why}`
  }
  if (ssl.client?.crl !== undefined) {
    const r = checkCrlsOf(ssl.client, ssl.client.crl, ssl.client.ca)
    if (!r.ok) return `property "client.crl" validation failed: ${r.error}`
  }
  return undefined
}

/** The SNIs an ssl object claims, normalised (lower case, no trailing dot). */
export const snisOf = (ssl: Pick<Ssl, 'sni' | 'snis'>): string[] =>
  (ssl.snis ?? (ssl.sni === undefined ? [] : [ssl.sni])).map(normalizeSni)

/** What the admin learned by parsing an ssl object's PEM: leaf certificates and the client CAs. */
export interface SslFacts {
  /** the leaf of `cert`, then of each `certs[i]` */
  readonly leaves: readonly X509Certificate[]
  readonly clientCas: readonly X509Certificate[]
  /** the CRLs of `client.crl`, parsed and checked against `client.ca` */
  readonly crls: readonly Crl[]
}

/** Parses a certificate and its key (decrypting it with the keyring), and checks they match. */
export function checkCertKeyPair(cert: string, key: string, keyring: readonly string[]): Result<X509Certificate> {
  const chain = parseCertChain(cert)
  const leaf = chain?.[0]
  if (!leaf) return fail('failed to parse cert: PEM_read_bio_X509_AUX() failed')
  const plain = isPlainPem(key) ? ok(key) : decryptKey(key, keyring)
  if (!plain.ok) return fail('failed to decrypt previous encrypted key')
  const k = parsePrivateKey(plain.value)
  if (!k) return fail('failed to parse key: PEM_read_bio_PrivateKey() failed')
  // stricter than APISIX, which stores a mismatched pair and fails every handshake later
  if (!keyMatchesCert(k, leaf)) return fail('the private key does not match the certificate')
  return ok(leaf)
}

/**
 * The admin's checks of an ssl object's PEM (spec §1.2, in APISIX's order and wording), plus two
 * that APISIX lacks: each key must match its certificate, and every skip_mtls_uri_regex must run
 * on the linear-time engine. `key`/`keys` may be encrypted with any keyring entry.
 */
export function inspectSsl(ssl: Ssl, keyring: readonly string[]): Result<SslFacts> {
  const main = checkCertKeyPair(ssl.cert, ssl.key, keyring)
  if (!main.ok) return main
  const leaves = [main.value]
  const certs = ssl.certs ?? []
  const keys = ssl.keys ?? []
  if (ssl.type === 'server') {
    if (certs.length !== keys.length) return fail('mismatched number of certs and keys')
    for (const [i, c] of certs.entries()) {
      const pair = checkCertKeyPair(c, keys[i] ?? '', keyring)
      if (!pair.ok) return fail(`failed to handle cert-key pair[${i + 1}]: ${pair.error}`)
      leaves.push(pair.value)
    }
  }
  let clientCas: X509Certificate[] = []
  let crls: Crl[] = []
  if (ssl.client) {
    const cas = parseCertChain(ssl.client.ca)
    if (!cas) return fail('failed to validate client_cert: failed to parse cert: PEM_read_bio_X509_AUX() failed')
    clientCas = cas
    for (const [i, p] of (ssl.client.skip_mtls_uri_regex ?? []).entries()) {
      const why = checkPattern(p, true)
      if (why) return fail(`property "client.skip_mtls_uri_regex[${i}]" validation failed: ${why}`)
    }
    if (ssl.client.crl !== undefined) {
      const r = checkCrls(ssl.client.crl, ssl.client.ca)
      if (!r.ok) return fail(`property "client.crl" validation failed: ${r.error}`)
      crls = r.crls
    }
  }
  return ok({ leaves, clientCas, crls })
}

/** Warnings for an accepted ssl object: expired or soon-expiring certificates, SNIs no SAN covers. */
export function sslWarnings(ssl: Ssl, facts: SslFacts, nowMs: number): string[] {
  const out: string[] = []
  for (const [i, leaf] of facts.leaves.entries()) {
    const w = expiryWarning(leaf, nowMs, i === 0 ? 'cert' : `certs[${i - 1}]`)
    if (w) out.push(w)
  }
  for (const [i, ca] of facts.clientCas.entries()) {
    const w = expiryWarning(ca, nowMs, facts.clientCas.length > 1 ? `client.ca[${i}]` : 'client.ca')
    if (w) out.push(w)
  }
  out.push(...crlWarnings(facts.crls, nowMs, 'client.crl'))
  if (ssl.type === 'server') {
    const missing = uncoveredSnis(facts.leaves, ssl.snis ?? (ssl.sni === undefined ? [] : [ssl.sni]))
    if (missing.length > 0) out.push(`the certificate's SANs do not cover ${missing.map((s) => JSON.stringify(s)).join(', ')}`)
  }
  return out
}
