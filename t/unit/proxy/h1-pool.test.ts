import t, { type Test } from 'tap'
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net'
import { H1Pool, parseResponseHead, requestHead, type H1Handler } from '../../../core/proxy/h1-pool.js'
import type { PoolOptions } from '../../../core/proxy/upstream-plan.js'

// The light upstream pool against real sockets: raw upstreams that answer exactly the bytes a
// case needs (framing, keep-alive, early closes, malformed heads).

/** A raw upstream: `answer` gets each request head (as text) and its socket. */
async function upstream(t: Test, answer: (head: string, s: Socket, n: number) => void): Promise<{ port: number; heads: string[]; conns: number }> {
  const state = { port: 0, heads: [] as string[], conns: 0 }
  const server: Server = createServer((s) => {
    state.conns++
    let buf = ''
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.slice(0, end)
        buf = buf.slice(end + 4)
        state.heads.push(head)
        answer(head, s, state.heads.length)
      }
    })
    s.on('error', () => undefined)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const sockets = new Set<Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  state.port = (server.address() as AddressInfo).port
  return state
}

const options = (port: number, o: Partial<PoolOptions> = {}): PoolOptions => ({
  origin: `http://127.0.0.1:${port}`, connectTimeoutMs: 2000, verify: false, clientCert: undefined, clientKey: undefined,
  connections: 4, idleMs: 60_000, maxRequests: 1000, ...o,
})

interface Outcome {
  status?: number
  headers?: string[]
  body: string
  error?: string
  chunks: number
}

/** One request through the pool; `slow`: onData says "stop" once, and resumes 30 ms later. */
function request(pool: H1Pool, path: string, o: { method?: string; headers?: string[]; timeoutMs?: number; slow?: boolean } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { body: '', chunks: 0 }
    let resume: (() => void) | undefined
    let held = false
    const h: H1Handler = {
      onHeaders(status, raw, r) {
        out.status = status
        out.headers = raw
        resume = r
        return true
      },
      onData(chunk) {
        out.body += chunk.toString('latin1')
        out.chunks++
        if (o.slow && !held) {
          held = true
          setTimeout(() => resume?.(), 30)
          return false
        }
        return true
      },
      onComplete: () => resolve(out),
      onError(err) {
        out.error = (err as NodeJS.ErrnoException).code ?? err.message
        resolve(out)
      },
    }
    pool.dispatch({ method: o.method ?? 'GET', path, headers: o.headers ?? ['Host', 'up.test'], headersTimeout: o.timeoutMs ?? 5000, bodyTimeout: o.timeoutMs ?? 5000 }, h)
  })
}

t.test('requestHead writes what undici wrote: host first, connection: keep-alive, then the rest', async (t) => {
  t.equal(requestHead({ method: 'GET', path: '/a?b', headers: ['X-A', '1', 'Host', 'h:8080', 'X-B', ''] }), 'GET /a?b HTTP/1.1\r\nhost: h:8080\r\nconnection: keep-alive\r\nX-A: 1\r\nX-B: \r\n\r\n')
  t.match(requestHead({ method: 'POST', path: '/', headers: [] }), /content-length: 0\r\n\r\n$/, 'an empty POST says so')
  t.equal(requestHead({ method: 'POST', path: '/', headers: ['Content-Length', '0', 'X-A', '1'] }), 'POST / HTTP/1.1\r\nconnection: keep-alive\r\nX-A: 1\r\ncontent-length: 0\r\n\r\n', 'the client\'s Content-Length: 0 is not sent twice')
  t.equal(requestHead({ method: 'GET', path: '/', headers: ['content-length', '0'] }), 'GET / HTTP/1.1\r\nconnection: keep-alive\r\n\r\n', 'nor on a GET')
  t.throws(() => requestHead({ method: 'GET', path: '/', headers: ['X-A', 'a\r\nX-Injected: 1'] }), { code: 'UND_ERR_INVALID_ARG' }, 'no header injection')
  t.throws(() => requestHead({ method: 'GET', path: '/', headers: ['X A', '1'] }), { code: 'UND_ERR_INVALID_ARG' })
})

