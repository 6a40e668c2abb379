/**
 * nginx and APISIX variables (`$name`, spec §7; CONTRACT.md "The data plane"), read from a
 * request on first use. Unknown names read as undefined (templates turn that into '').
 */
import { hostname } from 'node:os'
import type { IncomingHttpHeaders } from 'node:http'
import type { ClientCert } from '../plugins/types.js'
import { buildClientCertFacts, daysRemaining, escapeUriComponent, formatAsn1Time } from '../x509/cert.js'
import { toPem } from '../x509/pem.js'

/** What the variables are computed from (a RequestContext provides it). */
export interface VarSource {
  readonly method: string
  /** `$uri` */
  readonly uri: string
  /** `$args` */
  readonly query: string
  /** the request target as sent */
  readonly rawTarget: string
  /** `$host` */
  readonly host: string
  readonly remoteAddr: string
  readonly remotePort: number
  readonly serverAddr: string
  readonly serverPort: number
  readonly scheme: 'http' | 'https'
  readonly headers: IncomingHttpHeaders
  readonly routeId: string | undefined
  readonly routeName: string | undefined
  readonly consumerName: string | undefined
  /** the SNI the client sent ('' without one) */
  readonly sni: string | undefined
  readonly tlsProtocol: string | undefined
  readonly clientCert: ClientCert | undefined
  /** `$ssl_client_verify` ('NONE' without a certificate) */
  readonly clientVerify: string
  readonly nowMs: number
  /** the query's arguments, decoded (parsed once) */
  args(): URLSearchParams
  /** the Cookie header's pairs (parsed once) */
  cookies(): ReadonlyMap<string, string>
}

/** Parses a Cookie header (`a=1; b=2`): first value of each name wins, like nginx's $cookie_NAME. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (!header) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    const name = part.slice(0, eq).trim()
    if (name && !out.has(name)) out.set(name, part.slice(eq + 1).trim())
  }
  return out
}

/** `$http_NAME`: the header named with `_` read as `-`, repeated values joined as nginx does. */
function headerVar(headers: IncomingHttpHeaders, suffix: string): string | undefined {
  const v = headers[suffix.toLowerCase().replace(/_/g, '-')]
  if (v === undefined) return undefined
  return Array.isArray(v) ? v.join(', ') : v
}

const HOSTNAME = hostname()

/**
 * Client-certificate forms that need the PEM or dates, computed from the DER on demand (the
 * stored fields, fingerprint, serial and DNs, are read through FIXED below).
 */
function certVar(c: ClientCert, name: string, nowMs: number): string | undefined {
  switch (name) {
    case 'ssl_client_raw_cert':
      return toPem(c.der)
    case 'ssl_client_escaped_cert':
      return escapeUriComponent(toPem(c.der))
    case 'ssl_client_cert':
      return toPem(c.der).replace(/\n$/, '').replace(/\n/g, '\n\t')
    case 'ssl_client_cert_rfc9440':
      // RFC 9440's Client-Cert: a structured-field byte sequence of the DER, for the verified certificate only
      return c.verified ? `:${c.der.toString('base64')}:` : ''
  }
  const facts = buildClientCertFacts(c.der)
  if (!facts) return ''
  switch (name) {
    case 'ssl_client_v_start':
      return formatAsn1Time(facts.notBefore)
    case 'ssl_client_v_end':
      return formatAsn1Time(facts.notAfter)
    case 'ssl_client_v_remain':
      return String(daysRemaining(facts.notAfter, nowMs))
  }
  return undefined
}

type Reader = (s: VarSource) => string | undefined

const sslClient = (field: 'fingerprint' | 'serial' | 'subjectDn' | 'issuerDn'): Reader => (s) => (s.clientCert ? s.clientCert[field] : '')

/**
 * The variables of fixed names, found with one Map lookup: a template's names are the same
 * strings on every request, so their hash is computed once (a string switch compared the name
 * with each case in turn, about 30 calls for an `$ssl_client_*` name on every request).
 */
const FIXED = new Map<string, Reader>([
  ['uri', (s) => s.uri],
  ['document_uri', (s) => s.uri],
  // APISIX rewrites request_uri to the normalised uri plus the arguments (apisix/init.lua)
  ['request_uri', (s) => (s.query ? `${s.uri}?${s.query}` : s.uri)],
  ['real_request_uri', (s) => s.rawTarget],
  ['args', (s) => s.query],
  ['query_string', (s) => s.query],
  ['is_args', (s) => (s.query ? '?' : '')],
  ['method', (s) => s.method],
  ['request_method', (s) => s.method],
  ['host', (s) => s.host],
  ['hostname', () => HOSTNAME],
  ['remote_addr', (s) => s.remoteAddr],
  ['remote_port', (s) => String(s.remotePort)],
  ['server_addr', (s) => s.serverAddr],
  ['server_port', (s) => String(s.serverPort)],
  ['scheme', (s) => s.scheme],
  ['https', (s) => (s.scheme === 'https' ? 'on' : '')],
  ['server_protocol', () => 'HTTP/1.1'],
  ['route_id', (s) => s.routeId],
  ['route_name', (s) => s.routeName],
  ['consumer_name', (s) => s.consumerName],
  ['ssl_server_name', (s) => s.sni ?? ''],
  ['ssl_protocol', (s) => s.tlsProtocol ?? ''],
  ['ssl_client_verify', (s) => s.clientVerify],
  ['ssl_client_fingerprint', sslClient('fingerprint')],
  ['ssl_client_serial', sslClient('serial')],
  ['ssl_client_s_dn', sslClient('subjectDn')],
  ['ssl_client_i_dn', sslClient('issuerDn')],
])

/** Reads the variable `name` of a request; undefined when it has no value. */
export function readVar(s: VarSource, name: string): string | undefined {
  const fixed = FIXED.get(name)
  if (fixed !== undefined) return fixed(s)
  if (name.startsWith('http_')) return headerVar(s.headers, name.slice(5))
  if (name.startsWith('arg_')) return s.args().get(name.slice(4)) ?? undefined
  if (name.startsWith('cookie_')) return s.cookies().get(name.slice(7))
  if (name.startsWith('ssl_client_')) return s.clientCert ? certVar(s.clientCert, name, s.nowMs) : ''
  return undefined
}
