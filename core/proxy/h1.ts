/**
 * A lean HTTP/1.1 client for the proxy's common case: a plain-HTTP upstream, a request without a
 * body and without Upgrade. It speaks to undici's handler shape (onConnect, onHeaders, onData,
 * onComplete, onError) and fails with undici's error codes, so forward.ts and upstream-errors.ts
 * treat both alike; everything else (bodies, upgrades, TLS upstreams, unusual headers) goes
 * through undici. Per request it writes one string and parses the response in place from the
 * socket's 'data' chunks: no request object, no header re-validation of what Node's own parser
 * already accepted, no idle-socket round through the check phase.
 *
 * Keep-alive like undici's Pool with pipelining 1: at most `connections` sockets, idle ones
 * reused last-in first-out and closed after `idleMs` (or the upstream's `Keep-Alive: timeout`
 * less one second), `connection: close` on a socket's `maxRequests`-th request. A reused socket
 * the upstream closed before sending any response byte is retried once on a new connection
 * (the request had no body, so nothing was consumed).
 */
import { connect, type Socket } from 'node:net'

/** The handler methods the client calls (undici's legacy DispatchHandler, as forward.ts implements it). */
export interface H1Handler {
  onConnect(abort: (err?: Error) => void): void
  onHeaders(status: number, raw: string[], resume: () => void): boolean
  onData(chunk: Buffer): boolean
  onComplete(): void
  onError(err: Error): void
  /** The body's last bytes and its end at once (a response whose body came whole): onData + onComplete in one call. */
  onLastData?(chunk: Buffer): void
}

/** One request: the header list is flat, Host first (finishUpstreamHeaders' shape). */
export interface H1Request {
  readonly method: string
  readonly path: string
  readonly headers: readonly string[]
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
}

/** Connection options of one pool. */
export interface H1Options {
  readonly host: string
  readonly port: number
  readonly connections: number
  readonly idleMs: number
  readonly maxRequests: number
  readonly connectTimeoutMs: number
}

/** Node's (and undici's) default limit on a response header block. */
const MAX_HEADER_BYTES = 16 * 1024

/** Names whose handling undici owns (framing, connection, host): a request that carries one goes through undici. */
const UNDICI_NAMES = new Set(['host', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'connection', 'expect'])

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** The same token characters (RFC 9110 §5.6.2) by char code, for the response parser's scan. */
const TOKEN_CHARS = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN_CHARS[c.charCodeAt(0)] = 1
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/
const BAD_PATH = /[^\u0021-\u00ff]/

/** An error with one of undici's codes (upstream-errors.ts classifies by code). */
function coded(code: string, message: string): Error {
  const e = new Error(message) as Error & { code: string }
  e.code = code
  return e
}

/**
 * The request head, or undefined when the request needs undici (a header it treats specially, or
 * one it would refuse: undici then answers it the way it always has).
 */
