import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { childrenOf, treeRss } from '../lib/proc-tree.js'
import { h2Connect, h2Request } from '../lib/h2-client.js'
import { FLAG, FRAME, SETTING, frame, indexed, literal, literalIndexed, ping, rawH2, requestBlock, rstStream, settings, type RawH2 } from '../lib/h2-frames.js'

const PROTOCOL_ERROR = 0x1
const INTERNAL_ERROR = 0x2
const FRAME_SIZE_ERROR = 0x6
const COMPRESSION_ERROR = 0x9
const ENHANCE_YOUR_CALM = 0xb
const codeName = (code: number): string => ({ 1: 'PROTOCOL_ERROR', 2: 'INTERNAL_ERROR', 6: 'FRAME_SIZE_ERROR', 9: 'COMPRESSION_ERROR', 11: 'ENHANCE_YOUR_CALM' })[code] ?? String(code)

/** Waits until the server sent GOAWAY and closed the connection; returns the GOAWAY's code. */
async function goneAway(c: RawH2): Promise<number> {
  await eventually(async () => c.goawayCode() !== undefined && c.closed, (x) => x, { timeoutMs: 15_000, describe: () => `frames: ${c.frames.map((f) => f.type).join(',').slice(-200)} closed: ${c.closed}` })
  return c.goawayCode()!
}

