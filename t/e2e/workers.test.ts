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

})
