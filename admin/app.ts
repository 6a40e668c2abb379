import type { IncomingMessage } from 'node:http'
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { answerOf, errorAnswer, isGatewayError, type ErrorAnswer } from '../core/errors.js'
import type { Logger } from '../core/log.js'
import { BODY_LIMIT, parseBody } from './body.js'
import { parseAdminPath } from './ids.js'
import { handleCrud, type CrudDeps } from './crud.js'
import { handleExplain } from './explain.js'
import { certificatesView, inspectPem, tlsCounters } from './ui-api.js'
import { UI_HEADERS, type UiFile } from './ui-static.js'
import type { MetricsSnapshot } from '../core/metrics/registry.js'
import type { AuthVerdict, AuthInput } from './auth.js'

/** What the admin app is built from; the listener is server.ts's. */
export interface AdminAppDeps extends CrudDeps {
  readonly auth: (req: AuthInput) => AuthVerdict
  readonly log: Logger
  /** `apisix.ssl.fallback_sni`, normalised: the name explain matches a request without SNI with */
  readonly fallbackSni?: string
  /** the web UI's files (deployment.admin.enable_admin_ui); undefined: /ui/ answers 404 */
  readonly ui?: ReadonlyMap<string, UiFile>
  /** the data plane's metrics summed over the workers (the UI's Live TLS page); undefined: none */
  readonly metrics?: () => Promise<MetricsSnapshot | undefined>
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-credentials': 'true',
  'access-control-expose-headers': '*',
  'access-control-max-age': '3600',
} as const

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(`${JSON.stringify(body)}\n`)
}

/** Answers with an error of the table (core/errors.ts). */
const fail = (reply: FastifyReply, a: ErrorAnswer): FastifyReply => send(reply, a.status, a.body)

/** How long a lingering close waits for the client's next byte, and at most in all (nginx's lingering_timeout and lingering_time). */
const LINGER_IDLE_MS = 5_000
const LINGER_MAX_MS = 30_000

/**
 * nginx's lingering close, for an error answered before the request body was read (413 from
 * Content-Length): after the answer the write side closes (FIN), and what the client still sends
 * is read and dropped until it closes too (at most LINGER_MAX_MS, LINGER_IDLE_MS without a byte).
 * Closing at once with body bytes unread makes the kernel reset the connection, and a client
 * still writing its body loses the answer (EPIPE or ECONNRESET instead of the 413).
 */
function lingerOnClose(req: IncomingMessage): void {
  const socket = req.socket
  // Node's server calls destroySoon() once a `Connection: close` response is finished
  socket.destroySoon = () => {
    socket.end()
    const cap = setTimeout(() => socket.destroy(), LINGER_MAX_MS)
    socket.setTimeout(LINGER_IDLE_MS, () => socket.destroy())
    socket.once('close', () => clearTimeout(cap))
    socket.once('end', () => socket.destroy())
    req.resume()
  }
}

/**
 * The admin API as a fastify instance (not listening): APISIX v3 routes under /apisix/admin,
 * bodies parsed by us whatever their content type (curl -d sends a form type), every error a
 * JSON body, no 5xx but for etcd failures.
 */
