/**
 * A keep-alive HTTP/1.1 client pool for bodiless requests to a plain-HTTP upstream node (issue 7).
 * undici costs ~15 µs of CPU per proxied request (its Request object and header checks, its
 * llhttp in WebAssembly with a call back into JS per header, its timers); this pool writes the
 * request head in one write and reads the response with a small strict parser. Requests with a
 * body, upgrades and TLS upstreams stay on undici (core/proxy/pools.ts picks).
 *
 * It speaks undici's dispatch-handler protocol (onConnect, onHeaders, onData, onComplete,
 * onError) and fails with undici's error codes, so forward.ts and its retry and status rules
 * (core/proxy/upstream-errors.ts) are the same for both. What it adds: an idempotent request
 * that finds a kept-alive connection closed by the upstream before any response byte is sent
 * again once on a new connection, instead of failing.
 */
import { connect, type Socket } from 'node:net'
import type { PoolOptions } from './upstream-plan.js'
import { BAD_FIELD_VALUE as BAD_VALUE, HTTP_TOKEN as TOKEN } from '../net/http-syntax.js'

/** What a request needs (undici's dispatch options, the fields this pool supports). */
export interface H1Request {
  readonly method: string
  readonly path: string
  /** flat `[name, value, …]`; a `Host` among them goes first, as undici sends it */
  readonly headers: readonly string[]
  /** ms to the response head, and between body reads (0: none) */
  readonly headersTimeout?: number | undefined
  readonly bodyTimeout?: number | undefined
}

/** undici's dispatch handler, as this pool calls it. */
export interface H1Handler {
  onConnect?(abort: (err?: Error) => void): void
  onHeaders?(status: number, raw: string[], resume: () => void, statusText: string): boolean
  onData?(chunk: Buffer): boolean
  onComplete?(trailers: string[] | null): void
  onError?(err: Error): void
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
/** undici's default (Node's --max-http-header-size) */
const MAX_HEAD = 16 * 1024
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/
/** methods whose empty body undici announces with `content-length: 0` */
const EXPECTS_PAYLOAD = new Set(['POST', 'PUT', 'PATCH'])
/** methods never sent twice */
const NOT_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH'])

/** An error with undici's code (classifyUpstreamError reads it). */
function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

/**
 * The request head as undici writes it: host first, then `connection: keep-alive`, then the rest;
 * a Content-Length among the headers is replaced by the pool's own.
 */
export function requestHead(r: H1Request): string {
  let host = ''
  let rest = ''
  const h = r.headers
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = h[i]!
    const value = h[i + 1]!
    if (!TOKEN.test(name)) throw failure('UND_ERR_INVALID_ARG', `invalid header name ${JSON.stringify(name)}`)
    if (BAD_VALUE.test(value)) throw failure('UND_ERR_INVALID_ARG', `invalid ${name} header`)
    if (name.length === 4 && host === '' && name.toLowerCase() === 'host') host = `host: ${value}\r\n`
    // the length is the pool's to write (there is no body: 0 where the method expects one)
    else if (name.length !== 14 || name.toLowerCase() !== 'content-length') rest += `${name}: ${value}\r\n`
  }
  const empty = EXPECTS_PAYLOAD.has(r.method) ? 'content-length: 0\r\n' : ''
  return `${r.method} ${r.path} HTTP/1.1\r\n${host}connection: keep-alive\r\n${rest}${empty}\r\n`
}

/** A parsed response head. */
export interface ResponseHead {
  readonly status: number
  readonly statusText: string
  readonly raw: string[]
  /** body framing: a length, chunked, or until the connection closes */
  readonly length: number | 'chunked' | 'close'
  /** the connection may carry another request */
  readonly keepAlive: boolean
  /** the upstream's Keep-Alive timeout hint (ms), when it sent one */
  readonly keepAliveMs: number | undefined
}

