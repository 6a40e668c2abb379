import type { IncomingMessage } from 'node:http'
import { responseOnSocket } from '../runtime/node-internals.js'
import type { HttpResponse, RequestHead } from './http.js'
import type { Duplex } from 'node:stream'
import type { Generation } from '../generation/generation.js'
import { normalizeHost } from '../net/hostname.js'
import { tlsFactsOf } from '../tls/facts.js'
import { mtlsGate } from '../tls/mtls-gate.js'
import { liveFacts } from '../tls/revocation.js'
import { runChains } from '../plugins/chain.js'
import type { Step, UpstreamRequest } from '../plugins/types.js'
import { finishUpstreamHeaders, forwardableHeaders, upstreamHostFor, type HeaderList } from '../proxy/headers.js'
import { forward, type ForwardFields, type ForwardRequest, type ForwardResult, type UpgradeSocket } from '../proxy/forward.js'
import type { Pools } from '../proxy/pools.js'
import { hashKeyOf, type PlanNode, type UpstreamPlan } from '../proxy/upstream-plan.js'
import { Context } from './context.js'
import type { ClientCertSource } from './client-cert-source.js'
import { parseTarget } from './path.js'
import { checkHostHeader, isChunkedLast, misdirectedRequest } from './authority.js'
import type { RouteEntry } from '../generation/http-plan.js'
import { sendError, sendJson, sendReply } from './respond.js'

/** One finished request, for the access log and metrics. */
export interface RequestRecord {
  readonly ctx: Context | undefined
  readonly req: RequestHead
  readonly status: number
  readonly route: RouteEntry | undefined
  readonly startMs: number
  readonly upstream: ForwardResult | undefined
  /** why the mTLS gate refused the request (apisix_client_cert_failures_total's reason) */
  readonly gateReason?: string
}

/** What the request handler needs from its worker. */
export interface HandlerDeps {
  current(): Generation
  isReady(): boolean
  readyError(): string
  readonly pools: Pools
  /** the client certificate of a request: the handshake's or a trusted proxy's header (apisix.ssl.client_cert_header) */
  readonly certSource?: ClientCertSource
  /** called once per finished request (access log, metrics) */
  onRequest?(r: RequestRecord): void
  /** `nginx_config.http.client_body_timeout` in ms: a request body that stalls this long gets 408 (0: no bound) */
  readonly clientBodyTimeoutMs?: number
  /** `nginx_config.http.send_timeout` in ms: a client that takes no response bytes this long is cut (0: no bound) */
  readonly sendTimeoutMs?: number
}

/** The handler of the HTTP server: plain requests, and upgrade requests with their socket. */
export interface Handler {
  (req: RequestHead, res: HttpResponse): void
  /** the server's 'upgrade' event: a WebSocket goes through when the route allows it, else a plain request */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
}

/** Counts `Host` headers in the raw list (Node keeps the first of several; RFC 9112 §3.2 says 400). */
function hostCount(raw: readonly string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++
  return n
}

/** The client's headers after the plugins' edits: removed and set names dropped, set values, then added ones. */
function applyEdits(list: HeaderList, u: UpstreamRequest): HeaderList {
  if (!u.edited) return list
  const out: string[] = []
  for (let i = 0; i + 1 < list.length; i += 2) {
    const lower = list[i]!.toLowerCase()
    if (!u.removeHeaders.has(lower) && !u.setHeaders.has(lower)) out.push(list[i]!, list[i + 1]!)
  }
  for (const [name, v] of u.setHeaders) {
    if (Array.isArray(v)) for (const x of v) out.push(name, x)
    else out.push(name, v)
  }
  for (const [name, v] of u.addHeaders) out.push(name, v)
  return out
}

type Writable<T> = { -readonly [K in keyof T]: T[K] }
// Exchange's data fields are forward()'s ForwardFields, set once in its constructor (declared there, not repeated here)
interface Exchange extends Writable<ForwardFields> {}

/** The proxy side of one request: what forward() asks for, as methods (no closures per request). */
class Exchange implements ForwardRequest {
  readonly now = Date.now
  readonly #d: HandlerDeps
  readonly #ctx: Context
  readonly #route: RouteEntry
  readonly #headers: HeaderList
  readonly #hostHeader: string
  readonly #startMs: number

