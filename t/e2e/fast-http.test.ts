import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { createHash } from 'node:crypto'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { childrenOf } from '../lib/proc-tree.js'

// Connections start on the fast HTTP/1.1 path (core/server/fast-http.ts); a request outside its
// subset (here: one with a body) moves the connection to Node's HTTP server for good. The same
// requests must get the same answers either way, and nothing may be lost in the move.

const SNI = 'fast.test'

/** One response as read off the wire. */
interface Reply {
  status: number
  /** header lines in order, Date dropped */
  lines: string[]
  headers: Record<string, string>
  /** the body, chunked framing removed */
  body: Buffer
  chunked: boolean
}

/**
 * A raw keep-alive connection (TLS or plain): `send` writes bytes as they are, `next` reads one
 * response (framing from its headers; `head` for a HEAD request), `closed` resolves on close.
 */
class RawConn {
  readonly s: Socket
  buf = Buffer.alloc(0)
  ended = false
  waiters: (() => void)[] = []
  readonly closedP: Promise<void>

  constructor(s: Socket) {
    this.s = s
    s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.wake()
    })
    this.closedP = new Promise((r) => s.on('close', () => {
      this.ended = true
      this.wake()
      r()
    }))
    s.on('error', () => undefined)
  }

  wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  static open(port: number, tls: boolean, ca: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s: Socket = tls ? tlsConnect({ host: '127.0.0.1', port, servername: SNI, ca }) : netConnect({ host: '127.0.0.1', port })
      s.once(tls ? 'secureConnect' : 'connect', () => resolve(new RawConn(s)))
      s.once('error', reject)
    })
  }

  send(b: string | Buffer): void {
    this.s.write(b)
  }

  /** Waits (10 s at most) until `ready` holds for the bytes received. */
  async until<T>(ready: () => T | undefined): Promise<T> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const v = ready()
      if (v !== undefined) return v
      if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString('latin1'))}`)
      if (Date.now() > deadline) throw new Error(`no complete response; have: ${JSON.stringify(this.buf.toString('latin1'))}`)
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 200)
        this.waiters.push(() => {
          clearTimeout(timer)
          r()
        })
      })
    }
  }

  next(head = false): Promise<Reply> {
    return this.until(() => {
      const b = this.buf
      const end = b.indexOf('\r\n\r\n')
      if (end < 0) return undefined
      const all = b.toString('latin1', 0, end).split('\r\n')
      const status = Number(all[0]!.slice(9, 12))
      const lines = all.slice(1).filter((l) => !/^date:/i.test(l))
      const headers: Record<string, string> = {}
      for (const l of all.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      let at = end + 4
      let body = Buffer.alloc(0)
      const chunked = /chunked/i.test(headers['transfer-encoding'] ?? '')
      if (head || status === 204 || status === 304) {
        // no body
      } else if (chunked) {
        const parts: Buffer[] = []
        for (;;) {
          const eol = b.indexOf('\r\n', at)
          if (eol < 0) return undefined
          const size = parseInt(b.toString('latin1', at, eol), 16)
          if (b.length < eol + 2 + size + 2) return undefined
          parts.push(b.subarray(eol + 2, eol + 2 + size))
          at = eol + 2 + size + 2
          if (size === 0) break
        }
        body = Buffer.concat(parts)
      } else if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length'])
        if (b.length < at + n) return undefined
        body = b.subarray(at, at + n)
        at += n
      }
      this.buf = b.subarray(at)
      return { status, lines, headers, body, chunked }
    })
  }

  close(): void {
    this.s.destroy()
  }
}

t.test('fast HTTP/1.1 path on TLS', async (t) => {
  const pki = makePki({ server: [SNI] })
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t, 'fast')
  // an upstream with every response shape
  const big = Buffer.alloc(1 << 20, 'x')
  const shapes: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path === '/shape/cl') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5, 'x-up': 'cl' })
      res.end('hello')
    } else if (path === '/shape/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-up': 'chunked' })
      res.write('first,')
      setImmediate(() => res.end('second'))
    } else if (path === '/shape/204') {
      res.writeHead(204, { 'x-up': '204' })
      res.end()
    } else if (path === '/shape/304') {
      res.writeHead(304, { etag: '"e1"' })
      res.end()
    } else if (path === '/shape/cookies') {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/'])
      res.setHeader('x-obs', 'caf\xe9')
      res.writeHead(201, { 'content-length': 2, connection: 'x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=3' })
      res.end('ok')
    } else if (path === '/shape/500') {
      res.writeHead(500, { 'content-length': 3 })
      res.end('bad')
    } else if (path === '/shape/cut') {
      // a head that promises a body, then nothing: the response is cut after the gateway made its head
      res.socket?.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n')
    } else if (path === '/shape/big') {
      res.writeHead(200, { 'content-length': big.length })
      res.end(big)
    } else {
      res.writeHead(404, { 'content-length': 0 })
      res.end()
    }
  })
  await new Promise<void>((r) => shapes.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => { shapes.closeAllConnections(); shapes.close(() => r()) }))
  const shapesAt = `127.0.0.1:${(shapes.address() as AddressInfo).port}`
  t.equal((await admin.put('ssls/fast', { sni: SNI, cert: pki.server.cert, key: pki.server.key })).status, 201)
  t.equal((await admin.put('routes/shape', { uri: '/shape/*', upstream: { nodes: { [shapesAt]: 1 } } })).status, 201)
  t.equal((await admin.put('routes/echo', { uri: '/echo/*', upstream: { nodes: { [echo.hostPort]: 1 } } })).status, 201)
  t.equal((await admin.put('routes/reply', { uri: '/reply', plugins: { 'ssl-enforcement': { requiresClientAuthentication: true } }, upstream: { nodes: { [echo.hostPort]: 1 } } })).status, 201)
  const ca = pki.ca.cert
  await eventually(async () => {
    const c = await RawConn.open(gw.https, true, ca).catch(() => undefined)
    if (!c) return 0
    c.send(`GET /shape/cl HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    const r = await c.next().catch(() => undefined)
    c.close()
    return r?.status ?? 0
  }, (s) => s === 200, { timeoutMs: 15_000, describe: gw.output })

  t.test('pipelined keep-alive requests get the same answers on the fast path (TLS and plain) as from Node\'s server, in order', async (t) => {
    const reqs: [string, string][] = [
      ['GET', '/shape/cl'], ['HEAD', '/shape/cl'], ['GET', '/shape/chunked'], ['HEAD', '/shape/chunked'], ['GET', '/shape/204'],
      ['GET', '/shape/304'], ['GET', '/shape/cookies'], ['GET', '/shape/500'], ['GET', '/nowhere'], ['HEAD', '/nowhere'],
      ['GET', '/apisix/status'], ['DELETE', '/shape/cl'], ['OPTIONS', '/shape/cl'],
    ]
    const text = reqs.map(([m, p]) => `${m} ${p} HTTP/1.1\r\nHost: ${SNI}\r\nAccept: */*\r\n\r\n`).join('')
    const answers: Reply[][] = []
    for (const [kind, tls, viaNode] of [['TLS', true, false], ['plain', false, false], ['Node', false, true]] as const) {
      const c = await RawConn.open(tls ? gw.https : gw.http, tls, ca)
      if (viaNode) {
        // a request with a body first: the connection is Node's server's from then on
        c.send(`POST /echo/first HTTP/1.1\r\nHost: ${SNI}\r\nContent-Length: 1\r\n\r\nx`)
        t.equal((await c.next()).status, 200)
      }
      c.send(text) // all in one write: pipelined
      const got: Reply[] = []
      for (const [m] of reqs) got.push(await c.next(m === 'HEAD'))
      t.equal(c.buf.length, 0, `${kind}: nothing more than the responses`)
      t.equal(c.ended, false, 'the connection stays open')
      c.close()
      answers.push(got)
    }
    const [fastTls, fastPlain, node] = answers as [Reply[], Reply[], Reply[]]
    for (const [kind, fast] of [['TLS', fastTls], ['plain', fastPlain]] as const) {
      for (const [i, [m, p]] of reqs.entries()) {
        const f = fast[i]!
        const n = node[i]!
        t.same(f.lines, n.lines, `${kind} ${m} ${p}: the same status line and headers, in the same order`)
        t.equal(f.status, n.status, `${kind} ${m} ${p}: ${n.status}`)
        t.equal(f.body.toString('latin1'), n.body.toString('latin1'), `${kind} ${m} ${p}: the same body`)
        t.equal(f.chunked, n.chunked, `${kind} ${m} ${p}: the same framing`)
      }
    }
    const fast = fastTls
    const byPath = (p: string): Reply => fast[reqs.findIndex(([m, q]) => m === 'GET' && q === p)]!
    t.equal(byPath('/shape/cl').body.toString(), 'hello')
    t.equal(byPath('/shape/cl').headers['connection'], 'keep-alive')
    t.equal(byPath('/shape/chunked').body.toString(), 'first,second', 'an upstream body of unknown length goes chunked')
    t.equal(byPath('/shape/chunked').chunked, true)
    t.same(byPath('/shape/cookies').lines.slice(0, 3).map((l) => l.slice(0, l.indexOf(':'))), ['set-cookie', 'set-cookie', 'x-obs'], 'repeated headers pass in order')
    t.ok(byPath('/shape/cookies').lines.includes('set-cookie: b=2; Path=/'))
    t.notOk(byPath('/shape/cookies').headers['x-hop'], 'a Connection-listed header is dropped')
    t.equal(byPath('/shape/500').headers['x-apisix-upstream-status'], '500')
    t.equal(byPath('/nowhere').status, 404)
    t.equal(fast[1]!.headers['content-length'], '5', 'HEAD: the length of the body not sent')
  })

  t.test('a plugin\'s own reply on the fast path', async (t) => {
    const c = await RawConn.open(gw.https, true, ca)
    t.teardown(() => c.close())
    c.send(`GET /reply HTTP/1.1\r\nHost: ${SNI}\r\n\r\nGET /shape/cl HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    const r = await c.next()
    t.equal(r.status, 401, 'ssl-enforcement: no client certificate')
    t.equal(r.headers['content-length'], String(r.body.length))
    t.match(JSON.parse(r.body.toString()), { error_msg: 'Unauthorized' })
    t.equal((await c.next()).body.toString(), 'hello', 'the connection goes on')
  })

  t.test('a request outside the subset moves the connection to Node\'s server, with the pipelined bytes behind it', async (t) => {
    const c = await RawConn.open(gw.https, true, ca)
    t.teardown(() => c.close())
    c.send(`GET /echo/1 HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    t.equal((await c.next()).status, 200)
    const body = 'x'.repeat(3000)
    // a body (fallback), then a bodyless request, in one write
    c.send(`POST /echo/2 HTTP/1.1\r\nHost: ${SNI}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /echo/3 HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    const post = await c.next()
    t.equal(post.status, 200)
    t.match(JSON.parse(post.body.toString()), { method: 'POST', url: '/echo/2', bodyBytes: 3000 }, 'the body reached the upstream whole')
    const after = await c.next()
    t.match(JSON.parse(after.body.toString()), { method: 'GET', url: '/echo/3' }, 'the request behind it too')
    // a chunked upload on the same (now Node's) connection
    c.send(`PUT /echo/4 HTTP/1.1\r\nHost: ${SNI}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
    t.match(JSON.parse((await c.next()).body.toString()), { method: 'PUT', bodyBytes: 5, body: 'hello' })
  })

  t.test('what the subset leaves out is answered as Node\'s server answers it', async (t) => {
    const cases: [string, string, (r: Reply, closed: boolean) => void][] = [
      ['HTTP/1.0', `GET /echo/10 HTTP/1.0\r\nHost: ${SNI}\r\n\r\n`, (r, closed) => {
        t.equal(r.status, 200)
        t.ok(closed, 'HTTP/1.0 without keep-alive: closed after the response')
      }],
      ['Connection: close', `GET /echo/11 HTTP/1.1\r\nHost: ${SNI}\r\nConnection: close\r\n\r\n`, (r, closed) => {
        t.equal(r.status, 200)
        t.equal(r.headers['connection'], 'close')
        t.ok(closed, 'closed after the response')
      }],
      ['two Host headers', `GET /echo/12 HTTP/1.1\r\nHost: ${SNI}\r\nHost: other\r\n\r\n`, (r, closed) => {
        t.equal(r.status, 400)
        t.ok(closed)
      }],
      ['a space before the colon', `GET /echo/13 HTTP/1.1\r\nHost : ${SNI}\r\n\r\n`, (r, closed) => {
        t.equal(r.status, 400)
        t.ok(closed)
      }],
      ['a control byte in a header value', `GET /echo/14 HTTP/1.1\r\nHost: ${SNI}\r\nX-A: a\x01b\r\n\r\n`, (r, closed) => {
        t.equal(r.status, 400)
        t.ok(closed)
      }],
      ['a head over 16 KiB', `GET /echo/15 HTTP/1.1\r\nHost: ${SNI}\r\nX-Big: ${'b'.repeat(17_000)}\r\n\r\n`, (r, closed) => {
        t.equal(r.status, 431)
        t.ok(closed)
      }],
      ['an absolute-form target', `GET https://${SNI}/echo/16 HTTP/1.1\r\nHost: other\r\n\r\n`, (r) => {
        t.equal(r.status, 200)
        t.match(JSON.parse(r.body.toString()), { url: '/echo/16', headers: { host: SNI } })
      }],
    ]
    for (const [name, text, check] of cases) {
      const c = await RawConn.open(gw.https, true, ca)
      c.send(text)
      const r = await c.next()
      await Promise.race([c.closedP, new Promise((res) => setTimeout(res, 300))])
      check(r, c.ended)
      c.close()
      t.pass(name)
    }
  })

  t.test('an upstream that cuts its response after the head: the client\'s connection is cut, the worker lives on', async (t) => {
    const workers = childrenOf(gw.pid)
    t.equal(workers.length, 1)
    for (const tls of [true, false]) {
      const c = await RawConn.open(tls ? gw.https : gw.http, tls, ca)
      c.send(`GET /shape/cut HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
      await Promise.race([c.closedP, new Promise((r) => setTimeout(r, 5000))])
      t.ok(c.ended, `${tls ? 'TLS' : 'plain'}: the connection was closed`)
      t.notMatch(c.buf.toString('latin1'), /Content-Length: 10\r\n[\s\S]*\r\n\r\n.{10}/, 'never a complete response')
      const d = await RawConn.open(tls ? gw.https : gw.http, tls, ca)
      d.send(`GET /shape/cl HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
      t.equal((await d.next()).body.toString(), 'hello', 'the next connection is served')
      d.close()
    }
    t.same(childrenOf(gw.pid), workers, 'by the same worker process: it did not crash')
  })

  t.test('a head that arrives in pieces is answered', async (t) => {
    const c = await RawConn.open(gw.https, true, ca)
    t.teardown(() => c.close())
    const text = `GET /echo/20 HTTP/1.1\r\nHost: ${SNI}\r\nX-Part: 1\r\n\r\n`
    for (const piece of [text.slice(0, 9), text.slice(9, 30), text.slice(30)]) {
      c.send(piece)
      await new Promise((r) => setImmediate(r))
    }
    const r = await c.next()
    t.equal(r.status, 200)
    t.match(JSON.parse(r.body.toString()), { url: '/echo/20', headers: { 'x-part': '1' } })
    c.send(`GET /echo/21 HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    t.equal((await c.next()).status, 200, 'and the connection goes on')
  })

  t.test('a 1 MiB response to a client that reads slowly arrives whole', async (t) => {
    const c = await RawConn.open(gw.https, true, ca)
    t.teardown(() => c.close())
    c.s.pause()
    c.send(`GET /shape/big HTTP/1.1\r\nHost: ${SNI}\r\n\r\nGET /shape/cl HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    await new Promise((r) => setTimeout(r, 200)) // the gateway meets back-pressure meanwhile
    c.s.resume()
    const r = await c.next()
    t.equal(r.body.length, big.length)
    t.equal(createHash('sha256').update(r.body).digest('hex'), createHash('sha256').update(big).digest('hex'))
    t.equal((await c.next()).body.toString(), 'hello', 'the pipelined request after it')
  })

  for (const tls of [false, true]) {
    t.test(`a ${tls ? 'TLS' : 'plain'} client that half-closes while idle is closed cleanly, its answers whole`, async (t) => {
      const c = await RawConn.open(tls ? gw.https : gw.http, tls, ca)
      const errors: string[] = []
      c.s.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message))
      c.send(`GET /shape/cl HTTP/1.1\r\nHost: ${SNI}\r\n\r\nGET /shape/big HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
      t.equal((await c.next()).body.toString(), 'hello')
      t.equal((await c.next()).body.length, big.length, 'the answers before the half-close arrived whole')
      c.s.end() // TLS: close_notify, then FIN
      await Promise.race([c.closedP, new Promise((r) => setTimeout(r, 5000))])
      t.ok(c.ended, 'the gateway closed its side too')
      t.same(errors, [], 'no reset and no error on the client')
    })
  }

  t.test('a client gone before the answer is logged as closed, and the next connection is served', async (t) => {
    const slow: Server = createServer((_req, res) => setTimeout(() => res.end('late'), 300))
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
    t.teardown(() => new Promise<void>((r) => { slow.closeAllConnections(); slow.close(() => r()) }))
    t.equal((await admin.put('routes/late', { uri: '/late', upstream: { nodes: { [`127.0.0.1:${(slow.address() as AddressInfo).port}`]: 1 } } })).status, 201)
    await eventually(async () => {
      const c = await RawConn.open(gw.https, true, ca)
      c.send(`GET /late HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
      const r = await c.next().catch(() => undefined)
      c.close()
      return r?.status ?? 0
    }, (s) => s === 200, { timeoutMs: 10_000 })
    const c = await RawConn.open(gw.https, true, ca)
    c.send(`GET /late?gone=1 HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    await new Promise((r) => setTimeout(r, 50))
    c.close()
    const line = await eventually(async () => {
      const { readFile } = await import('node:fs/promises')
      const text = await readFile(gw.accessLog, 'utf8').catch(() => '')
      return text.split('\n').find((l) => l.includes('/late?gone=1'))
    }, (l) => l !== undefined, { timeoutMs: 10_000 })
    t.match(line, /\b499\b/, 'logged with nginx\'s 499 (client closed)')
    const d = await RawConn.open(gw.https, true, ca)
    d.send(`GET /shape/cl HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`)
    t.equal((await d.next()).status, 200)
    d.close()
  })
})
