/**
 * HTTP/2 on the data plane (CONTRACT.md "HTTP/2"; DESIGN.md §2.7, ALPN after the hand-off): one
 * plain `http2.createServer()` per worker, never listening. TLS connections whose ALPN chose
 * `h2` and plain connections that open with the h2c preface are handed to it; each stream
 * becomes an H2Request / H2Response pair for the same request handler the HTTP/1.1 paths use
 * (core/pipeline/handle.ts), so every data-plane rule holds per stream. The request's `socket`
 * is the connection's own socket (not Node's per-stream proxy), so the TLS facts of the
 * handshake (core/tls/facts.ts) and the peer address read the same as on HTTP/1.1.
 *
 * Abuse (CONTRACT.md: GOAWAY and a close, never harm to other connections) is bounded by
 * nghttp2's and Node's own limits, set here explicitly, and by a watchdog per session: a session
 * with response bytes pending that writes nothing for `sendTimeoutMs` (windows held shut), and
 * one whose request the binding refused on its header block (an HPACK bomb), are ended. Every
 * abusive session ends the same way (`endSession`): GOAWAY with a code that says why, reading
 * stopped, the GOAWAY flushed through TLS, a short linger so that a client still writing reads
 * it before the close, then the close. Node's own ending of a session for a flood the binding
 * detects is taken over for this (`interceptBindingErrors`): on TLS its GOAWAY was lost.
 */
