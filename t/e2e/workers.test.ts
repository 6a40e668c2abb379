import t from 'tap'
import { connect, type SecureVersion } from 'node:tls'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'

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

/**
 * GET `path` over one TLS connection with a client certificate, offering `session`: the status,
 * whether it resumed, and the session to offer next.
 */
function getWithCert(port: number, servername: string, version: SecureVersion, cert: { cert: string; key: string }, path: string, session?: Buffer): Promise<{ status: number; reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, minVersion: version, maxVersion: version, ...cert, ...(session ? { session } : {}) })
    let next: Buffer | undefined = session
    let text = ''
    s.on('session', (b: Buffer) => { next = b })
    s.once('secureConnect', () => {
      if (version === 'TLSv1.2') next = s.getSession() ?? session
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`)
    })
    s.setEncoding('latin1')
    s.on('data', (d: string) => { text += d })
    s.on('end', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
      if (!m) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`))
      resolve({ status: Number(m[1]), reused: s.isSessionReused(), session: next })
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


  t.test('a session of an object with client never resumes on another worker: a chain past client.depth stays refused', async (t) => {
    // the resumed session has the leaf only; its depth verdict is the full handshake's, which only
    // the worker that ran it knows (before the per-worker ticket keys, a resumption on the other
    // worker counted one intermediate and let dave's two through depth 1)
    const inter = issue(ca, { cn: 'Workers Intermediate 1', ca: true })
    const inter2 = issue(inter, { cn: 'Workers Intermediate 2', ca: true })
    const leaf = issue(inter2, { cn: 'dave' })
    const dave = { cert: leaf.cert + inter2.cert + inter.cert, key: leaf.key }
    const c = issue(ca, { cn: 'c.workers.test', sans: ['c.workers.test'] })
    const r = await admin.put('ssls/c', { sni: 'c.workers.test', cert: c.cert, key: c.key, client: { ca: ca.cert, depth: 1, skip_mtls_uri_regex: ['^/public/'] } })
    t.ok(r.status === 200 || r.status === 201, 'PUT ssls/c')
    // no route: a verified client gets 404 on /api, an unverified one the skip list's 400
    await eventually(() => getWithCert(gw.https, 'c.workers.test', 'TLSv1.3', dave, '/api').then((a) => a.status, () => 0), (s) => s === 400, { timeoutMs: 10_000, describe: gw.output })
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await getWithCert(gw.https, 'c.workers.test', version, dave, '/api')
      t.equal(first.status, 400, `${version}: the full handshake refuses the chain`)
      // 40 at once, so that both workers accept some of them
      const all = await Promise.all(Array.from({ length: 40 }, () => getWithCert(gw.https, 'c.workers.test', version, dave, '/api', first.session)))
      const statuses = new Map<number, number>()
      for (const a of all) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
      const resumed = all.filter((a) => a.reused).length
      t.ok(resumed < 40, `${version}: the other worker took some of them (${40 - resumed}) and made a full handshake`)
      t.same([...statuses], [[400, 40]], `${version}: 40 of 40 refused (${resumed} resumed on the worker that made the session, the others made a full handshake)`)
    }
  })

})