export function requestHead(r: H1Request, close: boolean): string | undefined {
  const h = r.headers
  if (!TOKEN.test(r.method) || r.path.charCodeAt(0) !== 0x2f || BAD_PATH.test(r.path)) return undefined
  if (h.length < 2 || h[0]!.toLowerCase() !== 'host' || BAD_VALUE.test(h[1]!)) return undefined
  let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${h[1]!}\r\n${close ? 'connection: close' : 'connection: keep-alive'}\r\n`
  for (let i = 2; i + 1 < h.length; i += 2) {
    const name = h[i]!
    const value = h[i + 1]!
    if (UNDICI_NAMES.has(name.toLowerCase()) || !TOKEN.test(name) || BAD_VALUE.test(value)) return undefined
    head += `${name}: ${value}\r\n`
  }
  return `${head}\r\n`
}

/** How the body of the response being read is delimited. */
const Body = { None: 0, Length: 1, Chunked: 2, UntilClose: 3 } as const
type BodyKind = (typeof Body)[keyof typeof Body]

/** One in-flight request on a connection. */
interface Exchange {
  readonly req: H1Request
  readonly handler: H1Handler
  head: string
  /** `head` says connection: close */
  close: boolean
  readonly isHead: boolean
  /** a retry on a fresh connection is still allowed (the first attempt went to a reused socket) */
  retryable: boolean
  done: boolean
}

/** One upstream connection and its response parser. */
class Conn {
  readonly socket: Socket
  readonly pool: H1Pool
  requests = 0
  /** bytes of the response head not yet complete */
  pending: Buffer | undefined = undefined
  ex: Exchange | undefined = undefined
  /** a response byte arrived for the current exchange */
  gotBytes = false
  /** the socket served a request before (a stale keep-alive socket may be closed under us) */
  reused = false
  keepAlive = true
  headersDone = false
  body: BodyKind = Body.None
  remaining = 0
  /** chunked: -1 reading a size line, -2 reading the CRLF after data, -3 reading trailers, ≥ 0 data bytes left */
  chunkState = -1
  paused = false
  idleMs = 0
  closed = false
  readonly resume = (): void => {
    if (this.paused) {
      this.paused = false
      // the read timeout runs again once the client takes more
      if (this.ex) this.armTimeout(this.ex.req.bodyTimeoutMs)
      this.socket.resume()
    }
  }

  constructor(pool: H1Pool, o: H1Options) {
    this.pool = pool
    const s = connect({ host: o.host, port: o.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 })
    this.socket = s
    this.armTimeout(o.connectTimeoutMs)
    s.once('connect', () => {
      if (this.ex) this.armTimeout(this.headersDone ? this.ex.req.bodyTimeoutMs : this.ex.req.headersTimeoutMs)
      else this.armTimeout(this.idleMs)
    })
    s.on('data', (chunk: Buffer) => this.onChunk(chunk))
    s.on('timeout', () => this.onTimeout())
    s.on('error', (err: Error) => this.onClose(err))
    s.on('end', () => this.onClose(undefined))
    s.on('close', () => this.onClose(undefined))
  }

  /** the socket's inactivity timeout now (Node restarts it on every read and write) */
  timeoutMs = -1

  /** Sets the inactivity timeout; a no-op when it already has that value (read, body and idle timeouts are often all 60 s). */
  armTimeout(ms: number): void {
    if (ms === this.timeoutMs) return
    this.timeoutMs = ms
    this.socket.setTimeout(ms)
  }

  start(ex: Exchange): void {
    this.ex = ex
    this.gotBytes = false
    this.headersDone = false
    this.pending = undefined
    this.body = Body.None
    this.chunkState = -1
    this.requests++
    if (this.socket.connecting === false) this.armTimeout(ex.req.headersTimeoutMs)
    // bound to this exchange: a late abort from a finished one must not touch the next on this socket
    ex.handler.onConnect((err) => {
      if (this.ex === ex) this.abort(err ?? new Error('aborted'))
    })
    if (ex.done) return
    this.socket.write(ex.head, 'latin1')
  }

  abort(err: Error): void {
    const ex = this.ex
    if (!ex || ex.done) return
    this.keepAlive = false
    this.finish(err)
    this.socket.destroy()
  }

  onTimeout(): void {
    const ex = this.ex
    if (!ex) {
      this.socket.destroy()
      return
    }
    const err = this.socket.connecting
      ? coded('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error')
      : this.headersDone
        ? coded('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error')
        : coded('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error')
    this.keepAlive = false
    this.finish(err)
    this.socket.destroy()
  }

  onClose(err: Error | undefined): void {
    if (this.closed && !this.ex) return
    const ex = this.ex
    this.closed = true
    this.keepAlive = false
    this.pool.forget(this)
    if (!ex || ex.done) return
    if (this.headersDone && this.body === Body.UntilClose && err === undefined) {
      this.complete()
      return
    }
    // a keep-alive socket the upstream closed before answering anything: once more on a new one
    if (this.reused && !this.gotBytes && ex.retryable) {
      ex.retryable = false
      this.ex = undefined
      this.pool.run(ex, true)
      return
    }
    this.finish(err && (err as { code?: unknown }).code ? err : coded('UND_ERR_SOCKET', 'other side closed'))
  }

  /** Ends the current exchange with an error (once). */
  finish(err: Error): void {
    const ex = this.ex
    if (!ex || ex.done) return
    ex.done = true
    this.ex = undefined
    ex.handler.onError(err)
  }

  /** Ends the exchange; `last`: its final body bytes, not yet handed over (see H1Handler.onLastData). */
  complete(last?: Buffer): void {
    const ex = this.ex!
    ex.done = true
    this.ex = undefined
    const reusable = this.keepAlive && !this.closed && this.requests < this.pool.o.maxRequests && this.idleMs > 0
    if (reusable) {
      this.reused = true
      if (this.paused) {
        // the last chunk filled that client's buffer; the next exchange reads on its own terms
        this.paused = false
        this.socket.resume()
      }
      this.armTimeout(this.idleMs)
      this.pool.release(this)
    } else {
      this.pool.forget(this)
      this.socket.destroy()
    }
    try {
      if (last !== undefined) ex.handler.onLastData!(last)
      else ex.handler.onComplete()
    } catch {
      // the exchange is over; nothing is left to fail
    }
  }

  fail(message: string): void {
    this.keepAlive = false
    this.finish(coded('HPE_INVALID_CONSTANT', message))
    this.socket.destroy()
  }

  onChunk(chunk: Buffer): void {
    const ex = this.ex
    if (!ex || ex.done) {
      // bytes on an idle socket: the upstream broke framing, the socket cannot be reused
      this.keepAlive = false
      this.pool.forget(this)
      this.socket.destroy()
      return
    }
    this.gotBytes = true
    let buf = chunk
    if (!this.headersDone) {
      buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n', 0, 'latin1')
        if (end < 0) {
          if (buf.length > MAX_HEADER_BYTES) {
            this.keepAlive = false
            this.finish(coded('UND_ERR_HEADERS_OVERFLOW', 'Headers Overflow Error'))
            this.socket.destroy()
            return
          }
          this.pending = buf
          return
        }
        this.pending = undefined
        const status = this.parseHead(buf.toString('latin1', 0, end), ex)
        if (status < 0) return
        buf = buf.subarray(end + 4)
        if (status >= 200) break
        // an interim response (100, 103): the final one follows
        if (buf.length === 0) return
      }
      if (this.ex !== ex || ex.done) return
      if (this.body === Body.None) {
        if (buf.length > 0) this.keepAlive = false
        this.complete()
        return
      }
      if (buf.length === 0) return
    }
    this.onBody(buf, ex)
  }

  /** Parses a response head; returns its status, or -1 after failing the exchange. */
  parseHead(text: string, ex: Exchange): number {
    // status line: HTTP/1.x SSS[ reason]
    const eol0 = text.indexOf('\r\n')
    const first = eol0 < 0 ? text.length : eol0
    const minorCode = text.charCodeAt(7)
    if (
      !text.startsWith('HTTP/1.') || (minorCode !== 0x30 && minorCode !== 0x31) || text.charCodeAt(8) !== 0x20 ||
      !isDigit(text.charCodeAt(9)) || !isDigit(text.charCodeAt(10)) || !isDigit(text.charCodeAt(11)) || (first > 12 && text.charCodeAt(12) !== 0x20)
    ) {
      this.fail('invalid status line')
      return -1
    }
    const minor = minorCode === 0x31 ? '1' : '0'
    const status = (text.charCodeAt(9) - 0x30) * 100 + (text.charCodeAt(10) - 0x30) * 10 + (text.charCodeAt(11) - 0x30)
    const raw: string[] = []
    let length: number | undefined
    let chunked = false
    let untilClose = false
    let conn: string | undefined
    let keepAliveTimeout: number | undefined
    for (let at = first + 2; at < text.length; ) {
      let end = text.indexOf('\r\n', at)
      if (end < 0) end = text.length
      let colon = -1
      for (let i = at; i < end; i++) {
        const c = text.charCodeAt(i)
        if (c === 0x3a) {
          colon = i
          break
        }
        if (c > 0x7f || TOKEN_CHARS[c] !== 1) break
      }
      if (colon <= at) {
        this.fail('invalid header line')
        return -1
      }
      const name = text.slice(at, colon)
      // the value without the optional whitespace around it (SP and HTAB only)
      let vs = colon + 1
      let ve = end
      while (vs < ve && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 0x09)) vs++
      while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--
      const value = text.slice(vs, ve)
      at = end + 2
      raw.push(name, value)
      const n = name.length
      if (n === 14 && name.toLowerCase() === 'content-length') {
        if (!/^\d+$/.test(value) || (length !== undefined && length !== Number(value))) {
          this.fail('invalid content-length')
          return -1
        }
        length = Number(value)
      } else if (n === 17 && name.toLowerCase() === 'transfer-encoding') {
        // RFC 9112 §6.3: a response whose coding does not end in chunked runs until the close
        if (/(?:^|,)\s*chunked\s*$/i.test(value)) chunked = true
        else untilClose = true
      } else if (n === 10 && name.toLowerCase() === 'connection') {
        conn = conn === undefined ? value.toLowerCase() : `${conn},${value.toLowerCase()}`
      } else if (n === 10 && name.toLowerCase() === 'keep-alive') {
        const t = /timeout=(\d+)/i.exec(value)
        if (t) keepAliveTimeout = Number(t[1]) * 1000
      }
    }
    if (status < 200) {
      if (status === 101) {
        this.fail('unexpected upgrade')
        return -1
      }
      return status
    }
    if ((chunked || untilClose) && length !== undefined) {
      this.fail('content-length with transfer-encoding')
      return -1
    }
    const tokens = conn === undefined ? [] : conn.split(',').map((t) => t.trim())
    if (tokens.includes('close') || (minor === '0' && !tokens.includes('keep-alive'))) this.keepAlive = false
    const idle = this.pool.o.idleMs
    this.idleMs = keepAliveTimeout === undefined ? idle : Math.min(idle, keepAliveTimeout - 1000)
    if (ex.isHead || status === 204 || status === 304) this.body = Body.None
    else if (chunked) this.body = Body.Chunked
    else if (untilClose) {
      this.body = Body.UntilClose
      this.keepAlive = false
    } else if (length !== undefined) {
      this.body = length === 0 ? Body.None : Body.Length
      this.remaining = length
    } else {
      this.body = Body.UntilClose
      this.keepAlive = false
    }
    this.chunkState = -1
    this.headersDone = true
    this.armTimeout(ex.req.bodyTimeoutMs)
    try {
      ex.handler.onHeaders(status, raw, () => {
        if (this.ex === ex) this.resume()
      })
    } catch (err) {
      this.abort(err as Error)
      return -1
    }
    return status
  }

  /** Passes body bytes on; returns after completing or failing the exchange when the body ends. */
  onBody(buf: Buffer, ex: Exchange): void {
    if (this.body === Body.Length) {
      if (buf.length > this.remaining) {
        this.keepAlive = false
        buf = buf.subarray(0, this.remaining)
      }
      this.remaining -= buf.length
      // the whole rest of the body at once (a small response): handed over with its end
      if (this.remaining === 0 && ex.handler.onLastData !== undefined && !this.paused) return this.complete(buf)
      this.deliver(buf, ex)
      if (this.remaining === 0 && this.ex === ex && !ex.done) this.complete()
      return
    }
    if (this.body === Body.UntilClose) {
      this.deliver(buf, ex)
      return
    }
    // chunked
    let at = 0
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, buf])
      this.pending = undefined
    }
    while (at < buf.length) {
      if (this.ex !== ex || ex.done) return
      const state = this.chunkState
      if (state >= 0) {
        const take = Math.min(state, buf.length - at)
        this.chunkState = state - take === 0 ? -2 : state - take
        this.deliver(buf.subarray(at, at + take), ex)
        at += take
        continue
      }
      const eol = buf.indexOf('\r\n', at, 'latin1')
      if (eol < 0) {
        if (buf.length - at > MAX_HEADER_BYTES) return this.fail('invalid chunk')
        this.pending = buf.subarray(at)
        return
      }
      const line = buf.toString('latin1', at, eol)
      at = eol + 2
      if (state === -2) {
        if (line !== '') return this.fail('invalid chunk')
        this.chunkState = -1
      } else if (state === -1) {
        const semi = line.indexOf(';')
        const hex = (semi < 0 ? line : line.slice(0, semi)).trim()
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.fail('invalid chunk size')
        const size = parseInt(hex, 16)
        this.chunkState = size === 0 ? -3 : size
      } else if (line === '') {
        // the empty line after the last chunk's trailers
        if (at < buf.length) this.keepAlive = false
        this.complete()
        return
      }
    }
  }

  deliver(chunk: Buffer, ex: Exchange): void {
    if (chunk.length === 0) return
    let more: boolean
    try {
      more = ex.handler.onData(chunk)
    } catch (err) {
      this.abort(err as Error)
      return
    }
    if (!more && !this.paused && !ex.done) {
      // a slow client holds the upstream: no read timeout while it does
      this.paused = true
      this.armTimeout(0)
      this.socket.pause()
    }
  }
}

/** The connections to one upstream node. */
export class H1Pool {
  readonly o: H1Options
  readonly #idle: Conn[] = []
  readonly #all = new Set<Conn>()
  readonly #queue: Exchange[] = []
  #closing = false

  constructor(o: H1Options) {
    this.o = o
  }

  /** Sends a request; false when it needs undici (the caller dispatches it there). */
  dispatch(req: H1Request, handler: H1Handler): boolean {
    const isHead = req.method === 'HEAD'
    const head = requestHead(req, isHead)
    if (head === undefined) return false
    this.run({ req, handler, head, close: isHead, isHead, retryable: true, done: false }, false)
    return true
  }

  /** Starts an exchange on an idle or new connection, or queues it (`fresh`: never on a reused one). */
  run(ex: Exchange, fresh: boolean): void {
    if (this.#closing) {
      ex.done = true
      ex.handler.onError(coded('UND_ERR_CLOSED', 'The client is destroyed'))
      return
    }
    if (!fresh) {
      let c: Conn | undefined
      while ((c = this.#idle.pop()) !== undefined) {
        if (!c.closed && !c.socket.destroyed) return this.#startOn(c, ex)
      }
    }
    if (this.#all.size < this.o.connections) {
      const c = new Conn(this, this.o)
      this.#all.add(c)
      c.idleMs = this.o.idleMs
      return this.#startOn(c, ex)
    }
    this.#queue.push(ex)
  }

  #startOn(c: Conn, ex: Exchange): void {
    // the request that reaches maxRequests tells the upstream it is the last one (HEAD always
    // does, as undici's: a misbehaving server may send a body after it)
    const close = ex.isHead || c.requests + 1 >= this.o.maxRequests
    if (close !== ex.close) {
      ex.head = requestHead(ex.req, close)!
      ex.close = close
    }
    if (close) c.keepAlive = false
    c.start(ex)
  }

  /** A connection finished its exchange and may serve another. */
  release(c: Conn): void {
    const next = this.#queue.shift()
    if (next) return this.#startOn(c, next)
    if (this.#closing) {
      this.forget(c)
      c.socket.destroy()
      return
    }
    this.#idle.push(c)
  }

  /** A connection closed or is closing: it serves nothing more; a queued exchange gets a new one. */
  forget(c: Conn): void {
    if (!this.#all.delete(c)) return
    const i = this.#idle.indexOf(c)
    if (i >= 0) this.#idle.splice(i, 1)
    const next = this.#queue.shift()
    if (next) this.run(next, false)
  }

  /** Closes idle connections now and the others once their exchange ends; queued ones fail. */
  close(): void {
    this.#closing = true
    for (const c of this.#idle.splice(0)) {
      this.#all.delete(c)
      c.socket.destroy()
    }
    for (const ex of this.#queue.splice(0)) {
      ex.done = true
      ex.handler.onError(coded('UND_ERR_CLOSED', 'The client is destroyed'))
    }
  }

  /** Connections open (idle or busy). */
  get size(): number {
    return this.#all.size
  }
}
