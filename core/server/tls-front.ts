import type { Server as HttpServer } from 'node:http'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import type { PeerCertificate, Server as TlsServer, TLSSocket } from 'node:tls'
import type { LocalConfig } from '../config/local-schema.js'
import type { Logger } from '../log.js'
import type { Generation } from '../generation/generation.js'
import type { ClientCert } from '../plugins/types.js'
import { parseClientHello, MAX_HELLO_BYTES, type ClientHello } from '../tls/client-hello.js'
import { H2_WEIGHT, type BalanceSlot } from './worker-balance.js'
import { chainLinksOf, intermediatesIn, resumedIntermediates, sentIntermediates, type TlsPolicy } from '../tls/contexts.js'
import { checkRevocation, type ChainLink, type RevocationError } from '../x509/crl.js'
import { buildClientCertFacts, clientCertOf, clientVerdict, reasonCategory, type CertFailureReason } from '../x509/cert.js'
import { PeerCertCache } from '../tls/peer-cache.js'
import { peerCertFromSession } from '../x509/peer-der.js'
import { setTlsFacts } from '../tls/facts.js'
import { normalizeSni } from '../net/hostname.js'
import { listen } from './listeners.js'

/** How long a client may take to send its ClientHello. */
export const HELLO_TIMEOUT_MS = 10_000

/** Handshake outcomes as `apisix_tls_handshakes_total` labels them. */
export type HandshakeResult = 'ok' | 'resumed' | 'refused' | 'error'

/** Where the TLS front reports handshakes and refused client certificates (core/ops/worker.ts wires it). */
export interface TlsObserver {
  handshake(sslId: string, sni: string, result: HandshakeResult): void
  clientCertFailure(sslId: string, sni: string, reason: CertFailureReason): void
}

export interface TlsFront {
  /** stops accepting new connections (open ones belong to the HTTP server) */
  close(): void
  /** serves a connection another worker handed over with the ClientHello it read and its weight (core/server/worker-balance.ts) */
  adopt(socket: Socket, hello: Buffer, weight: number): void
}

/** A fatal TLS alert record (TLS 1.2 record version, two-byte alert). */
const alert = (description: number): Buffer => Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description])
/** unrecognized_name(112): an SNI no ssl object serves, or no SNI and no fallback_sni. */
export const ALERT_UNRECOGNIZED_NAME = alert(112)
/** internal_error(80): the matched object cannot be served (e.g. its key does not decrypt). */
export const ALERT_INTERNAL_ERROR = alert(80)

const PLAIN_HTTP_BODY = '{"error_msg":"The plain HTTP request was sent to HTTPS port"}\n'
const PLAIN_HTTP_REPLY = `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${PLAIN_HTTP_BODY.length}\r\nconnection: close\r\n\r\n${PLAIN_HTTP_BODY}`

const ignore = (): void => undefined

/** The SNI Node reports for a TLS socket, normalised; undefined when none (`servername`, untyped). */
const nodeSni = (s: TLSSocket): string | undefined => {
  const n = (s as TLSSocket & { servername?: unknown }).servername
  return typeof n === 'string' && n !== '' ? normalizeSni(n) : undefined
}

/**
 * The SNI each connection's ClientHello carried ('' for none), by the plain socket handed to a
 * policy server. Node's `servername` is not that on every runtime: it is OpenSSL's
 * SSL_get_servername, which for a resumed TLS 1.2 session answers the name stored in the
 * session, and OpenSSL 3.0 (Node 20) stores none when the servername callback does not
 * acknowledge the name (Node's does not without SNI contexts), so a resumed TLS 1.2 connection
 * had no SNI there (measured; OpenSSL 3.5 stores it). The TLSSocket a tls.Server makes for a
 * socket keeps it as `_parent` (Node internal, pinned by t/unit/server/tls-front.test.ts).
 */
const helloSni = new WeakMap<object, string>()

/** The SNI of a connection: the one its ClientHello carried (CONTRACT.md), full and resumed handshakes alike. */
const sentSni = (s: TLSSocket): string | undefined => {
  const parent = (s as TLSSocket & { _parent?: object | null })._parent
  const fromHello = parent ? helloSni.get(parent) : undefined
  if (fromHello === undefined) return nodeSni(s)
  return fromHello === '' ? undefined : fromHello
}

/**
 * The TLS data plane (DESIGN.md §2.7): a plain net.Server per `apisix.ssl.listen` address reads
 * the ClientHello, looks the SNI up in the current generation and hands the socket to that
 * object's own tls.Server; a verified socket then goes to the one HTTP server, with its TlsFacts.
 * One front per worker: it attaches its listeners to each policy server it hands sockets to, so
 * two fronts sharing one policy cache would both handle every connection.
 */
