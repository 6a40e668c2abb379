/**
 * The fast HTTP/1.1 path for data-plane connections, plain and TLS (issue 7: keep-alive
 * proxying). Node's HTTP server
 * costs ~20 µs of CPU per request on its own (IncomingMessage and ServerResponse streams, header
 * checks, connection bookkeeping); most requests a gateway sees are bodiless HTTP/1.1 requests on
 * a keep-alive connection, and those are served here with one parse and one write per response.
 *
 * It is a strict subset. A connection starts here; the first request that is not plain (a body,
 * Transfer-Encoding, Upgrade, Expect, `Connection` other than keep-alive, HTTP/1.0, a repeated
 * header, anything unusual in the request line or a header, a head split over several reads or
 * larger than `maxHeaderSize`) hands the connection, with every byte not yet served, to Node's
 * HTTP server for the rest of its life. So everything outside the subset, errors included, is
 * answered exactly as before; inside it the responses are written as Node writes them (Date,
 * Connection/Keep-Alive, chunked framing when the length is unknown, no body for HEAD/204/304).
 */
import { EventEmitter } from 'node:events'
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { HttpResponse, RequestHead } from '../pipeline/http.js'
import { clientErrorReply } from './listeners.js'
import { BAD_FIELD_VALUE as BAD_VALUE, HTTP_TOKEN as TOKEN } from '../net/http-syntax.js'
import { readInto, type SetReadCallback } from '../runtime/node-internals.js'

/** What the fast path needs from the worker. */
export interface FastHttpOptions {
  /** the request handler (the same one Node's HTTP server calls) */
  handler(req: RequestHead, res: HttpResponse): void
  /** gives a connection to Node's HTTP server; `pending` are bytes read and not served yet */
  fallback(socket: Socket, pending: Buffer | null): void
  /** a new connection must send its first request within this (ms), else 408 (Node's headersTimeout) */
  readonly headersTimeoutMs: number
  /** an idle keep-alive connection closes after this (ms) */
  readonly keepAliveTimeoutMs: number
  /** a head (request line and headers) larger than this goes to Node (which answers 431) */
  readonly maxHeaderSize: number
}

/** The fast path's connections. */
export interface FastHttp {
  /** serves a connection (a plain socket as accepted, a TLS socket after its handshake) */
  serve(socket: Socket): void
  /** closes connections with no request in flight; those with one close after it (drain) */
  closeIdle(): void
  /** destroys every connection */
  cutAll(): void
  /** connections served here now (tests) */
  size(): number
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
const CRLF = Buffer.from('\r\n', 'latin1')
const EMPTY = Buffer.alloc(0)
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1')
/**
 * The one buffer every TLS connection of this worker reads into (core/runtime/node-internals.ts
 * readInto: Node 24 would back each read with a fresh 64 KiB buffer). A read is copied out of it
 * at once, so its size only bounds one read: TLS hands over at most one 16 KiB record's plaintext
 * a time.
 */
const TLS_READ_BUFFER = Buffer.allocUnsafe(16 * 1024)
/** pipelined bytes held while a response is in flight before the socket is paused */
const HOLD_LIMIT = 64 * 1024
/** methods served here (others, CONNECT and TRACE included, go to Node) */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])
/** a request-target of the subset: origin-form, visible ASCII only */
const TARGET = /^\/[\x21-\x7e]*$/
/** Node's tests of the Connection and Transfer-Encoding values it writes */
const CONN_CLOSE = /(?:^|\W)close(?:$|\W)/i
const TE_CHUNKED = /(?:^|\W)chunked(?:$|\W)/i

/** A parsed request head of the subset. */
interface Head {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
}

/** Trims spaces and tabs (RFC 9110 OWS) from both ends. */
function trimOws(s: string): string {
  let a = 0
  let b = s.length
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--
  return a === 0 && b === s.length ? s : s.slice(a, b)
}

/**
 * The head `text` (without its final CRLFCRLF) when the request is in the subset, else
 * undefined (the connection then goes to Node, which accepts or refuses it its own way).
 */
