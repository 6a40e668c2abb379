import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createAccessLog, FLUSH_BYTES, FLUSH_MS, formatAccessLine, type AccessLogEntry } from '../../core/access-log.js'
import { eventually } from '../lib/eventually.js'

const FIELDS = [
  'time',
  'remote_addr',
  'method',
  'uri',
  'status',
  'route_id',
  'upstream',
  'latency_ms',
  'upstream_latency_ms',
  'sni',
  'tls_version',
  'client_verify',
  'client_s_dn',
  'client_serial',
  'consumer',
  'http_version',
]

const entry = (i: number, over: Partial<AccessLogEntry> = {}): AccessLogEntry => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  remote_addr: '127.0.0.1',
  method: 'GET',
  uri: `/api/${i}?q="x"`,
  status: 200,
  route_id: 'r1',
  upstream: '127.0.0.1:8080',
  latency_ms: 1.25,
  upstream_latency_ms: 1,
  sni: 'mtls.test',
  tls_version: 'TLSv1.3',
  client_verify: 'SUCCESS',
  client_s_dn: 'CN=alice,O=Acme\\, Inc',
  client_serial: '0A1B',
  consumer: 'alice',
  http_version: '1.1',
  ...over,
})

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'access-log-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const lines = async (file: string): Promise<Record<string, unknown>[]> =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)

t.test('access log: 1000 entries, close → 1000 lines in order, each with exactly the contract fields', async (t) => {
  const dir = await tempDir(t)
  const log = createAccessLog({ enable: true, path: join(dir, 'access.log') }, '/nonexistent')
  for (let i = 0; i < 1000; i++) log.write(entry(i))
  await log.close()
  const got = await lines(join(dir, 'access.log'))
  t.equal(got.length, 1000)
  t.same(Object.keys(got[0] ?? {}), FIELDS)
  t.same(got[7], { ...entry(7) })
  t.ok(got.every((l, i) => l['uri'] === `/api/${i}?q="x"`), 'order kept')
  t.equal(log.dropped(), 0)
})

t.test('access log: lines go out in blocks; a block not yet full reaches the file by the flush timer, without close', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'access.log')
  const log = createAccessLog({ enable: true, path: file }, '/nonexistent')
  t.teardown(() => log.close())
  const size = Buffer.byteLength(formatAccessLine(entry(0)))
  t.ok(size < FLUSH_BYTES / 4, `one line (${size} bytes) is far from a block (${FLUSH_BYTES})`)
  log.write(entry(0))
  log.write(entry(1))
  // polled with a deadline well past FLUSH_MS: without the timer the two lines wait for close
  const got = await eventually(() => lines(file).catch(() => []), (l) => l.length === 2, { timeoutMs: FLUSH_MS * 5, intervalMs: 50 })
  t.same(got.map((l) => l['uri']), ['/api/0?q="x"', '/api/1?q="x"'], 'both lines, in order')
  t.equal(log.dropped(), 0)
})

t.test('access log: a request without route, upstream or TLS → nulls, not missing keys', async (t) => {
  const e = entry(0, {
    status: 404,
    route_id: null,
    upstream: null,
    upstream_latency_ms: null,
    sni: null,
    tls_version: null,
    client_verify: 'NONE',
    client_s_dn: null,
    client_serial: null,
    consumer: null,
  })
  const parsed = JSON.parse(formatAccessLine(e)) as Record<string, unknown>
  t.same(Object.keys(parsed), FIELDS)
  t.equal(parsed['upstream'], null)
  t.equal(parsed['client_verify'], 'NONE')
})

t.test('formatAccessLine: grpc_status only on gRPC routes, after http_version', async (t) => {
  const grpc = JSON.parse(formatAccessLine(entry(1, { http_version: '2', grpc_status: '14' }))) as Record<string, unknown>
  t.same(Object.keys(grpc), [...FIELDS, 'grpc_status'])
  t.equal(grpc['grpc_status'], '14')
  t.equal(grpc['http_version'], '2')
  const none = JSON.parse(formatAccessLine(entry(2, { grpc_status: null }))) as Record<string, unknown>
  t.equal(none['grpc_status'], null, 'a gRPC route whose upstream sent no grpc-status')
})

t.test('access log: extra properties on the entry object → not written', async (t) => {
  const e = { ...entry(1), secret: 'x' } as AccessLogEntry
  t.notOk('secret' in (JSON.parse(formatAccessLine(e)) as object))
})

t.test('access log: relative path → under baseDir, missing directories created', async (t) => {
  const dir = await tempDir(t)
  const log = createAccessLog({ enable: true, path: 'logs/deep/access.log' }, dir)
  log.write(entry(1))
  await log.close()
  t.equal((await lines(join(dir, 'logs/deep/access.log'))).length, 1)
})

