import t from 'tap'
import { createServer } from 'node:net'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN_APISIX, ROOT, startGateway, writeGatewayConfig } from '../lib/gateway.js'
import { startEtcd } from '../lib/etcd.js'
import { freePort } from '../lib/ports.js'
import { spawnNode, tempDir } from '../lib/proc.js'
import { httpGet } from '../lib/tls-client.js'

/** Runs bin/apisix to completion; returns exit code and output. */
function run(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawnNode(BIN_APISIX, args, { ...(cwd ? { cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout?.on('data', (b: Buffer) => (stdout += b))
    p.stderr?.on('data', (b: Buffer) => (stderr += b))
    const kill = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('exit', (code) => {
      clearTimeout(kill)
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('bin/apisix version → the package version and the Node.js (24+) and OpenSSL (3.5+) it runs on, exit 0', async (t) => {
  const r = await run(['version'])
  t.equal(r.code, 0)
  const m = /^apisix-tls-gateway (\d+\.\d+\.\d+) \(Node\.js v(\d+)\.\d+\.\d+, OpenSSL (\d+)\.(\d+)\.\d+\)\n$/.exec(r.stdout)
  t.ok(m, `one line in CONTRACT.md's form: ${JSON.stringify(r.stdout)}`)
  const [, version, node, major, minor] = m ?? []
  t.equal(version, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version, 'the version is package.json\'s')
  t.ok(Number(node) >= 24, `Node.js ${node} ≥ 24`)
  t.ok(Number(major) > 3 || (Number(major) === 3 && Number(minor) >= 5), `OpenSSL ${major}.${minor} ≥ 3.5 (X25519MLKEM768)`)
})

t.test('bin/apisix help → lists start, certs, version, help', async (t) => {
  const r = await run(['help'])
  t.equal(r.code, 0)
  for (const c of ['start', 'certs', 'version', 'help']) t.match(r.stdout, new RegExp(`\\b${c}\\b`))
})

t.test('bin/apisix with an unknown command → one line, exit 1', async (t) => {
  const r = await run(['frobnicate'])
  t.equal(r.code, 1)
  t.match(r.stderr, /unknown command "frobnicate"/)
  t.equal(r.stderr.trim().split('\n').length, 1)
})

t.test('config errors → one line naming the key, exit 1', async (t) => {
  const dir = await tempDir(t, 'cli-')
  const cases: [string, string, RegExp][] = [
    ['unknown top key', 'foo: 1\n', /\.yaml: foo: unknown key$/],
    ['unknown nested key', 'apisix:\n  ssl:\n    listen:\n      - port: 9443\n        bogus: 1\n', /apisix\.ssl\.listen\[0\]\.bogus: unknown key$/],
    ['etcd host not a URL', 'deployment:\n  etcd:\n    host: ["127.0.0.1:2379"]\n', /deployment\.etcd\.host\[0\]: must be an http\(s\) URL$/],
    ['wrong type', 'deployment:\n  etcd:\n    timeout: soon\n', /deployment\.etcd\.timeout: must be number$/],
    ['workers', 'apisix:\n  workers: many\n', /apisix\.workers: must be "auto" or a whole number/],
    ['bad CIDR', 'deployment:\n  admin:\n    allow_admin: ["10.0.0.0/33"]\n', /deployment\.admin\.allow_admin\[0\]: "10\.0\.0\.0\/33" is not an IP address or CIDR$/],
    ['bad keyring entry', 'apisix:\n  data_encryption:\n    keyring: ["short"]\n', /apisix\.data_encryption\.keyring\[0\]: must be 16 or 32 characters/],
    ['not YAML', 'apisix: [\n', /not valid YAML/],
    ['duplicate key', 'apisix: {}\napisix: {}\n', /not valid YAML/],
    ['top level list', '- 1\n', /\(top level\): must be a mapping$/],
    ['upstream CA file missing', 'apisix:\n  ssl:\n    ssl_trusted_certificate: /nonexistent/ca.pem\n', /\.yaml: apisix\.ssl\.ssl_trusted_certificate: cannot read \/nonexistent\/ca\.pem: ENOENT$/],
    ['upstream CA file without a certificate', 'apisix:\n  ssl:\n    ssl_trusted_certificate: /etc/hostname\n', /\.yaml: apisix\.ssl\.ssl_trusted_certificate: \/etc\/hostname holds no PEM certificate$/],
    ['example key on a public admin address', 'deployment:\n  admin:\n    admin_listen:\n      ip: 0.0.0.0\n', /admin_listen\.ip is 0\.0\.0\.0 \(not loopback\).*example key.*openssl rand/],
  ]
  for (const [name, yaml, want] of cases) {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`)
    await writeFile(file, yaml)
    const r = await run(['start', '-c', file])
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(r.stderr.trim(), want, `${name}: names the problem`)
    t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`)
  }
  const missing = await run(['start', '-c', join(dir, 'nope.yaml')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /nope\.yaml: cannot read: ENOENT/)
})

t.test('etcd unreachable → retries for startup_retry seconds, then one line and exit 1', async (t) => {
  const dead = await freePort()
  const c = await writeGatewayConfig(t, { etcd: `http://127.0.0.1:${dead}`, config: { deployment: { etcd: { startup_retry: 1 } } } })
  const started = Date.now()
  const r = await run(['start', '-c', c.file])
  t.equal(r.code, 1)
  t.match(r.stderr.trim(), new RegExp(`^etcd at http://127\\.0\\.0\\.1:${dead} unreachable after 1s`))
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.ok(Date.now() - started >= 1000, 'it retried for at least startup_retry')
})

t.test('with a real etcd', async (t) => {
  const etcd = await startEtcd(t)

  t.test('a port in use → one line naming it, exit 1', async (t) => {
    const blocker = createServer()
    const c = await writeGatewayConfig(t, { etcd: etcd.url })
    await new Promise<void>((r) => blocker.listen(c.http, '127.0.0.1', r))
    t.teardown(() => new Promise<void>((r) => blocker.close(() => r())))
    const r = await run(['start', '-c', c.file])
    t.equal(r.code, 1)
    t.match(r.stderr.trim().split('\n').pop() ?? '', new RegExp(`apisix\\.node_listen port 127\\.0\\.0\\.1:${c.http} is already in use$`))
  })

  t.test('the admin port in use → one line naming it, exit 1', async (t) => {
    const blocker = createServer()
    const c = await writeGatewayConfig(t, { etcd: etcd.url })
    await new Promise<void>((r) => blocker.listen(c.admin, '127.0.0.1', r))
    t.teardown(() => new Promise<void>((r) => blocker.close(() => r())))
    const r = await run(['start', '-c', c.file])
    t.equal(r.code, 1)
    t.match(r.stderr.trim().split('\n').pop() ?? '', new RegExp(`admin port 127\\.0\\.0\\.1:${c.admin} is already in use$`))
  })

  t.test('start → status answers; SIGTERM → exit 0', async (t) => {
    const gw = await startGateway(t, { etcd: etcd.url })
    const s = await httpGet(gw.http, '/apisix/status')
    t.equal(s.status, 200)
    t.same(s.json, { status: 'ok' })
    const ready = await httpGet(gw.http, '/apisix/status/ready')
    t.equal(ready.status, 200)
    t.equal(await gw.stop(), 0, gw.output())
  })

  t.test('SIGINT → exit 0', async (t) => {
    const gw = await startGateway(t, { etcd: etcd.url })
    const done = gw.exited()
    gw.proc.kill('SIGINT')
    t.equal(await done, 0, gw.output())
  })
})
