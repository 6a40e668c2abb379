import t from 'tap'
import { connect } from 'node:tls'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { issue, makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { parseJson } from '../lib/tls-client.js'
import { pemFiles, sClient } from '../lib/openssl.js'
import { OpensslCa } from '../lib/openssl-ca.js'
import { MAX_PER_POLICY } from '../../core/tls/peer-cache.js'

type Version = 'TLSv1.2' | 'TLSv1.3'

/** What one request over one TLS connection gave: the status, what the upstream saw, and the session. */
interface Answer {
  readonly status: number
  /** the X-Client-* and X-Server-Name headers the upstream received ({} when it was not reached) */
  readonly facts: Record<string, string>
  readonly reused: boolean
  readonly session: Buffer | undefined
  readonly error?: string
}

/** The proxy-rewrite variables the upstream receives, by header. */
const VARS: Record<string, string> = {
  'X-Client-Verify': '$ssl_client_verify',
  'X-Client-Serial': '$ssl_client_serial',
  'X-Client-S-DN': '$ssl_client_s_dn',
  'X-Client-I-DN': '$ssl_client_i_dn',
  'X-Client-Fingerprint': '$ssl_client_fingerprint',
  'X-Client-Cert': '$ssl_client_escaped_cert',
  'X-Server-Name': '$ssl_server_name',
  'X-Client-Cert-Rfc9440': '$ssl_client_cert_rfc9440',
}

const factsOf = (body: string): Record<string, string> => {
  const echoed = parseJson(body) as { headers?: Record<string, string> } | undefined
  const out: Record<string, string> = {}
  for (const h of Object.keys(VARS)) {
    const v = echoed?.headers?.[h.toLowerCase()]
    if (v !== undefined) out[h] = v
  }
  return out
}

const statusOf = (text: string): number => Number(/HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
/** The body of an HTTP/1.1 response with Content-Length (s_client prints more after it). */
const bodyOf = (text: string): string => {
  const start = text.indexOf('\r\n\r\n') + 4
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, start))?.[1] ?? text.length)
  return text.slice(start, start + length)
}

/** One request with Node's TLS client (Host = SNI), offering `session` when given. */
function nodeRequest(port: number, o: { sni: string; version: Version; cert?: { cert: string; key: string }; session?: Buffer | undefined; path: string }): Promise<Answer> {
  return new Promise((resolve) => {
    let session: Buffer | undefined
    let text = ''
    let reused = false
    const s = connect({
      host: '127.0.0.1', port, servername: o.sni, rejectUnauthorized: false, minVersion: o.version, maxVersion: o.version,
      ...(o.cert ? { cert: o.cert.cert, key: o.cert.key } : {}),
      ...(o.session ? { session: o.session } : {}),
    })
    const timer = setTimeout(() => s.destroy(new Error('timeout')), 5000)
    s.on('session', (b: Buffer) => (session = b))
    s.on('secureConnect', () => {
      reused = s.isSessionReused()
      s.write(`GET ${o.path} HTTP/1.1\r\nHost: ${o.sni}\r\nConnection: close\r\n\r\n`)
    })
    s.on('data', (d: Buffer) => (text += d.toString()))
    const done = (error?: string): void => {
      clearTimeout(timer)
      resolve({ status: statusOf(text), facts: factsOf(bodyOf(text)), reused, session, ...(error ? { error } : {}) })
    }
    s.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
    s.on('close', () => done())
  })
}

