/**
 * One test per Node.js internal the gateway relies on (core/runtime/node-internals.ts). When a
 * runtime upgrade changes one, the failure names it and what depends on it.
 */
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { spawn } from 'node:child_process'
import { Duplex } from 'node:stream'
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { connect as h2Connect, createServer as createH2Server } from 'node:http2'
import { exposeGc, handleQueuedBytes, interceptBindingErrors, nodeConnectionListener, pinTickShape, pinnedTickKeys, readInto, resetStream, responseOnSocket, stopReading } from '../../../core/runtime/node-internals.js'
import { issue, makeCa } from '../../lib/certs.js'
import { BalanceTable, TABLE_FD } from '../../../core/server/worker-balance.js'
import { eventually } from '../../lib/eventually.js'

/** A Duplex that records what is written to it. */
function sink(): { d: Duplex; written: () => string } {
  const chunks: Buffer[] = []
  const d = new Duplex({
    read() {},
    write(c: Buffer, _e, cb) {
      chunks.push(c)
      cb()
    },
  })
  return { d, written: () => Buffer.concat(chunks).toString('latin1') }
}

t.test("http.Server's own 'connection' listener (core/server/listeners.ts puts the fast path in front of it)", async (t) => {
  let got: IncomingMessage | undefined
  const server = createServer((req, res) => {
    got = req
    res.end('ok')
  })
  const own = nodeConnectionListener(server)
  t.type(own, 'function', "Node's http.Server holds exactly one 'connection' listener (if not: the fast path cannot hand it connections)")
  const { d, written } = sink()
  own?.call(server, d as unknown as Socket)
  d.push('GET /x HTTP/1.1\r\nHost: a\r\n\r\n')
  await eventually(() => written(), (w) => w.includes('\r\n\r\nok') || w.includes('ok'), { timeoutMs: 3000, describe: () => 'the listener, called on a socket, did not serve its request' })
  t.equal(got?.url, '/x', 'the listener parses and serves the socket it is called with')
  d.destroy()
  server.close()
})

t.test('ServerResponse + assignSocket (core/pipeline/handle.ts answers a refused upgrade with it)', async (t) => {
  const server = createServer()
  const upgraded = new Promise<IncomingMessage>((resolve) => server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const res = responseOnSocket(req, socket)
    res.on('finish', () => socket.end())
    res.writeHead(403, { 'content-type': 'text/plain' }).end('no')
    resolve(req)
  }))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const c = connect((server.address() as AddressInfo).port, '127.0.0.1')
  let text = ''
  c.setEncoding('latin1').on('data', (d: string) => (text += d))
  c.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
  await upgraded
  await new Promise<void>((r) => c.once('close', () => r()))
  t.match(text, /^HTTP\/1\.1 403 Forbidden\r\n[^]*[Cc]onnection: close\r\n[^]*\r\n\r\n(?:2\r\nno\r\n0\r\n\r\n|no)$/, 'a ServerResponse bound with assignSocket writes a whole answer on the upgrade socket (if not: a refused upgrade gets no answer)')
})

t.test("a socket handle's readStop() (core/server/worker-balance.ts stops a handed-over connection reading)", async (t) => {
  const server = createNetServer()
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const c = connect((server.address() as AddressInfo).port, '127.0.0.1')
  const s = await accepted
  t.equal(stopReading(s), undefined, "a net.Socket's _handle has readStop() (if not: a handed-over connection can lose the client's next flight)")
  c.destroy()
  s.destroy()
})

t.test('--expose-gc at run time (core/ops/heap.ts frees listing pages while they are young)', async (t) => {
  const gc = exposeGc()
  t.type(gc, 'function', `V8's gc is reachable at run time (if not: ${typeof gc === 'string' ? gc : ''}; large loads keep their buffers longer)`)
  if (typeof gc === 'function') t.doesNotThrow(() => gc({ type: 'minor' }), "gc({ type: 'minor' }) runs a young collection")
})

t.test('pread/pwrite on an unlinked file inherited as fd 4 (the primary and workers share the balance table)', async (t) => {
  const table = new BalanceTable(2)
  t.teardown(() => table.close())
  const stdio: (string | number)[] = ['ignore', 'inherit', 'inherit', 'ignore']
  stdio[TABLE_FD] = table.fd
  const code = `const { writeSync } = require('node:fs'); const b = Buffer.alloc(4); b.writeInt32LE(7, 0); writeSync(${TABLE_FD}, b, 0, 4, 20)`
  const child = spawn(process.execPath, ['-e', code], { stdio: stdio as never })
  await new Promise<void>((r) => child.once('exit', () => r()))
  const buf = Buffer.alloc(40)
  const { readSync } = await import('node:fs')
  readSync(table.fd, buf, 0, 40, 0)
  t.equal(buf.readInt32LE(20), 7, "a child's pwrite at an offset of the inherited unlinked file is seen by the parent's pread (if not: the workers' connection counts do not reach the primary)")
})

