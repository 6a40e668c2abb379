import type { CrlSet } from '../x509/crl.js'
/**
 * The RequestContext of one request: what plugins see (core/plugins/types.ts), the upstream
 * request they may edit, and the variables, computed on first use.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { RequestHead } from './http.js'
import type { ClientCert, RequestContext, UpstreamRequest } from '../plugins/types.js'
import type { TlsFacts } from '../tls/facts.js'
import type { CertResolution } from './client-cert-source.js'
import { parseCookies, readVar, type VarSource } from './vars.js'

/** What the handler knows when it makes the context. */
export interface ContextInit {
  readonly req: RequestHead
  /** `$uri` and `$args` (parseTarget) */
  readonly uri: string
  readonly query: string
  /** the raw path as sent (no query) */
  readonly rawPath: string
  readonly host: string
  readonly tls: TlsFacts | undefined
  readonly nowMs: number
  readonly consumerByCertSha256: (sha256: string) => string | undefined
  /** the effective client certificate and TLS verdict (core/pipeline/client-cert-source.ts); default: the connection's */
  readonly cert?: CertResolution | undefined
}

/** `::ffff:1.2.3.4` → `1.2.3.4` (nginx shows IPv4 clients of a dual-stack socket that way). */
const plainAddr = (a: string | undefined): string => (a === undefined ? '' : a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a)

/**
 * The upstream request as plugins edit it. Its header edits are made on first use: most requests
 * meet no plugin that edits headers, and the proxy asks `edited` before reading them.
 */
export class UpstreamEdits implements UpstreamRequest {
  method: string
  uri: string
  host: string | undefined = undefined
  #set: Map<string, string | string[]> | undefined = undefined
  #add: Array<[string, string]> | undefined = undefined
  #remove: Set<string> | undefined

  constructor(method: string, uri: string, remove: Set<string> | undefined) {
    this.method = method
    this.uri = uri
    this.#remove = remove
  }

  get setHeaders(): Map<string, string | string[]> {
    return (this.#set ??= new Map())
  }

  get addHeaders(): Array<[string, string]> {
    return (this.#add ??= [])
  }

  get removeHeaders(): Set<string> {
    return (this.#remove ??= new Set())
  }

  /** Whether any header edit is in place (without making the collections). */
  get edited(): boolean {
    return (this.#set?.size ?? 0) > 0 || (this.#add?.length ?? 0) > 0 || (this.#remove?.size ?? 0) > 0
  }
}

/** One request's context. */
export class Context implements RequestContext, VarSource {
  readonly method: string
  readonly uri: string
  readonly query: string
  readonly host: string
  readonly remoteAddr: string
  readonly remotePort: number
  readonly serverAddr: string
  readonly serverPort: number
  readonly secure: boolean
  readonly scheme: 'http' | 'https'
  readonly sni: string | undefined
  readonly tlsProtocol: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly rawTarget: string
  readonly clientCert: ClientCert | undefined
  readonly clientCertError: string | undefined
  readonly sslClientCa: string | undefined
  readonly sslClientDepth: number | undefined
  readonly sslClientCrls: CrlSet | undefined
  readonly nowMs: number
  readonly upstream: UpstreamRequest
  consumer: { readonly username: string } | undefined = undefined
  routeId: string | undefined = undefined
  routeName: string | undefined = undefined
  readonly #byCert: (sha256: string) => string | undefined
  readonly #tls: TlsFacts | undefined
  #args: URLSearchParams | undefined
  #cookies: ReadonlyMap<string, string> | undefined

  constructor(i: ContextInit) {
    const req = i.req
    const sock = req.socket
    this.method = req.method ?? 'GET'
    this.uri = i.uri
    this.query = i.query
    this.host = i.host
    this.remoteAddr = plainAddr(sock.remoteAddress)
    this.remotePort = sock.remotePort ?? 0
    this.serverAddr = plainAddr(sock.localAddress)
    this.serverPort = sock.localPort ?? 0
    this.secure = i.cert ? i.cert.secure : i.tls !== undefined
    this.scheme = i.tls ? 'https' : 'http'
    this.sni = i.tls?.sni
    this.tlsProtocol = i.tls?.protocol
    this.headers = req.headers
    this.rawTarget = req.url ?? '/'
    this.clientCert = i.cert ? i.cert.clientCert : i.tls?.clientCert
    this.clientCertError = i.cert?.clientCertError
    this.sslClientCa = i.tls?.client?.ca
    this.sslClientDepth = i.tls?.client?.depth
    this.sslClientCrls = i.tls?.client?.crls
    this.nowMs = i.nowMs
    this.#byCert = i.consumerByCertSha256
    this.#tls = i.tls
    this.upstream = new UpstreamEdits(
      this.method,
      this.rawTarget.startsWith('/') ? this.rawTarget : i.query ? `${i.rawPath}?${i.query}` : i.rawPath,
      // headers an untrusted peer may not send never reach the upstream
      i.cert !== undefined && i.cert.strip.length > 0 ? new Set(i.cert.strip) : undefined,
    )
  }

  get consumerName(): string | undefined {
    return this.consumer?.username
  }

  get clientVerify(): string {
    return this.clientCert?.verify ?? this.#tls?.verify ?? 'NONE'
  }

  args(): URLSearchParams {
    return (this.#args ??= new URLSearchParams(this.query))
  }

  cookies(): ReadonlyMap<string, string> {
    if (!this.#cookies) {
      const c = this.headers.cookie
      this.#cookies = parseCookies(Array.isArray(c) ? c.join('; ') : c)
    }
    return this.#cookies
  }

  varOf(name: string): string | undefined {
    return readVar(this, name)
  }

  consumerByCertSha256(sha256: string): string | undefined {
    return this.#byCert(sha256)
  }
}
