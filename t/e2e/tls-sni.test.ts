import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { issue, makeCa } from '../lib/certs.js'
import { handshake } from '../lib/tls-client.js'
import { eventually } from '../lib/eventually.js'
import { issueEcdsa, sClient } from '../lib/openssl.js'
import { APISIX_SSL_CIPHERS } from '../../core/tls/settings.js'

// One etcd and one gateway for the whole file; each test uses its own names.
t.test('per-SNI certificates from etcd, live', async (t) => {
  const etcd = await startEtcd(t)
  // APISIX's default ssl_ciphers hold only TLS 1.2 AEAD suites: TLS 1.1 (the ssl_protocols case) needs one it can use
  const ssl_ciphers = `${APISIX_SSL_CIPHERS}:ECDHE-RSA-AES128-SHA`
  const gw = await startGateway(t, { etcd: etcd.url, config: { apisix: { ssl: { fallback_sni: 'fallback.test', ssl_ciphers } } } })
  const admin = adminOf(gw)
  const ca = makeCa('SNI Test CA')
  const cert = (...names: string[]) => issue(ca, { cn: names[0] ?? 'x', sans: names })
  const put = async (id: string, body: Record<string, unknown>): Promise<void> => {
    const r = await admin.put(`ssls/${id}`, body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ssls/${id}: ${r.status} ${r.text}`)
  }
  /** the serial the gateway serves for `sni`, or the handshake error */
  const served = async (sni: string | undefined, o: { maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<string> => {
    const r = await handshake({ port: gw.https, ...(sni !== undefined ? { servername: sni } : {}), ...o })
    return r.ok ? String(r.peer?.serialNumber).toUpperCase() : `error:${r.error}`
  }
  const describe = (): string => gw.output()

  t.test('a new ssl is served within 1 s of its PUT; after DELETE the handshake fails within 1 s', async (t) => {
    const c = cert('live.test')
    const start = Date.now()
    await put('live', { sni: 'live.test', cert: c.cert, key: c.key })
    await eventually(() => served('live.test'), (s) => s === c.serialHex, { timeoutMs: 1000, intervalMs: 10, describe })
    t.ok(Date.now() - start < 1000, `served after ${Date.now() - start} ms`)
    const del = Date.now()
    t.equal((await admin.delete('ssls/live')).status, 200)
    await eventually(() => served('live.test'), (s) => s.startsWith('error:'), { timeoutMs: 1000, intervalMs: 10, describe })
    t.ok(Date.now() - del < 1000, `refused after ${Date.now() - del} ms`)
  })

  t.test('a replaced certificate is served at once; the old one no longer', async (t) => {
    const a = cert('rot.test')
    const b = cert('rot.test')
    await put('rot', { sni: 'rot.test', cert: a.cert, key: a.key })
    await eventually(() => served('rot.test'), (s) => s === a.serialHex, { describe })
    await put('rot', { sni: 'rot.test', cert: b.cert, key: b.key })
    await eventually(() => served('rot.test'), (s) => s === b.serialHex, { timeoutMs: 1000, intervalMs: 10, describe })
    t.equal(await served('rot.test'), b.serialHex)
  })

  t.test('selection: exact before wildcard, longest wildcard, one label, no fallback to a shorter wildcard, case and trailing dot', async (t) => {
    const exact = cert('www.sel.test')
    const wild = cert('*.sel.test')
    const deeper = cert('*.b.sel.test')
    const any = cert('star')
    await put('sel-exact', { sni: 'www.sel.test', cert: exact.cert, key: exact.key })
    await put('sel-wild', { sni: '*.sel.test', cert: wild.cert, key: wild.key })
    await put('sel-deep', { snis: ['*.b.sel.test'], cert: deeper.cert, key: deeper.key })
    await eventually(() => served('a.b.sel.test'), (s) => s === deeper.serialHex, { describe })
    const cases: [string, string][] = [
      ['www.sel.test', exact.serialHex],
      ['WWW.Sel.Test.', exact.serialHex],
      ['other.sel.test', wild.serialHex],
      ['a.b.sel.test', deeper.serialHex],
      ['x.y.b.sel.test', 'error'],
      ['sel.test', 'error'],
      ['x.y.sel.test', 'error'],
    ]
    for (const [sni, want] of cases) {
      const got = await served(sni)
      if (want === 'error') t.match(got, /^error:/, `${sni} → refused`)
      else t.equal(got, want, `${sni} → its certificate`)
    }
    // `*` takes names no other suffix reaches, and still no fallback from `*.sel.test` to `*`
    await put('sel-any', { sni: '*', cert: any.cert, key: any.key })
    await eventually(() => served('unrelated.example'), (s) => s === any.serialHex, { describe })
    t.match(await served('x.y.sel.test'), /^error:/, 'x.y.sel.test still refused with `*` present')
    t.equal((await admin.delete('ssls/sel-any')).status, 200)
    await eventually(() => served('unrelated.example'), (s) => s.startsWith('error:'), { describe })
  })

  t.test('status 0 and type client objects serve nothing', async (t) => {
    const c = cert('off.test')
    await put('off', { sni: 'off.test', cert: c.cert, key: c.key })
    await eventually(() => served('off.test'), (s) => s === c.serialHex, { describe })
    t.equal((await admin.patch('ssls/off', { status: 0 })).status, 200)
    await eventually(() => served('off.test'), (s) => s.startsWith('error:'), { describe })
    t.equal((await admin.patch('ssls/off', { status: 1 })).status, 200)
    await eventually(() => served('off.test'), (s) => s === c.serialHex, { describe })
    const k = cert('client.test')
    await put('cli', { type: 'client', cert: k.cert, key: k.key })
    await put('marker', { sni: 'marker.test', cert: k.cert, key: k.key })
    await eventually(() => served('marker.test'), (s) => s === k.serialHex, { describe })
    t.match(await served('client.test'), /^error:/)
  })

  t.test('an unknown SNI gets an unrecognized_name alert and no certificate', async (t) => {
    const r = await sClient(gw.https, ['-servername', 'nobody.test'])
    t.match(r.all, /unrecognized name|alert number 112/, r.all)
    t.match(r.all, /no peer certificate available/)
    t.notMatch(r.all, /BEGIN CERTIFICATE/)
  })

  t.test('no SNI: fallback_sni serves', async (t) => {
    const c = cert('fallback.test')
    await put('fb', { sni: 'fallback.test', cert: c.cert, key: c.key })
    await eventually(() => served(undefined), (s) => s === c.serialHex, { describe })
    const r = await sClient(gw.https, ['-noservername'])
    t.match(r.all, /CN\s*=\s*fallback\.test/)
  })

  t.test('RSA and ECDSA pairs in one object: the client algorithms choose', async (t) => {
    const rsa = cert('dual.test')
    const ec = await issueEcdsa(ca, ['dual.test'])
    await put('dual', { sni: 'dual.test', cert: rsa.cert, key: rsa.key, certs: [ec.cert], keys: [ec.key] })
    await eventually(() => served('dual.test'), (s) => s === rsa.serialHex || s === ec.serialHex, { describe })
    const cases: [string[], number, string][] = [
      [['-tls1_3', '-sigalgs', 'ECDSA+SHA256'], 256, 'TLS 1.3 ECDSA sigalgs → ECDSA certificate'],
      [['-tls1_3', '-sigalgs', 'rsa_pss_rsae_sha256'], 2048, 'TLS 1.3 RSA sigalgs → RSA certificate'],
      [['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384'], 256, 'TLS 1.2 ECDSA cipher → ECDSA certificate'],
      [['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384'], 2048, 'TLS 1.2 RSA cipher → RSA certificate'],
    ]
    for (const [args, bits, name] of cases) {
      const r = await sClient(gw.https, ['-servername', 'dual.test', ...args])
      t.match(r.stdout, new RegExp(`Server public key is ${bits} bit`), name)
    }
  })

  t.test('ssl_protocols: per object versions', async (t) => {
    const a = cert('v13.test')
    const b = cert('v12.test')
    const c = cert('v11.test')
    await put('v13', { sni: 'v13.test', cert: a.cert, key: a.key, ssl_protocols: ['TLSv1.3'] })
    await put('v12', { sni: 'v12.test', cert: b.cert, key: b.key, ssl_protocols: ['TLSv1.2'] })
    await put('v11', { sni: 'v11.test', cert: c.cert, key: c.key, ssl_protocols: ['TLSv1.1'] })
    await eventually(() => served('v11.test'), (s) => s.startsWith('error:'), { describe })
    await eventually(() => served('v13.test'), (s) => s === a.serialHex, { describe })
    t.match(await served('v13.test', { maxVersion: 'TLSv1.2' }), /^error:/, 'TLS 1.2 refused by a TLSv1.3-only object')
    t.equal(await served('v12.test', { maxVersion: 'TLSv1.2' }), b.serialHex, 'TLS 1.2 served')
    const v12 = await handshake({ port: gw.https, servername: 'v12.test' })
    t.equal(v12.protocol, 'TLSv1.2', 'a TLS 1.3 client is held to TLS 1.2')
    const old = await sClient(gw.https, ['-servername', 'v11.test', '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'])
    t.match(old.stdout, /Protocol\s*:\s*TLSv1\.1/, 'TLS 1.1 served where the object allows it')
    t.match(old.stdout, /Cipher is (?!\(NONE\))/, 'with a cipher')
    const refused = await sClient(gw.https, ['-servername', 'v12.test', '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'])
    t.match(refused.stdout, /Cipher is \(NONE\)/, 'TLS 1.1 refused elsewhere')
  })

  t.test('plain HTTP on the TLS port gets a 400 JSON answer', async (t) => {
    const { connect } = await import('node:net')
    const text = await new Promise<string>((resolve) => {
      const s = connect(gw.https, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))
      let out = ''
      s.on('data', (d: Buffer) => (out += d.toString()))
      s.on('close', () => resolve(out))
      s.on('error', () => resolve(out))
    })
    t.match(text, /^HTTP\/1\.1 400 /)
    t.match(text, /"error_msg"/)
  })
})
