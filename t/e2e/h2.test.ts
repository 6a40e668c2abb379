import t from 'tap'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { connect as tlsConnect } from 'node:tls'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { closeAgents, httpsGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { h2Connect, h2Request } from '../lib/h2-client.js'

const run = promisify(execFile)

/** The ALPN protocol a TLS client offering `protocols` ends up with (false: none). */
function alpnOf(port: number, servername: string, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: protocols }, () => {
      resolve(s.alpnProtocol ?? false)
      s.destroy()
    })
    s.on('error', reject)
  })
}

// One etcd, one gateway, one upstream: HTTP/2 on both listeners, every rule per stream.
t.test('HTTP/2 on the data plane', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  t.teardown(closeAgents)
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['skip.test', 'strict.test'], ['strict.test'], ['*.wild.test', 'a.wild.test', 'b.wild.test']], clients: ['alice'] })
  const alice = pki.clients['alice']!
  const srv = (n: string) => pki.servers[n]!
  const put = async (path: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(path, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
  }
  await put('ssls/skip', { sni: 'skip.test', cert: srv('skip.test').cert, key: srv('skip.test').key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/public/'] } })
  await put('ssls/strict', { sni: 'strict.test', cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca: pki.ca.cert } })
  await put('ssls/wild', { sni: '*.wild.test', cert: srv('*.wild.test').cert, key: srv('*.wild.test').key, client: { ca: pki.ca.cert } })
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
            'X-Client-Fingerprint': '$ssl_client_fingerprint',
            'X-Server-Name': '$ssl_server_name',
          },
        },
      },
    },
  })
  await eventually(() => httpsGet('/public/ready', { port: gw.https, servername: 'skip.test' }).then((r) => r.status), (s) => s === 200, { describe: () => gw.output() })

  t.test('ALPN: h2 when offered, HTTP/1.1 otherwise; no client is refused for its ALPN list', async (t) => {
    t.equal(await alpnOf(gw.https, 'skip.test', ['h2', 'http/1.1']), 'h2')
    t.equal(await alpnOf(gw.https, 'skip.test', ['http/1.1']), 'http/1.1')
    t.equal(await alpnOf(gw.https, 'skip.test', ['http/1.0']), 'http/1.0', 'a client offering only http/1.0 is not sent no_application_protocol')
    t.equal(await alpnOf(gw.https, 'skip.test', []), false, 'no ALPN: no ALPN chosen')
    const r = await httpsGet('/public/h1', { port: gw.https, servername: 'skip.test' })
    t.equal(r.status, 200, 'HTTP/1.1 clients keep being served')
  })

  t.test('one connection: a whitelisted stream is proxied, another gets 400, and the connection goes on', async (t) => {
    const s = await h2Connect(t, { port: gw.https, servername: 'skip.test' })
    const a = await h2Request(s, { ':path': '/public/a', ':authority': 'skip.test' })
    t.equal(a.status, 200)
    t.equal(a.json.url, '/public/a')
    t.equal(a.json.headers.host, 'skip.test', 'Host from :authority')
    t.notOk(Object.keys(a.json.headers).some((h: string) => h.startsWith(':')), 'no pseudo-header reaches the upstream')
    t.equal(a.json.headers['x-client-verify'], 'NONE')
    const b = await h2Request(s, { ':path': '/api', ':authority': 'skip.test' })
    t.equal(b.status, 400)
    t.same(b.json, { error_msg: 'client certificate was not present' })
    t.equal(b.rstCode, 0, 'the refused stream ends normally')
    const c = await h2Request(s, { ':path': '/public/c', ':authority': 'skip.test' })
    t.equal(c.status, 200, 'the connection goes on serving')
    t.notOk(s.closed || s.destroyed, 'the session is still open')
    t.notOk(echo.seen.some((e) => e.url === '/api'), 'the refused path never reached the upstream')
  })

  t.test('$ssl_client_* reach the upstream on every stream of a connection with a certificate', async (t) => {
    const s = await h2Connect(t, { port: gw.https, servername: 'skip.test', cert: alice.cert, key: alice.key })
    const rs = await Promise.all(['/x1', '/x2', '/x3', '/public/x4'].map((p) => h2Request(s, { ':path': p, ':authority': 'skip.test' })))
    for (const r of rs) {
      t.equal(r.status, 200)
      t.equal(r.json.headers['x-client-verify'], 'SUCCESS')
      t.equal(r.json.headers['x-client-serial'], alice.serialHex)
      t.equal(r.json.headers['x-client-s-dn'], 'C=FR,O=Test Org,CN=alice')
      t.equal(r.json.headers['x-client-fingerprint'], createHash('sha1').update(alice.der).digest('hex'))
      t.equal(r.json.headers['x-server-name'], 'skip.test')
    }
  })

  t.test('connection coalescing: a host of another ssl object with client gets 421 on that stream; the same object\'s wildcard host is served', async (t) => {
    const s = await h2Connect(t, { port: gw.https, servername: 'skip.test', cert: alice.cert, key: alice.key })
    const other = await h2Request(s, { ':path': '/public/x', ':authority': 'strict.test' })
    t.equal(other.status, 421)
    t.match(other.json.error_msg, /^misdirected request: the host strict.test /)
    const same = await h2Request(s, { ':path': '/public/y', ':authority': 'skip.test' })
    t.equal(same.status, 200, 'the connection goes on serving its own host')
    const w = await h2Connect(t, { port: gw.https, servername: 'a.wild.test', cert: alice.cert, key: alice.key })
    const b = await h2Request(w, { ':path': '/w', ':authority': 'b.wild.test' })
    t.equal(b.status, 200, 'a host the same (wildcard) object serves')
    t.equal(b.json.headers['x-client-verify'], 'SUCCESS')
  })

  t.test('request bodies without Content-Length stream to an HTTP/1.1 upstream; hop-by-hop and HTTP/2-only headers are not forwarded', async (t) => {
    const s = await h2Connect(t, { port: gw.https, servername: 'skip.test' })
    const body = 'x'.repeat(200_000)
    const r = await h2Request(s, { ':method': 'POST', ':path': '/public/post', ':authority': 'skip.test', te: 'trailers', cookie: ['a=1', 'b=2'] }, body)
    t.equal(r.status, 200)
    t.equal(r.json.bodyBytes, body.length)
    t.equal(r.json.headers.cookie, 'a=1; b=2', 'split cookies are joined (RFC 9113 §8.2.3)')
    t.notOk('te' in r.json.headers, 'TE is hop-by-hop')
    t.equal(r.headers['server'], 'APISIX')
    t.notOk('connection' in r.headers || 'keep-alive' in r.headers, 'no connection-specific response header')
  })

  t.test('h2c with prior knowledge next to HTTP/1.1 on the plain port', async (t) => {
    const s = await h2Connect(t, { port: gw.http, plain: true })
    const r = await h2Request(s, { ':path': '/plain', ':authority': 'plain.test' })
    t.equal(r.status, 200)
    t.equal(r.json.headers.host, 'plain.test')
    t.equal(r.json.headers['x-client-verify'], 'NONE')
    const h1 = await fetch(`http://127.0.0.1:${gw.http}/plain-h1`)
    t.equal(h1.status, 200, 'HTTP/1.1 on the same port')
  })

  t.test('curl --http2 over TLS and --http2-prior-knowledge on the plain port', async (t) => {
    const tls = await run('curl', ['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--resolve', `skip.test:${gw.https}:127.0.0.1`, `https://skip.test:${gw.https}/public/curl`])
    t.equal(tls.stdout, '2 200')
    const plain = await run('curl', ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${gw.http}/curl`])
    t.equal(plain.stdout, '2 200')
    const h1 = await run('curl', ['-sk', '--http1.1', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--resolve', `skip.test:${gw.https}:127.0.0.1`, `https://skip.test:${gw.https}/public/curl`])
    t.equal(h1.stdout, '1.1 200')
  })

  t.test('nghttp and h2load (Debian\'s nghttp2-client) over h2c', async (t) => {
    const ng = await run('nghttp', ['-v', '-n', `http://127.0.0.1:${gw.http}/nghttp`])
    t.match(ng.stdout, /:status: 200/, 'nghttp gets 200')
    const load = await run('h2load', ['-n', '40', '-c', '2', '-m', '8', `http://127.0.0.1:${gw.http}/h2load`])
    t.match(load.stdout, /requests: 40 total, 40 started, 40 done, 40 succeeded/, 'h2load: every request succeeded')
    t.match(load.stdout, /status codes: 40 2xx/)
  })

  t.test('the access log says http_version 2 for HTTP/2 streams', async (t) => {
    const s = await h2Connect(t, { port: gw.https, servername: 'skip.test' })
    await h2Request(s, { ':path': '/public/logged-h2', ':authority': 'skip.test' })
    await httpsGet('/public/logged-h1', { port: gw.https, servername: 'skip.test' })
    const lines = await eventually(
      async () => (await readFile(gw.accessLog, 'utf8')).split('\n').filter((l) => l.includes('/public/logged-')).map((l) => JSON.parse(l)),
      (ls) => ls.length === 2,
    )
    t.equal(lines.find((l) => l.uri === '/public/logged-h2')?.http_version, '2')
    t.equal(lines.find((l) => l.uri === '/public/logged-h1')?.http_version, '1.1')
  })
})

t.test('apisix.enable_http2: false offers no h2 and takes no h2c', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { enable_http2: false } } })
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['off.test']] })
  const r = await admin.put('ssls/off', { sni: 'off.test', cert: pki.server.cert, key: pki.server.key })
  t.ok(r.status === 200 || r.status === 201)
  await eventually(() => alpnOf(gw.https, 'off.test', ['h2', 'http/1.1']).catch(() => 'refused'), (a) => a !== 'refused')
  t.equal(await alpnOf(gw.https, 'off.test', ['h2', 'http/1.1']), false, 'no ALPN offered')
  const plain = await run('curl', ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${gw.http}/x`]).catch((e: { stdout: string }) => e)
  t.not(plain.stdout, '404', 'the h2c preface is not served')
})
