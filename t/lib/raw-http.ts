import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'

/** A parsed raw HTTP/1.1 response. */
export interface RawReply {
  readonly status: number
  readonly head: string
  readonly body: string
  /** everything the server sent */
  readonly raw: string
}

/**
 * Sends `text` as is on a fresh TCP connection to 127.0.0.1:port and collects everything until the
 * server closes (or `timeoutMs`). For requests an HTTP client would normalise or refuse to send.
 */
export function rawRequest(port: number, text: string | Buffer, timeoutMs = 5000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => s.destroy(), timeoutMs)
    s.on('data', (b: Buffer) => chunks.push(b))
    s.on('error', reject)
    s.on('close', () => {
      clearTimeout(timer)
      const raw = Buffer.concat(chunks).toString('latin1')
      const end = raw.indexOf('\r\n\r\n')
      const head = end >= 0 ? raw.slice(0, end) : raw
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0)
      resolve({ status, head, body: end >= 0 ? raw.slice(end + 4) : '', raw })
    })
    s.write(text)
  })
}

/** One plain HTTP request on a new connection to 127.0.0.1:port; resolves with the status (body read and dropped). */
export function httpStatus(port: number, path: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}
