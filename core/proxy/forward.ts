/**
 * One request to an upstream through undici's `dispatch()`, written straight into the client's
 * ServerResponse with back-pressure (DESIGN.md §4: no stream.pipeline). The request body is
 * streamed (never buffered), a client abort cancels the upstream request, connection failures
 * retry another node (nginx's `proxy_next_upstream error timeout`), and failures before any
 * response byte answer 502/504.
 */
import type { IncomingMessage } from 'node:http'
import type { HttpResponse, RequestHead } from '../pipeline/http.js'
import type { Duplex, Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { responseHeaderList } from './headers.js'
import type { Pools } from './pools.js'
import type { PlanNode, Timeouts, UpstreamPlan } from './upstream-plan.js'
import { classifyUpstreamError, reasonPhrase } from './upstream-errors.js'
import { forwardGrpc } from './grpc.js'

/** How the forwarded request ended, for logs and metrics. */
export interface ForwardResult {
  /** the status sent to the client (0 when the client went away first) */
  readonly status: number
  /** the last node tried (`host:port`), undefined when none was picked */
  readonly node: string | undefined
  /** ms from the first dispatch to the response headers (or the failure) */
  readonly upstreamMs: number
  /** the reason of a failure ('connect refused', 'client closed' …) */
  readonly error: string | undefined
  /** gRPC upstreams: the grpc-status the upstream answered, undefined when none */
  readonly grpcStatus?: string | undefined
}

/** A client connection that asked for a WebSocket upgrade (the server's 'upgrade' event). */
export interface UpgradeSocket {
  readonly socket: Duplex
  readonly head: Buffer
}

/** The values forward() reads from a request; set once by the pipeline. */
export interface ForwardFields {
  readonly req: RequestHead
  readonly res: HttpResponse
  readonly plan: UpstreamPlan
  readonly pools: Pools
  readonly method: string
  /** path and query sent upstream */
  readonly path: string
  readonly hashKey: string | undefined
  readonly timeouts: Timeouts
  /** `nginx_config.http.client_body_timeout` (ms, 0 = none): the request body may stall this long */
  readonly clientBodyMs: number
  /** `nginx_config.http.send_timeout` (ms, 0 = none): the client may take no response bytes this long */
  readonly clientSendMs: number
  /** the client's Upgrade token when the route allows WebSocket and the client asked */
  readonly upgrade: string | undefined
  readonly upgradeSocket: UpgradeSocket | undefined
}

/** Everything forward() needs; built by the pipeline once per request. */
export interface ForwardRequest extends ForwardFields {
  /** the header list (flat) for one node: Host may depend on the node (pass_host node) */
  headersFor(node: PlanNode): string[]
  /** writes the gateway's own error reply (JSON error_msg) */
  reply(status: number, msg: string, headers?: Readonly<Record<string, string>>): void
  /** a clock in ms (passed in) */
  now(): number
  onEnd?(r: ForwardResult): void
}

/** The code of the error a response is cut with when its client took none of it for send_timeout. */
export const STALLED = 'GW_CLIENT_STALLED'

/** True when the request carries a body to stream (Content-Length > 0 or any Transfer-Encoding). */
export function hasBody(req: RequestHead): boolean {
  const cl = req.headers['content-length']
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined
}

/** A request body: Node's IncomingMessage, or an HTTP/2 stream. */
export type BodyStream = Readable & { readonly complete?: boolean }

/** The request's body stream: HTTP/2's stream, or Node's IncomingMessage (the fast path serves bodiless requests only). */
export const bodyOf = (req: RequestHead): BodyStream | null =>
  req.body !== undefined ? req.body : hasBody(req) && typeof (req as Partial<IncomingMessage>).pipe === 'function' ? (req as IncomingMessage) : null

/** How often client_body_timeout's watchdog looks at the body's progress (a quarter of the bound, 20 ms to 1 s). */
const bodyCheckMs = (boundMs: number): number => Math.max(20, Math.min(1000, Math.floor(boundMs / 4)))

// the watchdogs' timer callbacks take the exchange as an argument: no closure per request
const checkBodyOf = (x: Forwarding): void => x.checkBody()
const sendTimedOutOf = (x: Forwarding): void => x.sendTimedOut()

/**
 * The upstream's header block as undici's HTTP/1.1 client read it (name, value, name, value…).
 * undici 8 hands handlers a parsed object and keeps the raw list on the controller; a dispatcher
 * that has none (never the case for our pools) gets its object flattened.
 */
function rawHeadersOf(c: Dispatcher.DispatchController): readonly (Buffer | string)[] {
  const raw = c.rawHeaders
  if (Array.isArray(raw)) return raw
  const out: string[] = []
  for (const [k, v] of Object.entries(raw ?? {})) {
    if (Array.isArray(v)) for (const x of v) out.push(k, x)
    else if (v !== undefined) out.push(k, v)
  }
  return out
}

/** Forwards one request; never throws (failures become the reply). */
export function forward(f: ForwardRequest): void {
  if (f.plan.grpc) return forwardGrpc(f)
  const x = new Forwarding(f)
  const first = f.plan.unusable === undefined ? x.pick() : undefined
  if (!first) {
    const msg = f.plan.unusable ?? 'no valid upstream node'
    f.reply(503, msg)
    x.end(503, msg)
    return
  }
  x.attempt(first)
}

/** The state of one forwarded request across its attempts; its methods are undici's handler (no closures per request). */
class Forwarding implements Dispatcher.DispatchHandler {
  readonly f: ForwardRequest
  readonly started: number
  readonly deadline: number
  readonly body: BodyStream | null
  /** nodes tried so far (the current one included); a Set only once a retry needs one */
  tried: PlanNode[] = []
  /** undici's controller of the current attempt: abort, and pause/resume of the response body */
  controller: Dispatcher.DispatchController | undefined = undefined
  clientGone = false
  ended = false
  last: PlanNode | undefined = undefined
  headersMs = 0
  /** least_conn: the current attempt's node still counts as active */
  holding = false
  /** client_body_timeout's watchdog while the request body streams, and what it saw last */
  bodyTimer: NodeJS.Timeout | undefined = undefined
  bodyRead = 0
  bodyProgressAt = 0
  /** send_timeout's watchdog while the client takes no response bytes */
  sendTimer: NodeJS.Timeout | undefined = undefined
  /** the client's 'drain' listener, made on the first back-pressure (most responses never need one) */
  onDrain: (() => void) | undefined = undefined

  constructor(f: ForwardRequest) {
    this.f = f
    this.started = f.now()
    this.deadline = f.plan.retryTimeoutMs > 0 ? this.started + f.plan.retryTimeoutMs : Infinity
    this.body = f.upgrade === undefined ? bodyOf(f.req) : null
    f.res.once('close', () => this.onClientClose())
    if (this.body !== null && f.clientBodyMs > 0) {
      this.bodyRead = f.req.socket.bytesRead
      this.bodyProgressAt = this.started
      this.bodyTimer = setTimeout(checkBodyOf, bodyCheckMs(f.clientBodyMs), this)
    }
  }

  end(status: number, error: string | undefined): void {
    if (this.ended) return
    this.ended = true
    if (this.bodyTimer !== undefined) clearTimeout(this.bodyTimer)
    if (this.sendTimer !== undefined) clearTimeout(this.sendTimer)
    this.f.onEnd?.({ status, node: this.last?.name, upstreamMs: (this.headersMs || this.f.now()) - this.started, error })
  }

  /**
   * client_body_timeout: no request-body byte arrived for clientBodyMs while we were ready to read
   * (bytes we hold unread mean the upstream is the slow side) → 408 and the connection closes.
   */
  checkBody(): void {
    this.bodyTimer = undefined
    const f = this.f
    const req = this.body
    if (req === null || this.ended || req.complete === true || req.readableEnded) return
    const now = f.now()
    // the connection's bytes (on HTTP/2 every stream's): progress of this body or of a sibling
    const read = f.req.socket.bytesRead
    if (read !== this.bodyRead || req.readableLength > 0) {
      this.bodyRead = read
      this.bodyProgressAt = now
    } else if (now - this.bodyProgressAt >= f.clientBodyMs) {
      this.cutClient(408, 'client body timeout')
      return
    }
    this.bodyTimer = setTimeout(checkBodyOf, bodyCheckMs(f.clientBodyMs), this)
  }

  /** The client took what was buffered: the send_timeout watchdog stops, the upstream body resumes. */
  drained(): void {
    if (this.sendTimer !== undefined) clearTimeout(this.sendTimer)
    this.sendTimer = undefined
    this.controller?.resume()
  }

  /** send_timeout: the client took none of the response for clientSendMs → the connection is cut. */
  sendTimedOut(): void {
    this.sendTimer = undefined
    if (this.ended || this.f.res.writableFinished) return
    this.cutClient(this.f.res.statusCode, 'client send timeout')
  }

  /** Ends the exchange for a stalled client: the upstream request is aborted, the client gets `status` if nothing was sent yet, and its connection closes. */
  cutClient(status: number, reason: string): void {
    const f = this.f
    this.clientGone = true
    this.controller?.abort(new Error(reason))
    if (!f.res.headersSent) {
      // the rest of the body will never come: the connection cannot carry another request
      f.res.setHeader('connection', 'close')
      f.reply(status, reason)
    } else {
      // STALLED: on HTTP/2 the client holds its flow-control windows shut, and the whole
      // connection is sent GOAWAY (core/server/h2.ts), not just this stream
      f.res.destroy(Object.assign(new Error(reason), { code: STALLED }))
    }
    this.end(status, reason)
  }

  onClientClose(): void {
    if (this.f.res.writableFinished) return
    this.clientGone = true
    this.controller?.abort(new Error('client closed the connection'))
    this.end(0, 'client closed')
  }

  pick(): PlanNode | undefined {
    const plan = this.f.plan
    const tried = this.tried.length === 0 ? undefined : new Set(this.tried)
    if (plan.type !== 'least_conn') return plan.picker.pick({ key: this.f.hashKey, tried })
    return plan.picker.pick({ key: this.f.hashKey, tried, activeOf: (n: PlanNode) => plan.active.get(n) ?? 0 })
  }

  release(): void {
    if (!this.holding) return
    this.holding = false
    const active = this.f.plan.active
    const node = this.last!
    active.set(node, Math.max(0, (active.get(node) ?? 1) - 1))
  }

  attempt(node: PlanNode): void {
    const f = this.f
    const plan = f.plan
    this.tried.push(node)
    this.last = node
    this.controller = undefined
    if (plan.type === 'least_conn') {
      plan.active.set(node, (plan.active.get(node) ?? 0) + 1)
      this.holding = true
    }
    const pool = f.pools.get(node.poolKey, plan.poolOptions.get(node.poolKey)!)
    const opts: Dispatcher.DispatchOptions = {
      path: f.path,
      method: f.method,
      headers: f.headersFor(node),
      body: this.body,
      headersTimeout: f.timeouts.readMs,
      bodyTimeout: f.timeouts.readMs,
    }
    if (f.upgrade !== undefined) opts.upgrade = f.upgrade
    try {
      pool.dispatch(opts, this)
    } catch (err) {
      this.onError(err as Error)
    }
  }

  // undici 8's handler interface (the controller-based one; undici 7 also took onConnect/onHeaders/…)

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.clientGone) controller.abort(new Error('client closed the connection'))
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number): void {
    if (status < 200) return // 1xx: Node answered Expect itself; other interim responses are not relayed
    this.headersMs = this.f.now()
    // the raw list keeps the upstream's names, order and repeated fields (the parsed object does
    // not); HTTP/2 takes its names lower-cased
    this.f.res.writeHead(status, responseHeaderList(rawHeadersOf(controller), status, this.f.req.httpVersion === '2.0'))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.f.res
    if (!res.write(chunk)) {
      controller.pause()
      res.once('drain', (this.onDrain ??= () => this.drained()))
      if (this.f.clientSendMs > 0 && this.sendTimer === undefined) this.sendTimer = setTimeout(sendTimedOutOf, this.f.clientSendMs, this)
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.onError(err)
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, status: number, _headers: unknown, upstream: Duplex): void {
    this.onUpgrade(status, rawHeadersOf(controller), upstream)
  }

  onResponseEnd(): void {
    this.release()
    const res = this.f.res
    res.end()
    this.end(res.statusCode, undefined)
  }

  onError(err: Error): void {
    this.release()
    if (this.clientGone) return
    const f = this.f
    if (f.res.headersSent) {
      // the response is cut: the client must see it as such, never as a complete body
      f.res.destroy(err)
      this.end(f.res.statusCode, classifyUpstreamError(err).reason)
      return
    }
    const failure = classifyUpstreamError(err)
    const resendable = this.body === null || !this.body.readableDidRead
    if (failure.retryable && resendable && this.tried.length <= f.plan.retries && f.now() < this.deadline) {
      const next = this.pick()
      if (next) return this.attempt(next)
    }
    this.headersMs = f.now()
    f.reply(failure.status, `${failure.status} ${reasonPhrase(failure.status)}`, { 'X-APISIX-Upstream-Status': String(failure.status) })
    this.end(failure.status, failure.reason)
  }

  onUpgrade(status: number, raw: readonly (Buffer | string)[], upstream: Duplex): void {
    this.release()
    this.headersMs = this.f.now()
    const f = this.f
    const client = f.upgradeSocket?.socket
    if (!client || this.clientGone) {
      upstream.destroy()
      return
    }
    const list = responseHeaderList(raw, status)
    let head = `HTTP/1.1 ${status} Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ${f.upgrade ?? 'websocket'}\r\n`
    for (let i = 0; i + 1 < list.length; i += 2) head += `${list[i]}: ${list[i + 1]}\r\n`
    client.write(`${head}\r\n`)
    const pending = f.upgradeSocket?.head
    if (pending && pending.length > 0) upstream.write(pending)
    const close = (): void => {
      client.destroy()
      upstream.destroy()
    }
    upstream.on('error', close).on('close', close)
    client.on('error', close).on('close', close)
    upstream.pipe(client)
    client.pipe(upstream)
    this.end(status, undefined)
  }
}
