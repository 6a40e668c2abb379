import t from 'tap'
import { httpStatus as get } from '../lib/raw-http.js'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { startEcho } from '../lib/echo.js'
import { BIN_APISIX, startGateway, writeGatewayConfig } from '../lib/gateway.js'
import { eventually } from '../lib/eventually.js'
import { makePki } from '../lib/certs.js'
import { spawnNode, tempDir } from '../lib/proc.js'
import { httpsGet } from '../lib/tls-client.js'

/** Runs bin/apisix start to its exit (for start-up failures). */
function runStart(file: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawnNode(BIN_APISIX, ['start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr?.on('data', (b: Buffer) => (stderr += b))
    const kill = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('exit', (code) => {
      clearTimeout(kill)
      resolve({ code, stderr })
    })
  })
}

type Line = Record<string, unknown>
const linesOf = async (file: string): Promise<Line[]> =>
  (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line)

const FIELDS = ['time', 'remote_addr', 'method', 'uri', 'status', 'route_id', 'upstream', 'latency_ms', 'upstream_latency_ms', 'sni', 'tls_version', 'client_verify', 'client_s_dn', 'client_serial', 'consumer', 'http_version']

t.test('access log lines for real traffic', async (t) => {
  const etcd = await startEtcd(t)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  await client.put('/apisix/routes/r1').value(JSON.stringify({ uri: '/hello', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).exec()
  await eventually(() => get(gw.http, '/hello'), (s) => s === 200, { describe: gw.output })
  // the file is written in the background: count the lines once the warm-up's last one is in
  const warm = await eventually(() => linesOf(gw.accessLog), (l) => l.at(-1)?.['uri'] === '/hello' && l.at(-1)?.['status'] === 200, { describe: gw.output })
  const skip = warm.length

  t.test('a proxied request and a 404 on plain HTTP → one line each with every field', async (t) => {
    const from = Date.now()
    t.equal(await get(gw.http, '/hello?x=1'), 200)
    t.equal(await get(gw.http, '/nope'), 404)
    const lines = (await eventually(() => linesOf(gw.accessLog), (l) => l.length >= skip + 2, { describe: gw.output })).slice(skip)
    t.equal(lines.length, 2)
    const [ok, missing] = lines as [Line, Line]
    t.same(Object.keys(ok), FIELDS, 'the contract fields, in order')
    const time = Date.parse(String(ok['time']))
    t.ok(time >= from - 1000 && time <= Date.now(), `time ${String(ok['time'])} is ISO 8601 and now`)
    t.match(ok, {
      remote_addr: '127.0.0.1',
      method: 'GET',
      uri: '/hello?x=1',
      status: 200,
      route_id: 'r1',
      upstream: echo.hostPort,
      latency_ms: Number,
      upstream_latency_ms: Number,
      sni: null,
      tls_version: null,
      client_verify: 'NONE',
      client_s_dn: null,
      client_serial: null,
      consumer: null,
    })
    t.ok((ok['latency_ms'] as number) >= (ok['upstream_latency_ms'] as number), 'the request takes at least as long as its upstream part')
    t.match(missing, { uri: '/nope', status: 404, route_id: null, upstream: null, upstream_latency_ms: null })
  })

  t.test('over TLS → sni and tls_version are filled', async (t) => {
    const pki = makePki({ server: ['log.test'] })
    await client.put('/apisix/ssls/l1').value(JSON.stringify({ id: 'l1', cert: pki.server.cert, key: pki.server.key, sni: 'log.test' })).exec()
    const o = { port: gw.https, servername: 'log.test', ca: pki.ca.cert }
    const before = (await linesOf(gw.accessLog)).length
    await eventually(() => httpsGet('/hello', o), (r) => r.status === 200, { describe: gw.output })
    const lines = await eventually(() => linesOf(gw.accessLog), (l) => l.length > before && l.at(-1)?.['status'] === 200, { describe: gw.output })
    t.match(lines.at(-1), { uri: '/hello', route_id: 'r1', sni: 'log.test', tls_version: 'TLSv1.3', client_verify: 'NONE', client_s_dn: null })
  })

  t.test('SIGTERM → every answered request is in the file (the log is flushed on drain)', async (t) => {
    const before = (await linesOf(gw.accessLog)).length
    const n = 50
    const statuses = await Promise.all(Array.from({ length: n }, () => get(gw.http, '/hello')))
    t.same(new Set(statuses), new Set([200]))
    t.equal(await gw.stop(), 0, gw.output())
    t.equal((await linesOf(gw.accessLog)).length, before + n)
  })
})

t.test('access log files', async (t) => {
  const etcd = await startEtcd(t)

  t.test('a path that cannot be opened → start fails with one line naming it, exit 1', async (t) => {
    const dir = await tempDir(t, 'alog-')
    const blocker = join(dir, 'a-file')
    await writeFile(blocker, '')
    const path = join(blocker, 'access.log')
    const c = await writeGatewayConfig(t, { etcd: etcd.url, config: { apisix: { access_log: { path } } } })
    const r = await runStart(c.file)
    t.equal(r.code, 1)
    // mkdir -p through a file reports EEXIST; open through it ENOTDIR
    const last = r.stderr.trim().split('\n').pop() ?? ''
    t.ok(last.startsWith(`apisix.access_log.path ${path}: cannot open: E`), last)
  })

  t.test('a relative path → created under the directory bin/apisix runs from, at start', async (t) => {
    const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { access_log: { path: 'logs/access.log' } } } })
    t.ok((await stat(join(gw.dir, 'logs', 'access.log'))).isFile())
    t.equal(await gw.stop(), 0, gw.output())
  })

  t.test('enable false → no file, requests still answered', async (t) => {
    const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { access_log: { enable: false } } } })
    t.equal(await get(gw.http, '/nothing'), 404)
    t.equal(await gw.stop(), 0, gw.output())
    await t.rejects(stat(gw.accessLog), { code: 'ENOENT' })
  })
})
