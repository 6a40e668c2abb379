import t from 'tap'
import { mergePatch, setSubPath } from '../../../admin/patch.js'
import { nestingDepth, parseBody, MAX_DEPTH } from '../../../admin/body.js'
import { formatGenId, parseAdminPath } from '../../../admin/ids.js'
import { redactForRead, redactForWrite } from '../../../admin/redact.js'
import { buildAuth } from '../../../admin/auth.js'
import { KeyedQueue } from '../../../admin/kv.js'

t.test('merge patch: objects merge, arrays and scalars replace, null deletes', async (t) => {
  const cases: Array<[unknown, unknown, unknown]> = [
    [{ a: 1, b: { c: 1, d: 2 } }, { b: { c: null, e: 3 } }, { a: 1, b: { d: 2, e: 3 } }],
    [{ a: [1, 2] }, { a: [3] }, { a: [3] }],
    [{ a: { x: 1 } }, { a: 'str' }, { a: 'str' }],
    [{ a: 1 }, { a: null, b: null }, {}],
    [{ labels: { a: '1' } }, { labels: { b: '2' } }, { labels: { a: '1', b: '2' } }],
  ]
  for (const [target, patch, want] of cases) t.same(mergePatch(target, patch), want, JSON.stringify(patch))
  const target = { a: { b: 1 } }
  mergePatch(target, { a: { b: 2 } })
  t.same(target, { a: { b: 1 } }, 'the target is not modified')
})

t.test('sub-path: replaces the value, creates missing objects, refuses non-object intermediates', async (t) => {
  t.same(setSubPath({ snis: ['a'] }, ['snis'], ['b', 'c']), { ok: true, value: { snis: ['b', 'c'] } })
  t.same(setSubPath({}, ['plugins', 'proxy-rewrite'], { uri: '/x' }), { ok: true, value: { plugins: { 'proxy-rewrite': { uri: '/x' } } } })
  t.match(setSubPath({ uri: '/a' }, ['uri', 'x'], 1), { ok: false, error: /invalid sub-path/ })
  t.match(setSubPath({}, ['__proto__', 'x'], 1), { ok: false })
})

t.test('body: empty, JSON, invalid UTF-8, deep nesting, bad JSON, __proto__', async (t) => {
  t.same(parseBody(undefined), { ok: true, value: undefined })
  t.same(parseBody(Buffer.from('  ')), { ok: true, value: undefined })
  t.same(parseBody(Buffer.from('{"a":[1,"]]]"]}')), { ok: true, value: { a: [1, ']]]'] } })
  t.match(parseBody(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), { ok: false, error: /UTF-8/ })
  t.match(parseBody(Buffer.from('['.repeat(MAX_DEPTH + 1) + ']'.repeat(MAX_DEPTH + 1))), { ok: false, error: /nested deeper/ })
  t.ok(parseBody(Buffer.from('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH))).ok, 'exactly the limit passes')
  t.match(parseBody(Buffer.from('{"a":')), { ok: false, error: /^invalid request body: / })
  t.match(parseBody(Buffer.from('{"__proto__":{"x":1}}')), { ok: false, error: /__proto__/ })
  t.equal(nestingDepth('{"a":"{{{{\\"{{"}'), 1, 'brackets inside strings do not count')
})

t.test('ids: APISIX 20-digit ids and admin paths', async (t) => {
  t.equal(formatGenId('45'), '00000000000000000045')
  t.same(parseAdminPath('/apisix/admin/routes/1/plugins/proxy-rewrite?x=1'), { resource: 'routes', id: '1', sub: ['plugins', 'proxy-rewrite'] })
  t.same(parseAdminPath('/apisix/admin/ssls/'), { resource: 'ssls', id: undefined, sub: [] })
  t.same(parseAdminPath('/apisix/admin'), { resource: '', id: undefined, sub: [] })
  t.equal(parseAdminPath('/apisix/adminx'), undefined)
  t.equal(parseAdminPath('/apisix/admin/routes/%E0%A4%A'), undefined)
})

t.test('redact: GET drops keys; writes drop only plain-text keys', async (t) => {
  const ssl = { cert: 'C', key: '-----BEGIN PRIVATE KEY-----', keys: ['ENC'] }
  t.same(redactForRead('ssls', ssl), { cert: 'C' })
  t.same(redactForWrite('ssls', ssl), { cert: 'C', keys: ['ENC'] })
  const route = { upstream: { tls: { client_cert: 'C', client_key: 'ENC' } } }
  t.same(redactForRead('routes', route), { upstream: { tls: { client_cert: 'C' } } })
  t.same(redactForWrite('routes', route), route)
})

t.test('auth: allow_admin, missing/wrong key 401, viewer writes 403', async (t) => {
  const auth = buildAuth(
    [
      { name: 'admin', key: 'adminkey', role: 'admin' },
      { name: 'v', key: 'viewerkey', role: 'viewer' },
    ],
    ['127.0.0.0/24'],
  )
  const q = new URLSearchParams()
  const req = (method: string, headers: Record<string, string>, remoteAddr = '127.0.0.1', query = q) => auth({ method, remoteAddr, headers, query })
  t.match(req('GET', { 'x-api-key': 'adminkey' }, '10.0.0.1'), { ok: false, status: 403 })
  t.match(req('GET', { 'x-api-key': 'adminkey' }, '::ffff:127.0.0.1'), { ok: true, role: 'admin' })
  t.match(req('GET', {}), { ok: false, status: 401, body: { description: 'missing apikey' } })
  t.match(req('GET', { 'x-api-key': 'adminke' }), { ok: false, status: 401, body: { description: 'wrong apikey' } })
  t.match(req('GET', { x_api_key: 'adminkey' }), { ok: true })
  t.match(req('GET', { cookie: 'a=b; x_api_key=adminkey' }), { ok: true })
  t.match(req('GET', {}, '127.0.0.1', new URLSearchParams('api_key=adminkey')), { ok: true })
  t.match(req('GET', { 'x-api-key': 'viewerkey' }), { ok: true, role: 'viewer' })
  t.match(req('PUT', { 'x-api-key': 'viewerkey' }), { ok: false, status: 403 })
  t.match(buildAuth([{ name: 'a', key: 'k', role: 'admin' }], [])({ method: 'GET', remoteAddr: '8.8.8.8', headers: { 'x-api-key': 'k' }, query: q }), { ok: true }, 'empty allow_admin allows all')
})

t.test('keyed queue: tasks for one key run one at a time, in order', async (t) => {
  const q = new KeyedQueue()
  const log: string[] = []
  let running = 0
  let maxRunning = 0
  const task = (i: number) => async () => {
    running++
    maxRunning = Math.max(maxRunning, running)
    await Promise.resolve()
    log.push(String(i))
    running--
    if (i === 2) throw new Error('boom')
    return i
  }
  const all = await Promise.allSettled([1, 2, 3, 4].map((i) => q.run('k', task(i))))
  t.same(log, ['1', '2', '3', '4'])
  t.equal(maxRunning, 1)
  t.equal(all[1]?.status, 'rejected', 'a failed task does not stop the next')
})