/** Parses a response head (without its final CRLFCRLF); throws an HPE_ error when malformed. */
export function parseResponseHead(text: string, method: string): ResponseHead {
  const lines = text.split('\r\n')
  const m = STATUS_LINE.exec(lines[0]!)
  if (!m) throw failure('HPE_INVALID_CONSTANT', 'invalid response status line')
  const minor = m[1] === '1'
  const status = Number(m[2])
  const raw: string[] = []
  let cl: number | undefined
  let te: 'chunked' | 'close' | undefined
  let close = !minor
  let keepAliveToken = false
  let keepAliveMs: number | undefined
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    const name = colon > 0 ? line.slice(0, colon) : ''
    if (!TOKEN.test(name)) throw failure('HPE_INVALID_HEADER_TOKEN', 'invalid response header')
    const value = line.slice(colon + 1).trim()
    if (BAD_VALUE.test(value)) throw failure('HPE_INVALID_HEADER_TOKEN', 'invalid response header value')
    raw.push(name, value)
    switch (name.length) {
      case 10:
        if (name.toLowerCase() === 'connection') {
          for (const token of value.toLowerCase().split(',')) {
            const v = token.trim()
            if (v === 'close') close = true
            else if (v === 'keep-alive') keepAliveToken = true
          }
        } else if (name.toLowerCase() === 'keep-alive') {
          const t = /(?:^|[\s,])timeout=(\d+)/i.exec(value)
          if (t) keepAliveMs = Number(t[1]) * 1000
        }
        break
      case 14:
        if (name.toLowerCase() === 'content-length') {
          if (!/^\d{1,15}$/.test(value)) throw failure('HPE_INVALID_CONTENT_LENGTH', 'invalid response content-length')
          const n = Number(value)
          if (cl !== undefined && cl !== n) throw failure('HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting response content-length')
          cl = n
        }
        break
      case 17:
        // chunked must be the last coding; any other last coding is read until close (RFC 9112 §6.3)
        if (name.toLowerCase() === 'transfer-encoding') te = /(?:^|,)\s*chunked\s*$/i.test(value) ? 'chunked' : 'close'
        break
    }
  }
  // RFC 9112 §6.3: no body for HEAD, 1xx, 204, 304; Transfer-Encoding wins over Content-Length
  const length = method === 'HEAD' || status < 200 || status === 204 || status === 304 ? 0 : (te ?? cl ?? 'close')
  if (!minor && keepAliveToken) close = false
  // a response with both Transfer-Encoding and Content-Length may be a smuggling attempt: not reused
  if (te !== undefined && cl !== undefined) close = true
  return { status, statusText: m[3] ?? '', raw, length, keepAlive: !close && length !== 'close', keepAliveMs }
}

/** One request, across a resend on a fresh connection. */
class Exchange {
  readonly pool: H1Pool
  readonly head: string
  readonly method: string
  readonly handler: H1Handler
  readonly headersMs: number
  readonly bodyMs: number
  conn: Conn | undefined = undefined
  timer: NodeJS.Timeout | undefined = undefined
  timerCode = ''
  done = false
  /** a response byte came: never resent */
  answered = false
  resent = false
  readonly abort = (err?: Error): void => {
    if (this.done) return
    const conn = this.conn
    this.fail(err ?? failure('UND_ERR_ABORTED', 'request aborted'))
    if (conn) conn.socket.destroy()
    else this.pool.dequeue(this)
  }

  constructor(pool: H1Pool, r: H1Request, handler: H1Handler) {
    this.pool = pool
    this.head = requestHead(r)
    this.method = r.method
    this.handler = handler
    this.headersMs = r.headersTimeout ?? 0
    this.bodyMs = r.bodyTimeout ?? 0
  }

