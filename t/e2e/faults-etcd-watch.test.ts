import t from 'tap'
import { Etcd3 } from 'etcd3'
import { startEtcdAt } from '../lib/etcd-at.js'
import { BIN_APISIX, writeGatewayConfig } from '../lib/gateway.js'
import { startEcho } from '../lib/echo.js'
import { issue, makeCa } from '../lib/certs.js'
import { closeAgents, httpGet, httpsGet } from '../lib/tls-client.js'
import { collect, spawnNode, stopProcess } from '../lib/proc.js'
import { eventually } from '../lib/eventually.js'
import { freePort } from '../lib/ports.js'

t.teardown(closeAgents)

/** long enough for a gateway to start on a loaded 2-core machine (one start took 14 s here) */
const STARTUP_RETRY = 45

t.test('a gateway started while etcd is down serves once etcd comes up, within startup_retry', async (t) => {
  const echo = await startEcho(t)
  const etcdPort = await freePort()
  const c = await writeGatewayConfig(t, {
    etcd: `http://127.0.0.1:${etcdPort}`,
    config: { deployment: { etcd: { startup_retry: STARTUP_RETRY } } },
  })
  const spawnedAt = Date.now()
  const proc = spawnNode(BIN_APISIX, ['start', '-c', c.file], { cwd: c.dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(proc)
  t.teardown(() => stopProcess(proc))

  // for 2 s nothing answers (no listener is bound before etcd answers), and the process keeps waiting
  let probes = 0
  const refusedUntil = Date.now() + 2000
  while (Date.now() < refusedUntil) {
    probes++
    const r = await httpGet(c.http, '/apisix/status').then((x) => `status ${x.status}`, (e: Error & { code?: string }) => e.code ?? e.message)
    if (r.startsWith('status')) t.fail(`the gateway answered before etcd was up: ${r}`)
    await new Promise((res) => setTimeout(res, 50))
  }
  t.equal(proc.exitCode, null, `still waiting for etcd after ${probes} refused probes`)

  const etcd = await startEtcdAt(t, etcdPort)
  const direct = new Etcd3({ hosts: etcd.url })
  t.teardown(() => direct.close())
  const ca = makeCa('Late CA')
  const leaf = issue(ca, { cn: 'late.test', sans: ['late.test'] })
  const now = Math.floor(Date.now() / 1000)
  await direct.put('/apisix/ssls/late').value(JSON.stringify({ id: 'late', sni: 'late.test', cert: leaf.cert, key: leaf.key, create_time: now, update_time: now }))
  await direct.put('/apisix/routes/late').value(JSON.stringify({
    id: 'late', uri: '/late', host: 'late.test', create_time: now, update_time: now,
    upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } },
    plugins: { 'proxy-rewrite': { headers: { set: { 'X-Late': 'yes' } } } },
  }))

  const windowEnd = spawnedAt + STARTUP_RETRY * 1000
  const describe = (): string => `${output()}\n${etcd.output()}`
  // the admin listener is bound right after the start-up wait for etcd ends
  await eventually(() => fetch(`http://127.0.0.1:${c.admin}/apisix/admin/routes`).then((x) => x.status), (s) => s > 0, {
    timeoutMs: Math.max(windowEnd - Date.now(), 1000), intervalMs: 20, describe,
  })
  const adminAt = Date.now()
  const r = await eventually(
    () => httpsGet('/late', { port: c.https, servername: 'late.test', ca: ca.cert }),
    (x) => x.status === 200,
    { timeoutMs: Math.max(windowEnd - Date.now(), 1000), intervalMs: 20, describe },
  )
  const servedAt = Date.now()
  t.equal(r.json?.headers?.['x-late'], 'yes', 'the route written after etcd came up is proxied over HTTPS with its SNI')
  t.equal(r.json?.url, '/late', 'the upstream saw the path')
  t.ok(servedAt <= windowEnd, 'served within startup_retry of the start')
  t.equal(proc.exitCode, null, 'the gateway is still running')
  const plain = await httpGet(c.http, '/late', { headers: { host: 'late.test' } })
  t.equal(plain.status, 200, 'plain HTTP routes it too')
  t.comment(`gateway waited ${etcd.healthyAt - spawnedAt} ms for etcd; etcd up → admin up ${adminAt - etcd.healthyAt} ms, → first HTTPS request served ${servedAt - etcd.healthyAt} ms`)
})