export function parseHead(text: string): Head | undefined {
  let eol = text.indexOf('\r\n')
  if (eol < 0) eol = text.length
  const sp1 = text.indexOf(' ')
  if (sp1 <= 0 || sp1 > eol) return undefined
  const method = text.slice(0, sp1)
  if (!METHODS.has(method)) return undefined
  const sp2 = text.indexOf(' ', sp1 + 1)
  if (sp2 < 0 || sp2 > eol || eol - sp2 !== 9 || !text.startsWith('HTTP/1.1', sp2 + 1)) return undefined
  const url = text.slice(sp1 + 1, sp2)
  if (!TARGET.test(url)) return undefined
  const headers: IncomingHttpHeaders = {}
  const rawHeaders: string[] = []
  let at = eol + 2
  while (at < text.length) {
    let end = text.indexOf('\r\n', at)
    if (end < 0) end = text.length
    const line = text.slice(at, end)
    at = end + 2
    const colon = line.indexOf(':')
    if (colon <= 0) return undefined
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) return undefined
    const value = trimOws(line.slice(colon + 1))
    if (BAD_VALUE.test(value)) return undefined
    const lower = name.toLowerCase()
    // a repeat (Node merges or drops those by name) or a name Object.prototype has
    if (lower in headers) return undefined
    switch (lower) {
      case 'content-length':
        if (value !== '0') return undefined
        break
      case 'connection':
        if (value.toLowerCase() !== 'keep-alive') return undefined
        break
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return undefined
      case 'set-cookie':
        // Node's IncomingMessage always makes this one an array
        headers[lower] = [value]
        rawHeaders.push(name, value)
        continue
    }
    headers[lower] = value
    rawHeaders.push(name, value)
  }
  return { method, url, headers, rawHeaders }
}

/** Node's Date header value, made once a second. */
let dateSecond = -1
let dateText = ''
function httpDate(): string {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateText = new Date(second * 1000).toUTCString()
  }
  return dateText
}

/** Throws Node's errors for a header name or value it would refuse to write. */
function checkHeader(name: string, value: string): void {
  if (!TOKEN.test(name)) throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' })
  if (BAD_VALUE.test(value)) throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: 'ERR_INVALID_CHAR' })
}

/** A request served here: its head, and its connection. */
class FastRequest implements RequestHead {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly socket: Socket
  readonly httpVersion = '1.1'
  readonly complete = true

  constructor(h: Head, socket: Socket) {
    this.method = h.method
    this.url = h.url
    this.headers = h.headers
    this.rawHeaders = h.rawHeaders
    this.socket = socket
  }
}

type HeaderInput = OutgoingHttpHeaders | OutgoingHttpHeader[]
/** the header names a response head's framing depends on (FastResponse.#framingOf) */
const DATE = 1
const CONNECTION = 2
const CONTENT_LENGTH = 4
const TRANSFER_ENCODING = 8
type HeaderValue = OutgoingHttpHeader | undefined

/** The response to a FastRequest, written straight to the connection. */
class FastResponse extends EventEmitter implements HttpResponse {
  statusCode = 200
  writableFinished = false
  shouldKeepAlive = true
  readonly #conn: Conn
  readonly #isHead: boolean
  /** the head, made by writeHead and sent with the first body bytes */
  #head: Buffer | undefined = undefined
  /** the head went out (with the first body bytes or at the end) */
  #headWritten = false
  #hasBody = true
  #chunked = false
  #last = false
  #ended = false
  #closed = false
  #extra: Map<string, readonly [string, HeaderValue]> | undefined = undefined
  #onDrain: (() => void) | undefined = undefined
  /** socket writes of this response not done yet */
  #writing = 0
  /**
   * A socket write of this response is done. After end(), the last one finishes the response:
   * end() never writes an empty buffer to learn when the bytes are gone (on TLS that costs a
   * write(2) of 0 bytes and a pass through the stream machinery per response).
   */
  readonly #wrote = (err?: Error | null): void => {
    this.#writing--
    if (err) return // the connection's close reports it
    if (!this.#ended || this.#writing !== 0) return
    this.writableFinished = true
    this.emit('finish')
    this.#emitClose()
    this.#conn.done(this.#last)
  }

  constructor(conn: Conn, isHead: boolean) {
    super()
    this.#conn = conn
    this.#isHead = isHead
  }

  /** true once the head is made (writeHead), as with Node: it can no longer change */
  get headersSent(): boolean {
    return this.#head !== undefined
  }

