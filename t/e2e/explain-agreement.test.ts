/**
 * POST /apisix/admin/explain agrees with the data plane: every case of the table is sent as a
 * real request (real TLS client, with or without a client certificate) through a real gateway,
 * and explained by the same gateway's admin; the handshake, the status the gateway answers (or
 * that the request reached the upstream), the route and $ssl_client_verify must agree.
 */
import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway, VIEWER_KEY } from '../lib/gateway.js'
import { startEcho } from '../lib/echo.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa, makePki } from '../lib/certs.js'
import { closeAgents, httpsGet } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { OpensslCa } from '../lib/openssl-ca.js'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

/**
 * One request on its own connection, written by hand: the SNI and the Host are exactly the
 * case's (undici takes its SNI from the Host header, and the URL parser resolves `%2e%2e`).
 * Undefined when no HTTP answer came back (the handshake was refused).
 */
function exchange(o: { port: number; tls: boolean; sni?: string; cert?: string; key?: string }, uri: string, host: string | undefined): Promise<{ status: number; json: any } | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const head = `GET ${uri} HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`
    let s: Socket
    if (o.tls) {
      const opts = { host: '127.0.0.1', port: o.port, rejectUnauthorized: false, ...(o.sni ? { servername: o.sni } : {}), ...(o.cert ? { cert: o.cert, key: o.key } : {}) }
      s = tlsConnect(opts, () => s.write(head))
    } else {
      s = netConnect(o.port, '127.0.0.1', () => s.write(head))
    }
    s.setTimeout(10_000, () => s.destroy())
    s.on('data', (b: Buffer) => chunks.push(b))
    s.on('error', () => undefined)
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
      if (!m) return resolve(undefined)
      const [headers = '', body = ''] = text.split('\r\n\r\n', 2) as [string, string]
      let b = body
      if (/\r\ntransfer-encoding: *chunked/i.test(headers)) {
        b = ''
        for (let rest = body; ; ) {
          const nl = rest.indexOf('\r\n')
          const size = parseInt(rest.slice(0, nl), 16)
          if (!(size > 0)) break
          b += rest.slice(nl + 2, nl + 2 + size)
          rest = rest.slice(nl + 2 + size + 2)
        }
      }
      let json: unknown
      try {
        json = JSON.parse(b)
      } catch {
        json = undefined
      }
      resolve({ status: Number(m[1]), json })
    })
  })
}

const DAY = 86_400_000

