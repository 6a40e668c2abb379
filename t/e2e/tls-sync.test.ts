import t from 'tap'
import type { Test } from 'tap'
import { Etcd3 } from 'etcd3'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa } from '../lib/certs.js'
import { handshake, httpsGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { freePort } from '../lib/ports.js'

/** A TCP relay to etcd that the test can cut (every connection dropped, new ones refused) and restore. */
async function relay(t: Test, target: number): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const port = await freePort()
  const open = new Set<Socket>()
  let server: Server | undefined
  const up = (): Promise<void> =>
    new Promise((resolve) => {
      server = createServer((a) => {
        const b = connect(target, '127.0.0.1')
        open.add(a)
        open.add(b)
        a.on('error', () => b.destroy())
        b.on('error', () => a.destroy())
        a.on('close', () => (b.destroy(), open.delete(a)))
        b.on('close', () => (a.destroy(), open.delete(b)))
        a.pipe(b)
        b.pipe(a)
      })
      server.listen(port, '127.0.0.1', () => resolve())
    })
  const down = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of open) s.destroy()
      if (!server) return resolve()
      server.close(() => resolve())
      server = undefined
    })
  await up()
  t.teardown(down)
  return { port, cut: down, restore: up }
}

t.test('the TLS data plane follows etcd through outages and compactions', async (t) => {
  const etcd = await startEtcd(t)
  const etcdPort = Number(new URL(etcd.url).port)
  const link = await relay(t, etcdPort)
  const gw = await startGateway(t, { etcd: `http://127.0.0.1:${link.port}` })
  const admin = adminOf(gw)
  const ca = makeCa('Sync CA')
  const cert = (name: string) => issue(ca, { cn: name, sans: [name] })
  const describe = (): string => gw.output()
  const served = async (sni: string): Promise<string> => {
    const r = await handshake({ port: gw.https, servername: sni })
    return r.ok ? String(r.peer?.serialNumber).toUpperCase() : `error:${r.error}`
  }
  const direct = new Etcd3({ hosts: etcd.url })
  t.teardown(() => direct.close())

  t.test('etcd stopped: handshakes and requests keep working; a change made after etcd returns is applied', async (t) => {
    const a = cert('down.test')
    t.equal((await admin.put('ssls/down', { sni: 'down.test', cert: a.cert, key: a.key })).status, 201)
    await eventually(() => served('down.test'), (s) => s === a.serialHex, { describe })
    t.not(await etcd.stop(), undefined)
    // the watcher notices; meanwhile every handshake and request is served from the last configuration
    for (let i = 0; i < 20; i++) t.equal(await served('down.test'), a.serialHex, `handshake ${i} while etcd is down`)
    const r = await httpsGet('/apisix/status', { port: gw.https, servername: 'down.test' })
    t.equal(r.status, 200, 'a request over TLS while etcd is down')
    await etcd.restart()
    const b = cert('back.test')
    await eventually(() => admin.put('ssls/back', { sni: 'back.test', cert: b.cert, key: b.key }).then((x) => x.status), (s) => s === 201, { timeoutMs: 20_000, describe })
    await eventually(() => served('back.test'), (s) => s === b.serialHex, { timeoutMs: 20_000, describe })
    t.equal(await served('down.test'), a.serialHex, 'the old object is still served')
  })

  t.test('a compaction past the watcher revision → full resync (a delete and a put made meanwhile are both seen)', async (t) => {
    const a = cert('gone.test')
    const b = cert('new.test')
    t.equal((await admin.put('ssls/gone', { sni: 'gone.test', cert: a.cert, key: a.key })).status, 201)
    await eventually(() => served('gone.test'), (s) => s === a.serialHex, { describe })
    await link.cut()
    // written straight to etcd while the gateway cannot see it, then history compacted away
    const now = Math.floor(Date.now() / 1000)
    await direct.delete().key('/apisix/ssls/gone')
    await direct.put('/apisix/ssls/new').value(JSON.stringify({ id: 'new', sni: 'new.test', cert: b.cert, key: b.key, create_time: now, update_time: now }))
    for (let i = 0; i < 5; i++) await direct.put('/apisix/filler').value(String(i))
    const rev = (await direct.get('/apisix/filler').exec()).header.revision
    await direct.kv.compact({ revision: rev, physical: true })
    t.equal(await served('gone.test'), a.serialHex, 'still the last configuration while cut off')
    await link.restore()
    await eventually(() => served('new.test'), (s) => s === b.serialHex, { timeoutMs: 30_000, describe })
    await eventually(() => served('gone.test'), (s) => s.startsWith('error:'), { timeoutMs: 5_000, describe })
    t.pass('both changes applied after the resync')
    // and the watch is live again afterwards
    const c = cert('after.test')
    t.equal((await admin.put('ssls/after', { sni: 'after.test', cert: c.cert, key: c.key })).status, 201)
    await eventually(() => served('after.test'), (s) => s === c.serialHex, { timeoutMs: 2_000, describe })
  })
})
