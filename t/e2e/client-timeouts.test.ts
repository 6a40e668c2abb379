import t from 'tap'
import { createServer } from 'node:http'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { Test } from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { rawExchange } from '../lib/raw-conn.js'

const SNI = 'slow.test'
const BIG = 48 * 1024 * 1024
const BIG_BODY = Buffer.alloc(BIG, 'b')

/**
 * How the upstream saw one request (by its x-id): 'complete' once its response was handed whole
 * to the kernel, 'aborted' when the gateway closed the upstream connection before that, 'dropped'
 * when the gateway closed the upstream connection after it (a pooled connection stays open).
 */
type Seen = 'open' | 'complete' | 'aborted' | 'dropped'

/**
 * The upstream: POST /upload reads the body and answers its byte count; GET /big answers BIG
 * bytes. Each request is recorded under its x-id header.
 */
async function startUpstream(t: Test): Promise<{ hostPort: string; seen: Map<string, Seen> }> {
  const seen = new Map<string, Seen>()
  const server = createServer((req, res) => {
    const id = String(req.headers['x-id'] ?? '?')
    seen.set(id, 'open')
    res.on('close', () => {
      if (seen.get(id) === 'open') seen.set(id, res.writableFinished ? 'complete' : 'aborted')
    })
    req.socket.once('close', () => {
      if (seen.get(id) === 'complete') seen.set(id, 'dropped')
    })
    if (req.url === '/big') return void res.end((res.writeHead(200, { 'content-length': BIG }), BIG_BODY))
    let n = 0
    req.on('data', (b: Buffer) => (n += b.length))
    req.on('end', () => res.end(String(n)))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

const pki = makePki({ server: [SNI] })

t.test('client timeouts: stalled bodies and clients that do not read are cut, steady slow ones are not', async (t) => {
  const upstream = await startUpstream(t)
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: 1, config: { nginx_config: { http: { client_body_timeout: '1s', send_timeout: '1s' } } } })
  const admin = adminOf(gw)
  t.equal((await admin.put('ssls/slow', { sni: SNI, cert: pki.server.cert, key: pki.server.key })).status, 201, 'ssl stored')
  t.equal((await admin.put('routes/all', { uri: '/*', upstream: { type: 'roundrobin', nodes: { [upstream.hostPort]: 1 } } })).status, 201, 'route stored')
  await eventually(() => rawExchange({ port: gw.https, servername: SNI, timeoutMs: 3000 }, 'GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
    (r) => r.handshake === true && r.bytes.toString('latin1').startsWith('HTTP/1.1 200'), { timeoutMs: 20_000 })

  for (const [name, servername] of [['plain HTTP', undefined], ['TLS', SNI]] as const) {
    t.test(`${name}: a body that stops after 10 of 1000 bytes gets 408 after client_body_timeout (1s), the connection closes and the upstream request is aborted`, async (t) => {
      const id = `stall-${name}`
      const r = await rawExchange({ port: servername ? gw.https : gw.http, ...(servername ? { servername } : {}), timeoutMs: 10_000 },
        `POST /upload HTTP/1.1\r\nHost: a\r\nx-id: ${id}\r\nContent-Length: 1000\r\n\r\n0123456789`)
      const text = r.bytes.toString('latin1')
      t.match(text, /^HTTP\/1\.1 408 /, '408')
      t.match(text, /connection: close/i, 'Connection: close')
      t.match(text, /"error_msg":"client body timeout"/, 'the error names the timeout')
      t.ok(r.closed, 'the gateway closed the connection')
      t.ok(r.ms >= 950 && r.ms < 6000, `cut after about 1 s (${r.ms} ms)`)
      await eventually(async () => upstream.seen.get(id), (s) => s === 'aborted', { timeoutMs: 5000, describe: () => `upstream saw ${upstream.seen.get(id)}` })
    })
  }

  t.test('a body sent slowly but steadily (10 bytes every 300 ms, 3 s in all) is proxied whole', async (t) => {
    const s = netConnect(gw.http, '127.0.0.1')
    const got: Buffer[] = []
    s.on('data', (b: Buffer) => got.push(b))
    await new Promise<void>((r) => s.once('connect', () => r()))
    s.write('POST /upload HTTP/1.1\r\nHost: a\r\nx-id: steady\r\nContent-Length: 100\r\nConnection: close\r\n\r\n')
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 300))
      s.write('0123456789')
    }
    await new Promise<void>((r) => s.once('close', () => r()))
    const text = Buffer.concat(got).toString('latin1')
    t.match(text, /^HTTP\/1\.1 200 /, '200')
    t.ok(text.endsWith('\r\n\r\n100'), 'the upstream got all 100 bytes')
    t.equal(upstream.seen.get('steady'), 'complete', 'the upstream exchange completed')
  })

  t.test(`a client that reads none of a ${BIG / 2 ** 20} MiB response is disconnected after send_timeout (1s) and the upstream request is aborted`, async (t) => {
    const s: Socket = tlsConnect({ host: '127.0.0.1', port: gw.https, servername: SNI, rejectUnauthorized: false })
    await new Promise<void>((r) => s.once('secureConnect', () => r()))
    s.write('GET /big HTTP/1.1\r\nHost: a\r\nx-id: deaf\r\n\r\n')
    s.pause()
    const since = Date.now()
    // the kernel's loopback buffers (tens of MiB) may hold the whole response: the upstream may
    // have handed over its last byte already, but its connection is closed, never pooled
    await eventually(async () => upstream.seen.get('deaf'), (v) => v === 'aborted' || v === 'dropped', { timeoutMs: 15_000, describe: () => `upstream saw ${upstream.seen.get('deaf')}` })
    t.ok(Date.now() - since >= 900, `the upstream connection was closed after ${Date.now() - since} ms`)
    let n = 0
    s.on('data', (b: Buffer) => (n += b.length))
    s.on('error', () => undefined)
    const closed = new Promise<void>((r) => s.once('close', () => r()))
    s.resume()
    await closed
    t.ok(n < BIG, `the connection closed before the whole response (${n} of ${BIG} bytes)`)
  })

  t.test('a client that reads at once gets the whole response', async (t) => {
    const r = await rawExchange({ port: gw.http, timeoutMs: 15_000 }, 'GET /big HTTP/1.1\r\nHost: a\r\nx-id: reader\r\nConnection: close\r\n\r\n')
    const head = r.bytes.indexOf('\r\n\r\n')
    t.match(r.bytes.subarray(0, head).toString('latin1'), /^HTTP\/1\.1 200 /, '200')
    t.equal(r.bytes.length - head - 4, BIG, 'every byte arrived')
    t.equal(upstream.seen.get('reader'), 'complete', 'the upstream exchange completed')
  })
})
