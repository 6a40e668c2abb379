import t from 'tap'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { httpGet } from '../lib/tls-client.js'
import { seeded as prng } from '../lib/random.js'

const SEED = 0x9e3779b9
const COUNT = 5000
const pki = makePki({ server: ['hostile.test'] })
const node = { '127.0.0.1:1980': 1 }

/** A valid body per resource; every generated body breaks it in one way at least. */
const templates: Record<string, Record<string, unknown>> = {
  routes: { uri: '/h', upstream: { type: 'roundrobin', nodes: node } },
  upstreams: { type: 'roundrobin', nodes: node },
  ssls: { sni: 'hostile.test', cert: pki.server.cert, key: pki.server.key },
  consumers: { username: 'hostile' },
  global_rules: { plugins: {} },
}
/** A field of each resource and values of the wrong type for it. */
const typed: Record<string, [string, unknown[]]> = {
  routes: ['uri', [123, true, [], {}, [['/h']], -1.5]],
  upstreams: ['nodes', ['127.0.0.1:1980', 7, true, [[1]], [{ host: 7 }]]],
  ssls: ['cert', [1, false, [], {}, [pki.server.cert]]],
  consumers: ['username', [1, [], {}, true, 'a b']],
  global_rules: ['plugins', ['x', 1, [], true, [{}]]],
}
/** Fields where a huge string is invalid (too long, or no such plugin). */
const longField: Record<string, string> = { routes: 'uri', upstreams: 'type', ssls: 'sni', consumers: 'username', global_rules: 'desc_' }
/** Numbers out of range, as JSON text placed in a numeric field. */
const numberField: Record<string, [string, string]> = {
  routes: ['priority', '1e400'],
  upstreams: ['retries', '-1'],
  ssls: ['validity_end', '1e999'],
  consumers: ['username', '18446744073709551617'],
  global_rules: ['plugins', '-0.0'],
}
const outOfRange: Record<string, string[]> = {
  routes: ['1e400', '-1e400', '1.5', '1e309', '-0.5', '1e-400e'],
  upstreams: ['-1', '1e400', '2.5', '-1e309', '-9007199254740993'],
}
const badPem = [
  '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  pki.server.cert.slice(0, 200),
  pki.server.cert.replace(/[A-Za-z]/g, 'A'),
  '-----BEGIN CERTIFICATE-----\n' + 'x'.repeat(5000) + '\n-----END CERTIFICATE-----\n',
  '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n',
  pki.server.cert + pki.server.cert.slice(0, 100),
]

interface Case {
  method: 'PUT' | 'POST' | 'PATCH'
  path: string
  body: string | Buffer
  kind: string
}

/** Builds the n-th hostile request from the PRNG. */
function generate(rand: () => number, n: number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const resources = Object.keys(templates)
  const res = pick(resources)
  const base = templates[res] as Record<string, unknown>
  const methods: Case['method'][] = res === 'consumers' ? ['PUT', 'POST', 'PATCH'] : ['PUT', 'POST', 'PATCH', 'PATCH']
  const method = pick(methods)
  const id = method === 'PATCH' ? 'base' : `h${n}`
  const path = method === 'POST' ? res : `${res}/${id}`
  const json = (o: unknown): string => JSON.stringify(o)
  const kinds = ['wrongType', 'hugeString', 'deep', 'utf8', 'pem', 'proto', 'constructor', 'hugeArray', 'number', 'nonObject', 'truncated']
  // one body in 250 is over the 1.5 MiB limit (they cost the most time)
  const kind = n % 250 === 0 ? 'oversized' : pick(kinds)
  let body: string | Buffer
  switch (kind) {
    case 'wrongType': {
      const [field, values] = typed[res] as [string, unknown[]]
      body = json({ ...base, [field]: pick(values) })
      break
    }
    case 'hugeString': {
      const size = pick([5000, 70_000, 300_000])
      const field = longField[res] as string
      // a long value that is also invalid (sni and type have no length limit in APISIX)
      body = json(field === 'desc_' ? { ...base, plugins: { ['p'.repeat(size)]: {} } } : { ...base, [field]: `${field === 'uri' ? '/' : ''}${'a'.repeat(size)}${field === 'uri' ? '' : ' !'}` })
      break
    }
    case 'deep': {
      const depth = 101 + Math.floor(rand() * 4000)
      const open = pick(['[', '{"a":'])
      const close = open === '[' ? ']' : '}'
      body = `{"desc":"deep","labels":${open.repeat(depth)}1${close.repeat(depth)}}`
      break
    }
    case 'utf8': {
      const text = json(base)
      const at = text.indexOf('"', 2) + 1
      const bad = pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]])
      body = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))])
      break
    }
    case 'pem': {
      const field = pick(['cert', 'key', 'certs', 'keys', 'client'])
      const pem = pick(badPem)
      const value = field === 'certs' || field === 'keys' ? [pem] : field === 'client' ? { ca: pem } : pem
      body = json({ ...templates['ssls'], [field]: value })
      return { method: 'PUT', path: `ssls/h${n}`, body, kind }
    }
    case 'proto': {
      const inner = pick(['{"x_polluted":1}', '{"uri":"/polluted","status":0}', '[]', 'null'])
      const text = json(base)
      const where = pick(['top', 'nested'])
      body = where === 'top' ? `{"__proto__":${inner},${text.slice(1)}` : `${text.slice(0, -1)},"labels":{"__proto__":${inner}}}`
      break
    }
    case 'constructor': {
      const key = pick(['constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString'])
      body = `${json(base).slice(0, -1)},"${key}":{"prototype":{"x_polluted":1}}}`
      break
    }
    case 'hugeArray': {
      const size = pick([1000, 10_000, 50_000])
      const item = pick(['1', 'null', '{}', '[]'])
      body = `{"desc":"arr","uris":[${Array(size).fill(item).join(',')}],"hosts":[1]}`
      break
    }
    case 'number': {
      const [field, fallback] = numberField[res] as [string, string]
      const num = outOfRange[res] ? pick(outOfRange[res] ?? []) : fallback
      body = `${json(base).slice(0, -1)},"${field}":${num}}`
      break
    }
    case 'nonObject':
      body = pick(['"str"', '123', 'null', '[]', 'true', '[{}]', '1e400', '""', '[' + json(base) + ']', '{}{}', '\u0000{}', '{"a":1}{}'])
      break
    case 'truncated': {
      const text = json(base)
      body = text.slice(0, 1 + Math.floor(rand() * (text.length - 2)))
      break
    }
    default: {
      // oversized: beyond the 1.5 MiB body limit
      body = `{"desc":"${'z'.repeat(1.6 * 1024 * 1024)}"}`
    }
  }
  return { method, path, body, kind }
}