  /**
   * The read timer: `headersTimeout` runs from the request to the response head, `bodyTimeout`
   * from each body read to the next (`restart`: counted again from now).
   */
  arm(ms: number, code: string, restart: boolean): void {
    if (ms <= 0) return
    if (this.timer !== undefined && this.timerCode === code) {
      if (restart) this.timer.refresh()
      return
    }
    this.disarm()
    this.timerCode = code
    this.timer = setTimeout(timedOut, ms, this, code)
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  fail(err: Error): void {
    if (this.done) return
    this.done = true
    this.disarm()
    this.conn = undefined
    this.handler.onError?.(err)
  }

  complete(): void {
    if (this.done) return
    this.done = true
    this.disarm()
    this.conn = undefined
    try {
      this.handler.onComplete?.(null)
    } catch {
      // the client side failed on its own; nothing is left to tell
    }
  }
}

const timedOut = (x: Exchange, code: string): void => {
  x.timer = undefined
  const conn = x.conn
  x.fail(failure(code, code === 'UND_ERR_HEADERS_TIMEOUT' ? 'Headers Timeout Error' : 'Body Timeout Error'))
  conn?.socket.destroy()
}

/** One upstream connection. */
class Conn {
  readonly socket: Socket
  readonly pool: H1Pool
  x: Exchange | undefined = undefined
  /** requests written on this connection */
  served = 0
  connected = false
  buf: Buffer | null = null
  /** body state of the response being read */
  head: ResponseHead | undefined = undefined
  left = 0
  /** chunked: 'size' line, 'data' (left bytes), 'crlf' after data, 'trailer' lines */
  chunk: 'size' | 'data' | 'crlf' | 'trailer' = 'size'
  keepAliveMs: number
  connectTimer: NodeJS.Timeout | undefined
  ended = false
  paused = false
  readonly resume = (): void => {
    if (!this.paused) return
    this.paused = false
    this.socket.resume()
    const x = this.x
    if (x !== undefined) this.wait(x)
  }

  constructor(pool: H1Pool, x: Exchange) {
    this.pool = pool
    this.x = x
    this.keepAliveMs = pool.o.idleMs
    x.conn = this
    const s = connect({ host: pool.host, port: pool.port, noDelay: true })
    this.socket = s
    this.connectTimer = pool.o.connectTimeoutMs > 0 ? setTimeout(() => this.onConnectTimeout(), pool.o.connectTimeoutMs) : undefined
    s.once('connect', () => {
      if (this.connectTimer !== undefined) clearTimeout(this.connectTimer)
      this.connected = true
      // idle connections close after keepAliveMs; a busy one ignores the timeout (its read timer rules)
      s.setTimeout(this.keepAliveMs)
      const first = this.x
      if (first) this.send(first)
      else this.pool.release(this)
    })
    s.on('data', (d: Buffer) => this.onData(d))
    s.on('error', (err: Error) => this.onGone(err))
    s.on('close', () => this.onGone(undefined))
    s.on('timeout', () => {
      if (this.x === undefined) s.destroy()
    })
  }

  onConnectTimeout(): void {
    const x = this.x
    this.x = undefined
    x?.fail(failure('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error'))
    this.socket.destroy()
  }

  /** Writes a request; the read timer starts. */
  send(x: Exchange): void {
    this.x = x
    x.conn = this
    this.served++
    this.head = undefined
    x.arm(x.headersMs, 'UND_ERR_HEADERS_TIMEOUT', false)
    this.socket.write(x.head, 'latin1')
  }

