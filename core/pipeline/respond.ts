import type { HttpResponse } from './http.js'
import type { Reply } from '../plugins/types.js'

/** Writes a JSON reply the same way everywhere: `{"error_msg": ...}` for errors the gateway writes. */
export function sendJson(res: HttpResponse, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), server: 'APISIX' })
  res.end(text)
}

/** `{"error_msg": msg}` with `status`. */
export const sendError = (res: HttpResponse, status: number, msg: string, extra?: Readonly<Record<string, unknown>>): void =>
  sendJson(res, status, { error_msg: msg, ...extra })

/** Writes a plugin's Reply: an object body as JSON, a string as it is (text/plain unless the reply says otherwise). */
export function sendReply(res: HttpResponse, r: Reply): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const isText = typeof r.body === 'string'
  const text = r.body === undefined ? '' : isText ? (r.body as string) : `${JSON.stringify(r.body)}\n`
  const headers: Record<string, string | number> = { 'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json', server: 'APISIX' }
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v
  headers['content-length'] = Buffer.byteLength(text)
  res.writeHead(r.status, headers)
  res.end(text)
}
