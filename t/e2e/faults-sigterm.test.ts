import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { Test } from 'tap'
import { Pool } from 'undici'
import { startEtcd } from '../lib/etcd.js'
import { BIN_APISIX, startGateway, writeGatewayConfig, type Gateway } from '../lib/gateway.js'
import { collect, exited, spawnNode, stopProcess } from '../lib/proc.js'
import { adminOf } from '../lib/admin.js'
import { makePki, type Pki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'

const SNI = 'drain.test'
const BODY_BYTES = 64 * 1024

/** The body the upstream sends for request `id`: BODY_BYTES bytes that name it. */
const bodyOf = (id: string): Buffer => Buffer.alloc(BODY_BYTES, `${id};`)

/**
 * A slow upstream the test drives: `/hold/head/ID` answers once released, `/hold/body/ID` sends
 * its headers and half its body at once and the rest once released, `/hold/forever/ID` never
 * answers, `/hold/fast/ID` answers at once. Every answer is bodyOf(ID) with a content-length.
 */
async function startSlowUpstream(t: Test): Promise<{ hostPort: string; held(): number; releaseAll(): void }> {
  const waiting: (() => void)[] = []
  let released = false
  const server = createServer((req, res: ServerResponse) => {
    req.resume()
    const [, , mode = 'fast', id = 'x'] = (req.url ?? '').split('/')
    const body = bodyOf(id)
    const head = (): void => void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
    const hold = (fn: () => void): void => {
      if (released) fn()
      else waiting.push(fn)
    }
    if (mode === 'fast') return void res.end((head(), body))
    if (mode === 'forever') return void waiting.push(() => undefined)
    if (mode === 'body') {
      head()
      res.write(body.subarray(0, body.length / 2))
      return hold(() => res.end(body.subarray(body.length / 2)))
    }
    hold(() => res.end((head(), body)))
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return {
    hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => waiting.length,
    releaseAll() {
      released = true
      for (const fn of waiting.splice(0)) fn()
    },
  }
}

/** How one request in flight at the signal ended. */
type Outcome = { ok: true } | { ok: false; why: string }

/** GET `path` through `pool`; ok only for a 200 whose body is exactly bodyOf(id). */
async function fetchFull(pool: Pool, path: string, id: string): Promise<Outcome> {
  try {
    const res = await pool.request({ path, method: 'GET', headers: { host: SNI } })
    const body = Buffer.from(await res.body.arrayBuffer())
    if (res.statusCode !== 200) return { ok: false, why: `status ${res.statusCode}` }
    if (!body.equals(bodyOf(id))) return { ok: false, why: `body of ${body.length} bytes, not the ${BODY_BYTES} sent` }
    return { ok: true }
  } catch (err) {
    return { ok: false, why: `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}` }
  }
}

/** A raw connection (plain or TLS) that made one request, read the whole answer and stays idle. */
async function idleConnection(port: number, tls: false | Pki): Promise<{ closed: Promise<void> }> {
  const s: Socket = tls ? tlsConnect({ host: '127.0.0.1', port, servername: SNI, ca: tls.ca.cert }) : netConnect({ host: '127.0.0.1', port })
  const closed = new Promise<void>((r) => s.once('close', () => r()))
  s.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    s.once(tls ? 'secureConnect' : 'connect', () => s.write(`GET /hold/fast/idle HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`))
    let got = Buffer.alloc(0)
    const onData = (b: Buffer): void => {
      got = Buffer.concat([got, b])
      const end = got.indexOf('\r\n\r\n')
      if (end < 0 || got.length < end + 4 + BODY_BYTES) return
      s.off('data', onData)
      if (!got.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) reject(new Error(got.subarray(0, 60).toString()))
      else resolve()
    }
    s.on('data', onData)
    s.once('close', () => reject(new Error('closed before the answer')))
  })
  return { closed }
}

/** What a new connection opened after the signal met. */
type Attempt = 'refused' | 'closed unserved' | 'served' | `other: ${string}`

/** Opens one connection (plain or TLS), asks for /apisix/status once, waits for its end (no deadline). */
function attempt(port: number, tls: false | Pki): Promise<{ outcome: Attempt; endedAt: number }> {
  return new Promise((resolve) => {
    const s: Socket = tls ? tlsConnect({ host: '127.0.0.1', port, servername: SNI, ca: tls.ca.cert }) : netConnect({ host: '127.0.0.1', port })
    let got = ''
    const done = (outcome: Attempt): void => {
      s.destroy()
      resolve({ outcome, endedAt: Date.now() })
    }
    s.once(tls ? 'secureConnect' : 'connect', () => s.write(`GET /apisix/status HTTP/1.1\r\nHost: ${SNI}\r\nConnection: close\r\n\r\n`))
    s.on('data', (b: Buffer) => (got += b.toString()))
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('refused')
      else if (got === '') done('closed unserved')
      else done(`other: ${err.code ?? err.message} after ${JSON.stringify(got.slice(0, 40))}`)
    })
    s.once('close', () => {
      if (got === '') done('closed unserved')
      else if (got.startsWith('HTTP/1.1 200') && got.endsWith('{"status":"ok"}\n')) done('served')
      else done(`other: ${JSON.stringify(got.slice(0, 80))}`)
    })
  })
}

