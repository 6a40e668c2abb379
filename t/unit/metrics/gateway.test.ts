import t from 'tap'
import type { CertRecord } from '../../../core/x509/records.js'
import { DEFAULT_LATENCY_BUCKETS, createGatewayMetrics } from '../../../core/metrics/gateway.js'
import { mergeSnapshots, renderPrometheus } from '../../../core/metrics/exposition.js'
import { find, parsePrometheus, type Scrape } from '../../lib/prometheus.js'

const scrape = (...workers: ReturnType<typeof createGatewayMetrics>[]): Scrape =>
  parsePrometheus(renderPrometheus(mergeSnapshots(workers.map((w) => JSON.parse(JSON.stringify(w.snapshot())) as ReturnType<typeof w.snapshot>))))

t.test('gateway metrics: every CONTRACT.md family is exposed with its type, even before any traffic', async (t) => {
  const p = scrape(createGatewayMetrics())
  const want: [string, string][] = [
    ['apisix_http_status', 'counter'],
    ['apisix_http_latency', 'histogram'],
    ['apisix_tls_handshakes_total', 'counter'],
    ['apisix_client_cert_failures_total', 'counter'],
    ['apisix_ssl_certificate_expiry_timestamp_seconds', 'gauge'],
    ['apisix_ssl_crl_next_update_timestamp_seconds', 'gauge'],
    ['apisix_etcd_reachable', 'gauge'],
    ['apisix_etcd_modify_indexes', 'gauge'],
    ['apisix_etcd_last_event_timestamp_seconds', 'gauge'],
    ['apisix_config_rejected_total', 'counter'],
    ['apisix_node_info', 'gauge'],
  ]
  t.same([...p.type.entries()], want)
})

t.test('gateway metrics: request counters and latency from two workers → summed with the contract labels', async (t) => {
  const w1 = createGatewayMetrics()
  const w2 = createGatewayMetrics()
  const ok = { code: 200, route: 'r1', method: 'GET', consumer: 'alice', sni: 'a.test' }
  w1.httpStatus(ok)
  w1.httpStatus(ok)
  w2.httpStatus(ok)
  w2.httpStatus({ code: 404, route: '', method: 'POST', consumer: '', sni: '' })
  w1.latency('request', 'r1', 3)
  w2.latency('request', 'r1', 70000)
  w2.latency('upstream', 'r1', 1)
  const p = scrape(w1, w2)
  t.same(find(p, 'apisix_http_status', { code: '200' }), [
    { name: 'apisix_http_status', labels: { code: '200', route: 'r1', method: 'GET', consumer: 'alice', sni: 'a.test' }, value: 3 },
  ])
  t.same(find(p, 'apisix_http_status', { code: '404' }).map((s) => s.labels), [{ code: '404', route: '', method: 'POST', consumer: '', sni: '' }])
  const req = find(p, 'apisix_http_latency_bucket', { type: 'request', route: 'r1' })
  t.same(
    req.map((s) => s.labels['le']),
    [...DEFAULT_LATENCY_BUCKETS.map(String), '+Inf'],
  )
  t.same(find(p, 'apisix_http_latency_bucket', { type: 'request', le: '5' })[0]?.value, 1)
  t.same(find(p, 'apisix_http_latency_bucket', { type: 'request', le: '60000' })[0]?.value, 1)
  t.same(find(p, 'apisix_http_latency_bucket', { type: 'request', le: '+Inf' })[0]?.value, 2)
  t.same(find(p, 'apisix_http_latency_sum', { type: 'request' })[0]?.value, 70003)
  t.same(find(p, 'apisix_http_latency_count', { type: 'upstream', route: 'r1' })[0]?.value, 1)
})

t.test('gateway metrics: TLS handshakes and client-certificate failures → counted per ssl_id, sni and outcome', async (t) => {
  const w = createGatewayMetrics()
  w.handshake('1', 'a.test', 'ok')
  w.handshake('1', 'a.test', 'ok')
  w.handshake('1', 'a.test', 'resumed')
  w.handshake('', 'nope.test', 'refused')
  w.clientCertFailure('1', 'a.test', 'no_certificate')
  w.clientCertFailure('1', 'a.test', 'sni_host_mismatch')
  w.clientCertFailure('1', 'a.test', 'no_certificate')
  const p = scrape(w)
  const hs = Object.fromEntries(find(p, 'apisix_tls_handshakes_total').map((s) => [`${s.labels['ssl_id']}/${s.labels['sni']}/${s.labels['result']}`, s.value]))
  t.same(hs, { '1/a.test/ok': 2, '1/a.test/resumed': 1, '/nope.test/refused': 1 })
  const cf = Object.fromEntries(find(p, 'apisix_client_cert_failures_total', { ssl_id: '1', sni: 'a.test' }).map((s) => [s.labels['reason'], s.value]))
  t.same(cf, { no_certificate: 2, sni_host_mismatch: 1 })
})

