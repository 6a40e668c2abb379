// `npm run bench`: the gateway against nginx and HAProxy (Debian packages, installed when
// missing) side by side on loopback, all proxying one fast upstream (nginx `return 200`), with a
// plain Node proxy (t/bench/node-ref.mjs) as the platform's reference where it applies (no
// client certificates), and a plain node:http2 one for the HTTP/2 row (t/bench/node-h2-ref.mjs).
// Every server first gets a short warm-up of each load (discarded); then every scenario runs 3
// times, interleaved; medians go to a table on stdout and bench/results.md.
// Plain JavaScript on purpose: it runs the built gateway (bin/setup.sh builds dist/) and needs
// no npm package. Options: --quick (short runs, one repetition, no warm-up), --only=1,2,5
// (scenarios), --hold=S (keep the servers up S seconds before the scenarios, to measure by hand);
// BENCH_PROF=DIR writes the gateway processes' V8 CPU profiles there; BENCH_NODE_ARGS adds Node
// flags to the gateway (its workers inherit them), to compare V8 settings; with
// BENCH_NODE_ARGS="--import $PWD/t/bench/worker-probe.mjs" and BENCH_PROBE=DIR the workers record
// what their HTTP/2 streams' latency is made of (GC, run-queue waits; see that file). Row 10 (this build
// against the previous one) builds BENCH_OLD_REF (default: the build of the last full run, named
// in bench/results.md) in a temp dir (git archive, its npm packages, tsc) with the same Node, and
// runs it next to this one; BENCH_OLD_NODE=/usr/bin/node runs it on another Node instead (then
// BENCH_OLD_REF defaults to OLD_REF, the last commit on Node 20).
//
// Adding a row: a scenario number in ONLY's default list, its servers (started in main, stopped
// before scenario 5), one compare() call, and its targets in writeResults() (TARGETS).
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync, symlinkSync } from 'node:fs'
import { createServer, connect as connectTcp } from 'node:net'
import { connect } from 'node:tls'
import { request } from 'node:http'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const ONLY = (argv.find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']).map(Number)
/** The last commit that ran on Node 20 (before the Node 24 switch): row 10's build with BENCH_OLD_NODE. */
const OLD_REF = '5c4137c'
/** Row 10's build when bench/results.md names none: the start of session 11. */
const FALLBACK_PREVIOUS = '658b314'
const REPS = QUICK ? 1 : 3
/** Row 10's rounds: its verdict compares the builds' ratio with the round-to-round spread, which needs rounds (BENCH_PREV_ROUNDS: more, shorter-looking rounds on a busy machine). */
const PREV_ROUNDS = Number(process.env.BENCH_PREV_ROUNDS ?? 0) || (QUICK ? 2 : 5)
/** Row 10's lines (BENCH_PREV_LINES=ka,h2,hs,prop, default all): keep-alive, HTTP/2, the handshake pair, propagation. */
const PREV_LINES = new Set((process.env.BENCH_PREV_LINES ?? 'ka,h2,hs,prop').split(','))
const KA_SECONDS = QUICK ? 3 : 8
const HS_SECONDS = QUICK ? 2 : 4
const BULK = QUICK ? [2_000, 10_000] : [10_000, 100_000]
const KEY = 'bench-admin-key-0123456789abcdef'
const dir = mkdtempSync(join(tmpdir(), 'apisix-bench-'))
const procs = []
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a)
const loads = []
const sampleLoad = () => loads.push(loadavg()[0])

// ---------- tools ----------
function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}
function ensureTools() {
  const want = [['nginx', 'nginx-light'], ['haproxy', 'haproxy'], ['wrk', 'wrk'], ['etcd', 'etcd-server'], ['openssl', 'openssl'], ['h2load', 'nghttp2-client']]
  const missing = want.filter(([c]) => !have(c) && !existsSync(`/usr/sbin/${c}`))
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.map((m) => m[0]).join(', ')}: apt-get install -y ${missing.map((m) => m[1]).join(' ')}`)
  log('installing', missing.map((m) => m[1]).join(' '))
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  let r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing.map((m) => m[1])], { stdio: 'inherit', env })
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing.map((m) => m[1])], { stdio: 'inherit', env })
  }
  if (r.status !== 0) throw new Error('apt-get install failed')
}
const bin = (c) => (have(c) ? c : `/usr/sbin/${c}`)

// ---------- processes ----------
function start(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  let out = ''
  p.stdout.on('data', (d) => (out = (out + d).slice(-20000)))
  p.stderr.on('data', (d) => (out = (out + d).slice(-20000)))
  p.output = () => out
  procs.push(p)
  return p
}
async function stop(p, sig = 'SIGTERM') {
  if (p.exitCode !== null || p.signalCode !== null) return
  const done = new Promise((r) => p.once('exit', r))
  p.kill(sig)
  const t = setTimeout(() => p.kill('SIGKILL'), 15000)
  await done
  clearTimeout(t)
}
process.on('exit', () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
})
// interrupted: every server stops by its own signal first (an nginx master killed outright
// leaves its workers orphaned, holding CPU and ports), then the exit handler kills what is left
for (const s of ['SIGINT', 'SIGTERM'])
  process.on(s, () => {
    const live = procs.filter((p) => p.exitCode === null && p.signalCode === null)
    for (const p of live) p.kill('SIGTERM')
    const all = Promise.all(live.map((p) => new Promise((r) => p.once('exit', r))))
    void Promise.race([all, sleep(5000)]).then(() => {
      rmSync(dir, { recursive: true, force: true })
      process.exit(130)
    })
  })

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function until(fn, ms, what) {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await sleep(20)
  }
  throw new Error(`timed out: ${what} (${last?.message ?? ''})`)
}
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** pid → [ppid, cpu ticks, rss pages] for every process */
function procTable() {
  const t = new Map()
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8')
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      t.set(Number(e), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rss: Number(f[21]) })
    } catch {
      // gone
    }
  }
  return t
}
function tree(pid, t = procTable()) {
  const out = [pid]
  for (let i = 0; i < out.length; i++) for (const [p, v] of t) if (v.ppid === out[i]) out.push(p)
  return out.filter((p) => t.has(p)).map((p) => t.get(p))
}
const treeCpu = (pid) => tree(pid).reduce((s, v) => s + v.ticks, 0) / 100
const treeRssMiB = (pid) => (tree(pid).reduce((s, v) => s + v.rss, 0) * 4096) / 2 ** 20

// ---------- certificates ----------
function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}
function makeCerts() {
  const ext = (name) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${name === 'rsa' ? 'localhost,DNS:rsa.bench,DNS:rsa-m.bench' : 'ec.bench,DNS:ec-m.bench'}\nextendedKeyUsage=serverAuth\n`)
    return `${name}.ext`
  }
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=Bench CA')
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.csr', '-subj', '/CN=rsa.bench')
  openssl('x509', '-req', '-in', 'rsa.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'rsa.crt', '-days', '30', '-extfile', ext('rsa'))
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ec.key', '-out', 'ec.csr', '-subj', '/CN=ec.bench')
  openssl('x509', '-req', '-in', 'ec.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'ec.crt', '-days', '30', '-extfile', ext('ec'))
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/C=DE/O=Bench Org/CN=bench-client')
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '30', '-extfile', 'client.ext')
  for (const n of ['rsa', 'ec']) writeFileSync(join(dir, `${n}.pem`), readFileSync(join(dir, `${n}.crt`), 'utf8') + readFileSync(join(dir, `${n}.key`), 'utf8'))
  const f = (n) => readFileSync(join(dir, n), 'utf8')
  return { ca: f('ca.crt'), rsa: { cert: f('rsa.crt'), key: f('rsa.key') }, ec: { cert: f('ec.crt'), key: f('ec.key') } }
}

/**
 * A CRL of the bench CA listing `n` serials (none of them the client's), made by `openssl ca
 * -gencrl` from an index of `n` revoked entries.
 */