/** New connections, one every 10 ms from the signal on, until `after` of them were refused; each one's outcome, in order. */
async function probeNewConnections(port: number, tls: false | Pki, after = 5, deadlineMs = 10_000): Promise<{ all: Promise<{ outcome: Attempt; endedAt: number }[]>; firstRefusedMs: number }> {
  const start = Date.now()
  const attempts: Promise<{ outcome: Attempt; endedAt: number }>[] = []
  let firstRefusedMs = -1
  let refusedCount = 0
  while (refusedCount < after && Date.now() - start < deadlineMs) {
    const a = attempt(port, tls)
    attempts.push(a)
    void a.then((r) => {
      if (r.outcome !== 'refused') return
      if (firstRefusedMs < 0) firstRefusedMs = r.endedAt - start
      refusedCount++
    })
    await new Promise((r) => setTimeout(r, 10))
  }
  return { all: Promise.all(attempts), firstRefusedMs }
}

/** Whether a TCP connection to 127.0.0.1:port is refused. */
const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port })
    s.once('connect', () => (s.destroy(), resolve(false)))
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })

/** A gateway (options as given) with a TLS object for SNI and a route /hold/* to the upstream. */
async function gatewayInFront(t: Test, upstream: string, pki: Pki, o: { workers: number; config?: Record<string, unknown> }): Promise<Gateway> {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: o.workers, ...(o.config ? { config: o.config } : {}) })
  // both workers listen (startGateway returns once one answers)
  await eventually(() => gw.output(), (out) => out.includes('"msg":"gateway started"'), { timeoutMs: 60_000, describe: gw.output })
  const admin = adminOf(gw)
  t.equal((await admin.put('ssls/drain', { sni: SNI, cert: pki.server.cert, key: pki.server.key })).status, 201, 'ssl stored')
  t.equal((await admin.put('routes/hold', { uri: '/hold/*', upstream: { type: 'roundrobin', nodes: { [upstream]: 1 }, timeout: { connect: 5, send: 60, read: 60 } } })).status, 201, 'route stored')
  // every worker must hold the ssl object and the route: 4 fresh connections at once (the primary
  // deals them to the workers in turn) must all be served, else a later request may meet a worker
  // whose watch has not delivered them yet
  const warmAll = async (): Promise<boolean> => {
    const warm = new Pool(`https://127.0.0.1:${gw.https}`, { connections: 4, allowH2: false, pipelining: 1, connect: { servername: SNI, ca: pki.ca.cert } })
    try {
      const rs = await Promise.all([0, 1, 2, 3].map((i) => fetchFull(warm, `/hold/fast/warm${i}`, `warm${i}`)))
      return rs.every((r) => r.ok)
    } finally {
      await warm.destroy()
    }
  }
  await eventually(warmAll, (ok) => ok, { timeoutMs: 15_000, describe: gw.output })
  return gw
}

