import t from 'tap'
import { httpStatus as get } from '../lib/raw-http.js'
import { createServer } from 'node:net'
import { hostname } from 'node:os'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { ROOT, startGateway, writeGatewayConfig, BIN_APISIX } from '../lib/gateway.js'
import { eventually } from '../lib/eventually.js'
import { issue, makeCa, makePki, type Issued } from '../lib/certs.js'
import { find, parsePrometheus, type Scrape } from '../lib/prometheus.js'
import { spawnNode } from '../lib/proc.js'
import { closeAgents, handshake, httpsGet } from '../lib/tls-client.js'
import { startEcho } from '../lib/echo.js'

const DAY = 86_400_000
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

async function scrape(port: number, path = '/apisix/prometheus/metrics'): Promise<{ status: number; type: string | null; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() }
}

const parsed = async (port: number): Promise<Scrape> => parsePrometheus((await scrape(port)).text)

/** The single value of a series, or undefined when the scrape has none (or several). */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(s, name, labels)
  return found.length === 1 ? found[0]?.value : undefined
}

/** A certificate's not-after in epoch seconds, as Node reads it. */
const expiry = (c: Issued): number => Math.floor(Date.parse(c.x509.validTo) / 1000)

t.test('metrics listener with two workers and a real etcd', async (t) => {
  const etcd = await startEtcd(t)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2 })
  t.teardown(closeAgents)

  t.test('scrape → 200 once the workers answer, Prometheus text 0.0.4 that parses, HELP and TYPE for every family', async (t) => {
    // the data plane may answer before the primary has counted its workers in: 503 until then
    const r = await eventually(() => scrape(gw.metrics), (r) => r.status !== 503, { describe: gw.output })
    t.equal(r.status, 200)
    t.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8')
    const s = parsePrometheus(r.text)
    const want: [string, string][] = [
      ['apisix_http_status', 'counter'],
      ['apisix_http_latency', 'histogram'],
      ['apisix_tls_handshakes_total', 'counter'],
      ['apisix_client_cert_failures_total', 'counter'],
      ['apisix_ssl_certificate_expiry_timestamp_seconds', 'gauge'],
      ['apisix_etcd_reachable', 'gauge'],
      ['apisix_etcd_modify_indexes', 'gauge'],
      ['apisix_etcd_last_event_timestamp_seconds', 'gauge'],
      ['apisix_config_rejected_total', 'counter'],
      ['apisix_node_info', 'gauge'],
    ]
    for (const [name, type] of want) {
      t.equal(s.type.get(name), type, `${name} is a ${type}`)
      t.ok(s.help.has(name), `${name} has HELP`)
    }
  })

  t.test('apisix_node_info → one series with this host and the package version, value 1 (not one per worker)', async (t) => {
    const s = await parsed(gw.metrics)
    t.same(
      find(s, 'apisix_node_info').map((x) => [x.labels, x.value]),
      [[{ hostname: hostname(), version }, 1]],
    )
  })

  t.test('etcd gauges → reachable 1, modify index of a resource = the revision of the last put, last event close to now', async (t) => {
    const before = Math.floor(Date.now() / 1000)
    const put = await client.put('/apisix/upstreams/u1').value(JSON.stringify({ type: 'roundrobin', nodes: { '127.0.0.1:1': 1 } })).exec()
    const rev = Number(put.header.revision)
    const s = await eventually(
      () => parsed(gw.metrics),
      (s) => value(s, 'apisix_etcd_modify_indexes', { key: 'upstreams' }) === rev,
      { describe: gw.output },
    )
    t.equal(value(s, 'apisix_etcd_reachable'), 1)
    t.ok((value(s, 'apisix_etcd_modify_indexes', { key: 'max_modify_index' }) ?? 0) >= rev, 'max_modify_index ≥ that revision')
    const last = value(s, 'apisix_etcd_last_event_timestamp_seconds') ?? 0
    t.ok(last >= before - 1 && last <= Date.now() / 1000 + 1, `last event ${last} is around now (${before})`)
  })

  t.test('an invalid object written straight into etcd → apisix_config_rejected_total{resource} counts it once in each of the 2 workers, summed', async (t) => {
    const s0 = await parsed(gw.metrics)
    const was = value(s0, 'apisix_config_rejected_total', { resource: 'routes' }) ?? 0
    await client.put('/apisix/routes/bad').value(JSON.stringify({ uri: 42, upstream: 'nope' })).exec()
    const s = await eventually(
      () => parsed(gw.metrics),
      (s) => value(s, 'apisix_config_rejected_total', { resource: 'routes' }) === was + 2,
      { describe: gw.output },
    )
    t.equal(value(s, 'apisix_config_rejected_total', { resource: 'routes' }), was + 2)
    t.equal(value(s, 'apisix_config_rejected_total', { resource: 'ssls' }), undefined, 'no series for a resource with no refusal')
  })

  t.test('ssl objects and a consumer in etcd → one expiry series per certificate, value = not-after in epoch seconds', async (t) => {
    const pki = makePki({ servers: [['a.test', '*.a.test']] })
    const soon = issue(pki.ca, { cn: 'soon.test', sans: ['soon.test'], notAfter: new Date(Date.now() + 3 * DAY) })
    const clientCa = makeCa('Client CA', { notAfter: new Date(Date.now() + 100 * DAY) })
    const alice = issue(clientCa, { subject: [{ shortName: 'CN', value: 'alice' }, { shortName: 'O', value: 'Test Org' }, { shortName: 'C', value: 'FR' }] })
    await client.put('/apisix/ssls/s1').value(JSON.stringify({ id: 's1', cert: pki.server.cert, key: pki.server.key, snis: ['a.test', '*.a.test'], client: { ca: clientCa.cert } })).exec()
    await client.put('/apisix/ssls/s2').value(JSON.stringify({ id: 's2', cert: soon.cert, key: soon.key, sni: 'soon.test' })).exec()
    await client.put('/apisix/consumers/alice').value(JSON.stringify({ username: 'alice', plugins: { 'mtls-auth': { certificates: [alice.cert] } } })).exec()
    const s = await eventually(
      () => parsed(gw.metrics),
      (s) => find(s, 'apisix_ssl_certificate_expiry_timestamp_seconds').length === 4,
      { describe: gw.output },
    )
    const got = find(s, 'apisix_ssl_certificate_expiry_timestamp_seconds')
      .map((x) => [x.labels, x.value] as const)
      .sort((a, b) => a[1] - b[1])
    t.same(got, [
      [{ kind: 'server', ssl_id: 's2', sni: 'soon.test', subject: 'CN=soon.test' }, expiry(soon)],
      [{ kind: 'client-ca', ssl_id: 's1', sni: '', subject: 'CN=Client CA' }, expiry(clientCa)],
      [{ kind: 'server', ssl_id: 's1', sni: 'a.test,*.a.test', subject: 'CN=a.test' }, expiry(pki.server)],
      [{ kind: 'consumer', consumer: 'alice', sni: '', subject: 'C=FR,O=Test Org,CN=alice' }, expiry(alice)],
    ].sort((a, b) => (a[1] as number) - (b[1] as number)))
    t.ok(expiry(soon) - Date.now() / 1000 < 3 * 86_400 + 5, 'the 3-day certificate reads as 3 days away (a gauge taken as max, not summed)')

    t.test('deleting an ssl object → its series go away', async (t) => {
      await client.delete().key('/apisix/ssls/s2').exec()
      const s = await eventually(
        () => parsed(gw.metrics),
        (s) => find(s, 'apisix_ssl_certificate_expiry_timestamp_seconds', { ssl_id: 's2' }).length === 0,
        { describe: gw.output },
      )
      t.equal(find(s, 'apisix_ssl_certificate_expiry_timestamp_seconds').length, 3)
    })
  })

  t.test('traffic → apisix_http_status by code, route and method, and latency histograms, summed over both workers', async (t) => {
    const echo = await startEcho(t)
    await client.put('/apisix/routes/m1').value(JSON.stringify({ uri: '/m', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).exec()
    await eventually(() => get(gw.http, '/m'), (s) => s === 200, { describe: gw.output })
    const s0 = await parsed(gw.metrics)
    const was = (name: string, labels: Record<string, string>): number => value(s0, name, labels) ?? 0
    const ok = { code: '200', route: 'm1', method: 'GET', consumer: '', sni: '' }
    const miss = { code: '404', route: '', method: 'GET', consumer: '', sni: '' }
    const post = { ...ok, method: 'POST' }
    const before = {
      ok: was('apisix_http_status', ok),
      miss: was('apisix_http_status', miss),
      post: was('apisix_http_status', post),
      req: was('apisix_http_latency_count', { type: 'request', route: 'm1' }),
      up: was('apisix_http_latency_count', { type: 'upstream', route: 'm1' }),
    }
    // a new connection per request, so both workers take some
    const codes = await Promise.all([
      ...Array.from({ length: 20 }, () => get(gw.http, '/m')),
      ...Array.from({ length: 5 }, () => get(gw.http, '/missing')),
      ...Array.from({ length: 3 }, () => get(gw.http, '/m', 'POST')),
    ])
    t.same(codes.filter((c) => c === 200).length, 23)
    const s = await eventually(
      () => parsed(gw.metrics),
      (s) => value(s, 'apisix_http_status', ok) === before.ok + 20,
      { describe: gw.output },
    )
    t.equal(value(s, 'apisix_http_status', miss), before.miss + 5, '404 with an empty route label')
    t.equal(value(s, 'apisix_http_status', post), before.post + 3)
    t.equal(value(s, 'apisix_http_latency_count', { type: 'request', route: 'm1' }), before.req + 23)
    t.equal(value(s, 'apisix_http_latency_count', { type: 'upstream', route: 'm1' }), before.up + 23)
    const buckets = find(s, 'apisix_http_latency_bucket', { type: 'request', route: 'm1' })
    t.equal(buckets.at(-1)?.labels['le'], '+Inf')
    t.equal(buckets.at(-1)?.value, before.req + 23, '+Inf bucket = count')
    t.ok(buckets.every((b, i) => i === 0 || b.value >= (buckets[i - 1]?.value ?? 0)), 'buckets are cumulative')
    t.ok((value(s, 'apisix_http_latency_sum', { type: 'request', route: 'm1' }) ?? -1) >= 0)
  })

  t.test('TLS handshakes and refused client certificates → counted per ssl object, SNI and result, summed over both workers', async (t) => {
    const clientCa = makeCa('Handshake CA')
    const bob = issue(clientCa, { cn: 'bob' })
    const pki = makePki({ servers: [['h.test']] })
    await client.put('/apisix/ssls/h1').value(JSON.stringify({ id: 'h1', cert: pki.server.cert, key: pki.server.key, snis: ['h.test'], client: { ca: clientCa.cert } })).exec()
    // the object is live once a handshake with a client certificate succeeds
    await eventually(() => handshake({ port: gw.https, servername: 'h.test', cert: bob.cert, key: bob.key }), (r) => r.ok, { describe: gw.output })
    const s0 = await parsed(gw.metrics)
    const before = (labels: Record<string, string>, name = 'apisix_tls_handshakes_total'): number => value(s0, name, labels) ?? 0
    const okBefore = before({ ssl_id: 'h1', sni: 'h.test', result: 'ok' })
    const refusedBefore = before({ ssl_id: 'h1', sni: 'h.test', result: 'refused' })
    const noCertBefore = before({ ssl_id: 'h1', sni: 'h.test', reason: 'no_certificate' }, 'apisix_client_cert_failures_total')
    const unknownBefore = before({ ssl_id: '', sni: 'unknown.test', result: 'refused' })
    for (let i = 0; i < 4; i++) t.ok((await handshake({ port: gw.https, servername: 'h.test', cert: bob.cert, key: bob.key })).ok, `handshake ${i + 1} with bob`)
    for (let i = 0; i < 3; i++) t.notOk((await handshake({ port: gw.https, servername: 'h.test' })).ok, `handshake ${i + 1} without a certificate is refused`)
    t.notOk((await handshake({ port: gw.https, servername: 'unknown.test' })).ok, 'an SNI no object serves is refused')
    const s = await eventually(
      () => parsed(gw.metrics),
      (s) => value(s, 'apisix_tls_handshakes_total', { ssl_id: '', sni: 'unknown.test', result: 'refused' }) === unknownBefore + 1 &&
        value(s, 'apisix_tls_handshakes_total', { ssl_id: 'h1', sni: 'h.test', result: 'refused' }) === refusedBefore + 3,
      { describe: gw.output },
    )
    t.equal(value(s, 'apisix_tls_handshakes_total', { ssl_id: 'h1', sni: 'h.test', result: 'ok' }), okBefore + 4)
    t.equal(value(s, 'apisix_client_cert_failures_total', { ssl_id: 'h1', sni: 'h.test', reason: 'no_certificate' }), noCertBefore + 3)

    t.test('a client certificate from a foreign CA, or an expired one, refused at the handshake → result refused, reason untrusted / expired', async (t) => {
      await client.put('/apisix/ssls/h3').value(JSON.stringify({ id: 'h3', cert: pki.server.cert, key: pki.server.key, snis: ['h3.test'], client: { ca: pki.ca.cert } })).exec()
      const alice = pki.clients['alice']
      if (!alice) throw new Error('no alice')
      const o = { port: gw.https, servername: 'h3.test' }
      await eventually(() => handshake({ ...o, cert: alice.cert, key: alice.key }), (r) => r.ok, { describe: gw.output })
      const s0 = await parsed(gw.metrics)
      const at = (s: Scrape, labels: Record<string, string>, name = 'apisix_client_cert_failures_total'): number => value(s, name, { ssl_id: 'h3', sni: 'h3.test', ...labels }) ?? 0
      const was = { untrusted: at(s0, { reason: 'untrusted' }), expired: at(s0, { reason: 'expired' }), refused: at(s0, { result: 'refused' }, 'apisix_tls_handshakes_total'), error: at(s0, { result: 'error' }, 'apisix_tls_handshakes_total') }
      const cases: [string, Issued, 'TLSv1.2' | 'TLSv1.3'][] = [
        ['foreign CA, TLS 1.3', pki.foreignClient, 'TLSv1.3'],
        ['foreign CA, TLS 1.2', pki.foreignClient, 'TLSv1.2'],
        ['expired, TLS 1.3', pki.expiredClient, 'TLSv1.3'],
      ]
      for (const [name, c, v] of cases) t.notOk((await handshake({ ...o, cert: c.cert, key: c.key, maxVersion: v })).ok, `${name} is refused`)
      const s = await eventually(
        () => parsed(gw.metrics),
        (s) => at(s, { result: 'refused' }, 'apisix_tls_handshakes_total') === was.refused + 3,
        { describe: gw.output },
      )
      t.equal(at(s, { reason: 'untrusted' }), was.untrusted + 2, 'two untrusted')
      t.equal(at(s, { reason: 'expired' }), was.expired + 1, 'one expired')
      t.equal(at(s, { result: 'error' }, 'apisix_tls_handshakes_total'), was.error, 'none counted as error')
    })

    t.test('a request the mTLS gate refuses (skip_mtls_uri_regex set, no certificate, path not skipped) → counted too', async (t) => {
      const echo = await startEcho(t)
      await client.put('/apisix/ssls/h2').value(JSON.stringify({ id: 'h2', cert: pki.server.cert, key: pki.server.key, snis: ['h2.test'], client: { ca: clientCa.cert, skip_mtls_uri_regex: ['^/public/'] } })).exec()
      await client.put('/apisix/routes/h2').value(JSON.stringify({ uri: '/*', host: 'h2.test', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).exec()
      const o = { port: gw.https, servername: 'h2.test' }
      await eventually(() => httpsGet('/public/x', o), (r) => r.status === 200, { describe: gw.output })
      const was = value(await parsed(gw.metrics), 'apisix_client_cert_failures_total', { ssl_id: 'h2', sni: 'h2.test', reason: 'no_certificate' }) ?? 0
      t.equal((await httpsGet('/private', o)).status, 400)
      t.equal((await httpsGet('/private', o)).status, 400)
      const s = await eventually(
        () => parsed(gw.metrics),
        (s) => value(s, 'apisix_client_cert_failures_total', { ssl_id: 'h2', sni: 'h2.test', reason: 'no_certificate' }) === was + 2,
        { describe: gw.output },
      )
      t.equal(value(s, 'apisix_http_status', { code: '400', route: '', method: 'GET', consumer: '', sni: 'h2.test' }), 2, 'and as 400s for that SNI')
    })
  })

  t.test('another path on the metrics port → 404; POST on the metrics path → 405', async (t) => {
    t.equal((await scrape(gw.metrics, '/metrics')).status, 404)
    const r = await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`, { method: 'POST' })
    t.equal(r.status, 405)
    await r.arrayBuffer()
  })

  t.test('etcd stops → apisix_etcd_reachable 0; back → 1', async (t) => {
    await etcd.stop()
    await eventually(() => parsed(gw.metrics), (s) => value(s, 'apisix_etcd_reachable') === 0, { timeoutMs: 30_000, describe: gw.output })
    await etcd.restart()
    await eventually(() => parsed(gw.metrics), (s) => value(s, 'apisix_etcd_reachable') === 1, { timeoutMs: 30_000, describe: gw.output })
    t.pass('reachable followed etcd')
  })
})

/** Runs bin/apisix start to its exit; for start-up failures. */
function runStart(file: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawnNode(BIN_APISIX, ['start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr?.on('data', (b: Buffer) => (stderr += b))
    const kill = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('exit', (code) => {
      clearTimeout(kill)
      resolve({ code, stderr })
    })
  })
}

t.test('metrics port settings', async (t) => {
  const etcd = await startEtcd(t)

  t.test('export_addr port in use → one line naming it, exit 1', async (t) => {
    const c = await writeGatewayConfig(t, { etcd: etcd.url })
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(c.metrics, '127.0.0.1', r))
    t.teardown(() => new Promise<void>((r) => blocker.close(() => r())))
    const r = await runStart(c.file)
    t.equal(r.code, 1)
    t.match(r.stderr.trim().split('\n').pop() ?? '', new RegExp(`^plugin_attr\\.prometheus\\.export_addr port 127\\.0\\.0\\.1:${c.metrics} is already in use$`))
  })

  t.test('enable_export_server false → nothing listens on export_addr; a custom export_uri is served', async (t) => {
    const off = await startGateway(t, { etcd: etcd.url, config: { plugin_attr: { prometheus: { enable_export_server: false } } } })
    await t.rejects(fetch(`http://127.0.0.1:${off.metrics}/apisix/prometheus/metrics`), 'connection refused')
    const custom = await startGateway(t, { etcd: etcd.url, config: { plugin_attr: { prometheus: { export_uri: '/m' } } } })
    const r = await eventually(() => scrape(custom.metrics, '/m'), (r) => r.status !== 503, { describe: custom.output })
    t.equal(r.status, 200)
    t.equal(find(parsePrometheus(r.text), 'apisix_node_info').length, 1)
    t.equal((await scrape(custom.metrics)).status, 404)
  })
})
