import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { startEtcd } from '../lib/etcd.js'
import { spawnNode, collect, exited } from '../lib/proc.js'
import { eventually } from '../lib/eventually.js'
import { BIN_APISIX, startGateway, writeGatewayConfig } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { createEtcdClient } from '../../core/etcd/client.js'
import { waitForEtcd } from '../../core/etcd/wait.js'
import { isGatewayError } from '../../core/errors.js'
import { etcdConfig, etcdClient, mirror, outcome } from '../lib/etcd-probe.js'

t.test('etcd with user/password auth', async (t) => {
  const etcd = await startEtcd(t)
  const ctl = (...a: string[]): string => {
    const r = spawnSync('etcdctl', ['--endpoints', etcd.url, ...a], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } })
    if (r.status !== 0) throw new Error(`etcdctl ${a.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  ctl('user', 'add', 'root:s3cret', '--interactive=false')
  ctl('auth', 'enable')
  const host = [etcd.url]

  t.test('the configured user → reads and writes work', async (t) => {
    const c = etcdClient(t, { host, user: 'root', password: 's3cret' })
    t.equal(await outcome(c.put('/apisix/a').value('1').exec()), 'ok')
    t.equal(await c.get('/apisix/a').string(), '1')
  })

  t.test('a wrong password or no user → refused; startup fails at once naming the reason', async (t) => {
    t.match(await outcome(etcdClient(t, { host, user: 'root', password: 'nope' }).get('/apisix/a').string()), /authentication failed/)
    t.match(await outcome(etcdClient(t, { host }).get('/apisix/a').string()), /user name is empty|permission denied/)
    const cfg = etcdConfig({ host, user: 'root', password: 'nope', startup_retry: 30 })
    const c = createEtcdClient(cfg)
    t.teardown(() => c.close())
    const started = Date.now()
    const err = await waitForEtcd(c, cfg).then(() => undefined, (e: unknown) => e)
    t.ok(isGatewayError(err, 'GW_ETCD_UNREACHABLE'))
    t.match((err as Error).message, /authentication failed/)
    t.ok(Date.now() - started < 10_000, 'no retrying a refused password for startup_retry seconds')
  })

  t.test('etcd restarts (its tokens are lost) → the watcher authenticates again and follows writes', async (t) => {
    const c = etcdClient(t, { host, user: 'root', password: 's3cret' })
    const view = mirror(t, c)
    await c.put('/apisix/routes/r').value('before')
    await eventually(() => view.get('/apisix/routes/r'), (v) => v === 'before')
    await etcd.stop()
    await etcd.restart()
    const writer = etcdClient(t, { host, user: 'root', password: 's3cret' })
    await writer.put('/apisix/routes/r').value('after restart')
    const started = Date.now()
    await eventually(() => view.get('/apisix/routes/r'), (v) => v === 'after restart', { timeoutMs: 10_000 })
    t.pass(`seen ${Date.now() - started} ms after the write`)
  })

  t.test('a gateway with the user → ready and writes; with a wrong password → exit 1 naming the reason', async (t) => {
    const gw = await startGateway(t, { etcd: host, config: { deployment: { etcd: { user: 'root', password: 's3cret' } } } })
    const r = await adminOf(gw).put('upstreams/auth', { type: 'roundrobin', nodes: { '127.0.0.1:1980': 1 } })
    t.equal(r.status, 201, r.text)
    const bad = await writeGatewayConfig(t, { etcd: host, config: { deployment: { etcd: { user: 'root', password: 'wrong' } } } })
    const p = spawnNode(BIN_APISIX, ['start', '-c', bad.file], { stdio: ['ignore', 'pipe', 'pipe'] })
    const out = collect(p)
    t.equal(await exited(p), 1)
    t.match(out(), /authentication failed/)
  })
})
