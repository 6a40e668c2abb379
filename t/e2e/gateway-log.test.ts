import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { makePki } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { closeAgents, handshake, httpGet, httpsGet } from '../lib/tls-client.js'
import { parseStrictJson } from '../lib/strict-json.js'

// The gateway's own log (CONTRACT.md "Operations"): JSON lines on stderr, one object per line,
// each key once. One run at debug level through every component that logs: the primary, the
// admin, the metrics listener, two workers, TLS failures, a bad config write, SIGTERM.
t.test('the gateway log: every stderr line of a run is one JSON object with each key once', async (t) => {
  const etcd = await startEtcd(t)
  const echo = await startEcho(t)
  const gw = await startGateway(t, { etcd: etcd.url, workers: 2, env: { APISIX_LOG_LEVEL: 'debug' } })
  t.teardown(closeAgents)
  const admin = adminOf(gw)
  const pki = makePki({ server: ['log.test'], clients: ['alice'] })
  t.equal((await admin.put('ssls/1', { sni: 'log.test', cert: pki.server.cert, key: pki.server.key, client: { ca: pki.ca.cert } })).status, 201)
  t.equal((await admin.put('routes/1', { uri: '/*', upstream: { type: 'roundrobin', nodes: { [echo.hostPort]: 1 } } })).status, 201)
  t.equal((await admin.put('routes/2', { uri: '/x', upstream: { type: 'nope' } })).status, 400, 'a refused admin write')
  t.equal((await fetch(`http://127.0.0.1:${gw.admin}/apisix/admin/routes`)).status, 401, 'an admin call without a key')
  const alice = pki.clients['alice']!
  const o = { port: gw.https, servername: 'log.test', cert: alice.cert, key: alice.key }
  await eventually(() => httpsGet('/a', o), (r) => r.status === 200, { describe: gw.output })
  t.equal((await handshake({ port: gw.https, servername: 'log.test' })).ok, false, 'a refused handshake (no certificate)')
  t.equal((await handshake({ port: gw.https, servername: 'nobody.test' })).ok, false, 'an unknown SNI')
  t.equal((await httpGet(gw.http, '/a')).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${gw.metrics}/apisix/prometheus/metrics`)).status, 200)
  t.equal(await gw.stop(), 0, 'SIGTERM: drains and exits 0')

  const lines = gw.stderr().split('\n').filter((l) => l !== '')
  t.ok(lines.length >= 10, `the run wrote ${lines.length} lines`)
  const components = new Set<string>()
  let bad = 0
  for (const line of lines) {
    try {
      const v = parseStrictJson(line) as Record<string, unknown>
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object')
      if (typeof v['component'] !== 'string') throw new Error('no component')
      components.add(v['component'])
    } catch (err) {
      if (bad++ < 5) t.fail(`${(err as Error).message}: ${line.slice(0, 300)}`)
    }
  }
  t.equal(bad, 0, 'every line parses strictly, with a component')
  for (const c of ['primary', 'admin', 'worker']) t.ok(components.has(c), `lines of the ${c} component`)
})
