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

/** Client-certificate forms that need the PEM or dates, computed from the DER on demand. */
function certVar(c: ClientCert, name: string, nowMs: number): string | undefined {
  switch (name) {
    case 'ssl_client_fingerprint':
      return c.fingerprint
    case 'ssl_client_serial':
      return c.serial
    case 'ssl_client_s_dn':
      return c.subjectDn
    case 'ssl_client_i_dn':
      return c.issuerDn
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

/** Reads the variable `name` of a request; undefined when it has no value. */
export function readVar(s: VarSource, name: string): string | undefined {
  switch (name) {
    case 'uri':
    case 'document_uri':
      return s.uri
    case 'request_uri':
      // APISIX rewrites request_uri to the normalised uri plus the arguments (apisix/init.lua)
      return s.query ? `${s.uri}?${s.query}` : s.uri
    case 'real_request_uri':
      return s.rawTarget
    case 'args':
    case 'query_string':
      return s.query
    case 'is_args':
      return s.query ? '?' : ''
    case 'method':
    case 'request_method':
      return s.method
    case 'host':
      return s.host
    case 'hostname':
      return HOSTNAME
    case 'remote_addr':
      return s.remoteAddr
    case 'remote_port':
      return String(s.remotePort)
    case 'server_addr':
      return s.serverAddr
    case 'server_port':
      return String(s.serverPort)
    case 'scheme':
      return s.scheme
    case 'https':
      return s.scheme === 'https' ? 'on' : ''
    case 'server_protocol':
      return 'HTTP/1.1'
    case 'route_id':
      return s.routeId
    case 'route_name':
      return s.routeName
    case 'consumer_name':
      return s.consumerName
    case 'ssl_server_name':
      return s.sni ?? ''
    case 'ssl_protocol':
      return s.tlsProtocol ?? ''
    case 'ssl_client_verify':
      return s.clientVerify
  }
  if (name.startsWith('http_')) return headerVar(s.headers, name.slice(5))
  if (name.startsWith('arg_')) return s.args().get(name.slice(4)) ?? undefined
  if (name.startsWith('cookie_')) return s.cookies().get(name.slice(7))
  if (name.startsWith('ssl_client_')) return s.clientCert ? certVar(s.clientCert, name, s.nowMs) : ''
  return undefined
}
