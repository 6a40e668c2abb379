/**
 * Which client certificate a request carries, and whether it counts as TLS (CONTRACT.md
 * "Client-certificate plugins", config `apisix.ssl.client_cert_header`). From an address in
 * `trusted_proxies` the certificate in the configured header counts as presented (it wins over
 * the connection's own certificate: a proxy may authenticate itself with mTLS and pass its
 * client's certificate in the header) and its `X-Forwarded-Proto: https` counts as TLS. From
 * any other address both headers are dropped before anything reads them or they are proxied,
 * and so is the header named like it plus `-Chain` (RFC 9440's `Client-Cert-Chain`), whose
 * intermediates a trusted proxy's certificate carries for chain building.
 * Header values are parsed once per worker: results are cached in a Map keyed by the value
 * itself (V8 hashes it once per request, about 1 µs; a SHA-256 of it cost 15 µs).
 */
import { buildCidrSet, type CidrSet } from '../net/cidr.js'
import { parseHeaderCert, parseHeaderChain } from '../x509/header-cert.js'
import { buildClientCertFacts } from '../x509/cert.js'
import type { TlsFacts } from '../tls/facts.js'
import type { ClientCert } from '../plugins/types.js'

/** `apisix.ssl.client_cert_header` as config.yaml gives it. */
export interface CertHeaderConfig {
  readonly name: string
  readonly trusted_proxies: readonly string[]
}

/** What one request's certificate facts come to. */
export interface CertResolution {
  /** the effective certificate: a trusted proxy's header, else this connection's handshake */
  readonly clientCert: ClientCert | undefined
  /** why the trusted proxy's header could not be used; undefined when it was fine or absent */
  readonly clientCertError: string | undefined
  /** TLS here, or a trusted proxy said X-Forwarded-Proto: https */
  readonly secure: boolean
  /** the peer is in trusted_proxies */
  readonly trusted: boolean
  /** lower-case names to drop from the request before plugins read headers and before proxying */
  readonly strip: readonly string[]
}

/** The per-worker resolver: compiled config plus the parse cache. */
export interface ClientCertSource {
  resolve(remoteAddr: string, headers: Readonly<Record<string, string | string[] | undefined>>, tls: TlsFacts | undefined): CertResolution
}

/** Default number of distinct header values whose parse result a worker keeps (values are at most 16 KiB). */
export const CERT_CACHE_SIZE = 512

type Parsed = { readonly cert: ClientCert; readonly error?: undefined } | { readonly cert?: undefined; readonly error: string }

const XFP = 'x-forwarded-proto'
/** No header to strip (shared: CertResolution.strip is read-only). */
const NONE: readonly string[] = Object.freeze([])

/**
 * The ClientCert of a certificate a trusted proxy passed (a trusted proxy vouches for it), with
 * the intermediates of its chain header; an error names the header that was wrong.
 */
function headerClientCert(name: string, value: unknown, chain: unknown): Parsed {
  const r = parseHeaderCert(value)
  if (!r.ok) return { error: `the ${name} header from the proxy: ${r.error}` }
  const c = chain === undefined ? undefined : parseHeaderChain(chain)
  if (c && !c.ok) return { error: `the ${name}-Chain header from the proxy: ${c.error}` }
  const f = buildClientCertFacts(r.der)
  if (!f) return { error: 'the certificate cannot be read' }
  return {
    cert: {
      verified: true,
      source: 'header',
      der: r.der,
      verify: 'SUCCESS',
      fingerprint: f.fingerprint,
      serial: f.serial,
      subjectDn: f.subjectDn,
      issuerDn: f.issuerDn,
      sha256: f.sha256,
      notBefore: f.notBefore,
      notAfter: f.notAfter,
      x509: r.x509,
      ...(c ? { intermediates: c.ders } : {}),
    },
  }
}

/** The first token of X-Forwarded-Proto is https (values from several proxies are comma-joined). */
function saysHttps(v: string | string[] | undefined): boolean {
  const first = Array.isArray(v) ? v[0] : v
  if (first === undefined) return false
  const comma = first.indexOf(',')
  return (comma < 0 ? first : first.slice(0, comma)).trim().toLowerCase() === 'https'
}

/**
 * Builds the resolver for a worker: the CIDR set is compiled once (the config was validated),
 * and parse results (certificates and errors) are kept for `cacheSize` distinct header values,
 * least recently used first out.
 */
export function createClientCertSource(cfg: CertHeaderConfig, cacheSize: number = CERT_CACHE_SIZE): ClientCertSource {
  const shown = cfg.name.trim()
  const name = shown.toLowerCase()
  const chainName = `${name}-chain`
  const trustedSet: CidrSet = buildCidrSet(cfg.trusted_proxies)
  const cache = new Map<string, Parsed>()
  // the CIDR test costs about 4 µs (BigInt); a connection's address repeats, so verdicts are kept
  const peers = new Map<string, boolean>()
  const isTrusted = (addr: string): boolean => {
    let v = peers.get(addr)
    if (v === undefined) {
      if (peers.size >= 4096) peers.clear()
      peers.set(addr, (v = trustedSet.has(addr)))
    }
    return v
  }
  const stripUntrusted: readonly string[] = name === '' ? [XFP] : [name, chainName, XFP]

  const parse = (value: string | string[], chain: string | string[] | undefined): Parsed => {
    if (Array.isArray(value) || Array.isArray(chain)) return headerClientCert(shown, value, chain)
    const key = chain === undefined ? value : `${value}\n${chain}`
    let hit = cache.get(key)
    if (hit) {
      cache.delete(key)
      cache.set(key, hit)
      return hit
    }
    hit = headerClientCert(shown, value, chain)
    if (cache.size >= cacheSize) {
      const oldest = cache.keys().next()
      if (!oldest.done) cache.delete(oldest.value)
    }
    cache.set(key, hit)
    return hit
  }

  return {
    resolve(remoteAddr, headers, tls) {
      const trusted = isTrusted(remoteAddr)
      if (!trusted) {
        // nearly every request sends none of them: no array made then
        let present: string[] | undefined
        for (const h of stripUntrusted) if (headers[h] !== undefined) (present ??= []).push(h)
        return { clientCert: tls?.clientCert, clientCertError: undefined, secure: tls !== undefined, trusted, strip: present ?? NONE }
      }
      const secure = tls !== undefined || saysHttps(headers[XFP])
      const value = name === '' ? undefined : headers[name]
      if (value === undefined) return { clientCert: tls?.clientCert, clientCertError: undefined, secure, trusted, strip: [] }
      const p = parse(value, headers[chainName])
      if (p.cert) return { clientCert: p.cert, clientCertError: undefined, secure, trusted, strip: [] }
      return { clientCert: undefined, clientCertError: p.error, secure, trusted, strip: [] }
    },
  }
}
