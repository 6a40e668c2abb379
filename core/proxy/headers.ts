/**
 * Request and response headers across the proxy (spec §9.1), in two steps so that plugins edit
 * headers in between:
 *
 * 1. `forwardableHeaders(req.rawHeaders)`: the client's headers minus hop-by-hop ones, computed
 *    from the client's own `Connection` header. Plugins (proxy-rewrite) then add/set/remove on
 *    the result, so a client cannot strip a header the gateway sets by naming it in Connection.
 * 2. `finishUpstreamHeaders(list, facts)`: Host per pass_host, X-Real-IP, X-Forwarded-*.
 *
 * Lists are flat (`[name, value, …]`, as Node's rawHeaders and undici take them): no pair arrays.
 */

/** Header names and values in order, flat (`[name, value, name, value, …]`), names as the client spelled them. */
export type HeaderList = readonly string[]

/** Always hop-by-hop (RFC 9110 §7.6.1, plus Proxy-Connection and HTTP2-Settings); Expect is answered by us. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'expect'])

/** Framing is ours to decide, whatever a Connection header names. */
const NEVER_LISTED = new Set(['content-length', 'content-type'])

/** Names the gateway writes itself; the client's values only feed X-Forwarded-For and trusted restores. */
const GATEWAY_OWNED = new Set(['host', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded'])

/** The one-token Connection values seen on nearly every request and response, parsed once. */
const COMMON_TOKENS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['keep-alive', new Set(['keep-alive'])],
  ['close', new Set(['close'])],
])

/** The lower-case names a Connection header lists (the framing names excepted). */
function connectionTokens(values: readonly string[]): ReadonlySet<string> {
  if (values.length === 1) {
    const common = COMMON_TOKENS.get(values[0]!.toLowerCase())
    if (common !== undefined) return common
  }
  const out = new Set<string>()
  for (const v of values)
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase()
      if (t && !NEVER_LISTED.has(t)) out.add(t)
    }
  return out
}

/** The client's headers to forward, and the Upgrade token when a WebSocket upgrade is allowed. */
export interface Forwardable {
  /** the client's list itself when nothing is dropped (the common case: no copy); never to be changed */
  readonly list: HeaderList
  /** The client's `Upgrade` value when `websocket` was allowed and asked for; undici sends it itself. */
  readonly upgrade: string | undefined
}

/**
 * Node's `rawHeaders` (flat) without hop-by-hop headers and every header the client's `Connection`
 * names. `websocket` (route `enable_websocket`) keeps the Upgrade token. A request with none of
 * them (nearly all: HTTP/2 has no Connection header, HTTP/1.1 clients seldom send more than
 * keep-alive) gets its own list back, not a copy.
 */
export function forwardableHeaders(rawHeaders: readonly string[], websocket: boolean): Forwardable {
  // the first pass only looks; the Connection tokens are only parsed when one was sent, and the
  // names lower-cased again only when something is dropped
  let conn: string[] | undefined
  let upgrade: string | undefined
  let hop = false
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase()
    if (!HOP_BY_HOP.has(lower)) continue
    hop = true
    if (lower === 'connection') (conn ??= []).push(rawHeaders[i + 1]!)
    else if (lower === 'upgrade' && upgrade === undefined) upgrade = rawHeaders[i + 1]
  }
  if (!hop) return { list: rawHeaders, upgrade: undefined }
  const listed = conn === undefined ? undefined : connectionTokens(conn)
  const list: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase()
    if (HOP_BY_HOP.has(lower) || (listed !== undefined && listed.has(lower))) continue
    list.push(rawHeaders[i]!, rawHeaders[i + 1]!)
  }
  // an upgrade counts only when Connection says so (RFC 9110 §7.8)
  const asked = upgrade !== undefined && listed !== undefined && listed.has('upgrade')
  return { list, upgrade: websocket && asked ? upgrade : undefined }
}

/** Facts about the request and the chosen node that the upstream headers carry. */
export interface ForwardFacts {
  /** `$upstream_host`: see upstreamHostFor. */
  readonly upstreamHost: string
  readonly remoteAddr: string
  /** `$scheme` of the client connection. */
  readonly scheme: 'http' | 'https'
  /** The client's Host header as sent ('' when absent). */
  readonly hostHeader: string
  /** nginx `$host` (used when the Host header is empty). */
  readonly host: string
  /** The port of the listener that accepted the request. */
  readonly serverPort: number
  /**
   * apisix.trusted_addresses: undefined when not configured (the client's X-Forwarded-For is
   * kept), true/false for whether the peer is in it (false drops the client's X-Forwarded-For,
   * true keeps the client's own X-Forwarded-Proto/-Host/-Port).
   */
  readonly trustedPeer?: boolean | undefined
}

/** The port at the end of a Host header value (`a.com:8443`, `[::1]:8443`), or undefined. */
function hostPort(h: string): string | undefined {
  let i = h.length
  while (i > 0) {
    const c = h.charCodeAt(i - 1)
    if (c < 0x30 || c > 0x39) break
    i--
  }
  return i < h.length && i > 0 && h.charCodeAt(i - 1) === 0x3a ? h.slice(i) : undefined
}

