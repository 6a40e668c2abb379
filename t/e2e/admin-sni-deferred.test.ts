import t, { type Test } from 'tap'
import { pino } from 'pino'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { KEY, startGateway } from '../lib/gateway.js'
import { adminOf, type AdminClient } from '../lib/admin.js'
import { freePort } from '../lib/ports.js'
import { makePki } from '../lib/certs.js'
import { seeded } from '../lib/random.js'
import { eventually } from '../lib/eventually.js'
import { decodeLocalConfig } from '../../core/config/local.js'
import { createEtcdClient } from '../../core/etcd/client.js'
import { startAdmin } from '../../admin/server.js'
import { claimsIn, sharedSniWarnings } from '../../admin/sni-claims.js'
import { normalizeSni } from '../../core/net/hostname.js'

// `bin/apisix start` holds the admin's shared-SNI index (one listing of every ssl object) until the
// workers have loaded, so etcd serves two listings during start-up instead of three. Until then an
// ssl write lists the ssl directory for its warnings: the answers must be the same either way.

const NAMES = ['a.test', 'b.test', 'c.test', '*.w.test', 'x.w.test']
const pki = makePki({ server: NAMES })
const cert = { cert: pki.server.cert, key: pki.server.key }

async function heldAdmin(t: Test, etcdUrl: string, indexAfter: Promise<void>): Promise<{ admin: AdminClient; etcd: Etcd3; close: () => Promise<void> }> {
  const port = await freePort()
  const config = decodeLocalConfig('test.yaml', {
    deployment: { admin: { admin_key: [{ name: 'admin', key: KEY, role: 'admin' }], admin_listen: { ip: '127.0.0.1', port } }, etcd: { host: [etcdUrl], timeout: 5 } },
  })
  const etcd = createEtcdClient(config)
  t.teardown(() => etcd.close())
  const handle = await startAdmin({ config, etcd, log: pino({ level: 'silent' }), indexAfter })
  t.teardown(() => handle.close())
  return { admin: adminOf({ admin: port }), etcd, close: () => handle.close() }
}

/** The warnings a listing of etcd gives for `id` claiming `snis`. */
async function expected(etcd: Etcd3, id: string, snis: readonly string[]): Promise<string | undefined> {
  const all = await etcd.getAll().prefix('/apisix/ssls/').strings()
  const kvs = Object.entries(all).map(([key, raw]) => ({ key, value: JSON.parse(raw) as unknown }))
  const w = sharedSniWarnings(snis.map(normalizeSni), claimsIn(kvs, new Set(snis.map(normalizeSni)), `/apisix/ssls/${id}`))
  return w.length > 0 ? w.join('; ') : undefined
}

/** etcd's count of open watchers (the admin's index is the only watching client in these tests). */
async function watchers(etcdUrl: string): Promise<number> {
  const text = await (await fetch(`${etcdUrl}/metrics`)).text()
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text)
  if (!m) throw new Error('etcd /metrics has no etcd_debugging_mvcc_watcher_total')
  return Number(m[1])
}

/** Seeded ssl PUTs (some straight into etcd); every admin answer is compared with a listing. */
async function writes(a: { admin: AdminClient; etcd: Etcd3 }, seed: number, n: number): Promise<{ wrong: string[]; warned: number }> {
  const rnd = seeded(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const ids = ['1', '2', '3', '4', '5']
  const wrong: string[] = []
  let warned = 0
  for (let i = 0; i < n; i++) {
    const id = pick(ids)
    const snis = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => pick(NAMES)))]
    const r = rnd()
    if (r < 0.2) {
      await a.etcd.put(`/apisix/ssls/${id}`).value(JSON.stringify({ id, snis, ...cert }))
      continue
    }
    if (r > 0.9) {
      await a.admin.delete(`ssls/${id}`)
      continue
    }
    const want = await expected(a.etcd, id, snis)
    const res = await a.admin.put(`ssls/${id}`, { ...cert, snis })
    if (res.status >= 300) wrong.push(`#${i}: ${res.status} ${res.text}`)
    else if (res.json.warning !== want) wrong.push(`#${i} ssls/${id} ${JSON.stringify(snis)}: got ${JSON.stringify(res.json.warning)}, want ${JSON.stringify(want)}`)
    if (want) warned++
  }
  return { wrong, warned }
}

