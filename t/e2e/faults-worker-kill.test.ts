import t from 'tap'
import type { Test } from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway, type Gateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki, type Pki } from '../lib/certs.js'
import { startEcho } from '../lib/echo.js'
import { eventually } from '../lib/eventually.js'
import { childrenOf } from '../lib/proc-tree.js'
import { connectionOwners } from '../lib/sock-owner.js'
import { oneConnection, type OneConnection } from '../lib/one-conn.js'

const SNI = 'kill.test'
const PER_KIND = 8
/** successes every surviving connection must add once the replacement answers, before the load stops */
const AFTER_READY = 20

type Kind = 'http' | 'https'

/** One keep-alive connection under load and what its requests met. */
interface Loaded {
  readonly name: string
  readonly kind: Kind
  readonly conn: OneConnection
  /** the worker pid holding its server end */
  readonly owner: number
  ok: number
  /** successes whose request was sent after the kill */
  okAfterKill: number
  okAfterReady: number
  /** the first failure (the loop stops there: the one connection is gone or broken) */
  error?: string
  errorAtMs?: number
}

/** A GET of /echo/<tag> on `c`: ok when the upstream answered 200 and echoed that very path. */
async function echoOk(c: OneConnection, tag: string): Promise<true | string> {
  const path = `/echo/${tag}`
  const r = await c.get(path, { host: SNI })
  if ('error' in r) return r.error
  if (r.status !== 200) return `status ${r.status}: ${r.body.slice(0, 80)}`
  let url = ''
  try {
    url = String((JSON.parse(r.body) as { url?: unknown }).url)
  } catch {
    return `not the echo's JSON: ${r.body.slice(0, 80)}`
  }
  return url === path ? true : `echoed ${url}, not ${path}`
}

/** `n` connections of each kind that made one request each, with the worker owning each one. */
async function openSet(gw: Gateway, pki: Pki, workers: readonly number[], n: number, label: string): Promise<{ kind: Kind; name: string; conn: OneConnection; owner: number }[]> {
  const conns = (['http', 'https'] as const).flatMap((kind) =>
    Array.from({ length: n }, (_, i) => ({
      kind,
      name: `${label} ${kind} #${i}`,
      conn: kind === 'http' ? oneConnection(gw.http) : oneConnection(gw.https, { servername: SNI, ca: pki.ca.cert }),
    })),
  )
  const first = await Promise.all(conns.map((c) => echoOk(c.conn, `${c.name.replace(/\W+/g, '-')}-0`)))
  const bad = first.findIndex((r) => r !== true)
  if (bad >= 0) throw new Error(`${conns[bad]?.name}: first request failed: ${String(first[bad])}`)
  const owners = { http: connectionOwners(workers, gw.http), https: connectionOwners(workers, gw.https) }
  return conns.map((c) => ({ ...c, owner: owners[c.kind].get(c.conn.localPort()) ?? 0 }))
}

/** Opens sets until `want` holds (at most `tries` sets, the rejected ones closed); the last set otherwise. */
async function openSetUntil(
  gw: Gateway, pki: Pki, workers: readonly number[], n: number, label: string,
  want: (set: { kind: Kind; owner: number }[]) => boolean, tries = 6,
): Promise<{ set: Awaited<ReturnType<typeof openSet>>; tries: number }> {
  for (let i = 1; ; i++) {
    const set = await openSet(gw, pki, workers, n, label)
    if (want(set) || i >= tries) return { set, tries: i }
    await Promise.all(set.map((c) => c.conn.client.destroy()))
  }
}

const closeAll = (t: Test, conns: readonly { conn: OneConnection }[]): void => {
  t.teardown(() => Promise.all(conns.map((c) => c.conn.client.destroy())))
}

