import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startEtcdCluster } from '../lib/etcd-cluster.js'
import { makePki, issue } from '../lib/certs.js'
import { tempDir } from '../lib/proc.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { createEtcdClient } from '../../core/etcd/client.js'
import { isGatewayError } from '../../core/errors.js'
import { etcdConfig, etcdClient, outcome } from '../lib/etcd-probe.js'

t.test('etcd over TLS', async (t) => {
  const pki = makePki({ server: ['127.0.0.1'], clients: ['gateway'] })
  const gwClient = pki.clients['gateway']!
  const cluster = await startEtcdCluster(t, {
    size: 1,
    tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, client: gwClient },
  })
  const dir = await tempDir(t, 'etcd-client-')
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'gw.pem'), key: join(dir, 'gw-key.pem'), foreignCa: join(dir, 'foreign.pem') }
  await writeFile(files.ca, pki.ca.cert)
  await writeFile(files.cert, gwClient.cert)
  await writeFile(files.key, gwClient.key)
  await writeFile(files.foreignCa, pki.foreignCa.cert)
  const host = cluster.urls
  const withCert = { cert: files.cert, key: files.key }
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>, RegExp | 'ok']> = [
    ['CA from apisix.ssl.ssl_trusted_certificate, client certificate → works', { host, tls: withCert }, { ssl: { ssl_trusted_certificate: files.ca } }, 'ok'],
    ['CA from apisix.data_encryption.ssl_trusted_certificate → works', { host, tls: withCert }, { data_encryption: { ssl_trusted_certificate: files.ca } }, 'ok'],
    ['no client certificate while etcd asks for one → refused', { host }, { ssl: { ssl_trusted_certificate: files.ca } }, /UNAVAILABLE|certificate|handshake|alert/i],
    ['a CA that did not issue etcd\'s certificate → refused', { host, tls: withCert }, { ssl: { ssl_trusted_certificate: files.foreignCa } }, /certificate/i],
    ['system roots only → refused', { host, tls: withCert }, {}, /certificate/i],
    ['verify: false with an untrusted server certificate → works', { host, tls: { ...withCert, verify: false } }, {}, 'ok'],
  ]
  for (const [name, etcdConf, apisixConf, expect] of cases) {
    t.test(name, async (t) => {
      const c = etcdClient(t, etcdConf, apisixConf)
      const r = await outcome(c.put('/apisix/tls').value(name).then(() => c.get('/apisix/tls').string()))
      if (expect === 'ok') t.equal(r, 'ok')
      else t.match(r, expect)
    })
  }

  t.test('a server certificate for another name → refused; with verify: false → works', async (t) => {
    const other = issue(pki.ca, { cn: 'etcd.internal', sans: ['etcd.internal'] })
    const c2 = await startEtcdCluster(t, { size: 1, tls: { cert: other.cert, key: other.key, ca: pki.ca.cert, client: gwClient } })
    const ssl = { ssl: { ssl_trusted_certificate: files.ca } }
    t.match(await outcome(etcdClient(t, { host: c2.urls, tls: withCert }, ssl).get('/apisix/x').string()), /altnames|IP: 127\.0\.0\.1|certificate/i)
    t.equal(await outcome(etcdClient(t, { host: c2.urls, tls: { ...withCert, verify: false } }, ssl).get('/apisix/x').string()), 'ok')
  })

  t.test('settings that cannot work → GW_ETCD_CONFIG at startup, naming the key', async (t) => {
    const bad: Array<[Record<string, unknown>, Record<string, unknown>, RegExp]> = [
      [{ host: ['http://127.0.0.1:1', 'https://127.0.0.1:2'] }, {}, /^deployment\.etcd\.host: mixes http/],
      [{ host }, { ssl: { ssl_trusted_certificate: join(dir, 'missing.pem') } }, /^apisix\.ssl\.ssl_trusted_certificate: cannot read .*missing\.pem: ENOENT/],
      [{ host, tls: { cert: join(dir, 'none.pem'), key: files.key } }, { ssl: { ssl_trusted_certificate: files.ca } }, /^deployment\.etcd\.tls\.cert: cannot read/],
    ]
    for (const [e, a, msg] of bad) {
      const err = (() => {
        try {
          createEtcdClient(etcdConfig(e, a)).close()
          return undefined
        } catch (err) {
          return err
        }
      })()
      t.ok(isGatewayError(err, 'GW_ETCD_CONFIG'), String(err))
      t.match((err as Error).message, msg)
    }
  })

  t.test('a gateway on https etcd with a client certificate → ready, admin writes land in etcd', async (t) => {
    const gw = await startGateway(t, {
      etcd: host as string[],
      config: { apisix: { ssl: { ssl_trusted_certificate: files.ca } }, deployment: { etcd: { tls: withCert } } },
    })
    const r = await adminOf(gw).put('upstreams/tls', { type: 'roundrobin', nodes: { '127.0.0.1:1980': 1 } })
    t.equal(r.status, 201, r.text)
    const c = etcdClient(t, { host, tls: withCert }, { ssl: { ssl_trusted_certificate: files.ca } })
    t.match(await c.get('/apisix/upstreams/tls').string(), /roundrobin/)
  })
})