  constructor(d: HandlerDeps, route: RouteEntry, plan: UpstreamPlan, ctx: Context, hostHeader: string, req: RequestHead, res: HttpResponse, up: UpgradeSocket | undefined, startMs: number) {
    const fw = forwardableHeaders(req.rawHeaders, route.websocket && up !== undefined)
    this.req = req
    this.res = res
    this.plan = plan
    this.pools = d.pools
    this.method = ctx.upstream.method
    this.path = ctx.upstream.uri
    this.hashKey = plan.type === 'chash' ? hashKeyOf(plan, (n) => ctx.varOf(n)) : undefined
    this.timeouts = route.timeouts
    this.upgrade = fw.upgrade
    this.upgradeSocket = fw.upgrade !== undefined ? up : undefined
    this.clientBodyMs = d.clientBodyTimeoutMs ?? 0
    this.clientSendMs = d.sendTimeoutMs ?? 0
    this.#d = d
    this.#ctx = ctx
    this.#route = route
    this.#headers = applyEdits(fw.list, ctx.upstream)
    this.#hostHeader = hostHeader
    this.#startMs = startMs
  }

  headersFor(node: PlanNode): string[] {
    const ctx = this.#ctx
    const plan = this.plan
    const hostHeader = this.#hostHeader
    return finishUpstreamHeaders(this.#headers, {
      upstreamHost: upstreamHostFor({
        passHost: plan.passHost,
        upstreamHost: plan.upstreamHost,
        rewrittenHost: ctx.upstream.host,
        hostHeader,
        host: ctx.host,
        node,
        scheme: plan.scheme,
      }),
      remoteAddr: ctx.remoteAddr,
      scheme: ctx.scheme,
      hostHeader,
      host: ctx.host,
      serverPort: ctx.serverPort,
    })
  }

  reply(status: number, msg: string, headers?: Readonly<Record<string, string>>): void {
    sendJson(this.res, status, { error_msg: msg }, headers)
  }

  onEnd(r: ForwardResult): void {
    this.#d.onRequest?.({ ctx: this.#ctx, req: this.req, status: r.status, route: this.#route, startMs: this.#startMs, upstream: r })
  }
}

/** Reports a request that ended before the proxy (status endpoints excepted). */
function record(d: HandlerDeps, req: RequestHead, status: number, startMs: number, ctx: Context | undefined, route: RouteEntry | undefined): void {
  d.onRequest?.({ ctx, req, status, route, startMs, upstream: undefined })
}

/**
 * The request handler (DESIGN.md §1): status endpoints first (no route can shadow them), then
 * HTTP hygiene, the normalised path, the mTLS gate, route match, plugins, proxy.
 */