export function buildAdminApp(d: AdminAppDeps): FastifyInstance {
  const app = fastify({
    bodyLimit: BODY_LIMIT,
    logger: false,
    return503OnClosing: true,
    frameworkErrors: (err, _req, reply) => void fail(reply, errorAnswer('GW_ADMIN_BAD_REQUEST', err.message)),
  })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.headers({ ...CORS, 'x-api-version': 'v3', server: 'APISIX' })
    return payload
  })

  app.setErrorHandler((err, req, reply) => {
    if (isGatewayError(err)) return fail(reply, answerOf(err))
    const e = err as { code?: string; statusCode?: number; message?: string }
    // fastify closes the connection after a body error: the client may still be sending
    if (!req.raw.complete && reply.getHeader('connection') === 'close') lingerOnClose(req.raw)
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, errorAnswer('GW_ADMIN_TOO_LARGE', BODY_LIMIT))
    // fastify's other client errors (a malformed Content-Length, an aborted body) keep their status
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return fail(reply, { ...errorAnswer('GW_ADMIN_BAD_REQUEST', e.message ?? 'bad request'), status: e.statusCode })
    }
    d.log.error({ err }, 'admin: unexpected error')
    return fail(reply, errorAnswer('GW_ADMIN_INTERNAL'))
  })
  app.setNotFoundHandler((req, reply) => fail(reply, errorAnswer('GW_ADMIN_NO_ROUTE', req.method, req.url.split('?')[0] ?? '')))

  // CORS preflight and the root HEAD answer without auth, as in APISIX
  app.options('/apisix/admin/*', (_req, reply) =>
    reply
      .code(200)
      .header('access-control-allow-methods', 'POST, GET, PUT, OPTIONS, DELETE, PATCH')
      .header('access-control-allow-headers', '*')
      .header('content-type', 'text/plain')
      .send(''),
  )

  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const url = req.raw.url ?? req.url
    const q = url.indexOf('?')
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1))
    const verdict = d.auth({ method: req.method, remoteAddr: req.socket.remoteAddress, headers: req.headers, query })
    if (!verdict.ok) return fail(reply, verdict)
    if (req.method === 'HEAD') return reply.code(200).send()
    const path = parseAdminPath(url)
    if (!path || path.resource === '') return fail(reply, errorAnswer('GW_ADMIN_NO_ROUTE', req.method, url.split('?')[0] ?? ''))
    const body = parseBody(req.body as Buffer | undefined)
    if (!body.ok) return fail(reply, errorAnswer('GW_ADMIN_BAD_REQUEST', body.error))
    const answer = await handleCrud(d, req.method, path, query, body.value)
    return send(reply, answer.status, answer.body)
  }
  /** Routes that only read (a viewer key may call them, whatever the method): explain and the UI's views. */
  const reading = (method: 'GET' | 'POST', url: string, answer: (body: unknown, role: 'admin' | 'viewer') => Promise<{ status: number; body: unknown }>): void => {
    app.route({
      method,
      url,
      handler: async (req, reply) => {
        const raw = req.raw.url ?? req.url
        const q = raw.indexOf('?')
        const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1))
        const verdict = d.auth({ method: 'GET', remoteAddr: req.socket.remoteAddress, headers: req.headers, query })
        if (!verdict.ok) return send(reply, verdict.status, verdict.body)
        const body = method === 'POST' ? parseBody(req.body as Buffer | undefined) : { ok: true as const, value: undefined }
        if (!body.ok) return fail(reply, errorAnswer('GW_ADMIN_BAD_REQUEST', body.error))
        const a = await answer(body.value, verdict.role)
        return send(reply, a.status, a.body)
      },
    })
  }
  reading('POST', '/apisix/admin/explain', (body) => handleExplain({ ...d, fallbackSni: d.fallbackSni ?? '' }, body))
  if (d.ui) {
    const files = d.ui
    reading('GET', '/apisix/admin/ui/whoami', async (_b, role) => ({ status: 200, body: { role } }))
    reading('GET', '/apisix/admin/ui/certificates', () => certificatesView(d))
    reading('POST', '/apisix/admin/ui/inspect', async (body) => inspectPem(body))
    reading('GET', '/apisix/admin/ui/tls', async () => tlsCounters(d.metrics ? await d.metrics() : undefined, d.now()))
    // the page itself needs no key (every call it makes does); allow_admin still applies
    const serveUi = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const where = d.auth({ method: 'GET', remoteAddr: req.socket.remoteAddress, headers: {}, query: new URLSearchParams() })
      if (!where.ok && where.status === 403) return send(reply.headers(UI_HEADERS), 403, where.body)
      const path = (req.raw.url ?? req.url).split('?', 1)[0] ?? ''
      if (path === '/ui') return reply.code(302).headers(UI_HEADERS).header('location', '/ui/').send('')
      const name = path === '/ui/' ? 'index.html' : path.slice('/ui/'.length)
      const f = files.get(name)
      if (!f) {
        return fail(reply.headers(UI_HEADERS), files.size === 0 ? errorAnswer('GW_ADMIN_UI_NOT_BUILT') : errorAnswer('GW_ADMIN_UI_NO_FILE', name))
      }
      reply.code(200).headers(UI_HEADERS).header('content-type', f.type).header('etag', f.etag)
      if (req.headers['if-none-match'] === f.etag) return reply.code(304).send('')
      return reply.send(f.body)
    }
    app.get('/ui', serveUi)
    app.get('/ui/', serveUi)
    app.get('/ui/:file', serveUi)
  }
  app.route({ method: ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/apisix/admin/*', handler })
  app.route({ method: ['HEAD'], url: '/apisix/admin', handler: (_req, reply) => reply.code(200).send() })
  app.route({ method: ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/apisix/admin', handler })
  return app
}