// One etcd, one gateway with two workers: each abuse case over real TLS (and h2c) gets GOAWAY and
// a close, while a well-behaved HTTP/2 client on its own connection is served throughout.
t.test('HTTP/2 abuse gets GOAWAY and a close, never harm to other connections', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  // an upstream with a 4 MiB answer, for a client that holds its windows shut
  const big = Buffer.alloc(4 * 1024 * 1024, 0x61)
  const bigServer = createServer((_req, res) => res.end(big))
  await new Promise<void>((r) => bigServer.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => { bigServer.closeAllConnections(); bigServer.close(() => r()) }))
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2, config: { nginx_config: { http: { send_timeout: '2s' } } } })
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['abuse.test']] })
  const put = async (path: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(path, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
  }
  await put('ssls/abuse', { sni: 'abuse.test', cert: pki.server.cert, key: pki.server.key })
  await put('routes/big', { uri: '/big', upstream: { type: 'roundrobin', nodes: { [`127.0.0.1:${(bigServer.address() as AddressInfo).port}`]: 1 } } })
  await put('routes/all', { uri: '/*', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })
  const good = await h2Connect(t, { port: gw.https, servername: 'abuse.test' })
  await eventually(() => h2Request(good, { ':path': '/ready', ':authority': 'abuse.test' }).then((r) => r.status), (s) => s === 200, { describe: () => gw.output() })
  const workers = childrenOf(gw.pid).sort()
  t.equal(workers.length, 2, 'two workers')
  const rssBefore = treeRss(gw.pid).totalKiB
  let rssPeak = rssBefore
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, treeRss(gw.pid).totalKiB)
  }, 50)
  t.teardown(() => clearInterval(sampler))
  /** After a case: the well-behaved connection (its request sent during the attack included) is served. */
  const served = async (t: Test, during: Promise<{ status: number }>): Promise<void> => {
    t.equal((await during).status, 200, 'a request of the well-behaved connection made during the attack is served')
    for (let i = 0; i < 3; i++) t.equal((await h2Request(good, { ':path': '/good', ':authority': 'abuse.test' })).status, 200)
    t.notOk(good.closed || good.destroyed, 'the well-behaved connection is still open')
  }
  /**
   * Runs one case over h2c and over TLS at once, a well-behaved request in flight meanwhile: each
   * connection gets GOAWAY with `code`, and then the server closes it.
   */
  const abuse = async (t: Test, o: { settings?: [number, number][]; code: number }, attack: (c: RawH2) => void): Promise<void> => {
    const during = h2Request(good, { ':path': '/during', ':authority': 'abuse.test' })
    await Promise.all([false, true].map(async (tls) => {
      const c = await rawH2(tls ? gw.https : gw.http, { ...(tls ? { servername: 'abuse.test' } : {}), ...(o.settings ? { settings: o.settings } : {}) })
      attack(c)
      t.equal(await goneAway(c), o.code, `${tls ? 'TLS' : 'h2c'}: GOAWAY ${codeName(o.code)}, then the server closed the connection`)
    }))
    await served(t, during)
  }

  t.test('more than 128 concurrent streams', async (t) => {
    // 400 requests that stay open (no END_STREAM): past 128 they are refused (REFUSED_STREAM),
    // and a client that goes on opening them loses the connection
    await abuse(t, { code: ENHANCE_YOUR_CALM }, (c) => {
      const out: Buffer[] = []
      for (let i = 0; i < 400; i++) out.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 2 * i + 1, requestBlock('/open', 'abuse.test', 'https', 'POST')))
      c.write(Buffer.concat(out))
    })
  })

  t.test('rapid reset (CVE-2023-44487)', async (t) => {
    // nghttp2's own gate (1.57+, streamResetBurst/Rate) queues this GOAWAY from inside its parser,
    // before any of the streams reaches JavaScript, and its code is INTERNAL_ERROR
    await abuse(t, { code: INTERNAL_ERROR }, (c) => {
      const out: Buffer[] = []
      for (let i = 0; i < 5000; i++) out.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, requestBlock('/reset', 'abuse.test')), rstStream(2 * i + 1))
      c.write(Buffer.concat(out))
    })
  })

  t.test('CONTINUATION flood (CVE-2024-27316 class)', async (t) => {
    await abuse(t, { code: ENHANCE_YOUR_CALM }, (c) => {
      c.write(frame(FRAME.HEADERS, 0, 1, requestBlock('/cont', 'abuse.test')))
      const filler = literal('x-filler', 'y'.repeat(100))
      const out: Buffer[] = []
      for (let i = 0; i < 10_000; i++) out.push(frame(FRAME.CONTINUATION, 0, 1, filler))
      c.write(Buffer.concat(out))
    })
  })

  t.test('HPACK bomb: one large dynamic-table entry referenced thousands of times', async (t) => {
    // the block decodes, but expands to 32 MB past maxHeaderListSize (32 KiB): Node resets the
    // stream, decoding no further, and the gateway ends the connection (ENHANCE_YOUR_CALM)
    await abuse(t, { code: ENHANCE_YOUR_CALM }, (c) => {
      const block = [requestBlock('/bomb', 'abuse.test'), literalIndexed('x-bomb', 'z'.repeat(4000))]
      for (let i = 0; i < 8000; i++) block.push(indexed(62))
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat(block)))
    })
    t.notOk(echo.seen.some((e) => e.url === '/bomb'), 'nothing of it reached the upstream')
  })

  t.test('windows held shut with a response pending (send_timeout 2 s)', async (t) => {
    await abuse(t, { settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]], code: ENHANCE_YOUR_CALM }, (c) => {
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('/big', 'abuse.test')))
    })
  })

  t.test('settings flood', async (t) => {
    await abuse(t, { code: ENHANCE_YOUR_CALM }, (c) => {
      // the client reads nothing meanwhile, so the server's ACKs pile up
      c.socket.pause()
      const out: Buffer[] = []
      for (let i = 0; i < 20_000; i++) out.push(settings([[SETTING.HEADER_TABLE_SIZE, 4096]]))
      c.write(Buffer.concat(out))
      c.socket.resume()
    })
  })

  t.test('ping flood', async (t) => {
    await abuse(t, { code: ENHANCE_YOUR_CALM }, (c) => {
      c.socket.pause()
      const out: Buffer[] = []
      for (let i = 0; i < 20_000; i++) out.push(ping())
      c.write(Buffer.concat(out))
      c.socket.resume()
    })
  })

  t.test('connection errors get GOAWAY with the code RFC 9113 names, then a close', async (t) => {
    t.test('a header block that does not decode: COMPRESSION_ERROR (§4.3)', async (t) => {
      // index 300: past the static table and the (empty) dynamic one
      await abuse(t, { code: COMPRESSION_ERROR }, (c) => c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([requestBlock('/bad', 'abuse.test'), indexed(300)]))))
    })
    t.test('a frame past SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR (§4.2)', async (t) => {
      await abuse(t, { code: FRAME_SIZE_ERROR }, (c) => c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, Buffer.concat([requestBlock('/big-frame', 'abuse.test'), literal('x-pad', 'p'.repeat(20_000))]))))
    })
    t.test('DATA on stream 0: PROTOCOL_ERROR (§6.1)', async (t) => {
      await abuse(t, { code: PROTOCOL_ERROR }, (c) => c.write(frame(FRAME.DATA, 0, 0, Buffer.from('x'))))
    })
  })

  t.test('after every case: the workers are the same processes, memory stayed bounded', async (t) => {
    clearInterval(sampler)
    t.same(childrenOf(gw.pid).sort(), workers, 'no worker died')
    const grewMiB = (rssPeak - rssBefore) / 1024
    t.comment(`process group RSS: ${(rssBefore / 1024).toFixed(0)} MiB before, peak ${(rssPeak / 1024).toFixed(0)} MiB (+${grewMiB.toFixed(0)} MiB)`)
    t.ok(grewMiB < 128, `the process group's RSS grew by less than 128 MiB across the abuse run (+${grewMiB.toFixed(0)} MiB)`)
  })
})
