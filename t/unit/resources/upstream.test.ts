import t from 'tap'
import { buildRegistry } from '../../../core/resources/registry.js'
import { splitHostPort } from '../../../core/resources/upstream.js'
import { pluginByName } from '../../../core/plugins/registry.js'

const reg = buildRegistry(pluginByName)

t.test('upstream: both node forms are accepted with defaults', async (t) => {
  const a = reg.upstreams.decode({ nodes: { '127.0.0.1:80': 1, '[::1]:8080': 2, 'example.com': 0 } })
  t.ok(a.ok, a.ok ? '' : a.error)
  if (a.ok) t.match(a.value, { type: 'roundrobin', scheme: 'http', pass_host: 'pass', hash_on: 'vars' })
  t.ok(reg.upstreams.decode({ nodes: [{ host: '127.0.0.1', port: 80, weight: 1 }], type: 'chash', key: 'remote_addr' }).ok)
  t.ok(reg.upstreams.decode({ nodes: [], type: 'chash', hash_on: 'consumer' }).ok)
})

t.test('upstream: APISIX checks with their messages', async (t) => {
  const cases: Array<[string, object, RegExp]> = [
    ['no nodes', {}, /"nodes" is required/],
    ['service discovery', { service_name: 'x', discovery_type: 'dns' }, /not supported/],
    ['port out of range', { nodes: { 'a.com:0': 1 } }, /invalid port 0/],
    ['bare IPv6 in array form', { nodes: [{ host: '::1', port: 80, weight: 1 }] }, /IPv6 address must be enclosed/],
    ['negative weight', { nodes: { 'a:1': -1 } }, /nodes/],
    ['rewrite without host', { nodes: { 'a:1': 1 }, pass_host: 'rewrite' }, /`upstream_host` can't be empty/],
    ['chash without key', { nodes: { 'a:1': 1 }, type: 'chash' }, /missing key/],
    ['chash on vars with a bad var', { nodes: { 'a:1': 1 }, type: 'chash', key: 'cookie_x' }, /"key"/],
    ['chash on header with a bad name', { nodes: { 'a:1': 1 }, type: 'chash', hash_on: 'header', key: 'a b' }, /"key"/],
    ['unknown balancer', { nodes: { 'a:1': 1 }, type: 'random' }, /unsupported load balancing type/],
    ['cert without key', { nodes: { 'a:1': 1 }, tls: { client_cert: 'x'.repeat(128) } }, /client_cert and client_key/],
    ['timeout missing read', { nodes: { 'a:1': 1 }, timeout: { connect: 1, send: 1 } }, /timeout.read/],
  ]
  for (const [name, raw, msg] of cases) t.match(reg.upstreams.decode(raw), { ok: false, error: msg }, `${name} → refused`)
})

t.test('upstream: host:port splitting', async (t) => {
  t.same(splitHostPort('a.com:80'), { host: 'a.com', port: 80 })
  t.same(splitHostPort('[::1]:80'), { host: '[::1]', port: 80 })
  t.same(splitHostPort('a.com'), { host: 'a.com', port: undefined })
  t.equal(splitHostPort('::1'), undefined)
  t.equal(splitHostPort('a.com:x'), undefined)
})