const pools = (gw: Gateway, pki: Pki, connections: number): { http: Pool; https: Pool } => ({
  http: new Pool(`http://127.0.0.1:${gw.http}`, { connections, pipelining: 1 }),
  https: new Pool(`https://127.0.0.1:${gw.https}`, { connections, allowH2: false, pipelining: 1, connect: { servername: SNI, ca: pki.ca.cert } }),
})

t.test('SIGTERM under load: 2 workers, 80 requests in flight over 80 keep-alive connections', async (t) => {
  const pki = makePki({ server: [SNI] })
  const up = await startSlowUpstream(t)
  const gw = await gatewayInFront(t, up.hostPort, pki, { workers: 2 })
  const PER = 40
  const c = pools(gw, pki, PER)
  t.teardown(() => Promise.all([c.http.destroy(), c.https.destroy()]))

  // half of each kind held before the upstream's headers, half in the middle of the body
  const inflight: Promise<Outcome>[] = []
  for (const [kind, pool] of [['http', c.http], ['https', c.https]] as const) {
    for (let i = 0; i < PER; i++) {
      const id = `${kind}-${i}`
      const mode = i % 2 === 0 ? 'head' : 'body'
      inflight.push(fetchFull(pool, `/hold/${mode}/${id}`, id))
    }
  }
  const idle = await Promise.all([
    ...Array.from({ length: 10 }, () => idleConnection(gw.http, false)),
    ...Array.from({ length: 10 }, () => idleConnection(gw.https, pki)),
  ])
  const idleClosed = idle.map((x) => {
    let closed = false
    void x.closed.then(() => (closed = true))
    return () => closed
  })
  await eventually(() => up.held(), (n) => n === 2 * PER, { timeoutMs: 15_000, describe: gw.output })

  const signalled = Date.now()
  const exit = gw.exited()
  process.kill(gw.pid, 'SIGTERM')
  const [plainNew, tlsNew] = await Promise.all([probeNewConnections(gw.http, false), probeNewConnections(gw.https, pki)])

  t.test('idle keep-alive connections are closed while requests are still in flight', async (t) => {
    await eventually(() => idleClosed.every((f) => f()), (ok) => ok, { timeoutMs: 5_000, describe: gw.output })
    t.equal(up.held(), 2 * PER, 'the upstream still holds every request')
    t.equal(idleClosed.filter((f) => f()).length, 20, '10 plain and 10 TLS idle connections closed')
  })

  t.test('the admin and metrics ports are closed at once', async (t) => {
    t.ok(await eventually(() => refused(gw.admin), (r) => r, { timeoutMs: 5_000 }), 'admin port refuses')
    t.ok(await eventually(() => refused(gw.metrics), (r) => r, { timeoutMs: 5_000 }), 'metrics port refuses')
    t.equal(gw.proc.exitCode, null, 'the gateway is still running (requests in flight)')
  })

  t.test('every request in flight at the signal completes with 200 and its whole body; exit 0', async (t) => {
    const released = Date.now()
    up.releaseAll()
    const outcomes = await Promise.all(inflight)
    const failed = outcomes.filter((o): o is { ok: false; why: string } => !o.ok)
    t.same(failed.map((f) => f.why).slice(0, 5), [], `${outcomes.length - failed.length} of ${outcomes.length} completed`)
    const code = await exit
    const exitMs = Date.now() - released
    t.equal(code, 0, `exit code 0${code === 0 ? '' : `\n${gw.output()}`}`)
    t.ok(exitMs < 10_000, `exited ${exitMs} ms after the last answers were released`)
    t.comment(`in flight at the signal: ${inflight.length}, completed: ${outcomes.length - failed.length}, failed: ${failed.length}; ` +
      `signal → exit ${Date.now() - signalled} ms (held ${released - signalled} ms by the test), release → exit ${exitMs} ms`)
  })

  t.test('new connections after the signal: refused once both workers closed their listeners, never half-served', async (t) => {
    const exitedAt = Date.now()
    for (const [name, p] of [['plain', plainNew], ['TLS', tlsNew]] as const) {
      const all = await p.all
      const outcomes = all.map((a) => a.outcome)
      const odd = outcomes.filter((o) => o !== 'refused' && o !== 'closed unserved' && o !== 'served')
      t.same(odd, [], `${name}: each of ${all.length} attempts refused, closed without a byte, or served whole`)
      t.ok(p.firstRefusedMs >= 0 && p.firstRefusedMs < 5_000, `${name}: first ECONNREFUSED ${p.firstRefusedMs} ms after the signal`)
      const first = outcomes.indexOf('refused')
      t.same(outcomes.slice(first).filter((o) => o !== 'refused'), [], `${name}: every attempt after the first refused one is refused`)
      // a connection the primary accepted as the last worker closed its listener waits, unserved, until the gateway exits
      const held = all.filter((a) => a.outcome === 'closed unserved' && a.endedAt >= exitedAt - 1_000).length
      t.comment(`${name}: before the first refusal: ${JSON.stringify(outcomes.slice(0, first))}; closed unserved only at exit: ${held}`)
    }
  })
})

