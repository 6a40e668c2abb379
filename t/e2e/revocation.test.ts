import t from 'tap'
import { execFile } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect as h2connect, type ClientHttp2Session } from 'node:http2'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { promisify } from 'node:util'
import { startEtcd } from '../lib/etcd.js'
import { BIN_APISIX, startGateway } from '../lib/gateway.js'
import { spawnNode } from '../lib/proc.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { oneConnection } from '../lib/one-conn.js'
import { sClient } from '../lib/openssl.js'
import { OpensslCa } from '../lib/openssl-ca.js'
import { find, parsePrometheus } from '../lib/prometheus.js'

const run = promisify(execFile)

/**
 * Client-certificate revocation end to end (CONTRACT.md "Revocation"): CRLs made by `openssl ca
 * -gencrl`, set through the admin API, judged on new handshakes, resumed sessions and requests on
 * connections already open (HTTP/1.1 keep-alive and HTTP/2), and for a trusted proxy's header.
 */
t.test('revocation with CRLs', async (t) => {
  const root = new OpensslCa('Revocation Root CA')
  const inter = new OpensslCa('Revocation Issuing CA', root)
  const other = new OpensslCa('Unrelated CA')
  t.teardown(() => [root, inter, other].forEach((c) => c.cleanup()))
  const alice = inter.issue('alice')
  const bob = inter.issue('bob')
  const chainOf = (c: { cert: string }) => c.cert + inter.self.cert
  const ca = root.self.cert + inter.self.cert

  // a CRL past the admin's 1.5 MiB goes to etcd directly: this etcd takes 8 MiB, as npm start's does
  const etcd = await startEtcd(t, undefined, { maxRequestBytes: 8 * 2 ** 20 })
  const echo = await startEcho(t)
  const gw = await startGateway(t, {
    etcd: etcd.url,
    config: { apisix: { ssl: { client_cert_header: { name: 'X-Client-Cert', trusted_proxies: ['127.0.0.1/32'] } } } },
  })
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['strict.test'], ['skip.test']] })
  const srv = (n: string) => pki.servers[n]!
  const put = async (path: string, body: Record<string, unknown>) => {
    const r = await admin.put(path, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
    return r
  }
  const crls = (...pems: string[]) => pems.join('')
  await put('ssls/strict', { sni: 'strict.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca, crl: crls(root.crl(), inter.crl()) } })
  await put('ssls/skip', { sni: 'skip.test', cert: srv('skip.test').cert, key: srv('skip.test').key, client: { ca, crl: crls(root.crl(), inter.crl()), skip_mtls_uri_regex: ['^/public/'] } })
  await put('routes/all', {
    uri: '/*',
    upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } },
    plugins: { 'proxy-rewrite': { headers: { set: { 'X-Client-Verify': '$ssl_client_verify' } } } },
  })
  await put('routes/hdr', {
    uri: '/hdr/*',
    upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } },
    plugins: { 'mtls-auth': { ca, crl: crls(root.crl(), inter.crl()), consumer_required: false } },
  })
  /** Replaces client.crl alone, as an operator would after `openssl ca -gencrl`. */
  const setCrl = async (id: string, pem: string) => {
    const r = await admin.patch(`ssls/${id}/client/crl`, pem)
    if (r.status !== 200) throw new Error(`PATCH crl: ${r.status} ${r.text}`)
    return r
  }
  const curl = async (name: string, who: { certPath: string; keyPath: string } | undefined, path = '/x') => {
    const args = ['-s', '-k', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `${name}:${gw.https}:127.0.0.1`, `https://${name}:${gw.https}${path}`]
    if (who) args.push('--cert', who.certPath, '--key', who.keyPath)
    const r = await run('curl', args).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
    return Number(r.stdout || 0)
  }
  // curl sends the leaf only: the gateway finds the issuing CA in client.ca
  await eventually(() => curl('strict.test', alice), (s) => s === 200, { describe: () => gw.output() })

  t.test('admin: client.crl is checked, warned about, and patched alone', async (t) => {
    const bad = await admin.put('ssls/bad', { sni: 'bad.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca, crl: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' } })
    t.equal(bad.status, 400)
    t.match(bad.json, { error_msg: /client\.crl.*cannot be read/ })
    const foreign = await admin.put('ssls/bad', { sni: 'bad.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca, crl: other.crl() } })
    t.equal(foreign.status, 400)
    t.match(foreign.json, { error_msg: /client\.crl.*CN=Unrelated CA.*not issued by a certificate of the CA bundle/ })
    const stale = await admin.put('ssls/stale', { sni: 'stale.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca, crl: inter.crl({ nextUpdate: new Date(Date.now() + 3_600_000) }) } })
    t.equal(stale.status, 201)
    t.match(stale.json, { warning: /client\.crl: the CRL of CN=Revocation Issuing CA is due at .*within 24 hours/ })
    const patched = await admin.patch('ssls/stale/client/crl', 'not a crl')
    t.equal(patched.status, 400)
    t.match(patched.json, { error_msg: /client\.crl/ })
    t.equal((await admin.delete('ssls/stale')).status, 200)
    const stdout = await new Promise<string>((resolve) => {
      const p = spawnNode(BIN_APISIX, ['certs', '-c', gw.configFile, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      p.stdout?.on('data', (b: Buffer) => (out += b))
      p.on('exit', () => resolve(out))
    })
    const rows = JSON.parse(stdout) as { kind: string; id: string; subject: string }[]
    t.ok(rows.some((r) => r.kind === 'crl' && r.id === 'strict' && r.subject === 'CN=Revocation Issuing CA'), 'bin/apisix certs lists the CRL rows (their issuer, their nextUpdate)')
  })

  t.test('a connected client is refused on its next request once revoked, on new connections too; a new CRL serves it again', async (t) => {
    const conn = oneConnection(gw.https, { servername: 'strict.test', ca: pki.ca.cert, cert: chainOf(alice), key: alice.key })
    t.teardown(() => conn.client.close())
    t.match(await conn.get('/x'), { status: 200 }, 'served before the revocation')
    const h2 = await new Promise<ClientHttp2Session>((resolve, reject) => {
      const s = h2connect(`https://strict.test:${gw.https}`, { host: '127.0.0.1', servername: 'strict.test', ca: pki.ca.cert, cert: chainOf(alice), key: alice.key, createConnection: () => tlsConnect({ host: '127.0.0.1', port: gw.https, servername: 'strict.test', ca: pki.ca.cert, cert: chainOf(alice), key: alice.key, ALPNProtocols: ['h2'] }) })
      s.once('connect', () => resolve(s))
      s.once('error', reject)
    })
    t.teardown(() => h2.destroy())
    const h2get = (path: string) =>
      new Promise<number>((resolve) => {
        const r = h2.request({ ':path': path, ':authority': 'strict.test' })
        r.on('response', (h) => resolve(Number(h[':status'])))
        r.on('error', () => resolve(0))
        r.resume()
      })
    t.equal(await h2get('/x'), 200, 'HTTP/2: served before the revocation')
    const h2closed = new Promise<void>((resolve) => h2.once('close', resolve))

    inter.revoke(alice)
    await setCrl('strict', crls(root.crl(), inter.crl()))
    await eventually(() => curl('strict.test', alice), (s) => s === 0, { describe: () => 'new connections of the revoked client are refused at the handshake' })
    t.equal(await curl('strict.test', bob), 200, 'another client of the same CA is still served')
    const next = await conn.get('/x')
    t.match(next, { status: 400, body: /certificate revoked/ }, 'the next request on the open keep-alive connection gets 400')
    await eventually(async () => conn.closed(), (c) => c === true, { describe: () => 'the connection is closed after the 400' })
    t.equal(await h2get('/x'), 400, 'HTTP/2: the next stream on the open connection gets 400')
    await h2closed
    t.pass('HTTP/2: the connection is closed (GOAWAY) after the 400')
    const scrape = parsePrometheus(await (await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`)).text())
    t.ok(find(scrape, 'apisix_client_cert_failures_total', { ssl_id: 'strict', reason: 'revoked' }).reduce((a, x) => a + x.value, 0) >= 1, 'counted with reason revoked')

    inter.unrevoke(alice)
    await setCrl('strict', crls(root.crl(), inter.crl()))
    await eventually(() => curl('strict.test', alice), (s) => s === 200, { describe: () => 'served again under the new CRL' })
  })

  t.test('a session made before the revocation does not resume after it', async (t) => {
    const sess = `${inter.dir}/alice.sess`
    const first = await sClient(gw.https, ['-tls1_2', '-servername', 'strict.test', '-cert', alice.certPath, '-key', alice.keyPath, '-sess_out', sess], 'GET /x HTTP/1.1\r\nHost: strict.test\r\nConnection: close\r\n\r\n')
    t.match(first.stdout, /HTTP\/1\.1 200/, 'full handshake served')
    const again = await sClient(gw.https, ['-tls1_2', '-servername', 'strict.test', '-cert', alice.certPath, '-key', alice.keyPath, '-sess_in', sess], 'GET /x HTTP/1.1\r\nHost: strict.test\r\nConnection: close\r\n\r\n')
    t.match(again.stdout, /Reused, TLSv1\.2/, 'the session resumes while nothing changed')
    inter.revoke(alice)
    await setCrl('strict', crls(root.crl(), inter.crl()))
    await eventually(() => curl('strict.test', alice), (s) => s === 0)
    const after = await sClient(gw.https, ['-tls1_2', '-servername', 'strict.test', '-cert', alice.certPath, '-key', alice.keyPath, '-sess_in', sess], 'GET /x HTTP/1.1\r\nHost: strict.test\r\nConnection: close\r\n\r\n')
    t.notMatch(after.stdout, /Reused/, 'the session is not resumed')
    t.notMatch(after.stdout, /HTTP\/1\.1 200/, 'and the revoked client is not served')
    inter.unrevoke(alice)
    await setCrl('strict', crls(root.crl(), inter.crl()))
    await eventually(() => curl('strict.test', alice), (s) => s === 200)
  })

  t.test("skip mode: FAILED:certificate revoked and 400 off the whitelist; an intermediate's CRL revokes its branch; an expired CRL fails closed", async (t) => {
    t.equal(await curl('skip.test', alice), 200)
    root.revoke(inter.self)
    await setCrl('skip', crls(root.crl(), inter.crl()))
    await eventually(() => curl('skip.test', alice), (s) => s === 400, { describe: () => 'the whole branch under the revoked intermediate' })
    t.equal(await curl('skip.test', bob), 400, 'bob too: his issuer is revoked')
    t.equal(await curl('skip.test', bob, '/public/x'), 200, 'the whitelist still serves him')
    const seen = echo.seen.filter((e) => e.url === '/public/x').at(-1)
    t.equal(seen?.headers['x-client-verify'], 'FAILED:certificate revoked', '$ssl_client_verify')
    root.unrevoke(inter.self)
    const past = new Date(Date.now() - 86_400_000)
    const expired = await setCrl('skip', crls(root.crl(), inter.crl({ lastUpdate: new Date(Date.now() - 3 * 86_400_000), nextUpdate: past })))
    t.match(expired.json, { warning: /expired at/ }, 'stored with a warning')
    await eventually(() => curl('skip.test', bob, '/public/y'), (s) => s === 200)
    const v = echo.seen.filter((e) => e.url === '/public/y').at(-1)
    t.equal(v?.headers['x-client-verify'], 'FAILED:CRL has expired', 'fails closed: FAILED:CRL has expired')
    t.equal(await curl('skip.test', bob), 400)
    const scrape = parsePrometheus(await (await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`)).text())
    t.ok(find(scrape, 'apisix_client_cert_failures_total', { ssl_id: 'skip', reason: 'crl_expired' }).reduce((a, x) => a + x.value, 0) >= 1, 'counted with reason crl_expired')
    const gauge = find(scrape, 'apisix_ssl_crl_next_update_timestamp_seconds', { ssl_id: 'skip', issuer: 'CN=Revocation Issuing CA' })
    t.equal(gauge[0]?.value, Math.floor(past.getTime() / 1000), "the nextUpdate gauge: the expired CRL's nextUpdate")
    await setCrl('skip', crls(root.crl(), inter.crl()))
    await eventually(() => curl('skip.test', bob), (s) => s === 200)
  })

  t.test("a trusted proxy's header certificate is revoked the same way (mtls-auth)", async (t) => {
    const hdr = (c: { cert: string }) => ({ 'x-client-cert': encodeURIComponent(c.cert) })
    const get = (c: { cert: string }) => fetch(`http://127.0.0.1:${gw.http}/hdr/x`, { headers: hdr(c) }).then(async (r) => ({ status: r.status, body: await r.text() }))
    t.match(await get(alice), { status: 200 })
    inter.revoke(alice)
    await put('routes/hdr', {
      uri: '/hdr/*',
      upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } },
      plugins: { 'mtls-auth': { ca, crl: crls(root.crl(), inter.crl()), consumer_required: false } },
    })
    await eventually(() => get(alice), (r) => r.status === 401, { describe: () => 'refused once its CRL lists it' })
    t.match(await get(alice), { body: /revoked/ })
    t.match(await get(bob), { status: 200 }, 'bob is still served')
    inter.unrevoke(alice)
  })

  t.test('a CRL bigger than the admin API takes: 413 naming the limit and the way; written to etcd directly, the data plane applies it', async (t) => {
    const big = new OpensslCa('Big CRL CA')
    t.teardown(() => big.cleanup())
    const mallory = big.issue('mallory')
    const trent = big.issue('trent')
    big.revoke(mallory)
    // 31,000 more revoked entries with 20-byte serials (about 54 bytes of JSON each): past 1.5 MiB
    const fillers: string[] = []
    for (let i = 0; i < 31_000; i++) fillers.push(`R\t301231235959Z\t260101000000Z\t${(0x4000000000n * 2n ** 120n + BigInt(i)).toString(16).toUpperCase()}\tunknown\t/CN=f${i}`)
    appendFileSync(join(big.dir, 'index.txt'), fillers.join('\n') + '\n')
    const pem = big.crl()
    t.ok(JSON.stringify(pem).length > 1.5 * 2 ** 20, `the CRL is ${(pem.length / 2 ** 20).toFixed(2)} MiB of PEM`)
    await put('ssls/big', { sni: 'big.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca: big.self.cert } })
    await eventually(() => curl('big.test', mallory), (s) => s === 200, { describe: () => gw.output() })
    const r = await admin.patch('ssls/big/client/crl', pem)
    t.equal(r.status, 413)
    t.match(r.json, { error_msg: /larger than 1572864 bytes \(1\.5 MiB, the admin API's limit\).*written to etcd directly.*--max-request-bytes.*README\.md, "Revoking a client certificate"/ })
    // what an operator does instead: the stored object, with its CRL, written straight into etcd
    const key = Buffer.from('/apisix/ssls/big').toString('base64')
    const range = (await (await fetch(`${etcd.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key }) })).json()) as { kvs: { value: string }[] }
    const stored = JSON.parse(Buffer.from(range.kvs[0]!.value, 'base64').toString()) as { client: Record<string, unknown> }
    stored.client['crl'] = pem
    const w = await fetch(`${etcd.url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key, value: Buffer.from(JSON.stringify(stored)).toString('base64') }) })
    t.equal(w.status, 200, `etcd took the ${(JSON.stringify(stored).length / 2 ** 20).toFixed(2)} MiB object: ${w.ok ? '' : await w.text()}`)
    await eventually(() => curl('big.test', mallory), (s) => s === 0, { timeoutMs: 15_000, describe: () => gw.output() })
    t.pass('mallory, in the big CRL, is refused at the handshake')
    t.equal(await curl('big.test', trent), 200, 'trent is served')
  })
})