function makeCrl(n) {
  const d = join(dir, 'crl-ca')
  mkdirSync(d, { recursive: true })
  const lines = []
  for (let i = 0; i < n; i++) lines.push(`R\t301231235959Z\t260101000000Z\t${(0x10000000 + i).toString(16).toUpperCase()}\tunknown\t/CN=revoked-${i}`)
  writeFileSync(join(d, 'index.txt'), lines.join('\n') + '\n')
  writeFileSync(join(d, 'crlnumber'), '1000\n')
  writeFileSync(join(d, 'ca.cnf'), `[ ca ]\ndefault_ca = b\n[ b ]\ndatabase = ${d}/index.txt\ncrlnumber = ${d}/crlnumber\ncertificate = ${dir}/ca.crt\nprivate_key = ${dir}/ca.key\ndefault_md = sha256\ndefault_crl_days = 7\n`)
  openssl('ca', '-config', join(d, 'ca.cnf'), '-gencrl', '-out', join(d, 'crl.pem'))
  return readFileSync(join(d, 'crl.pem'), 'utf8')
}

// ---------- servers ----------
async function startUpstream(port) {
  const d = join(dir, 'upstream')
  mkdirSync(d, { recursive: true })
  const conf = `worker_processes 1; daemon off; pid ${d}/nginx.pid; error_log ${d}/error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:${port} reuseport backlog=4096; location / { return 200 "ok\\n"; } } }`
  writeFileSync(join(d, 'nginx.conf'), conf)
  const p = start(bin('nginx'), ['-p', d, '-c', join(d, 'nginx.conf')])
  await until(() => httpGet(port, '/').then((r) => r.status === 200), 10000, 'upstream nginx')
  return p
}
async function startNginx(port, up, grpc) {
  const d = join(dir, 'nginx')
  mkdirSync(d, { recursive: true })
  const srv = (name, cert, mtls) => `
  server { listen 127.0.0.1:${port} ssl http2${name === 'localhost' ? ' default_server' : ''}; server_name ${name};
    ssl_certificate ${dir}/${cert}.crt; ssl_certificate_key ${dir}/${cert}.key;
    ${mtls ? `ssl_verify_client on; ssl_client_certificate ${dir}/ca.crt; ssl_verify_depth 1;` : ''}
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      ${mtls ? 'proxy_set_header X-S-DN $ssl_client_s_dn; proxy_set_header X-Fp $ssl_client_fingerprint;' : ''} }
    location /echo.Echo/ { grpc_pass grpc://127.0.0.1:${grpc}; } }`
  const conf = `worker_processes 2; daemon off; pid ${d}/nginx.pid; error_log ${d}/error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s; ssl_protocols TLSv1.2 TLSv1.3;
  upstream up { server 127.0.0.1:${up}; keepalive 128; }
  ${srv('localhost', 'rsa', false)} ${srv('rsa.bench', 'rsa', false)} ${srv('rsa-m.bench', 'rsa', true)}
  ${srv('ec.bench', 'ec', false)} ${srv('ec-m.bench', 'ec', true)} }`
  writeFileSync(join(d, 'nginx.conf'), conf)
  const p = start(bin('nginx'), ['-p', d, '-c', join(d, 'nginx.conf')])
  await until(() => handshakeOnce(port, 'rsa.bench'), 10000, 'nginx front')
  return { name: 'nginx', port, pid: p.pid, proc: p }
}
/** BENCH_PROF=DIR: V8 CPU profiles of the gateways and the Node references (cluster workers inherit the flags). */
const profArgs = () => (process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : [])
/** The plain-Node reference's name in the tables. */
const REF = 'node reference'
/**
 * The plain-Node reference (t/bench/node-ref.mjs): node:https + undici, 2 cluster workers. `port`
 * asks for no client certificate; its `mtls` twin (same processes, `mtlsPort`) asks every client
 * for one and verifies it: the reference of the client-certificate rows.
 */
async function startNodeRef(port, up, mtlsPort) {
  const p = start(process.execPath, [...profArgs(), join(ROOT, 't', 'bench', 'node-ref.mjs'), JSON.stringify({ port, upstream: up, dir, mtlsPort })])
  await until(() => handshakeOnce(port, 'rsa.bench'), 10000, 'node reference')
  return { name: REF, port, pid: p.pid, proc: p, noClientCert: true, mtls: { name: REF, port: mtlsPort, pid: p.pid, proc: p } }
}
/** The plain node:http2 reference (t/bench/node-h2-ref.mjs): the HTTP/2 row's reference, under the same name. */
async function startNodeH2Ref(port, up) {
  const p = start(process.execPath, [...profArgs(), join(ROOT, 't', 'bench', 'node-h2-ref.mjs'), JSON.stringify({ port, upstream: up, dir })])
  await until(() => handshakeOnce(port, 'localhost'), 10000, 'node:http2 reference')
  return { name: REF, port, pid: p.pid, proc: p, noClientCert: true }
}
/** The gRPC upstream of scenario 8 (t/bench/grpc-upstream.mjs, h2c). */
async function startGrpcUpstream(port) {
  const p = start(process.execPath, [join(ROOT, 't', 'bench', 'grpc-upstream.mjs'), JSON.stringify({ port })])
  await until(() => new Promise((r) => { const s = connectTcp(port, '127.0.0.1', () => (s.destroy(), r(true))); s.on('error', () => r(false)) }), 10000, 'gRPC upstream')
  return p
}
async function startHaproxy(port, up) {
  const d = join(dir, 'haproxy')
  mkdirSync(d, { recursive: true })
  writeFileSync(
    join(d, 'crt-list'),
    [`${dir}/rsa.pem [verify none] localhost rsa.bench`, `${dir}/rsa.pem [verify required ca-file ${dir}/ca.crt] rsa-m.bench`,
      `${dir}/ec.pem [verify none] ec.bench`, `${dir}/ec.pem [verify required ca-file ${dir}/ca.crt] ec-m.bench`].join('\n') + '\n',
  )
  const conf = `global
  nbthread 2
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  http-reuse always
frontend fe
  bind 127.0.0.1:${port} ssl crt-list ${d}/crt-list
  http-request set-header X-S-DN %[ssl_c_s_dn] if { ssl_c_used }
  http-request set-header X-Fp %[ssl_c_sha1,hex,lower] if { ssl_c_used }
  default_backend be
backend be
  server up 127.0.0.1:${up}
`
  writeFileSync(join(d, 'haproxy.cfg'), conf)
  const p = start(bin('haproxy'), ['-db', '-f', join(d, 'haproxy.cfg')])
  await until(() => handshakeOnce(port, 'rsa.bench'), 10000, 'haproxy')
  return { name: 'haproxy', port, pid: p.pid, proc: p }
}
async function startEtcd() {
  const d = join(dir, 'etcd')
  const [client, peer] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${client}`
  const p = start('etcd', ['--data-dir', d, '--name', 'b', '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `b=http://127.0.0.1:${peer}`, '--log-level', 'error', '--quota-backend-bytes', String(4 * 2 ** 30),
    // scenario 11's ssl objects hold a 100k-entry CRL (3 MB of PEM): past etcd's 1.5 MiB default
    '--max-request-bytes', String(8 * 2 ** 20)])
  await until(() => fetch(`${url}/health`).then((r) => r.ok), 15000, 'etcd')
  return { url, proc: p }
}
function gatewayConfig(etcdUrl) {
  return {
    apisix: { node_listen: [{ ip: '127.0.0.1', port: 0 }], workers: 2, ssl: { enable: true, listen: [{ ip: '127.0.0.1', port: 0 }] }, access_log: { enable: false } },
    plugin_attr: { prometheus: { enable_export_server: false } },
    deployment: { admin: { admin_key: [{ name: 'admin', key: KEY, role: 'admin' }], admin_listen: { ip: '127.0.0.1', port: 0 } }, etcd: { host: [etcdUrl], prefix: '/apisix', startup_retry: 10 } },
  }
}
/**
 * Starts `bin/apisix start` with 2 workers; resolves once both workers answer ready (or `probeSni`
 * handshakes). `o.name` names it in the tables (default `gateway`), `o.accessLog` turns the access
 * log on (a file in the bench dir), `o.node`/`o.root` run another build on another Node (row 10).
 */
