import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { eventually } from '../lib/eventually.js'
import { freePort } from '../lib/ports.js'
import { collect, stopProcess } from '../lib/proc.js'
import { sClient } from '../lib/openssl.js'
import { OpensslCa } from '../lib/openssl-ca.js'

/**
 * OCSP stapling (CONTRACT.md `ocsp_stapling`) against a real responder, `openssl ocsp -port` on a
 * free loopback port: `openssl s_client -status` sees the staple; with the responder stopped the
 * cached response is stapled within cache_ttl, and an object that never got one is served
 * without a staple.
 */
t.test('OCSP stapling with openssl ocsp as the responder', async (t) => {
  const port = await freePort()
  const ca = new OpensslCa('OCSP Test CA')
  t.teardown(() => ca.cleanup())
  const server = ca.issue('ocsp.test', ['basicConstraints = CA:FALSE', 'keyUsage = digitalSignature', 'extendedKeyUsage = serverAuth', 'subjectAltName = DNS:ocsp.test, DNS:later.test', `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${port}`])
  const responder = spawn('openssl', ['ocsp', '-port', String(port), '-index', join(ca.dir, 'index.txt'), '-CA', ca.self.certPath, '-rsigner', ca.self.certPath, '-rkey', ca.self.keyPath, '-ignore_err'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const responderOutput = collect(responder)
  t.teardown(() => stopProcess(responder))

  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const put = async (id: string, sni: string) => {
    const r = await admin.put(`ssls/${id}`, { sni, cert: server.cert + ca.self.cert, key: server.key, ocsp_stapling: { enabled: true, cache_ttl: 3600 } })
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ssls/${id}: ${r.status} ${r.text}`)
  }
  const status = (sni: string) => sClient(gw.https, ['-status', '-servername', sni, '-CAfile', ca.self.certPath], 'Q\n')

  t.test('the admin refuses a cache_ttl under 60 s', async (t) => {
    const r = await admin.put('ssls/bad', { sni: 'bad.test', cert: server.cert, key: server.key, ocsp_stapling: { enabled: true, cache_ttl: 10 } })
    t.equal(r.status, 400)
    t.match(r.json, { error_msg: /ocsp_stapling.*cache_ttl/ })
  })

  await put('stapled', 'ocsp.test')
  t.test('openssl s_client -status sees a good staple', async (t) => {
    const r = await eventually(() => status('ocsp.test'), (x) => /OCSP Response Status: successful/.test(x.stdout), { describe: () => `${responderOutput()}\n${gw.output()}` })
    t.match(r.stdout, /Cert Status: good/)
    t.match(r.stdout, /Verify return code: 0 \(ok\)/, 'the handshake itself verified')
  })

  t.test('with the responder stopped: the cached staple within cache_ttl, and no staple (but a handshake) for an object without one', async (t) => {
    await stopProcess(responder)
    const cached = await status('ocsp.test')
    t.match(cached.stdout, /OCSP Response Status: successful/, 'still stapled from the cache')
    await put('later', 'later.test')
    const fresh = await eventually(() => status('later.test'), (x) => /Verify return code: 0 \(ok\)/.test(x.stdout), { describe: () => gw.output() })
    t.match(fresh.stdout, /OCSP response: no response sent/, 'handshakes go on without a staple')
    const again = await status('later.test')
    t.match(again.stdout, /OCSP response: no response sent/)
    t.match(again.stdout, /Verify return code: 0 \(ok\)/, 'and keep succeeding while the responder is down')
  })
})
