/**
 * The hot path's metrics cost, ours (core/metrics/registry.ts) against prom-client, per request:
 * one apisix_http_status count (5 labels) and one apisix_http_latency observation. prom-client is
 * not a dependency: `npm i --no-save prom-client@15` first, then `node t/bench/metrics-libs.mjs`
 * after a build. Figures of the run that decided to keep ours are in core/metrics/registry.ts.
 */
import { Counter, Histogram } from '../../dist/core/metrics/registry.js'

const client = (await import('prom-client')).default
const N = 2_000_000
const routes = ['1', '2', '3', '4', '5', '6', '7', '8']
const codes = [200, 200, 200, 404, 502]
const reg = new client.Registry()
const pc = new client.Counter({ name: 'apisix_http_status', help: 'h', labelNames: ['code', 'route', 'method', 'consumer', 'sni'], registers: [reg] })
const ph = new client.Histogram({ name: 'apisix_http_latency', help: 'h', labelNames: ['type', 'route'], buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000], registers: [reg] })
const oc = new Counter({ name: 'apisix_http_status', help: 'h', labelNames: ['code', 'route', 'method', 'consumer', 'sni'] })
const oh = new Histogram({ name: 'apisix_http_latency', help: 'h', labelNames: ['type', 'route'], buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000] })
function ours() {
  for (let i = 0; i < N; i++) {
    const r = routes[i & 7]
    oc.inc([codes[i % 5], r, 'GET', '', 'a.example'])
    oh.observe(['request', r], i & 63)
  }
}
function prom() {
  for (let i = 0; i < N; i++) {
    const r = routes[i & 7]
    pc.inc({ code: codes[i % 5], route: r, method: 'GET', sni: 'a.example' })
    ph.observe({ type: 'request', route: r }, i & 63)
  }
}
for (const round of [1, 2, 3]) {
  for (const [name, f] of [['ours', ours], ['prom-client', prom]]) {
    const t0 = process.hrtime.bigint()
    f()
    const ns = Number(process.hrtime.bigint() - t0) / N
    console.log(round, name, ns.toFixed(0), 'ns per request (one status count + one latency observation)')
  }
}