t.test('SIGTERM with worker_shutdown_timeout 2s: a request that outlasts it is cut, the gateway still exits 0', async (t) => {
  const pki = makePki({ server: [SNI] })
  const up = await startSlowUpstream(t)
  const gw = await gatewayInFront(t, up.hostPort, pki, { workers: 2, config: { nginx_config: { worker_shutdown_timeout: '2s' } } })
  const c = pools(gw, pki, 4)
  t.teardown(() => Promise.all([c.http.destroy(), c.https.destroy()]))
  const stuck = [fetchFull(c.http, '/hold/forever/a', 'a'), fetchFull(c.https, '/hold/forever/b', 'b')]
  const quick = [fetchFull(c.http, '/hold/head/c', 'c'), fetchFull(c.https, '/hold/body/d', 'd')]
  await eventually(() => up.held(), (n) => n === 4, { timeoutMs: 15_000, describe: gw.output })

  const signalled = Date.now()
  const exit = gw.exited()
  process.kill(gw.pid, 'SIGTERM')
  // the two held requests end well within the bound
  await eventually(() => refused(gw.http), (r) => r, { timeoutMs: 5_000 })
  up.releaseAll()
  const q = await Promise.all(quick)
  t.same(q, [{ ok: true }, { ok: true }], 'requests that finish within the bound complete')
  const s = await Promise.all(stuck)
  const cutMs = Date.now() - signalled
  t.same(s.map((o) => o.ok), [false, false], `the two stuck requests are cut (${s.map((o) => (o.ok ? 'ok' : o.why)).join('; ')})`)
  t.ok(cutMs >= 1_900, `not cut before the bound: ${cutMs} ms`)
  const code = await exit
  const exitMs = Date.now() - signalled
  t.equal(code, 0, `exit code 0${code === 0 ? '' : `\n${gw.output()}`}`)
  t.ok(exitMs < 2_000 + 8_000, `exited ${exitMs} ms after the signal (bound 2000 ms)`)
  t.match(gw.output(), /drain timeout \(nginx_config\.worker_shutdown_timeout\) reached/, 'the cut is logged')
  t.comment(`signal → stuck requests cut ${cutMs} ms, → exit ${exitMs} ms`)
})

t.test('SIGTERM while the workers are still starting (the admin already answers) → the workers start, drain, exit 0', async (t) => {
  const etcd = await startEtcd(t)
  const c = await writeGatewayConfig(t, { etcd: etcd.url, workers: 2 })
  const proc = spawnNode(BIN_APISIX, ['start', '-c', c.file], { cwd: c.dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(proc)
  t.teardown(() => stopProcess(proc))
  const exit = exited(proc)
  // the admin listens before the workers fork: the signal lands while they start
  await eventually(() => refused(c.admin), (r) => !r, { timeoutMs: 60_000, intervalMs: 5, describe: output })
  proc.kill('SIGTERM')
  const code = await exit
  t.equal(code, 0, `exit code 0${code === 0 ? '' : `\n${output()}`}`)
  t.match(output(), /"signal":"SIGTERM".*"msg":"stopping: draining in-flight requests"/, 'the primary kept the signal and drained the workers once they listened')
})
