import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { childrenOf } from '../lib/proc-tree.js'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { ROOT, startGateway, writeGatewayConfig } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { find, parsePrometheus } from '../lib/prometheus.js'
import { childEnv, collect, spawnNode, stopProcess } from '../lib/proc.js'
import { closeAgents, httpGet, httpsGet, type HttpReply } from '../lib/tls-client.js'

const SNI = 'redos.test'
/** 40 a's then a character no pattern accepts: exponential work for a backtracking engine. */
const EVIL = `${'a'.repeat(40)}!`
/** Generous: exponential backtracking on EVIL takes hours. */
const BOUND_MS = 5_000

/** Patterns with nested quantifiers: catastrophic for backtracking, fine for V8's linear engine. */
const LINEAR_OK = ['^/(a+)+$', '^/(a|a)*b']
/** Catastrophic patterns V8's linear engine cannot run (backreference, lookarounds): no fallback. */
const NOT_LINEAR = ['^/(a+)+\\1$', '^/(?=(a+)+$)a', '^/(?!(a|a)*b)']

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '')

/** `p`, or a rejection after `ms` (a frozen worker would never answer). */
const within = <T>(p: Promise<T>, ms = BOUND_MS * 2): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())])

/** A request and how long its answer took. */
async function timed(fn: () => Promise<HttpReply>): Promise<{ status: number; ms: number; reply?: HttpReply; error?: string }> {
  const start = Date.now()
  try {
    const reply = await within(fn())
    return { status: reply.status, ms: Date.now() - start, reply }
  } catch (err) {
    return { status: 0, ms: Date.now() - start, error: (err as Error).message }
  }
}