// One etcd, one gateway: a resumed session (TLS 1.2 and 1.3, tickets and TLS 1.2 session ids)
// has the SNI its ClientHello carried and the client-certificate facts of its full handshake.
t.test('session resumption with client certificates', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const pki = makePki({ servers: [['strict.test'], ['skip.test'], ['other.test'], ['a.multi.test', 'b.multi.test'], ['depth0.test'], ['skipdepth0.test'], ['skipdepth1.test']], clients: ['alice'] })
  const alice = pki.clients['alice']!
  const inter = issue(pki.ca, { cn: 'Test Intermediate CA', ca: true })
  const carolLeaf = issue(inter, { cn: 'carol' })
  const carol = { cert: carolLeaf.cert + inter.cert, key: carolLeaf.key }
  const inter2 = issue(inter, { cn: 'Test Intermediate CA 2', ca: true })
  const daveLeaf = issue(inter2, { cn: 'dave' })
  const dave = { cert: daveLeaf.cert + inter2.cert + inter.cert, key: daveLeaf.key }
  const srv = (n: string) => pki.servers[n]!
  const put = async (path: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(path, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
  }
  const ssl = (id: string, snis: string[], client: Record<string, unknown>): Promise<void> =>
    put(`ssls/${id}`, { snis, cert: srv(snis[0]!).cert, key: srv(snis[0]!).key, client: { ca: pki.ca.cert, ...client } })
  await ssl('strict', ['strict.test'], {})
  await ssl('skip', ['skip.test'], { skip_mtls_uri_regex: ['^/public/'] })
  await ssl('other', ['other.test'], {})
  await ssl('multi', ['a.multi.test', 'b.multi.test'], {})
  await ssl('depth0', ['depth0.test'], { depth: 0 })
  await ssl('skipdepth0', ['skipdepth0.test'], { depth: 0, skip_mtls_uri_regex: ['^/public/'] })
  await ssl('skipdepth1', ['skipdepth1.test'], { depth: 1, skip_mtls_uri_regex: ['^/public/'] })
  // the peer-cache eviction case: a CA made with openssl, whose intermediate mints many leaves fast
  const evictRoot = new OpensslCa('Evict Root CA')
  const evictI1 = new OpensslCa('Evict Intermediate 1', evictRoot)
  const evictI2 = new OpensslCa('Evict Intermediate 2', evictI1)
  t.teardown(() => [evictRoot, evictI1, evictI2].forEach((c) => c.cleanup()))
  const erin = evictI2.issue('erin')
  const erinChain = { cert: erin.cert + evictI2.self.cert + evictI1.self.cert, key: erin.key }
  for (const v of ['12', '13']) {
    await put(`ssls/evict${v}`, { snis: [`evict${v}.test`], cert: srv('strict.test').cert, key: srv('strict.test').key, client: { ca: evictRoot.self.cert, depth: 1, skip_mtls_uri_regex: ['^/public/'] } })
  }
  await put('routes/all', { uri: '/*', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } }, plugins: { 'proxy-rewrite': { headers: { set: VARS } } } })
  await eventually(() => nodeRequest(gw.https, { sni: 'skipdepth0.test', version: 'TLSv1.3', path: '/public/ready' }), (r) => r.status === 200, { describe: () => gw.output() })

  const files = pemFiles({ 'alice.pem': alice.cert, 'alice.key': alice.key, 'carol.pem': carol.cert, 'carol.key': carol.key })
  t.teardown(() => files.cleanup())
  let n = 0

  /** One request with `openssl s_client`, writing its session to a file (-sess_out) or resuming one (-sess_in). */
  const opensslRequest = async (o: { sni: string; version: Version; cert?: 'alice' | 'carol'; path: string; sessIn?: string; ticket?: boolean }): Promise<Answer & { sessOut: string }> => {
    const sessOut = files.path(`sess-${++n}.pem`)
    const args = ['-servername', o.sni, o.version === 'TLSv1.2' ? '-tls1_2' : '-tls1_3', '-sess_out', sessOut, ...(o.ticket === false ? ['-no_ticket'] : [])]
    if (o.cert) args.push('-cert', files.path(`${o.cert}.pem`), '-key', files.path(`${o.cert}.key`))
    if (o.sessIn) args.push('-sess_in', o.sessIn)
    const r = await sClient(gw.https, args, `GET ${o.path} HTTP/1.1\r\nHost: ${o.sni}\r\nConnection: close\r\n\r\n`)
    const reused = new RegExp(`^Reused, ${o.version.replace('.', '\\.')}`, 'm').test(r.stdout)
    if (!reused && !new RegExp(`^New, ${o.version.replace('.', '\\.')}`, 'm').test(r.stdout)) return { status: 0, facts: {}, reused, session: undefined, sessOut, error: r.all.slice(-400) }
    const response = r.stdout.slice(Math.max(0, r.stdout.indexOf('HTTP/1.1 ')))
    return { status: statusOf(response), facts: factsOf(bodyOf(response)), reused, session: undefined, sessOut }
  }

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    for (const [mode, sni, path] of [['strict', 'strict.test', '/api'], ['skip', 'skip.test', '/api']] as const) {
      t.test(`${version}, ${mode} mode, Node's client: the resumed connection is served with the first one's facts`, async (t) => {
        const first = await nodeRequest(gw.https, { sni, version, cert: alice, path })
        t.equal(first.status, 200, 'full handshake: served')
        t.equal(first.reused, false)
        t.equal(first.facts['X-Client-Verify'], 'SUCCESS')
        t.equal(first.facts['X-Server-Name'], sni)
        t.ok(first.session, 'a session to resume')
        const again = await nodeRequest(gw.https, { sni, version, cert: alice, session: first.session, path })
        t.equal(again.reused, true, 'resumed')
        t.equal(again.status, 200, 'resumed: served')
        t.same(again.facts, first.facts, 'the same $ssl_client_* and $ssl_server_name')
      })

      t.test(`${version}, ${mode} mode, openssl s_client -sess_out / -sess_in: the resumed connection is served with the first one's facts`, async (t) => {
        const first = await opensslRequest({ sni, version, cert: 'alice', path })
        t.equal(first.reused, false, `New, ${version}`)
        t.equal(first.status, 200, 'full handshake: served')
        t.equal(first.facts['X-Client-Verify'], 'SUCCESS')
        const again = await opensslRequest({ sni, version, cert: 'alice', path, sessIn: first.sessOut })
        t.equal(again.reused, true, `Reused, ${version}`)
        t.equal(again.status, 200, 'resumed: served')
        t.same(again.facts, first.facts, 'the same $ssl_client_* and $ssl_server_name')
      })
    }

    t.test(`${version}: a session of one object offered under its second SNI: served with that SNI`, async (t) => {
      const first = await opensslRequest({ sni: 'a.multi.test', version, cert: 'alice', path: '/x' })
      t.equal(first.status, 200)
      // OpenSSL 3.5 (Node 24) makes a full handshake for another server_name (RFC 6066 §3);
      // OpenSSL 3.0 (Node 20) resumed it, and Node then reported the session's first SNI
      const again = await opensslRequest({ sni: 'b.multi.test', version, cert: 'alice', path: '/x', sessIn: first.sessOut })
      t.equal(again.status, 200, `served (${again.reused ? 'resumed' : 'full handshake'})`)
      t.equal(again.facts['X-Server-Name'], 'b.multi.test', '$ssl_server_name is the SNI this ClientHello carried')
      t.same({ ...again.facts, 'X-Server-Name': 'a.multi.test' }, first.facts, 'the same client-certificate facts')
    })

    t.test(`${version}: a session never resumes under another object (openssl -sess_in with another -servername)`, async (t) => {
      const first = await opensslRequest({ sni: 'strict.test', version, cert: 'alice', path: '/x' })
      t.equal(first.status, 200)
      const other = await opensslRequest({ sni: 'other.test', version, cert: 'alice', path: '/x', sessIn: first.sessOut })
      t.equal(other.reused, false, 'a full handshake on other.test')
      t.equal(other.status, 200, 'served after its own verification')
      t.equal(other.facts['X-Server-Name'], 'other.test')
      const noCert = await opensslRequest({ sni: 'other.test', version, path: '/x', sessIn: first.sessOut })
      t.equal(noCert.status, 0, 'without a certificate the session buys nothing: refused')
    })

    t.test(`${version}: a chain past client.depth stays refused when its session is offered again`, async (t) => {
      const strict = await nodeRequest(gw.https, { sni: 'depth0.test', version, cert: carol, path: '/x' })
      t.not(strict.status, 200, 'strict, depth 0, one intermediate: refused')
      if (strict.session) {
        const again = await nodeRequest(gw.https, { sni: 'depth0.test', version, cert: carol, session: strict.session, path: '/x' })
        t.not(again.status, 200, 'the session it was given does not get it in')
      }
      const skip = await nodeRequest(gw.https, { sni: 'skipdepth0.test', version, cert: carol, path: '/public/x' })
      t.equal(skip.status, 200, 'skip mode: the handshake passes, the whitelisted path is served')
      t.equal(skip.facts['X-Client-Verify'], 'FAILED:certificate chain too long')
      const resumed = await nodeRequest(gw.https, { sni: 'skipdepth0.test', version, cert: carol, session: skip.session, path: '/public/x' })
      t.equal(resumed.reused, true, 'resumed')
      t.same(resumed.facts, skip.facts, 'resumed: the same $ssl_client_verify')
      const api = await nodeRequest(gw.https, { sni: 'skipdepth0.test', version, cert: carol, session: skip.session, path: '/api' })
      t.equal(api.status, 400, 'resumed: a path off the skip list still gets 400')
      const full = await nodeRequest(gw.https, { sni: 'skipdepth0.test', version, cert: carol, path: '/public/x' })
      t.equal(full.facts['X-Client-Verify'], 'FAILED:certificate chain too long', 'a full handshake after the resumptions: still refused')
      const deep = await nodeRequest(gw.https, { sni: 'skipdepth1.test', version, cert: dave, path: '/public/x' })
      t.equal(deep.facts['X-Client-Verify'], 'FAILED:certificate chain too long', 'depth 1, two intermediates: refused')
      const deepAgain = await nodeRequest(gw.https, { sni: 'skipdepth1.test', version, cert: dave, session: deep.session, path: '/public/x' })
      t.equal(deepAgain.reused, true, 'resumed')
      t.equal(deepAgain.facts['X-Client-Verify'], 'FAILED:certificate chain too long', 'resumed: still refused')
      const within = await nodeRequest(gw.https, { sni: 'skipdepth1.test', version, cert: carol, path: '/api' })
      t.equal(within.status, 200, 'depth 1, one intermediate: verified')
      const withinAgain = await nodeRequest(gw.https, { sni: 'skipdepth1.test', version, cert: carol, session: within.session, path: '/api' })
      t.equal(withinAgain.reused, true, 'resumed')
      t.equal(withinAgain.status, 200, 'resumed: still verified')
      t.same(withinAgain.facts, within.facts, 'with the same facts')
    })
  }

  t.test('TLS 1.2 session ids (openssl -no_ticket): never resumed, so a session id cannot carry a verdict past its worker\'s memory', async (t) => {
    // Node's tls.Server keeps no server-side session cache without a 'resumeSession' listener
    // (OpenSSL's internal cache is off): only tickets resume, and their keys are the rule
    const first = await opensslRequest({ sni: 'strict.test', version: 'TLSv1.2', cert: 'alice', path: '/x', ticket: false })
    t.equal(first.status, 200)
    const again = await opensslRequest({ sni: 'strict.test', version: 'TLSv1.2', cert: 'alice', path: '/x', sessIn: first.sessOut, ticket: false })
    t.equal(again.reused, false, 'a full handshake')
    t.equal(again.status, 200, 'served')
    t.same(again.facts, first.facts, 'the same facts')
  })

  for (const [version, v] of [['TLSv1.2', '12'], ['TLSv1.3', '13']] as const) {
    t.test(`${version}: a chain past client.depth stays refused on resumption after ${MAX_PER_POLICY} other certificates evicted its entry from the peer cache`, async (t) => {
      // the resumed session has the leaf only; its chain count was the full handshake's, kept in
      // the worker's peer cache (MAX_PER_POLICY entries per object, oldest out first). A client
      // holding an intermediate's key mints that many leaves to push the entry out; the resumption
      // then counted a lower bound of one intermediate and passed depth 1
      const sni = `evict${v}.test`
      const full = await nodeRequest(gw.https, { sni, version, cert: erinChain, path: '/public/x' })
      t.equal(full.facts['X-Client-Verify'], 'FAILED:certificate chain too long', 'depth 1, two intermediates: refused')
      t.ok(full.session, 'a session to resume')
      const resumed = await nodeRequest(gw.https, { sni, version, cert: erinChain, session: full.session, path: '/public/x' })
      t.equal(resumed.reused, true, 'resumed while its entry is in the cache')
      t.equal(resumed.facts['X-Client-Verify'], 'FAILED:certificate chain too long')
      const minted = evictI1.issueMany(`filler-${v}`, MAX_PER_POLICY)
      let next = 0
      let handshakes = 0
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < minted.certs.length) {
          const cert = minted.certs[next++]! + evictI1.self.cert
          await new Promise<void>((resolve) => {
            const s = connect({ host: '127.0.0.1', port: gw.https, servername: sni, rejectUnauthorized: false, minVersion: version, maxVersion: version, cert, key: minted.key })
            s.on('secureConnect', () => {
              handshakes++
              s.end()
            })
            s.resume()
            s.on('error', () => s.destroy())
            s.on('close', () => resolve())
          })
        }
      }))
      t.equal(handshakes, MAX_PER_POLICY, `${MAX_PER_POLICY} full handshakes with other certificates`)
      const after = await nodeRequest(gw.https, { sni, version, cert: erinChain, session: full.session, path: '/public/x' })
      t.equal(after.facts['X-Client-Verify'], 'FAILED:certificate chain too long', `after the eviction: still refused (${after.reused ? 'resumed' : 'full handshake'})`)
      const api = await nodeRequest(gw.https, { sni, version, cert: erinChain, session: full.session, path: '/api' })
      t.equal(api.status, 400, 'off the skip list: 400, not served as verified')
      const within = await nodeRequest(gw.https, { sni, version, cert: { cert: minted.certs[0]! + evictI1.self.cert, key: minted.key }, path: '/api' })
      t.equal(within.status, 200, 'a chain within the depth is still served')
      const withinAgain = await nodeRequest(gw.https, { sni, version, cert: { cert: minted.certs[0]! + evictI1.self.cert, key: minted.key }, session: within.session, path: '/api' })
      t.equal(withinAgain.reused, true, 'and resumes')
      t.equal(withinAgain.status, 200)
    })
  }
})
