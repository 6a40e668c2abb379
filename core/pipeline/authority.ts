import { normalizeHost } from '../net/hostname.js'
import type { SniEntry, SniIndex } from '../tls/sni-index.js'

/**
 * Host checks done before a request is routed: the `Host` header as nginx's
 * ngx_http_validate_host judges it, and the authority of an absolute-form target as nginx's
 * request-line parser reads it. A request that fails either check is answered 400 and never proxied.
 * And the misdirected-request check of a TLS connection (421).
 */

/**
 * Why a `Host` header value is refused (nginx "client sent invalid host header"), or undefined.
 * Like ngx_http_validate_host: no `/`, no control byte, space or DEL, no `..`, and a host part
 * that is not empty once the port and one trailing dot are set aside.
 */
export function checkHostHeader(value: string): string | undefined {
  let dotPos = -2
  let hostLen = value.length
  let state: 'usual' | 'literal' | 'rest' = 'usual'
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x2e) {
      if (dotPos === i - 1) return 'host holds ".."'
      dotPos = i
    } else if (c === 0x3a) {
      if (state === 'usual') {
        hostLen = i
        state = 'rest'
      }
    } else if (c === 0x5b) {
      if (i === 0) state = 'literal'
    } else if (c === 0x5d) {
      if (state === 'literal') {
        hostLen = i + 1
        state = 'rest'
      }
    } else if (c === 0x2f) {
      return 'host holds "/"'
    } else if (c <= 0x20 || c === 0x7f) {
      return 'host holds a control byte or a space'
    }
  }
  if (dotPos === hostLen - 1) hostLen--
  return hostLen <= 0 ? 'empty host' : undefined
}

const REG_NAME = /^[A-Za-z0-9._-]+$/
const IP_LITERAL = /^\[[0-9A-Fa-f:.]+\]$/

/**
 * Why the authority of an absolute-form target (`GET http://AUTHORITY/...`) is refused, or
 * undefined. Like nginx's request-line parser: a host of letters, digits, `.`, `-` and `_` (no
 * `..`), or an IP literal in brackets, then an optional port of digits; no userinfo (RFC 9110
 * §4.2.4 treats it as an error), no percent-encoding, nothing else.
 */
export function checkAuthority(authority: string): string | undefined {
  let host = authority
  let port: string | undefined
  const close = authority.lastIndexOf(']')
  const colon = authority.indexOf(':', close + 1)
  if (colon >= 0) {
    host = authority.slice(0, colon)
    port = authority.slice(colon + 1)
  }
  if (host === '') return 'absolute-form target without a host'
  if (!(IP_LITERAL.test(host) || (REG_NAME.test(host) && !host.includes('..')))) return 'invalid host in the request target'
  if (port !== undefined && port !== '' && (!/^\d{1,5}$/.test(port) || Number(port) > 65535)) return 'invalid port in the request target'
  return undefined
}

/** True when `scheme` may be proxied in absolute-form (RFC 9112 §3.2.2: http and https URIs). */
export const isHttpScheme = (scheme: string): boolean => {
  const s = scheme.toLowerCase()
  return s === 'http' || s === 'https'
}

/**
 * True when a request's Transfer-Encoding ends in `chunked` (RFC 9112 §6.3: otherwise a
 * request's length cannot be known, and Node's parser fails the request only after handing it
 * over, so it must not be proxied).
 */
export const isChunkedLast = (te: string): boolean => /(?:^|,)[ \t]*chunked[ \t]*$/i.test(te)

/** A misdirected request's answer: 421, and the reason label `apisix_client_cert_failures_total` keeps. */
export interface Misdirected {
  readonly status: 421
  readonly error_msg: string
  readonly reason: 'sni_host_mismatch'
}

/**
 * Whether a request on a TLS connection is misdirected (CONTRACT.md, data plane): `host` (HTTP/2:
 * `:authority`) would choose an ssl object that has `client`, and that object is not the one whose
 * id is `connSslId`, the one this connection's SNI chose (no SNI: the `fallback_sni` object). The Host is compared
 * without case, port or trailing dot; a Host the same object serves (a wildcard, a second SNI) is
 * served, and so is a Host of an object without `client` or of none. Answered 421 as nginx
 * (ngx_http_set_virtual_server), Caddy and Traefik do, where APISIX answers 400: an HTTP/2
 * client that coalesced connections retries on a fresh one only after a 421.
 * Pure: HTTP/1.1 (core/pipeline/handle.ts), HTTP/2 streams and the admin's explain all ask it.
 */
export function misdirectedRequest(
  connSslId: string,
  host: string,
  index: Pick<SniIndex<SniEntry & { readonly client: unknown }>, 'lookup'>,
): Misdirected | undefined {
  // the requests of a connection (every stream of an HTTP/2 one) ask the same question: an index
  // never changes once built (a new generation makes a new one), so the last answer stands
  if (index === last.index && host === last.host && connSslId === last.connSslId) return last.answer
  const h = normalizeHost(host)
  const chosen = h === '' ? undefined : index.lookup(h)
  // objects are compared by id: a connection outlives the generation it was made in
  const answer: Misdirected | undefined =
    chosen === undefined || chosen.client === undefined || chosen.id === connSslId
      ? undefined
      : Object.freeze({
          status: 421,
          error_msg: `misdirected request: the host ${h} is served under another client-certificate policy than this connection's TLS server name; open a new connection for it`,
          reason: 'sni_host_mismatch',
        } as const)
  last = { index, host, connSslId, answer }
  return answer
}
let last: { readonly index: object | undefined; readonly host: string; readonly connSslId: string; readonly answer: Misdirected | undefined } = { index: undefined, host: '', connSslId: '', answer: undefined }
