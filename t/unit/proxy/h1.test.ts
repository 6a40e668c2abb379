import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { H1Pool, requestHead, type H1Handler, type H1Request } from '../../../core/proxy/h1.js'

/** A raw TCP upstream: `answer` gets each request head (as text) and the socket, and writes what it likes. */
async function upstream(t: Test, answer: (head: string, s: Socket, n: number) => void): Promise<{ port: number; server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = []
  let n = 0
  const server = createServer((s) => {
    sockets.push(s)
    let buf = ''
    s.on('error', () => undefined)
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      let end: number
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end)
        buf = buf.slice(end + 4)
        answer(head, s, n++)
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, server, sockets }
}

interface Outcome {
  status: number
  headers: string[]
  body: string
  error: string | undefined
}

/** Sends one request through `pool` and resolves with what the handler saw. */
function send(pool: H1Pool, r: Partial<H1Request> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { status: 0, headers: [], body: '', error: undefined }
    const handler: H1Handler = {
      onConnect: () => undefined,
      onHeaders(status, raw) {
        out.status = status
        out.headers = raw
        return true
      },
      onData(chunk) {
        out.body += chunk.toString('latin1')
        return true
      },
      onComplete: () => resolve(out),
      onError(err) {
        out.error = (err as Error & { code?: string }).code ?? err.message
        resolve(out)
      },
      onLastData(chunk) {
        out.body += chunk.toString('latin1')
        resolve(out)
      },
    }
    const ok = pool.dispatch({ method: 'GET', path: '/x', headers: ['Host', 'up.test', 'X-A', '1'], headersTimeoutMs: 2000, bodyTimeoutMs: 2000, ...r }, handler)
    if (!ok) resolve({ ...out, error: 'declined' })
  })
}

const poolFor = (port: number, o: Partial<ConstructorParameters<typeof H1Pool>[0]> = {}): H1Pool =>
  new H1Pool({ host: '127.0.0.1', port, connections: 4, idleMs: 5000, maxRequests: 1000, connectTimeoutMs: 2000, ...o })

t.test('h1 request head: as undici writes it; requests needing undici declined', async (t) => {
  const base: H1Request = { method: 'GET', path: '/a?b=1', headers: ['Host', 'up.test', 'X-A', '1'], headersTimeoutMs: 1, bodyTimeoutMs: 1 }
  t.equal(requestHead(base, false), 'GET /a?b=1 HTTP/1.1\r\nhost: up.test\r\nconnection: keep-alive\r\nX-A: 1\r\n\r\n')
  t.equal(requestHead(base, true), 'GET /a?b=1 HTTP/1.1\r\nhost: up.test\r\nconnection: close\r\nX-A: 1\r\n\r\n')
  const declined: [string, Partial<H1Request>][] = [
    ['a Content-Length header', { headers: ['Host', 'h', 'Content-Length', '0'] }],
    ['a Connection header', { headers: ['Host', 'h', 'Connection', 'close'] }],
    ['a second Host', { headers: ['Host', 'h', 'host', 'g'] }],
    ['a header value with a newline', { headers: ['Host', 'h', 'X', 'a\nb'] }],
    ['a header name that is no token', { headers: ['Host', 'h', 'X Y', '1'] }],
    ['no Host first', { headers: ['X', '1'] }],
    ['a path with a space', { path: '/a b' }],
    ['a path not starting with /', { path: 'a' }],
    ['a method that is no token', { method: 'GE T' }],
  ]
  for (const [name, r] of declined) t.equal(requestHead({ ...base, ...r }, false), undefined, `${name} → undici`)
})

