/**
 * What the gateway answers when it cannot get a response from an upstream (spec §9.5, §9.6;
 * DESIGN.md §2.7): error codes → 502/504 with nginx's semantics, and the exact bodies APISIX
 * sends for its own errors.
 */

/** How a failed upstream attempt is answered and whether nginx's `proxy_next_upstream error timeout` retries it. */
export interface UpstreamFailure {
  readonly status: 502 | 504
  /** A short log reason ('connect refused', 'read timeout' …). */
  readonly reason: string
  /** A connection error or timeout: another node may be tried (if the request can be resent). */
  readonly retryable: boolean
}

const byCode: Readonly<Record<string, UpstreamFailure>> = {
  UND_ERR_CONNECT_TIMEOUT: { status: 504, reason: 'connect timeout', retryable: true },
  ETIMEDOUT: { status: 504, reason: 'connect timeout', retryable: true },
  UND_ERR_HEADERS_TIMEOUT: { status: 504, reason: 'read timeout (headers)', retryable: true },
  UND_ERR_BODY_TIMEOUT: { status: 504, reason: 'read timeout (body)', retryable: false },
  ECONNREFUSED: { status: 502, reason: 'connect refused', retryable: true },
  ECONNRESET: { status: 502, reason: 'connection reset', retryable: true },
  EPIPE: { status: 502, reason: 'connection reset', retryable: true },
  UND_ERR_SOCKET: { status: 502, reason: 'upstream closed the connection', retryable: true },
  UND_ERR_CLOSED: { status: 502, reason: 'upstream closed the connection', retryable: true },
  EHOSTUNREACH: { status: 502, reason: 'host unreachable', retryable: true },
  ENETUNREACH: { status: 502, reason: 'network unreachable', retryable: true },
  ENOTFOUND: { status: 502, reason: 'name not resolved', retryable: true },
  EAI_AGAIN: { status: 502, reason: 'name not resolved', retryable: true },
  UND_ERR_INVALID_ARG: { status: 502, reason: 'invalid request for the upstream', retryable: false },
  HPE_INVALID_CONSTANT: { status: 502, reason: 'invalid response', retryable: false },
  UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE: { status: 502, reason: 'invalid response', retryable: false },
}

/** OpenSSL/Node TLS failures to the upstream all answer 502, like nginx's SSL handshake errors. */
const isTlsCode = (code: string): boolean =>
  code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)

function codeOf(err: unknown): string | undefined {
  // undici and fetch wrap the system error in `cause`; look a few levels down
  let e: unknown = err
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (byCode[code] || isTlsCode(code))) return code
    e = (e as { cause?: unknown }).cause
  }
  const top = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined
  return typeof top === 'string' ? top : undefined
}

/** Classifies an error from an upstream attempt; unknown errors are a non-retryable 502. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = codeOf(err)
  if (code === undefined) return { status: 502, reason: 'upstream error', retryable: false }
  const known = byCode[code]
  if (known) return known
  if (isTlsCode(code)) return { status: 502, reason: `TLS to upstream failed (${code})`, retryable: true }
  return { status: 502, reason: `upstream error (${code})`, retryable: false }
}

/** The status alone (DESIGN.md §2.7's `upstreamStatus`). */
export const upstreamStatus = (err: unknown): 502 | 504 => classifyUpstreamError(err).status

/** nginx's reason phrases for the statuses the gateway produces itself. */
const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Authorization Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Not Allowed',
  408: 'Request Time-out',
  411: 'Length Required',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
}

/** nginx's reason phrase for a status ('Error' for one it has none for). */
export const reasonPhrase = (status: number): string => REASONS[status] ?? 'Error'

/** Content-Type of nginx's error pages. */
export const ERROR_PAGE_TYPE = 'text/html; charset=utf-8'

/** APISIX-Runtime's nginx error page for a status, byte for byte (CRLF line ends). */
export function errorPage(status: number): string {
  const title = `${status} ${reasonPhrase(status)}`
  return (
    '<html>\r\n' +
    `<head><title>${title}</title></head>\r\n` +
    '<body>\r\n' +
    `<center><h1>${title}</h1></center>\r\n` +
    '<hr><center>openresty</center>\r\n' +
    '<p><em>Powered by <a href="https://apisix.apache.org/">APISIX</a>.</em></p></body>\r\n' +
    '</html>\r\n'
  )
}

/** The body of APISIX's 404 when no route matches (with its trailing newline). */
export const ROUTE_NOT_FOUND_BODY = '{"error_msg":"404 Route Not Found"}\n'

/**
 * Content-Type of APISIX's own `{"error_msg"}` bodies: core.response.exit sets none, so nginx's
 * `default_type text/plain` with `charset utf-8` applies (apisix/core/response.lua).
 */
export const APISIX_ERROR_TYPE = 'text/plain; charset=utf-8'
