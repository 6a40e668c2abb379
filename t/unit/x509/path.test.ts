import t from 'tap'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compileTrustStore, verifyChain, type TrustStore } from '../../../core/x509/verify.js'
import { compileCrlSet, parseCrlPem } from '../../../core/x509/crl.js'
import { cnAsDnsName } from '../../../core/x509/extensions.js'
import { OpensslCa } from '../../lib/openssl-ca.js'

// RFC 5280 path validation of certificates verified outside a handshake (trusted-header
// certificates, mtls-auth), on certificates made with the openssl command line.
const root = new OpensslCa('Path Root CA')
const rootPathLen0 = new OpensslCa('Path Root pathlen0', undefined, ['basicConstraints = critical, CA:TRUE, pathlen:0'])
const interUnder0 = new OpensslCa('Under pathlen0', rootPathLen0)
const inter = new OpensslCa('Path Intermediate', root)
const constrained = new OpensslCa('Constrained CA', root, ['nameConstraints = critical, permitted;DNS:.good.example, permitted;dirName:ok_dn', '[ ok_dn ]', 'O = Good Org'])
const noCertSign = new OpensslCa('No certSign CA', root, ['keyUsage = critical, digitalSignature, cRLSign'])
t.teardown(() => {
  for (const c of [root, rootPathLen0, interUnder0, inter, constrained, noCertSign]) c.cleanup()
})

const store = (...pems: string[]): TrustStore => {
  const r = compileTrustStore(pems.join(''))
  if (!r.ok) throw new Error(r.error)
  return r.store
}
// a minute ahead: the certificates start at the second they were made
const NOW = Date.now() + 60_000

t.test('path: a leaf (basicConstraints CA:FALSE) used as a CA is refused', async (t) => {
  const leafAsCa = root.issue('Leaf Acting As CA', ['basicConstraints = critical, CA:FALSE', 'keyUsage = digitalSignature, keyCertSign'])
  // a certificate signed with the leaf's key, its issuer the leaf's subject
  const dir = mkdtempSync(join(tmpdir(), 'leaf-as-ca-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ossl = (args: string[]): string => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString()
  ossl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'v.key', '-out', 'v.csr', '-subj', '/CN=victim'])
  const forged = ossl(['x509', '-req', '-in', 'v.csr', '-CA', leafAsCa.certPath, '-CAkey', leafAsCa.keyPath, '-set_serial', '77', '-days', '3'])
  const r = verifyChain(new X509Certificate(forged), store(root.self.cert, leafAsCa.cert), NOW)
  t.equal(r.ok, false)
  if (!r.ok) {
    t.equal(r.code, 'INVALID_CA')
    t.match(r.message, /CN=Leaf Acting As CA\) is not a CA/)
  }
})

t.test('path: a chain longer than a CA\'s pathLenConstraint is refused', async (t) => {
  const leaf = interUnder0.issue('too deep')
  const r = verifyChain(leaf.der, store(rootPathLen0.self.cert, interUnder0.self.cert), NOW)
  t.equal(r.ok, false)
  if (!r.ok) {
    t.equal(r.code, 'PATH_LENGTH_EXCEEDED')
    t.match(r.message, /CN=Path Root pathlen0 allows 0 intermediate CAs below it/)
  }
  const direct = rootPathLen0.issue('direct')
  t.match(verifyChain(direct.der, store(rootPathLen0.self.cert, interUnder0.self.cert), NOW), { ok: true }, 'within the constraint: verified')
})