  setHeader(name: string, value: OutgoingHttpHeader): this {
    if (this.#head !== undefined) throw Object.assign(new Error('Cannot set headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
    ;(this.#extra ??= new Map()).set(name.toLowerCase(), [name, value])
    return this
  }

  writeHead(status: number, headers?: HeaderInput): this {
    if (this.#head !== undefined) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
    this.statusCode = status
    if (status === 204 || status === 304 || (status >= 100 && status <= 199) || this.#isHead) this.#hasBody = false
    // pairs; a flat [name, value, …] list stays flat (repeats kept)
    let pairs: (readonly [string, HeaderValue])[] | undefined
    let flat: OutgoingHttpHeader[] | undefined
    if (this.#extra !== undefined) {
      // setHeader's names first; writeHead's replace them by name (Node's order)
      const merged = new Map(this.#extra)
      if (Array.isArray(headers)) {
        for (let i = 0; i + 1 < headers.length; i += 2) merged.set(String(headers[i]).toLowerCase(), [String(headers[i]), headers[i + 1]])
      } else if (headers) {
        for (const [k, v] of Object.entries(headers)) merged.set(k.toLowerCase(), [k, v])
      }
      pairs = [...merged.values()]
    } else if (Array.isArray(headers)) flat = headers
    else if (headers) pairs = Object.entries(headers)
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`
    let seen = 0
    if (flat !== undefined) {
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const name = String(flat[i])
        const value = String(flat[i + 1])
        seen |= this.#framingOf(name, value)
        text += `${name}: ${value}\r\n`
      }
    }
    if (pairs !== undefined) {
      for (const [name, v] of pairs) {
        if (v === undefined) continue
        const values = Array.isArray(v) ? v : undefined
        for (let i = 0; i < (values?.length ?? 1); i++) {
          const value = String(values === undefined ? v : values[i])
          seen |= this.#framingOf(name, value)
          text += `${name}: ${value}\r\n`
        }
      }
    }
    const contLen = (seen & CONTENT_LENGTH) !== 0
    const te = (seen & TRANSFER_ENCODING) !== 0
    if ((seen & DATE) === 0) text += `Date: ${httpDate()}\r\n`
    if ((seen & CONNECTION) === 0) {
      if (this.shouldKeepAlive && !this.#conn.draining) text += this.#conn.keepAliveHeaders
      else {
        text += 'Connection: close\r\n'
        this.#last = true
      }
    } else if (this.#conn.draining || !this.shouldKeepAlive) this.#last = true
    if (!contLen && !te && this.#hasBody) {
      text += 'Transfer-Encoding: chunked\r\n'
      this.#chunked = true
    }
    if (!this.#hasBody) this.#chunked = false
    this.#head = Buffer.from(`${text}\r\n`, 'latin1')
    return this
  }

  /**
   * Checks one header as Node would before writing it, and tells which of the names the head's
   * framing depends on it is (a bit of DATE, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, or 0);
   * `Connection: close` and a chunked Transfer-Encoding are noted on the response.
   */
  #framingOf(name: string, value: string): number {
    checkHeader(name, value)
    switch (name.length) {
      case 4:
        return name.toLowerCase() === 'date' ? DATE : 0
      case 10:
        if (name.toLowerCase() !== 'connection') return 0
        if (CONN_CLOSE.test(value)) this.#last = true
        return CONNECTION
      case 14:
        return name.toLowerCase() === 'content-length' ? CONTENT_LENGTH : 0
      case 17:
        if (name.toLowerCase() !== 'transfer-encoding') return 0
        if (TE_CHUNKED.test(value)) this.#chunked = true
        return TRANSFER_ENCODING
      default:
        return 0
    }
  }

  /** The bytes of a body chunk as they go on the wire (chunked framing when in use). */
  #frame(chunk: Buffer | string): Buffer {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (!this.#chunked || b.length === 0) return b
    return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`, 'latin1'), b, CRLF])
  }

  /** The head, when not sent yet, before `data`. */
  #withHead(data: Buffer): Buffer {
    if (this.#headWritten) return data
    if (this.#head === undefined) this.writeHead(this.statusCode)
    this.#headWritten = true
    return data.length === 0 ? this.#head! : Buffer.concat([this.#head!, data])
  }

  write(chunk: Buffer | string): boolean {
    if (this.#ended) throw Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' })
    const socket = this.#conn.socket
    if (!this.#hasBody) {
      if (this.#headWritten) return true
      this.#writing++
      return socket.write(this.#withHead(EMPTY), this.#wrote)
    }
    this.#writing++
    const ok = socket.write(this.#withHead(this.#frame(chunk)), this.#wrote)
    if (!ok) socket.once('drain', (this.#onDrain ??= () => this.emit('drain')))
    return ok
  }

  end(data?: Buffer | string): this {
    if (this.#ended) return this
    this.#ended = true
    // no head yet: the whole body is here, so its length is known (Node does the same)
    if (this.#head === undefined && !this.#isHead && !this.#extra?.has('content-length') && !this.#extra?.has('transfer-encoding')) {
      this.setHeader('Content-Length', data === undefined ? 0 : Buffer.byteLength(data))
    }
    let out = this.#hasBody && data !== undefined ? this.#frame(data) : EMPTY
    if (this.#chunked) out = out.length === 0 ? LAST_CHUNK : Buffer.concat([out, LAST_CHUNK])
    const socket = this.#conn.socket
    if (socket.destroyed) return this
    if (out.length > 0 || !this.#headWritten) {
      this.#writing++
      socket.write(this.#withHead(out), this.#wrote)
    } else if (this.#writing === 0) {
      // every byte of the response is written and done: it finishes on the next tick
      this.#writing++
      process.nextTick(this.#wrote)
    }
    // else a write of this response is still under way: its callback finishes the response
    return this
  }

  destroy(err?: Error): this {
    this.#conn.socket.destroy(err)
    return this
  }

  /** The connection closed before the response was complete. */
  aborted(): void {
    if (!this.writableFinished) this.#emitClose()
  }

  #emitClose(): void {
    if (this.#closed) return
    this.#closed = true
    this.emit('close')
  }
}

/** One connection on the fast path. */
class Conn {
  readonly socket: Socket
  readonly #fast: FastHttpImpl
  #buf: Buffer | null = null
  #res: FastResponse | undefined = undefined
  #served = 0
  #paused = false
  #gone = false
  /** set when the socket reads into TLS_READ_BUFFER: where its reads go once it leaves */
  #setRead: SetReadCallback | undefined = undefined

  constructor(fast: FastHttpImpl, socket: Socket) {
    this.#fast = fast
    this.socket = socket
    socket.on('data', this.#onData)
    if ('encrypted' in socket) {
      const set = readInto(socket, TLS_READ_BUFFER, this.#onRead)
      if (typeof set === 'function') this.#setRead = set
    }
    socket.on('end', this.#onEnd)
    socket.on('close', this.#onClose)
    socket.on('timeout', this.#onTimeout)
    socket.on('error', ignore)
    socket.setNoDelay(true)
    socket.setTimeout(fast.o.headersTimeoutMs)
  }

  get draining(): boolean {
    return this.#fast.draining
  }

  get keepAliveHeaders(): string {
    return this.#fast.keepAliveHeaders
  }

  get idle(): boolean {
    return this.#res === undefined
  }

  /** A read of a TLS socket into TLS_READ_BUFFER: its bytes, copied (the buffer is the next read's). */
  readonly #onRead = (n: number, b: Buffer): void => {
    this.#onData(Buffer.from(b.subarray(0, n)))
  }

  readonly #onData = (d: Buffer): void => {
    this.#buf = this.#buf === null ? d : Buffer.concat([this.#buf, d])
    if (this.#res !== undefined) {
      // pipelined: served once the response in flight is done
      if (this.#buf.length > HOLD_LIMIT && !this.#paused) {
        this.#paused = true
        this.socket.pause()
      }
      return
    }
    this.#next()
  }

  #next(): void {
    const buf = this.#buf
    if (buf === null) return
    const end = buf.indexOf(CRLFCRLF)
    if (end < 0 || end + 4 > this.#fast.o.maxHeaderSize) return this.#fallBack()
    const head = parseHead(buf.toString('latin1', 0, end))
    if (head === undefined) return this.#fallBack()
    this.#buf = end + 4 < buf.length ? buf.subarray(end + 4) : null
    const req = new FastRequest(head, this.socket)
    const res = new FastResponse(this, head.method === 'HEAD')
    this.#res = res
    this.#fast.o.handler(req, res)
  }

  /** The response in flight was written out; `last`: the connection closes now. */
  done(last: boolean): void {
    this.#res = undefined
    if (this.#gone) return
    if (last || this.#fast.draining) {
      this.socket.end()
      return
    }
    if (this.#served++ === 0) this.socket.setTimeout(this.#fast.o.keepAliveTimeoutMs)
    if (this.#paused) {
      this.#paused = false
      this.socket.resume()
    }
    if (this.#buf !== null) this.#next()
  }

  /** Node's HTTP server takes the connection over, with the bytes not served yet. */
  #fallBack(): void {
    const socket = this.socket
    this.#detach()
    const pending = this.#buf
    this.#buf = null
    if (this.#paused) socket.resume()
    this.#fast.o.fallback(socket, pending)
  }

  #detach(): void {
    this.#gone = true
    const socket = this.socket
    // reads of a socket that read into TLS_READ_BUFFER go through its stream from now on, copied,
    // as Node pushes them (Node's HTTP server and HTTP/2 consume the handle themselves anyway)
    if (this.#setRead !== undefined) this.#setRead((n, b) => socket.push(Buffer.from(b.subarray(0, n))))
    socket.off('data', this.#onData)
    socket.off('end', this.#onEnd)
    socket.off('close', this.#onClose)
    socket.off('timeout', this.#onTimeout)
    socket.setTimeout(0)
    this.#fast.conns.delete(this)
  }

  /**
   * The client half-closed: like Node's server (httpAllowHalfOpen off), the connection ends now
   * and a request still in flight is cancelled (plain sockets are half-open capable; TLS ones end
   * by themselves).
   */
  readonly #onEnd = (): void => {
    // Nothing in flight and every byte handed to the kernel: the connection closes at once. On
    // TLS that skips the close_notify reply and its shutdown round through the stream machinery
    // (about 60 µs per connection in a handshake profile; A/B: 1.15 vs 1.18 ms of CPU per full
    // handshake), which nginx skips too once the peer has closed (no_send_shutdown); the kernel
    // still sends what it holds, then FIN.
    if (this.#res === undefined && this.socket.writableLength === 0) {
      this.socket.destroy()
      return
    }
    if (this.socket.writable) this.socket.end()
    if (this.#res !== undefined) this.socket.destroy()
  }

  readonly #onClose = (): void => {
    const res = this.#res
    this.#detach()
    this.#res = undefined
    res?.aborted()
  }

  readonly #onTimeout = (): void => {
    if (this.#res !== undefined) return // a request in flight has no bound here (requestTimeout 0)
    if (this.#served === 0 && this.#buf === null) {
      // nothing came in headersTimeout: the 408 Node's server gives (core/server/listeners.ts)
      this.#detach()
      this.socket.end(clientErrorReply(408))
      return
    }
    this.socket.destroy()
  }

  /** Closes the connection if it carries no request (drain); a busy one closes after its response. */
  closeIfIdle(): void {
    if (this.#res === undefined) this.socket.destroy()
  }
}

const ignore = (): void => undefined

class FastHttpImpl implements FastHttp {
  readonly o: FastHttpOptions
  readonly conns = new Set<Conn>()
  /** what a keep-alive response says of the connection (Node's words) */
  readonly keepAliveHeaders: string
  draining = false

  constructor(o: FastHttpOptions) {
    this.o = o
    this.keepAliveHeaders = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(o.keepAliveTimeoutMs / 1000)}\r\n`
  }

  serve(socket: Socket): void {
    this.conns.add(new Conn(this, socket))
  }

  closeIdle(): void {
    this.draining = true
    for (const c of [...this.conns]) c.closeIfIdle()
  }

  cutAll(): void {
    for (const c of [...this.conns]) c.socket.destroy()
  }

  size(): number {
    return this.conns.size
  }
}

/** Creates a worker's fast HTTP/1.1 path. */
export function createFastHttp(o: FastHttpOptions): FastHttp {
  return new FastHttpImpl(o)
}