t.test('index held back: no watch on etcd, warnings from listings; released: it watches and the warnings stay right', async (t) => {
  const etcd = await startEtcd(t)
  let release: () => void = () => undefined
  const a = await heldAdmin(t, etcd.url, new Promise<void>((r) => (release = r)))
  // objects that exist before the index ever lists
  await a.etcd.put('/apisix/ssls/1').value(JSON.stringify({ id: '1', snis: ['a.test', 'b.test'], ...cert }))
  await a.etcd.put('/apisix/ssls/2').value(JSON.stringify({ id: '2', snis: ['*.w.test'], ...cert }))

  const held = await writes(a, 11, 30)
  t.same(held.wrong, [], 'while held, every answer is what a listing gives')
  t.ok(held.warned >= 5, `the held sequence exercised the warning (${held.warned} warned PUTs)`)
  t.equal(await watchers(etcd.url), 0, 'after 30 writes the held index still has no watch on etcd')

  release()
  await eventually(() => watchers(etcd.url), (n) => n === 1, { timeoutMs: 10_000 })
  const after = await writes(a, 12, 30)
  t.same(after.wrong, [], 'once released, every answer is what a listing gives, writes made while held included')
  t.ok(after.warned >= 5, `the released sequence exercised the warning (${after.warned} warned PUTs)`)
})

t.test('an admin closed while its index is held closes at once and never watches', async (t) => {
  const etcd = await startEtcd(t)
  const a = await heldAdmin(t, etcd.url, new Promise<void>(() => undefined))
  const r = await a.admin.put('ssls/1', { ...cert, snis: ['a.test'] })
  t.equal(r.status, 201)
  const since = Date.now()
  await a.close()
  t.ok(Date.now() - since < 1500, `closed in ${Date.now() - since} ms (a started index waits up to 2 s for its sync)`)
  t.equal(await watchers(etcd.url), 0)
})

t.test('bin/apisix start: the admin lists ssl objects for its index only after both workers loaded theirs', async (t) => {
  const etcd = await startEtcd(t)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  for (let i = 0; i < 50; i++) await client.put(`/apisix/ssls/pre-${i}`).value(JSON.stringify({ id: `pre-${i}`, snis: [`p${i}.w.test`], ...cert }))
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2 })
  const lines = (): { pid: number; time: number; msg: string; objects?: number }[] =>
    gw
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { pid: number; time: number; msg: string })
  // each process writes its log asynchronously: the lines may arrive in any order, their times may not
  const seen = (): boolean => lines().some((l) => l.msg === 'shared-SNI index: listing the ssl objects') && new Set(lines().filter((l) => l.msg === 'configuration loaded').map((l) => l.pid)).size === 2
  await eventually(seen, Boolean, { timeoutMs: 20_000, describe: gw.output })
  const loaded = lines().filter((l) => l.msg === 'configuration loaded')
  const listing = lines().find((l) => l.msg === 'shared-SNI index: listing the ssl objects')!
  t.equal(loaded.length, 2, 'each worker loaded once')
  for (const l of loaded) t.ok(l.time <= listing.time, `worker ${l.pid} loaded at ${l.time}, the admin listed at ${listing.time}`)
  const admin = adminOf(gw)
  await eventually(() => watchers(etcd.url), (n) => n === 3, { timeoutMs: 10_000 })
  const r = await admin.put('ssls/new', { ...cert, snis: ['p7.w.test', 'fresh.w.test'] })
  t.equal(r.status, 201)
  t.equal(r.json.warning, 'sni "p7.w.test" also claimed by ssl pre-7; the object updated last serves it')
})
