import t from 'tap'
import * as net from 'node:net'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { KEY, startGateway, VIEWER_KEY } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { decryptKey } from '../../core/resources/key-crypto.js'

const RING = ['qeddd145sfvddff3', 'edd1c9f0985e76a2']
const up = { type: 'roundrobin', nodes: { '127.0.0.1:1980': 1 } }

t.test('admin API against a real etcd and the real gateway process', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  const pki = makePki({ server: ['test.com'], clients: ['alice', 'bob'] })
  const stored = async (key: string): Promise<Record<string, unknown> | undefined> => {
    const raw = await client.get(key).string()
    return raw === null ? undefined : (JSON.parse(raw) as Record<string, unknown>)
  }

  t.test('ssls: PUT 201/200, etcd holds the object as sent with an encrypted key, GET hides it', async (t) => {
    const body = { sni: 'test.com', cert: pki.server.cert, key: pki.server.key, client: { ca: pki.ca.cert } }
    const put = await admin.put('ssls/1', body)
    t.equal(put.status, 201, put.text)
    t.equal(put.json.key, '/apisix/ssls/1')
    const inEtcd = await stored('/apisix/ssls/1')
    t.same(Object.keys(inEtcd ?? {}).sort(), ['cert', 'client', 'create_time', 'id', 'key', 'sni', 'update_time'], 'no defaults written')
    t.same(inEtcd?.['client'], { ca: pki.ca.cert }, 'client.depth default not written')
    t.not(inEtcd?.['key'], pki.server.key, 'the key is not stored in plain text')
    t.same(decryptKey(String(inEtcd?.['key']), RING), { ok: true, value: pki.server.key }, 'APISIX format, first keyring entry')
    t.equal((await admin.put('ssls/1', body)).status, 200)
    const got = await admin.get('ssls/1')
    t.equal(got.status, 200)
    t.equal(got.json.value.sni, 'test.com')
    t.equal(got.json.value.key, undefined)
    t.type(got.json.createdIndex, 'number')
    t.type(got.json.modifiedIndex, 'number')
    t.ok(got.json.modifiedIndex > got.json.createdIndex, 'the replace moved modifiedIndex')
    const list = await admin.get('ssls')
    t.equal(list.json.total, 1)
    t.equal(list.json.list[0].value.key, undefined)
    t.match(got.headers.get('content-type'), /application\/json/)
  })

  t.test('ssls: APISIX validation messages; stricter key match; linear regexes', async (t) => {
    const cases: Array<[unknown, RegExp]> = [
      [{ sni: 'foo.com' }, /invalid configuration: property "cert" is required/],
      [{ cert: pki.server.cert, key: pki.server.key, sni: 'a.com', snis: ['b.com'] }, /only one of sni or snis/],
      [{ cert: pki.server.cert, key: pki.clients['alice']!.key, sni: 'test.com' }, /does not match/],
      [{ cert: pki.server.cert.slice(0, 300), key: pki.server.key, sni: 'test.com' }, /^failed to parse cert: PEM_read_bio_X509_AUX\(\) failed$/],
      [{ cert: pki.server.cert, key: pki.server.key, sni: 'test.com', client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/(?!admin)'] } }, /client.skip_mtls_uri_regex\[0\]/],
      [{ cert: pki.server.cert, key: pki.server.key, sni: 'test.com', client: {} }, /property "client.ca" is required/],
    ]
    for (const [body, msg] of cases) {
      const r = await admin.put('ssls/2', body)
      t.equal(r.status, 400, String(msg))
      t.match(r.json?.error_msg, msg)
    }
    t.equal((await admin.get('ssls/2')).status, 404, 'nothing was stored')
  })

  t.test('ssls: an SNI claimed by another object → stored with a warning naming it', async (t) => {
    const r = await admin.put('ssls/3', { snis: ['TEST.com', 'other.test'], cert: pki.server.cert, key: pki.server.key })
    t.equal(r.status, 201)
    t.match(r.json.warning, /sni "test.com" also claimed by ssl 1/)
    t.match(r.json.warning, /SANs do not cover "other.test"/)
    t.equal((await admin.delete('ssls/3')).status, 200)
  })

  t.test('routes: references, PATCH merge and sub-path, POST ids, DELETE', async (t) => {
    t.match(await admin.put('routes/1', { uri: '/a', upstream_id: 'u1' }), { status: 400, json: { error_msg: 'failed to fetch upstream info by upstream id [u1], response code: 404' } })
    t.equal((await admin.put('upstreams/u1', up)).status, 201)
    t.equal((await admin.put('routes/1', { uri: '/a', upstream_id: 'u1' })).status, 201)
    t.match(await admin.delete('upstreams/u1'), { status: 400, json: { error_msg: 'can not delete this upstream, route [1] is still using it now' } })
    const p = await admin.patch('routes/1', { labels: { env: 'prod' }, desc: 'x' })
    t.match(p, { status: 200, json: { value: { uri: '/a', labels: { env: 'prod' }, desc: 'x' } } })
    const s = await admin.patch('routes/1/plugins', { 'proxy-rewrite': { headers: { 'X-A': '$remote_addr' } } })
    t.match(s, { status: 200, json: { value: { plugins: { 'proxy-rewrite': { headers: { 'X-A': '$remote_addr' } } } } } })
    t.match(await admin.patch('routes/1', { uri: null }), { status: 400 })
    t.match(await admin.patch('routes/404', { desc: 'x' }), { status: 404, json: { message: 'Key not found' } })
    const post = await admin.post('routes', { uri: '/p', upstream: up })
    t.equal(post.status, 201)
    t.match(post.json.value.id, /^\d{20}$/)
    t.equal(post.json.key, `/apisix/routes/${post.json.value.id}`)
    t.ok(await stored(post.json.key), 'stored under the generated id')
    t.match(await admin.delete(`routes/${post.json.value.id}`), { status: 200, json: { deleted: '1' } })
    t.equal((await admin.delete('upstreams/u1?force=true')).status, 200)
    t.match(await admin.delete('routes/1'), { status: 200, json: { deleted: '1', key: '/apisix/routes/1' } })
    t.match(await admin.delete('routes/1'), { status: 404, json: { message: 'Key not found' } })
  })

  t.test('200 concurrent PATCHes each adding a label to one route → all 200 labels survive', async (t) => {
    t.equal((await admin.put('routes/c', { uri: '/c', upstream: up })).status, 201)
    const started = Date.now()
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => admin.patch('routes/c', { labels: { [`l${i}`]: `v${i}` } })))
    const ms = Date.now() - started
    t.same(replies.filter((r) => r.status !== 200).map((r) => r.text), [])
    const labels = (await stored('/apisix/routes/c'))?.['labels'] as Record<string, string>
    t.equal(Object.keys(labels).length, 200, `all labels in etcd (${ms} ms for 200 PATCHes)`)
    t.equal(labels['l199'], 'v199')
  })

  t.test('consumers: keyed by username; POST/PATCH 405; one certificate, one consumer', async (t) => {
    const alice = { username: 'alice', plugins: { 'mtls-auth': { certificates: [pki.clients['alice']!.cert] } } }
    const r = await admin.put('consumers', alice)
    t.equal(r.status, 201, r.text)
    t.equal(r.json.key, '/apisix/consumers/alice')
    t.match(await admin.put('consumers/bob', { username: 'bob', plugins: { 'mtls-auth': { certificates: [pki.clients['alice']!.cert] } } }), {
      status: 400,
      json: { error_msg: /already belongs to consumer "alice"/ },
    })
    t.match(await admin.post('consumers', alice), { status: 405 })
    t.match(await admin.patch('consumers/alice', { desc: 'x' }), { status: 405 })
    t.equal((await admin.get('consumers')).json.total, 1)
  })

  t.test('global rules: plugins checked against their schemas', async (t) => {
    t.equal((await admin.put('global_rules/1', { plugins: { 'ssl-enforcement': { requiresSsl: true } } })).status, 201)
    t.match(await admin.put('global_rules/2', { plugins: { 'no-such-plugin': {} } }), { status: 400, json: { error_msg: 'unknown plugin [no-such-plugin]' } })
    t.match(await admin.put('global_rules/2', { plugins: { 'ssl-enforcement': { requiresSsl: 'yes' } } }), {
      status: 400,
      json: { error_msg: /^failed to check the configuration of plugin ssl-enforcement err: .*requiresSsl/ },
    })
  })

  t.test('auth: missing or wrong key 401, viewer reads but cannot write (403)', async (t) => {
    t.match(await admin.get('routes', { key: null }), { status: 401, json: { error_msg: 'failed to check token', description: 'missing apikey' } })
    t.match(await admin.get('routes', { key: 'wrong' }), { status: 401, json: { description: 'wrong apikey' } })
    t.equal((await admin.get('routes', { key: VIEWER_KEY })).status, 200)
    t.match(await admin.put('routes/v', { uri: '/v', upstream: up }, { key: VIEWER_KEY }), { status: 403, json: { error_msg: String } })
  })

  t.test('bad input: 404, 405, 413, malformed JSON, invalid UTF-8, deep nesting; never a 5xx', async (t) => {
    t.match(await admin.get('services'), { status: 404, json: { error_msg: 'Unsupported resource type: services' } })
    t.match(await admin.get('routes/nope'), { status: 404, json: { message: 'Key not found' } })
    t.match(await admin.post('consumers', { username: 'x' }), { status: 405 })
    t.match(await admin.raw('PUT', 'routes/x', '{"uri": "/x", '), { status: 400, json: { error_msg: /^invalid request body/ } })
    t.match(await admin.raw('PUT', 'routes/x', Buffer.from('{"uri":"/\xff"}', 'latin1')), { status: 400, json: { error_msg: /UTF-8/ } })
    t.match(await admin.raw('PUT', 'routes/x', `${'{"a":'.repeat(200)}1${'}'.repeat(200)}`), { status: 400, json: { error_msg: /nested deeper than 100/ } })
    t.match(await admin.raw('PUT', 'routes/x', JSON.stringify({ uri: '/x', desc: 'd'.repeat(2 * 1024 * 1024) })), { status: 413, json: { error_msg: String } })
    const junk = ['', 'null', '[]', '"str"', '1e999', '{"uri":{"$ne":1}}', '{"__proto__":{"a":1}}']
    for (const body of junk) {
      const r = await admin.raw('PUT', 'routes/x', body)
      t.ok(r.status >= 400 && r.status < 500 && typeof r.json?.error_msg === 'string', `${JSON.stringify(body)} → ${r.status} ${r.text.trim()}`)
    }
    t.equal((await admin.raw('PUT', 'routes/form', JSON.stringify({ uri: '/x', upstream: up }), { headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 201, 'curl -d content type')
  })

  t.test('a body over the limit gets its 413 even while the client is still sending it (lingering close)', async (t) => {
    // the 413 is decided from Content-Length before any body byte is read; closing the socket
    // with the body unread would reset the connection, and the client could lose the answer
    const sendOversized = (chunked: boolean): Promise<{ reply: string; error: string | undefined; sent: boolean }> =>
      new Promise((resolve) => {
        const body = Buffer.alloc(6 * 1024 * 1024, 'z')
        const s = net.connect(gw.admin, '127.0.0.1')
        let reply = ''
        let error: string | undefined
        let sent = false
        s.setEncoding('latin1')
        s.on('data', (d: string) => (reply += d))
        s.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message))
        s.on('close', () => resolve({ reply, error, sent }))
        const framing = chunked ? 'transfer-encoding: chunked' : `content-length: ${body.length}`
        s.write(`PUT /apisix/admin/routes/big HTTP/1.1\r\nhost: x\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\n${framing}\r\n\r\n`)
        const tail = chunked ? Buffer.from(`${body.length.toString(16)}\r\n`) : Buffer.alloc(0)
        s.write(Buffer.concat([tail, body, chunked ? Buffer.from('\r\n0\r\n\r\n') : Buffer.alloc(0)]), (err?: Error | null) => {
          sent = !err
          if (!err) s.end()
        })
      })
    for (const chunked of [false, true]) {
      for (let i = 0; i < 4; i++) {
        const r = await sendOversized(chunked)
        t.match(r, { reply: /^HTTP\/1\.1 413 [^]*\r\nconnection: close\r\n[^]*"error_msg":"request body is larger than/i, error: undefined, sent: true }, `${chunked ? 'chunked' : 'content-length'} #${i + 1}: the whole body was taken and the 413 read`)
      }
    }
    t.equal((await admin.get('routes/big')).status, 404, 'nothing was stored')
  })
})
