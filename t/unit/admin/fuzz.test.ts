import t from 'tap'
import { pino } from 'pino'
import { buildAdminApp } from '../../../admin/app.js'
import { buildAuth } from '../../../admin/auth.js'
import { KeyedQueue } from '../../../admin/kv.js'
import { MemoryStore } from '../../lib/memory-store.js'
import { buildRegistry } from '../../../core/resources/registry.js'
import { pluginByName } from '../../../core/plugins/registry.js'

// seeded, so a failure names an input that reproduces
function prng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const FIELDS = ['id', 'uri', 'uris', 'host', 'hosts', 'sni', 'snis', 'cert', 'key', 'certs', 'keys', 'client', 'ca', 'depth', 'skip_mtls_uri_regex',
  'plugins', 'proxy-rewrite', 'ssl-enforcement', 'mtls-auth', 'upstream', 'nodes', 'type', 'hash_on', 'tls', 'client_cert', 'client_key', 'labels',
  'vars', 'status', 'username', 'create_time', 'update_time', 'upstream_id', 'methods', 'remote_addrs', 'priority', 'timeout', '_meta', 'headers',
  'regex_uri', 'certificates', 'keepalive_pool', 'pass_host', 'x', '']
const STRINGS = ['', 'a', '/a', '*', '*.a.com', '(?<=a)', '(?=a)', '(', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', 'GET', 'chash',
  'roundrobin', 'rewrite', '127.0.0.1:80', '::1', 'ÿ', '\u0000', '$secret://x', 'x'.repeat(300)]

t.test('fuzz: no body, path or method makes the admin answer 5xx or a non-JSON body', async (t) => {
  const rnd = prng(20261202)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const value = (depth: number): unknown => {
    const r = rnd()
    if (depth > 4 || r < 0.3) return pick<unknown>([...STRINGS, 0, 1, -1, 1.5, 65536, 1e21, true, false, null])
    if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1))
    const o: Record<string, unknown> = {}
    for (let i = Math.floor(rnd() * 5); i > 0; i--) o[pick(FIELDS)] = value(depth + 1)
    return o
  }
  const store = new MemoryStore()
  const app = buildAdminApp({
    store, registry: buildRegistry(pluginByName), plugins: pluginByName, keyring: ['qeddd145sfvddff3'], prefix: '/apisix',
    now: () => 1_800_000_000_000, queue: new KeyedQueue(), maxAttempts: 4, pluginNames: [],
    auth: buildAuth([{ name: 'a', key: 'k', role: 'admin' }], []), log: pino({ level: 'silent' }),
  })
  const resources = ['ssls', 'routes', 'upstreams', 'consumers', 'global_rules', 'services', '']
  const failures: string[] = []
  for (let i = 0; i < 1500; i++) {
    const method = pick(['GET', 'PUT', 'POST', 'PATCH', 'DELETE'] as const)
    const segs = [pick(resources), pick(['', '1', 'a', 'alice', '%2F', '*x', '..']), pick(['', 'plugins', 'labels/a', 'snis', 'key', 'upstream/nodes'])]
    const url = `/apisix/admin/${segs.filter(Boolean).join('/')}${pick(['', '?force=true', '?page=1&page_size=10', '?name=(', '?label=a:b', '?uri=/a'])}`
    const b = value(0)
    const payload = rnd() < 0.1 ? pick(['{', '[[[', '"', 'nul', '\uffff']) : JSON.stringify(b)
    const res = await app.inject({ method, url, headers: { 'x-api-key': 'k', 'content-type': 'application/json' }, ...(method === 'GET' || method === 'DELETE' ? {} : { payload }) })
    let json = false
    try {
      json = typeof JSON.parse(res.body) === 'object'
    } catch {
      json = false
    }
    if (res.statusCode >= 500 || !json) failures.push(`${method} ${url} ${payload.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 200)}`)
  }
  t.same(failures.slice(0, 5), [], `${failures.length} of 1500 requests failed`)
})
