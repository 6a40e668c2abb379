import t from 'tap'
import { readFileSync } from 'node:fs'
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { connect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { ALERT_INTERNAL_ERROR, ALERT_UNRECOGNIZED_NAME, startTlsFront, type HandshakeResult } from '../../../core/server/tls-front.js'
import { createHttpServer } from '../../../core/server/listeners.js'
import { createPolicyCache, type SslValue } from '../../../core/tls/contexts.js'
import { firstSecrets } from '../../../core/tls/ticket-secrets.js'
import { tlsFactsOf } from '../../../core/tls/facts.js'
import { deriveSni } from '../../../core/generation/derive.js'
import { emptyGeneration, type Generation } from '../../../core/generation/generation.js'
import { emptySnapshot, type Entry, type Snapshot } from '../../../core/config/snapshot.js'
import type { LocalConfig } from '../../../core/config/local-schema.js'
import { issue, makeCa } from '../../lib/certs.js'
import { freePort } from '../../lib/ports.js'
import { mark } from '../../lib/eventually.js'

// The TLS front in-process: hostile first bytes, the hand-off, and what it reports.
const ca = makeCa('Front CA')
const leaf = issue(ca, { cn: 'a.test', sans: ['a.test'] })
const alice = issue(ca, { cn: 'alice' })
const inter = issue(ca, { cn: 'Front Intermediate', ca: true })
const carol = issue(inter, { cn: 'carol' })
const entry = (id: string, v: Partial<SslValue>): Entry<SslValue> =>
  Object.freeze({ id, modRevision: '7', createRevision: '7', value: Object.freeze({ id, type: 'server', status: 1, cert: leaf.cert, key: leaf.key, ...v } as SslValue) })
const ssls = [
  entry('open', { sni: 'a.test' }),
  entry('strict', { sni: 'strict.test', client: { ca: ca.cert, depth: 0 } }),
  entry('bad', { sni: 'bad.test', key: 'bm90IGEga2V5' }),
]
const buildErrors: string[] = []
const snapshot: Snapshot = { revision: '7', objects: { ...emptySnapshot().objects, ssls: new Map(ssls.map((e) => [e.id, e])) } }
/** A generation with its own policy cache: a policy server belongs to one front (one per worker). */
const generation = (): Generation => {
  const policies = createPolicyCache({ keyring: ['qeddd145sfvddff3'], tickets: () => firstSecrets(Buffer.alloc(48, 3)), onBuildError: (id) => buildErrors.push(id) })
  return { ...emptyGeneration(), snapshot, sni: deriveSni(snapshot, policies) }
}

const events: string[] = []
const http = createHttpServer((req, res) => {
  const f = tlsFactsOf(req.socket)
  res.end(JSON.stringify({ sni: f?.sni ?? null, sslId: f?.sslId, verify: f?.verify, serial: f?.clientCert?.serial ?? null }))
})
const quiet = { info: () => undefined, debug: () => undefined } as never

async function front(o: { fallback?: string; helloTimeoutMs?: number } = {}): Promise<{ port: number; close(): void }> {
  const port = await freePort()
  const config = { apisix: { ssl: { listen: [{ ip: '127.0.0.1', port }], fallback_sni: o.fallback ?? '' } } } as unknown as LocalConfig
  const gen = generation()
  const f = await startTlsFront({
    config,
    httpServer: http,
    current: () => gen,
    log: quiet,
    observe: {
      handshake: (id: string, sni: string, r: HandshakeResult) => events.push(`handshake ${id} ${sni} ${r}`),
      clientCertFailure: (id: string, sni: string, reason: string) => events.push(`failure ${id} ${sni} ${reason}`),
    },
    ...(o.helloTimeoutMs ? { helloTimeoutMs: o.helloTimeoutMs } : {}),
  })
  return { port, close: () => f.close() }
}

/** Raw bytes back from the front for `send`, until it closes. */
function raw(port: number, send: Buffer | string | undefined): Promise<{ bytes: Buffer }> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => {
      if (send !== undefined) s.write(send)
    })
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', () => undefined)
    s.on('close', () => resolve({ bytes: Buffer.concat(chunks) }))
  })
}

