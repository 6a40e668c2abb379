import t from 'tap'
import { connect, type ConnectionOptions } from 'node:tls'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa } from '../lib/certs.js'
import { eventually } from '../lib/eventually.js'
import { APISIX_SSL_CIPHERS } from '../../core/tls/settings.js'

/** What one client saw: the handshake's version, cipher and key-exchange group, and the first line of an HTTP answer on it; or the error. */
interface Hello {
  readonly ok: boolean
  readonly error?: string
  readonly protocol?: string | null
  readonly cipher?: string
  readonly group?: string | undefined
  readonly answer?: string
}

/** A real TLS handshake with Node 24's client (OpenSSL 3.5: it can offer X25519MLKEM768), then one request on it. */
function hello(port: number, o: ConnectionOptions): Promise<Hello> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...o })
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ ok: false, error: 'timeout' })
    }, 10_000)
    s.once('error', (err) => {
      clearTimeout(timer)
      resolve({ ok: false, error: err.message })
    })
    s.once('secureConnect', () => {
      const seen = { protocol: s.getProtocol(), cipher: s.getCipher().name, group: (s.getEphemeralKeyInfo() as { name?: string } | null)?.name }
      s.write(`GET /apisix/status HTTP/1.1\r\nhost: ${o.servername ?? 'x'}\r\nconnection: close\r\n\r\n`)
      let text = ''
      s.on('data', (d: Buffer) => (text += d.toString('latin1')))
      s.once('end', () => {
        clearTimeout(timer)
        resolve({ ok: true, ...seen, answer: text.split('\r\n')[0] ?? '' })
      })
    })
  })
}

// One etcd and one gateway: the config allows only TLS 1.3 for objects without their own
// ssl_protocols, and adds one CBC cipher to APISIX's list (TLS 1.1 needs one).
t.test('TLS settings: apisix.ssl.ssl_protocols / ssl_ciphers and the key-exchange groups', async (t) => {
  const etcd = await startEtcd(t)
  const ssl_ciphers = `${APISIX_SSL_CIPHERS}:ECDHE-RSA-AES128-SHA`
  const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { ssl: { ssl_protocols: 'TLSv1.3', ssl_ciphers } } } })
  const admin = adminOf(gw)
  const ca = makeCa('TLS settings CA')
  for (const [id, extra] of [['pq', {}], ['v12', { ssl_protocols: ['TLSv1.2'] }], ['v11', { ssl_protocols: ['TLSv1.1'] }]] as const) {
    const c = issue(ca, { cn: `${id}.test`, sans: [`${id}.test`] })
    const r = await admin.put(`ssls/${id}`, { sni: `${id}.test`, cert: c.cert, key: c.key, ...extra })
    t.ok(r.status === 200 || r.status === 201, `PUT ssls/${id}: ${r.status} ${r.status < 300 ? '' : r.text}`)
  }
  const at = (servername: string, o: ConnectionOptions = {}): Promise<Hello> => hello(gw.https, { servername, ...o })
  for (const sni of ['pq.test', 'v12.test']) {
    await eventually(() => at(sni, sni === 'v12.test' ? { maxVersion: 'TLSv1.2' } : {}), (h) => h.ok, { describe: gw.output })
  }

  t.test('a client offering only X25519MLKEM768 completes a handshake with it (the post-quantum hybrid)', async (t) => {
    const h = await at('pq.test', { ecdhCurve: 'X25519MLKEM768' })
    t.ok(h.ok, `handshake: ${h.error ?? 'ok'}`)
    t.equal(h.group, 'X25519MLKEM768', 'the key exchange used')
    t.equal(h.protocol, 'TLSv1.3')
    t.equal(h.answer, 'HTTP/1.1 200 OK', 'and the connection carries a request')
  })

  t.test("Node 24's default client (X25519MLKEM768 first among its groups) gets the hybrid too", async (t) => {
    t.equal((await at('pq.test')).group, 'X25519MLKEM768')
  })

  t.test('a client without X25519MLKEM768 gets X25519; one with only P-256 gets P-256; P-384 alone is not offered', async (t) => {
    const classic = await at('pq.test', { ecdhCurve: 'X25519:P-256' })
    t.equal(classic.group, 'X25519', `X25519:P-256 → X25519 (${classic.error ?? 'ok'})`)
    t.equal(classic.answer, 'HTTP/1.1 200 OK')
    const p256 = await at('pq.test', { ecdhCurve: 'P-256' })
    t.equal(p256.group, 'prime256v1', `P-256 → P-256 (${p256.error ?? 'ok'})`)
    const p384 = await at('pq.test', { ecdhCurve: 'P-384' })
    t.notOk(p384.ok, `P-384 alone → refused: ${p384.error}`)
  })

  t.test("apisix.ssl.ssl_protocols holds for objects without their own: TLS 1.3 only here", async (t) => {
    const old = await at('pq.test', { maxVersion: 'TLSv1.2' })
    t.notOk(old.ok, `TLS 1.2 refused: ${old.error}`)
    t.equal((await at('pq.test', { minVersion: 'TLSv1.3' })).protocol, 'TLSv1.3')
  })

  t.test("an object's own ssl_protocols wins; TLS 1.2 ciphers come from apisix.ssl.ssl_ciphers", async (t) => {
    const v12 = await at('v12.test')
    t.equal(v12.protocol, 'TLSv1.2', `a TLS 1.3 client is held to TLS 1.2 (${v12.error ?? 'ok'})`)
    t.equal(v12.cipher, 'ECDHE-RSA-AES128-GCM-SHA256', "APISIX's first cipher for an RSA certificate")
    t.equal(v12.group, 'X25519', 'TLS 1.2 ECDHE on X25519 (the hybrid is TLS 1.3 only)')
    const listed = await at('v12.test', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA' })
    t.equal(listed.cipher, 'ECDHE-RSA-AES128-SHA', `a cipher the config added → used (${listed.error ?? 'ok'})`)
    const unlisted = await at('v12.test', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-SHA' })
    t.notOk(unlisted.ok, `a cipher outside ssl_ciphers → refused: ${unlisted.error}`)
    const v13 = await at('v12.test', { minVersion: 'TLSv1.3' })
    t.notOk(v13.ok, `TLS 1.3 refused by a TLSv1.2-only object although the config allows it: ${v13.error}`)
  })

  t.test('an object allowing TLSv1.1 serves TLS 1.1 with a cipher from ssl_ciphers (OpenSSL 3 needs @SECLEVEL=0 for it)', async (t) => {
    const h = await at('v11.test', { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0' })
    t.equal(h.protocol, 'TLSv1.1', `TLS 1.1 (${h.error ?? 'ok'})`)
    t.equal(h.cipher, 'ECDHE-RSA-AES128-SHA')
    t.equal(h.answer, 'HTTP/1.1 200 OK')
  })
})
