import t from 'tap'
import { fileURLToPath } from 'node:url'
import { checkAdminKeySafety, decodeLocalConfig, httpListeners, loadLocalConfig, tlsDefaults } from '../../../core/config/local.js'

const shipped = fileURLToPath(new URL('../../../conf/config.yaml', import.meta.url))

t.test('config: conf/config.yaml shows exactly the schema defaults', async (t) => {
  t.same(loadLocalConfig(shipped), decodeLocalConfig('x', {}))
})

t.test('config: defaults of the contract', async (t) => {
  const c = decodeLocalConfig('x', {})
  t.equal(c.apisix.node_listen, 9080)
  t.equal(c.apisix.workers, 'auto')
  t.equal(c.apisix.enable_http2, true)
  t.same(c.apisix.ssl.listen, [{ port: 9443, ip: '0.0.0.0' }])
  t.equal(c.apisix.ssl.fallback_sni, '')
  t.equal(c.apisix.ssl.ssl_protocols, 'TLSv1.2 TLSv1.3')
  t.equal(c.apisix.ssl.ssl_ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384')
  t.same(tlsDefaults(c), { protocols: ['TLSv1.2', 'TLSv1.3'], ciphers: c.apisix.ssl.ssl_ciphers })
  t.same(tlsDefaults(decodeLocalConfig('x', { apisix: { ssl: { ssl_protocols: 'TLSv1.3 TLSv1.1' } } })).protocols, ['TLSv1.1', 'TLSv1.3'])
  t.same(c.apisix.ssl.client_cert_header, { name: '', trusted_proxies: [] })
  t.same(c.apisix.data_encryption.keyring, ['qeddd145sfvddff3', 'edd1c9f0985e76a2'])
  t.same(c.apisix.access_log, { enable: true, path: 'logs/access.log' })
  t.same(c.plugin_attr.prometheus, { enable_export_server: true, export_addr: { ip: '127.0.0.1', port: 9091 }, export_uri: '/apisix/prometheus/metrics' })
  t.same(c.deployment.admin.admin_listen, { ip: '127.0.0.1', port: 9180 })
  t.same(c.deployment.admin.allow_admin, ['127.0.0.0/24'])
  t.same(c.deployment.etcd, { host: ['http://127.0.0.1:2379'], prefix: '/apisix', timeout: 30, startup_retry: 60, user: '', password: '', tls: { cert: '', key: '', verify: true } })
  t.ok(Object.isFrozen(c.deployment.etcd.host), 'the config is deep-frozen')
  t.same(httpListeners(c), [{ ip: '0.0.0.0', port: 9080 }])
  t.same(httpListeners(decodeLocalConfig('x', { apisix: { node_listen: [{ port: 1 }, { ip: '127.0.0.2', port: 2 }] } })), [{ ip: '0.0.0.0', port: 1 }, { ip: '127.0.0.2', port: 2 }])
})

t.test('config: every error names the key with its path', async (t) => {
  const cases: [string, unknown, string | RegExp][] = [
    ['unknown key', { apisix: { nope: 1 } }, 'f: apisix.nope: unknown key'],
    ['unknown key in a list', { deployment: { admin: { admin_key: [{ name: 'a', key: 'b', role: 'admin', x: 1 }] } } }, 'f: deployment.admin.admin_key[0].x: unknown key'],
    ['missing field', { deployment: { admin: { admin_key: [{ name: 'a', role: 'admin' }] } } }, 'f: deployment.admin.admin_key[0]: key is required'],
    ['wrong role', { deployment: { admin: { admin_key: [{ name: 'a', key: 'b', role: 'root' }] } } }, 'f: deployment.admin.admin_key[0].role: must be one of "admin", "viewer"'],
    ['port range', { deployment: { admin: { admin_listen: { port: 70000 } } } }, 'f: deployment.admin.admin_listen.port: must be <= 65535'],
    ['not a URL', { deployment: { etcd: { host: ['etcd:2379'] } } }, 'f: deployment.etcd.host[0]: must be an http(s) URL'],
    ['empty hosts', { deployment: { etcd: { host: [] } } }, 'f: deployment.etcd.host: must NOT have fewer than 1 items'],
    ['prefix', { deployment: { etcd: { prefix: 'apisix' } } }, 'f: deployment.etcd.prefix: must match pattern "^/"'],
    ['bad listen ip', { apisix: { ssl: { listen: [{ ip: 'localhost.x', port: 1 }] } } }, 'f: apisix.ssl.listen[0].ip: must be an IP address'],
    ['bad trusted proxy', { apisix: { ssl: { client_cert_header: { trusted_proxies: ['x'] } } } }, 'f: apisix.ssl.client_cert_header.trusted_proxies[0]: "x" is not an IP address or CIDR'],
    ['bad header name', { apisix: { ssl: { client_cert_header: { name: 'X Cert' } } } }, 'f: apisix.ssl.client_cert_header.name: must be an HTTP header name'],
    ['duplicate key names', { deployment: { admin: { admin_key: [{ name: 'a', key: 'b', role: 'admin' }, { name: 'a', key: 'c', role: 'viewer' }] } } }, 'f: deployment.admin.admin_key[1].name: duplicate name a'],
    ['tls half set', { deployment: { etcd: { tls: { cert: '/x' } } } }, 'f: deployment.etcd.tls: cert and key must be set together'],
    ['role', { deployment: { role: 'data_plane' } }, 'f: deployment.role: must be "traditional"'],
    ['workers zero', { apisix: { workers: 0 } }, 'f: apisix.workers: must be "auto" or a whole number from 1 to 256'],
    ['shutdown timeout in hours', { nginx_config: { worker_shutdown_timeout: '2h' } }, 'f: nginx_config.worker_shutdown_timeout: must be a number of seconds or a time like "500ms", "20s", "1m"'],
    ['negative shutdown timeout', { nginx_config: { worker_shutdown_timeout: -1 } }, 'f: nginx_config.worker_shutdown_timeout: must be a number of seconds or a time like "500ms", "20s", "1m"'],
    ['body timeout in words', { nginx_config: { http: { client_body_timeout: 'soon' } } }, 'f: nginx_config.http.client_body_timeout: must be a number of seconds or a time like "500ms", "60s", "1m"'],
    ['negative send timeout', { nginx_config: { http: { send_timeout: -5 } } }, 'f: nginx_config.http.send_timeout: must be a number of seconds or a time like "500ms", "10s", "1m"'],
    ['per-listener HTTP/2 (APISIX 3.9+ refuses it too)', { apisix: { ssl: { listen: [{ port: 9443, enable_http2: true }] } } }, 'f: apisix.ssl.listen[0].enable_http2: per-listener HTTP/2 is no longer supported; use apisix.enable_http2'],
    ['enable_http2 not a boolean', { apisix: { enable_http2: 'yes' } }, 'f: apisix.enable_http2: must be boolean'],
    ['unknown TLS version', { apisix: { ssl: { ssl_protocols: 'TLSv1.2 TLSv1.4' } } }, 'f: apisix.ssl.ssl_protocols: "TLSv1.4" is not one of TLSv1.1, TLSv1.2, TLSv1.3'],
    ['no TLS version', { apisix: { ssl: { ssl_protocols: '' } } }, 'f: apisix.ssl.ssl_protocols: must name at least one of TLSv1.1, TLSv1.2, TLSv1.3'],
    ['ssl_protocols as a list', { apisix: { ssl: { ssl_protocols: ['TLSv1.2'] } } }, 'f: apisix.ssl.ssl_protocols: must be string'],
    ['ciphers OpenSSL does not know', { apisix: { ssl: { ssl_ciphers: 'NOT-A-CIPHER' } } }, /^f: apisix\.ssl\.ssl_ciphers: OpenSSL accepts none of these ciphers \(/],
    ['empty ciphers', { apisix: { ssl: { ssl_ciphers: '' } } }, 'f: apisix.ssl.ssl_ciphers: must NOT have fewer than 1 characters'],
    ['unknown http key', { nginx_config: { http: { client_body_timout: '5s' } } }, 'f: nginx_config.http.client_body_timout: unknown key'],
  ]
  for (const [name, raw, want] of cases) t.throws(() => decodeLocalConfig('f', raw), { message: want, code: 'GW_CONF_INVALID' }, name)
})

t.test('config: the example admin key is refused beyond loopback only', async (t) => {
  const loop = decodeLocalConfig('f', {})
  t.doesNotThrow(() => checkAdminKeySafety('f', loop))
  const open = decodeLocalConfig('f', { deployment: { admin: { admin_listen: { ip: '0.0.0.0' } } } })
  t.throws(() => checkAdminKeySafety('f', open), { code: 'GW_CONF_UNSAFE_ADMIN_KEY' })
  const own = decodeLocalConfig('f', { deployment: { admin: { admin_listen: { ip: '0.0.0.0' }, admin_key: [{ name: 'a', key: 'mine-0123456789', role: 'admin' }] } } })
  t.doesNotThrow(() => checkAdminKeySafety('f', own))
})
