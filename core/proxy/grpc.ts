/**
 * gRPC upstreams (CONTRACT.md "gRPC"): a request on a route whose upstream has scheme `grpc`
 * (h2c) or `grpcs` (TLS) goes to the node over HTTP/2 on node:http2's client (core/proxy/pools.ts
 * holds the sessions). Unary and streaming calls in both directions: the request body streams
 * into the upstream stream and the response back, each with back-pressure; `TE: trailers` is
 * sent; the upstream's trailers (grpc-status, grpc-message) are passed back unchanged, a
 * trailers-only answer as it came; a client's RST_STREAM cancels the upstream stream and an
 * upstream reset reaches the client with the code that keeps its meaning (`clientResetCode`).
 * Other failures before any response keep the gateway's HTTP statuses (502/503/504, which gRPC
 * clients read as UNAVAILABLE).
 *
 * Why node:http2 and not undici (whose allowH2 also speaks HTTP/2): undici's HTTP/2 client
 * gives no RST_STREAM code either way, and its request body over HTTP/2 is sent before the
 * response is read (fetch: `duplex: 'half'` only), so a bidirectional call that waits for an
 * answer before sending more would stall; node:http2 has both, and trailers as an event.
 */
import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders as H2OutHeaders } from 'node:http2'
import { bodyOf, type ForwardRequest, type ForwardResult } from './forward.js'
import type { PlanNode } from './upstream-plan.js'
import { classifyUpstreamError, reasonPhrase } from './upstream-errors.js'

/** Request names that do not go on an HTTP/2 stream (RFC 9113 §8.2.2); Host becomes :authority. */
const NOT_ON_H2 = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings'])

/** Response names not passed back (the client side's framing is ours; Server is the gateway's). */
const NOT_BACK = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'server'])

/** The HTTP/2 request headers for the upstream, from the flat HTTP/1.1-style list the pipeline built. */
export function upstreamH2Headers(flat: readonly string[], method: string, path: string, scheme: 'http' | 'https'): H2OutHeaders {
  const out: H2OutHeaders = { ':method': method, ':path': path, ':scheme': scheme }
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase()
    const value = flat[i + 1]!
    if (name === 'host') {
      out[':authority'] ??= value
      continue
    }
    if (NOT_ON_H2.has(name)) continue
    const prev = out[name]
    out[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [String(prev)]), value]
  }
  out['te'] = 'trailers'
  return out
}

/** An upstream's response headers or trailers for the client: pseudo-headers and connection names dropped. */
export function backHeaders(h: H2Headers, status: number | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 0x3a || NOT_BACK.has(name)) continue
    const v = h[name]
    if (v !== undefined) out[name] = v
  }
  if (status !== undefined) {
    out['server'] = 'APISIX'
    if (status >= 500) out['x-apisix-upstream-status'] = String(status)
  }
  return out
}

/**
 * The RST_STREAM code a client's stream gets when the upstream reset its own: CANCEL (gRPC
 * clients: CANCELLED), REFUSED_STREAM (UNAVAILABLE; RFC 9113 §8.7: nothing was processed, so the
 * client may retry it, on another connection too) and ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED)
 * say the same to the client as to us. The others describe the gateway-to-upstream hop
 * (PROTOCOL_ERROR, FLOW_CONTROL_ERROR, COMPRESSION_ERROR, INADEQUATE_SECURITY of our TLS to it,
 * …) and would blame the client for it: INTERNAL_ERROR (gRPC: INTERNAL), as nginx's grpc_pass
 * and Envoy report an upstream reset.
 */
export function clientResetCode(upstream: number): number {
  switch (upstream) {
    case constants.NGHTTP2_CANCEL:
    case constants.NGHTTP2_REFUSED_STREAM:
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return upstream
    default:
      return constants.NGHTTP2_INTERNAL_ERROR
  }
}