async function startGateway(etcdUrl, ports, probeSni, o = {}) {
  const name = o.name ?? 'gateway'
  const c = gatewayConfig(etcdUrl)
  c.apisix.node_listen[0].port = ports.http
  c.apisix.ssl.listen[0].port = ports.https
  c.deployment.admin.admin_listen.port = ports.admin
  const slug = name.replace(/[^a-z0-9]+/gi, '-')
  if (o.accessLog) c.apisix.access_log = { enable: true, path: join(dir, `access-${slug}.log`) }
  const file = join(dir, `${slug}.yaml`)
  writeFileSync(file, JSON.stringify(c, null, 1))
  const t0 = performance.now()
  const p = start(o.node ?? process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), ...profArgs(), '--enable-experimental-regexp-engine', '--enable-experimental-regexp-engine-on-excessive-backtracks', join(o.root ?? ROOT, 'bin', 'apisix'), 'start', '-c', file], { cwd: dir })
  let streak = 0
  await until(
    async () => {
      if (p.exitCode !== null) throw new Error(`gateway exited: ${p.output()}`)
      const r = await httpGet(ports.http, '/apisix/status/ready')
      streak = r.status === 200 ? streak + 1 : 0
      return streak >= 4 && (!probeSni || (await handshakeOnce(ports.https, probeSni)))
    },
    120000,
    'gateway ready',
  )
  const startup = (performance.now() - t0) / 1000
  return { name, port: ports.https, pid: p.pid, proc: p, startup, ports }
}
const freePorts = async () => ({ http: await freePort(), https: await freePort(), admin: await freePort() })

/** The build the committed bench/results.md measured: named in its first lines, else in the subject of the commit that wrote it. */
function lastFullRunBuild() {
  const named = /\bbuild ([0-9a-f]{7,40})\b/.exec(existsSync(join(ROOT, 'bench', 'results.md')) ? readFileSync(join(ROOT, 'bench', 'results.md'), 'utf8').slice(0, 600) : '')?.[1]
  if (named) return named
  const subject = spawnSync('git', ['-C', ROOT, 'log', '-1', '--format=%s', '--', 'bench/results.md'], { encoding: 'utf8' }).stdout ?? ''
  return /full run at ([0-9a-f]{7,40})/.exec(subject)?.[1] ?? FALLBACK_PREVIOUS
}
/** This checkout's commit, `+` when its sources differ from it. */
function thisBuild() {
  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'core', 'admin', 'bin', 'package-lock.json'], { encoding: 'utf8' }).stdout.trim() !== ''
  return `${head || '?'}${dirty ? '+' : ''}`
}

/**
 * Row 10's previous build: BENCH_OLD_REF (default: the last full run's build) unpacked from git
 * into the bench dir and built with this Node, or with BENCH_OLD_NODE (an older runtime; then
 * the default ref is OLD_REF). Its npm packages are this checkout's when its package-lock.json is
 * the same (a symlink: no network, no install time), else `npm ci` with that Node.
 */
function buildPrevious() {
  const node = process.env.BENCH_OLD_NODE ?? process.execPath
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  if (!version) throw new Error(`row 10: ${node} does not run (BENCH_OLD_NODE)`)
  const ref = process.env.BENCH_OLD_REF ?? (process.env.BENCH_OLD_NODE ? OLD_REF : lastFullRunBuild())
  const root = join(dir, 'previous-build')
  mkdirSync(root)
  log(`row 10: building ${ref} with Node ${version} in ${root}`)
  execFileSync('sh', ['-c', `git -C '${ROOT}' archive '${ref}' | tar -x -C '${root}'`])
  const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}` }
  const sameLock = readFileSync(join(root, 'package-lock.json'), 'utf8') === readFileSync(join(ROOT, 'package-lock.json'), 'utf8')
  if (sameLock) symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'))
  else execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, env, stdio: 'ignore' })
  execFileSync(node, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, env, stdio: 'ignore' })
  writeFileSync(join(root, 'dist', '.stamp'), `${new Date().toISOString()}\n`) // bin/apisix would rebuild without it
  const sameNode = version === process.version
  return { node, version, ref, root, name: `previous build (${ref}${sameNode ? '' : `, Node ${version}`})`, packages: sameLock ? 'this checkout\u2019s node_modules' : 'npm ci' }
}

// ---------- clients ----------
function httpGet(port, path, method = 'GET', body, headers = {}) {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path, method, agent: false, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let b = ''
      res.on('data', (d) => (b += d))
      res.on('end', () => resolve({ status: res.statusCode, body: b }))
    })
    r.on('error', reject)
    r.setTimeout(10000, () => r.destroy(new Error('timeout')))
    r.end(body)
  })
}
const admin = (gw, path, body) => httpGet(gw.ports.admin, `/apisix/admin/${path}`, 'PUT', JSON.stringify(body), { 'x-api-key': KEY })
function handshakeOnce(port, servername) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false })
    s.on('secureConnect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
    s.setTimeout(5000, () => (s.destroy(), resolve(false)))
  })
}
/** Runs a generator with the server's CPU measured over the run; returns the parsed result. */
async function measured(server, fn) {
  sampleLoad()
  const c0 = treeCpu(server.pid)
  const t0 = performance.now()
  const r = await fn()
  const secs = (performance.now() - t0) / 1000
  r.serverCpu = (100 * (treeCpu(server.pid) - c0)) / secs
  return r
}
function wrk(server) {
  return measured(server, async () => {
    const cmd = `wrk -t1 -c32 -d${KA_SECONDS}s --latency https://localhost:${server.port}/; times`
    const out = await runChild('sh', ['-c', cmd])
    const unit = (v, u) => Number(v) * ({ us: 1e-3, ms: 1, s: 1000 }[u] ?? 1)
    const q = (p) => {
      const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out)
      return m ? unit(m[1], m[2]) : NaN
    }
    const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
    const errs = /Socket errors: (.*)/.exec(out)?.[1]
    const times = out.trim().split('\n').pop() ?? ''
    const tm = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
    return { rate, p50ms: q(50), p99ms: q(99), errors: non2xx + (errs ? 1 : 0), genCpu: (100 * ((tm[0] ?? 0) + (tm[1] ?? 0))) / KA_SECONDS }
  })
}
/**
 * h2load over TLS (ALPN h2, SNI localhost) for KA_SECONDS: 16 connections, 8 streams each. p50/p99
 * come from h2load's per-request log (it prints no percentiles). `grpc`: each request is a unary
 * gRPC call (POST, application/grpc, TE: trailers, an empty message).
 */
function h2load(server, o) {
  return measured(server, async () => {
    const logFile = join(dir, `h2load-${server.port}.log`)
    const args = ['-t1', '-c16', '-m8', `-D${KA_SECONDS}`, `--log-file=${logFile}`]
    if (o.grpc) {
      const body = join(dir, 'grpc-empty.bin')
      writeFileSync(body, Buffer.alloc(5))
      args.push('-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers')
    }
    const cmd = `h2load ${args.map((a) => `'${a}'`).join(' ')} https://localhost:${server.port}${o.path}; times`
    const out = await runChild('sh', ['-c', cmd])
    const done = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out)
    const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)
    const secs = Number(/finished in ([\d.]+)s/.exec(out)?.[1] ?? NaN)
    const durations = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => Number(l.split('\t')[2]) / 1000).filter(Number.isFinite).sort((a, b) => a - b)
    const q = (p) => durations[Math.max(0, Math.ceil((p / 100) * durations.length) - 1)] ?? NaN
    const times = out.trim().split('\n').pop() ?? ''
    const tm = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
    const errors = done ? Number(done[5]) + Number(done[6]) + Number(done[7]) + (codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0) : 1
    return { rate: Number(done?.[4] ?? NaN) / secs, p50ms: q(50), p99ms: q(99), errors, genCpu: (100 * ((tm[0] ?? 0) + (tm[1] ?? 0))) / KA_SECONDS }
  })
}
function load(server, mode, o) {
  return measured(server, async () => {
    const out = await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), mode, JSON.stringify({ port: server.port, ...o })])
    const r = JSON.parse(out.trim().split('\n').pop())
    r.genCpu = (100 * r.cpuSeconds) / r.seconds
    return r
  })
}
function runChild(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = start(cmd, args)
    p.on('exit', (code) => (code === 0 ? resolve(p.output()) : reject(new Error(`${cmd} ${args.join(' ')} → ${code}: ${p.output().slice(-2000)}`))))
  })
}