t.test('a worker killed with SIGKILL under load: it is replaced, and the other worker\'s clients see no errors', async (t) => {
  const pki = makePki({ server: [SNI] })
  const echo = await startEcho(t)
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2 })
  // both workers listen (startGateway returns once one answers)
  await eventually(() => gw.output(), (out) => out.includes('"msg":"gateway started"'), { timeoutMs: 60_000, describe: gw.output })
  const admin = adminOf(gw)
  t.equal((await admin.put('ssls/kill', { sni: SNI, cert: pki.server.cert, key: pki.server.key })).status, 201, 'ssl object stored')
  t.equal((await admin.put('routes/echo', { uri: '/echo/*', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).status, 201, 'route to the echo upstream stored')

  const workers = childrenOf(gw.pid)
  t.equal(workers.length, 2, `two workers: ${workers.join(', ')}`)
  // every worker serves the route and the certificate (each runs its own watch)
  await eventually(async () => {
    const set = await openSet(gw, pki, workers, 2, 'warm')
    await Promise.all(set.map((c) => c.conn.client.destroy()))
    return true
  }, (ok) => ok, { timeoutMs: 15_000, describe: gw.output })

  // 8 HTTP and 8 HTTPS keep-alive connections spread over both workers
  const opened = await openSetUntil(gw, pki, workers, PER_KIND, 'load', (set) => workers.every((w) => set.some((c) => c.owner === w)))
  closeAll(t, opened.set)
  const conns: Loaded[] = opened.set.map((c) => ({ ...c, ok: 0, okAfterKill: 0, okAfterReady: 0 }))
  t.same(conns.filter((c) => !workers.includes(c.owner)).map((c) => c.name), [], 'every connection is owned by one of the two workers (/proc/<pid>/fd ↔ /proc/net/tcp)')
  t.ok(workers.every((w) => conns.some((c) => c.owner === w)), `both workers own connections (${opened.tries} connection set(s) opened): ${workers.map((w) => `${w}: ${conns.filter((c) => c.owner === w).length}`).join(', ')}`)
  const [victim, survivor] = [...workers].sort((a, b) => conns.filter((c) => c.owner === b).length - conns.filter((c) => c.owner === a).length)
  if (victim === undefined || survivor === undefined) throw new Error('two workers expected')

  // steady load: one request at a time on every connection, until stopped or the connection fails
  let running = true
  let killAt = 0
  let readyAt = 0
  const loops = conns.map(async (c) => {
    for (let n = 1; running; n++) {
      const [sentAfterKill, sentAfterReady] = [killAt !== 0, readyAt !== 0]
      const r = await echoOk(c.conn, `${c.name.replace(/\W+/g, '-')}-${n}`)
      if (r !== true) {
        c.error = r
        c.errorAtMs = killAt ? Date.now() - killAt : -1
        return
      }
      c.ok++
      if (sentAfterKill) c.okAfterKill++
      if (sentAfterReady) c.okAfterReady++
    }
  })
  const stopLoad = async (): Promise<void> => {
    running = false
    await Promise.all(loops)
  }
  t.teardown(stopLoad)
  await eventually(() => conns.every((c) => c.ok >= 20 || c.error !== undefined), (ok) => ok, { timeoutMs: 15_000, describe: gw.output })
  t.same(conns.filter((c) => c.error !== undefined).map((c) => `${c.name}: ${c.error}`), [], 'no errors under load before the kill')

  killAt = Date.now()
  process.kill(victim, 'SIGKILL')
  const after = await eventually(() => childrenOf(gw.pid), (pids) => pids.length === 2 && !pids.includes(victim), { timeoutMs: 20_000, describe: gw.output })
  const forkedMs = Date.now() - killAt
  const replacement = after.find((p) => p !== survivor) ?? 0
  // the replacement answers: a new connection that it owns gets 200 from /apisix/status/ready;
  // meanwhile every new connection is answered (by the survivor until the replacement listens)
  const probed = { survivor: 0, replacement: 0, failed: [] as string[] }
  await eventually(async () => {
    const c = oneConnection(gw.http)
    try {
      const r = await c.get('/apisix/status/ready')
      const owner = connectionOwners([survivor, replacement], gw.http).get(c.localPort())
      if (!('status' in r) || r.status !== 200) probed.failed.push(`${'error' in r ? r.error : r.status} (worker ${owner ?? 'unknown'})`)
      else if (owner === survivor) probed.survivor++
      else if (owner === replacement) probed.replacement++
      else probed.failed.push(`answered 200 by no known worker (${owner ?? 'unknown'})`)
      return 'status' in r && r.status === 200 && owner === replacement
    } finally {
      await c.client.destroy()
    }
  }, (ok) => ok, { timeoutMs: 30_000, describe: gw.output })
  readyAt = Date.now()
  const readyMs = readyAt - killAt
  // a short while more: every surviving connection goes on succeeding after the replacement is up
  const survivors = conns.filter((c) => c.owner === survivor)
  const victims = conns.filter((c) => c.owner === victim)
  await eventually(() => survivors.every((c) => c.okAfterReady >= AFTER_READY || c.error !== undefined), (ok) => ok, { timeoutMs: 20_000, describe: gw.output })
  await stopLoad()
  const loadMs = Date.now() - killAt

  t.same(probed.failed, [], `every new connection opened while the victim was replaced got 200 from /apisix/status/ready (${probed.survivor} from the survivor, then ${probed.replacement} from the replacement)`)
  t.same([after.length, after.includes(victim)], [2, false], `two workers again, the killed one gone: ${after.join(', ')}`)
  t.not(replacement, victim, `the replacement worker ${replacement} is a new pid (victim ${victim}, survivor ${survivor})`)
  t.ok(after.includes(survivor), `the surviving worker ${survivor} still runs`)
  t.same(survivors.filter((c) => c.error !== undefined).map((c) => `${c.name}: ${c.error} (${c.errorAtMs} ms after the kill)`), [],
    `the ${survivors.length} connections owned by the surviving worker saw 0 errors`)
  t.same(survivors.filter((c) => c.okAfterKill === 0 || c.okAfterReady < AFTER_READY).map((c) => `${c.name}: ${c.okAfterKill} after the kill, ${c.okAfterReady} after the replacement`), [],
    `every surviving connection kept succeeding through the kill and after the replacement (≥ ${AFTER_READY} each)`)
  t.same(victims.filter((c) => c.error === undefined || !c.conn.closed()).map((c) => c.name), [],
    `the ${victims.length} connections owned by the killed worker failed and are closed (expected: their worker is gone)`)
  t.same(victims.filter((c) => c.okAfterKill > 0).map((c) => c.name), [], 'no request sent after the kill on a connection of the killed worker was answered (one answered just before may still arrive)')

  // new connections afterwards: both workers (the survivor and the replacement) serve HTTP and HTTPS.
  // The load's connections close first: the survivor still holding them, the workers' balance
  // (core/server/worker-balance.ts) would rightly send most new ones to the replacement
  await Promise.all(conns.map((c) => c.conn.client.destroy()))
  const fresh = await openSetUntil(gw, pki, after, 4, 'new',
    (set) => (['http', 'https'] as const).every((k) => after.every((w) => set.some((c) => c.kind === k && c.owner === w))))
  closeAll(t, fresh.set)
  t.ok((['http', 'https'] as const).every((k) => after.every((w) => fresh.set.some((c) => c.kind === k && c.owner === w))),
    `new HTTP and HTTPS connections land on both the survivor and the replacement (${fresh.tries} set(s) opened)`)
  const freshFailures: string[] = []
  await Promise.all(fresh.set.map(async (c) => {
    for (let n = 1; n <= 5; n++) {
      const r = await echoOk(c.conn, `${c.name.replace(/\W+/g, '-')}-${n}`)
      if (r !== true) freshFailures.push(`${c.name} (worker ${c.owner}): ${r}`)
    }
  }))
  t.same(freshFailures, [], `${fresh.set.length} new connections after the replacement: 6 requests each, all answered by the upstream`)

  const sum = (cs: readonly Loaded[], f: (c: Loaded) => number): number => cs.reduce((a, c) => a + f(c), 0)
  const sent = sum(conns, (c) => c.ok + (c.error !== undefined ? 1 : 0))
  t.comment(`requests sent under load: ${sent} over ${conns.length} connections (${loadMs} ms from the kill to the end of the load)`)
  t.comment(`survivor ${survivor}: ${survivors.length} connections, ${sum(survivors, (c) => c.ok)} ok, ${survivors.filter((c) => c.error !== undefined).length} failed (${sum(survivors, (c) => c.okAfterKill)} ok after the kill)`)
  t.comment(`victim ${victim}: ${victims.length} connections, ${sum(victims, (c) => c.ok)} ok (before the kill, or sent just before it), ${victims.filter((c) => c.error !== undefined).length} failed: ${[...new Set(victims.map((c) => c.error))].join(' | ')}`)
  t.comment(`replacement ${replacement}: forked ${forkedMs} ms after the kill, answering on its own connection ${readyMs} ms after it (${probed.survivor + probed.replacement + probed.failed.length} probe connections)`)
})
