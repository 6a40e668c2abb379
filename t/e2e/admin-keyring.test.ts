import t from 'tap'
import { Etcd3 } from 'etcd3'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { makePki } from '../lib/certs.js'
import { decryptKey, encryptKey } from '../../core/resources/key-crypto.js'

const K1 = 'edd1c9f0985e76a1'
const K2 = 'qeddd145sfvddff3'

t.test('private keys at rest: APISIX format, keyring rotation, never in an answer', async (t) => {
  const etcd = await startEtcd(t)
  const client = new Etcd3({ hosts: etcd.url })
  t.teardown(() => client.close())
  const storedKey = async (id: string): Promise<string> => (JSON.parse((await client.get(`/apisix/ssls/${id}`).string()) ?? '{}') as { key: string }).key
  const pki = makePki({ servers: [['test.com'], ['test2.com'], ['test3.com']] })
  const ssl = (name: string, extra: object = {}) => ({ sni: name, cert: pki.servers[name]!.cert, key: pki.servers[name]!.key, ...extra })
  const withRing = (keyring: string[]) => startGateway(t, { etcd: etcd.url, config: { apisix: { data_encryption: { keyring } } } })

  const a = await withRing([K1])
  t.equal((await adminOf(a).put('ssls/1', ssl('test.com'))).status, 201)
  const enc1 = await storedKey('1')
  t.same(decryptKey(enc1, [K1]), { ok: true, value: pki.servers['test.com']!.key }, 'encrypted with the only keyring entry')
  t.notOk(decryptKey(enc1, [K2]).ok, 'not decryptable with another key')
  await a.stop()

  const b = await withRing([K2, K1])
  const admin = adminOf(b)
  const patched = await admin.patch('ssls/1', { desc: 'rotated' })
  t.equal(patched.status, 200, `an object encrypted with an older keyring entry still validates: ${patched.text}`)
  t.equal(await storedKey('1'), enc1, 'its stored key is kept as it was (APISIX)')
  t.equal((await admin.put('ssls/2', ssl('test2.com'))).status, 201)
  t.same(decryptKey(await storedKey('2'), [K2]), { ok: true, value: pki.servers['test2.com']!.key }, 'new writes use the first entry')
  const preEncrypted = encryptKey(pki.servers['test3.com']!.key, [K1])
  t.equal((await admin.put('ssls/3', ssl('test3.com', { key: preEncrypted }))).status, 201, 'an already-encrypted key is accepted')
  t.equal(await storedKey('3'), preEncrypted, 'and stored as sent')
  const foreign = encryptKey(pki.servers['test3.com']!.key, ['1234567890123456'])
  t.match(await admin.put('ssls/4', ssl('test3.com', { key: foreign })), { status: 400, json: { error_msg: 'failed to decrypt previous encrypted key' } })
  for (const r of [await admin.get('ssls/1'), await admin.get('ssls/2')]) t.equal(r.json.value.key, undefined, 'GET never returns a key')
  const list = (await admin.get('ssls')).json.list as Array<{ value: Record<string, unknown> }>
  t.same(list.filter((i) => 'key' in i.value || 'keys' in i.value), [], 'nor does the list')
  await b.stop()

  const c = await withRing([K2])
  t.match(await adminOf(c).patch('ssls/1', { desc: 'x' }), { status: 400, json: { error_msg: 'failed to decrypt previous encrypted key' } }, 'the old entry removed: the object cannot be re-validated')
  await c.stop()

  const d = await withRing([])
  const plain = await adminOf(d).put('ssls/5', ssl('test3.com'))
  t.equal(plain.status, 201)
  t.equal(plain.json.value.key, undefined, 'an empty keyring stores plain text and leaves it out of the answer')
  t.equal(await storedKey('5'), pki.servers['test3.com']!.key)
  t.notOk((await adminOf(d).patch('ssls/5', { desc: 'x' })).text.includes('PRIVATE KEY'), 'PATCH answers never carry it either')
})