import { constants, createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders as H2OutHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { IncomingHttpHeaders, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { HttpResponse, RequestHead } from '../pipeline/http.js'
import { STALLED } from '../proxy/forward.js'
import { handleQueuedBytes, interceptBindingErrors, resetStream, stopReading, type BindingError } from '../runtime/node-internals.js'

/** The client connection preface of HTTP/2 (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/** Concurrent streams a client may open on one connection (CONTRACT.md). */
export const MAX_CONCURRENT_STREAMS = 128

/**
 * Server options: the limits each abuse case meets (measured in t/e2e/h2-abuse.test.ts).
 * - streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused; a client that goes on opening them
 *   (`maxSessionRejectedStreams`) or sends invalid frames (`maxSessionInvalidFrames`) loses the session;
 * - rapid reset (CVE-2023-44487): nghttp2's RST_STREAM rate limit (`streamResetBurst`/`Rate`);
 * - CONTINUATION floods (CVE-2024-27316 class): nghttp2 ≥ 1.61 caps CONTINUATION frames per block;
 * - HPACK bombs: SETTINGS_MAX_HEADER_LIST_SIZE, `maxHeaderListPairs`, `maxSessionMemory` (the stream is
 *   refused by Node; the watchdog in createH2 then ends the connection);
 * - settings/ping floods: `maxSettings`, `maxOutstandingSettings`, `maxOutstandingPings` and
 *   nghttp2's cap on queued ACKs.
 */
export const h2ServerOptions = {
  settings: {
    maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
    maxHeaderListSize: 32 * 1024,
    enablePush: false,
  },
  maxHeaderListPairs: 128,
  maxSessionMemory: 10,
  maxSettings: 32,
  maxOutstandingSettings: 10,
  maxOutstandingPings: 10,
  maxSessionRejectedStreams: 100,
  maxSessionInvalidFrames: 100,
  streamResetBurst: 1000,
  streamResetRate: 33,
  unknownProtocolTimeout: 10_000,
} as const

/** What the HTTP/2 front needs from the worker. */
export interface H2Options {
  /** the request handler (the same one the HTTP/1.1 paths call) */
  handler(req: RequestHead, res: HttpResponse): void
  /** a session with response bytes pending that writes none this long is sent GOAWAY and closed (0: no bound) */
  readonly sendTimeoutMs: number
  /** a session with no open stream this long is closed (Node's keepAliveTimeout on HTTP/1.1) */
  readonly idleTimeoutMs: number
}

/** A worker's HTTP/2 connections. */
export interface H2Front {
  /** serves a connection: a TLS socket whose ALPN is h2, or a plain one that sent the preface (`pending`: bytes read already) */
  serve(socket: Socket, pending?: Buffer | null): void
  /** sends GOAWAY to every session: streams in flight finish, no new ones start (drain) */
  closeIdle(): void
  /** destroys every session */
  cutAll(): void
  /** open sessions (tests) */
  size(): number
}

/** Names a request may not carry into HTTP/1.1 as they are (RFC 9113 §8.2.2), dropped from the forwarded list. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

/** One HTTP/2 request as the pipeline reads it: pseudo-headers mapped, Host from :authority. */
export class H2Request implements RequestHead {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly socket: Socket
  readonly httpVersion = '2.0'
  /** the request body (the stream itself), null when the HEADERS frame ended the stream */
  readonly body: Readable | null
  readonly stream: ServerHttp2Stream

  constructor(stream: ServerHttp2Stream, h: H2Headers, socket: Socket) {
    this.stream = stream
    this.socket = socket
    this.method = String(h[':method'] ?? 'GET')
    this.url = String(h[':path'] ?? '')
    const headers: IncomingHttpHeaders = {}
    const raw: string[] = []
    const authority = h[':authority']
    if (typeof authority === 'string') {
      headers.host = authority
      raw.push('host', authority)
    }
    let cookies: string[] | undefined
    for (const name of Object.keys(h)) {
      if (name.charCodeAt(0) === 0x3a) continue // pseudo-headers
      const v = h[name]
      if (v === undefined) continue
      if (name === 'cookie') {
        // RFC 9113 §8.2.3: split cookie fields are joined for HTTP/1.1
        cookies = Array.isArray(v) ? v : [v]
        continue
      }
      if (name === 'host') {
        // a Host that names another authority than :authority is two Hosts (400 in the pipeline)
        if (typeof authority === 'string' && v === authority) continue
        headers.host ??= v as string
      } else if (CONNECTION_SPECIFIC.has(name)) continue
      else headers[name] = v
      for (const x of Array.isArray(v) ? v : [v]) raw.push(name, x)
    }
    if (cookies !== undefined) {
      const joined = cookies.join('; ')
      headers.cookie = joined
      raw.push('cookie', joined)
    }
    this.headers = headers
    this.rawHeaders = raw
    this.body = stream.endAfterHeaders ? null : bodyReader(stream)
  }
}

/**
 * The request body as its own Readable over the stream's data: undici destroys a body stream it
 * has read to the end, and destroying the Http2Stream itself would reset the whole exchange
 * before the response (measured: the client saw the stream closed with no answer).
 */
function bodyReader(stream: ServerHttp2Stream): Readable {
  const r = new Readable({
    read() {
      stream.resume()
    },
    destroy(err, cb) {
      // a body the upstream side gave up on: the client's stream is not needed any more
      if (err && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL)
      cb(null)
    },
  })
  const onData = (c: Buffer): void => {
    if (!r.push(c)) stream.pause()
  }
  const onEnd = (): void => void r.push(null)
  const onAborted = (): void => void r.destroy(new Error('client reset the stream'))
  stream.on('data', onData)
  stream.once('end', onEnd)
  stream.once('aborted', onAborted)
  // a closed stream stays reachable for a while inside node:http2: it must not keep the body,
  // and through the body's listeners the whole request (see forward.ts, the client-close listener)
  stream.once('close', () => {
    stream.off('data', onData)
    stream.off('end', onEnd)
    stream.off('aborted', onAborted)
  })
  return r
}

type HeaderInput = OutgoingHttpHeaders | OutgoingHttpHeader[]

/** Response names HTTP/2 cannot carry (RFC 9113 §8.2.2): dropped from what writeHead is given. */
const dropped = (lower: string): boolean => CONNECTION_SPECIFIC.has(lower) || lower === 'te' || lower === 'trailer' || lower === 'http2-settings'

/** The response to one stream, written with respond()/write()/end(); trailers when asked for. */
export class H2Response implements HttpResponse {
  statusCode = 200
  /** meaningless per stream: a refused request ends its stream, never the connection */
  shouldKeepAlive = true
  readonly stream: ServerHttp2Stream
  readonly #isHead: boolean
  #extra: Record<string, OutgoingHttpHeader> | undefined = undefined
  /** the headers made by writeHead, sent with the first body bytes, the end, or flushHeaders */
  #head: H2OutHeaders | string[] | undefined = undefined
  #flushed = false
  #hasBody = true
  #wantTrailers = false
  #trailers: H2OutHeaders | undefined = undefined

  readonly #onStall: (() => void) | undefined
  /**
   * 'close' listeners (the pipeline's and the proxy's): called from the one 'close' listener the
   * HTTP/2 front puts on the stream (`streamClosed`), instead of each being an EventEmitter
   * `once()` on the stream (a wrapper, a bound function and a removal per listener per request);
   * null once the stream closed (a later listener is never called, as on a closed stream)
   */
  #closeListeners: (() => void)[] | null = []

  constructor(stream: ServerHttp2Stream, isHead: boolean, onStall?: () => void) {
    this.stream = stream
    this.#isHead = isHead
    this.#onStall = onStall
  }

  /** The stream closed: the close listeners run once, in the order they were added, and are dropped. */
  streamClosed(): void {
    const listeners = this.#closeListeners
    // dropped first: node:http2 keeps a closed stream reachable for a while, and with it this
    // response (the stream's listener closes over it), but never what the listeners close over
    this.#closeListeners = null
    if (listeners !== null) for (const l of listeners) l()
  }

  get headersSent(): boolean {
    return this.#head !== undefined
  }

  /** The session ends once its open streams are done (GOAWAY): a revoked client's connection. */
  closeConnection(): void {
    const session = this.stream.session
    if (session && !session.closed && !session.destroyed) session.close()
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished
  }

  setHeader(name: string, value: OutgoingHttpHeader): this {
    ;(this.#extra ??= {})[name.toLowerCase()] = value
    return this
  }

  /** The response will end with trailers (gRPC): respond() waits for them. */
  expectTrailers(): void {
    this.#wantTrailers = true
  }

  /** Trailers sent after the last DATA frame (with expectTrailers). */
  setTrailers(t: H2OutHeaders): void {
    this.#trailers = t
  }

  writeHead(status: number, headers?: HeaderInput): this {
    if (this.#head !== undefined) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
    this.statusCode = status
    if (status === 204 || status === 304 || this.#isHead) this.#hasBody = false
    if (Array.isArray(headers)) {
      // a flat list (the proxied response) stays one: node:http2 takes raw lists, and a repeated
      // name is sent once per value as it would be from an array value (no object, no merging)
      const out: string[] = [':status', String(status)]
      const extra = this.#extra
      if (extra !== undefined)
        for (const k of Object.keys(extra)) {
          const v = extra[k]!
          if (Array.isArray(v)) for (const x of v) out.push(k, x)
          else out.push(k, String(v))
        }
      for (let i = 0; i + 1 < headers.length; i += 2) {
        const value = headers[i + 1]
        // HTTP/2 names are lower-case: node:http2 lower-cases them again, and gets the same string back
        const name = String(headers[i]).toLowerCase()
        if (value === undefined || dropped(name)) continue
        if (Array.isArray(value)) for (const x of value) out.push(name, x)
        else out.push(name, String(value))
      }
      this.#head = out
      return this
    }
    const out: H2OutHeaders = { ...this.#extra }
    if (headers)
      for (const k of Object.keys(headers)) {
        const value = headers[k]
        const lower = k.toLowerCase()
        if (value !== undefined && !dropped(lower)) out[lower] = value
      }
    out[':status'] = status
    this.#head = out
    return this
  }

  /**
   * Sends the HEADERS frame made by writeHead (or a bare one), ending the stream with it when
   * `last`: a response with no body and no trailers is one frame (a gRPC trailers-only answer
   * stays trailers-only).
   */
  flushHeaders(last = false): void {
    if (this.#flushed) return
    if (this.#head === undefined) this.writeHead(this.statusCode)
    this.#flushed = true
    const s = this.stream
    if (s.destroyed || s.closed) return
    if (last || !this.#hasBody) return s.respond(this.#head, { endStream: true })
    if (this.#wantTrailers) {
      s.once('wantTrailers', () => {
        if (!s.destroyed) s.sendTrailers(this.#trailers ?? {})
      })
      s.respond(this.#head, { waitForTrailers: true })
    } else s.respond(this.#head)
  }

  write(chunk: Buffer | string): boolean {
    this.flushHeaders()
    const s = this.stream
    if (!this.#hasBody || s.destroyed || s.writableEnded) return true
    return s.write(chunk)
  }

  end(data?: Buffer | string): this {
    const s = this.stream
    if (!this.#flushed) {
      const empty = data === undefined || data.length === 0
      if (this.#head === undefined && this.#extra?.['content-length'] === undefined && !this.#isHead) this.setHeader('content-length', empty ? 0 : Buffer.byteLength(data))
      // nothing to send after the headers: they end the stream
      if (empty && !this.#wantTrailers) {
        this.flushHeaders(true)
        return this
      }
      this.flushHeaders()
    }
    if (s.destroyed || s.writableEnded || !this.#hasBody) return this
    if (data !== undefined) s.end(data)
    else s.end()
    return this
  }

  /**
   * Cuts the stream with RST_STREAM INTERNAL_ERROR; the connection goes on. Not close(code): Node
   * ends the writable side first (END_STREAM), and a client whose side was already ended then
   * sees a complete response and ignores the reset (measured: a gRPC client reported "ended
   * without gRPC status", code 0).
   */
  destroy(err?: Error): this {
    const s = this.stream
    // a client that took none of the response for send_timeout holds its windows shut: the
    // whole connection goes (GOAWAY), as CONTRACT.md asks
    if ((err as NodeJS.ErrnoException | undefined)?.code === STALLED) this.#onStall?.()
    if (!s.destroyed) s.destroy(err ?? new Error('response cut'))
    return this
  }

  /** Resets the stream with `code` alone (an upstream's RST_STREAM passed on); destroy() when the runtime cannot. */
  reset(code: number): void {
    if (resetStream(this.stream, code) !== undefined && !this.stream.destroyed) this.stream.destroy(new Error(`reset (${code})`))
  }

  /** 'close' fires once (streamClosed); 'drain' and 'finish' are the stream's own. */
  on(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    if (event === 'close') this.#closeListeners?.push(listener)
    else this.stream.on(event, listener)
    return this
  }

  once(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    if (event === 'close') this.#closeListeners?.push(listener)
    else this.stream.once(event, listener)
    return this
  }
}

/** ENHANCE_YOUR_CALM: the GOAWAY code for a peer that misbehaves without breaking the protocol. */
const CALM = constants.NGHTTP2_ENHANCE_YOUR_CALM

/**
 * The GOAWAY code for a session error the binding raised (nghttp2's error numbers, nghttp2.h):
 * floods and Node's own counters (too many refused streams, invalid frames, custom settings)
 * are excess load from frames each valid on its own, ENHANCE_YOUR_CALM (RFC 9113 §10.5); a
 * header block that does not decode is COMPRESSION_ERROR (§4.3); the rest say what nghttp2
 * found, and what is no fault of the peer's is INTERNAL_ERROR.
 */
export function goawayCodeFor(err: Pick<BindingError, 'code' | 'errno'>): number {
  if (err.code !== 'ERR_HTTP2_ERROR') return CALM // ERR_HTTP2_TOO_MANY_INVALID_FRAMES, ERR_HTTP2_TOO_MANY_CUSTOM_SETTINGS
  switch (err.errno) {
    case -904: // NGHTTP2_ERR_FLOODED: SETTINGS/PING ACKs (or RST_STREAMs) piling up unread
    case -905: // NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
    case -537: // NGHTTP2_ERR_TOO_MANY_SETTINGS
    case -527: // NGHTTP2_ERR_TOO_MANY_INFLIGHT_SETTINGS
      return CALM
    case -523: // NGHTTP2_ERR_HEADER_COMP
      return constants.NGHTTP2_COMPRESSION_ERROR
    case -522: // NGHTTP2_ERR_FRAME_SIZE_ERROR
      return constants.NGHTTP2_FRAME_SIZE_ERROR
    case -524: // NGHTTP2_ERR_FLOW_CONTROL
      return constants.NGHTTP2_FLOW_CONTROL_ERROR
    case -505: // NGHTTP2_ERR_PROTO
    case -506: // NGHTTP2_ERR_INVALID_FRAME
    case -518: // NGHTTP2_ERR_INVALID_HEADER_BLOCK
    case -531: // NGHTTP2_ERR_HTTP_HEADER
    case -532: // NGHTTP2_ERR_HTTP_MESSAGING
    case -536: // NGHTTP2_ERR_SETTINGS_EXPECTED
    case -903: // NGHTTP2_ERR_BAD_CLIENT_MAGIC
      return constants.NGHTTP2_PROTOCOL_ERROR
    default:
      return constants.NGHTTP2_INTERNAL_ERROR
  }
}

/** An ended session waits at most this long for its GOAWAY to leave (a client that reads nothing holds it back). */
const FLUSH_MS = 1000
/**
 * Then stays open this long, not reading, before the close: a client still writing its flood
 * reads the GOAWAY first. Closed at once, the socket's unread input turns the close into a
 * reset, and a client whose write then fails drops what it had not read yet (measured: an
 * immediate close lost the GOAWAY on most TLS flood runs; 300 ms after the flush, none).
 */
const LINGER_MS = 1000

/** How often a session's watchdog looks without a send_timeout. */
const WATCH_MS = 1000

/** How often a session's stall watchdog looks (a quarter of the bound, 50 ms to 1 s). */
const stallCheckMs = (boundMs: number): number => Math.max(50, Math.min(1000, Math.floor(boundMs / 4)))

/** One session's bookkeeping: its own socket, and the stall watchdog's last view. */
interface Conn {
  readonly socket: Socket
  readonly session: ServerHttp2Session
  /** the streams open now */
  readonly streams: Set<ServerHttp2Stream>
  /** GOAWAY and close: a response on this connection stalled (send_timeout) */
  readonly onStall: () => void
  /** Node's own destroy of the session (see interceptBindingErrors) */
  readonly destroy: (error?: Error | null, code?: number) => void
  timer: NodeJS.Timeout | undefined
  written: number
  progressAt: number
  /** the highest stream id handed to us ('stream') */
  maxDelivered: number
  /** the last processed stream id the previous watch found never handed to us (0: none) */
  undelivered: number
  /** GOAWAY sent for abuse: the session is being ended */
  ending: boolean
}

/** Creates a worker's HTTP/2 front. */
export function createH2(o: H2Options): H2Front {
  const server: Http2Server = createServer(h2ServerOptions as Parameters<typeof createServer>[0])
  const conns = new Map<Http2Session, Conn>()
  /** the socket being handed over: 'session' is emitted synchronously inside emit('connection') */
  let handing: Socket | undefined

  /**
   * Ends an abusive session: GOAWAY (`code`, the last stream we took), no more reading, then,
   * once nghttp2's queue and the TLS layer's pending output are empty (or FLUSH_MS passed), a
   * linger and Node's destroy. Waiting a few event-loop turns first matters on TLS: a write
   * still completing holds the next frames in nghttp2's queue.
   */
  const endSession = (c: Conn, code: number): void => {
    const s = c.session
    if (c.ending || s.destroyed) return
    c.ending = true
    if (c.timer) clearTimeout(c.timer)
    try {
      s.goaway(code, c.maxDelivered)
    } catch {
      // destroyed meanwhile
    }
    stopReading(c.socket)
    const started = Date.now()
    let turns = 0
    const flush = (): void => {
      if (s.destroyed) return
      const queued = (s.state.outboundQueueSize ?? 0) + handleQueuedBytes(c.socket)
      if ((++turns < 3 || queued > 0) && Date.now() - started < FLUSH_MS) {
        if (turns < 3) setImmediate(flush)
        else setTimeout(flush, 20).unref()
        return
      }
      setTimeout(() => c.destroy(null, code), LINGER_MS).unref()
    }
    setImmediate(flush)
  }

  /**
   * The session's watchdog. A stream nghttp2 opened (its last processed id) that never reached
   * us on two looks in a row was refused on its header block by the binding: past
   * maxHeaderListSize or maxHeaderListPairs (an HPACK bomb: a few bytes referencing one large
   * dynamic-table entry thousands of times), malformed, or past the session's memory. Node
   * resets that stream alone and says nothing; the connection is ended (ENHANCE_YOUR_CALM,
   * RFC 9113 §10.5: the block decoded, so not COMPRESSION_ERROR; a client past the header-list
   * size we advertised may repeat it at will on the same connection). And windows held shut
   * with data pending: nothing written for sendTimeoutMs while a stream has bytes queued.
   */
  const watch = (c: Conn): void => {
    c.timer = undefined
    if (c.session.destroyed || c.ending) return
    const last = c.session.closed ? 0 : (c.session.state.lastProcStreamID ?? 0)
    if (last > c.maxDelivered) {
      if (c.undelivered === last) return endSession(c, CALM)
      c.undelivered = last
    } else c.undelivered = 0
    if (o.sendTimeoutMs <= 0) {
      c.timer = setTimeout(watch, WATCH_MS, c).unref()
      return
    }
    const now = Date.now()
    let pending = false
    for (const st of c.streams) if (st.writableLength > 0 || (st.bufferSize ?? 0) > 0) pending = true
    const written = c.socket.bytesWritten
    if (!pending || written !== c.written) {
      c.written = written
      c.progressAt = now
    } else if (now - c.progressAt >= o.sendTimeoutMs) {
      endSession(c, CALM)
      return
    }
    c.timer = setTimeout(watch, stallCheckMs(o.sendTimeoutMs), c).unref()
  }

  server.on('session', (session: ServerHttp2Session) => {
    const socket = handing
    if (!socket) {
      session.destroy()
      return
    }
    const c: Conn = {
      socket,
      session,
      streams: new Set(),
      onStall: () => endSession(c, CALM),
      destroy: interceptBindingErrors(session, (err) => {
        endSession(c, goawayCodeFor(err))
        return true
      }),
      timer: undefined,
      written: socket.bytesWritten,
      progressAt: Date.now(),
      maxDelivered: 0,
      undelivered: 0,
      ending: false,
    }
    conns.set(session, c)
    session.on('error', ignore)
    session.on('frameError', ignore)
    session.setTimeout(o.idleTimeoutMs, () => {
      // idle: no stream open for idleTimeoutMs (Node's timer restarts on every frame)
      // (a session being ended for abuse keeps its GOAWAY code: no second, NO_ERROR one)
      if (c.streams.size === 0 && !c.ending) session.close()
    })
    session.once('close', () => {
      if (c.timer) clearTimeout(c.timer)
      conns.delete(session)
    })
    c.timer = setTimeout(watch, o.sendTimeoutMs > 0 ? stallCheckMs(o.sendTimeoutMs) : WATCH_MS, c).unref()
  })
  server.on('stream', (stream: ServerHttp2Stream, headers: H2Headers) => {
    stream.on('error', ignore)
    const c = conns.get(stream.session as Http2Session)
    if (!c) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM)
      return
    }
    const id = stream.id ?? 0
    if (id > c.maxDelivered) c.maxDelivered = id
    c.streams.add(stream)
    const req = new H2Request(stream, headers, c.socket)
    const res = new H2Response(stream, req.method === 'HEAD', c.onStall)
    // the stream's one 'close' listener ('close' is emitted once: on(), no once() wrapper); what
    // it closes over stays reachable with the closed stream, and holds no request state once run
    stream.on('close', () => {
      c.streams.delete(stream)
      res.streamClosed()
    })
    o.handler(req, res)
  })

  return {
    serve(socket, pending) {
      socket.on('error', ignore)
      if (pending) {
        socket.pause()
        socket.unshift(pending)
      }
      handing = socket
      try {
        server.emit('connection', socket)
      } finally {
        handing = undefined
      }
    },
    closeIdle() {
      for (const c of conns.values()) if (!c.session.closed && !c.ending) c.session.close()
    },
    cutAll() {
      for (const c of [...conns.values()]) c.session.destroy()
    },
    size: () => conns.size,
  }
}

const ignore = (): void => undefined

/** Whether bytes a plain connection opened with are HTTP/2's preface: 'h2', 'no', or 'more' (a prefix of it so far). */
export function prefaceOf(buf: Buffer): 'h2' | 'no' | 'more' {
  const n = Math.min(buf.length, H2_PREFACE.length)
  if (buf.compare(H2_PREFACE, 0, n, 0, n) !== 0) return 'no'
  return n === H2_PREFACE.length ? 'h2' : 'more'
}

/**
 * A plain connection the HTTP/1.1 fast path could not serve, with the bytes it read: HTTP/2 with
 * prior knowledge goes to `h2`, anything else to `http1`. A preface split over reads is
 * completed first (its bytes are under 24, so nothing waits long: the headers timeout of the
 * socket's next owner still bounds a client that stops mid-preface).
 */
export function routePlain(socket: Socket, pending: Buffer | null, h2: (s: Socket, pending: Buffer) => void, http1: (s: Socket, pending: Buffer | null) => void): void {
  if (pending === null) return http1(socket, pending)
  const first = prefaceOf(pending)
  if (first === 'h2') return h2(socket, pending)
  if (first === 'no') return http1(socket, pending)
  let buf = pending
  const timer = setTimeout(() => socket.destroy(), 10_000).unref()
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d])
    const state = prefaceOf(buf)
    if (state === 'more') return
    clearTimeout(timer)
    socket.off('data', onData)
    socket.off('close', onClose)
    if (state === 'h2') h2(socket, buf)
    else http1(socket, buf)
  }
  const onClose = (): void => clearTimeout(timer)
  socket.on('data', onData)
  socket.on('close', onClose)
}
