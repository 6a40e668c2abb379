import t from 'tap'
import { makeTestPki } from './pki.js'
import { buildRegistry } from '../../../core/resources/registry.js'
import { inspectSsl, snisOf, sslWarnings, type Ssl } from '../../../core/resources/ssl.js'
import { encryptKey } from '../../../core/resources/key-crypto.js'
import { pluginByName } from '../../../core/plugins/registry.js'

const NOW = Date.now()
const pki = makeTestPki(NOW)
const site = pki.leaf('test.com', ['test.com', '*.test.com'])
const other = pki.leaf('other.com', ['other.com'])
const reg = buildRegistry(pluginByName)
const RING = ['qeddd145sfvddff3', 'edd1c9f0985e76a2']

const decode = (raw: unknown) => reg.ssls.decode(raw)
const base = { cert: site.cert, key: site.key, sni: 'test.com' }

t.test('ssl schema: accepted objects get APISIX defaults; the input is not touched', async (t) => {
  const input = { ...base }
  const r = decode(input)
  t.ok(r.ok)
  if (r.ok) {
    t.equal(r.value.type, 'server')
    t.equal(r.value.status, 1)
    t.ok(Object.isFrozen(r.value))
  }
  t.same(Object.keys(input), ['cert', 'key', 'sni'], 'defaults are not written into the input')
  const mtls = decode({ ...base, client: { ca: pki.ca.cert } })
  t.equal(mtls.ok && mtls.value.client?.depth, 1, 'client.depth defaults to 1')
})

t.test('ssl schema: refusals name the field', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['unknown key', { ...base, name: 'x' }, /additional properties forbidden, found name/],
    ['no sni nor snis', { cert: site.cert, key: site.key }, /one of sni or snis is required/],
    ['both sni and snis', { ...base, snis: ['a.com'] }, /only one of sni or snis/],
    ['no key', { cert: site.cert, sni: 'a.com' }, /"key" is required/],
    ['empty snis', { cert: site.cert, key: site.key, snis: [] }, /snis/],
    ['bad sni', { ...base, sni: 'a b.com' }, /"sni"/],
    ['sni longer than a DNS name can be', { ...base, sni: 'a'.repeat(252) + '.com' }, /"sni"/],
    ['one of the snis too long', { cert: site.cert, key: site.key, snis: ['a.com', 'b'.repeat(300)] }, /snis/],
    ['short cert', { ...base, certs: ['https://APISIX_TEST_SSL_CERTS'], keys: [site.key] }, /certs\[0\]/],
    ['labels with an array value', { ...base, labels: { env: ['production'] } }, /labels.env/],
    ['TLSv1.0', { ...base, ssl_protocols: ['TLSv1.0', 'TLSv1.2'] }, /ssl_protocols\[0\]/],
    ['client without ca', { ...base, client: {} }, /client.ca" is required/],
    ['certs without keys', { ...base, certs: [site.cert] }, /mismatched number of certs and keys/],
    ['status 2', { ...base, status: 2 }, /status/],
    ['id with a star', { ...base, id: '*invalid' }, /"id"/],
    ['skip regex that does not compile', { ...base, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['(a'] } }, /client.skip_mtls_uri_regex\[0\]/],
  ]
  for (const [name, raw, msg] of cases) {
    const r = decode(raw)
    t.match(r, { ok: false, error: msg }, `${name} → refused`)
  }
})

t.test('ssl schema: a client-type object needs no sni; wildcard and trailing-dot snis pass', async (t) => {
  t.ok(decode({ type: 'client', cert: site.cert, key: site.key }).ok)
  t.ok(decode({ ...base, sni: '*.foo.com' }).ok)
  t.ok(decode({ cert: site.cert, key: site.key, snis: ['*.foo.com', 'bar.com', 'www.test.com.'] }).ok)
  t.same(snisOf({ snis: ['A.com.', '*.B.com'] }), ['a.com', '*.b.com'])
})

const ssl = (raw: object): Ssl => {
  const r = decode(raw)
  if (!r.ok) throw new Error(r.error)
  return r.value as Ssl
}