/**
 * The header list for undici (flat `[name, value, …]`): Host first, the forwardable pairs minus
 * gateway-owned names, then X-Real-IP, X-Forwarded-For (`$proxy_add_x_forwarded_for`),
 * X-Forwarded-Proto, -Host and -Port as APISIX's nginx template sets them.
 */
export function finishUpstreamHeaders(list: HeaderList, f: ForwardFacts): string[] {
  const out: string[] = ['Host', f.upstreamHost]
  // the client's own forwarding headers, read in the same pass (names lower-cased once)
  let xff: string | undefined
  let proto: string | undefined
  let fhost: string | undefined
  let fport: string | undefined
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i]!
    const value = list[i + 1]!
    const lower = name.toLowerCase()
    if (!GATEWAY_OWNED.has(lower)) {
      out.push(name, value)
      continue
    }
    if (lower === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`
    else if (lower === 'x-forwarded-proto') proto ??= value
    else if (lower === 'x-forwarded-host') fhost ??= value
    else if (lower === 'x-forwarded-port') fport ??= value
  }
  const hostHeader = f.hostHeader || f.host
  const trusted = f.trustedPeer === true
  out.push(
    'X-Real-IP', f.remoteAddr,
    'X-Forwarded-For', f.trustedPeer === false || xff === undefined ? f.remoteAddr : `${xff}, ${f.remoteAddr}`,
    'X-Forwarded-Proto', trusted && proto !== undefined ? proto : f.scheme,
    'X-Forwarded-Host', trusted && fhost !== undefined ? fhost : hostHeader,
    'X-Forwarded-Port', trusted && fport !== undefined ? fport : (hostPort(hostHeader) ?? String(f.serverPort)),
  )
  return out
}

/** Inputs of `$upstream_host`. */
export interface UpstreamHostInput {
  readonly passHost: 'pass' | 'node' | 'rewrite' | undefined
  /** upstream.upstream_host (pass_host rewrite). */
  readonly upstreamHost?: string | undefined
  /** proxy-rewrite's `host`, effective with pass_host pass only. */
  readonly rewrittenHost?: string | undefined
  /** The client's Host header ('' when absent) and nginx `$host`. */
  readonly hostHeader: string
  readonly host: string
  /** The picked node, and the upstream scheme for its default port. */
  readonly node: { readonly host: string; readonly port: number }
  readonly scheme: string
}

/** `$upstream_host` by pass_host (spec §9.1; recomputed on a retry to another node). */
export function upstreamHostFor(i: UpstreamHostInput): string {
  if (i.passHost === 'rewrite' && i.upstreamHost) return i.upstreamHost
  if (i.passHost === 'node') {
    const h = i.node.host.includes(':') && !i.node.host.startsWith('[') ? `[${i.node.host}]` : i.node.host
    const defaultPort = i.scheme === 'https' || i.scheme === 'grpcs' ? 443 : 80
    return i.node.port === defaultPort ? h : `${h}:${i.node.port}`
  }
  return i.rewrittenHost ?? (i.hostHeader || i.host)
}

/** Response hop-by-hop names (the framing and connection of the client side are Node's to manage). */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings'])

/** An upstream response's headers (undici's object form) without hop-by-hop and Connection-listed ones. */
export function stripResponseHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const conn = headers['connection']
  const listed = connectionTokens(conn === undefined ? [] : Array.isArray(conn) ? conn : [conn])
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (value === undefined || RESPONSE_HOP_BY_HOP.has(lower) || listed.has(lower)) continue
    out[name] = value
  }
  return out
}

/** Response names never passed to the client: hop-by-hop ones, and Server (the gateway sends its own, like nginx). */
const RESPONSE_DROPPED = new Set([...RESPONSE_HOP_BY_HOP, 'server'])

/**
 * undici's raw response headers (`[name, value, …]` as Buffers) → the flat list for
 * `res.writeHead`: hop-by-hop and Connection-listed names dropped, order and repeats kept,
 * bytes kept as latin1 (what Node writes back out). `lowerNames`: names lower-cased (HTTP/2,
 * whose node:http2 would lower-case each one again), else as the upstream spelled them.
 */
export function responseHeaderList(raw: readonly (Buffer | string)[], upstreamStatus: number, lowerNames = false): string[] {
  // one pass: each name converted and lower-cased once; a Connection header's tokens are parsed
  // after it, and the list walked again only when they name a header that is not hop-by-hop
  // anyway (never for `keep-alive` or `close`)
  const out: string[] = []
  let listed: string[] | undefined
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'connection') (listed ??= []).push(raw[i + 1]!.toString('latin1'))
    else if (!RESPONSE_DROPPED.has(lower)) out.push(lowerNames ? lower : name, raw[i + 1]!.toString('latin1'))
  }
  const drop = listed === undefined ? undefined : connectionTokens(listed)
  let kept = out
  if (drop !== undefined && [...drop].some((t) => !RESPONSE_DROPPED.has(t))) {
    kept = []
    for (let i = 0; i + 1 < out.length; i += 2) if (!drop.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!)
  }
  kept.push(lowerNames ? 'server' : 'Server', 'APISIX')
  // APISIX adds the upstream's status when it is a 5xx (spec §9.2)
  if (upstreamStatus >= 500) kept.push(lowerNames ? 'x-apisix-upstream-status' : 'X-APISIX-Upstream-Status', String(upstreamStatus))
  return kept
}