// ---------- results ----------
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)] : NaN
}
const rows = []
const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–')
function record(scenario, server, runs, unit) {
  const m = (k) => median(runs.map((r) => r[k]))
  const row = { scenario, server, unit, rate: m('rate'), p50: m('p50ms'), p99: m('p99ms'), serverCpu: m('serverCpu'), genCpu: m('genCpu'), errors: runs.reduce((s, r) => s + (r.errors ?? 0), 0), runs: runs.map((r) => r.rate), cpuRuns: runs.map((r) => r.serverCpu), extra: runs[0]?.extra }
  rows.push(row)
  log(`${scenario} ${server}: ${fmt(row.rate)} ${unit} p50 ${fmt(row.p50, 2)} ms p99 ${fmt(row.p99, 2)} ms (runs ${row.runs.map((x) => fmt(x)).join(' / ')}; errors ${row.errors})`)
}
/** Runs fn(server) `reps` times for every server, interleaved, and records medians. */
async function compareRounds(scenario, servers, unit, reps, fn) {
  const runs = new Map(servers.map((s) => [s, []]))
  for (let i = 0; i < reps; i++) for (const s of servers) runs.get(s).push(await fn(s))
  for (const s of servers) record(scenario, s.name, runs.get(s), unit)
}
/** Runs fn(server) REPS times for every server, interleaved, and records medians. */
const compare = (scenario, servers, unit, fn) => compareRounds(scenario, servers, unit, REPS, fn)

// ---------- bulk ssl objects ----------
async function etcdTxnPut(url, kvs) {
  const body = { success: kvs.map(([k, v]) => ({ request_put: { key: Buffer.from(k).toString('base64'), value: Buffer.from(v).toString('base64') } })) }
  const r = await fetch(`${url}/v3/kv/txn`, { method: 'POST', body: JSON.stringify(body) })
  if (!r.ok) throw new Error(`etcd txn ${r.status}: ${await r.text()}`)
}
async function etcdGet(url, key) {
  const r = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) })
  const j = await r.json()
  return j.kvs?.[0] ? Buffer.from(j.kvs[0].value, 'base64').toString() : undefined
}
/** Writes ssl objects bulk-{from..to-1} (one certificate, distinct SNIs) straight into etcd, 128 a transaction. */
async function bulkLoad(url, template, from, to) {
  const tpl = JSON.parse(template)
  const batches = []
  for (let i = from; i < to; i += 128) {
    const kvs = []
    for (let j = i; j < Math.min(to, i + 128); j++) kvs.push([`/apisix/ssls/bulk-${j}`, JSON.stringify({ ...tpl, id: `bulk-${j}`, snis: [`b${j}.bulk.bench`] })])
    batches.push(kvs)
  }
  let next = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < batches.length) await etcdTxnPut(url, batches[next++])
  }))
}

