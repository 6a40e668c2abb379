import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

/** What one raw connection to the gateway saw. */
export interface RawOutcome {
  /** every byte the server sent (after the TLS layer, for `servername` connections) */
  readonly bytes: Buffer
  /** true when the server closed the connection; false when our own deadline ended it */
  readonly closed: boolean
  /** time from connect to close (or to our deadline) */
  readonly ms: number
  /** the first socket error code seen (ECONNRESET, EPIPE …), if any */
  readonly error?: string
  /** for a TLS connection: whether the handshake completed */
  readonly handshake?: boolean
}

export interface RawOptions {
  port: number
  /** connect with TLS and this SNI first, then write `send` as application data */
  servername?: string
  /** half-close (FIN) once `send` is written */
  end?: boolean
  /** our own deadline: the connection is destroyed and reported `closed: false` */
  timeoutMs?: number
}

/**
 * Opens one connection to 127.0.0.1, writes `send` as is (nothing when undefined) and collects
 * what comes back until the server closes. Never rejects: write errors and resets are reported.
 */
export function rawExchange(o: RawOptions, send: Buffer | string | undefined): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const start = Date.now()
    const chunks: Buffer[] = []
    let error: string | undefined
    let handshake: boolean | undefined
    let ours = false
    const write = (s: Socket): void => {
      if (send !== undefined && send.length > 0) s.write(send)
      if (o.end) s.end()
    }
    let s: Socket
    if (o.servername !== undefined) {
      handshake = false
      const t = tlsConnect({ host: '127.0.0.1', port: o.port, servername: o.servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        handshake = true
        write(t)
      })
      s = t
    } else {
      s = netConnect(o.port, '127.0.0.1', () => write(s))
    }
    const timer = setTimeout(() => {
      ours = true
      s.destroy()
    }, o.timeoutMs ?? 10_000)
    s.on('data', (b: Buffer) => chunks.push(b))
    s.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve({
        bytes: Buffer.concat(chunks),
        closed: !ours,
        ms: Date.now() - start,
        ...(error !== undefined ? { error } : {}),
        ...(handshake !== undefined ? { handshake } : {}),
      })
    })
  })
}

/** The status code of the first HTTP/1.x response in `bytes`, or 0 when there is none. */
export const firstStatus = (bytes: Buffer): number => Number(/^HTTP\/1\.[01] (\d{3}) /.exec(bytes.toString('latin1', 0, 64))?.[1] ?? 0)

/**
 * Sends `text` one byte per `everyMs` on a plain or TLS connection (slowloris) until the server
 * closes it or `maxMs` passes; reports when it was closed and what the server sent.
 */
export function dribbleBytes(o: { port: number; servername?: string; everyMs: number; maxMs: number }, text: string): Promise<RawOutcome & { sent: number }> {
  return new Promise((resolve) => {
    const start = Date.now()
    const chunks: Buffer[] = []
    let error: string | undefined
    let sent = 0
    let ours = false
    let tick: NodeJS.Timeout | undefined
    const drip = (s: Socket): void => {
      tick = setInterval(() => {
        if (s.destroyed || !s.writable) return
        s.write(text.charAt(sent % text.length))
        sent++
      }, o.everyMs)
    }
    const s: Socket = o.servername !== undefined
      ? tlsConnect({ host: '127.0.0.1', port: o.port, servername: o.servername, rejectUnauthorized: false }, () => drip(s))
      : netConnect(o.port, '127.0.0.1', () => drip(s))
    const timer = setTimeout(() => {
      ours = true
      s.destroy()
    }, o.maxMs)
    s.on('data', (b: Buffer) => chunks.push(b))
    s.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message
    })
    s.on('close', () => {
      clearTimeout(timer)
      clearInterval(tick)
      resolve({ bytes: Buffer.concat(chunks), closed: !ours, ms: Date.now() - start, sent, ...(error !== undefined ? { error } : {}) })
    })
  })
}

/** The first flight Node's own TLS client sends for `servername` (a complete ClientHello record). */
export function captureClientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      let got = Buffer.alloc(0)
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d])
        // complete once the record(s) announced so far are all here
        let off = 0
        while (off + 5 <= got.length) off += 5 + got.readUInt16BE(off + 3)
        if (off === got.length) {
          s.destroy()
          server.close()
          resolve(got)
        }
      })
      s.on('error', () => undefined)
    })
    server.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      c.on('error', () => undefined)
    })
    server.on('error', reject)
  })
}

/** Runs `jobs` with at most `limit` in flight; results in input order. */
export async function inParallel<T, R>(items: readonly T[], limit: number, job: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await job(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
