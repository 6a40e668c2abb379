import t from 'tap'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { httpGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { tempDir } from '../lib/proc.js'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

t.test('upstream mTLS: the gateway presents the client certificate an HTTPS upstream requires', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  const pki = makePki({ server: ['upstream.test'], clients: ['gw-one', 'gw-two'] })
  const one = pki.clients['gw-one']!
  const two = pki.clients['gw-two']!
  // an HTTPS upstream that only completes handshakes with a certificate of the test CA, and answers with its CN
  const upstream = createServer({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    const text = JSON.stringify({ cn: peer.subject?.CN })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()) }))
  const nodes = { [`127.0.0.1:${(upstream.address() as AddressInfo).port}`]: 1 }
  /** the gateway's answer on `path` once it is no longer the 404 of a route not loaded yet, or `want` holds */
  const answer = (path: string, want: (r: Awaited<ReturnType<typeof httpGet>>) => boolean = (r) => r.status !== 404) =>
    eventually(() => httpGet(gw.http, path), want, { timeoutMs: 10_000 })

  t.test('inline client_cert and client_key: the key is stored encrypted and decrypted for the connection', async (t) => {
    const put = await admin.put('routes/inline', { uri: '/inline', upstream: { scheme: 'https', nodes, tls: { client_cert: one.cert, client_key: one.key } } })
    t.equal(put.status, 201, 'stored')
    const stored = JSON.parse((await client.get('/apisix/routes/inline').string()) ?? '{}') as { upstream?: { tls?: { client_key?: string } } }
    t.notMatch(stored.upstream?.tls?.client_key ?? '', /BEGIN/, 'etcd holds the key encrypted, as APISIX stores it')
    const r = await answer('/inline')
    t.equal(r.status, 200, r.text)
    t.equal(r.json.cn, 'gw-one', 'the upstream saw the route\'s client certificate')
  })

  t.test('client_cert_id: the ssl object of type client is presented, and a change of it applies live', async (t) => {
    t.equal((await admin.put('ssls/up-client', { type: 'client', cert: two.cert, key: two.key })).status, 201)
    t.equal((await admin.put('upstreams/by-id', { scheme: 'https', nodes, tls: { client_cert_id: 'up-client' } })).status, 201)
    t.equal((await admin.put('routes/by-id', { uri: '/by-id', upstream_id: 'by-id' })).status, 201)
    const r = await answer('/by-id')
    t.equal(r.status, 200, r.text)
    t.equal(r.json.cn, 'gw-two', 'the certificate of ssls/up-client')
    // the upstream object is unchanged: only the ssl object it names moves
    t.equal((await admin.put('ssls/up-client', { type: 'client', cert: one.cert, key: one.key })).status, 200)
    const after = await answer('/by-id', (x) => x.json?.cn === 'gw-one')
    t.equal(after.status, 200, 'the next connections present the new certificate')
  })

  t.test('the ssl object named by client_cert_id is gone: 502 naming it, until it is back', async (t) => {
    t.equal((await admin.delete('ssls/up-client')).status, 200)
    const r = await answer('/by-id', (x) => x.status === 502)
    t.match(r.json, { error_msg: /ssl id \[up-client\] does not exist/ }, 'the reply says which ssl object is missing')
    t.equal((await admin.put('ssls/up-client', { type: 'client', cert: two.cert, key: two.key })).status, 201)
    const back = await answer('/by-id', (x) => x.status === 200)
    t.equal(back.json.cn, 'gw-two', 'served again once the object is back')
  })

  t.test('no client certificate configured: the upstream refuses the handshake, the client gets 502', async (t) => {
    t.equal((await admin.put('routes/none', { uri: '/none', upstream: { scheme: 'https', nodes } })).status, 201)
    const r = await answer('/none')
    t.equal(r.status, 502, r.text)
  })

  t.test('tls.verify: the upstream certificate is checked against apisix.ssl.ssl_trusted_certificate', async (t) => {
    const dir = await tempDir(t, 'upca-')
    const caFile = join(dir, 'ca.pem')
    await writeFile(caFile, pki.ca.cert)
    const trusting = await startGateway(t, { etcd: etcd.url, config: { apisix: { ssl: { ssl_trusted_certificate: caFile } } } })
    const verified = (host: string) => ({ scheme: 'https', nodes, pass_host: 'rewrite', upstream_host: host, tls: { verify: true, client_cert: one.cert, client_key: one.key } })
    t.equal((await admin.put('routes/verify', { uri: '/verify', upstream: verified('upstream.test') })).status, 201)
    t.equal((await admin.put('routes/verify-other', { uri: '/verify-other', upstream: verified('other.test') })).status, 201)
    const ok = await eventually(() => httpGet(trusting.http, '/verify'), (r) => r.status !== 404, { timeoutMs: 10_000 })
    t.equal(ok.status, 200, 'the CA file trusts the upstream\'s certificate for the name sent (SNI upstream.test)')
    t.equal(ok.json.cn, 'gw-one')
    const mismatch = await eventually(() => httpGet(trusting.http, '/verify-other'), (r) => r.status !== 404, { timeoutMs: 10_000 })
    t.equal(mismatch.status, 502, 'a certificate for another name is refused')
    const untrusted = await answer('/verify')
    t.equal(untrusted.status, 502, 'without the CA file (system roots only) the private CA is not trusted')
  })
})
