import { connect, type PeerCertificate, type TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'

export interface TlsOpts {
  port: number
  /** SNI to send; undefined sends none (Node sends none for IP addresses) */
  servername?: string
  /** trust anchors for the server certificate */
  ca?: string | string[]
  cert?: string
  key?: string
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  maxVersion?: 'TLSv1.2' | 'TLSv1.3'
  session?: Buffer
  /** Host header (defaults to servername) */
  host?: string
}

export interface HttpReply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  readonly json: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

const agents = new Map<string, Agent>()

/** One undici Agent per TLS identity (DESIGN.md §2.10): a pooled connection never carries another identity's request. */
export function agentFor(o: TlsOpts): Agent {
  const id = JSON.stringify([o.port, o.servername, o.ca, o.cert, o.minVersion, o.maxVersion])
  let a = agents.get(id)
  if (!a) {
    a = new Agent({
      // the tests speak HTTP/1.1 unless they say otherwise: undici 8 offers h2 by ALPN by default,
      // and the gateway's TLS listeners take it (t/e2e/h2.test.ts speaks h2 with node:http2)
      allowH2: false,
      connect: {
        ...(o.servername !== undefined ? { servername: o.servername } : {}),
        ...(o.ca !== undefined ? { ca: o.ca } : { rejectUnauthorized: false }),
        ...(o.cert !== undefined ? { cert: o.cert, key: o.key } : {}),
        ...(o.minVersion ? { minVersion: o.minVersion } : {}),
        ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
        checkServerIdentity: () => undefined,
      },
    })
    agents.set(id, a)
  }
  return a
}

/** Closes every cached agent (call in a teardown). */
export async function closeAgents(): Promise<void> {
  const all = [...agents.values()]
  agents.clear()
  await Promise.all(all.map((a) => a.close().catch(() => undefined)))
}

/** An HTTPS request through the gateway's TLS port with SNI, client certificate and CA. */
export async function httpsGet(path: string, o: TlsOpts, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpReply> {
  const res = await request(`https://127.0.0.1:${o.port}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    dispatcher: agentFor(o),
    headers: { host: o.host ?? o.servername ?? '127.0.0.1', ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: parseJson(text) }
}

/** A plain HTTP request to 127.0.0.1:port. */
export async function httpGet(port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<HttpReply> {
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    ...(init.headers ? { headers: init.headers } : {}),
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(init.localAddress ? { dispatcher: localAgent(init.localAddress) } : {}),
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: parseJson(text) }
}

const locals = new Map<string, Agent>()
const localAgent = (addr: string): Agent => {
  let a = locals.get(addr)
  if (!a) {
    a = new Agent({ localAddress: addr }) // a Client option: undici ignores connect.localAddress
    locals.set(addr, a)
  }
  return a
}

/** Facts of one raw TLS handshake (Node's tls), or the error that ended it. */
export interface HandshakeResult {
  readonly ok: boolean
  readonly error?: string
  readonly peer?: PeerCertificate
  readonly protocol?: string | null
  readonly session?: Buffer
  readonly reused?: boolean
  readonly socket?: TLSSocket
}

/** One TLS handshake with tls.connect; resolves with the peer certificate or the error. Closes the socket unless keep. */
export function handshake(o: TlsOpts & { keep?: boolean; timeoutMs?: number }): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    let session: Buffer | undefined
    const s = connect({
      host: '127.0.0.1',
      port: o.port,
      ...(o.servername !== undefined ? { servername: o.servername } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      rejectUnauthorized: false,
      ...(o.cert !== undefined ? { cert: o.cert, key: o.key } : {}),
      ...(o.minVersion ? { minVersion: o.minVersion } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      ...(o.session ? { session: o.session } : {}),
    })
    s.on('session', (b: Buffer) => (session = b))
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ ok: false, error: 'timeout' })
    }, o.timeoutMs ?? 5000)
    s.once('secureConnect', () => {
      // TLS 1.3: a refused client certificate arrives as an alert after the handshake; wait a moment for it
      const done = (): void => {
        clearTimeout(timer)
        const r: HandshakeResult = { ok: !s.destroyed, peer: s.getPeerCertificate(true), protocol: s.getProtocol(), reused: s.isSessionReused(), ...(session ? { session } : {}) }
        if (o.keep) resolve({ ...r, socket: s })
        else {
          resolve(r)
          s.end()
        }
      }
      s.write('GET /apisix/status HTTP/1.1\r\nhost: x\r\n\r\n')
      s.once('data', () => done())
      s.once('close', () => {
        clearTimeout(timer)
        resolve({ ok: false, error: 'closed after handshake', ...(session ? { session } : {}) })
      })
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve({ ok: false, error: err.code ?? err.message })
    })
  })
}

/** The parsed JSON of a body, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
