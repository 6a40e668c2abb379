import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { connect, type SecureVersion } from 'node:tls'
import { get } from 'node:http'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'

/** The pids whose parent is `pid` (the data-plane workers of a gateway's primary). */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e))
    } catch {
      // the process is gone
    }
  }
  return out.sort((a, b) => a - b)
}

/** The status of GET `path` on a fresh connection (no keep-alive: a killed worker's socket is not reused). */
const statusOf = (port: number, path: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')))
    req.on('error', reject)
  })

/** One handshake with `session` offered: whether it resumed, and the session to offer next. */
function resume(port: number, servername: string, version: SecureVersion, session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, minVersion: version, maxVersion: version, ...(session ? { session } : {}) })
    s.once('secureConnect', () => {
      const done = (sess: Buffer | undefined): void => {
        resolve({ reused: s.isSessionReused(), session: sess })
        s.destroy()
      }
      // TLS 1.2: the session is known now; TLS 1.3: a new session's ticket follows the handshake
      if (version === 'TLSv1.2') return done(s.getSession() ?? session)
      if (s.isSessionReused()) return done(session)
      s.once('session', done)
      s.resume()
    })
    s.on('error', reject)
  })
}

t.test('workers: 2 data-plane workers', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2 })
  const admin = adminOf(gw)
  const ca = makeCa('Workers CA')
  for (const name of ['a', 'b']) {
    const c = issue(ca, { cn: `${name}.workers.test`, sans: [`${name}.workers.test`] })
    const r = await admin.put(`ssls/${name}`, { sni: `${name}.workers.test`, cert: c.cert, key: c.key })
    t.ok(r.status === 200 || r.status === 201, `PUT ssls/${name}`)
  }
  await eventually(() => resume(gw.https, 'b.workers.test', 'TLSv1.3').then(() => true, () => false), (ok) => ok, { timeoutMs: 10_000, describe: gw.output })

  t.test('40 resumptions with a ticket all resume, whichever worker accepts them; never on another ssl object', async (t) => {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await resume(gw.https, 'a.workers.test', version)
      t.equal(first.reused, false, `${version}: a full handshake first`)
      let resumed = 0
      let session = first.session
      for (let i = 0; i < 40; i++) {
        const r = await resume(gw.https, 'a.workers.test', version, session)
        if (r.reused) resumed++
        session = r.session
      }
      t.equal(resumed, 40, `${version}: ${resumed} of 40 resumed`)
      t.equal((await resume(gw.https, 'b.workers.test', version, first.session)).reused, false, `${version}: object b does not resume object a's ticket`)
    }
  })

  t.test('a worker killed with SIGKILL is replaced; the gateway keeps answering meanwhile', async (t) => {
    const before = childrenOf(gw.pid)
    t.equal(before.length, 2, `two workers: ${before.join(', ')}`)
    const victim = before[0]!
    process.kill(victim, 'SIGKILL')
    // a connection handed to the victim as it died is lost (as with nginx); every request is
    // answered within a few seconds while the victim is replaced, and all of them once it is
    for (let i = 0; i < 5; i++)
      t.equal(await eventually(() => statusOf(gw.http, '/apisix/status'), (s) => s === 200, { timeoutMs: 10_000, describe: gw.output }), 200, `request ${i} answered`)
    const after = await eventually(
      async () => childrenOf(gw.pid),
      (pids) => pids.length === 2 && !pids.includes(victim),
      { timeoutMs: 20_000, describe: gw.output },
    )
    await eventually(() => statusOf(gw.http, '/apisix/status/ready'), (s) => s === 200, { timeoutMs: 20_000, describe: gw.output })
    for (let i = 0; i < 6; i++) t.equal(await statusOf(gw.http, '/apisix/status'), 200, `after the restart, request ${i} answered at once`)
    t.equal(after.length, 2, `workers now ${after.join(', ')}`)
    t.notOk(after.includes(victim), 'the killed worker is gone')
    t.ok(after.some((p) => !before.includes(p)), 'a new worker pid appeared')
    t.equal((await resume(gw.https, 'a.workers.test', 'TLSv1.3')).reused, false, 'TLS still served')
  })
})