t.test("a TLS socket reads into a buffer of ours (kBuffer/kBufferCb + useUserBuffer: core/server/fast-http.ts)", async (t) => {
  const ca = makeCa('Internals CA')
  const leaf = issue(ca, { cn: 'a.test', sans: ['a.test'] })
  const buf = Buffer.alloc(1024)
  const reads: string[] = []
  const pushed: string[] = []
  let sawData = 0
  const done = new Promise<void>((resolve) => {
    const server = createTlsServer({ cert: leaf.cert, key: leaf.key }, (s: TLSSocket) => {
      s.on('data', (d: Buffer) => {
        sawData++
        pushed.push(d.toString('latin1'))
        if (pushed.length === 1) s.end('bye')
      })
      s.on('close', () => {
        server.close()
        resolve()
      })
      const set = readInto(s, buf, (n, b) => {
        t.equal(b, buf, 'each read lands in the buffer given')
        reads.push(b.toString('latin1', 0, n))
        // the second read goes back through the stream, as a socket given up does
        if (typeof set === 'function') set((m, c) => s.push(Buffer.from(c.subarray(0, m))))
      })
      t.type(set, 'function', `a TLS server socket takes a read buffer of ours (if not: ${typeof set === 'string' ? set : ''}; Node 24 backs every read of the fast path with 64 KiB)`)
      t.type(readInto(s, buf, () => undefined), 'string', 'a second readInto on the same socket is refused')
    })
    server.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, rejectUnauthorized: false }, () => {
        c.write('first')
        // the second write only once the first was read, so that the two are two reads
        const wait = setInterval(() => {
          if (reads.length === 0) return
          clearInterval(wait)
          c.write('second')
        }, 5)
      })
      c.on('data', () => undefined)
      c.on('error', () => undefined)
    })
  })
  await done
  t.same(reads, ['first'], 'the first read arrives through the callback, with no data event')
  t.same(pushed, ['second'], 'after the callback changed, a read pushed through the stream arrives as data')
  t.equal(sawData, 1, 'one data event: the pushed read')
})

t.test("HTTP/2 binding errors reach the session's own destroy (core/server/h2.ts ends a flooding session itself, GOAWAY first)", async (t) => {
  const server = createH2Server()
  const taken: { code: string; errno: number }[] = []
  let destroyLater: ((error?: Error | null, code?: number) => void) | undefined
  let closed = false
  server.on('session', (session) => {
    session.on('error', () => undefined)
    session.on('close', () => (closed = true))
    destroyLater = interceptBindingErrors(session, (err) => {
      taken.push({ code: err.code, errno: err.errno })
      return true
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const c = connect((server.address() as AddressInfo).port, '127.0.0.1')
  c.on('error', () => undefined)
  c.resume()
  t.teardown(() => c.destroy())
  await new Promise<void>((r) => c.once('connect', () => r()))
  t.equal(handleQueuedBytes(c), 0, "a socket's handle reports the bytes it holds back (writeQueueSize), 0 when idle")
  const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(9)
    h.writeUIntBE(payload.length, 0, 3)
    h[3] = type
    h[4] = flags
    h.writeUInt32BE(id, 5)
    return Buffer.concat([h, payload])
  }
  // the preface, empty SETTINGS, then 20,000 PINGs: nghttp2 reports a flood (-904)
  const pings: Buffer[] = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(4, 0, 0, Buffer.alloc(0))]
  for (let i = 0; i < 20_000; i++) pings.push(frame(6, 0, 0, Buffer.alloc(8)))
  c.write(Buffer.concat(pings))
  await eventually(() => taken.length, (n) => n > 0, { timeoutMs: 5000, describe: () => "Node destroyed the session without calling its own destroy: the flood's GOAWAY cannot be sent first" })
  t.match(taken[0], { code: 'ERR_HTTP2_ERROR', errno: -904 }, 'the binding error names the flood (NGHTTP2_ERR_FLOODED)')
  t.type(destroyLater, 'function', "Node's own destroy is handed back")
  t.notOk(closed, 'the session is still open: Node left it to the caller')
  destroyLater?.(null, 11)
  await eventually(() => closed, (x) => x, { timeoutMs: 5000, describe: () => "Node's own destroy, called later, did not close the session" })
  t.pass("Node's own destroy, called later, closes the session")
})

t.test("an HTTP/2 stream reset with a code and nothing before it (the kHandle's rstStream: core/proxy/grpc.ts passes an upstream's reset on)", async (t) => {
  const server = createH2Server()
  let why: string | undefined = 'not called'
  server.on('stream', (s) => {
    s.on('error', () => undefined)
    s.respond({ ':status': 200 })
    setImmediate(() => (why = resetStream(s, 7)))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const client = h2Connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => {
    client.close()
    server.close()
  })
  const req = client.request({ ':path': '/', ':method': 'POST' }, { endStream: true })
  req.on('error', () => undefined)
  let ended = false
  req.on('end', () => (ended = true))
  req.resume()
  await new Promise<void>((r) => req.once('close', () => r()))
  t.equal(why, undefined, `the stream has a kHandle with rstStream() (if not: ${why}; upstream resets reach gRPC clients as INTERNAL_ERROR)`)
  t.equal(req.rstCode, 7, 'the client sees RST_STREAM with the code given')
  t.notOk(ended, 'and no END_STREAM before it')
})

t.test("a nextTick queue entry is the running resource of its callback (core/main.ts keeps one so V8 keeps nextTick's hidden classes)", async (t) => {
  pinTickShape()
  await new Promise<void>((r) => process.nextTick(r))
  const keys = pinnedTickKeys()
  t.ok(keys, 'a TickObject was kept (if not: executionAsyncResource() inside a nextTick callback no longer returns its queue entry)')
  t.same(keys, ['async_id_symbol', 'trigger_async_id_symbol', 'kAsyncContextFrame', 'callback', 'args'], "the entry has nextTick's literal's keys, in order (if not: Node changed the TickObject and the pin keeps another shape)")
})
