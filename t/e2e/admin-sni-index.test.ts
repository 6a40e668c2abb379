import t, { type Test } from 'tap'
import { pino } from 'pino'
import { startEtcd } from '../lib/etcd.js'
import { KEY } from '../lib/gateway.js'
import { adminOf, type AdminClient } from '../lib/admin.js'
import { freePort } from '../lib/ports.js'
import { makePki } from '../lib/certs.js'
import { seeded } from '../lib/random.js'
import { decodeLocalConfig } from '../../core/config/local.js'
import { createEtcdClient } from '../../core/etcd/client.js'
import { startAdmin } from '../../admin/server.js'
import { claimsIn, sharedSniWarnings } from '../../admin/sni-claims.js'
import { normalizeSni } from '../../core/net/hostname.js'
import type { Etcd3 } from 'etcd3'

// The shared-SNI warning of an ssl PUT comes from an index fed by an etcd watch (admin/sni-watch.ts):
// it must give the answer a listing of etcd would, whoever wrote last (this admin, another one, etcd itself).

const NAMES = ['a.test', 'b.test', 'c.test', '*.w.test', 'x.w.test']
const pki = makePki({ server: NAMES })
const cert = { cert: pki.server.cert, key: pki.server.key }

async function inProcessAdmin(t: Test, etcdUrl: string): Promise<{ admin: AdminClient; etcd: Etcd3 }> {
  const port = await freePort()
  const config = decodeLocalConfig('test.yaml', {
    deployment: { admin: { admin_key: [{ name: 'admin', key: KEY, role: 'admin' }], admin_listen: { ip: '127.0.0.1', port } }, etcd: { host: [etcdUrl], timeout: 5 } },
  })
  const etcd = createEtcdClient(config)
  t.teardown(() => etcd.close())
  const handle = await startAdmin({ config, etcd, log: pino({ level: 'silent' }) })
  t.teardown(() => handle.close())
  return { admin: adminOf({ admin: port }), etcd }
}

/** The warnings a listing of etcd gives for `id` claiming `snis` (what the admin answered before the index). */
async function expected(etcd: Etcd3, id: string, snis: readonly string[]): Promise<string | undefined> {
  const all = await etcd.getAll().prefix('/apisix/ssls/').strings()
  const kvs = Object.entries(all).map(([key, raw]) => ({ key, value: JSON.parse(raw) as unknown }))
  const w = sharedSniWarnings(snis.map(normalizeSni), claimsIn(kvs, new Set(snis.map(normalizeSni)), `/apisix/ssls/${id}`))
  return w.length > 0 ? w.join('; ') : undefined
}

t.test('ssl PUTs through two admins and straight into etcd: every warning equals a listing of etcd', async (t) => {
  const etcd = await startEtcd(t)
  const a = await inProcessAdmin(t, etcd.url)
  const b = await inProcessAdmin(t, etcd.url)
  const rnd = seeded(7)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const ids = ['1', '2', '3', '4', '5', '6']
  let warned = 0
  const wrong: string[] = []
  for (let i = 0; i < 60; i++) {
    const id = pick(ids)
    const snis = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => pick(NAMES)))].map((s) => (rnd() < 0.2 ? s.toUpperCase() : s))
    const r = rnd()
    if (r < 0.15) {
      // a foreign writer: etcd directly, then the admins must count it at once
      await a.etcd.put(`/apisix/ssls/${id}`).value(JSON.stringify({ id, snis, ...cert, ...(rnd() < 0.3 ? { status: 0 } : {}) }))
      continue
    }
    const who = r < 0.55 ? a : b
    if (r > 0.9) {
      await who.admin.delete(`ssls/${id}`)
      continue
    }
    const body = { ...cert, snis, ...(rnd() < 0.15 ? { status: 0 } : {}) }
    const want = body.status === 0 ? undefined : await expected(a.etcd, id, snis)
    const res = await who.admin.put(`ssls/${id}`, body)
    if (res.status >= 300) {
      wrong.push(`#${i}: ${res.status} ${res.text}`)
      continue
    }
    if (want) warned++
    if (res.json.warning !== want) wrong.push(`#${i} ssls/${id} ${JSON.stringify(snis)}: got ${JSON.stringify(res.json.warning)}, want ${JSON.stringify(want)}`)
  }
  t.same(wrong, [], 'every answer as a listing gives it')
  t.ok(warned >= 10, `the sequence exercised the warning (${warned} warned PUTs)`)
})

t.test('etcd restarted under the admin: the index still sees every write afterwards', async (t) => {
  const etcd = await startEtcd(t)
  const a = await inProcessAdmin(t, etcd.url)
  t.equal((await a.admin.put('ssls/1', { ...cert, sni: 'a.test' })).status, 201)
  await etcd.stop()
  await etcd.restart()
  let r = await a.admin.put('ssls/2', { ...cert, sni: 'a.test' })
  for (let i = 0; r.status === 503 && i < 100; i++) r = await a.admin.put('ssls/2', { ...cert, sni: 'a.test' })
  t.equal(r.status, 201)
  t.equal(r.json.warning, 'sni "a.test" also claimed by ssl 1; the object updated last serves it')
  t.equal((await a.admin.delete('ssls/1')).status, 200)
  const again = await a.admin.put('ssls/2', { ...cert, sni: 'a.test' })
  t.equal(again.status, 200)
  t.equal(again.json.warning, undefined, 'a deleted object no longer counts')
})
