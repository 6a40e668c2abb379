/**
 * Proxy benchmark: keep-alive HTTPS requests/s and p50/p99 latency through the gateway next to
 * nginx (Debian's package) proxying the same upstream with the same certificate, in the same
 * run, and the route-matching cost with 10 and 10,000 routes. Not a test: it prints figures.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { freePort } from '../lib/ports.js'
import { eventually } from '../lib/eventually.js'
import { measureMatch } from './route-match.js'

const DURATION = process.env['BENCH_SECONDS'] ?? '10'
const CONNECTIONS = process.env['BENCH_CONNECTIONS'] ?? '32'

/** The test helpers want a tap Test for their teardowns; the bench runs them at the end. */
const teardowns: (() => unknown)[] = []
const fakeT = { teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as Test

const has = (bin: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Installs a Debian package when its binary is missing (the bench's only outside dependency). */
function ensure(bin: string, pkgs: string[]): void {
  if (has(bin) || (bin === 'nginx' && has('/usr/sbin/nginx'))) return
  console.log(`installing ${pkgs.join(' or ')} for ${bin} …`)
  for (const p of pkgs) {
    try {
      execFileSync('sh', ['-c', `apt-get install -y ${p} || (apt-get update && apt-get install -y ${p})`], { stdio: 'inherit' })
      if (has(bin) || has(`/usr/sbin/${bin}`)) return
    } catch {
      /* try the next package */
    }
  }
  throw new Error(`${bin} is missing and could not be installed`)
}

function startNginx(dir: string, conf: string): ChildProcess {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, conf)
  const bin = has('nginx') ? 'nginx' : '/usr/sbin/nginx'
  const p = spawn(bin, ['-p', dir, '-c', file, '-e', join(dir, 'error.log')], { stdio: 'ignore' })
  teardowns.push(() => p.kill('SIGTERM'))
  return p
}

const temps = (dir: string): string =>
  ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((n) => `${n}_temp_path ${join(dir, n)};`).join('\n  ')

interface WrkResult {
  readonly rps: number
  readonly p50ms: number
  readonly p99ms: number
  readonly errors: string
}

const toMs = (v: string): number => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim())
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n
}

function wrk(url: string, seconds: string): WrkResult {
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '')
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '')
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses: \d+/.exec(out)?.[0]].filter(Boolean).join('; ')
  return { rps, p50ms: p50, p99ms: p99, errors }
}

/** Runs the proxy benchmark and prints its figures; its processes are stopped whatever happens. */
export async function runProxyBench(): Promise<void> {
  try {
    await measure()
  } finally {
    for (const fn of teardowns.reverse()) await fn()
    teardowns.length = 0
  }
}

async function measure(): Promise<void> {
  ensure('nginx', ['nginx-light', 'nginx'])
  ensure('wrk', ['wrk'])
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-'))
  teardowns.push(() => rmSync(dir, { recursive: true, force: true }))
  const pki = makePki({ server: ['localhost'] })
  writeFileSync(join(dir, 'cert.pem'), pki.server.cert + pki.ca.cert)
  writeFileSync(join(dir, 'key.pem'), pki.server.key)
  const [upPort, nginxPort, nginxPlain] = [await freePort(), await freePort(), await freePort()]

  // the upstream both proxies forward to: a separate nginx answering a small body
  startNginx(join(dir, 'upstream'), `worker_processes 1;\ndaemon off;\npid ${join(dir, 'upstream', 'pid')};\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  ${temps(join(dir, 'upstream'))}\n  keepalive_requests 100000;\n  server { listen 127.0.0.1:${upPort}; location / { return 200 "hello from the upstream\\n"; } }\n}\n`)
  // the reference proxy: nginx, one worker, TLS with the same certificate, keep-alive to the upstream
  startNginx(
    join(dir, 'proxy'),
    `worker_processes 1;\ndaemon off;\npid ${join(dir, 'proxy', 'pid')};\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  ${temps(join(dir, 'proxy'))}\n  keepalive_requests 100000;\n  upstream backend { server 127.0.0.1:${upPort}; keepalive 320; }\n  server {\n    listen 127.0.0.1:${nginxPort} ssl;\n    listen 127.0.0.1:${nginxPlain};\n    server_name localhost;\n    ssl_certificate ${join(dir, 'cert.pem')};\n    ssl_certificate_key ${join(dir, 'key.pem')};\n    location / {\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_set_header Host $http_host;\n      proxy_set_header X-Real-IP $remote_addr;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      proxy_set_header X-Forwarded-Proto $scheme;\n    }\n  }\n}\n`,
  )

  const etcd = await startEtcd(fakeT)
  const profile = process.env['BENCH_PROFILE_DIR']
  const gw = await startGateway(fakeT, {
    etcd: etcd.url,
    workers: 1,
    config: { apisix: { access_log: { enable: false } } },
    // BENCH_PROFILE_DIR: write V8 CPU profiles of the gateway's processes there
    ...(profile ? { env: { ...(process.env as Record<string, string>), NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` } } : {}),
  })
  const admin = adminOf(gw)
  const ssl = await admin.put('ssls/bench', { sni: 'localhost', cert: pki.server.cert, key: pki.server.key })
  const route = await admin.put('routes/bench', { uri: '/*', upstream: { nodes: { [`127.0.0.1:${upPort}`]: 1 } } })
  if (ssl.status >= 300 || route.status >= 300) throw new Error(`admin refused the bench objects: ${ssl.text} ${route.text}`)
  await eventually(() => fetch(`http://127.0.0.1:${gw.http}/x`).then((r) => r.status), (s) => s === 200, { timeoutMs: 15_000 })
  await eventually(() => fetch(`http://127.0.0.1:${upPort}/`).then((r) => r.status), (s) => s === 200, { timeoutMs: 5_000 })

  console.log(`keep-alive HTTPS, ${CONNECTIONS} connections, ${DURATION} s each, wrk -t1, one worker each, ${process.env['BENCH_NOTE'] ?? ''}`)
  const targets: [string, string][] = [
    ['nginx', `https://localhost:${nginxPort}/`],
    ['gateway', `https://localhost:${gw.https}/`],
    ['nginx (plain HTTP)', `http://127.0.0.1:${nginxPlain}/`],
    ['gateway (plain HTTP)', `http://127.0.0.1:${gw.http}/`],
  ]
  for (const [, url] of targets) wrk(url, '2') // warm-up (JIT, pools, sessions)
  const results = new Map<string, WrkResult>()
  for (const [name, url] of targets) results.set(name, wrk(url, DURATION))
  const row = (name: string, r: WrkResult): string =>
    `${name.padEnd(20)} ${r.rps.toFixed(0).padStart(9)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms${r.errors ? `   (${r.errors})` : ''}`
  for (const [name, r] of results) console.log(row(name, r))
  const g = results.get('gateway')!
  const n = results.get('nginx')!
  console.log(`HTTPS gateway / nginx: ${(g.rps / n.rps).toFixed(2)}× the requests/s, p99 ${(g.p99ms / n.p99ms).toFixed(2)}×`)
  const gp = results.get('gateway (plain HTTP)')!
  const np = results.get('nginx (plain HTTP)')!
  console.log(`plain HTTP gateway / nginx: ${(gp.rps / np.rps).toFixed(2)}× the requests/s`)

  console.log('\nroute matching (in process, mixed exact/prefix/host routes, hits and misses):')
  for (const count of [10, 10_000]) {
    const m = measureMatch(count)
    console.log(`${String(count).padStart(6)} routes: ${m.nsPerMatch.toFixed(0).padStart(5)} ns per match`)
  }
}

