/**
 * Node's HTTP/2 client for tests: a session over TLS (with its own SNI and client certificate)
 * or h2c with prior knowledge, and one request on it at a time or many at once.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import type { Test } from 'tap'

export interface H2Opts {
  /** TLS port (h2 by ALPN) */
  port: number
  servername?: string
  cert?: string
  key?: string
  /** h2c with prior knowledge on a plain port instead of TLS */
  plain?: boolean
}

export interface H2Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  readonly json: any // eslint-disable-line @typescript-eslint/no-explicit-any
  /** the stream's RST_STREAM code (0: closed normally) */
  readonly rstCode: number
}

/** Opens a session; closed at the test's teardown. */
export function h2Connect(t: Test, o: H2Opts): Promise<ClientHttp2Session> {
  const s = o.plain
    ? connect(`http://127.0.0.1:${o.port}`)
    : connect(`https://127.0.0.1:${o.port}`, {
        rejectUnauthorized: false,
        ...(o.servername !== undefined ? { servername: o.servername } : {}),
        ...(o.cert !== undefined ? { cert: o.cert, key: o.key } : {}),
      })
  t.teardown(() => {
    if (!s.destroyed) s.destroy()
  })
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** One request on a session: `:path` and `:authority` in `headers` (`:method` defaults to GET). */
export function h2Request(s: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const st = s.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined })
    let status = 0
    let h: IncomingHttpHeaders = {}
    const chunks: Buffer[] = []
    st.on('response', (x) => {
      h = x
      status = Number(x[':status'])
    })
    st.on('data', (c: Buffer) => chunks.push(c))
    st.on('error', (err) => {
      if (status === 0 && st.rstCode === undefined) reject(err)
    })
    st.on('close', () => {
      const text = Buffer.concat(chunks).toString()
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
      resolve({ status, headers: h, text, json, rstCode: st.rstCode ?? constants.NGHTTP2_NO_ERROR })
    })
    if (body !== undefined) st.end(body)
  })
}
