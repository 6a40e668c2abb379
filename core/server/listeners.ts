import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import type { LocalConfig } from '../config/local-schema.js'
import { httpListeners } from '../config/local.js'
import { GatewayError } from '../errors.js'
import { nodeConnectionListener } from '../runtime/node-internals.js'
import { TLSSocket } from 'node:tls'
import type { BalanceSlot } from './worker-balance.js'

export interface Listeners {
  /** stop accepting, close idle keep-alive connections, wait (bounded) for in-flight requests */
  drain(timeoutMs: number): Promise<void>
}

/**
 * HTTP server options shared by the plain and TLS listeners: bounded headers and timeouts. A
 * client has `headersTimeout` to send a request's headers (a slowloris client gets 408 then);
 * Node checks that every `connectionsCheckingInterval`, whose default (30 s) would let such a
 * client live up to twice as long (measured: 50 s).
 */
export const httpServerOptions = {
  maxHeaderSize: 16 * 1024,
  headersTimeout: 30_000,
  connectionsCheckingInterval: 1_000,
  requestTimeout: 0,
  keepAliveTimeout: 60_000,
  requireHostHeader: false,
} as const

/** Node's own 'connection' listener of each HTTP server made here (startHttpListeners puts its own in front). */
const nodeConnection = new WeakMap<Server, (socket: Socket) => void>()

/** Gives a connection to Node's HTTP server itself, past any listener put in front of Node's. */
export function serveWithNode(server: Server, socket: Socket): void {
  const own = nodeConnection.get(server)
  if (own) own.call(server, socket)
  else server.emit('connection', socket)
}

/** The whole reply (then the connection closes) to a request that never reached the handler. */
export function clientErrorReply(status: 400 | 408 | 431): string {
  const body = `{"error_msg":"${status === 431 ? 'request header fields too large' : status === 408 ? 'request timeout' : 'bad request'}"}\n`
  return `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`
}

/** Creates the one HTTP server that both the plain listener and TLS sockets feed. */
export function createHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(httpServerOptions, handler)
  const own = nodeConnectionListener(server)
  if (own) nodeConnection.set(server, own)
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy()
    socket.end(clientErrorReply(err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400))
  })
  return server
}

/** Listens `server` on ip:port; rejects with GW_PORT_IN_USE / GW_LISTEN_FAILED naming the address. */
export function listen(server: NetServer, what: string, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const addr = `${ip}:${port}`
      reject(err.code === 'EADDRINUSE' ? new GatewayError('GW_PORT_IN_USE', [what, addr]) : new GatewayError('GW_LISTEN_FAILED', [what, addr, err.code ?? err.message]))
    }
    server.once('error', onError)
    server.listen({ host: ip, port }, () => {
      server.off('error', onError)
      resolve()
    })
  })
}

/** What the plain listeners need to share connections with the other workers (core/server/worker-balance.ts). */
export interface PlainBalance {
  readonly balance: BalanceSlot
  /** hands an unread connection to the primary; false when it cannot */
  handOver(socket: Socket): boolean
}

export interface PlainListeners {
  close(): void
  /** serves a plain connection another worker handed over (nothing of it was read) */
  adopt(socket: Socket): void
}

/**
 * Starts the plain HTTP data-plane listeners on `apisix.node_listen`. `server` itself listens on
 * the first address (Node's header and request timeouts run for every connection it is given);
 * further addresses are plain net servers. Every connection accepted goes to `serve` (the fast
 * HTTP/1.1 path, which gives Node's server what it does not serve; default: Node's server). With
 * `b`, every connection accepted here is counted, and one arriving while this worker holds clearly
 * more than another goes to that one before a byte of it is read. Node's own connection listener
 * on `server` runs only through serveWithNode (a TLS socket emitted on `server` goes straight to it).
 */
export async function startHttpListeners(c: LocalConfig, server: Server, o: { serve?: (socket: Socket) => void; balance?: PlainBalance } = {}): Promise<PlainListeners> {
  const b = o.balance
  const nodeListener = nodeConnection.get(server)
  /** a connection accepted here: true when it went to another worker */
  const handedOver = (socket: Socket): boolean => {
    if (!b) return false
    b.balance.track(socket)
    return b.balance.handOverIfBusy(socket, b.handOver)
  }
  const direct: (socket: Socket) => void = o.serve ?? ((socket) => serveWithNode(server, socket))
  if (nodeListener && server.listeners('connection').includes(nodeListener)) {
    server.removeListener('connection', nodeListener)
    server.on('connection', (socket: Socket) => {
      if (socket instanceof TLSSocket) serveWithNode(server, socket)
      else if (!handedOver(socket)) direct(socket)
    })
  }
  const extra: NetServer[] = []
  for (const [i, l] of httpListeners(c).entries()) {
    if (i === 0) {
      await listen(server, 'apisix.node_listen', l.ip, l.port)
      continue
    }
    const s = createNetServer((socket) => {
      if (!handedOver(socket)) direct(socket)
    })
    await listen(s, 'apisix.node_listen', l.ip, l.port)
    extra.push(s)
  }
  return {
    close() {
      server.close()
      for (const s of extra) s.close()
    },
    adopt(socket) {
      b?.balance.adopt(socket)
      direct(socket)
    },
  }
}