t.test('path: name constraints are enforced on the names below the CA', async (t) => {
  const s = store(root.self.cert, constrained.self.cert)
  const good = constrained.issue('/O=Good Org/CN=good', ['basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth', 'subjectAltName = DNS:api.good.example'])
  t.match(verifyChain(good.der, s, NOW), { ok: true }, 'names inside the permitted subtrees')
  const badDns = constrained.issue('/O=Good Org/CN=bad-dns', ['basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth', 'subjectAltName = DNS:api.evil.example'])
  const r1 = verifyChain(badDns.der, s, NOW)
  t.equal(r1.ok, false)
  if (!r1.ok) t.match(r1.message, /dns api\.evil\.example is outside the permitted subtrees/)
  const badDn = constrained.issue('/O=Evil Org/CN=bad-dn')
  const r2 = verifyChain(badDn.der, s, NOW)
  t.equal(r2.ok, false)
  if (!r2.ok) {
    t.equal(r2.code, 'PERMITTED_VIOLATION')
    t.match(r2.message, /the subject is outside the permitted subtrees/)
  }
})

t.test('path: a leaf without a SAN dNSName has its host-name CN checked against dNSName constraints, as OpenSSL does', async (t) => {
  const hostCa = new OpensslCa('Host Constrained CA', root, ['nameConstraints = critical, permitted;DNS:example.com'])
  t.teardown(() => hostCa.cleanup())
  const s = store(root.self.cert, hostCa.self.cert)
  const leafExt = ['basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth']
  // what `openssl verify` says of the same chain (its check_name_constraints / NAME_CONSTRAINTS_check_CN)
  const opensslSays = (leafPath: string): string => {
    try {
      return execFileSync('openssl', ['verify', '-CAfile', root.self.certPath, '-untrusted', hostCa.self.certPath, leafPath], { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
    } catch (e) {
      return String((e as { stdout?: Buffer }).stdout ?? '') + String((e as { stderr?: Buffer }).stderr ?? '')
    }
  }
  const evil = hostCa.issue('evil.org', leafExt)
  const r = verifyChain(evil.der, s, NOW)
  t.equal(r.ok, false, 'CN=evil.org, no SAN: refused')
  if (!r.ok) {
    t.equal(r.code, 'PERMITTED_VIOLATION')
    t.match(r.message, /the client certificate: the subject CN evil\.org is outside the permitted subtrees of the name constraints of CN=Host Constrained CA/)
  }
  t.match(opensslSays(evil.certPath), /permitted subtree violation/, 'openssl verify refuses it too')
  const inside = hostCa.issue('a.example.com', leafExt)
  t.match(verifyChain(inside.der, s, NOW), { ok: true }, 'CN=a.example.com, no SAN: verified')
  t.match(opensslSays(inside.certPath), /: OK/)
  const person = hostCa.issue('Alice Smith', leafExt)
  t.match(verifyChain(person.der, s, NOW), { ok: true }, 'CN=Alice Smith is not a host name: not checked')
  t.match(opensslSays(person.certPath), /: OK/)
  const oneLabel = hostCa.issue('localhost', leafExt)
  t.match(verifyChain(oneLabel.der, s, NOW), { ok: true }, 'a one-label CN is not taken for a host name (OpenSSL\'s cn2dnsid)')
  const withSan = hostCa.issue('evil.org', [...leafExt, 'subjectAltName = DNS:b.example.com'])
  t.match(verifyChain(withSan.der, s, NOW), { ok: true }, 'with a SAN dNSName the CN is not checked')
  t.match(opensslSays(withSan.certPath), /: OK/)
  const excludedCa = new OpensslCa('Host Excluding CA', root, ['nameConstraints = critical, excluded;DNS:.bad.example'])
  t.teardown(() => excludedCa.cleanup())
  const bad = excludedCa.issue('api.bad.example', leafExt)
  const rx = verifyChain(bad.der, store(root.self.cert, excludedCa.self.cert), NOW)
  t.match(rx, { ok: false, code: 'EXCLUDED_VIOLATION' }, 'an excluded subtree applies to the CN the same way')
  const interCn = new OpensslCa('intermediate.evil.org', hostCa)
  t.teardown(() => interCn.cleanup())
  const below = interCn.issue('/CN=Bob', leafExt)
  t.match(verifyChain(below.der, store(root.self.cert, hostCa.self.cert, interCn.self.cert), NOW), { ok: true }, 'only the leaf\'s CN: an intermediate\'s host-like CN is not checked')
})

t.test('path: which CNs are taken for host names (OpenSSL\'s cn2dnsid rules)', async (t) => {
  for (const cn of ['a.example.com', 'A-B.c_d.org', 'x--y.z', '_srv.example', 'a.b\0\0']) t.ok(typeof cnAsDnsName(cn) === 'string', `${JSON.stringify(cn)}: a host name`)
  for (const cn of ['Alice Smith', 'localhost', '.a.b', 'a.b.', 'a..b', 'a-.b', 'a.-b', '-a.b', 'a.b-', 'caf\u00e9.fr', '*.example.com', 'a@b.c']) t.equal(cnAsDnsName(cn), undefined, `${JSON.stringify(cn)}: not a host name`)
  t.equal(cnAsDnsName('a\0.example.com'), null, 'an embedded NUL is an error')
  t.equal(cnAsDnsName('a.b\0'), 'a.b', 'trailing NULs are dropped')
})

t.test('path: an unknown critical extension is refused', async (t) => {
  const odd = root.issue('odd', ['basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth', '1.3.6.1.4.1.55555.1 = critical, ASN1:UTF8String:surprise'])
  const r = verifyChain(odd.der, store(root.self.cert), NOW)
  t.equal(r.ok, false)
  if (!r.ok) {
    t.equal(r.code, 'UNHANDLED_CRITICAL_EXTENSION')
    t.match(r.message, /critical extension 1\.3\.6\.1\.4\.1\.55555\.1/)
  }
  const known = root.issue('known', ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = critical, clientAuth'])
  t.match(verifyChain(known.der, store(root.self.cert), NOW), { ok: true }, 'critical extensions the validator processes are fine')
})

t.test('path: a CA whose keyUsage lacks keyCertSign cannot issue', async (t) => {
  const leaf = noCertSign.issue('under no-certsign')
  const r = verifyChain(leaf.der, store(root.self.cert, noCertSign.self.cert), NOW)
  t.equal(r.ok, false)
  if (!r.ok) t.match(r.message, /may not sign certificates \(its keyUsage lacks keyCertSign\)/)
})

t.test('path: CRLs from openssl ca -gencrl: the leaf, an intermediate (the whole branch), an expired CRL', async (t) => {
  const a = inter.issue('alice')
  const b = inter.issue('bob')
  const s = store(root.self.cert, inter.self.cert)
  inter.revoke(a)
  const crls = (pem: string) => {
    const p = parseCrlPem(pem)
    if (!p.ok) throw new Error(p.error)
    return compileCrlSet(p.crls)
  }
  const interCrl = crls(inter.crl())
  const ra = verifyChain(a.der, s, NOW, undefined, interCrl)
  t.match(ra, { ok: false, check: 'revoked', code: 'CERT_REVOKED' }, 'a revoked leaf')
  t.match(verifyChain(b.der, s, NOW, undefined, interCrl), { ok: true }, 'another leaf of the same CA')
  t.match(verifyChain(a.der, s, NOW), { ok: true }, 'without CRLs nothing is revoked')
  const branchRoot = new OpensslCa('Branch Root')
  const branch = new OpensslCa('Branch Inter', branchRoot)
  t.teardown(() => {
    branchRoot.cleanup()
    branch.cleanup()
  })
  const c = branch.issue('carol')
  const bs = store(branchRoot.self.cert, branch.self.cert)
  branchRoot.revoke(branch.self)
  t.match(verifyChain(c.der, bs, NOW, undefined, crls(branchRoot.crl())), { ok: false, check: 'revoked' }, "the intermediate's revocation by the root's CRL revokes its branch")
  const stale = crls(inter.crl({ lastUpdate: new Date(NOW - 3 * 86_400_000), nextUpdate: new Date(NOW - 86_400_000) }))
  t.match(verifyChain(b.der, s, NOW, undefined, stale), { ok: false, check: 'crl_expired', code: 'CRL_HAS_EXPIRED' }, 'an expired CRL fails closed')
})