export function createHandler(d: HandlerDeps): Handler {
  const fail = (req: RequestHead, res: HttpResponse, status: number, msg: string, startMs: number, ctx?: Context, route?: RouteEntry): void => {
    sendError(res, status, msg)
    record(d, req, status, startMs, ctx, route)
  }

  const refuse = (req: RequestHead, res: HttpResponse, reason: string, startMs: number): void => {
    res.shouldKeepAlive = false
    fail(req, res, 400, `bad request: ${reason}`, startMs)
  }

  const handle = (req: RequestHead, res: HttpResponse, up: UpgradeSocket | undefined): void => {
    const startMs = Date.now()
    const url = req.url ?? '/'
    if (url.charCodeAt(1) === 0x61 && url.startsWith('/apisix/status')) {
      const path = url.split('?', 1)[0]
      if (path === '/apisix/status') return sendJson(res, 200, { status: 'ok' })
      if (path === '/apisix/status/ready') {
        return d.isReady() ? sendJson(res, 200, { status: 'ok' }) : sendJson(res, 503, { status: 'error', error: d.readyError() })
      }
    }
    const gen = d.current()
    // a malformed request is answered 400 and the connection closed, as nginx does (its body,
    // if any, is never read as a next request)
    if (hostCount(req.rawHeaders) > 1) return refuse(req, res, 'more than one Host header', startMs)
    // Node's parser hands such a request over before failing it: it must not be proxied
    const te = req.headers['transfer-encoding']
    if (te !== undefined && !isChunkedLast(te)) return refuse(req, res, 'invalid Transfer-Encoding', startMs)
    const target = parseTarget(url)
    if (!target.ok) return refuse(req, res, target.reason, startMs)
    const badHost = req.headers.host === undefined ? undefined : checkHostHeader(req.headers.host)
    if (badHost) return refuse(req, res, badHost, startMs)
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host (nginx's $host), for
    // routing and for the Host the upstream sees alike
    const hostHeader = target.authority ?? req.headers.host ?? ''
    const host = normalizeHost(hostHeader)
    const handshake = tlsFactsOf(req.socket)
    // judged against the current CRLs: one identity test while the generation stays the same
    const tls = handshake?.client ? liveFacts(handshake, gen.sni, startMs) : handshake
    // a Host that another object with client would serve: 421, asked before the skip list so that
    // an HTTP/2 client that coalesced this connection retries on a fresh one instead of taking a
    // 400; then the client-certificate checks on the same normalised path that is routed and proxied
    const gate = tls ? (misdirectedRequest(tls.sslId, host, gen.sni) ?? mtlsGate(tls, target.path, target.rawPath)) : undefined
    if (gate && 'status' in gate) {
      if ('close' in gate && gate.close) {
        res.shouldKeepAlive = false
        res.closeConnection?.()
      }
      sendError(res, gate.status, gate.error_msg)
      return d.onRequest?.({ ctx: undefined, req, status: gate.status, route: undefined, startMs, upstream: undefined, gateReason: gate.reason })
    }
    // before anything reads the headers: a certificate header or X-Forwarded-Proto from an
    // untrusted peer is dropped here (and, through ctx.upstream.removeHeaders, from the proxied request)
    const cert = d.certSource?.resolve(req.socket.remoteAddress ?? '', req.headers, tls)
    if (cert) for (const h of cert.strip) delete req.headers[h]
    const byCert = gen.consumers.byCert
    const ctx = new Context({
      req, uri: target.path, query: target.query, rawPath: target.rawPath, host, tls, nowMs: startMs,
      consumerByCertSha256: (sha256) => byCert.get(sha256),
      cert,
    })
    const route = gen.http.routes.match({ method: ctx.method, host, path: target.path, remoteAddr: ctx.remoteAddr, varOf: (n) => ctx.varOf(n) })
    if (!route) return fail(req, res, 404, '404 Route Not Found', startMs, ctx)
    ctx.routeId = route.id
    ctx.routeName = route.name
    const global = gen.http.global
    if (global.length === 0 && route.chain.length === 0) return proxy(route, ctx, hostHeader, req, res, up, startMs)
    let step: Step | Promise<Step>
    try {
      step = runChains(global.length === 0 ? route.chains : [...global, route.chain], ctx)
    } catch (err) {
      return fail(req, res, 500, `plugin error: ${(err as Error).message}`, startMs, ctx, route)
    }
    if (step instanceof Promise) {
      step.then(
        (s) => afterPlugins(s, route, ctx, hostHeader, req, res, up, startMs),
        (err: Error) => fail(req, res, 500, `plugin error: ${err.message}`, startMs, ctx, route),
      )
    } else afterPlugins(step, route, ctx, hostHeader, req, res, up, startMs)
  }

  const afterPlugins = (step: Step, route: RouteEntry, ctx: Context, hostHeader: string, req: RequestHead, res: HttpResponse, up: UpgradeSocket | undefined, startMs: number): void => {
    if (step) {
      sendReply(res, step)
      return record(d, req, step.status, startMs, ctx, route)
    }
    proxy(route, ctx, hostHeader, req, res, up, startMs)
  }

  const proxy = (route: RouteEntry, ctx: Context, hostHeader: string, req: RequestHead, res: HttpResponse, up: UpgradeSocket | undefined, startMs: number): void => {
    const plan = route.upstream
    if (!plan) {
      const m = route.missing ?? { status: 503, msg: 'missing upstream configuration in Route or Service' }
      sendError(res, m.status, m.msg)
      return record(d, req, m.status, startMs, ctx, route)
    }
    forward(new Exchange(d, route, plan, ctx, hostHeader, req, res, up, startMs))
  }

  const handler = ((req: RequestHead, res: HttpResponse) => handle(req, res, undefined)) as Handler
  handler.upgrade = (req, socket, head) => {
    // Node hands upgrade requests over without a response object: make one on the socket, so a
    // refused or plain request is answered the usual way, then the connection closes
    socket.on('error', () => socket.destroy())
    const res = responseOnSocket(req, socket)
    res.on('finish', () => socket.end())
    handle(req, res, { socket, head })
  }
  return handler
}
