import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/** What the echo upstream saw, returned as its JSON body. */
export interface Echoed {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
  rawHeaders: string[]
  bodyBytes: number
  /** the body as text when small (< 64 KiB) */
  body: string
  port: number
  /** this upstream's name (given at start) */
  name: string
}

export interface Echo {
  readonly port: number
  /** "127.0.0.1:port" */
  readonly hostPort: string
  readonly server: Server
  /** requests seen so far */
  readonly seen: Echoed[]
}

/** An upstream that answers with the method, path, headers and body size it received. */
export async function startEcho(t: Test, name = 'echo', ip = '127.0.0.1'): Promise<Echo> {
  const seen: Echoed[] = []
  const server = createServer((req: IncomingMessage, res) => {
    let bytes = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      bytes += c.length
      if (bytes < 65536) chunks.push(c)
    })
    req.on('end', () => {
      const e: Echoed = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyBytes: bytes,
        body: bytes < 65536 ? Buffer.concat(chunks).toString() : '',
        port: (server.address() as AddressInfo).port,
        name,
      }
      seen.push(e)
      const text = JSON.stringify(e)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-upstream': name })
      res.end(text)
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((r) => server.listen(0, ip, r))
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }))
  const port = (server.address() as AddressInfo).port
  return { port, hostPort: `${ip}:${port}`, server, seen }
}
