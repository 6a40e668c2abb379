import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tls from 'node:tls'
import {
  buildClientCertFacts,
  daysRemaining,
  escapeUriComponent,
  formatAsn1Time,
  formatSerial,
  reasonCategory,
  verifyErrorText,
  verifyString,
} from '../../../core/x509/cert.js'
import { buildCertDer, makeKeyPair, pemOf, T, type KeyPair, type NameSpec } from '../tls/cert-builder.js'

const dir = mkdtempSync(join(tmpdir(), 'client-cert-test-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const file = (content: Buffer | string, ext = 'pem'): string => {
  const f = join(dir, `${files++}.${ext}`)
  writeFileSync(f, content)
  return f
}
const openssl = (args: string[]): string => execFileSync('openssl', args, { encoding: 'latin1' })

const key = makeKeyPair()
const cn = (name: string): NameSpec => [[['2.5.4.3', T.UTF8, name]]]

t.test('client cert: fingerprints, serial and dates → what openssl x509 prints (nginx normalisation)', async (t) => {
  // [what, serial content octets]
  const serials: [string, number[]][] = [
    ['zero', [0]],
    ['one', [1]],
    ['255 with sign padding', [0, 0xff]],
    ['20 bytes, high bit padded', [0, 0x96, ...Array.from({ length: 19 }, (_, i) => (i * 37 + 11) & 0xff)]],
    ['negative one', [0xff]],
    ['negative 0x8000', [0x80, 0]],
    ['negative multi-byte', [0xfe, 0xdc, 0xba]],
    ['lower-case digits in hex', [0x0a, 0xbc, 0xde, 0xf0]],
  ]
  for (const [what, bytes] of serials) {
    const der = buildCertDer(
      { subject: cn(`serial ${what}`), serial: Buffer.from(bytes), notBefore: new Date(Date.UTC(2020, 11, 1, 10, 19, 57)), notAfter: new Date(Date.UTC(2051, 0, 9, 3, 4, 5)) },
      key,
    )
    const f = file(der, 'der')
    const facts = buildClientCertFacts(der)
    if (!facts) {
      t.fail(`${what}: parses`)
      continue
    }
    const sha1 = openssl(['x509', '-inform', 'DER', '-in', f, '-noout', '-fingerprint', '-sha1']).trim()
    const sha256 = openssl(['x509', '-inform', 'DER', '-in', f, '-noout', '-fingerprint', '-sha256']).trim()
    const serial = openssl(['x509', '-inform', 'DER', '-in', f, '-noout', '-serial']).trim()
    const start = openssl(['x509', '-inform', 'DER', '-in', f, '-noout', '-startdate']).trim()
    const end = openssl(['x509', '-inform', 'DER', '-in', f, '-noout', '-enddate']).trim()
    const hex = (line: string) => line.replace(/^[^=]*=/, '').replaceAll(':', '').toLowerCase() // `sha1 Fingerprint=AB:CD…`
    t.equal(facts.fingerprint, hex(sha1), `${what}: fingerprint`)
    t.equal(facts.sha256, hex(sha256), `${what}: sha256`)
    t.equal(facts.serial, serial.replace('serial=', ''), `${what}: serial ${facts.serial}`)
    t.equal(facts.vStart, start.replace('notBefore=', ''), `${what}: v_start`)
    t.equal(facts.vEnd, end.replace('notAfter=', ''), `${what}: v_end`)
    t.equal(facts.notBefore, Date.UTC(2020, 11, 1, 10, 19, 57), `${what}: notBefore`)
    t.equal(facts.notAfter, Date.UTC(2051, 0, 9, 3, 4, 5), `${what}: notAfter (GeneralizedTime)`)
  }
})

t.test('client cert: raw and escaped PEM → openssl PEM, URL-encoded like ngx_escape_uri', async (t) => {
  const der = buildCertDer({ subject: cn('pem') }, key)
  const facts = buildClientCertFacts(der)
  const pem = openssl(['x509', '-inform', 'DER', '-in', file(der, 'der'), '-outform', 'PEM'])
  t.equal(facts?.pem, pem, 'raw PEM, 64 columns, final newline')
  const nginxStyle = encodeURIComponent(pem).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  t.equal(facts?.escapedPem, nginxStyle)
  t.match(facts?.escapedPem ?? '', /^-----BEGIN%20CERTIFICATE-----%0A/)
  t.notMatch(facts?.escapedPem ?? '', /[+/=\n ]/, 'no raw base64 specials, spaces or newlines left')
})

t.test('client cert: ngx_escape_uri component table → only A-Z a-z 0-9 - . _ ~ kept', async (t) => {
  let all = ''
  for (let c = 0x20; c < 0x7f; c++) all += String.fromCharCode(c)
  const kept = escapeUriComponent(all).replace(/%[0-9A-F]{2}/g, '')
  t.equal(kept, '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~')
  t.equal(escapeUriComponent("!'()*\n"), '%21%27%28%29%2A%0A')
})

t.test('client cert: serials beyond 35 bytes → backslash-newline every 35 bytes, as i2a_ASN1_INTEGER', async (t) => {
  const bytes = Buffer.from(Array.from({ length: 40 }, (_, i) => i + 1))
  t.equal(formatSerial(bytes), `${bytes.subarray(0, 35).toString('hex').toUpperCase()}\\\n${bytes.subarray(35).toString('hex').toUpperCase()}`)
  t.equal(formatSerial(Buffer.alloc(0)), '00')
})

t.test('client cert: garbage and truncated DER → undefined, never a throw', async (t) => {
  const der = buildCertDer({ subject: cn('trunc') }, key)
  const inputs = [Buffer.alloc(0), Buffer.from('not a cert'), Buffer.from([0x30, 0x82, 0xff, 0xff]), der.subarray(0, der.length - 1), Buffer.concat([der, Buffer.from([0])])]
  for (let cut = 1; cut < der.length; cut += 7) inputs.push(der.subarray(0, cut))
  let undef = 0
  for (const input of inputs) if (buildClientCertFacts(input) === undefined) undef++
  t.equal(undef, inputs.length)
})

t.test('client cert: dates print like ASN1_TIME_print; days remaining floor at 0', async (t) => {
  t.equal(formatAsn1Time(Date.UTC(2022, 11, 1, 10, 19, 57)), 'Dec  1 10:19:57 2022 GMT')
  t.equal(formatAsn1Time(Date.UTC(2042, 7, 18, 1, 2, 3)), 'Aug 18 01:02:03 2042 GMT')
  const day = 86_400_000
  t.equal(daysRemaining(10 * day, 0), 10)
  t.equal(daysRemaining(10 * day - 1, 0), 9)
  t.equal(daysRemaining(5, 10), 0)
})

t.test('client cert: verify string and metrics reason for each Node code (table)', async (t) => {
  // [authorized, authorizationError, hadCert, $ssl_client_verify, reason]
  const cases: [boolean, string | undefined, boolean, string, string | undefined][] = [
    [false, undefined, false, 'NONE', 'no_certificate'],
    [false, 'UNABLE_TO_GET_ISSUER_CERT', false, 'NONE', 'no_certificate'],
    [true, undefined, true, 'SUCCESS', undefined],
    [false, 'CERT_HAS_EXPIRED', true, 'FAILED:certificate has expired', 'expired'],
    [false, 'CERT_NOT_YET_VALID', true, 'FAILED:certificate is not yet valid', 'expired'],
    [false, 'DEPTH_ZERO_SELF_SIGNED_CERT', true, 'FAILED:self-signed certificate', 'untrusted'],
    [false, 'SELF_SIGNED_CERT_IN_CHAIN', true, 'FAILED:self-signed certificate in certificate chain', 'untrusted'],
    [false, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', true, 'FAILED:unable to get local issuer certificate', 'untrusted'],
    [false, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', true, 'FAILED:unable to verify the first certificate', 'untrusted'],
    [false, 'CERT_CHAIN_TOO_LONG', true, 'FAILED:certificate chain too long', 'depth'],
    [true, 'CERT_CHAIN_TOO_LONG', true, 'FAILED:certificate chain too long', 'depth'],
    [false, 'CERT_SIGNATURE_FAILURE', true, 'FAILED:certificate signature failure', 'untrusted'],
    [false, 'SOMETHING_NEW', true, 'FAILED:unspecified certificate verification error', 'untrusted'],
    [false, undefined, true, 'FAILED:unspecified certificate verification error', 'untrusted'],
  ]
  for (const [authorized, err, had, want, reason] of cases) {
    t.equal(verifyString(authorized, err, had), want, `${authorized}/${err}/${had} → ${want}`)
    t.equal(reasonCategory(authorized, err, had), reason, `${authorized}/${err}/${had} → ${reason}`)
  }
})

/** A CA (or intermediate) certificate. */
function makeCa(name: string, k: KeyPair, signer?: { name: string; key: KeyPair }): Buffer {
  return buildCertDer(
    {
      subject: cn(name),
      issuer: cn(signer?.name ?? name),
      signerKeyPem: (signer?.key ?? k).privateKeyPem,
      publicKeyPem: k.publicKeyPem,
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }],
    },
    k,
  )
}

/** OpenSSL's own wording for why `leaf` fails against `ca` (openssl verify), or 'OK'. */
function opensslVerify(leaf: Buffer, ca: Buffer, untrusted: Buffer[] = [], extra: string[] = []): string {
  const args = ['verify', '-CAfile', file(pemOf(ca)), ...extra]
  if (untrusted.length) args.push('-untrusted', file(untrusted.map(pemOf).join('')))
  const r = spawnSync('openssl', [...args, file(pemOf(leaf))], { encoding: 'latin1' })
  const m = /error \d+ at \d+ depth lookup: (.+)/.exec(`${r.stdout}${r.stderr}`)
  return m ? m[1]!.trim() : r.status === 0 ? 'OK' : `unexpected: ${r.stdout}${r.stderr}`
}

t.test('client cert: real handshakes → Node codes whose verify strings are openssl verify’s words', async (t) => {
  const caKey = makeKeyPair()
  const leafKey = makeKeyPair()
  const ca = makeCa('Test CA', caKey)
  const intKey = makeKeyPair()
  const int = makeCa('Test Intermediate', intKey, { name: 'Test CA', key: caKey })
  const foreignKey = makeKeyPair()
  const foreign = makeCa('Foreign CA', foreignKey)
  const issued = (name: string, by: { name: string; key: KeyPair }, nb?: Date, na?: Date): Buffer =>
    buildCertDer(
      {
        subject: [[['2.5.4.6', T.PRINTABLE, 'FR']], [['2.5.4.3', T.UTF8, name]]],
        issuer: cn(by.name),
        signerKeyPem: by.key.privateKeyPem,
        publicKeyPem: leafKey.publicKeyPem,
        serial: Buffer.from([0x00, 0xab, 0xcd]),
        ...(nb ? { notBefore: nb } : {}),
        ...(na ? { notAfter: na } : {}),
      },
      leafKey,
    )
  const byCa = { name: 'Test CA', key: caKey }
  // In a handshake OpenSSL reports a lone leaf from an unknown issuer as error 21 (unable to verify
  // the first certificate) where `openssl verify` says 20; the handshake is what nginx sees, so
  // that case is checked against OpenSSL's text directly.
  const leaves: [string, Buffer, Buffer[], string | undefined][] = [
    // [what, leaf, chain sent after it, Node code expected]
    ['valid', issued('good', byCa), [], undefined],
    ['expired', issued('old', byCa, new Date(Date.UTC(2019, 0, 1)), new Date(Date.UTC(2020, 0, 1))), [], 'CERT_HAS_EXPIRED'],
    ['not yet valid', issued('future', byCa, new Date(Date.UTC(2090, 0, 1)), new Date(Date.UTC(2095, 0, 1))), [], 'CERT_NOT_YET_VALID'],
    ['self-signed', buildCertDer({ subject: cn('myself') }, leafKey), [], 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['foreign CA', issued('stranger', { name: 'Foreign CA', key: foreignKey }), [], 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['foreign chain sent whole', issued('stranger', { name: 'Foreign CA', key: foreignKey }), [foreign], 'SELF_SIGNED_CERT_IN_CHAIN'],
    ['through an intermediate', issued('deep', { name: 'Test Intermediate', key: intKey }), [int], undefined],
  ]
  const server = tls.createServer({ key: key.privateKeyPem, cert: pemOf(buildCertDer({ subject: cn('server') }, key)), ca: pemOf(ca), requestCert: true, rejectUnauthorized: false })
  const seen: { authorized: boolean; error: string | undefined; raw: Buffer | undefined }[] = []
  server.on('secureConnection', (s: tls.TLSSocket) => {
    const peer = s.getPeerCertificate()
    seen.push({ authorized: s.authorized, error: s.authorizationError === null ? undefined : String(s.authorizationError), raw: peer?.raw })
    s.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const connect = async (certPem?: string) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, key: leafKey.privateKeyPem, ...(certPem ? { cert: certPem } : {}) })
    socket.on('error', () => {})
    socket.resume()
    await once(socket, 'close')
  }
  for (const [what, leaf, chain, code] of leaves) {
    await connect(pemOf(leaf) + chain.map(pemOf).join(''))
    const got = seen.pop()
    t.equal(got?.error, code, `${what}: Node's code`)
    const want = code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ? 'unable to verify the first certificate' : opensslVerify(leaf, ca, chain)
    const verify = verifyString(got?.authorized ?? false, got?.error, got?.raw !== undefined)
    t.equal(verify, want === 'OK' ? 'SUCCESS' : `FAILED:${want}`, `${what}: ${verify}`)
    t.equal(got?.raw && buildClientCertFacts(got.raw)?.fingerprint, buildClientCertFacts(leaf)?.fingerprint, `${what}: the peer certificate is the leaf`)
  }
  await connect()
  const none = seen.pop()
  t.equal(verifyString(none?.authorized ?? false, none?.error, none?.raw !== undefined), 'NONE', 'no client certificate → NONE')
  // Node has no verify-depth option; the caller reports CERT_CHAIN_TOO_LONG as OpenSSL does.
  const deep = leaves[6]!
  t.equal(verifyErrorText('CERT_CHAIN_TOO_LONG'), opensslVerify(deep[1], ca, [int], ['-verify_depth', '0']), 'depth exceeded → the words of openssl verify -verify_depth')
})