t.test('h1 responses: framing by length, chunked, close, HEAD, 204, interim 1xx', async (t) => {
  const cases: [string, string, string, Partial<H1Request>, number, string][] = [
    ['content-length', '/len', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-U: 1\r\n\r\nhello', {}, 200, 'hello'],
    ['chunked with extensions and trailers', '/chunk', 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n', {}, 201, 'abcde'],
    ['HEAD: no body despite a length', '/head', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', { method: 'HEAD' }, 200, ''],
    ['204: no body', '/204', 'HTTP/1.1 204 No Content\r\n\r\n', {}, 204, ''],
    ['no reason phrase; whitespace around values', '/bare', 'HTTP/1.1 200\r\nContent-Length:  2 \r\nX-V:\tv w\t\r\n\r\nok', {}, 200, 'ok'],
    ['100 then 200', '/100', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', {}, 200, 'ok'],
  ]
  const byPath = new Map(cases.map((c) => [c[1], c[2]]))
  const up = await upstream(t, (head, s) => {
    const path = head.split(' ')[1]!
    if (path === '/close') s.end('HTTP/1.1 200 OK\r\n\r\nuntil close')
    else s.write(byPath.get(path) ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
  })
  const pool = poolFor(up.port)
  t.teardown(() => pool.close())
  for (const [name, path, , r, status, body] of cases) {
    const o = await send(pool, { path, ...r })
    t.same([o.status, o.body, o.error], [status, body, undefined], `${name} → ${status} ${JSON.stringify(body)}`)
  }
  t.same((await send(pool, { path: '/bare' })).headers, ['Content-Length', '2', 'X-V', 'v w'], 'values without their surrounding whitespace, names as sent')
  const c = await send(pool, { path: '/close' })
  t.same([c.status, c.body, c.error], [200, 'until close', undefined], 'no length: the body runs until the upstream closes')
  // every response above (but the close-delimited one and HEAD) left its connection reusable
  t.ok(up.sockets.length <= 3, `few connections for ${cases.length + 1} requests (${up.sockets.length})`)
})

t.test('h1 keep-alive: sequential requests share one connection; the maxRequests-th says close', async (t) => {
  const heads: string[] = []
  const up = await upstream(t, (head, s) => {
    heads.push(head)
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  const pool = poolFor(up.port, { maxRequests: 3 })
  t.teardown(() => pool.close())
  for (let i = 0; i < 4; i++) t.equal((await send(pool)).status, 200)
  t.equal(up.sockets.length, 2, 'a new connection after the third request')
  t.match(heads[2]!, /connection: close/, 'the third request announces the close')
  t.match(heads[0]!, /connection: keep-alive/)
})

t.test('h1 failures carry undici codes: refused, headers timeout, closed before answering, bad response, header overflow', async (t) => {
  const closed = await new Promise<number>((r) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port
      s.close(() => r(port))
    })
  })
  t.equal((await send(poolFor(closed))).error, 'ECONNREFUSED', 'nothing listens → ECONNREFUSED')
  const up = await upstream(t, (head, s) => {
    const path = head.split(' ')[1]!
    if (path === '/slow') return
    if (path === '/hangup') return void s.destroy()
    if (path === '/garbage') return void s.write('HTTX/1.1 200 OK\r\n\r\n')
    if (path === '/huge') return void s.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`)
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort')
    s.destroy()
  })
  const pool = poolFor(up.port)
  t.teardown(() => pool.close())
  const cases: [string, string, string][] = [
    ['no answer within the read timeout', '/slow', 'UND_ERR_HEADERS_TIMEOUT'],
    ['closed before any byte', '/hangup', 'UND_ERR_SOCKET'],
    ['not HTTP', '/garbage', 'HPE_INVALID_CONSTANT'],
    ['a header block over 16 KiB', '/huge', 'UND_ERR_HEADERS_OVERFLOW'],
    ['closed in the middle of the body', '/cut', 'UND_ERR_SOCKET'],
  ]
  for (const [name, path, code] of cases) t.equal((await send(pool, { path, headersTimeoutMs: 300 })).error, code, `${name} → ${code}`)
})

t.test('h1: a kept-alive connection the upstream closed under us is retried once on a new one', async (t) => {
  let served = 0
  const up = await upstream(t, (_head, s, n) => {
    served++
    // the second request arrives on the kept connection: hang up without answering, like an idle timeout racing it
    if (n === 1) return void s.destroy()
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  const pool = poolFor(up.port)
  t.teardown(() => pool.close())
  t.equal((await send(pool)).status, 200)
  const second = await send(pool)
  t.same([second.status, second.error], [200, undefined], 'the retry on a new connection answers')
  t.equal(served, 3)
})

t.test('h1: at most `connections` sockets; the rest wait their turn', async (t) => {
  const up = await upstream(t, (_head, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
  const pool = poolFor(up.port, { connections: 2 })
  t.teardown(() => pool.close())
  const all = await Promise.all(Array.from({ length: 6 }, () => send(pool)))
  t.same(all.map((o) => o.status), [200, 200, 200, 200, 200, 200])
  t.equal(up.sockets.length, 2)
})

t.test('h1: an abort from a finished exchange leaves the next one on that connection alone', async (t) => {
  const up = await upstream(t, (_head, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
  const pool = poolFor(up.port)
  t.teardown(() => pool.close())
  let lateAbort: ((err?: Error) => void) | undefined
  await new Promise<void>((resolve, reject) => {
    pool.dispatch({ method: 'GET', path: '/', headers: ['Host', 'h'], headersTimeoutMs: 2000, bodyTimeoutMs: 2000 }, {
      onConnect: (abort) => void (lateAbort = abort),
      onHeaders: () => true,
      onData: () => true,
      onComplete: () => resolve(),
      onError: reject,
    })
  })
  const second = new Promise<Outcome>((resolve) => {
    const out: Outcome = { status: 0, headers: [], body: '', error: undefined }
    pool.dispatch({ method: 'GET', path: '/', headers: ['Host', 'h'], headersTimeoutMs: 2000, bodyTimeoutMs: 2000 }, {
      onConnect: () => lateAbort?.(new Error('the first client went away late')),
      onHeaders: (status) => ((out.status = status), true),
      onData: () => true,
      onComplete: () => resolve(out),
      onError: (err) => resolve({ ...out, error: err.message }),
    })
  })
  t.same(await second, { status: 200, headers: [], body: '', error: undefined })
  t.equal(up.sockets.length, 1, 'one connection served both')
})
