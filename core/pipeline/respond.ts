import type { ServerResponse } from 'node:http'

/** Writes a JSON reply the same way everywhere: `{"error_msg": ...}` for errors the gateway writes. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), server: 'APISIX' })
  res.end(text)
}

/** `{"error_msg": msg}` with `status`. */
export const sendError = (res: ServerResponse, status: number, msg: string, extra?: Readonly<Record<string, unknown>>): void =>
  sendJson(res, status, { error_msg: msg, ...extra })
