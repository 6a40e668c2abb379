import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { decodeLocalConfig } from '../../../core/config/local.js'
import { createOps, type RequestFacts } from '../../../core/ops/worker.js'
import { emptySnapshot } from '../../../core/config/snapshot.js'
import type { SyncState } from '../../../core/config/store.js'
import type { FamilySnapshot } from '../../../core/metrics/registry.js'
import { issue } from '../../lib/certs.js'

const silent = pino({ level: 'silent' })

async function opsWithLog(t: Test, enable = true) {
  const dir = await mkdtemp(join(tmpdir(), 'gw-ops-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = decodeLocalConfig('test.yaml', { apisix: { access_log: { enable, path: 'logs/access.log' } } })
  const ops = createOps({ config, log: silent, baseDir: dir, hostname: 'h1', version: '9.9.9' })
  return { ops, file: join(dir, 'logs', 'access.log') }
}

const family = (fams: readonly FamilySnapshot[], name: string): FamilySnapshot | undefined => fams.find((f) => f.name === name)

const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  startMs: Date.UTC(2026, 11, 2, 1, 2, 3, 456),
  remoteAddr: '127.0.0.1',
  method: 'GET',
  uri: '/api?x=1',
  status: 200,
  route: 'r1',
  upstream: '127.0.0.1:8080',
  latencyMs: 12.5,
  upstreamLatencyMs: 10,
  sni: 'a.test',
  tlsVersion: 'TLSv1.3',
  clientVerify: 'SUCCESS',
  clientSDn: 'CN=alice',
  clientSerial: '1A2B',
  consumer: 'alice',
  httpVersion: '2',
  ...over,
})

t.test('ops.request: counts the status with its labels, observes both latencies, writes one access-log line', async (t) => {
  const { ops, file } = await opsWithLog(t)
  ops.request(facts())
  ops.request(facts({ status: 404, route: null, upstream: null, upstreamLatencyMs: null, sni: null, tlsVersion: null, clientVerify: 'NONE', clientSDn: null, clientSerial: null, consumer: null }))
  const fams = ops.snapshot().families
  t.same(family(fams, 'apisix_http_status')?.series, [
    { labels: ['200', 'r1', 'GET', 'alice', 'a.test'], value: 1 },
    { labels: ['404', '', 'GET', '', ''], value: 1 },
  ])
  const lat = family(fams, 'apisix_http_latency')
  t.same(lat?.series.map((s) => [s.labels, 'count' in s ? s.count : -1]), [
    [['request', 'r1'], 1],
    [['upstream', 'r1'], 1],
    [['request', ''], 1],
  ], 'no upstream latency when none was contacted')
  await ops.close()
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(lines[0], {
    time: '2026-12-02T01:02:03.456Z',
    remote_addr: '127.0.0.1',
    method: 'GET',
    uri: '/api?x=1',
    status: 200,
    route_id: 'r1',
    upstream: '127.0.0.1:8080',
    latency_ms: 12.5,
    upstream_latency_ms: 10,
    sni: 'a.test',
    tls_version: 'TLSv1.3',
    client_verify: 'SUCCESS',
    client_s_dn: 'CN=alice',
    client_serial: '1A2B',
    consumer: 'alice',
    http_version: '2',
  })
  t.equal(lines[1]?.['route_id'], null)
  t.equal(lines.length, 2)
})

t.test('ops: access_log.enable false → counts, writes no file', async (t) => {
  const { ops, file } = await opsWithLog(t, false)
  ops.request(facts())
  await ops.close()
  await t.rejects(readFile(file), { code: 'ENOENT' })
  t.equal(family(ops.snapshot().families, 'apisix_http_status')?.series.length, 1)
})

t.test('ops: handshakes, client-certificate failures, node info, refusals', async (t) => {
  const { ops } = await opsWithLog(t, false)
  ops.handshake('s1', 'a.test', 'ok')
  ops.handshake('s1', 'a.test', 'ok')
  ops.clientCertFailure('s1', 'a.test', 'untrusted')
  ops.storeHooks.onRejected({ key: '/apisix/routes/x', resource: 'routes', reason: 'bad' })
  const fams = ops.snapshot().families
  t.same(family(fams, 'apisix_tls_handshakes_total')?.series, [{ labels: ['s1', 'a.test', 'ok'], value: 2 }])
  t.same(family(fams, 'apisix_client_cert_failures_total')?.series, [{ labels: ['s1', 'a.test', 'untrusted'], value: 1 }])
  t.same(family(fams, 'apisix_node_info')?.series, [{ labels: ['h1', '9.9.9'], value: 1 }])
  t.same(family(fams, 'apisix_config_rejected_total')?.series, [{ labels: ['routes'], value: 1 }])
})

t.test('ops.snapshot: etcd gauges read from the attached store state at that moment', async (t) => {
  const { ops } = await opsWithLog(t, false)
  t.same(family(ops.snapshot().families, 'apisix_etcd_reachable')?.series, [], 'nothing before a store is attached')
  let state: SyncState = { reachable: true, loaded: true, revision: '42', lastEventMs: 1_700_000_000_500, modifyIndexes: { routes: '40', ssls: '42' } }
  ops.attach(() => state)
  let fams = ops.snapshot().families
  t.same(family(fams, 'apisix_etcd_reachable')?.series, [{ labels: [], value: 1 }])
  t.same(
    family(fams, 'apisix_etcd_modify_indexes')?.series.map((s) => [s.labels[0], 'value' in s ? s.value : -1]),
    [['ssls', 42], ['routes', 40], ['upstreams', 0], ['consumers', 0], ['global_rules', 0], ['max_modify_index', 42]],
  )
  t.same(family(fams, 'apisix_etcd_last_event_timestamp_seconds')?.series, [{ labels: [], value: 1_700_000_000.5 }])
  state = { ...state, reachable: false }
  fams = ops.snapshot().families
  t.same(family(fams, 'apisix_etcd_reachable')?.series, [{ labels: [], value: 0 }])
})

t.test('ops.storeHooks.onPublish: a generation whose ssls changed → expiry gauge rebuilt from its certificates', async (t) => {
  const { ops } = await opsWithLog(t, false)
  const empty = { snapshot: emptySnapshot() }
  const notAfter = new Date(Date.UTC(2030, 0, 2, 3, 4, 5))
  const c = issue(undefined, { cn: 'a.test', notAfter })
  const ssls = new Map([['s1', { id: 's1', value: { id: 's1', cert: c.cert, key: c.key, snis: ['a.test'] }, modRevision: '2', createRevision: '2' }]])
  const next = { snapshot: { revision: '2', objects: { ...empty.snapshot.objects, ssls } } } as unknown as typeof empty
  ops.storeHooks.onPublish(next, empty)
  await ops.settled()
  t.same(family(ops.snapshot().families, 'apisix_ssl_certificate_expiry_timestamp_seconds')?.series, [
    { labels: ['server', 's1', '', 'a.test', 'CN=a.test'], value: notAfter.getTime() / 1000 },
  ])
  ops.storeHooks.onPublish(empty, next)
  await ops.settled()
  t.same(family(ops.snapshot().families, 'apisix_ssl_certificate_expiry_timestamp_seconds')?.series, [], 'ssl object gone → series gone')
})