// ---------- main ----------
async function main() {
  ensureTools()
  const started = Date.now()
  log(`bench dir ${dir}; ${cpus().length} CPUs; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  const certs = makeCerts()
  const up = await freePort()
  await startUpstream(up)
  const grpcUp = await freePort()
  await startGrpcUpstream(grpcUp)
  const etcd = await startEtcd()
  const ports = { http: await freePort(), https: await freePort(), admin: await freePort() }
  let gw = await startGateway(etcd.url, ports)
  const ssl = (id, c, snis, mtls) => admin(gw, `ssls/${id}`, { cert: c.cert, key: c.key, snis, ...(mtls ? { client: { ca: certs.ca, depth: 1 } } : {}) })
  const upstream = { type: 'roundrobin', nodes: { [`127.0.0.1:${up}`]: 1 }, keepalive_pool: { size: 128 } }
  for (const r of [
    await ssl('rsa', certs.rsa, ['localhost', 'rsa.bench'], false),
    await ssl('rsa-m', certs.rsa, ['rsa-m.bench'], true),
    await ssl('ec', certs.ec, ['ec.bench'], false),
    await ssl('ec-m', certs.ec, ['ec-m.bench'], true),
    await admin(gw, 'routes/plain', { uri: '/*', upstream }),
    await admin(gw, 'routes/grpc', { uri: '/echo.Echo/*', upstream: { scheme: 'grpc', type: 'roundrobin', nodes: { [`127.0.0.1:${grpcUp}`]: 1 } } }),
    await admin(gw, 'routes/mtls', { uri: '/*', hosts: ['rsa-m.bench'], upstream,
      plugins: { 'proxy-rewrite': { headers: { set: { 'X-S-DN': '$ssl_client_s_dn', 'X-Fp': '$ssl_client_fingerprint' } } } } }),
  ]) if (r.status >= 300) throw new Error(`admin: ${r.status} ${r.body}`)
  await until(() => handshakeOnce(ports.https, 'ec-m.bench'), 10000, 'gateway ssl objects')
  const nginx = await startNginx(await freePort(), up, grpcUp)
  const haproxy = await startHaproxy(await freePort(), up)
  const ref = await startNodeRef(await freePort(), up, await freePort())
  const h2ref = await startNodeH2Ref(await freePort(), up)
  const h2Servers = [gw, nginx, h2ref]
  const servers = [gw, nginx, haproxy, ref]
  // the loads with a client certificate go to the reference's twin that asks for one
  const certServers = [...servers.filter((s) => !s.noClientCert), ref.mtls]
  // row 9: a second gateway with the access log on (the default; every other gateway row has it off)
  const gwLog = ONLY.includes(9) ? await startGateway(etcd.url, await freePorts(), 'rsa.bench', { name: 'gateway, access log on', accessLog: true }) : undefined
  // row 10: the previous build (the last full run's), against the same etcd
  const prev = ONLY.includes(10) ? buildPrevious() : undefined
  const gwPrev = prev ? await startGateway(etcd.url, await freePorts(), 'rsa.bench', { name: prev.name, node: prev.node, root: prev.root }) : undefined
  const extraGateways = [gwLog, gwPrev].filter(Boolean)
  for (const s of certServers) {
    const r = await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), 'keepalive', JSON.stringify({ port: s.port, servername: 'rsa-m.bench', connections: 1, seconds: 0.3, cert: join(dir, 'client.crt'), key: join(dir, 'client.key') })])
    if (JSON.parse(r.trim().split('\n').pop()).requests === 0) {
      const c = spawnSync('curl', ['-skv', '-i', '-m', '5', '--resolve', `rsa-m.bench:${s.port}:127.0.0.1`, '--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key'), `https://rsa-m.bench:${s.port}/`], { encoding: 'utf8' })
      throw new Error(`${s.name}: no mTLS request answered: ${c.stdout} ${c.stderr.slice(-300)} ${s.proc.output()}`)
    }
  }
  const client = { cert: join(dir, 'client.crt'), key: join(dir, 'client.key') }
  // warm-up, every server alike, results discarded: the gateway's first seconds under load run
  // code V8 has not optimised yet (measured: a cold first run at a quarter of the warm rate),
  // which would otherwise land in the first of the three runs of scenario 1
  if (!QUICK) {
    log('warm-up: 2 s of each load on every server')
    for (const s of extraGateways) {
      await runChild('wrk', ['-t1', '-c32', '-d2s', `https://localhost:${s.port}/`])
      await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), 'handshake', JSON.stringify({ port: s.port, servername: 'rsa.bench', concurrency: 16, seconds: 0.5 })])
    }
    await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), 'keepalive', JSON.stringify({ port: ref.mtls.port, servername: 'rsa-m.bench', connections: 32, seconds: 1, ...client })])
    for (const sni of ['rsa-m', 'ec-m'])
      await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), 'handshake', JSON.stringify({ port: ref.mtls.port, servername: `${sni}.bench`, concurrency: 16, seconds: 0.5, ...client })])
    for (const s of servers) {
      await runChild('wrk', ['-t1', '-c32', '-d2s', `https://localhost:${s.port}/`])
      if (!s.noClientCert) await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), 'keepalive', JSON.stringify({ port: s.port, servername: 'rsa-m.bench', connections: 32, seconds: 1, ...client })])
      for (const sni of s.noClientCert ? ['rsa', 'ec'] : ['rsa', 'rsa-m', 'ec', 'ec-m'])
        await runChild(process.execPath, [join(ROOT, 't', 'bench', 'load.mjs'), 'handshake', JSON.stringify({ port: s.port, servername: `${sni}.bench`, concurrency: 16, seconds: 0.5, ...client })])
    }
    for (const s of h2Servers) await runChild('h2load', ['-t1', '-c16', '-m8', '-D2', `https://localhost:${s.port}/`])
    // h2load mmaps its -d file: /dev/null cannot be mapped ("Could not mmap file"); an empty gRPC message is 5 zero bytes
    const grpcBody = join(dir, 'grpc-empty.bin')
    writeFileSync(grpcBody, Buffer.alloc(5))
    for (const s of [gw, nginx]) await runChild('h2load', ['-t1', '-c16', '-m8', '-D2', '-d', grpcBody, '-H', 'content-type: application/grpc', '-H', 'te: trailers', `https://localhost:${s.port}/echo.Echo/Unary`])
  }
  const hold = argv.find((a) => a.startsWith('--hold='))
  if (hold) {
    log(`holding ${hold.slice(7)} s: gateway ${gw.port} (pid ${gw.pid}), nginx ${nginx.port}, haproxy ${haproxy.port}, node reference ${ref.port} (pid ${ref.pid}), node:http2 reference ${h2ref.port} (pid ${h2ref.pid}), ${extraGateways.map((g) => `${g.name} ${g.port} (pid ${g.pid}), `).join('')}upstream ${up}, dir ${dir}`)
    await sleep(Number(hold.slice(7)) * 1000)
  }

  if (ONLY.includes(1)) await compare('1 keep-alive HTTPS (wrk, no client cert)', servers, 'req/s', (s) => wrk(s))
  if (ONLY.includes(2)) await compare('2 keep-alive HTTPS, client cert + DN/fingerprint headers (Node client)', certServers, 'req/s', (s) =>
    load(s, 'keepalive', { servername: 'rsa-m.bench', connections: 32, seconds: KA_SECONDS, ...client }))
  if (ONLY.includes(3)) {
    for (const [kind, sni] of [['RSA-2048', 'rsa'], ['ECDSA P-256', 'ec']]) {
      await compare(`3 full handshakes, ${kind}, no client cert`, servers, 'hs/s', (s) => load(s, 'handshake', { servername: `${sni}.bench`, concurrency: 16, seconds: HS_SECONDS }))
      await compare(`3 full handshakes, ${kind}, client cert`, certServers, 'hs/s', (s) => load(s, 'handshake', { servername: `${sni}-m.bench`, concurrency: 16, seconds: HS_SECONDS, ...client }))
    }
  }
  if (ONLY.includes(4)) {
    for (const v of ['TLSv1.3', 'TLSv1.2']) {
      await compare(`4 resumed handshakes, ${v} ticket, ECDSA`, servers, 'hs/s', async (s) => {
        const r = await load(s, 'handshake', { servername: 'ec.bench', concurrency: 16, seconds: HS_SECONDS, resume: true, maxVersion: v })
        if (r.resumed < r.handshakes) r.errors = (r.errors ?? 0) + (r.handshakes - r.resumed)
        return r
      })
    }
  }
  if (ONLY.includes(7)) await compare('7 HTTP/2 over TLS (h2load, no client cert)', h2Servers, 'req/s', (s) => h2load(s, { path: '/' }))
  if (ONLY.includes(8)) await compare('8 gRPC unary over TLS (h2load, grpc upstream)', [gw, nginx], 'calls/s', (s) => h2load(s, { path: '/echo.Echo/Unary', grpc: true }))
  if (gwLog) await compare('9 keep-alive HTTPS (wrk), access log on (the default) and off', [gw, gwLog, nginx], 'req/s', (s) => wrk(s))
  if (gwPrev) await previousScenario(gw, gwPrev, certs, client)
  for (const g of extraGateways) await stop(g.proc)
  if (ONLY.includes(11)) await crlScenario(gw, etcd, certs, client)
  if (ONLY.includes(12)) await staplingScenario(gw)
  await stop(nginx.proc, 'SIGQUIT')
  await stop(haproxy.proc)
  await stop(ref.proc)
  await stop(h2ref.proc)

  const template = await etcdGet(etcd.url, '/apisix/ssls/ec')
  if (ONLY.includes(5) || ONLY.includes(6)) {
    await stop(gw.proc)
    let loaded = 0
    for (const n of BULK) {
      if (n !== BULK[0] && !ONLY.includes(6)) break
      log(`loading ${n} ssl objects into etcd`)
      const t0 = performance.now()
      await bulkLoad(etcd.url, template, loaded, n)
      loaded = n
      log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      const runs = []
      for (let i = 0; i < REPS; i++) {
        sampleLoad()
        gw = await startGateway(etcd.url, ports, `b${n - 1}.bulk.bench`)
        await sleep(500)
        const rss = treeRssMiB(gw.pid)
        // the first handshake on a bulk object builds its context lazily
        const h0 = performance.now()
        await handshakeOnce(ports.https, `b${Math.floor(n / 2)}.bulk.bench`)
        runs.push({ rate: gw.startup, p50ms: (performance.now() - h0), rss, errors: 0 })
        log(`start-up with ${n} ssl objects: ${gw.startup.toFixed(2)} s, RSS ${rss.toFixed(0)} MiB (primary + 2 workers)`)
        if (i < REPS - 1 || n !== BULK[0] || !ONLY.includes(5)) await stop(gw.proc)
      }
      rows.push({ scenario: `6 start-up with ${n.toLocaleString('en-US')} ssl objects`, server: 'gateway', unit: 's', rate: median(runs.map((r) => r.rate)), p50: median(runs.map((r) => r.p50ms)), p99: NaN,
        rss: median(runs.map((r) => r.rss)), runs: runs.map((r) => r.rate), errors: 0 })
      if (n === BULK[0] && ONLY.includes(5)) {
        const times = []
        const puts = []
        // the workers finish start-up work (expiry gauge, first collection) before the PUTs
        await sleep(3000)
        for (let k = 0; k < (QUICK ? 20 : 100); k++) {
          sampleLoad()
          const [put, served] = await propagate(gw, `prop-${k}`, certs.ec, `p${k}.prop.bench`)
          puts.push(put)
          times.push(served)
        }
        const s = times.slice().sort((a, b) => a - b)
        const ps = puts.slice().sort((a, b) => a - b)
        rows.push({ scenario: `5 propagation, PUT → handshake with ${n.toLocaleString('en-US')} ssl objects`, server: 'gateway', unit: 'ms', rate: NaN, p50: pct(s, 50), p99: pct(s, 99), runs: [], errors: 0, count: s.length })
        log(`propagation p50 ${pct(s, 50).toFixed(1)} ms, p90 ${pct(s, 90).toFixed(1)} ms, p99 ${pct(s, 99).toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms; the admin PUT alone (etcd write included) p50 ${pct(ps, 50).toFixed(1)} ms, p99 ${pct(ps, 99).toFixed(1)} ms`)
        await stop(gw.proc)
      }
    }
  } else await stop(gw.proc)
  await stop(etcd.proc)
  writeResults((Date.now() - started) / 1000)
}

