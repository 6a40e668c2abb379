import t, { type Test } from 'tap'
import { pino } from 'pino'
import { startEtcd } from '../lib/etcd.js'
import { startGateway, KEY } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { freePort } from '../lib/ports.js'
import { eventually } from '../lib/eventually.js'
import { decodeLocalConfig } from '../../core/config/local.js'
import { createEtcdClient } from '../../core/etcd/client.js'
import { startAdmin, type AdminHandle } from '../../admin/server.js'
import { isGatewayError } from '../../core/errors.js'

const up = { type: 'roundrobin', nodes: { '127.0.0.1:1980': 1 } }

async function inProcessAdmin(t: Test, etcdUrl: string, port?: number, allowAdmin?: string[]): Promise<{ handle: AdminHandle; port: number }> {
  const p = port ?? (await freePort())
  const config = decodeLocalConfig('test.yaml', {
    deployment: {
      admin: { admin_key: [{ name: 'admin', key: KEY, role: 'admin' }], admin_listen: { ip: '127.0.0.1', port: p }, ...(allowAdmin ? { allow_admin: allowAdmin } : {}) },
      etcd: { host: [etcdUrl], timeout: 5 },
    },
  })
  const etcd = createEtcdClient(config)
  // the admin (its SNI watch) closes before the etcd client it uses, as bin/start.ts does
  let handle: AdminHandle | undefined
  t.teardown(async () => {
    await handle?.close()
    etcd.close()
  })
  handle = await startAdmin({ config, etcd, log: pino({ level: 'silent' }) })
  return { handle, port: p }
}

t.test('etcd unreachable → 503 naming etcd; the admin recovers when etcd returns', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  t.equal((await admin.put('routes/1', { uri: '/a', upstream: up })).status, 201)
  await etcd.stop()
  const started = Date.now()
  for (const r of [await admin.get('routes/1'), await admin.get('routes'), await admin.put('routes/2', { uri: '/b', upstream: up }), await admin.delete('routes/1')]) {
    t.equal(r.status, 503, r.text)
    t.match(r.json?.error_msg, /etcd/)
  }
  t.ok(Date.now() - started < 30_000, `answered within the etcd timeout (${Date.now() - started} ms for four calls)`)
  await etcd.restart()
  const back = await eventually(() => admin.get('routes/1'), (r) => r.status === 200, { timeoutMs: 60_000 })
  t.equal(back.json.value.uri, '/a')
})

t.test('two admin instances on one etcd: compare-and-swap loses no PATCH', async (t) => {
  const etcd = await startEtcd(t)
  const a = await inProcessAdmin(t, etcd.url)
  const b = await inProcessAdmin(t, etcd.url)
  const ca = adminOf({ admin: a.port })
  const cb = adminOf({ admin: b.port })
  t.equal((await ca.put('routes/1', { uri: '/a', upstream: up })).status, 201)
  const replies = await Promise.all(
    Array.from({ length: 120 }, (_, i) => (i % 2 === 0 ? ca : cb).patch('routes/1', { labels: { [`l${i}`]: String(i) } })),
  )
  t.same(replies.filter((r) => r.status !== 200).map((r) => r.text), [])
  const labels = (await cb.get('routes/1')).json.value.labels as Record<string, string>
  t.equal(Object.keys(labels).length, 120, 'every label from both writers is there')
})

t.test('admin port already taken → GW_PORT_IN_USE naming the address', async (t) => {
  const etcd = await startEtcd(t)
  const first = await inProcessAdmin(t, etcd.url)
  const err = await inProcessAdmin(t, etcd.url, first.port).then(() => undefined, (e: unknown) => e)
  t.ok(isGatewayError(err, 'GW_PORT_IN_USE'), String(err))
  t.match((err as Error).message, `admin port 127.0.0.1:${first.port} is already in use`)
})

t.test('allow_admin: a client outside the CIDRs → 403 with a JSON body', async (t) => {
  const etcd = await startEtcd(t)
  const a = await inProcessAdmin(t, etcd.url, undefined, ['10.9.9.0/24'])
  const r = await adminOf({ admin: a.port }).get('routes')
  t.equal(r.status, 403)
  t.match(r.json, { error_msg: /allow_admin/ })
})