t.test('access log: an existing file → appended to, not truncated', async (t) => {
  const dir = await tempDir(t)
  for (const i of [1, 2]) {
    const log = createAccessLog({ enable: true, path: 'a.log' }, dir)
    log.write(entry(i))
    await log.close()
  }
  t.same((await lines(join(dir, 'a.log'))).map((l) => l['time']), [entry(1).time, entry(2).time])
})

t.test('access log: disabled → no file, writes ignored', async (t) => {
  const dir = await tempDir(t)
  const log = createAccessLog({ enable: false, path: 'a.log' }, dir)
  log.write(entry(1))
  await log.close()
  await t.rejects(stat(join(dir, 'a.log')), { code: 'ENOENT' })
})

t.test('access log: write after close → dropped and counted, no throw', async (t) => {
  const dir = await tempDir(t)
  const log = createAccessLog({ enable: true, path: 'a.log' }, dir)
  await log.close()
  log.write(entry(1))
  t.equal(log.dropped(), 1)
  await log.close()
})

t.test('access log: reopen after the file is renamed (rotation) → new lines go to a new file', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'a.log')
  const log = createAccessLog({ enable: true, path: file }, dir)
  log.write(entry(1))
  const deadline = Date.now() + 5000
  while ((await stat(file).then((s) => s.size, () => 0)) === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r))
  await rename(file, `${file}.1`)
  log.reopen()
  log.write(entry(2))
  await log.close()
  t.same((await lines(`${file}.1`)).map((l) => l['time']), [entry(1).time])
  t.same((await lines(file)).map((l) => l['time']), [entry(2).time])
})

t.test('access log: a path that cannot be opened → GW_ACCESS_LOG_OPEN at creation, naming the file', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'file'), '')
  const cases = [join(dir, 'file', 'sub', 'a.log'), dir]
  for (const path of cases)
    t.throws(() => createAccessLog({ enable: true, path }, dir), { code: 'GW_ACCESS_LOG_OPEN', message: path }, path)
})

t.test('access log: path "-" → lines on stdout', async (t) => {
  const mod = fileURLToPath(new URL('../../core/access-log.js', import.meta.url))
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'))
  const script = `import { createAccessLog } from ${JSON.stringify(mod)}
const log = createAccessLog({ enable: true, path: '-' }, '/')
for (let i = 0; i < 3; i++) log.write(${JSON.stringify(entry(0))})
await log.close()
process.stdout.write('done\\n')`
  const child = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
  t.equal(child.status, 0, child.stderr)
  const out = child.stdout.split('\n').filter((l) => l !== '')
  t.equal(out.length, 4, child.stdout)
  t.same(JSON.parse(out[0] ?? 'null'), entry(0))
  t.equal(out[3], 'done')
})

t.test('formatAccessLine writes what JSON.stringify of the fields writes: quotes, backslashes, control bytes, surrogates, odd numbers', async (t) => {
  const viaJson = (e: AccessLogEntry): string =>
    `${JSON.stringify({ time: e.time, remote_addr: e.remote_addr, method: e.method, uri: e.uri, status: e.status, route_id: e.route_id, upstream: e.upstream, latency_ms: e.latency_ms, upstream_latency_ms: e.upstream_latency_ms, sni: e.sni, tls_version: e.tls_version, client_verify: e.client_verify, client_s_dn: e.client_s_dn, client_serial: e.client_serial, consumer: e.consumer, http_version: e.http_version, grpc_status: e.grpc_status })}\n`
  const odd = ['', '"', '\\', '\n\t\r', '\x00\x1f', '\x7f', 'é€', '\u2028\u2029', '😀', '\ud800', 'x\udc00', 'CN=a\\, "b"', '/p?q="x"&r=\\']
  for (const [i, s] of odd.entries()) {
    const e = entry(i, { uri: s, client_s_dn: s, consumer: i % 2 ? null : s, remote_addr: s, ...(i % 3 === 0 ? {} : { grpc_status: i % 3 === 1 ? null : s }) })
    t.equal(formatAccessLine(e), viaJson(e), `string of code units ${[...s].map((c) => c.charCodeAt(0).toString(16)).join(' ') || '(empty)'}`)
  }
  for (const n of [0, -0, 1.25, 0.1 + 0.2, 1e21, 1e-7, NaN, Infinity]) {
    const e = entry(0, { latency_ms: n, upstream_latency_ms: n, status: n })
    t.equal(formatAccessLine(e), viaJson(e), `number ${String(n)}`)
  }
})
