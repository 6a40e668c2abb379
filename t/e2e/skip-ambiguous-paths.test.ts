import t from 'tap'
import { connect } from 'node:tls'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { parseJson } from '../lib/tls-client.js'

/** One request with the target exactly as given (no client library normalises it), over its own TLS connection. */
function rawGet(port: number, target: string, cert?: { cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'skip.test', rejectUnauthorized: false, ...(cert ? { cert: cert.cert, key: cert.key } : {}) })
    let text = ''
    s.on('secureConnect', () => s.write(`GET ${target} HTTP/1.1\r\nHost: skip.test\r\nConnection: close\r\n\r\n`))
    s.on('data', (d: Buffer) => (text += d.toString('latin1')))
    s.on('error', reject)
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4) }))
  })
}

// skip_mtls_uri_regex decides on the normalised path, but the upstream gets the target as sent
// (as nginx's proxy_pass without a URI): a path that a common server reads differently from the
// gateway never counts as whitelisted (CONTRACT.md, data plane).
t.test('ambiguous paths and the skip list', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const pki = makePki({ server: ['skip.test'], clients: ['alice'] })
  const alice = pki.clients['alice']!
  t.equal((await admin.put('ssls/skip', { sni: 'skip.test', cert: pki.server.cert, key: pki.server.key, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/public/', '\\.css$'] } })).status, 201)
  t.equal((await admin.put('routes/all', { uri: '/*', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).status, 201)
  await eventually(() => rawGet(gw.https, '/public/ready'), (r) => r.status === 200, { describe: gw.output })

  // [raw target, the server behaviour that reads it differently, status for a client without a certificate]
  const rows: [string, string, number][] = [
    // whitelisted and read alike everywhere: served
    ['/public/x', 'plain whitelisted path', 200],
    ['/%70ublic/x', 'an encoded letter is the letter for every server', 200],
    ['//public//x', 'repeated slashes', 200],
    ['/assets/site.css', 'whitelisted by extension', 200],
    // path parameters
    ['/public/..;/private', 'Tomcat and Jetty strip ";params" from a segment, then resolve "..": /private', 400],
    ['/public/.;/x', 'Tomcat and Jetty: ".;" is "."', 400],
    ['/public/..%3b/private', 'the same with an encoded ";" (Tomcat decodes before stripping parameters)', 400],
    ['/private;.css', 'Tomcat and Spring strip ";.css": /private, whitelisted here by extension', 400],
    ['/private;x=1/../public/x', 'parameters on any segment (matrix parameters, Spring and JAX-RS)', 400],
    // backslashes
    ['/public/..\\private', 'IIS and Windows servers take "\\" as "/": /private', 400],
    ['/public/..%5cprivate', 'IIS decodes %5C to "\\", then takes it as "/": /private', 400],
    ['/public/..%EF%BC%BCprivate', 'Windows "best fit" maps the fullwidth reverse solidus U+FF3C to "\\" (IIS with ANSI APIs)', 400],
    ['/public/%EF%BC%8E%EF%BC%8E/private', 'Windows "best fit" maps the fullwidth full stop U+FF0E to "."', 400],
    // encodings that servers decode differently
    ['/public/a%2fb', 'an encoded slash: nginx and the gateway split on it; Apache (AllowEncodedSlashes), Tomcat and Jetty refuse it or keep it in the segment', 400],
    ['/private/%2e%2e/public/x', 'encoded dots: resolved here (RFC 3986); servers routing the raw path (Node http, Express) see /private/…', 400],
    ['/public/%252e%252e/private', 'double encoding: IIS (CVE-2001-0333) and proxy chains decode twice: /private', 400],
    ['/private/../public/x', 'dot segments: resolved here; Node http and Express route the raw path /private/…', 400],
    ['/public/..%20/private', 'Windows strips trailing spaces and dots from names: ".. " is ".."', 400],
    ['/public/.../private', 'Windows strips trailing dots: "..." names the parent', 400],
  ]
  // refused for everybody: the gateway itself cannot read them as one path
  const refusedForAll: [string, string][] = [
    ['/public/%c0%ae%c0%ae/private', 'overlong UTF-8 dots (Tomcat CVE-2008-2938, old IIS): not UTF-8'],
    ['/public/%u002e%u002e/private', 'IIS %u escapes: not percent-encoding'],
    ['/public/%00/x', 'an encoded NUL: C servers cut the path there'],
    ['/public/../../private', 'above the root'],
  ]

  t.test('a client without a certificate: an ambiguous path gets 400 and never reaches the upstream', async (t) => {
    for (const [target, behaviour, status] of rows) {
      const before = echo.seen.length
      const r = await rawGet(gw.https, target)
      t.equal(r.status, status, `${target} → ${status}: ${behaviour}`)
      if (status === 400) {
        t.equal(echo.seen.length, before, `${target}: nothing reached the upstream`)
        t.match((parseJson(r.body) as { error_msg?: string } | undefined)?.error_msg, /^client certificate was not present/, `${target}: the skip list's answer`)
      }
    }
    for (const [target, why] of refusedForAll) {
      const before = echo.seen.length
      t.equal((await rawGet(gw.https, target)).status, 400, `${target} → 400 (${why})`)
      t.equal(echo.seen.length, before, `${target}: nothing reached the upstream`)
    }
  })

  t.test('the answer names why the path is not whitelisted', async (t) => {
    const r = await rawGet(gw.https, '/public/..;/private')
    t.match((parseJson(r.body) as { error_msg: string }).error_msg, /path parameters/)
  })

  t.test('a verified client: the same targets are proxied unchanged', async (t) => {
    for (const [target, behaviour] of rows) {
      const r = await rawGet(gw.https, target, alice)
      t.equal(r.status, 200, `${target} → 200 (${behaviour})`)
      t.equal((parseJson(r.body) as { url?: string } | undefined)?.url, target, `${target}: the upstream gets the target as sent`)
    }
    for (const [target, why] of refusedForAll) t.equal((await rawGet(gw.https, target, alice)).status, 400, `${target} → 400 for everybody (${why})`)
  })
})