/** Whether a reset passes to the client before any response: when its code keeps its meaning there (the rest get the gateway's 502). */
const passedBeforeResponse = (code: number): boolean => clientResetCode(code) !== constants.NGHTTP2_INTERNAL_ERROR

const statusOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined)

/** Drops a closed upstream stream's listeners (they hold the call's state), keeping an 'error' no-op. */
function releaseUp(up: ClientHttp2Stream): void {
  up.removeAllListeners()
  up.on('error', ignoreError)
}
const ignoreError = (): void => undefined

/**
 * One call through a gRPC upstream; never throws (failures become the reply). A node whose
 * connection fails before the call reached it (refused, unreachable, TLS, connect timeout) is
 * left for the next one, as nginx's `grpc_next_upstream error timeout` does, within the
 * upstream's `retries` and `retry_timeout`. The request body is read only once the session is
 * connected, so a call that goes on to another node takes its messages with it. A call that
 * reached a node is never sent again (gRPC calls are POSTs: nginx does not resend those either).
 */
export function forwardGrpc(f: ForwardRequest): void {
  const started = f.now()
  const plan = f.plan
  const deadline = plan.retryTimeoutMs > 0 ? started + plan.retryTimeoutMs : Infinity
  const res = f.res
  const body = bodyOf(f.req)
  const tried: PlanNode[] = []
  let node: PlanNode | undefined
  /** the current attempt's stream */
  let up: ClientHttp2Stream | undefined
  let ended = false
  let headersMs = 0
  let grpcStatus: string | undefined
  /** least_conn: the current node counts the call as active */
  let holding = false
  const release = (): void => {
    if (!holding || node === undefined) return
    holding = false
    plan.active.set(node, Math.max(0, (plan.active.get(node) ?? 1) - 1))
  }
  const end = (status: number, error: string | undefined): void => {
    if (ended) return
    ended = true
    release()
    const r: ForwardResult = { status, node: node?.name, upstreamMs: (headersMs || f.now()) - started, error, grpcStatus }
    f.onEnd?.(r)
  }
  const pick = (): PlanNode | undefined => {
    const t = tried.length === 0 ? undefined : new Set(tried)
    if (plan.type !== 'least_conn') return plan.picker.pick({ key: f.hashKey, tried: t })
    return plan.picker.pick({ key: f.hashKey, tried: t, activeOf: (n: PlanNode) => plan.active.get(n) ?? 0 })
  }
  const first = plan.unusable === undefined ? pick() : undefined
  if (!first) {
    const msg = plan.unusable ?? 'no valid upstream node'
    f.reply(503, msg)
    return end(503, msg)
  }
  const fail = (err: unknown): void => {
    const failure = classifyUpstreamError(err)
    headersMs = f.now()
    f.reply(failure.status, `${failure.status} ${reasonPhrase(failure.status)}`, { 'X-APISIX-Upstream-Status': String(failure.status) })
    end(failure.status, failure.reason)
  }
  /** The next node for a call whose connection failed before it was sent, undefined when none may be tried. */
  const nextAfter = (err: unknown): PlanNode | undefined => {
    if (!classifyUpstreamError(err).retryable || (body !== null && body.readableDidRead)) return undefined
    if (tried.length > plan.retries || f.now() >= deadline) return undefined
    return pick()
  }
  // the client went away (RST_STREAM, or its connection closed): the upstream stream is cancelled
  res.once('close', () => {
    if (ended) return
    if (up !== undefined && !up.destroyed) up.close(constants.NGHTTP2_CANCEL)
    end(0, 'client closed')
  })
  if (body !== null) {
    body.on('error', () => {
      if (up !== undefined && !up.destroyed) up.close(constants.NGHTTP2_CANCEL)
    })
  }

  const attempt = (n: PlanNode): void => {
    tried.push(n)
    node = n
    if (plan.type === 'least_conn') {
      plan.active.set(n, (plan.active.get(n) ?? 0) + 1)
      holding = true
    }
    let session: ClientHttp2Session
    let stream: ClientHttp2Stream
    try {
      session = f.pools.h2(n.poolKey, plan.poolOptions.get(n.poolKey)!)
      stream = session.request(upstreamH2Headers(f.headersFor(n), f.method, f.path, plan.scheme), { endStream: body === null })
    } catch (err) {
      return fail(err)
    }
    up = stream
    /** whether the session was connected while this call was on it: the call may have reached the node */
    let reached = !session.connecting
    // a connection failure (refused, TLS, connect timeout) reaches the stream as its error
    let upError: Error | undefined
    stream.on('error', (err: Error) => {
      upError = err
    })
    const sendBody = (): void => {
      reached = true
      if (body !== null && up === stream && !stream.destroyed) body.pipe(stream)
    }
    if (reached) sendBody()
    else session.once('connect', sendBody)
    // grpc_read_timeout's role: no frame from the upstream for the read timeout
    stream.setTimeout(f.timeouts.readMs, () => {
      if (!res.headersSent) fail(Object.assign(new Error('upstream timed out'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
      else end(res.statusCode, 'upstream timed out')
      stream.close(constants.NGHTTP2_CANCEL)
      if (res.headersSent) res.destroy(new Error('upstream timed out'))
    })
    stream.on('response', (h, flags) => {
      headersMs = f.now()
      const status = Number(h[':status'])
      grpcStatus = statusOf(h['grpc-status'])
      const list = backHeaders(h, status)
      if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
        // trailers-only: the status is in these headers, and nothing follows
        res.writeHead(status, list)
        res.end()
        return
      }
      res.expectTrailers?.()
      res.writeHead(status, list)
      // the response metadata goes out now, not with the first message
      res.flushHeaders?.()
    })
    stream.on('trailers', (t) => {
      grpcStatus = statusOf(t['grpc-status']) ?? grpcStatus
      res.setTrailers?.(backHeaders(t, undefined))
    })
    stream.on('data', (chunk: Buffer) => {
      if (res.write(chunk)) return
      stream.pause()
      res.once('drain', () => stream.resume())
    })
    stream.on('end', () => {
      if (!res.headersSent) return
      res.end()
    })
    stream.on('close', () => {
      // a closed stream stays reachable for a while inside node:http2: its listeners, which hold
      // this call's state, go once it is done (an error no-op stays: 'error' never comes after 'close')
      setImmediate(releaseUp, stream)
      session.off('connect', sendBody)
      if (ended) return
      const code = stream.rstCode ?? constants.NGHTTP2_NO_ERROR
      const reason = `upstream reset the stream (${code})`
      if (!res.headersSent) {
        // the node's connection failed before the call reached it: the next node, if any may be tried
        if (!reached && upError !== undefined) {
          const next = nextAfter(upError)
          if (next !== undefined) {
            release()
            return attempt(next)
          }
        }
        // no response: a reset the client can act on (REFUSED_STREAM: retry it) reaches it as it came
        // (Node reports a reset other than CANCEL as the stream's error, ERR_HTTP2_STREAM_ERROR)
        const resetOnly = upError === undefined || (upError as NodeJS.ErrnoException).code === 'ERR_HTTP2_STREAM_ERROR'
        if (resetOnly && res.reset !== undefined && passedBeforeResponse(code)) {
          end(502, reason)
          return res.reset(code)
        }
        // else a connection failure (the session's error) or a reset before the headers: 502
        return fail(upError ?? Object.assign(new Error(reason), { code: 'UND_ERR_SOCKET' }))
      }
      if (code !== constants.NGHTTP2_NO_ERROR) {
        // an upstream reset reaches the client, with the code that keeps its meaning
        end(res.statusCode, reason)
        if (res.reset !== undefined) res.reset(clientResetCode(code))
        else res.destroy(new Error(reason))
        return
      }
      if (res.writableFinished) end(res.statusCode, undefined)
      else res.once('finish', () => end(res.statusCode, undefined))
    })
  }
  attempt(first)
}
