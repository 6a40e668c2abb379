import t from 'tap'
import { createConnection, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { eventually } from '../lib/eventually.js'
import { freePort } from '../lib/ports.js'
import { find, parsePrometheus, type Scrape } from '../lib/prometheus.js'
import { httpGet } from '../lib/tls-client.js'

/**
 * A TCP relay in front of etcd that lets its first connection through (the primary's start-up
 * check) and holds every later one (the worker's) until release(): the worker starts while etcd,
 * as far as it can tell, does not answer.
 */
async function gate(t: Test, target: number): Promise<{ url: string; held: () => number; release: () => void }> {
  const port = await freePort()
  let seen = 0
  let holding = true
  const queue: Socket[] = []
  const sockets = new Set<Socket>()
  const relay = (client: Socket): void => {
    const upstream = createConnection({ host: '127.0.0.1', port: target })
    sockets.add(upstream)
    client.pipe(upstream).pipe(client)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  }
  const server = createServer((client) => {
    sockets.add(client)
    client.on('error', () => client.destroy())
    // paused: bytes stay in the socket until the relay pipes them
    client.pause()
    if (seen++ === 0 || !holding) relay(client)
    else queue.push(client)
  })
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  )
  return {
    url: `http://127.0.0.1:${port}`,
    held: () => queue.filter((s) => !s.destroyed).length,
    release() {
      holding = false
      for (const c of queue.splice(0)) if (!c.destroyed) relay(c)
    },
  }
}

const b64 = (s: string): string => Buffer.from(s).toString('base64')

t.test('readiness follows the first full config load, not etcd afterwards', async (t) => {
  const etcd = await startEtcd(t)
  const relay = await gate(t, Number(new URL(etcd.url).port))
  const gw = await startGateway(t, { etcd: relay.url, waitReady: false })
  const scrape = async (): Promise<Scrape> => parsePrometheus(await (await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`)).text())

  t.test('etcd never reached by the worker → /apisix/status 200, /apisix/status/ready 503 with a reason', async (t) => {
    await eventually(() => relay.held(), (n) => n > 0, { describe: gw.output })
    const status = await httpGet(gw.http, '/apisix/status')
    t.equal(status.status, 200)
    t.same(status.json, { status: 'ok' })
    const ready = await httpGet(gw.http, '/apisix/status/ready')
    t.equal(ready.status, 503)
    t.same(ready.json, { status: 'error', error: 'etcd has not been reached yet' })
    t.match(ready.headers['content-type'], /^application\/json/)
  })

  t.test('etcd reachable → first load → /apisix/status/ready 200', async (t) => {
    relay.release()
    const r = await eventually(() => httpGet(gw.http, '/apisix/status/ready'), (r) => r.status === 200, { timeoutMs: 30_000, describe: gw.output })
    t.same(r.json, { status: 'ok' })
  })

  t.test('etcd goes away after the first load → still 200 (the last configuration serves)', async (t) => {
    // first make sure the worker's watch is live (a change arrives only through it): stopping etcd
    // between the listing and the watch leaves the watcher waiting without a word (noted for core/etcd/prefix-watch.ts)
    const put = await fetch(`${etcd.url}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: b64('/apisix/upstreams/u1'), value: b64(JSON.stringify({ nodes: { '127.0.0.1:1': 1 } })) }),
    })
    t.equal(put.status, 200)
    await put.arrayBuffer()
    await eventually(scrape, (s) => (find(s, 'apisix_etcd_modify_indexes', { key: 'upstreams' })[0]?.value ?? 0) > 0, { describe: gw.output })
    await etcd.stop()
    // the worker has noticed: its reachable gauge is 0
    await eventually(
      scrape,
      (s) => find(s, 'apisix_etcd_reachable')[0]?.value === 0,
      { timeoutMs: 30_000, describe: gw.output },
    )
    for (let i = 0; i < 5; i++) {
      const r = await httpGet(gw.http, '/apisix/status/ready')
      t.equal(r.status, 200, `probe ${i + 1} while etcd is down`)
    }
    t.same((await httpGet(gw.http, '/apisix/status/ready')).json, { status: 'ok' })
  })
})
