import t from 'tap'
import { createHash } from 'node:crypto'
import { connect } from 'node:tls'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { closeAgents, httpGet, httpsGet, type TlsOpts } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { find, parsePrometheus, type Scrape } from '../lib/prometheus.js'

/**
 * One HTTP/1.1 request over a fresh TLS connection with its own SNI and Host (undici takes the
 * SNI from the Host header, so it cannot send them different).
 */
function rawGet(o: TlsOpts, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: o.port, rejectUnauthorized: false, ...(o.servername ? { servername: o.servername } : {}), ...(o.cert ? { cert: o.cert, key: o.key } : {}) })
    let text = ''
    s.on('secureConnect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    s.on('data', (d: Buffer) => (text += d.toString()))
    s.on('error', reject)
    s.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) })
    })
  })
}

// One etcd, one gateway, one upstream: the per-request client-certificate checks (spec §6.4).
t.test('client certificates per request', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  // clients that send no SNI are served by strict.test's object
  const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { ssl: { fallback_sni: 'strict.test' } } } })
  t.teardown(closeAgents)
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['skip.test'], ['strict.test'], ['open.test'], ['*.wild.test', 'a.wild.test', 'b.wild.test'], ['a.multi.test', 'b.multi.test']], clients: ['alice'] })
  const alice = pki.clients['alice']!
  const srv = (n: string) => pki.servers[n]!
  const put = async (path: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(path, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
  }
  await put('ssls/skip', { sni: 'skip.test', cert: srv('skip.test').cert, key: srv('skip.test').key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/public/', '/hello[0-9]+'] } })
  await put('ssls/strict', { sni: 'strict.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca: pki.ca.cert } })
  await put('ssls/open', { sni: 'open.test', cert: srv('open.test').cert, key: srv('open.test').key })
  await put('ssls/wild', { sni: '*.wild.test', cert: srv('*.wild.test').cert, key: srv('*.wild.test').key, client: { ca: pki.ca.cert } })
  await put('ssls/multi', { snis: ['a.multi.test', 'b.multi.test'], cert: srv('a.multi.test').cert, key: srv('a.multi.test').key, client: { ca: pki.ca.cert } })
  await put('routes/all', {
    uri: '/*',
    upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } },
    plugins: {
      'proxy-rewrite': {
        headers: {
          set: {
            'X-Client-Serial': '$ssl_client_serial',
            'X-Client-Verify': '$ssl_client_verify',
            'X-Client-S-DN': '$ssl_client_s_dn',
            'X-Client-I-DN': '$ssl_client_i_dn',
            'X-Client-Fingerprint': '$ssl_client_fingerprint',
            'X-Server-Name': '$ssl_server_name',
            'Client-Cert': '$ssl_client_cert_rfc9440',
          },
        },
      },
    },
  })
  const skip: TlsOpts = { port: gw.https, servername: 'skip.test' }
  const withCert = (o: TlsOpts, c: { cert: string; key: string }): TlsOpts => ({ ...o, cert: c.cert, key: c.key })
  await eventually(() => httpsGet('/public/ready', skip).then((r) => r.status), (s) => s === 200, { describe: () => gw.output() })

  t.test('skip mode: whitelisted paths pass without a certificate; others get 400 JSON', async (t) => {
    const cases: [string, number][] = [
      ['/public/x', 200],
      ['/x/hello12/y', 200], // unanchored search
      ['/api', 400],
      ['/PUBLIC/x', 400], // case-sensitive
      ['/api?next=/public/', 400], // the query is not part of the path
      ['/public/../api', 400], // dot segments resolved before matching
      ['/public/%2e%2e/api', 400], // and after percent-decoding
      ['/%70ublic/x', 200], // percent-decoded
      ['//public//x', 200], // repeated slashes merged
    ]
    for (const [path, status] of cases) {
      const r = await httpsGet(path, skip)
      t.equal(r.status, status, `${path} → ${status}`)
      if (status === 400) t.same(r.json, { error_msg: 'client certificate was not present' }, `${path}: JSON body`)
    }
    t.ok(echo.seen.every((e) => !e.url.startsWith('/api')), 'no refused path reached the upstream')
    const r = await httpsGet('/%70ublic//x', skip)
    t.equal(r.json.url, '/public/x', 'the path matched is the path proxied')
  })

  t.test('skip mode: an unverifiable certificate passes the handshake, 400 off the whitelist, facts forwarded', async (t) => {
    const foreign = withCert(skip, pki.foreignClient)
    const r = await httpsGet('/api', foreign)
    t.equal(r.status, 400)
    t.match(r.json.error_msg, /^client certificate verification is not passed: FAILED:/)
    const ok = await httpsGet('/public/x', foreign)
    t.equal(ok.status, 200)
    t.match(ok.json.headers['x-client-verify'], /^FAILED:/)
    t.equal(ok.json.headers['client-cert'] ?? '', '', '$ssl_client_cert_rfc9440 is empty for a certificate that did not verify')
    const expired = await httpsGet('/api', withCert(skip, pki.expiredClient))
    t.equal(expired.json.error_msg, 'client certificate verification is not passed: FAILED:certificate has expired')
  })

  t.test('skip mode: a verified certificate passes everywhere, and its facts reach the upstream in nginx formats', async (t) => {
    const r = await httpsGet('/api', withCert(skip, alice))
    t.equal(r.status, 200)
    const h = r.json.headers
    t.equal(h['x-client-verify'], 'SUCCESS')
    t.equal(h['x-client-serial'], alice.serialHex)
    t.equal(h['x-client-s-dn'], 'C=FR,O=Test Org,CN=alice')
    t.equal(h['x-client-i-dn'], 'CN=Test Root CA')
    t.equal(h['x-client-fingerprint'], createHash('sha1').update(alice.der).digest('hex'))
    t.equal(h['x-server-name'], 'skip.test')
    t.equal(h['client-cert'], `:${alice.der.toString('base64')}:`, '$ssl_client_cert_rfc9440: RFC 9440 Client-Cert of the verified certificate')
  })

  t.test('SNI/Host guard: a Host choosing another object with client → 421; one the same object serves → served', async (t) => {
    const on = (servername: string | undefined, cert = true): TlsOpts => ({ port: gw.https, ...(servername ? { servername } : {}), ...(cert ? { cert: alice.cert, key: alice.key } : {}) })
    const cases: [string, TlsOpts, string, number][] = [
      ['exact: verified on strict.test, Host strict.test', on('strict.test'), 'strict.test', 200],
      ['exact, Host with case, port and dot', on('strict.test'), 'STRICT.test.:9443', 200],
      ['verified on strict.test, Host of an object without client', on('strict.test'), 'open.test', 200],
      ['verified on strict.test, Host of another object with client', on('strict.test'), 'skip.test', 421],
      ['SNI of an object without client, Host of one with client', on('open.test', false), 'strict.test', 421],
      ['SNI of an object without client, Host with no object', on('open.test', false), 'nobody.test', 200],
      ['skip mode, no certificate, Host of another object with client', on('skip.test', false), 'strict.test', 421],
      ['wildcard object: SNI a.wild.test, Host a.wild.test', on('a.wild.test'), 'a.wild.test', 200],
      ['wildcard object: SNI a.wild.test, Host b.wild.test (same object)', on('a.wild.test'), 'b.wild.test', 200],
      ['wildcard object: SNI a.wild.test, Host strict.test', on('a.wild.test'), 'strict.test', 421],
      ['second SNI of one object: SNI a.multi.test, Host b.multi.test', on('a.multi.test'), 'b.multi.test', 200],
      ['no SNI: the fallback_sni object serves its own Host', on(undefined), 'strict.test', 200],
      ['no SNI: the fallback_sni object, Host of another object with client', on(undefined), 'a.multi.test', 421],
    ]
    for (const [name, o, host, status] of cases) {
      const before = echo.seen.length
      const r = await rawGet(o, host, '/public/x')
      t.equal(r.status, status, `${name} → ${status}`)
      if (status === 421) {
        t.match(JSON.parse(r.body).error_msg, /^misdirected request: /, `${name}: the reason`)
        t.equal(echo.seen.length, before, `${name}: nothing reached the upstream`)
      }
    }
    // the metric keeps its reason: one count per 421 above, under the connection's object and SNI
    const mismatches = cases.filter((c) => c[3] === 421).length
    const counted = (s: Scrape): number => find(s, 'apisix_client_cert_failures_total', { reason: 'sni_host_mismatch' }).reduce((n, x) => n + x.value, 0)
    const s = await eventually(async () => parsePrometheus(await (await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`)).text()), (s) => counted(s) === mismatches, { describe: () => gw.output() })
    t.equal(find(s, 'apisix_client_cert_failures_total', { reason: 'sni_host_mismatch', ssl_id: 'open', sni: 'open.test' })[0]?.value, 1, 'labelled with the connection\'s object and SNI')
    t.equal(find(s, 'apisix_client_cert_failures_total', { reason: 'sni_host_mismatch', ssl_id: 'strict', sni: 'strict.test' })[0]?.value, 2, 'no SNI: labelled with fallback_sni')
  })

  t.test('plain HTTP is not subject to any object\'s client rules', async (t) => {
    const r = await httpGet(gw.http, '/api', { headers: { host: 'strict.test' } })
    t.equal(r.status, 200)
    t.equal(r.json.headers['x-client-verify'], 'NONE')
  })
})