t.test('gateway metrics: setExpiry → one series per certificate in epoch seconds; a new list replaces the old', async (t) => {
  const w = createGatewayMetrics()
  const at = (iso: string): Date => new Date(iso)
  const records: CertRecord[] = [
    { kind: 'server', id: '1', names: ['a.test', '*.b.test'], subject: 'CN=a.test', notAfter: at('2027-01-01T00:00:00Z') },
    { kind: 'client-ca', id: '1', names: [], subject: 'CN=Root CA,O=Acme\\, Inc', notAfter: at('2030-06-01T12:00:00Z') },
    { kind: 'consumer', id: 'alice', names: [], subject: 'CN=alice', notAfter: at('2026-12-31T00:00:00Z') },
  ]
  w.setExpiry(records)
  const p = scrape(w)
  const name = 'apisix_ssl_certificate_expiry_timestamp_seconds'
  t.same(find(p, name).map((s) => [s.labels, s.value]), [
    [{ kind: 'server', ssl_id: '1', sni: 'a.test,*.b.test', subject: 'CN=a.test' }, 1798761600],
    [{ kind: 'client-ca', ssl_id: '1', sni: '', subject: 'CN=Root CA,O=Acme\\, Inc' }, 1906545600],
    [{ kind: 'consumer', consumer: 'alice', sni: '', subject: 'CN=alice' }, 1798675200],
  ])
  w.setExpiry(records.slice(2))
  t.same(find(scrape(w), name).map((s) => s.labels['kind']), ['consumer'])
})

t.test('gateway metrics: setExpiry with a repeated label set and an invalid date → one series in first place with the last value; the invalid one left out', async (t) => {
  const w = createGatewayMetrics()
  const rec = (id: string, iso: string): CertRecord => ({ kind: 'server', id, names: ['x.test'], subject: 'CN=x.test', notAfter: new Date(iso) })
  w.setExpiry([rec('1', '2027-01-01T00:00:00Z'), rec('2', '2028-01-01T00:00:00Z'), rec('1', '2029-01-01T00:00:00Z'), rec('3', 'not a date')])
  const series = find(scrape(w), 'apisix_ssl_certificate_expiry_timestamp_seconds').map((s) => [s.labels['ssl_id'], s.value])
  t.same(series, [['1', 1861920000], ['2', 1830297600]])
  t.equal(w.snapshot().families.find((f) => f.name === 'apisix_ssl_certificate_expiry_timestamp_seconds')?.series.length, 2, 'the worker itself reports two series')
})

t.test('gateway metrics: expiry from two workers at different config generations → union, newest not-after wins', async (t) => {
  const w1 = createGatewayMetrics()
  const w2 = createGatewayMetrics()
  const rec = (id: string, iso: string): CertRecord => ({ kind: 'server', id, names: ['x.test'], subject: 'CN=x.test', notAfter: new Date(iso) })
  w1.setExpiry([rec('1', '2027-01-01T00:00:00Z')])
  w2.setExpiry([rec('1', '2028-01-01T00:00:00Z'), rec('2', '2029-01-01T00:00:00Z')])
  const p = scrape(w1, w2)
  t.same(find(p, 'apisix_ssl_certificate_expiry_timestamp_seconds').map((s) => [s.labels['ssl_id'], s.value]), [
    ['1', 1830297600],
    ['2', 1861920000],
  ])
})

t.test('gateway metrics: etcd gauges merged by their rules (reachable min, index min, last event max), node info once', async (t) => {
  const w1 = createGatewayMetrics()
  const w2 = createGatewayMetrics()
  w1.etcdReachable(true)
  w2.etcdReachable(false)
  w1.etcdModifyIndex('routes', 41n)
  w2.etcdModifyIndex('routes', '40')
  w1.etcdModifyIndex('ssls', 7)
  w1.etcdLastEvent(1700000000)
  w2.etcdLastEvent(1700000100)
  w1.configRejected('routes')
  w2.configRejected('routes', 2)
  for (const w of [w1, w2]) {
    w.nodeInfo('old', '0.0.1')
    w.nodeInfo('gw-host', '0.1.0')
  }
  const p = scrape(w1, w2)
  t.same(find(p, 'apisix_etcd_reachable').map((s) => [s.labels, s.value]), [[{}, 0]])
  t.same(find(p, 'apisix_etcd_modify_indexes').map((s) => [s.labels['key'], s.value]), [
    ['routes', 40],
    ['ssls', 7],
  ])
  t.same(find(p, 'apisix_etcd_last_event_timestamp_seconds').map((s) => s.value), [1700000100])
  t.same(find(p, 'apisix_config_rejected_total').map((s) => [s.labels['resource'], s.value]), [['routes', 3]])
  t.same(find(p, 'apisix_node_info').map((s) => [s.labels, s.value]), [[{ hostname: 'gw-host', version: '0.1.0' }, 1]])
})
