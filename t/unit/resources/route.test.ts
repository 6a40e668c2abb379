import t from 'tap'
import { buildRegistry } from '../../../core/resources/registry.js'
import { pluginByName } from '../../../core/plugins/registry.js'

const reg = buildRegistry(pluginByName)
const up = { type: 'roundrobin', nodes: { '127.0.0.1:1980': 1 } }

t.test('route: APISIX tutorial route with proxy-rewrite headers is accepted, defaults filled', async (t) => {
  const r = reg.routes.decode({
    uri: '/anything', plugins: { 'proxy-rewrite': { headers: { set: { 'X-Ssl-Client-Fingerprint': '$ssl_client_fingerprint' } } } },
    upstream: { nodes: { 'httpbin.org': 1 }, type: 'roundrobin' },
  })
  t.ok(r.ok, r.ok ? '' : r.error)
  if (r.ok) {
    t.equal(r.value.priority, 0)
    t.equal(r.value.status, 1)
    t.equal(r.value.upstream?.pass_host, 'pass')
  }
})

t.test('route: cross-field rules and field errors', async (t) => {
  const cases: Array<[string, object, RegExp]> = [
    ['no uri', { upstream: up }, /one of uri or uris is required/],
    ['uri and uris', { uri: '/a', uris: ['/b'], upstream: up }, /only one of uri or uris/],
    ['host and hosts', { uri: '/a', host: 'a.com', hosts: ['b.com'], upstream: up }, /only one of host or hosts is allowed/],
    ['remote_addr and remote_addrs', { uri: '/a', remote_addr: '1.2.3.4', remote_addrs: ['1.2.3.4'], upstream: up }, /only one of remote_addr or remote_addrs is allowed/],
    ['bad remote_addrs', { uri: '/a', remote_addrs: ['10.0.0.0/8', '1.2.3.300'], upstream: up }, /remote_addrs\[1\]/],
    ['nothing to do', { uri: '/a' }, /one of plugins, upstream, upstream_id, service_id or script is required/],
    ['bad method', { uri: '/a', methods: ['FETCH'], upstream: up }, /methods\[0\]/],
    ['unknown key', { uri: '/a', upstream: up, foo: 1 }, /found foo/],
    ['filter_func', { uri: '/a', upstream: up, filter_func: 'function(vars) return true end' }, /filter_func/],
    ['unknown plugin', { uri: '/a', plugins: { 'no-such': {} } }, /^unknown plugin \[no-such\]$/],
    ['plugin conf off-schema', { uri: '/a', plugins: { 'ssl-enforcement': { requiresSsl: 'yes' } } }, /^failed to check the configuration of plugin ssl-enforcement err: .*requiresSsl/],
    ['plugin semantic check', { uri: '/a', plugins: { 'mtls-auth': { validate_issuer_acl: true } } }, /plugin mtls-auth err: issuer_acl is required/],
    ['plugin conf not an object', { uri: '/a', plugins: { 'proxy-rewrite': 'x' } }, /plugins.proxy-rewrite/],
    ['bad _meta', { uri: '/a', plugins: { 'proxy-rewrite': { _meta: { disable: 'no' } } } }, /plugin proxy-rewrite err: _meta/],
    ['inline upstream check', { uri: '/a', upstream: { nodes: { 'a:99999': 1 } } }, /invalid port 99999/],
    ['bad vars', { uri: '/a', upstream: up, vars: [['arg_a', 'is', 1]] }, /failed to validate the 'vars' expression/],
  ]
  for (const [name, raw, msg] of cases) t.match(reg.routes.decode(raw), { ok: false, error: msg }, `${name} → refused`)
})

t.test('route: plugin defaults are filled in; _meta is kept', async (t) => {
  const r = reg.routes.decode({ uri: '/a', plugins: { 'ssl-enforcement': { _meta: { disable: true } } } })
  t.ok(r.ok, r.ok ? '' : r.error)
  if (r.ok) t.match(r.value.plugins?.['ssl-enforcement'], { requiresSsl: true, requiresClientAuthentication: false, _meta: { disable: true } })
})

t.test('global rule: plugins required and checked', async (t) => {
  t.ok(reg.global_rules.decode({ id: '1', plugins: { 'ssl-enforcement': {} } }).ok)
  t.match(reg.global_rules.decode({ id: '1' }), { ok: false, error: /"plugins" is required/ })
  t.match(reg.global_rules.decode({ plugins: { nope: {} } }), { ok: false, error: /unknown plugin \[nope\]/ })
})

t.test('consumer: username pattern and consumer-side plugin schema', async (t) => {
  const der = Buffer.concat([Buffer.from([0x30, 0x81, 0x60]), Buffer.alloc(0x60, 1)]).toString('base64')
  t.ok(reg.consumers.decode({ username: 'jack_1-x', plugins: { 'mtls-auth': { certificates: [der] } } }).ok, 'a DER-framed entry (parsed only by the admin)')
  t.match(reg.consumers.decode({ username: 'jack', plugins: { 'mtls-auth': { certificates: ['x'.repeat(64)] } } }), { ok: false, error: /certificates\[0\]: not a DER certificate/ })
  t.match(reg.consumers.decode({ username: 'jack!' }), { ok: false, error: /"username"/ })
  t.match(reg.consumers.decode({ username: 'j', plugins: { 'mtls-auth': { validate_certificate: true } } }), { ok: false, error: /plugin mtls-auth err/ })
})