  onData(d: Buffer): void {
    const x = this.x
    if (x === undefined) {
      // bytes nobody asked for: the connection cannot be trusted any more
      this.socket.destroy()
      return
    }
    x.answered = true
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d])
    this.parse(x)
  }

  parse(x: Exchange): void {
    for (;;) {
      if (x.done || this.x !== x) return
      const buf = this.buf
      if (buf === null) return this.wait(x)
      if (this.head === undefined) {
        const end = buf.indexOf(CRLFCRLF)
        if (end < 0) {
          if (buf.length > MAX_HEAD) return this.broken(x, failure('UND_ERR_HEADERS_OVERFLOW', 'Headers Overflow Error'))
          return this.wait(x)
        }
        if (end > MAX_HEAD) return this.broken(x, failure('UND_ERR_HEADERS_OVERFLOW', 'Headers Overflow Error'))
        let head: ResponseHead
        try {
          head = parseResponseHead(buf.toString('latin1', 0, end), x.method)
        } catch (err) {
          return this.broken(x, err as Error)
        }
        this.buf = end + 4 < buf.length ? buf.subarray(end + 4) : null
        if (head.status < 200) continue // interim (100, 103): not relayed
        this.head = head
        if (head.keepAliveMs !== undefined && head.keepAliveMs - 1000 < this.keepAliveMs) {
          // the upstream's own idle bound, less a second for the race (undici's threshold)
          this.keepAliveMs = head.keepAliveMs - 1000
          if (this.keepAliveMs > 0) this.socket.setTimeout(this.keepAliveMs)
        }
        this.left = typeof head.length === 'number' ? head.length : 0
        this.chunk = 'size'
        let go: boolean | undefined
        try {
          go = x.handler.onHeaders?.(head.status, head.raw, this.resume, head.statusText)
        } catch (err) {
          return this.broken(x, err as Error)
        }
        if (go === false) this.pause()
        if (head.length === 0) return this.finish(x)
        continue
      }
      const head = this.head
      if (head.length === 'close') {
        this.buf = null
        this.deliver(x, buf)
        continue
      }
      if (head.length !== 'chunked') {
        const take = Math.min(this.left, buf.length)
        this.left -= take
        this.buf = take < buf.length ? buf.subarray(take) : null
        this.deliver(x, take === buf.length ? buf : buf.subarray(0, take))
        if (this.left === 0) return this.finish(x)
        continue
      }
      // chunked
      if (this.chunk === 'data') {
        const take = Math.min(this.left, buf.length)
        this.left -= take
        this.buf = take < buf.length ? buf.subarray(take) : null
        this.deliver(x, take === buf.length ? buf : buf.subarray(0, take))
        if (this.left === 0) this.chunk = 'crlf'
        continue
      }
      const eol = buf.indexOf('\r\n')
      if (eol < 0) {
        if (buf.length > MAX_HEAD) return this.broken(x, failure('HPE_INVALID_CHUNK_SIZE', 'invalid chunk'))
        return this.wait(x)
      }
      const line = buf.toString('latin1', 0, eol)
      this.buf = eol + 2 < buf.length ? buf.subarray(eol + 2) : null
      if (this.chunk === 'crlf') {
        if (line !== '') return this.broken(x, failure('HPE_STRICT', 'invalid chunk end'))
        this.chunk = 'size'
      } else if (this.chunk === 'size') {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line)
        if (!m) return this.broken(x, failure('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size'))
        this.left = parseInt(m[1]!, 16)
        this.chunk = this.left === 0 ? 'trailer' : 'data'
      } else if (line === '') {
        return this.finish(x) // the empty line after the trailers
      }
    }
  }

  /** Waits for more of the response: the read timer runs (not while the client holds us back). */
  wait(x: Exchange): void {
    if (x.done || this.x !== x || this.paused) return
    if (this.head === undefined) x.arm(x.headersMs, 'UND_ERR_HEADERS_TIMEOUT', false)
    else x.arm(x.bodyMs, 'UND_ERR_BODY_TIMEOUT', true)
  }

  pause(): void {
    if (this.paused) return
    this.paused = true
    this.socket.pause()
    this.x?.disarm()
  }

  deliver(x: Exchange, chunk: Buffer): void {
    if (chunk.length === 0) return
    let go: boolean | undefined
    try {
      go = x.handler.onData?.(chunk)
    } catch (err) {
      return this.broken(x, err as Error)
    }
    if (go === false) this.pause()
  }

  /** The response is complete: the connection goes back to the pool when it can carry another. */
  finish(x: Exchange): void {
    const head = this.head!
    const reusable = head.keepAlive && this.buf === null && this.served < this.pool.o.maxRequests && this.keepAliveMs > 0
    this.x = undefined
    this.head = undefined
    x.complete()
    if (!reusable) {
      this.socket.destroy()
      return
    }
    if (this.paused) {
      this.paused = false
      this.socket.resume()
    }
    this.pool.release(this)
  }

  /** The response cannot be read: the request fails and the connection closes. */
  broken(x: Exchange, err: Error): void {
    this.x = undefined
    x.fail(err)
    this.socket.destroy()
  }

  onGone(err: Error | undefined): void {
    if (this.ended) return
    this.ended = true
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer)
    const x = this.x
    this.x = undefined
    this.pool.gone(this)
    if (x === undefined || x.done) return
    // a close-delimited body ends with the connection
    if (err === undefined && this.head !== undefined && this.head.length === 'close') return x.complete()
    // a kept-alive connection the upstream closed before answering (it closed an idle connection
    // as the request went out): the request goes once more on a new connection, unless its
    // method is not idempotent (nginx's proxy_next_upstream rule)
    if (!x.answered && !x.resent && this.served > 1 && !NOT_IDEMPOTENT.has(x.method)) {
      x.resent = true
      x.conn = undefined
      return this.pool.run(x)
    }
    x.fail(err ?? failure('UND_ERR_SOCKET', 'other side closed'))
  }
}

