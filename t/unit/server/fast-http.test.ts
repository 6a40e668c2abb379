import * as net from 'node:net'
import t, { type Test } from 'tap'
import { createFastHttp, parseHead } from '../../../core/server/fast-http.js'
import { mark } from '../../lib/eventually.js'

t.test('parseHead: plain bodiless HTTP/1.1 requests are in the subset', async (t) => {
  const h = parseHead('GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Multi:  a b \t\r\nContent-Length: 0\r\nConnection: Keep-Alive')
  t.ok(h)
  t.equal(h!.method, 'GET')
  t.equal(h!.url, '/a/b?x=1')
  t.same(h!.headers, { host: 'example.com', 'x-multi': 'a b', 'content-length': '0', connection: 'Keep-Alive' }, 'names lower-cased, values trimmed of spaces and tabs')
  t.same(h!.rawHeaders, ['Host', 'example.com', 'X-Multi', 'a b', 'Content-Length', '0', 'Connection', 'Keep-Alive'], 'raw names as sent')
  t.same(parseHead('DELETE / HTTP/1.1')?.headers, {}, 'no header at all')
  t.equal(parseHead('GET / HTTP/1.1\r\nX-Latin: caf\xe9')?.headers['x-latin'], 'caf\xe9', 'obs-text bytes pass')
})

t.test('parseHead: everything else is left to Node\'s server', async (t) => {
  const out: [string, string][] = [
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0'],
    ['unknown method', 'BREW / HTTP/1.1'],
    ['lower-case method', 'get / HTTP/1.1'],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1'],
    ['absolute-form', 'GET http://a/ HTTP/1.1'],
    ['asterisk-form', 'OPTIONS * HTTP/1.1'],
    ['space in the target', 'GET /a b HTTP/1.1'],
    ['control byte in the target', 'GET /a\x01 HTTP/1.1'],
    ['extra space', 'GET  / HTTP/1.1'],
    ['version suffix', 'GET / HTTP/1.11'],
    ['a body', 'POST / HTTP/1.1\r\nContent-Length: 5'],
    ['Transfer-Encoding', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked'],
    ['Upgrade', 'GET / HTTP/1.1\r\nUpgrade: websocket'],
    ['Expect', 'GET / HTTP/1.1\r\nExpect: 100-continue'],
    ['Connection: close', 'GET / HTTP/1.1\r\nConnection: close'],
    ['Connection listing names', 'GET / HTTP/1.1\r\nConnection: keep-alive, x-a'],
    ['a repeated header', 'GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2'],
    ['__proto__', 'GET / HTTP/1.1\r\n__proto__: x'],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a'],
    ['no colon', 'GET / HTTP/1.1\r\nHost'],
    ['empty name', 'GET / HTTP/1.1\r\n: a'],
    ['obs-fold', 'GET / HTTP/1.1\r\nX-A: 1\r\n  2'],
    ['bare LF in a value', 'GET / HTTP/1.1\r\nX-A: 1\nX-B: 2'],
    ['NUL in a value', 'GET / HTTP/1.1\r\nX-A: 1\x002'],
    ['DEL in a value', 'GET / HTTP/1.1\r\nX-A: 1\x7f'],
  ]
  for (const [what, text] of out) t.equal(parseHead(text), undefined, what)
})

/** A plain TCP server whose connections go to a fast path with short timeouts; the handler answers after `delayMs`. */
async function timedServer(t: Test, delayMs: number): Promise<number> {
  const fast = createFastHttp({
    handler: (_req, res) => {
      setTimeout(() => res.end('done'), delayMs)
    },
    fallback: (socket) => socket.destroy(),
    headersTimeoutMs: 300,
    keepAliveTimeoutMs: 500,
    maxHeaderSize: 16 * 1024,
  })
  const server = net.createServer({ allowHalfOpen: true }, (socket) => fast.serve(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    fast.cutAll()
    server.close()
  })
  return (server.address() as net.AddressInfo).port
}

/** The bounds a conversation must not beat: ms after connecting or after the first byte back. */
interface Bounds {
  readonly firstByteAfterStart?: number
  readonly closeAfterStart?: number
  readonly closeAfterFirstByte?: number
}

/** Connects, sends `request` (if any), and resolves at close with what came back and which bounds came early. */
function converse(port: number, request: string | undefined, b: Bounds): Promise<{ text: string; early: string[] }> {
  return new Promise((resolve, reject) => {
    const early: string[] = []
    const check = (what: keyof Bounds, passed: (() => boolean) | undefined): void => {
      if (passed && !passed()) early.push(`${what} ${b[what]} ms`)
    }
    const firstByteBound = b.firstByteAfterStart === undefined ? undefined : mark(b.firstByteAfterStart)
    const closeBound = b.closeAfterStart === undefined ? undefined : mark(b.closeAfterStart)
    let afterFirstByte: (() => boolean) | undefined
    let text = ''
    const s = net.connect(port, '127.0.0.1', () => {
      if (request !== undefined) s.write(request)
    })
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      if (text === '') {
        check('firstByteAfterStart', firstByteBound)
        if (b.closeAfterFirstByte !== undefined) afterFirstByte = mark(b.closeAfterFirstByte)
      }
      text += d
    })
    s.on('error', reject)
    s.on('close', () => {
      check('closeAfterStart', closeBound)
      check('closeAfterFirstByte', afterFirstByte)
      resolve({ text, early })
    })
  })
}

t.test('fast path timers, on real sockets: 408 for a silent connection, idle keep-alive closed, a slow response never cut', async (t) => {
  const quick = await timedServer(t, 0)
  const silent = await converse(quick, undefined, { closeAfterStart: 280 })
  t.match(silent.text, /^HTTP\/1\.1 408 Request Timeout\r\n/, 'nothing sent: Node\'s 408, then the connection closes')
  t.same(silent.early, [], 'not before the first-request bound (300 ms)')

  const idle = await converse(quick, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { closeAfterFirstByte: 480 })
  t.match(idle.text, /^HTTP\/1\.1 200 OK\r\n[^]*Keep-Alive: timeout=0\r\n[^]*\r\ndone$/, 'one response, then nothing more (no 408 after a request)')
  t.same(idle.early, [], 'the idle keep-alive connection closes after the keep-alive bound (500 ms after the response)')

  const slow = await timedServer(t, 1200)
  const busy = await converse(slow, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { firstByteAfterStart: 1100 })
  t.match(busy.text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\ndone$/, 'a response slower than both bounds is still delivered whole')
  t.same(busy.early, [], 'it came when the handler answered (1,200 ms), not before')
})