t.test('ReDoS: skip_mtls_uri_regex, route vars and proxy-rewrite regex_uri', async (t) => {
  const etcd = await startEtcd(t)
  const plain = await startEcho(t, 'plain')
  const viaVars = await startEcho(t, 'vars')
  const gw = await startGateway(t, { etcd: etcd.url, workers: 1 })
  const admin = adminOf(gw)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  t.teardown(closeAgents)
  const pki = makePki({ server: [SNI] })
  const up = (echo: { hostPort: string }): object => ({ type: 'roundrobin', nodes: { [echo.hostPort]: 1 } })
  const put = (key: string, v: object): Promise<unknown> => client.put(`/apisix/${key}`).value(JSON.stringify(v)).exec()
  const sslWith = (id: string, sni: string, skip: string[]): object => ({ id, sni, cert: pki.server.cert, key: pki.server.key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: skip } })
  const tls = { port: gw.https, servername: SNI, ca: pki.ca.cert }

  t.test('admin: a pattern V8 cannot run in linear time → 400 naming the field; nested quantifiers (linear engine) → stored', async (t) => {
    const kinds: [string, (p: string, n: number) => [string, object], RegExp][] = [
      ['skip_mtls_uri_regex', (p, n) => [`ssls/a${n}`, sslWith(`a${n}`, `a${n}.redos.test`, [p])], /client\.skip_mtls_uri_regex\[0\].*linear time/],
      ['route vars', (p, n) => [`routes/v${n}`, { uri: `/v${n}/*`, vars: [['uri', '~~', p]], upstream: up(plain) }], /'vars'.*linear time/],
      ['proxy-rewrite regex_uri', (p, n) => [`routes/r${n}`, { uri: `/r${n}/*`, plugins: { 'proxy-rewrite': { regex_uri: [p, '/x'] } }, upstream: up(plain) }], /proxy-rewrite.*regex_uri.*linear time/],
    ]
    let n = 0
    for (const [kind, body, msg] of kinds) {
      for (const p of NOT_LINEAR) {
        const [path, obj] = body(p, n++)
        const r = await admin.put(path, obj)
        t.equal(r.status, 400, `${kind} ${p} → 400`)
        t.match(r.json?.error_msg, msg, `${kind} ${p}: ${String(r.json?.error_msg)}`)
        t.equal((await client.get(`/apisix/${path}`).string()), null, `${kind} ${p}: nothing stored`)
      }
      for (const p of LINEAR_OK) {
        const [path, obj] = body(p, n++)
        const r = await admin.put(path, obj)
        t.equal(r.status, 201, `${kind} ${p} → stored (runs on the linear engine)${r.status === 201 ? '' : `: ${r.text}`}`)
        await admin.delete(path)
      }
    }
  })

  // written straight into etcd, bypassing the admin
  await put('ssls/redos', sslWith('redos', SNI, ['^/(a+)+$']))
  await put('routes/all', { uri: '/*', upstream: up(plain) })
  await put('routes/vars', { uri: '/v/*', vars: [['uri', '~~', '^/v/(a+)+$']], upstream: up(viaVars) })
  await put('routes/rewrite', { uri: '/r/*', plugins: { 'proxy-rewrite': { regex_uri: ['^/r/(a+)+$', '/rewritten'] } }, upstream: up(plain) })
  await eventually(() => within(httpsGet('/aaa', tls)), (r) => r.status === 200, { timeoutMs: 15_000, describe: gw.output })
  await eventually(() => within(httpGet(gw.http, '/r/aaa')), (r) => r.status === 200 && r.json?.url === '/rewritten', { timeoutMs: 15_000, describe: gw.output })
  const workersBefore = childrenOf(gw.pid)

  t.test('reference: without the fallback flag, ^/(a+)+$ on /a×40! runs past 3 s (killed)', async (t) => {
    const r = spawnSync(process.execPath, ['-e', `/^\\/(a+)+$/.test('/${EVIL}')`], { timeout: 3_000, killSignal: 'SIGKILL', env: childEnv() })
    t.equal(r.signal, 'SIGKILL', 'the plain node process was still matching after 3 s')
  })

  t.test(`data plane: /a×40! on an mTLS-optional SNI without a certificate → 400 within ${BOUND_MS} ms, a normal request served meanwhile`, async (t) => {
    const evil = Array.from({ length: 4 }, (_, i) => timed(() => httpsGet(`/${EVIL}`, { ...tls, host: `${SNI}`, minVersion: i % 2 === 0 ? 'TLSv1.2' : 'TLSv1.3' })))
    const normal = timed(() => httpGet(gw.http, '/normal'))
    const [n, ...e] = await Promise.all([normal, ...evil])
    for (const r of e) {
      t.equal(r.status, 400, `evil URI → 400 (the whitelist does not match) ${r.error ?? ''}`)
      t.ok(r.ms < BOUND_MS, `answered in ${r.ms} ms`)
    }
    t.equal(n?.status, 200, `a concurrent normal request on another connection → 200 in ${n?.ms} ms`)
    const ok = await timed(() => httpsGet(`/${'a'.repeat(40)}`, tls))
    t.equal(ok.status, 200, `/a×40 matches the whitelist → proxied without a certificate (${ok.ms} ms)`)
    t.comment(`evil: ${e.map((r) => `${r.ms} ms`).join(', ')}; normal: ${n?.ms} ms`)
  })

  t.test(`data plane: route vars and regex_uri with ^(a+)+$ on /…/a×40! answer within ${BOUND_MS} ms`, async (t) => {
    const [v, r, n] = await Promise.all([timed(() => httpGet(gw.http, `/v/${EVIL}`)), timed(() => httpGet(gw.http, `/r/${EVIL}`)), timed(() => httpGet(gw.http, '/normal'))])
    t.equal(v.status, 200, 'vars do not match → the /* route serves it')
    t.equal(v.reply?.headers['x-upstream'], 'plain', 'not through the vars route')
    t.ok(v.ms < BOUND_MS, `vars: ${v.ms} ms`)
    t.equal(r.status, 200, 'the rewrite route serves it')
    t.equal(r.reply?.json?.url, `/r/${EVIL}`, 'regex_uri does not match → the URI goes up unchanged')
    t.ok(r.ms < BOUND_MS, `regex_uri: ${r.ms} ms`)
    t.equal(n.status, 200, `normal request meanwhile: ${n.ms} ms`)
    t.equal((await httpGet(gw.http, `/v/${'a'.repeat(40)}`)).headers['x-upstream'], 'vars', 'a matching URI goes through the vars route')
  })

  t.test('a primary started without the regexp flags still forks workers with both (cluster execArgv)', async (t) => {
    const c = await writeGatewayConfig(t, { etcd: etcd.url, workers: 2 })
    const cli = join(ROOT, 'dist', 'bin', 'cli.js')
    // a launcher file, not `node -e`: execArgv (-e and its code) is what cluster workers run with
    const launcher = join(c.dir, 'launch.mjs')
    writeFileSync(launcher, `const m = await import(${JSON.stringify(pathToFileURL(cli).href)})\nawait m.main(process.argv.slice(2))\n`)
    const proc = spawnNode(process.execPath, [launcher, 'start', '-c', c.file], { cwd: c.dir, stdio: ['ignore', 'pipe', 'pipe'] })
    const output = collect(proc)
    t.teardown(() => stopProcess(proc))
    await eventually(() => httpGet(c.http, '/apisix/status/ready'), (r) => r.status === 200, { timeoutMs: 60_000, describe: output })
    const pid = proc.pid ?? 0
    t.notOk(cmdline(pid).some((a) => a.startsWith('--enable-experimental-regexp')), `the primary runs without them: ${cmdline(pid).slice(0, 3).join(' ')}`)
    const workers = await eventually(async () => childrenOf(pid), (p) => p.length === 2, { timeoutMs: 30_000, describe: output })
    for (const w of workers) {
      const argv = cmdline(w)
      t.ok(argv.includes('--enable-experimental-regexp-engine') && argv.includes('--enable-experimental-regexp-engine-on-excessive-backtracks'), `worker ${w} runs with both flags`)
      t.ok(argv.includes('--no-allocation-site-pretenuring'), `worker ${w} runs with the heap flag (HEAP_FLAGS)`)
    }
    const r = await timed(() => httpsGet(`/${EVIL}`, { ...tls, port: c.https }))
    t.equal(r.status, 400, 'evil URI → 400')
    t.ok(r.ms < BOUND_MS, `answered in ${r.ms} ms`)
    t.equal(await stopProcess(proc), 0, 'SIGTERM → exit 0')
  })

  t.test('data plane: a pattern with no linear form, or that does not compile, written into etcd → refused and counted, the last good value kept', async (t) => {
    const rejected = async (resource: string): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`)).text()
      return find(parsePrometheus(text), 'apisix_config_rejected_total', { resource })[0]?.value ?? 0
    }
    const cases: [string, string, object][] = [
      ['ssls', 'backreference skip regex', sslWith('redos', SNI, ['^/(a+)+\\1$'])],
      ['ssls', 'lookahead skip regex', sslWith('redos', SNI, ['^/(?=(a+)+$)a'])],
      ['ssls', 'skip regex that does not compile', sslWith('redos', SNI, ['^/(a+'])],
      ['routes', 'backreference in vars', { uri: '/v/*', vars: [['uri', '~~', '^/v/(a+)+\\1$']], upstream: up(viaVars) }],
      ['routes', 'vars regex that does not compile', { uri: '/v/*', vars: [['uri', '~~', '^/v/(a+']], upstream: up(viaVars) }],
      ['routes', 'backreference in regex_uri', { uri: '/r/*', plugins: { 'proxy-rewrite': { regex_uri: ['^/r/(a+)+\\1$', '/rewritten'] } }, upstream: up(plain) }],
    ]
    for (const [resource, name, value] of cases) {
      const before = await rejected(resource)
      const key = resource === 'ssls' ? 'ssls/redos' : `routes/${name.includes('regex_uri') ? 'rewrite' : 'vars'}`
      await put(key, value)
      await eventually(() => rejected(resource), (n) => n === before + 1, { timeoutMs: 10_000, describe: gw.output })
      t.pass(`${name} → apisix_config_rejected_total{resource="${resource}"} ${before} → ${before + 1}`)
      // the last good value serves on: its patterns fall back to the linear engine
      const [a, b, c] = await Promise.all([timed(() => httpsGet(`/${EVIL}`, tls)), timed(() => httpGet(gw.http, `/v/${EVIL}`)), timed(() => httpGet(gw.http, `/r/${EVIL}`))])
      t.same([a.status, b.status, c.status], [400, 200, 200], `${name}: the requests still get their answers`)
      t.ok(Math.max(a.ms, b.ms, c.ms) < BOUND_MS, `${name}: within ${Math.max(a.ms, b.ms, c.ms)} ms`)
    }
    t.equal((await httpGet(gw.http, `/v/${'a'.repeat(40)}`)).headers['x-upstream'], 'vars', 'the vars route still serves with its last good pattern')
    t.equal((await httpGet(gw.http, '/r/aaa')).json?.url, '/rewritten', 'and the rewrite route with its own')
    t.same(childrenOf(gw.pid), workersBefore, 'the worker never crashed nor was replaced')
  })
})