t.test('parseResponseHead: framing and keep-alive', async (t) => {
  const p = (text: string, method = 'GET'): ReturnType<typeof parseResponseHead> => parseResponseHead(text, method)
  t.match(p('HTTP/1.1 200 OK\r\nContent-Length: 5'), { status: 200, statusText: 'OK', length: 5, keepAlive: true })
  t.match(p('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked'), { length: 'chunked', keepAlive: true })
  t.match(p('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip'), { length: 'close', keepAlive: false }, 'chunked not last: read until close')
  t.match(p('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3'), { length: 'chunked', keepAlive: false }, 'TE and CL: TE wins, the connection is not reused')
  t.match(p('HTTP/1.1 200 OK'), { length: 'close', keepAlive: false }, 'no length: until close')
  t.match(p('HTTP/1.1 200 OK\r\nContent-Length: 5', 'HEAD'), { length: 0, keepAlive: true }, 'HEAD: no body')
  t.match(p('HTTP/1.1 304 Not Modified\r\nContent-Length: 5'), { length: 0 })
  t.match(p('HTTP/1.1 204 No Content'), { length: 0, keepAlive: true })
  t.match(p('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close'), { keepAlive: false })
  t.match(p('HTTP/1.0 200 OK\r\nContent-Length: 1'), { keepAlive: false }, 'HTTP/1.0 closes by default')
  t.match(p('HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive'), { keepAlive: true })
  t.match(p('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nKeep-Alive: timeout=5, max=100'), { keepAliveMs: 5000 })
  t.match(p('HTTP/1.1 200\r\nContent-Length: 0'), { status: 200, statusText: '' }, 'no reason phrase')
  t.same(p('HTTP/1.1 200 OK\r\nA:  x \r\nB:').raw, ['A', 'x', 'B', ''])
  for (const bad of ['HTTP/1.1 20 OK', 'HTTP/2 200 OK', 'HTTP/1.1 200 OK\r\nBad Name: x', 'HTTP/1.1 200 OK\r\nX: a\x00b', 'HTTP/1.1 200 OK\r\n continued', 'HTTP/1.1 200 OK\r\nContent-Length: -1', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2']) {
    t.throws(() => p(bad), { code: /^HPE_/ }, JSON.stringify(bad))
  }
})

t.test('responses of every framing, on one kept-alive connection', async (t) => {
  const up = await upstream(t, (head, s) => {
    const path = head.split(' ')[1]
    if (path === '/cl') s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello')
    else if (path === '/chunked') s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n,\r\n')
    else if (path === '/interim') s.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    else if (path === '/204') s.write('HTTP/1.1 204 No Content\r\n\r\n')
    if (path === '/chunked') setTimeout(() => s.write('6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'), 20)
  })
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  t.match(await request(pool, '/cl'), { status: 200, headers: ['Content-Length', '5', 'X-A', '1'], body: 'hello' })
  t.match(await request(pool, '/chunked'), { status: 200, body: 'hello, world' }, 'chunk extensions and trailers read, chunks delivered')
  t.match(await request(pool, '/interim'), { status: 200, body: 'ok' }, 'a 103 is skipped')
  t.match(await request(pool, '/204'), { status: 204, body: '' })
  t.match(await request(pool, '/cl', { method: 'HEAD' }), { status: 200, body: '' }, 'HEAD: the length is not read as a body')
  t.equal(up.conns, 1, 'one connection carried all five')
  t.match(up.heads[0], /^GET \/cl HTTP\/1\.1\r\nhost: up\.test\r\nconnection: keep-alive$/)
})

t.test('a close-delimited body ends with the connection, which is not reused', async (t) => {
  const up = await upstream(t, (_head, s) => s.end('HTTP/1.1 200 OK\r\n\r\nuntil close'))
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  t.match(await request(pool, '/'), { status: 200, body: 'until close' })
  t.match(await request(pool, '/'), { status: 200, body: 'until close' })
  t.equal(up.conns, 2)
})

t.test('Connection: close and maxRequests end a connection after its response', async (t) => {
  const up = await upstream(t, (head, s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n${head.includes('/close') ? 'Connection: close\r\n' : ''}\r\nx`))
  const pool = new H1Pool(options(up.port, { maxRequests: 2 }))
  t.teardown(() => pool.close())
  await request(pool, '/close')
  await request(pool, '/a')
  t.equal(up.conns, 2, 'Connection: close → a new connection')
  await request(pool, '/b')
  await request(pool, '/c')
  t.equal(up.conns, 3, 'two requests per connection at most')
})

t.test('a kept-alive connection the upstream closed is replaced, and the request is sent again once', async (t) => {
  const up = await upstream(t, (_head, s, n) => {
    // the second request finds its connection closed without an answer
    if (n === 2) s.destroy()
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  t.match(await request(pool, '/1'), { status: 200 })
  t.match(await request(pool, '/2'), { status: 200, body: 'ok' }, 'answered on a new connection')
  t.equal(up.heads.length, 3)
  t.equal(up.conns, 2)
  t.match(await request(pool, '/3', { method: 'POST' }), { status: 200 })
  t.match(await request(pool, '/4', { method: 'POST' }), { status: 200 })
})

t.test('a POST is never sent twice', async (t) => {
  const up = await upstream(t, (_head, s, n) => {
    if (n === 2) s.destroy()
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  t.match(await request(pool, '/1', { method: 'POST' }), { status: 200 })
  t.match(await request(pool, '/2', { method: 'POST' }), { error: /^(UND_ERR_SOCKET|ECONNRESET)$/ })
  t.equal(up.heads.length, 2)
})

t.test('a fresh connection closed before any answer fails with undici\'s code', async (t) => {
  const up = await upstream(t, (_head, s) => s.destroy())
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  t.match(await request(pool, '/'), { error: /^(UND_ERR_SOCKET|ECONNRESET)$/ })
  t.equal(up.heads.length, 1, 'not sent twice: the connection was new')
})

t.test('errors: refused, malformed, oversized, timeouts, cut bodies', async (t) => {
  const dead = createServer()
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r))
  const deadPort = (dead.address() as AddressInfo).port
  await new Promise<void>((r) => dead.close(() => r()))
  const refused = new H1Pool(options(deadPort))
  t.match(await request(refused, '/'), { error: 'ECONNREFUSED' })
  await refused.close()
  const up = await upstream(t, (head, s) => {
    const path = head.split(' ')[1]
    if (path === '/bad') s.write('HTTP/1.1 200 OK\r\nBad Header\r\n\r\n')
    else if (path === '/huge') s.write(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)
    else if (path === '/cut') s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
    else if (path === '/stall') s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
    // '/silent': no answer
  })
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  t.match(await request(pool, '/bad'), { error: 'HPE_INVALID_HEADER_TOKEN' })
  t.match(await request(pool, '/huge'), { error: 'UND_ERR_HEADERS_OVERFLOW' })
  t.match(await request(pool, '/cut'), { status: 200, body: 'abc', error: /^(UND_ERR_SOCKET|ECONNRESET)$/ }, 'a body cut short is an error after the head')
  t.match(await request(pool, '/silent', { timeoutMs: 200 }), { error: 'UND_ERR_HEADERS_TIMEOUT' })
  t.match(await request(pool, '/stall', { timeoutMs: 200 }), { status: 200, error: 'UND_ERR_BODY_TIMEOUT' })
})

t.test('back-pressure: the socket pauses while the handler holds, and the body arrives whole', async (t) => {
  const big = 'z'.repeat(2 << 20)
  const up = await upstream(t, (_head, s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n${big}`))
  const pool = new H1Pool(options(up.port))
  t.teardown(() => pool.close())
  const r = await request(pool, '/', { slow: true, timeoutMs: 2000 })
  t.equal(r.body.length, big.length)
  t.ok(r.chunks > 1)
})

t.test('beyond `connections`, requests wait for a free connection; an abort while waiting fails only that one', async (t) => {
  const pending: Socket[] = []
  const up = await upstream(t, (_head, s) => pending.push(s))
  const pool = new H1Pool(options(up.port, { connections: 2 }))
  t.teardown(() => pool.close())
  const all = [request(pool, '/1'), request(pool, '/2'), request(pool, '/3')]
  let abort: ((err?: Error) => void) | undefined
  const aborted = new Promise<string>((resolve) => pool.dispatch({ method: 'GET', path: '/4', headers: [] }, { onConnect: (a) => (abort = a), onError: (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message), onComplete: () => resolve('completed') }))
  const deadline = Date.now() + 5000
  while (pending.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.equal(up.conns, 2, 'two connections only')
  abort?.(Object.assign(new Error('client gone'), { code: 'CLIENT_GONE' }))
  t.equal(await aborted, 'CLIENT_GONE')
  // each answer frees a connection for the next waiting request
  const answer = (): void => void pending.shift()?.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  answer()
  answer()
  while (pending.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  answer()
  const out = await Promise.all(all)
  t.same(out.map((o) => o.status), [200, 200, 200])
  t.equal(up.heads.length, 3, 'the aborted request was never sent')
})

t.test('close(): idle connections close at once, busy ones after their response', async (t) => {
  const up = await upstream(t, (head, s) => {
    if (head.includes('/slow')) setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ns'), 100)
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nf')
  })
  const pool = new H1Pool(options(up.port))
  await request(pool, '/fast')
  const slow = request(pool, '/slow')
  await new Promise((r) => setTimeout(r, 20))
  const closed = pool.close()
  t.match(await slow, { status: 200, body: 's' }, 'the request in flight finishes')
  await closed
  t.match(await request(pool, '/late'), { error: 'UND_ERR_CLOSED' })
})
