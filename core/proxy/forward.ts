/**
 * One request to an upstream through undici's `dispatch()`, written straight into the client's
 * ServerResponse with back-pressure (DESIGN.md §4: no stream.pipeline). The request body is
 * streamed (never buffered), a client abort cancels the upstream request, connection failures
 * retry another node (nginx's `proxy_next_upstream error timeout`), and failures before any
 * response byte answer 502/504.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { responseHeaderList } from './headers.js'
import type { Pools } from './pools.js'
import type { PlanNode, Timeouts, UpstreamPlan } from './upstream-plan.js'
import { classifyUpstreamError, reasonPhrase } from './upstream-errors.js'

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
}

/** A client connection that asked for a WebSocket upgrade (the server's 'upgrade' event). */
export interface UpgradeSocket {
  readonly socket: Duplex
  readonly head: Buffer
}

/** Everything forward() needs; built by the pipeline once per request. */
export interface ForwardRequest {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly plan: UpstreamPlan
  readonly pools: Pools
  readonly method: string
  /** path and query sent upstream */
  readonly path: string
  /** the header list (flat) for one node: Host may depend on the node (pass_host node) */
  headersFor(node: PlanNode): string[]
  readonly hashKey: string | undefined
  readonly timeouts: Timeouts
  /** the client's Upgrade token when the route allows WebSocket and the client asked */
  readonly upgrade: string | undefined
  readonly upgradeSocket: UpgradeSocket | undefined
  /** writes the gateway's own error reply (JSON error_msg) */
  reply(status: number, msg: string, headers?: Readonly<Record<string, string>>): void
  /** a clock in ms (passed in) */
  now(): number
  onEnd?(r: ForwardResult): void
}

const nodeName = (n: PlanNode): string => `${n.host}:${n.port}`

/** True when the request carries a body to stream (Content-Length > 0 or any Transfer-Encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length']
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined
}

/** Forwards one request; never throws (failures become the reply). */
export function forward(f: ForwardRequest): void {
  const plan = f.plan
  const tried = new Set<PlanNode>()
  const started = f.now()
  const deadline = plan.retryTimeoutMs > 0 ? started + plan.retryTimeoutMs : Infinity
  const body = f.upgrade === undefined && hasBody(f.req) ? f.req : null
  let abortCurrent: ((err: Error) => void) | undefined
  let clientGone = false
  let ended = false
  let last: PlanNode | undefined
  let headersMs = 0

  const end = (status: number, error: string | undefined): void => {
    if (ended) return
    ended = true
    f.onEnd?.({ status, node: last ? nodeName(last) : undefined, upstreamMs: (headersMs || f.now()) - started, error })
  }
  const onClientClose = (): void => {
    if (f.res.writableFinished) return
    clientGone = true
    abortCurrent?.(new Error('client closed the connection'))
    end(0, 'client closed')
  }
  f.res.once('close', onClientClose)

  const pick = (): PlanNode | undefined =>
    plan.picker.pick({
      key: f.hashKey,
      tried,
      ...(plan.type === 'least_conn' ? { activeOf: (n: PlanNode) => plan.active.get(n) ?? 0 } : {}),
    })

  const attempt = (node: PlanNode): void => {
    tried.add(node)
    last = node
    if (plan.type === 'least_conn') plan.active.set(node, (plan.active.get(node) ?? 0) + 1)
    let released = false
    const release = (): void => {
      if (released || plan.type !== 'least_conn') return
      released = true
      plan.active.set(node, Math.max(0, (plan.active.get(node) ?? 1) - 1))
    }
    let resume: (() => void) | undefined
    const onDrain = (): void => resume?.()
    const handler: Dispatcher.DispatchHandler = {
      onConnect(abort) {
        abortCurrent = abort
        if (clientGone) abort(new Error('client closed the connection'))
      },
      onHeaders(status, raw, res) {
        if (status < 200) return true // 1xx: Node answered Expect itself; other interim responses are not relayed
        headersMs = f.now()
        resume = res
        f.res.writeHead(status, responseHeaderList(raw, status))
        return true
      },
      onData(chunk) {
        const ok = f.res.write(chunk)
        if (!ok) f.res.once('drain', onDrain)
        return ok
      },
      onComplete() {
        release()
        f.res.end()
        end(f.res.statusCode, undefined)
      },
      onError(err) {
        release()
        if (clientGone) return
        if (f.res.headersSent) {
          // the response is cut: the client must see it as such, never as a complete body
          f.res.destroy(err)
          end(f.res.statusCode, classifyUpstreamError(err).reason)
          return
        }
        const failure = classifyUpstreamError(err)
        const resendable = body === null || !body.readableDidRead
        if (failure.retryable && resendable && tried.size <= plan.retries && f.now() < deadline) {
          const next = pick()
          if (next) return attempt(next)
        }
        headersMs = f.now()
        f.reply(failure.status, `${failure.status} ${reasonPhrase(failure.status)}`, { 'X-APISIX-Upstream-Status': String(failure.status) })
        end(failure.status, failure.reason)
      },
      onUpgrade(status, raw, upstream) {
        release()
        headersMs = f.now()
        const client = f.upgradeSocket?.socket
        if (!client || clientGone) {
          upstream.destroy()
          return
        }
        const list = responseHeaderList(raw ?? [], status)
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
        end(status, undefined)
      },
    }
    const pool = f.pools.get(node.poolKey, plan.poolOptions.get(node.poolKey)!)
    const opts: Dispatcher.DispatchOptions = {
      path: f.path,
      method: f.method,
      headers: f.headersFor(node),
      body,
      headersTimeout: f.timeouts.readMs,
      bodyTimeout: f.timeouts.readMs,
      ...(f.upgrade !== undefined ? { upgrade: f.upgrade } : {}),
    }
    try {
      pool.dispatch(opts, handler)
    } catch (err) {
      handler.onError?.(err as Error)
    }
  }

  const first = plan.unusable === undefined ? pick() : undefined
  if (!first) {
    f.reply(503, plan.unusable ?? 'no valid upstream node')
    end(503, plan.unusable ?? 'no valid upstream node')
    return
  }
  attempt(first)
}