export async function startTlsFront(o: {
  config: LocalConfig
  httpServer: HttpServer
  current(): Generation
  log: Pick<Logger, 'info' | 'debug'>
  observe?: TlsObserver
  /** how long a client may take to send its ClientHello (default HELLO_TIMEOUT_MS) */
  helloTimeoutMs?: number
  /** this worker's connection counts, shared with the others (core/server/worker-balance.ts) */
  balance?: BalanceSlot
  /** hands a connection, the ClientHello read from it and its weight to the primary; false when it cannot */
  handOver?: (socket: Socket, hello: Buffer, weight: number) => boolean
  /** serves a verified connection's HTTP (default: the HTTP server's 'connection') */
  serveHttp?: (socket: TLSSocket) => void
}): Promise<TlsFront> {
  const fallback = normalizeSni(o.config.apisix.ssl.fallback_sni)
  const wired = new WeakSet<TlsServer>()
  // an entry a session depends on left the cache: that object's tickets on this worker go with it
  const peers = new PeerCertCache(undefined, (p) => (p as TlsPolicy).dropTickets())
  const observe = o.observe

  const onSecure = (s: TLSSocket, policy: TlsPolicy): void => {
    s.on('error', ignore)
    const sent = sentSni(s)
    const label = sent ?? fallback
    let clientCert: ClientCert | undefined
    let verify = 'NONE'
    let chainOk = false
    let links: (() => readonly ChainLink[]) | undefined
    if (policy.client) {
      // the leaf's DER from the session first (core/tls/peer-der.ts); the chain
      // (getPeerCertificate(true), 210 µs) only for a certificate this policy has not seen within
      // its depth yet
      const der = peerCertFromSession(s.getSession()) ?? (s.getPeerCertificate(false) as Partial<PeerCertificate>).raw
      const known = der ? peers.entry(policy, der, buildClientCertFacts) : undefined
      const authorized = s.authorized
      const error = (s.authorizationError as unknown as string | null | undefined) ?? undefined
      let n: number | undefined
      if (known && authorized) {
        if (known.intermediates !== undefined) n = known.intermediates
        else if (s.isSessionReused()) {
          // a resumed session has the leaf but not the chain: the count of the full handshake
          // that made it when this worker saw it, else what the CA store alone shows; never
          // recorded (counting the truncated chain once let a chain past the depth in, full
          // handshakes included)
          n = known.beyond ?? resumedIntermediates(s.getPeerCertificate(true))
        } else {
          const chain = s.getPeerCertificate(true)
          n = intermediatesIn(chain)
          if (n <= policy.client.depth) known.intermediates = n
          else known.beyond = n
          // a session's resumption needs this entry when its verdict cannot be rebuilt without the
          // intermediates the client sent: past the depth, or CRL checks on those intermediates
          if (n > policy.client.depth || (policy.client.crls && n > 0 && sentIntermediates(chain, policy.client))) known.pinned = true
        }
      }
      // revocation: every certificate of a chain that passed the rest, against the object's CRLs
      let revoked: RevocationError | undefined
      if (known && authorized && n !== undefined && n <= policy.client.depth) {
        chainOk = true
        const entry = known
        // a resumed session's chain lacks the intermediates the client sent: counted, never kept
        links = s.isSessionReused()
          ? () => entry.links ?? chainLinksOf(s.getPeerCertificate(true))
          : () => (entry.links ??= chainLinksOf(s.getPeerCertificate(true)))
        const crls = policy.client.crls
        if (crls) revoked = checkRevocation(links(), crls, Date.now())
        if (revoked) known.pinned = true
      }
      const v = clientVerdict(policy.client, der !== undefined, revoked === undefined && authorized, revoked ?? error, n)
      verify = v.verify
      if (v.refuse && v.reason) {
        // refused before any HTTP byte is read: the HTTP server never sees this socket
        observe?.clientCertFailure(policy.id, label, v.reason)
        observe?.handshake(policy.id, label, 'refused')
        s.destroy()
        return
      }
      if (der && known?.facts) clientCert = clientCertOf(der, known.facts, v.authorized, verify)
    }
    observe?.handshake(policy.id, label, s.isSessionReused() ? 'resumed' : 'ok')
    setTlsFacts(s, {
      sni: sent,
      matchSni: label,
      sslId: policy.id,
      protocol: s.getProtocol() ?? '',
      clientCert,
      verify,
      client: policy.client,
      chainOk,
      ...(links ? { links } : {}),
    })
    if (o.serveHttp) o.serveHttp(s)
    else o.httpServer.emit('connection', s)
  }

  const wire = (server: TlsServer, policy: TlsPolicy): void => {
    if (wired.has(server)) return
    wired.add(server)
    server.on('secureConnection', (s: TLSSocket) => onSecure(s, policy))
    server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
      const sni = sentSni(s) ?? fallback
      // OpenSSL refused the client certificate (rejectUnauthorized): the error is a bare ECONNRESET,
      // but the socket keeps the verify result in authorizationError (measured, TLS 1.2 and 1.3)
      const verifyError = (s.authorizationError as unknown as string | null | undefined) ?? undefined
      const reason = !policy.client ? undefined
        : err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' ? 'no_certificate'
        : verifyError !== undefined ? reasonCategory(false, verifyError, true)
        : undefined
      if (policy.client && reason) {
        observe?.clientCertFailure(policy.id, sni, reason)
        observe?.handshake(policy.id, sni, 'refused')
      } else {
        observe?.handshake(policy.id, sni, 'error')
      }
      o.log.debug({ ssl_id: policy.id, sni, err: err.code ?? err.message, verify: verifyError ?? null }, 'TLS handshake failed')
      // Node reports a handshake timeout (handshakeTimeout) here without closing the socket: a
      // client that sent a whole ClientHello and then nothing would hold it forever (measured)
      s.destroy()
    })
  }

  /** The ClientHello is in: the connection goes to its ssl object's tls.Server (or is refused). */
  const serve = (socket: Socket, buf: Buffer, hello: ClientHello): void => {
    const name = hello.sni ?? fallback
    const policy = name === '' ? undefined : o.current().sni.lookup(name)
    if (!policy) {
      o.log.info({ sni: hello.sni ?? null }, hello.sni === undefined ? 'failed to find SNI and no fallback_sni matches' : 'failed to match any SSL certificate by SNI')
      observe?.handshake('', name, 'refused')
      socket.end(ALERT_UNRECOGNIZED_NAME)
      return
    }
    const server = policy.server(hello.ticketKeyName)
    if (server instanceof Error) {
      observe?.handshake(policy.id, name, 'error')
      socket.end(ALERT_INTERNAL_ERROR)
      return
    }
    wire(server, policy)
    helloSni.set(socket, hello.sni ?? '')
    socket.unshift(buf)
    server.emit('connection', socket)
  }

  const balance = o.balance
  const handOver = o.handOver
  // a ClientHello offering h2 gets it (chooseAlpn): such a connection weighs more in the balance
  const h2 = o.config.apisix.enable_http2
  const weightOf = (hello: ClientHello): number => (h2 && hello.alpn?.includes('h2') ? H2_WEIGHT : 1)

  const onSocket = (socket: Socket): void => {
    socket.on('error', ignore)
    balance?.track(socket)
    const timer = setTimeout(() => socket.destroy(), o.helloTimeoutMs ?? HELLO_TIMEOUT_MS)
    let buf: Buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      const r = parseClientHello(buf)
      if (r.state === 'need-more') {
        if (buf.length > 2 * MAX_HELLO_BYTES) {
          clearTimeout(timer)
          socket.destroy()
        }
        return
      }
      clearTimeout(timer)
      socket.off('data', onData)
      socket.pause()
      if (r.state === 'malformed') {
        if (r.reason === 'plain http') socket.end(PLAIN_HTTP_REPLY)
        else socket.destroy()
        return
      }
      // this worker holds clearly more connections than another: that one serves this client
      if (balance) {
        balance.weigh(socket, weightOf(r))
        if (handOver && balance.handOverIfBusy(socket, (s, weight) => handOver(s, buf, weight))) return
      }
      serve(socket, buf, r)
    }
    socket.on('data', onData)
  }

  const servers: NetServer[] = []
  try {
    for (const l of o.config.apisix.ssl.listen) {
      const s = createNetServer({ noDelay: true }, onSocket)
      await listen(s, 'apisix.ssl.listen', l.ip, l.port)
      servers.push(s)
    }
  } catch (err) {
    for (const s of servers) s.close()
    throw err
  }
  return {
    close() {
      for (const s of servers) s.close()
    },
    adopt(socket, hello, weight) {
      const r = parseClientHello(hello)
      socket.on('error', ignore)
      socket.setNoDelay(true)
      balance?.adopt(socket, weight)
      if (r.state !== 'ok') {
        socket.destroy()
        return
      }
      socket.pause()
      serve(socket, hello, r)
    },
  }
}