/** Nearest-rank percentile of sorted values: with 100 values p99 is the second largest, p90 the 90th. */
const pct = (xs, p) => xs[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]

/**
 * PUTs an ssl object for `sni` through `gw`'s admin API, then waits until both its workers serve
 * it (two consecutive fresh handshakes); returns [the PUT's ms, PUT → served ms].
 */
async function propagate(gw, id, cert, sni) {
  const t0 = performance.now()
  const r = await admin(gw, `ssls/${id}`, { cert: cert.cert, key: cert.key, snis: [sni] })
  if (r.status >= 300) throw new Error(`admin: ${r.status} ${r.body}`)
  const put = performance.now() - t0
  await until(async () => (await handshakeOnce(gw.port, sni)) && (await handshakeOnce(gw.port, sni)), 10000, `propagation of ${sni}`)
  return [put, performance.now() - t0]
}

/**
 * Scenario 10: this build against the previous one (buildPrevious), both running next to each
 * other on the same etcd, measured in alternation, PREV_ROUNDS rounds: keep-alive (row 1's load),
 * HTTP/2 (row 7's), full RSA handshakes without and with a client certificate (row 3's loads), and propagation
 * (PUT → both workers serve it, through each gateway's own admin; each round's p99). writeResults
 * compares their ratio with the spread of each build's rounds, and for handshakes the server CPU
 * per handshake too (on a busy machine the rate moves with what else runs).
 */
async function previousScenario(gw, gwPrev, certs, client) {
  const both = [gw, gwPrev]
  const rounds = (scenario, unit, fn) => compareRounds(scenario, both, unit, PREV_ROUNDS, fn)
  if (PREV_LINES.has('ka')) await rounds('10 keep-alive HTTPS (wrk), this build and the previous', 'req/s', (s) => wrk(s))
  if (PREV_LINES.has('h2')) {
    // --quick has no warm-up: a cold first round would measure V8's optimising, not the build
    if (QUICK) for (const s of both) await runChild('h2load', ['-t1', '-c16', '-m8', '-D2', `https://localhost:${s.port}/`])
    await rounds('10 HTTP/2 over TLS (h2load), this build and the previous', 'req/s', (s) => h2load(s, { path: '/' }))
  }
  if (PREV_LINES.has('hs')) {
    await rounds('10 full handshakes, RSA-2048, this build and the previous', 'hs/s', (s) => load(s, 'handshake', { servername: 'rsa.bench', concurrency: 16, seconds: HS_SECONDS }))
    await rounds('10 full handshakes, RSA-2048, client cert, this build and the previous', 'hs/s', (s) => load(s, 'handshake', { servername: 'rsa-m.bench', concurrency: 16, seconds: HS_SECONDS, ...client }))
  }
  if (!PREV_LINES.has('prop')) return
  const per = QUICK ? 10 : 20
  const times = new Map(both.map((s) => [s, []]))
  for (let i = 0; i < PREV_ROUNDS; i++) {
    const round = new Map(both.map((s) => [s, []]))
    for (let k = 0; k < per; k++) {
      for (const [j, s] of both.entries()) {
        sampleLoad()
        round.get(s).push((await propagate(s, `prev10-${j}-${i}-${k}`, certs.ec, `p${i}-${k}.g${j}.prev.bench`))[1])
      }
    }
    for (const s of both) times.get(s).push(round.get(s).sort((a, b) => a - b))
  }
  for (const s of both) {
    const all = times.get(s).flat().sort((a, b) => a - b)
    const runs = times.get(s).map((r) => pct(r, 99))
    rows.push({ scenario: '10 propagation, PUT → handshake, this build and the previous', server: s.name, unit: 'ms', rate: NaN, p50: pct(all, 50), p99: pct(all, 99), runs, errors: 0, count: all.length })
    log(`10 propagation ${s.name}: p50 ${fmt(pct(all, 50), 1)} ms, p99 ${fmt(pct(all, 99), 1)} ms (p99 per round ${runs.map((x) => fmt(x, 1)).join(' / ')})`)
  }
  for (const [j] of both.entries())
    for (let i = 0; i < PREV_ROUNDS; i++) for (let k = 0; k < per; k++) await httpGet(gw.ports.admin, `/apisix/admin/ssls/prev10-${j}-${i}-${k}`, 'DELETE', undefined, { 'x-api-key': KEY })
}

/**
 * Scenario 11: the cost of a 100k-entry CRL. The same ECDSA object with a client CA, once without
 * and once with `client.crl` (written straight into etcd: 3 MB is past the admin's 1.5 MiB body
 * limit), full handshakes with a client certificate on each, in alternating rounds; then the time
 * from the etcd write to both workers serving the object with its CRL, and the process group's
 * RSS before and after.
 */
async function crlScenario(gw, etcd, certs, client) {
  const N = QUICK ? 20_000 : 100_000
  const t0 = performance.now()
  const crl = makeCrl(N)
  log(`CRL with ${N} entries: ${(crl.length / 2 ** 20).toFixed(1)} MiB of PEM, made in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  const tpl = JSON.parse(await etcdGet(etcd.url, '/apisix/ssls/ec-m'))
  const rssBefore = treeRssMiB(gw.pid)
  const applies = []
  for (let k = 0; k < (QUICK ? 1 : 3); k++) {
    const sni = `ec-crl${k}.bench`
    const w0 = performance.now()
    await etcdTxnPut(etcd.url, [[`/apisix/ssls/ec-crl${k}`, JSON.stringify({ ...tpl, id: `ec-crl${k}`, snis: [sni], client: { ...tpl.client, crl }, update_time: Math.floor(Date.now() / 1000) })]])
    const ok = () => new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port: gw.port, servername: sni, rejectUnauthorized: false, cert: readFileSync(client.cert), key: readFileSync(client.key) })
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: ec.bench\r\nConnection: close\r\n\r\n'))
      let got = ''
      s.on('data', (d) => (got += d))
      s.on('close', () => resolve(/^HTTP\/1\.1 \d/.test(got)))
      s.on('error', () => resolve(false))
      s.setTimeout(5000, () => s.destroy())
    })
    // both workers must serve it: two consecutive answered requests on fresh connections
    await until(async () => (await ok()) && (await ok()), 30000, `the CRL object ${sni}`)
    applies.push(performance.now() - w0)
    log(`CRL object ${sni}: etcd write → served by both workers in ${applies.at(-1).toFixed(0)} ms`)
  }
  await sleep(1000)
  const rssAfter = treeRssMiB(gw.pid)
  const without = []
  const withCrl = []
  for (let i = 0; i < REPS; i++) {
    without.push(await load(gw, 'handshake', { servername: 'ec-m.bench', concurrency: 16, seconds: HS_SECONDS, ...client }))
    withCrl.push(await load(gw, 'handshake', { servername: 'ec-crl0.bench', concurrency: 16, seconds: HS_SECONDS, ...client }))
  }
  record('11 full handshakes, ECDSA P-256, client cert, no CRL', 'gateway', without, 'hs/s')
  record(`11 full handshakes, ECDSA P-256, client cert, ${N.toLocaleString('en-US')}-entry CRL`, 'gateway', withCrl, 'hs/s')
  const s = applies.slice().sort((a, b) => a - b)
  rows.push({ scenario: `11 apply a ${N.toLocaleString('en-US')}-entry CRL (etcd write → both workers serve it)`, server: 'gateway', unit: 'ms', rate: NaN, p50: median(s), p99: s.at(-1), runs: s, errors: 0,
    rss: rssAfter - rssBefore })
  log(`CRL apply: median ${median(s).toFixed(0)} ms, max ${s.at(-1).toFixed(0)} ms; process group RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB (${applies.length} objects with the CRL)`)
}

/**
 * Scenario 12: OCSP stapling with its responder down. The same ECDSA certificate (its
 * authorityInfoAccess naming the responder) on three ssl objects: stapling off; on, with the
 * responder blackholed (a loopback listener that accepts and never answers: the worse case, each
 * fetch waits out its timeout); on, with the responder stopped (nothing listens: refused at
 * once). Full handshakes from clients that send status_request, in alternating rounds. The
 * handshake never waits for the responder, so the three should be alike.
 */
async function staplingScenario(gw) {
  const held = new Set()
  let accepted = 0
  const blackhole = createServer((s) => {
    accepted++
    held.add(s)
    s.on('error', () => undefined)
    s.on('close', () => held.delete(s))
  })
  await new Promise((r) => blackhole.listen(0, '127.0.0.1', r))
  const stoppedPort = await freePort()
  const cert = (name, port) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${name}.bench\nextendedKeyUsage=serverAuth\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:${port}/\n`)
    openssl('x509', '-req', '-in', 'ec.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`)
    // the issuer after the leaf: the fetch starts when the object's server is built
    return readFileSync(join(dir, `${name}.crt`), 'utf8') + readFileSync(join(dir, 'ca.crt'), 'utf8')
  }
  const key = readFileSync(join(dir, 'ec.key'), 'utf8')
  const objects = [
    ['ocsp-off', cert('ocsp-off', blackhole.address().port), undefined, 'stapling off'],
    ['ocsp-blackholed', cert('ocsp-blackholed', blackhole.address().port), { enabled: true, cache_ttl: 3600 }, 'stapling on, responder blackholed'],
    ['ocsp-stopped', cert('ocsp-stopped', stoppedPort), { enabled: true, cache_ttl: 3600 }, 'stapling on, responder stopped'],
  ]
  const servers = []
  for (const [id, pem, ocsp, name] of objects) {
    const r = await admin(gw, `ssls/${id}`, { cert: pem, key, snis: [`${id}.bench`], ...(ocsp ? { ocsp_stapling: ocsp } : {}) })
    if (r.status >= 300) throw new Error(`admin: ${r.status} ${r.body}`)
    await until(() => handshakeOnce(gw.port, `${id}.bench`), 10000, `ssl object ${id}`)
    servers.push({ ...gw, name, sni: `${id}.bench` })
  }
  // a short warm-up of each (discarded): every object's server is built and its first fetch started
  for (const s of servers) await load(s, 'handshake', { servername: s.sni, concurrency: 16, seconds: 0.5, ocsp: true })
  let stapled = 0
  await compare('12 full handshakes, ECDSA P-256, clients send status_request, OCSP responder down', servers, 'hs/s', async (s) => {
    const r = await load(s, 'handshake', { servername: s.sni, concurrency: 16, seconds: HS_SECONDS, ocsp: true })
    stapled += r.stapled ?? 0
    return r
  })
  log(`stapling: ${stapled} handshakes got a staple (expected 0); the blackholed responder accepted ${accepted} connections (the gateway's fetches, none answered)`)
  for (const s of held) s.destroy()
  await new Promise((r) => blackhole.close(r))
}