t.test('explain agrees with the data plane', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { ssl: { fallback_sni: 'open.test' } } } })
  t.teardown(closeAgents)
  const admin = adminOf(gw)
  const pki = makePki({ clients: ['alice', 'bob'] })
  const ca = pki.ca
  const inter = issue(ca, { cn: 'Test Intermediate CA', ca: true })
  const deep = issue(inter, { subject: [{ shortName: 'CN', value: 'deep' }, { shortName: 'O', value: 'Test Org' }, { shortName: 'C', value: 'FR' }] })
  const notYet = issue(ca, { cn: 'not-yet', notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 30 * DAY) })
  const selfSigned = makeCa('self-signed client')
  const server = (name: string) => issue(ca, { cn: name, sans: [name] })

  const ssls: Record<string, unknown> = {
    strict: { snis: ['strict.test'], client: { ca: ca.cert } },
    skip: { snis: ['skip.test', 'alt.skip.test'], client: { ca: ca.cert, skip_mtls_uri_regex: ['^/public/'] } },
    open: { snis: ['open.test'] },
    depth: { snis: ['depth.test'], client: { ca: ca.cert, depth: 0, skip_mtls_uri_regex: ['^/public/'] } },
  }
  for (const [id, s] of Object.entries(ssls)) {
    const sni = (s as { snis: string[] }).snis[0]!
    const c = server(sni)
    const r = await admin.put(`ssls/${id}`, { ...(s as object), cert: c.cert, key: c.key })
    t.ok(r.status === 200 || r.status === 201, `ssl ${id}: ${r.text}`)
  }
  const upstream = { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } }
  const tag = (id: string) => ({ 'proxy-rewrite': { headers: { set: { 'X-Route': id, 'X-Verify': '$ssl_client_verify' } } } })
  const routes: Record<string, unknown> = {
    api: { uris: ['/api/*', '/public/*'], upstream, plugins: tag('api') },
    enf: {
      uri: '/enf/*',
      upstream,
      plugins: { ...tag('enf'), 'ssl-enforcement': { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=alice,O=Test Org,C=FR'] } },
    },
    auth: { uri: '/auth/*', upstream, plugins: { ...tag('auth'), 'mtls-auth': {} } },
    tlsonly: { uri: '/tls/*', upstream, plugins: { ...tag('tlsonly'), 'ssl-enforcement': {} } },
  }
  for (const [id, r] of Object.entries(routes)) {
    const res = await admin.put(`routes/${id}`, r)
    t.ok(res.status === 200 || res.status === 201, `route ${id}: ${res.text}`)
  }
  // revocation: a CA run by the openssl command line, one client revoked in its CRL
  const crlCa = new OpensslCa('Agreement CRL CA')
  t.teardown(() => crlCa.cleanup())
  const carol = crlCa.issue('carol')
  const dave = crlCa.issue('dave')
  crlCa.revoke(carol)
  const crl = crlCa.crl()
  const staleCrl = crlCa.crl({ lastUpdate: new Date(Date.now() - 3 * DAY), nextUpdate: new Date(Date.now() - DAY) })
  const crlSsls: Record<string, unknown> = {
    'crl-strict': { snis: ['crl-strict.test'], client: { ca: crlCa.self.cert, crl } },
    'crl-skip': { snis: ['crl-skip.test'], client: { ca: crlCa.self.cert, crl, skip_mtls_uri_regex: ['^/public/'] } },
    'crl-stale': { snis: ['crl-stale.test'], client: { ca: crlCa.self.cert, crl: staleCrl, skip_mtls_uri_regex: ['^/public/'] } },
  }
  for (const [id, s] of Object.entries(crlSsls)) {
    const sni = (s as { snis: string[] }).snis[0]!
    const c = server(sni)
    const r = await admin.put(`ssls/${id}`, { ...(s as object), cert: c.cert, key: c.key })
    t.ok(r.status === 200 || r.status === 201, `ssl ${id}: ${r.text}`)
  }
  const cons = await admin.put('consumers/alice', { username: 'alice', plugins: { 'mtls-auth': { certificates: [pki.clients['alice']!.cert] } } })
  t.equal(cons.status, 201, cons.text)

  // the data plane has the whole configuration (the consumer is the last object written)
  await eventually(
    () => httpsGet('/auth/x', { port: gw.https, servername: 'skip.test', cert: pki.clients['alice']!.cert, key: pki.clients['alice']!.key }),
    (r) => r.status === 200 && r.json?.headers?.['x-route'] === 'auth',
    { timeoutMs: 15_000, describe: gw.output },
  )

  const certs: Record<string, { cert: string; key: string } | undefined> = {
    none: undefined,
    alice: pki.clients['alice'],
    bob: pki.clients['bob'],
    expired: pki.expiredClient,
    notyet: notYet,
    foreign: pki.foreignClient,
    selfsigned: selfSigned,
    deep: { cert: deep.cert + inter.cert, key: deep.key },
    carol,
    dave,
  }

  interface Case {
    name: string
    scheme: 'http' | 'https'
    sni?: string
    host?: string
    uri: string
    cert: keyof typeof certs
  }
  const cases: Case[] = []
  const paths = ['/public/a', '/api/a', '/enf/a', '/auth/a', '/other']
  for (const sni of ['strict.test', 'skip.test', 'open.test', 'depth.test', undefined]) {
    for (const cert of ['none', 'alice', 'expired', 'foreign', 'deep'] as const) {
      for (const uri of paths) cases.push({ name: `${sni ?? '(no SNI)'} ${cert} ${uri}`, scheme: 'https', ...(sni ? { sni } : {}), uri, cert })
    }
  }
  for (const sni of ['crl-strict.test', 'crl-skip.test', 'crl-stale.test']) {
    for (const cert of ['carol', 'dave', 'none'] as const) {
      for (const uri of ['/public/a', '/api/a']) cases.push({ name: `${sni} ${cert} ${uri}`, scheme: 'https', sni, uri, cert })
    }
  }
  cases.push(
    { name: 'unknown SNI', scheme: 'https', sni: 'unknown.test', uri: '/api/a', cert: 'none' },
    { name: 'skip: bob is verified but not allowed by ssl-enforcement', scheme: 'https', sni: 'skip.test', uri: '/enf/a', cert: 'bob' },
    { name: 'skip: bob is verified but no consumer has his certificate', scheme: 'https', sni: 'skip.test', uri: '/auth/a', cert: 'bob' },
    { name: 'skip: a certificate not valid yet', scheme: 'https', sni: 'skip.test', uri: '/api/a', cert: 'notyet' },
    { name: 'skip: a self-signed client certificate', scheme: 'https', sni: 'skip.test', uri: '/api/a', cert: 'selfsigned' },
    { name: 'strict: a self-signed client certificate', scheme: 'https', sni: 'strict.test', uri: '/api/a', cert: 'selfsigned' },
    { name: 'skip: dot segments resolved before the skip list', scheme: 'https', sni: 'skip.test', uri: '/public/../api/a', cert: 'none' },
    { name: 'skip: encoded slash on the skip path', scheme: 'https', sni: 'skip.test', uri: '/public%2fa', cert: 'none' },
    { name: 'skip: second SNI of the object as Host', scheme: 'https', sni: 'skip.test', host: 'alt.skip.test', uri: '/public/a', cert: 'none' },
    { name: 'Host names a strict object the SNI did not choose', scheme: 'https', sni: 'open.test', host: 'skip.test', uri: '/public/a', cert: 'none' },
    { name: 'no SNI (fallback) and a Host with client rules', scheme: 'https', host: 'strict.test', uri: '/api/a', cert: 'none' },
    { name: 'Host with port and trailing dot of the same object', scheme: 'https', sni: 'skip.test', host: 'SKIP.test.:443', uri: '/public/a', cert: 'none' },
    { name: 'strict SNI with an open Host', scheme: 'https', sni: 'strict.test', host: 'open.test', uri: '/api/a', cert: 'alice' },
    { name: 'ssl-enforcement requiresSsl over TLS', scheme: 'https', sni: 'open.test', uri: '/tls/a', cert: 'none' },
    { name: 'plain HTTP: ssl-enforcement requiresSsl', scheme: 'http', host: 'open.test', uri: '/tls/a', cert: 'none' },
    { name: 'plain HTTP: ssl-enforcement client auth', scheme: 'http', host: 'skip.test', uri: '/enf/a', cert: 'none' },
    { name: 'plain HTTP: proxied, no client rules', scheme: 'http', host: 'strict.test', uri: '/api/a', cert: 'none' },
    { name: 'plain HTTP: mtls-auth without a certificate', scheme: 'http', host: 'open.test', uri: '/auth/a', cert: 'none' },
    { name: 'plain HTTP: no route', scheme: 'http', host: 'open.test', uri: '/other', cert: 'none' },
    { name: 'a path above the root', scheme: 'https', sni: 'open.test', uri: '/%2e%2e/api/a', cert: 'none' },
  )
  t.ok(cases.length >= 40, `${cases.length} cases`)

  /** What the data plane did, in explain's terms. */
  const observe = async (c: Case): Promise<Record<string, unknown>> => {
    const id = c.cert === 'none' ? undefined : certs[c.cert]
    const https = c.scheme === 'https'
    const r = await exchange({ port: https ? gw.https : gw.http, tls: https, ...(c.sni ? { sni: c.sni } : {}), ...(id ? { cert: id.cert, key: id.key } : {}) }, c.uri, c.host ?? c.sni)
    if (!r) return { handshake: 'refused' }
    const proxied = r.json?.name === 'echo'
    if (!proxied) return { handshake: 'ok', status: r.status, key: r.json?.key ?? null }
    return { handshake: 'ok', status: null, route_id: r.json.headers['x-route'], client_verify: r.json.headers['x-verify'] }
  }
  /** What explain says, in the same terms. */
  const explained = async (c: Case, key?: string): Promise<{ view: Record<string, unknown>; answer: any }> => {
    const id = c.cert === 'none' ? undefined : certs[c.cert]
    const body = { uri: c.uri, scheme: c.scheme, ...(c.sni ? { sni: c.sni } : {}), ...(c.host ? { host: c.host } : {}), ...(id ? { client_cert: id.cert } : {}) }
    const r = await admin.post('explain', body, key ? { key } : {})
    if (r.status !== 200) throw new Error(`explain answered ${r.status}: ${r.text}`)
    const a = r.json
    if (String(a.handshake).startsWith('refused')) return { view: { handshake: 'refused' }, answer: a }
    if (a.status !== null) {
      const refusal = (a.plugins as { result: string; key?: string }[]).find((p) => p.result === 'refuse')
      return { view: { handshake: 'ok', status: a.status, key: refusal?.key ?? null }, answer: a }
    }
    return { view: { handshake: 'ok', status: null, route_id: a.route_id, client_verify: a.client_verify }, answer: a }
  }

  const seen = new Set<string>()
  for (const c of cases) {
    const [dp, ex] = [await observe(c), await explained(c)]
    t.same(ex.view, dp, `${c.name}: explain ${JSON.stringify(ex.answer)}`)
    seen.add(dp['handshake'] === 'refused' ? 'refused' : dp['status'] === null ? 'proxied' : String(dp['status']))
  }
  // the table reaches every kind of outcome: a case table that only ever proxied would prove little
  for (const k of ['refused', 'proxied', '400', '401', '403', '404']) t.ok(seen.has(k), `some case ends with ${k}`)

  t.test('explain: a viewer key may call it', async (t) => {
    const { answer } = await explained({ name: 'viewer', scheme: 'https', sni: 'skip.test', uri: '/api/a', cert: 'none' }, VIEWER_KEY)
    t.match(answer, { ssl_id: 'skip', handshake: 'ok', client_cert_requested: true, client_verify: 'NONE', skip_mtls_matched: null, route_id: null, status: 400 })
  })
  t.test('explain: the answer names the skip regex, the route and each plugin step', async (t) => {
    const r = await admin.post('explain', { sni: 'skip.test', uri: '/public/a?q=1', client_cert: pki.clients['alice']!.cert })
    t.same(r.json, {
      ssl_id: 'skip',
      handshake: 'ok',
      client_cert_requested: true,
      client_verify: 'SUCCESS',
      skip_mtls_matched: '^/public/',
      route_id: 'api',
      plugins: [{ name: 'proxy-rewrite', phase: 'rewrite', result: 'pass' }],
      status: null,
      reason: 'proxied to the upstream of route api',
    })
    const refused = await admin.post('explain', { sni: 'skip.test', uri: '/enf/a', client_cert: pki.clients['bob']!.cert })
    t.match(refused.json.plugins, [{ name: 'ssl-enforcement', phase: 'rewrite', result: 'refuse', status: 403, key: 'SSL_ENFORCEMENT_CLIENT_FORBIDDEN' }])
    t.match(refused.json.reason, /^ssl-enforcement: /)
  })
  t.test('explain: a body of the wrong shape gets 400 naming the field', async (t) => {
    const bad: [unknown, RegExp][] = [
      [{}, /"uri" is required/],
      [{ uri: 5 }, /"uri" must be a string/],
      [{ uri: '/a', scheme: 'ftp' }, /"scheme"/],
      [{ uri: '/a', method: 'GET X' }, /"method"/],
      [{ uri: '/a', client_cert: 'not a pem' }, /"client_cert"/],
      [{ uri: '/a', remote_addr: 'localhost!' }, /"remote_addr"/],
      [{ uri: '/a', sni: 'a b' }, /"sni"/],
      [{ uri: '/a', extra: 1 }, /found extra/],
      [[], /JSON object/],
    ]
    for (const [body, msg] of bad) {
      const r = await admin.post('explain', body)
      t.equal(r.status, 400, JSON.stringify(body))
      t.match(r.json?.error_msg, msg)
    }
    t.equal((await admin.raw('POST', 'explain', '{"uri":')).status, 400, 'not JSON')
    t.equal((await admin.post('explain', { uri: '/a' }, { key: null })).status, 401, 'no key')
  })
})
