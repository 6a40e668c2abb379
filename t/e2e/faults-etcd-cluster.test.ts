import t from 'tap'
import { startEtcdCluster } from '../lib/etcd-cluster.js'
import { startGateway, type Gateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { httpGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'

/** Steady load: four clients per node, one request at a time each, until stopped. */
function load(nodes: readonly Gateway[]): { stop(): Promise<{ sent: number; failed: string[] }> } {
  let running = true
  let sent = 0
  const failed: string[] = []
  const loops = [...nodes, ...nodes, ...nodes, ...nodes].map(async (gw, n) => {
    const i = n % nodes.length
    while (running) {
      sent++
      const r = await httpGet(gw.http, '/load').catch((e: Error) => ({ status: 0, text: e.message }))
      if (r.status !== 200) failed.push(`node ${i + 1}: ${r.status} ${r.text.slice(0, 80)}`)
    }
  })
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      return { sent, failed }
    },
  }
}

t.test('three etcd members, two gateways under load: the leader stops, then a second member', async (t) => {
  const cluster = await startEtcdCluster(t)
  const echo = await startEcho(t)
  const nodes = [await startGateway(t, { etcd: [...cluster.urls] }), await startGateway(t, { etcd: [...cluster.urls] })]
  const [a] = nodes
  const put = (id: string, uri: string) => adminOf(a!).put(`routes/${id}`, { uri, upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })
  t.equal((await put("load", "/load")).status, 201, "route stored")
  for (const gw of nodes) await eventually(() => httpGet(gw.http, '/load'), (r) => r.status === 200, { timeoutMs: 10_000 })

  const traffic = load(nodes)
  const leader = await cluster.leader()
  await leader.stop()
  const second = cluster.members.find((m) => m !== leader)!
  await cluster.leader()
  await second.stop()
  // the last member alone has no quorum: the nodes serve their last configuration
  const during = await httpGet(nodes[1]!.http, '/load')
  t.equal(during.status, 200, 'served while two of three members are down')
  await leader.start()
  await second.start()
  await cluster.waitHealthy(30_000)
  const { sent, failed } = await traffic.stop()
  t.same(failed.slice(0, 10), [], `${sent} requests over both nodes while members stopped and returned, ${failed.length} failed`)

  const written = Date.now()
  const r = await put('after', '/after')
  t.ok(r.status === 201 || r.status === 200, `PUT after recovery → ${r.status}`)
  const seen = await Promise.all(nodes.map(async (gw) => {
    await eventually(() => httpGet(gw.http, '/after'), (x) => x.status === 200, { timeoutMs: 2_000, intervalMs: 10 })
    return Date.now() - written
  }))
  t.comment(`PUT after recovery seen by both nodes within ${Math.max(...seen)} ms (${seen.join(', ')})`)
  t.ok(Math.max(...seen) <= 2_000, "both nodes within 2 s")
})
