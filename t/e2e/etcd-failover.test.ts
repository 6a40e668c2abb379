import t from 'tap'
import { startEtcdCluster } from '../lib/etcd-cluster.js'
import { eventually } from '../lib/eventually.js'
import { etcdClient, mirror, outcome } from '../lib/etcd-probe.js'

t.test('failover between three members', async (t) => {
  const cluster = await startEtcdCluster(t)
  const etcd = etcdClient(t, { host: cluster.urls })
  const view = mirror(t, etcd)
  await etcd.put('/apisix/routes/0').value('before')
  await eventually(() => view.get('/apisix/routes/0'), (v) => v === 'before')

  t.test('the leader stops → every read and write still succeeds on the other members', async (t) => {
    const leader = await cluster.leader()
    await leader.stop()
    const started = Date.now()
    let failed = 0
    for (let i = 0; i < 100; i++) {
      const r = await outcome(etcd.put(`/apisix/routes/${i % 10}`).value(`v${i}`).then(() => etcd.get(`/apisix/routes/${i % 10}`).string()))
      if (r !== 'ok') failed++
    }
    t.equal(failed, 0, `200 calls after the leader stopped, ${Date.now() - started} ms`)
    const next = await cluster.leader()
    t.not(next.name, leader.name, 'a new leader was elected')
    await eventually(() => view.get('/apisix/routes/9'), (v) => v === 'v99', { describe: cluster.output })
    await leader.start()
    await cluster.waitHealthy()
  })

  t.test('each member in turn stops → the watch follows every write', async (t) => {
    for (const [i, m] of cluster.members.entries()) {
      await m.stop()
      await etcd.put('/apisix/ssls/turn').value(`stopped ${m.name}`)
      await eventually(() => view.get('/apisix/ssls/turn'), (v) => v === `stopped ${m.name}`, { timeoutMs: 10_000, describe: cluster.output })
      await m.start()
      await cluster.waitHealthy()
      t.pass(`member ${i} down: write seen by the watcher`)
    }
  })

  t.test('a compaction passes the watch\'s revision while its member is down → it lists again and follows later writes', async (t) => {
    const m0 = cluster.members[0]!
    const one = etcdClient(t, { host: [m0.url] })
    const view0 = mirror(t, one)
    await etcd.put('/apisix/upstreams/c').value('c0')
    await eventually(() => view0.get('/apisix/upstreams/c'), (v) => v === 'c0')
    await m0.stop()
    for (let i = 1; i <= 20; i++) await etcd.put('/apisix/upstreams/c').value(`c${i}`)
    const rev = (await etcd.get('/apisix/upstreams/c').exec()).header.revision
    await etcd.kv.compact({ revision: rev, physical: true })
    await m0.start()
    await cluster.waitHealthy()
    await eventually(() => view0.get('/apisix/upstreams/c'), (v) => v === 'c20', { timeoutMs: 10_000, describe: cluster.output })
    await etcd.put('/apisix/upstreams/c').value('after compaction')
    await eventually(() => view0.get('/apisix/upstreams/c'), (v) => v === 'after compaction', { timeoutMs: 5_000, describe: cluster.output })
  })

  t.test('two members down → calls fail within the timeout; members back → calls succeed again', async (t) => {
    const [a, b] = cluster.members
    await a?.stop()
    await b?.stop()
    const short = etcdClient(t, { host: cluster.urls, timeout: 2 })
    t.not(await outcome(short.put('/apisix/routes/q').value('x').exec(), 30_000), 'ok', 'no quorum: the write is refused, not hung')
    await a?.start()
    await b?.start()
    await cluster.waitHealthy()
    t.equal(await outcome(etcd.put('/apisix/routes/q').value('back').exec()), 'ok')
    await eventually(() => view.get('/apisix/routes/q'), (v) => v === 'back', { timeoutMs: 10_000 })
  })
})