/** The connections to one upstream node. */
export class H1Pool {
  readonly host: string
  readonly port: number
  readonly o: PoolOptions
  readonly #idle: Conn[] = []
  readonly #queue: Exchange[] = []
  #open = 0
  #closed = false
  #onEmpty: (() => void) | undefined

  constructor(o: PoolOptions) {
    const u = new URL(o.origin)
    this.host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
    this.port = Number(u.port || 80)
    this.o = o
  }

  /** Sends a request; the handler hears the outcome (never throws, except for an invalid header). */
  dispatch(r: H1Request, handler: H1Handler): boolean {
    const x = new Exchange(this, r, handler)
    handler.onConnect?.(x.abort)
    if (x.done) return true
    if (this.#closed) {
      x.fail(failure('UND_ERR_CLOSED', 'The client is destroyed'))
      return true
    }
    this.run(x)
    return true
  }

  run(x: Exchange): void {
    const idle = this.#idle.pop()
    if (idle !== undefined) return idle.send(x)
    if (this.#open < this.o.connections) {
      this.#open++
      new Conn(this, x)
      return
    }
    this.#queue.push(x)
  }

  dequeue(x: Exchange): void {
    const i = this.#queue.indexOf(x)
    if (i >= 0) this.#queue.splice(i, 1)
  }

  release(c: Conn): void {
    const next = this.#queue.shift()
    if (next !== undefined) return c.send(next)
    if (this.#closed) {
      c.socket.destroy()
      return
    }
    this.#idle.push(c)
  }

  gone(c: Conn): void {
    const i = this.#idle.indexOf(c)
    if (i >= 0) this.#idle.splice(i, 1)
    this.#open--
    // a request waiting for a connection gets a new one
    if (this.#queue.length > 0 && this.#open < this.o.connections && !this.#closed) {
      this.#open++
      new Conn(this, this.#queue.shift()!)
    }
    if (this.#open === 0) this.#onEmpty?.()
  }

  /** Closes the idle connections now and the others once their request is done. */
  close(): Promise<void> {
    this.#closed = true
    for (const x of this.#queue.splice(0)) x.fail(failure('UND_ERR_CLOSED', 'The client is destroyed'))
    for (const c of this.#idle.splice(0)) c.socket.destroy()
    if (this.#open === 0) return Promise.resolve()
    return new Promise((resolve) => (this.#onEmpty = resolve))
  }
}
