import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Generation } from '../state.js'
import { sendError, sendJson } from './respond.js'

/** What the request handler needs from its worker. */
export interface HandlerDeps {
  current(): Generation
  isReady(): boolean
  readyError(): string
}

/** The request handler: status endpoints first (no route can shadow them), then route → plugins → proxy. */
export function createHandler(d: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = req.url ?? '/'
    const path = url.split('?', 1)[0]
    if (path === '/apisix/status') return sendJson(res, 200, { status: 'ok' })
    if (path === '/apisix/status/ready') {
      return d.isReady() ? sendJson(res, 200, { status: 'ok' }) : sendJson(res, 503, { status: 'error', error: d.readyError() })
    }
    void d.current()
    sendError(res, 404, '404 Route Not Found')
  }
}