t.test(`admin API: ${COUNT} hostile bodies (seed ${SEED.toString(16)}) → all 4xx with error_msg, the gateway stays up, etcd unchanged`, async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const client = new Etcd3({ hosts: etcd.url, grpcOptions: { 'grpc.max_receive_message_length': 256 * 1024 * 1024 } })
  t.teardown(() => client.close())
  for (const [res, body] of Object.entries(templates)) {
    const r = await admin.put(`${res}/${res === 'consumers' ? 'hostile' : 'base'}`, body)
    t.ok(r.status === 200 || r.status === 201, `${res}: the base object is stored (${r.text.slice(0, 200)})`)
  }
  // PATCH targets consumers/base: create it under that name too
  t.equal((await admin.put('consumers/base', { username: 'base' })).status, 201)
  const snapshot = async (): Promise<Record<string, string>> => client.getAll().prefix('/apisix/').strings()
  const before = await snapshot()

  const rand = prng(SEED)
  const cases = Array.from({ length: COUNT }, (_, n) => generate(rand, n))
  const bad: string[] = []
  const byKind = new Map<string, number>()
  const statuses = new Map<number, number>()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const c = cases[next++] as Case
      const r = await admin.raw(c.method, c.path, c.body).catch((err: Error) => ({ status: 0, text: `${err.message}: ${String((err.cause as Error | undefined)?.message)}`, json: undefined }))
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
      byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1)
      const msg: unknown = r.json?.error_msg
      if (r.status < 400 || r.status > 499 || typeof msg !== 'string' || msg === '') {
        bad.push(`${c.kind} ${c.method} ${c.path} → ${r.status} ${r.text.slice(0, 160)} (body ${c.kind === 'pem' ? String(c.body).replace(/[A-Za-z0-9+/]{20,}/g, '…') : String(c.body).slice(0, 120)})`)
      }
    }
  }
  const started = Date.now()
  await Promise.all(Array.from({ length: 8 }, worker))
  t.comment(`${COUNT} requests in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}; kinds ${JSON.stringify(Object.fromEntries(byKind))}`)
  t.same(bad.slice(0, 20), [], `${bad.length} answers were not a 4xx with error_msg`)

  t.equal(gw.proc.exitCode, null, 'the gateway is still running')
  t.equal((await httpGet(gw.http, '/apisix/status')).status, 200, 'the data plane answers')
  t.same(await snapshot(), before, 'etcd holds exactly what it held before: no partial or polluted object')

  const r = await admin.put('routes/after', { uri: '/after', upstream: { type: 'roundrobin', nodes: node } })
  t.equal(r.status, 201, 'a valid write still works')
  const got = await admin.get('routes/after')
  t.same(Object.keys(got.json.value).sort(), ['create_time', 'id', 'update_time', 'upstream', 'uri'], 'no inherited field shows up in a new object')
  const list = await admin.get('routes')
  t.equal(list.status, 200)
  t.notOk(JSON.stringify(list.json).includes('polluted'), 'no listed object carries a polluted field')
  const unknown = await admin.put('routes/after', { uri: '/after', x_polluted: 1, upstream: { type: 'roundrobin', nodes: node } })
  t.equal(unknown.status, 400, 'unknown fields are still refused (the validator itself was not polluted)')
})