t.test('ssl inspection: APISIX messages for unparsable PEM, and stricter checks', async (t) => {
  const cases: Array<[string, object, string | RegExp]> = [
    ['truncated cert', { ...base, cert: site.cert.slice(0, 300) }, 'failed to parse cert: PEM_read_bio_X509_AUX() failed'],
    ['truncated key', { ...base, key: site.key.slice(0, 300) }, 'failed to parse key: PEM_read_bio_PrivateKey() failed'],
    ['key of another certificate', { ...base, key: other.key }, /does not match the certificate/],
    ['bad certs[0]', { ...base, certs: [other.cert.slice(0, 300)], keys: [other.key] }, 'failed to handle cert-key pair[1]: failed to parse cert: PEM_read_bio_X509_AUX() failed'],
    ['bad keys[0]', { ...base, certs: [other.cert], keys: [other.key.slice(0, 300)] }, 'failed to handle cert-key pair[1]: failed to parse key: PEM_read_bio_PrivateKey() failed'],
    ['key encrypted with a foreign key', { ...base, key: encryptKey(site.key, ['1234567890123456']) }, 'failed to decrypt previous encrypted key'],
    ['keys[0] encrypted with a foreign key', { ...base, certs: [other.cert], keys: [encryptKey(other.key, ['1234567890123456'])] }, 'failed to handle cert-key pair[1]: failed to decrypt previous encrypted key'],
    ['client.ca not PEM', { ...base, client: { ca: 'test.com'.repeat(16) } }, 'failed to validate client_cert: failed to parse cert: PEM_read_bio_X509_AUX() failed'],
  ]
  for (const [name, raw, msg] of cases) t.match(inspectSsl(ssl(raw), RING), { ok: false, error: msg }, `${name} → refused`)
  // the decoder itself (admin and data plane alike) refuses skip regexes V8 cannot run in linear time
  const regexes: Array<[string, object, RegExp]> = [
    ['lookahead skip regex', { ...base, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/ok', '(?=a)b'] } }, /client.skip_mtls_uri_regex\[1\].*linear time/],
    ['backreference skip regex', { ...base, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^(a+)+\\1$'] } }, /client.skip_mtls_uri_regex\[0\].*linear time/],
  ]
  for (const [name, raw, msg] of regexes) t.match(decode(raw), { ok: false, error: msg }, `${name} → refused by the decoder`)
  t.ok(decode({ ...base, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^(a+)+$', '(a|a)*b'] } }).ok, 'nested quantifiers run on the linear engine → accepted')
  t.ok(decode({ ...base, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['(?<=/pub)/x', '(?<!/priv)/y'] } }).ok, 'lookbehinds run on the linear engine (V8 13.6, Node 24) → accepted')
})

t.test('ssl inspection: encrypted keys (any keyring entry) and pairs are accepted', async (t) => {
  const enc = { ...base, key: encryptKey(site.key, ['edd1c9f0985e76a2']), certs: [other.cert], keys: [encryptKey(other.key, RING)] }
  const r = inspectSsl(ssl(enc), RING)
  t.ok(r.ok)
  t.equal(r.ok && r.value.leaves.length, 2)
  t.ok(inspectSsl(ssl({ ...base, client: { ca: pki.ca.cert, skip_mtls_uri_regex: ['^/public/.*$'] } }), []).ok)
})

t.test('ssl warnings: expiry and SANs that do not cover the SNIs', async (t) => {
  const soon = pki.leaf('soon.com', ['soon.com'], { days: 5 })
  const s = ssl({ cert: soon.cert, key: soon.key, snis: ['soon.com', 'nope.com'] })
  const facts = inspectSsl(s, RING)
  t.ok(facts.ok)
  if (!facts.ok) return
  const w = sslWarnings(s, facts.value, NOW)
  t.equal(w.length, 2)
  t.match(w[0], /^cert expires at/)
  t.match(w[1], /"nope.com"/)
  const good = ssl(base)
  const gf = inspectSsl(good, RING)
  t.same(gf.ok && sslWarnings(good, gf.value, NOW), [], 'a valid, covering certificate → no warning')
})
