/**
 * Differential fuzz of the fast path's parser (core/server/fast-http.ts) against Node's own
 * (llhttp, through node:http's server with the gateway's options) on the same bytes. A request
 * smuggling bug is a disagreement between two parsers: so every request the fast path serves must
 * be one Node would have parsed the same way (method, target, headers, no body), ending at the
 * same byte, and what the fast path hands to Node must be what Node would have seen next anyway.
 *
 * Seeded: a failure names its seed and case, and reproduces.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Duplex } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { parseHead } from '../../../core/server/fast-http.js'
import { httpServerOptions } from '../../../core/server/listeners.js'
import { seeded } from '../../lib/random.js'

/** What a parser made of one request. */
interface Parsed {
  method: string
  url: string
  version: string
  rawHeaders: string[]
  headers: Record<string, unknown>
  body: number
}

/** What Node makes of a connection that sends `bytes` then closes: its requests, then its error if any. */
interface NodeView {
  requests: Parsed[]
  error: string | undefined
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')

/**
 * The requests the fast path serves from `bytes` arriving in one read (as core/server/fast-http.ts's
 * Conn does: head by head until one is outside the subset or incomplete), and where it stops.
 */
function fastView(bytes: Buffer): { served: Parsed[]; rest: Buffer } {
  const served: Parsed[] = []
  let buf = bytes
  for (;;) {
    const end = buf.indexOf(CRLFCRLF)
    if (end < 0 || end + 4 > httpServerOptions.maxHeaderSize) return { served, rest: buf }
    const head = parseHead(buf.toString('latin1', 0, end))
    if (head === undefined) return { served, rest: buf }
    served.push({ method: head.method, url: head.url, version: '1.1', rawHeaders: head.rawHeaders, headers: { ...head.headers }, body: 0 })
    buf = buf.subarray(end + 4)
  }
}

const views = new WeakMap<Duplex, NodeView>()
const server = createServer(httpServerOptions, (req: IncomingMessage, res: ServerResponse) => {
  const view = views.get(req.socket as unknown as Duplex)!
  const p: Parsed = { method: req.method ?? '', url: req.url ?? '', version: req.httpVersion, rawHeaders: req.rawHeaders, headers: { ...req.headers }, body: 0 }
  view.requests.push(p)
  req.on('data', (d: Buffer) => (p.body += d.length))
  req.on('end', () => res.end())
})
server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
  const view = views.get(socket)
  if (view) view.error = err.code ?? err.message
  socket.destroy()
})

/** Feeds `bytes` to Node's HTTP server as one connection's whole input. */
async function nodeView(bytes: Buffer): Promise<NodeView> {
  const view: NodeView = { requests: [], error: undefined }
  let closed = false
  const sock = new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      cb()
    },
  })
  sock.on('close', () => (closed = true))
  sock.on('error', () => undefined)
  views.set(sock, view)
  server.emit('connection', sock)
  sock.push(bytes)
  sock.push(null)
  // the parser runs on 'data'; the connection closes once Node is done with the input
  for (let i = 0; i < 50 && !closed; i++) await tick()
  sock.destroy()
  return view
}

/** Pieces of a request head, the smuggling shapes among them. */
const METHODS = ['GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'G ET', 'CONNECT', 'TRACE', 'PRI', 'GET\t', '', 'GE\x00T', 'BREW']
const TARGETS = ['/', '/a/b?x=1', '/%2e%2e/x', '/a#frag', 'http://a.example/x', '*', 'a.example:443', '/a b', '/a\tb', '/\x7f', '/\x80', '/a\x00', '//x', '/?', '', '/a\rb', '/a\nb']
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.11', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1.', 'HTTP/9.9', 'HTTP/1.1\t']
const HEADERS = [
  'Host: a.example',
  'Host: a.example',
  'Host:a.example',
  'Host: a.example ',
  'Host:\ta.example\t',
  'Host : a.example',
  'Host\t: a.example',
  ' Host: a.example',
  '\tX-Folded: a',
  'Content-Length: 0',
  'Content-Length: 0',
  'Content-Length: 5',
  'Content-Length: 00',
  'Content-Length: +0',
  'Content-Length: -0',
  'Content-Length: 0, 0',
  'Content-Length: 0x0',
  'Content-Length:',
  'Content-Length : 5',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding : chunked',
  'Transfer-Encoding:\tchunked',
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding: identity',
  'Transfer_Encoding: chunked',
  'Connection: keep-alive',
  'Connection: Keep-Alive',
  'Connection: close',
  'Connection: upgrade',
  'Connection: keep-alive, Transfer-Encoding',
  'Upgrade: websocket',
  'Expect: 100-continue',
  'X-A: 1',
  'X-A: 2',
  'x-a: 3',
  'X-B: a\rb',
  'X-B: a\nb',
  'X-B: a\x00b',
  'X-B: a\x7fb',
  'X-B: caf\xe9',
  'X-B: \xff\x80',
  'X-B: ',
  'X-B:',
  'X B: 1',
  'X(B): 1',
  'X\x00B: 1',
  'X\xe9B: 1',
  ': empty-name',
  'no-colon',
  '__proto__: x',
  'constructor: x',
  'Cookie: a=1',
  'Set-Cookie: a=1',
  'Authorization: Bearer x',
  'X-Forwarded-For: 1.2.3.4',
  'Proxy-Connection: keep-alive',
  'Keep-Alive: timeout=5',
]
/** headers the fast path serves (most inputs should reach the comparison) */
const PLAIN = ['Host: a.example', 'Host:a.example', 'Host:\ta.example\t', 'Content-Length: 0', 'Connection: keep-alive', 'Connection: Keep-Alive', 'X-A: 1', 'Cookie: a=1', 'Set-Cookie: a=1', 'X-B: caf\xe9', 'X-B: ', 'Authorization: Bearer x', 'Keep-Alive: timeout=5']
const EOLS = ['\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n', ' \r\n', '\n\r']
const BODIES = ['', '', '', 'hello', '5\r\nhello\r\n0\r\n\r\n', '0\r\n\r\n', '5;x=y\r\nhello\r\n0\r\n\r\n', '0x5\r\nhello\r\n0\r\n\r\n', ' 5\r\nhello\r\n0\r\n\r\n', '5\nhello\n0\n\n', 'ffffffffffffffff1\r\nx\r\n0\r\n\r\n', 'GET /smuggled HTTP/1.1\r\nHost: s\r\n\r\n']

