import t from 'tap'
import { readFile } from 'node:fs/promises'
import { createServer as createH2Server } from 'node:http2'
import type { AddressInfo } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { freePort } from '../lib/ports.js'
import { resetStream } from '../../core/runtime/node-internals.js'
import { echoPackage, startGrpcEcho, unary, type Msg } from '../lib/grpc-echo.js'

type AnyClient = grpc.Client & Record<string, (...a: unknown[]) => any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** Collects a readable call's messages and its final status. */
function collect(call: grpc.ClientReadableStream<Msg> | grpc.ClientDuplexStream<Msg, Msg>): Promise<{ msgs: Msg[]; status: grpc.StatusObject }> {
  const msgs: Msg[] = []
  return new Promise((resolve) => {
    call.on('data', (m: Msg) => msgs.push(m))
    call.on('error', () => undefined)
    call.on('status', (status: grpc.StatusObject) => resolve({ msgs, status }))
  })
}

// One etcd, one gateway; gRPC upstreams over h2c and over TLS that requires the gateway's client
// certificate; gRPC clients over TLS to the gateway, with and without a client certificate.
t.test('gRPC through the gateway', async (t) => {
  const etcd = await startEtcd(t)
  const pki = makePki({ servers: [['*.open.test'], ['*.mtls.test'], ['localhost', '127.0.0.1']], clients: ['alice', 'gateway'] })
  const alice = pki.clients['alice']!
  const gwClient = pki.clients['gateway']!
  const plain = await startGrpcEcho(t)
  const secure = await startGrpcEcho(t, { cert: pki.servers['localhost']!.cert, key: pki.servers['localhost']!.key, ca: pki.ca.cert })
  // an upstream that resets the stream: with INTERNAL_ERROR after its headers, or with the
  // x-reset-code the call asks for, before its headers or after them (x-reset-when)
  const resetter = createH2Server()
  const resets: string[] = []
  resetter.on('stream', (s, h) => {
    s.on('error', () => undefined)
    const code = Number(h['x-reset-code'] ?? 2)
    const before = h['x-reset-when'] === 'before'
    resets.push(`${code} ${before ? 'before' : 'after'}`)
    if (!before) s.respond({ ':status': 200, 'content-type': 'application/grpc' })
    // RST_STREAM alone (close(code) would end the stream first, and the reset would be dropped)
    setImmediate(() => resetStream(s, code))
  })
  await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => resetter.close(() => r())))
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const put = async (path: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(path, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
  }
  await put('ssls/open', { sni: '*.open.test', cert: pki.servers['*.open.test']!.cert, key: pki.servers['*.open.test']!.key })
  await put('ssls/mtls', { sni: '*.mtls.test', cert: pki.servers['*.mtls.test']!.cert, key: pki.servers['*.mtls.test']!.key, client: { ca: pki.ca.cert } })
  const certHeaders = { 'proxy-rewrite': { headers: { set: { 'x-client-serial': '$ssl_client_serial', 'x-client-verify': '$ssl_client_verify' } } } }
  await put('routes/grpc', { uri: '/echo.Echo/*', hosts: ['grpc.open.test', 'grpc.mtls.test'], plugins: certHeaders, upstream: { scheme: 'grpc', type: 'roundrobin', nodes: { [`127.0.0.1:${plain.port}`]: 1 } } })
  await put('routes/grpcs', {
    uri: '/echo.Echo/*',
    hosts: ['grpcs.open.test', 'grpcs.mtls.test'],
    plugins: certHeaders,
    upstream: { scheme: 'grpcs', type: 'roundrobin', nodes: { [`127.0.0.1:${secure.port}`]: 1 }, tls: { client_cert: gwClient.cert, client_key: gwClient.key } },
  })
  const downPort = await freePort()
  await put('routes/down', { uri: '/echo.Echo/*', hosts: ['down.open.test'], upstream: { scheme: 'grpc', type: 'roundrobin', nodes: { [`127.0.0.1:${downPort}`]: 1 } } })
  // one node up, one down: a call picked to the down one goes on to the other (grpc_next_upstream error)
  await put('routes/half', { uri: '/echo.Echo/*', hosts: ['half.open.test'], upstream: { scheme: 'grpc', type: 'roundrobin', nodes: { [`127.0.0.1:${downPort}`]: 1, [`127.0.0.1:${plain.port}`]: 1 } } })
  const burst = await startGrpcEcho(t)
  await put('routes/burst', { uri: '/echo.Echo/*', hosts: ['burst.open.test'], upstream: { scheme: 'grpc', type: 'roundrobin', nodes: { [`127.0.0.1:${burst.port}`]: 1 } } })
  await put('routes/reset', { uri: '/echo.Echo/*', hosts: ['reset.open.test'], upstream: { scheme: 'grpc', type: 'roundrobin', nodes: { [`127.0.0.1:${(resetter.address() as AddressInfo).port}`]: 1 } } })

  const { Client } = echoPackage()
  const clients: grpc.Client[] = []
  t.teardown(() => clients.forEach((c) => c.close()))
  const clientFor = (host: string, cert?: { cert: string; key: string }): AnyClient => {
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.cert), cert ? Buffer.from(cert.key) : null, cert ? Buffer.from(cert.cert) : null)
    const c = new Client(`127.0.0.1:${gw.https}`, creds, { 'grpc.ssl_target_name_override': host, 'grpc.default_authority': host })
    clients.push(c)
    return c as unknown as AnyClient
  }
  await eventually(() => unary(clientFor('grpc.open.test'), { text: 'ready', n: 0 }).then((r) => r.err?.code ?? 0), (c) => c === 0, { describe: () => gw.output() })

  const cases: [string, string, { cert: string; key: string } | undefined][] = [
    ['grpc upstream, no client certificate', 'grpc.open.test', undefined],
    ['grpc upstream, client certificate', 'grpc.mtls.test', alice],
    ['grpcs upstream (TLS, the gateway\'s client certificate), no client certificate', 'grpcs.open.test', undefined],
    ['grpcs upstream (TLS, the gateway\'s client certificate), client certificate', 'grpcs.mtls.test', alice],
  ]
  for (const [name, host, cert] of cases) {
    t.test(`${name}: unary, server-, client-streaming and bidi with status and trailers intact`, async (t) => {
      const c = clientFor(host, cert)
      const upstream = host.startsWith('grpcs') ? secure : plain
      const before = upstream.seen.length
      const u = await unary(c, { text: 'hi', n: 0 }, { deadlineMs: 30_000 })
      t.same(u.msg, { text: 'hi', n: 1 }, 'unary answer')
      t.same(u.trailers?.get('x-trailer'), ['Unary'], 'trailing metadata passed back')
      const seen = upstream.seen[before]!
      t.ok(seen.deadline, 'grpc-timeout reached the upstream')
      t.equal(seen.metadata['x-client-verify'], cert ? 'SUCCESS' : 'NONE', '$ssl_client_verify on this stream')
      if (cert) t.equal(seen.metadata['x-client-serial'], alice.serialHex)
      const failed = await unary(c, { text: 'fail', n: 0 })
      t.equal(failed.err?.code, grpc.status.NOT_FOUND, 'the upstream\'s status')
      t.equal(failed.err?.details, 'nope', 'and its message')
      t.same(failed.err?.metadata.get('x-trailer'), ['Unary'])

      const ss = await collect(c['ServerStream']!({ text: 's', n: 3 }) as grpc.ClientReadableStream<Msg>)
      t.same(ss.msgs.map((m) => m.text), ['s-1', 's-2', 's-3'], 'server streaming')
      t.equal(ss.status.code, grpc.status.OK)
      t.same(ss.status.metadata.get('x-trailer'), ['ServerStream'])

      const cs = await new Promise<{ msg?: Msg; err?: grpc.ServiceError }>((resolve) => {
        const call = c['ClientStream']!((err: grpc.ServiceError | null, msg?: Msg) => resolve({ ...(msg ? { msg } : {}), ...(err ? { err } : {}) })) as grpc.ClientWritableStream<Msg>
        for (const x of ['a', 'b', 'c']) call.write({ text: x, n: 0 })
        call.end()
      })
      t.same(cs.msg, { text: 'a,b,c', n: 3 }, 'client streaming')

      // bidi: each answer comes before the next message is sent
      const bidi = c['Bidi']!() as grpc.ClientDuplexStream<Msg, Msg>
      const done = collect(bidi)
      const got: string[] = []
      for (const x of ['x', 'y', 'z']) {
        bidi.write({ text: x, n: 0 })
        got.push(await new Promise<string>((r) => bidi.once('data', (m: Msg) => r(m.text))))
      }
      bidi.end()
      const b = await done
      t.same(got, ['X', 'Y', 'Z'], 'bidirectional, interleaved')
      t.equal(b.status.code, grpc.status.OK)
      t.same(b.status.metadata.get('x-trailer'), ['Bidi'])
    })
  }

  t.test('an upstream that is down gives UNAVAILABLE', async (t) => {
    const r = await unary(clientFor('down.open.test'), { text: 'x', n: 0 })
    t.equal(r.err?.code, grpc.status.UNAVAILABLE)
  })

  t.test('a node that is down is skipped: every call, streaming ones with their messages, reaches the node that is up', async (t) => {
    const c = clientFor('half.open.test')
    const before = plain.seen.length
    // round robin alternates the two nodes: two calls of each kind in a row meet the down node with both
    const clientStream = (i: number): Promise<{ msg?: Msg; err?: grpc.ServiceError }> =>
      new Promise((resolve) => {
        const call = c['ClientStream']!((err: grpc.ServiceError | null, msg?: Msg) => resolve({ ...(msg ? { msg } : {}), ...(err ? { err } : {}) })) as grpc.ClientWritableStream<Msg>
        for (const x of ['a', `b${i}`]) call.write({ text: x, n: 0 })
        call.end()
      })
    for (let i = 0; i < 3; i++) {
      for (const j of [0, 1]) {
        const u = await unary(c, { text: `u${i}${j}`, n: 0 })
        t.same(u.msg, { text: `u${i}${j}`, n: 1 }, `unary call ${i}.${j} answered (${u.err?.details ?? 'ok'})`)
      }
      for (const j of [0, 1]) {
        const cs = await clientStream(i)
        t.same(cs.msg, { text: `a,b${i}`, n: 2 }, `client-streaming call ${i}.${j}: its messages reached the node that is up (${cs.err?.details ?? 'ok'})`)
      }
    }
    t.equal(plain.seen.length - before, 12, 'the node that is up saw every call once')
    const log = await eventually(
      async () => (await readFile(gw.accessLog, 'utf8')).split('\n').map((l) => (l ? (JSON.parse(l) as Record<string, unknown>) : {})).filter((l) => l['route_id'] === 'half'),
      (ls) => ls.length >= 12,
    )
    t.ok(log.every((l) => l['upstream'] === `127.0.0.1:${plain.port}` && l['status'] === 200), 'the access log names the node that answered')
  })

  t.test('a burst of calls while the upstream session connects: every call answered, no warning in the log', async (t) => {
    // one client connection, so one worker: all 40 calls wait for that worker's first session to the node
    const c = clientFor('burst.open.test')
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => unary(c, { text: `b${i}`, n: 0 })))
    t.equal(rs.filter((r, i) => r.msg?.text === `b${i}`).length, 40, `every call answered (${rs.find((r) => r.err)?.err?.details ?? 'ok'})`)
    t.equal(burst.seen.length, 40, 'the node saw each call once')
    t.notMatch(gw.stderr(), /MaxListenersExceeded|memory leak/, 'no listener-leak warning on stderr')
  })

  t.test('an upstream reset reaches the client', async (t) => {
    const r = await unary(clientFor('reset.open.test'), { text: 'x', n: 0 })
    t.equal(r.err?.code, grpc.status.INTERNAL)
    t.match(r.err?.details, /RST_STREAM with code 2/)
  })

  t.test("an upstream's reset reaches the client with the code that keeps its meaning", async (t) => {
    const c = clientFor('reset.open.test')
    // [upstream RST_STREAM code, name, the status the gRPC client reads after the response headers, and before them]
    const cases: [number, string, grpc.status, grpc.status][] = [
      [0x8, 'CANCEL', grpc.status.CANCELLED, grpc.status.CANCELLED],
      [0x7, 'REFUSED_STREAM', grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE],
      [0xb, 'ENHANCE_YOUR_CALM', grpc.status.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED],
      // the gateway-to-upstream hop's own faults do not pass as such: INTERNAL_ERROR, or 502 before a response
      [0x1, 'PROTOCOL_ERROR', grpc.status.INTERNAL, grpc.status.UNAVAILABLE],
      [0x3, 'FLOW_CONTROL_ERROR', grpc.status.INTERNAL, grpc.status.UNAVAILABLE],
    ]
    for (const [code, name, after, before] of cases) {
      for (const when of ['after', 'before'] as const) {
        const r = await unary(c, { text: 'x', n: 0 }, { metadata: { 'x-reset-code': String(code), 'x-reset-when': when } })
        t.equal(r.err?.code, when === 'after' ? after : before, `upstream ${name} ${when} its response headers: the client reads ${grpc.status[when === 'after' ? after : before]} (${r.err?.details})`)
        // REFUSED_STREAM as such, not a 502: the client knows nothing was processed and may retry it
        if (when === 'before' && after !== grpc.status.INTERNAL) t.notMatch(r.err?.details ?? '', /HTTP status code 502/, `upstream ${name} before its response headers reaches the client as a reset, not a 502`)
      }
    }
    t.ok(resets.includes('7 before'), 'the upstream saw the calls')
  })

  t.test('a client that cancels a call cancels the upstream stream', async (t) => {
    const c = clientFor('grpc.open.test')
    const before = plain.seen.length
    const bidi = c['Bidi']!() as grpc.ClientDuplexStream<Msg, Msg>
    bidi.on('error', () => undefined)
    bidi.write({ text: 'one', n: 0 })
    await new Promise((r) => bidi.once('data', r))
    bidi.cancel()
    await eventually(async () => plain.seen[before]?.cancelled, (x) => x === true)
    t.pass('the upstream saw the call cancelled')
  })

  t.test('the access log has grpc_status on gRPC routes', async (t) => {
    const lines = await eventually(
      async () => (await readFile(gw.accessLog, 'utf8')).split('\n').filter((l) => l.includes('/echo.Echo/')).map((l) => JSON.parse(l) as Record<string, unknown>),
      (ls) => ls.some((l) => l['grpc_status'] === '5') && ls.some((l) => l['status'] === 502),
    )
    const ok = lines.find((l) => l['uri'] === '/echo.Echo/Unary' && l['grpc_status'] === '0')
    t.ok(ok, 'a successful unary call logs grpc_status 0')
    t.equal(ok?.['http_version'], '2')
    t.equal(lines.find((l) => l['status'] === 502)?.['grpc_status'], null, 'the gateway\'s own 502 has no grpc-status')
  })
})