/** One HTTPS GET through the front; `relay` dribbles the client's bytes one at a time. */
function get(port: number, o: { servername?: string; cert?: string; key?: string; session?: Buffer; maxVersion?: 'TLSv1.2' } = {}): Promise<{ ok: boolean; body?: any; error?: string; session?: Buffer; reused?: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(o.servername ? { servername: o.servername } : {}), ...(o.cert ? { cert: o.cert, key: o.key } : {}), ...(o.session ? { session: o.session } : {}), ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}) })
    let text = ''
    let session: Buffer | undefined
    let reused = false
    s.on('session', (b: Buffer) => (session = b))
    s.on('secureConnect', () => {
      reused = s.isSessionReused()
      s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    })
    s.on('data', (d: Buffer) => (text += d.toString()))
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.code ?? e.message }))
    s.on('close', () => {
      const body = text.slice(text.indexOf('\r\n\r\n') + 4)
      const ok = text.startsWith('HTTP/1.1 200')
      resolve({ ok, ...(ok ? { body: JSON.parse(body) } : { error: 'closed' }), ...(session ? { session } : {}), reused })
    })
  })
}

/** A relay that forwards the client's bytes to `port` one byte per tick. */
async function dribble(port: number): Promise<{ port: number; close(): void }> {
  const socks = new Set<Socket>()
  const server = createNetServer((a) => {
    const b = netConnect(port, '127.0.0.1')
    socks.add(a).add(b)
    a.on('data', (d: Buffer) => {
      a.pause()
      let i = 0
      const next = (): void => {
        if (i >= d.length) return void a.resume()
        b.write(d.subarray(i, ++i))
        setImmediate(next)
      }
      next()
    })
    b.pipe(a)
    a.on('error', () => b.destroy())
    b.on('error', () => a.destroy())
    a.on('close', () => b.destroy())
    b.on('close', () => a.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { port: (server.address() as AddressInfo).port, close: () => (server.close(), socks.forEach((s) => s.destroy())) }
}

t.test('tls front: a handshake goes to its object and the request sees the facts', async (t) => {
  const f = await front()
  t.teardown(f.close)
  events.length = 0
  const r = await get(f.port, { servername: 'A.test.' })
  t.same(r.body, { sni: 'a.test', sslId: 'open', verify: 'NONE', serial: null })
  t.same(events, ['handshake open a.test ok'])
})

t.test('tls front: a ClientHello sent one byte at a time is read whole', async (t) => {
  const f = await front()
  const d = await dribble(f.port)
  t.teardown(() => (d.close(), f.close()))
  t.equal((await get(d.port, { servername: 'a.test' })).body?.sslId, 'open')
})

t.test('tls front: hostile first bytes', async (t) => {
  const f = await front({ helloTimeoutMs: 300 })
  t.teardown(f.close)
  const unknown = readFileSync(new URL('../../fixtures/tls/openssl-sni-alpn.bin', import.meta.url))
  const noSni = readFileSync(new URL('../../fixtures/tls/openssl-no-sni.bin', import.meta.url))
  t.same((await raw(f.port, unknown)).bytes, ALERT_UNRECOGNIZED_NAME, 'unknown SNI → unrecognized_name alert, nothing else')
  t.same((await raw(f.port, noSni)).bytes, ALERT_UNRECOGNIZED_NAME, 'no SNI and no fallback_sni → the same alert')
  t.same((await raw(f.port, Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]))).bytes.length, 0, 'a bad record is closed without a byte')
  t.same((await raw(f.port, Buffer.from('\x00\x01garbage'))).bytes.length, 0, 'garbage is closed without a byte')
  t.match((await raw(f.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).bytes.toString(), /^HTTP\/1\.1 400 [^]*"error_msg":"The plain HTTP request was sent to HTTPS port"/, 'plain HTTP → 400 JSON')
  const helloBound = mark(250)
  const silent = await raw(f.port, undefined)
  t.ok(silent.bytes.length === 0 && helloBound(), 'a silent client is closed after the hello timeout (300 ms), not before')
  const half = await raw(f.port, unknown.subarray(0, 40))
  t.equal(half.bytes.length, 0, 'a partial hello is closed after the timeout too')
  t.same((await raw(f.port, Buffer.alloc(40_000, 0x16))).bytes.length, 0, 'an oversized first flight is closed')
})

t.test('tls front: fallback_sni serves clients that send no SNI', async (t) => {
  const f = await front({ fallback: 'A.TEST' })
  t.teardown(f.close)
  events.length = 0
  const r = await get(f.port)
  t.same(r.body, { sni: null, sslId: 'open', verify: 'NONE', serial: null })
  t.same(events, ['handshake open a.test ok'])
})

t.test('tls front: an object whose key cannot be used fails its handshakes with internal_error, logged once', async (t) => {
  const f = await front()
  t.teardown(f.close)
  const hello = await new Promise<Buffer>((resolve) => {
    // capture a real hello for bad.test
    const cap = createNetServer((s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy())))
    cap.listen(0, '127.0.0.1', () => {
      const c = connect({ host: '127.0.0.1', port: (cap.address() as AddressInfo).port, servername: 'bad.test', rejectUnauthorized: false })
      c.on('error', () => cap.close())
    })
  })
  t.same((await raw(f.port, hello)).bytes, ALERT_INTERNAL_ERROR)
  t.same((await raw(f.port, hello)).bytes, ALERT_INTERNAL_ERROR)
  t.same(buildErrors, ['bad'])
  t.equal((await get(f.port, { servername: 'a.test' })).ok, true, 'other objects are served')
})

t.test('tls front: client certificates are reported (refused, depth, verified, resumed)', async (t) => {
  const f = await front()
  t.teardown(f.close)
  events.length = 0
  t.equal((await get(f.port, { servername: 'strict.test' })).ok, false, 'no certificate → refused')
  const chained = await get(f.port, { servername: 'strict.test', cert: carol.cert + inter.cert, key: carol.key })
  t.equal(chained.ok, false, 'one intermediate past depth 0 → refused before HTTP')
  const good = await get(f.port, { servername: 'strict.test', cert: alice.cert, key: alice.key })
  t.same(good.body, { sni: 'strict.test', sslId: 'strict', verify: 'SUCCESS', serial: alice.serialHex })
  const again = await get(f.port, { servername: 'strict.test', cert: alice.cert, key: alice.key, session: good.session! })
  t.equal(again.reused, true)
  t.same(again.body, good.body, 'resumed (TLS 1.3): the same facts')
  const good12 = await get(f.port, { servername: 'strict.test', cert: alice.cert, key: alice.key, maxVersion: 'TLSv1.2' })
  const again12 = await get(f.port, { servername: 'strict.test', cert: alice.cert, key: alice.key, maxVersion: 'TLSv1.2', session: good12.session! })
  t.equal(again12.reused, true)
  t.same(again12.body, good.body, 'resumed (TLS 1.2): the same facts, the SNI of its ClientHello included')
  t.same(events, [
    'failure strict strict.test no_certificate',
    'handshake strict strict.test refused',
    'failure strict strict.test depth',
    'handshake strict strict.test refused',
    'handshake strict strict.test ok',
    'handshake strict strict.test resumed',
    'handshake strict strict.test ok',
    'handshake strict strict.test resumed',
  ])
})

t.test('tls front: the TLSSocket a tls.Server makes for a handed socket keeps it as _parent (the SNI of a connection is read through it)', async (t) => {
  const server = createTlsServer({ cert: leaf.cert, key: leaf.key })
  const plain = createNetServer((s) => server.emit('connection', s))
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
  t.teardown(() => plain.close())
  const handed = new Set<object>()
  plain.on('connection', (s: Socket) => handed.add(s))
  const parent = new Promise<unknown>((resolve) => server.once('secureConnection', (s: TLSSocket) => (resolve((s as TLSSocket & { _parent?: unknown })._parent), s.end())))
  const c = connect({ host: '127.0.0.1', port: (plain.address() as AddressInfo).port, servername: 'a.test', rejectUnauthorized: false })
  c.on('error', () => undefined)
  t.ok(handed.has((await parent) as object), '_parent is the socket handed to the server')
  c.destroy()
})

t.test('tls front: a port in use is GW_PORT_IN_USE naming apisix.ssl.listen', async (t) => {
  const busy = createNetServer()
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
  t.teardown(() => busy.close())
  const port = (busy.address() as AddressInfo).port
  const config = { apisix: { ssl: { listen: [{ ip: '127.0.0.1', port }], fallback_sni: '' } } } as unknown as LocalConfig
  const gen = generation()
  await t.rejects(startTlsFront({ config, httpServer: http, current: () => gen, log: quiet }), { code: 'GW_PORT_IN_USE', message: `apisix.ssl.listen port 127.0.0.1:${port} is already in use` })
})
