import type { Socket } from 'node:net'
import { Client, buildConnector } from 'undici'

/** An HTTP/1.1 client bound to exactly one TCP (or TLS) connection: once it closes, every request fails. */
export interface OneConnection {
  readonly client: Client
  /** the client's local port (0 before it connected) */
  localPort(): number
  /** whether the one connection was made and has closed since */
  closed(): boolean
  /** GET `path`: the status and body, or the error's code and message; never rejects */
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; body: string } | { error: string }>
}

/**
 * Opens one keep-alive connection to 127.0.0.1:port (TLS with `tls` given, with a client
 * certificate when it names one) that is never replaced: a second connect attempt fails with
 * "the one connection is gone".
 */
export function oneConnection(port: number, tls?: { servername: string; ca: string; cert?: string; key?: string }): OneConnection {
  const base = buildConnector(tls ? { ca: tls.ca, servername: tls.servername, ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}) } : {})
  let socket: Socket | undefined
  let wasClosed = false
  let localPort = 0
  const connect: buildConnector.connector = (opts, cb) => {
    if (socket) return cb(new Error('the one connection is gone'), null)
    base(opts, (...args) => {
      const [err, s] = args
      if (s) {
        socket = s
        localPort = s.localPort ?? 0
        s.once('close', () => (wasClosed = true))
      }
      if (err) cb(err, null)
      else if (s) cb(null, s)
    })
  }
  const client = new Client(`${tls ? 'https' : 'http'}://127.0.0.1:${port}`, { connect, allowH2: false, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 })
  return {
    client,
    localPort: () => localPort,
    closed: () => wasClosed,
    async get(path, headers = {}) {
      try {
        const res = await client.request({ path, method: 'GET', headers })
        return { status: res.statusCode, body: await res.body.text() }
      } catch (err) {
        return { error: `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim() }
      }
    },
  }
}
