import t from 'tap'
import { buildDecode } from '../../../core/config/decode-all.js'
import { buildRegistry } from '../../../core/resources/registry.js'
import { pluginByName } from '../../../core/plugins/registry.js'
import { issue, makeCa } from '../../lib/certs.js'

const ca = makeCa('Root')
const leaf = issue(ca, { cn: 'a.test' })
const base = { cert: leaf.cert, key: leaf.key, snis: ['a.test'] }

// ssl values as etcd may hold them: valid ones (defaults to fill) and every way to be refused
const cases: [string, unknown][] = [
  ['minimal server object', base],
  ['every field', { ...base, id: 'x', desc: 'd', labels: { a: 'b' }, type: 'server', status: 0, ssl_protocols: ['TLSv1.3'], create_time: 1, update_time: 2,
    client: { ca: ca.cert, depth: 2, skip_mtls_uri_regex: ['^/health$'] }, certs: [leaf.cert], keys: [leaf.key] }],
  ['sni instead of snis', { cert: leaf.cert, key: leaf.key, sni: '*.a.test' }],
  ['client object without sni', { cert: leaf.cert, key: leaf.key, type: 'client' }],
  ['integer id', { ...base, id: 7 }],
  ['both sni and snis', { ...base, sni: 'a.test' }],
  ['neither sni nor snis', { cert: leaf.cert, key: leaf.key }],
  ['unknown field', { ...base, extra: 1 }],
  ['__proto__ field', JSON.parse(`{"cert":${JSON.stringify(leaf.cert)},"key":${JSON.stringify(leaf.key)},"snis":["a.test"],"__proto__":{"status":0}}`)],
  ['short cert', { ...base, cert: 'x' }],
  ['cert not a string', { ...base, cert: 5 }],
  ['bad sni', { ...base, snis: ['a b'] }],
  ['empty snis', { ...base, snis: [] }],
  ['bad status', { ...base, status: 2 }],
  ['certs without keys', { ...base, certs: [leaf.cert] }],
  ['client without ca', { ...base, client: { depth: 1 } }],
  ['negative depth', { ...base, client: { ca: ca.cert, depth: -1 } }],
  ['skip regex that does not compile', { ...base, client: { ca: ca.cert, skip_mtls_uri_regex: ['('] } }],
  ['duplicate protocols', { ...base, ssl_protocols: ['TLSv1.2', 'TLSv1.2'] }],
  ['bad id', { ...base, id: 'a/b' }],
  ['labels with a space', { ...base, labels: { a: 'b c' } }],
  ['an array', [base]],
  ['a string', 'ssl'],
  ['null', null],
]

t.test('decode ssls in place: every stored value → the same accept/refuse, reason and frozen value as the registry decoder on a copy', async (t) => {
  const registry = buildRegistry(pluginByName)
  const decode = buildDecode()
  for (const [name, value] of cases) {
    const text = JSON.stringify(value)
    const want = registry.ssls.decode(JSON.parse(text))
    const got = decode('ssls', 'k1', JSON.parse(text))
    t.equal(got.ok, want.ok, `${name}: ${want.ok ? 'accepted' : 'refused'}`)
    if (got.ok && want.ok) {
      t.same(got.value, { ...want.value, id: 'k1' }, `${name}: same value, id from the key`)
      const snis = (got.value as { snis?: unknown }).snis
      t.ok(Object.isFrozen(got.value) && (snis === undefined || Object.isFrozen(snis)), `${name}: frozen`)
    }
    if (!got.ok && !want.ok) t.equal(got.error, want.error, `${name}: same reason`)
  }
})