/** One generated connection's input: one to three requests, some of them mutated. */
function generate(r: () => number): Buffer {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!
  const shapes = r() < 0.85
  let out = ''
  const n = 1 + Math.floor(r() * 3)
  for (let i = 0; i < n; i++) {
    const eol = (): string => (shapes && r() < 0.15 ? pick(EOLS) : '\r\n')
    const sp = (): string => (shapes && r() < 0.05 ? pick(['  ', '\t', '']) : ' ')
    let head = `${r() < 0.9 ? pick(METHODS.slice(0, 8)) : pick(METHODS)}${sp()}${r() < 0.85 ? pick(TARGETS.slice(0, 4)) : pick(TARGETS)}${sp()}${r() < 0.9 ? 'HTTP/1.1' : pick(VERSIONS)}${eol()}`
    const h = Math.floor(r() * 6)
    for (let j = 0; j < h; j++) head += `${r() < 0.8 ? pick(PLAIN) : pick(HEADERS)}${eol()}`
    if (r() < 0.03) head += `X-Big: ${'x'.repeat(16 * 1024 - 200 + Math.floor(r() * 400))}\r\n`
    out += `${head}${r() < 0.95 ? '\r\n' : eol()}${r() < 0.2 ? pick(BODIES) : ''}`
  }
  const bytes = Buffer.from(out, 'latin1')
  // byte-level mutations: a byte replaced, inserted or removed
  const m = shapes ? 0 : 1 + Math.floor(r() * 3)
  let b = bytes
  for (let i = 0; i < m && b.length > 0; i++) {
    const at = Math.floor(r() * b.length)
    const byte = pick([0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x2c, 0x7f, 0x80, 0xff, 0x41, 0x30])
    const kind = r()
    if (kind < 0.4) b = Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at + 1)])
    else if (kind < 0.8) b = Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)])
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)])
  }
  return b
}

/** Checks one input; returns what disagrees, or undefined. */
async function check(bytes: Buffer): Promise<string | undefined> {
  const fast = fastView(bytes)
  if (fast.served.length === 0) return undefined // all of it goes to Node: nothing to compare
  const whole = await nodeView(bytes)
  for (const [i, f] of fast.served.entries()) {
    const n = whole.requests[i]
    if (n === undefined) return `request ${i}: the fast path serves ${JSON.stringify(f)}; Node refuses the input (${whole.error ?? 'no request'})`
    if (JSON.stringify(n) !== JSON.stringify(f)) return `request ${i}: fast ${JSON.stringify(f)} vs Node ${JSON.stringify(n)}`
  }
  // what the fast path hands over must be what Node would have read next on its own
  const rest = await nodeView(fast.rest)
  const after = { requests: whole.requests.slice(fast.served.length), error: whole.error }
  if (JSON.stringify(after) !== JSON.stringify(rest)) return `after ${fast.served.length} request(s): Node on the whole input goes on with ${JSON.stringify(after)}, Node on the bytes handed over sees ${JSON.stringify(rest)}`
  return undefined
}

t.test('fast-http agrees with Node\'s parser on every request it serves (seeded fuzz)', async (t) => {
  const seed = Number(process.env.FAST_HTTP_FUZZ_SEED ?? 0x5eed)
  const cases = Number(process.env.FAST_HTTP_FUZZ_CASES ?? 4000)
  const r = seeded(seed)
  const bad: string[] = []
  let served = 0
  for (let i = 0; i < cases; i++) {
    const bytes = generate(r)
    if (fastView(bytes).served.length > 0) served++
    const d = await check(bytes)
    if (d !== undefined && bad.length < 10) bad.push(`seed ${seed} case ${i} ${JSON.stringify(bytes.toString('latin1'))}: ${d}`)
  }
  t.ok(served > cases / 4, `the fast path served part of the inputs (${served} of ${cases}), so the comparison ran`)
  t.ok(served < cases, 'and handed others to Node')
  if (bad.length > 0) console.error(bad.join('\n'))
  t.same(bad, [], 'no disagreement')
})

t.test('fast-http agrees with Node on the known smuggling shapes', async (t) => {
  const shapes = [
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello',
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello',
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n',
    'GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n',
    `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(16 * 1024 - 40)}\r\n\r\n`,
  ]
  for (const s of shapes) t.equal(await check(Buffer.from(s, 'latin1')), undefined, JSON.stringify(s.slice(0, 80)))
})

t.teardown(() => server.close())