function writeResults(seconds) {
  const by = (scenario, server) => rows.find((r) => r.scenario === scenario && r.server === server)
  const lines = []
  lines.push('# Benchmark results', '')
  lines.push(`Run ${new Date().toISOString()} of build ${thisBuild()} on ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}; ${REPS} run(s) per scenario after a warm-up of every server, medians; ` +
    `1-minute load average during the runs ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)} (median ${fmt(median(loads), 1)}); whole bench ${fmt(seconds / 60, 1)} min.`, '')
  lines.push('Gateway and nginx with 2 workers, HAProxy with 2 threads, access logs off, all proxying one nginx `return 200` upstream over keep-alive. The node reference (t/bench/node-ref.mjs) is the plainest Node proxy: 2 cluster workers, node:https with an SNI callback, undici dispatch(); no routing, plugins or metrics; for the rows with a client certificate, a twin port of the same processes asks for one and has OpenSSL verify it (no DN or fingerprint derived); in row 7 (HTTP/2, h2load: 16 connections × 8 streams) the reference is its node:http2 counterpart (t/bench/node-h2-ref.mjs: 2 cluster workers that the primary deals connections to in turn, so that its 16 connections split 8/8 as the gateway\u2019s balance table splits them, http2.createSecureServer, undici dispatch() to the HTTP/1.1 upstream) and nginx listens with `http2`; row 8 sends unary gRPC calls (an empty message) through the gateway\u2019s `scheme: grpc` upstream and nginx\u2019s `grpc_pass` to t/bench/grpc-upstream.mjs, a bare node:http2 gRPC answerer. CPU columns: percent of one core (server process tree / load generator). Row 9 runs a second gateway with the access log on (its default; a JSON line per request to a file). Row 10 runs the previous build (by default the one the last committed full run measured; BENCH_OLD_REF) next to this one on the same Node and etcd, ' + PREV_ROUNDS + ' rounds in alternation: keep-alive as row 1, HTTP/2 as row 7, full RSA handshakes without and with a client certificate as row 3, and propagation through each one\u2019s own admin API (each round\u2019s p99; its runs column); their ratio is within noise when it differs from 1 by no more than the larger round-to-round spread of either build (a round\u2019s largest distance from its build\u2019s median); the rate rows are judged the same way on the server CPU per handshake or request too (each round\u2019s server CPU over its handshakes or requests), which a busy machine moves less than the rate. The Node load generator offers X25519 and P-256 only, as wrk and h2load on Debian’s OpenSSL 3.0 do, so every server does the same key exchange (the gateway would take Node 24’s X25519MLKEM768, nginx there cannot). Row 12 runs full handshakes whose clients send status_request to three ssl objects with the same ECDSA certificate: OCSP stapling off, and on with its responder blackholed (accepts, never answers) or stopped (refuses). Handshake rows (3, 4, 10, 11, 12): each connection completes its handshake on both sides (the client\u2019s Finished, and its certificate when it has one, reach the server) and closes with close_notify, without an HTTP request.', '')
  lines.push('| scenario | server | rate | p50 ms | p99 ms | server CPU % | generator CPU % | runs | errors |', '|---|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    const rate = r.unit === 's' ? `${fmt(r.rate, 2)} s start-up, ${fmt(r.rss)} MiB RSS`
      : r.unit === 'ms' && r.rss !== undefined ? `${r.runs.length} objects, ${r.rss >= 0 ? '+' : ''}${fmt(r.rss)} MiB RSS`
      : r.unit === 'ms' ? `${r.count} PUTs` : `${fmt(r.rate)} ${r.unit}`
    const runs = r.runs.map((x) => fmt(x, r.unit === 's' ? 2 : 0)).join(' / ')
    lines.push(`| ${r.scenario} | ${r.server} | ${rate} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.serverCpu)} | ${fmt(r.genCpu)} | ${runs} | ${r.errors} |`)
  }
  lines.push('', '## Targets', '', '| target | measured | met |', '|---|---|---|')
  const target = (name, measured, ok) => lines.push(`| ${name} | ${measured} | ${ok === undefined ? 'not run' : ok === null ? 'reported' : ok ? 'yes' : 'no'} |`)
  // the ratio of the medians decides; the ratios of each round's back-to-back runs show how far
  // the machine's speed moved between rounds
  const ratio = (g, n) => `${fmt(g.rate / n.rate, 2)}× (round by round ${g.runs.map((x, i) => `${fmt(x / n.runs[i], 2)}×`).join(' / ')})`
  const scenarios = rows.map((r) => r.scenario).filter((s, i, a) => a.indexOf(s) === i)
  // TARGETS: scenario number → its checks (gateway row g, nginx row n, and the row named by `other`).
  // Every row with nginx gets its ratio to nginx printed, whether or not a target is set on it.
  const p99 = (sc, g, n) => target(`${sc}: p99 ≤ 2× nginx`, `${fmt(g.p99, 2)} vs ${fmt(n.p99, 2)} ms`, g.p99 <= 2 * n.p99)
  const TARGETS = {
    1: { other: REF, check: (sc, g, n, r) => (r && target(`${sc}: req/s ≥ 0.95× the plain Node reference`, ratio(g, r), g.rate >= 0.95 * r.rate), p99(sc, g, n)) },
    2: { other: REF, check: (sc, g, n, r) => (r && target(`${sc}: req/s ≥ 0.95× the plain Node reference (its client-certificate twin)`, ratio(g, r), g.rate >= 0.95 * r.rate), p99(sc, g, n)) },
    3: { nginx: 0.85 },
    4: { nginx: 0.9 },
    7: { other: REF, check: (sc, g, n, r) => (r && target(`${sc}: req/s ≥ 0.9× the plain node:http2 reference`, ratio(g, r), g.rate >= 0.9 * r.rate), p99(sc, g, n)) },
    9: { other: 'gateway, access log on', check: (sc, g, n, r) => r && target(`${sc}: log on ≥ 0.9× log off`, ratio(r, g), r.rate >= 0.9 * g.rate) },
  }
  for (const sc of scenarios) {
    const g = by(sc, 'gateway')
    const n = by(sc, 'nginx')
    if (!g || !n) continue
    const t = TARGETS[Number(sc.split(' ')[0])] ?? {}
    const otherName = typeof t.other === 'function' ? t.other(sc) : t.other
    t.check?.(sc, g, n, otherName ? by(sc, otherName) : undefined)
    if (t.nginx) target(`${sc}: ≥ ${t.nginx}× nginx`, ratio(g, n), g.rate >= t.nginx * n.rate)
    else for (const x of rows.filter((x) => x.scenario === sc && x.server.startsWith('gateway'))) target(`${sc}: ${x.server} / nginx`, ratio(x, n), null)
  }
  // row 10: this build against the previous one; a latency row (ms) compares its rounds' p99, where
  // lower is better. Rate rows also compare the server CPU per handshake or request of each round
  // (lower is better), which moves less with what else runs on the machine than the rate does:
  // the row is met when neither is worse beyond its own round-to-round spread.
  const spread = (xs) => Math.max(...xs.map((x) => Math.abs(x / median(xs) - 1)))
  const judge = (gs, ps, lowerBetter) => {
    const r = median(gs) / median(ps)
    const noise = Math.max(spread(gs), spread(ps))
    const better = lowerBetter ? r < 1 : r > 1
    const verdict = gs.length < 2 ? 'one round: no spread measured' : Math.abs(r - 1) <= noise ? 'within noise' : better ? 'better beyond noise' : 'worse beyond noise'
    return { r, noise, verdict, ok: gs.length < 2 ? null : Math.abs(r - 1) <= noise || better }
  }
  // server CPU per handshake in ms, per request in µs (percent of a core over the rate)
  const PER = { 'hs/s': { what: 'handshake', scale: 10, unit: 'ms', digits: 2 }, 'req/s': { what: 'request', scale: 1e4, unit: 'µs', digits: 1 } }
  const perUnit = (x, k) => x.cpuRuns?.map((c, i) => (k.scale * c) / x.runs[i])
  for (const sc of scenarios.filter((x) => x.startsWith('10 '))) {
    const g = by(sc, 'gateway')
    const p = rows.find((x) => x.scenario === sc && x !== g)
    if (!g || !p) continue
    const rate = judge(g.runs, p.runs, g.unit === 'ms')
    const k = PER[g.unit]
    const gc = k ? perUnit(g, k) : undefined
    const pc = k ? perUnit(p, k) : undefined
    const cpu = gc && pc ? judge(gc, pc, true) : undefined
    const d = k?.digits
    const cpuText = cpu ? `; server CPU per ${k.what} ${fmt(median(gc), d)} vs ${fmt(median(pc), d)} ${k.unit}, ${fmt(cpu.r, 2)}× (rounds ${gc.map((x) => fmt(x, d)).join(' / ')} vs ${pc.map((x) => fmt(x, d)).join(' / ')}), spread ±${fmt(100 * cpu.noise, 1)}%: ${cpu.verdict}` : ''
    target(`${sc}: this build / ${p.server}${g.unit === 'ms' ? ', p99' : ''}${cpu ? ` and server CPU per ${k.what}` : ''}, not worse beyond noise`,
      `${fmt(rate.r, 2)}× (round by round ${g.runs.map((x, i) => `${fmt(x / p.runs[i], 2)}×`).join(' / ')}); round-to-round spread ±${fmt(100 * rate.noise, 1)}%: ${rate.verdict}${cpuText}`,
      rate.ok === null ? null : rate.ok && (cpu?.ok ?? true))
  }
  const crlOff = rows.find((r) => r.scenario.startsWith('11 full') && r.scenario.endsWith('no CRL'))
  const crlOn = rows.find((r) => r.scenario.startsWith('11 full') && r.scenario.endsWith('CRL') && r !== crlOff)
  if (crlOff && crlOn) target(`${crlOn.scenario}: handshakes/s against no CRL (no target; O(1) per check)`, ratio(crlOn, crlOff), null)
  const crlApply = rows.find((r) => r.scenario.startsWith('11 apply'))
  if (crlApply) target(`${crlApply.scenario}: < 1 s per worker`, `max ${fmt(crlApply.p99, 0)} ms, ${crlApply.rss >= 0 ? '+' : ''}${fmt(crlApply.rss)} MiB RSS for ${crlApply.runs.length} objects`, crlApply.p99 < 1000)
  const stapleOff = rows.find((r) => r.scenario.startsWith('12') && r.server === 'stapling off')
  // server CPU per handshake beside the rate: on a busy machine the rate moves with what else runs
  const cpuPerHs = (r) => `${fmt((10 * r.serverCpu) / r.rate, 2)} ms`
  for (const r of rows.filter((x) => x.scenario.startsWith('12') && x !== stapleOff)) if (stapleOff) target(`12 full handshakes, ${r.server}: ≥ 0.95× stapling off (never waits for the responder)`, `${ratio(r, stapleOff)}; server CPU per handshake ${cpuPerHs(r)} vs ${cpuPerHs(stapleOff)}`, r.rate >= 0.95 * stapleOff.rate)
  const prop = rows.find((r) => r.scenario.startsWith('5'))
  if (prop) target('5 propagation p99 < 100 ms', `${fmt(prop.p99, 1)} ms`, prop.p99 < 100)
  const big = rows.filter((r) => r.scenario.startsWith('6')).pop()
  if (big) target(`${big.scenario}: < 10 s and < 1 GiB RSS`, `${fmt(big.rate, 2)} s, ${fmt(big.rss)} MiB`, big.rate < 10 && big.rss < 1024)
  // how far the gateway is from the plainest Node proxy on the same loads (no target: a reading aid)
  const refRows = scenarios.filter((sc) => by(sc, 'gateway') && by(sc, REF) && by(sc, 'nginx'))
  if (refRows.length > 0) {
    lines.push('', '## Against the plain Node reference', '', 'The same rows for the node reference: what Node and undici reach by themselves on this machine, next to the gateway.', '')
    lines.push('| scenario | gateway / nginx | node reference / nginx | gateway / node reference |', '|---|---|---|---|')
    for (const sc of refRows) {
      const g = by(sc, 'gateway')
      const n = by(sc, 'nginx')
      const r = by(sc, REF)
      lines.push(`| ${sc} | ${fmt(g.rate / n.rate, 2)}× | ${fmt(r.rate / n.rate, 2)}× | ${fmt(g.rate / r.rate, 2)}× |`)
    }
  }
  const text = lines.join('\n') + '\n'
  mkdirSync(join(ROOT, 'bench'), { recursive: true })
  // only a full run replaces the committed table; --quick / --only runs go to a side file
  const partial = QUICK || argv.some((a) => a.startsWith('--only='))
  writeFileSync(join(ROOT, 'bench', partial ? 'results-partial.md' : 'results.md'), text)
  process.stdout.write(text)
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
    if (process.env.BENCH_DEBUG) {
      console.error(`debug: leaving everything up for ${process.env.BENCH_DEBUG} s in ${dir}`)
      return sleep(Number(process.env.BENCH_DEBUG) * 1000)
    }
  })
  .finally(async () => {
    for (const p of procs) await stop(p).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  })
