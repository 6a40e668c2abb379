import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { startEcho } from '../lib/echo.js'
import { eventually } from '../lib/eventually.js'
import { childrenOf } from '../lib/proc-tree.js'
import { connectionOwners } from '../lib/sock-owner.js'
import { oneConnection, type OneConnection } from '../lib/one-conn.js'

const PLAIN = 'bal.test'
const MTLS = 'mbal.test'
const BURST = 32
const ROUNDS = 10

t.test('TLS connections a worker accepted in a burst are shared with the other worker', async (t) => {
  const pki = makePki({ servers: [[PLAIN], [MTLS]], clients: ['alice'] })
  const alice = pki.clients['alice']!
  const echo = await startEcho(t)
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2 })
  await eventually(() => gw.output(), (out) => out.includes('"msg":"gateway started"'), { timeoutMs: 60_000, describe: gw.output })
  const admin = adminOf(gw)
  const srv = (n: string): { cert: string; key: string } => ({ cert: pki.servers[n]!.cert, key: pki.servers[n]!.key })
  t.equal((await admin.put('ssls/plain', { sni: PLAIN, ...srv(PLAIN) })).status, 201, 'ssl object without client CA stored')
  t.equal((await admin.put('ssls/m', { sni: MTLS, ...srv(MTLS), client: { ca: pki.ca.cert } })).status, 201, 'ssl object with client CA stored')
  t.equal((await admin.put('routes/all', {
    uri: '/*',
    upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } },
    plugins: { 'proxy-rewrite': { headers: { set: { 'X-Client-S-DN': '$ssl_client_s_dn', 'X-Client-Verify': '$ssl_client_verify', 'X-Server-Name': '$ssl_server_name' } } } },
  })).status, 201, 'route with proxy-rewrite stored')

  const workers = childrenOf(gw.pid)
  t.equal(workers.length, 2, `two workers: ${workers.join(', ')}`)
  const open = (i: number): OneConnection =>
    oneConnection(gw.https, i % 2 === 0 ? { servername: PLAIN, ca: pki.ca.cert } : { servername: MTLS, ca: pki.ca.cert, cert: alice.cert, key: alice.key })
  /** GET /n/<i> on c: ok when the echo saw that path with the right certificate facts */
  const check = async (c: OneConnection, i: number): Promise<true | string> => {
    const r = await c.get(`/n/${i}`)
    if ('error' in r) return `#${i}: ${r.error}`
    if (r.status !== 200) return `#${i}: status ${r.status} ${r.body.slice(0, 80)}`
    const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers
    const want = i % 2 === 0 ? [PLAIN, 'NONE', undefined] : [MTLS, 'SUCCESS', 'C=FR,O=Test Org,CN=alice']
    const got = [h['x-server-name'], h['x-client-verify'], h['x-client-s-dn']]
    return JSON.stringify(got) === JSON.stringify(want) ? true : `#${i}: facts ${JSON.stringify(got)}, want ${JSON.stringify(want)}`
  }
  // both workers have loaded both ssl objects and the route: sets of connections until each served
  let lastWarm = ''
  await eventually(async () => {
    const set = Array.from({ length: 16 }, (_, i) => open(i))
    const results = await Promise.all(set.map((c, i) => check(c, i)))
    const owners = connectionOwners(workers, gw.https)
    const by = set.map((c) => owners.get(c.localPort()))
    await Promise.all(set.map((c) => c.client.destroy()))
    const bad = results.filter((r) => r !== true)
    lastWarm = `failed: ${JSON.stringify(bad.slice(0, 3))}; owners: ${JSON.stringify(by)}`
    return bad.length === 0 && workers.every((w) => by.some((o, i) => o === w && i % 2 === 0) && by.some((o, i) => o === w && i % 2 === 1))
  }, (ok) => ok, { timeoutMs: 20_000, describe: () => lastWarm })

  // one worker is stopped: the kernel can give every new connection to the other one only
  const [busy, stopped] = workers as [number, number]
  process.kill(stopped, 'SIGSTOP')
  let resumed = false
  const cont = (): void => {
    if (!resumed) process.kill(stopped, 'SIGCONT')
    resumed = true
  }
  t.teardown(cont)
  const burst = Array.from({ length: BURST }, (_, i) => open(i))
  t.teardown(() => Promise.all(burst.map((c) => c.client.destroy())))
  const results = burst.map((c, i) => check(c, i))
  // every connection accepted: by the running worker, or on its way to the stopped one through the primary
  await eventually(() => connectionOwners([busy, gw.pid], gw.https).size, (n) => n >= BURST, { timeoutMs: 20_000, describe: () => `${connectionOwners([busy, gw.pid], gw.https).size} of ${BURST} accepted` })
  cont()

  const done = await Promise.all(results)
  t.same(done.filter((r) => r !== true), [], `all ${BURST} connections answered 200 with their own certificate facts (half with a client certificate)`)
  const owners = connectionOwners(workers, gw.https)
  const count = (w: number): number => burst.filter((c) => owners.get(c.localPort()) === w).length
  t.equal(count(busy) + count(stopped), BURST, `every connection is held by one of the workers (${count(busy)} + ${count(stopped)})`)
  t.ok(count(stopped) >= BURST / 4, `the worker that was stopped while the burst arrived holds ${count(stopped)} of ${BURST}`)
  t.ok(count(busy) >= BURST / 4, `the worker that accepted them all keeps ${count(busy)} of ${BURST}`)

  // and they keep working on the worker they were handed to
  const again = await Promise.all(burst.map((c, i) => check(c, i)))
  t.same(again.filter((r) => r !== true), [], 'a second request on every connection is answered too')
  await Promise.all(burst.map((c) => c.client.destroy()))

  // bursts with both workers running: hand-overs go both ways, while other connections open and
  // close; a byte of a handed-over connection read by the wrong process would stall its
  // handshake (the client's Finished) until the server's 10 s handshake timeout
  const failures: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const set = Array.from({ length: BURST }, (_, i) => open(i))
    const r = await Promise.all(set.map((c, i) => check(c, i)))
    await Promise.all(set.map((c) => c.client.destroy()))
    failures.push(...r.filter((x): x is string => x !== true).map((x) => `round ${round} ${x}`))
  }
  t.same(failures, [], `${ROUNDS} more bursts of ${BURST} connections: every request answered`)
})
