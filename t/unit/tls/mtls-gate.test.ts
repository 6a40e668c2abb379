import t from 'tap'
import { hostRulesIn, mtlsGate, verifyReason } from '../../../core/tls/mtls-gate.js'
import type { ClientRules, TlsFacts } from '../../../core/tls/facts.js'
import { buildSniIndex } from '../../../core/tls/sni-index.js'

const rules = (skip: string[] = []): ClientRules => ({ ca: 'CA', depth: 1, skip: skip.map((p) => new RegExp(p)) })
const facts = (o: Partial<TlsFacts> = {}): TlsFacts => ({
  sni: 'mtls.test',
  matchSni: 'mtls.test',
  sslId: '1',
  protocol: 'TLSv1.3',
  clientCert: undefined,
  verify: 'NONE',
  client: undefined,
  ...o,
})
const mtlsHosts = new Set(['mtls.test', 'other-mtls.test', 'a.wild.test', 'b.wild.test'])
const hasRules = (h: string): boolean => mtlsHosts.has(h)

type Case = [name: string, facts: TlsFacts | undefined, path: string, host: string, want: string]
const cases: Case[] = [
  ['plain HTTP (no facts) → passes whatever the host', undefined, '/api', 'mtls.test', 'ok'],
  ['object without client, host without rules → passes', facts({ sni: 'open.test', matchSni: 'open.test' }), '/', 'x.com', 'ok'],
  ['skip mode, no certificate, whitelisted path → passes', facts({ client: rules(['^/public/']) }), '/public/x', 'mtls.test', 'ok'],
  ['skip mode, no certificate, other path → 400 not present', facts({ client: rules(['^/public/']) }), '/api', 'mtls.test', 'no_certificate:client certificate was not present'],
  ['skip mode, untrusted certificate, other path → 400 with the verify value', facts({ client: rules(['^/public/']), verify: 'FAILED:self-signed certificate' }), '/api', 'mtls.test', 'untrusted:client certificate verification is not passed: FAILED:self-signed certificate'],
  ['skip mode, expired certificate → expired', facts({ client: rules(['^/public/']), verify: 'FAILED:certificate has expired' }), '/api', 'mtls.test', 'expired:client certificate verification is not passed: FAILED:certificate has expired'],
  ['skip mode, chain too long → depth', facts({ client: rules(['^/public/']), verify: 'FAILED:certificate chain too long' }), '/api', 'mtls.test', 'depth:client certificate verification is not passed: FAILED:certificate chain too long'],
  ['skip mode, verified certificate, other path → passes', facts({ client: rules(['^/public/']), verify: 'SUCCESS' }), '/api', 'mtls.test', 'ok'],
  ['skip regex is an unanchored search', facts({ client: rules(['/hello[0-9]+']) }), '/x/hello12/y', 'mtls.test', 'ok'],
  ['skip regex is case-sensitive', facts({ client: rules(['^/public/']) }), '/PUBLIC/x', 'mtls.test', 'no_certificate:client certificate was not present'],
  ['reject mode (no skip list): the handshake decided, the request passes', facts({ client: rules(), verify: 'SUCCESS' }), '/api', 'mtls.test', 'ok'],
  ['SNI of an open object, Host of an mTLS object → 400', facts({ sni: 'localhost', matchSni: 'localhost' }), '/', 'mtls.test', 'sni_host_mismatch:client certificate verified with SNI localhost, but the host is mtls.test'],
  ['verified under one mTLS SNI, Host of another → 400', facts({ client: rules(), verify: 'SUCCESS' }), '/', 'other-mtls.test', 'sni_host_mismatch:client certificate verified with SNI mtls.test, but the host is other-mtls.test'],
  ['wildcard object: SNI a.wild.test, Host b.wild.test → 400', facts({ sni: 'a.wild.test', matchSni: 'a.wild.test', client: rules(), verify: 'SUCCESS' }), '/', 'b.wild.test', 'sni_host_mismatch:client certificate verified with SNI a.wild.test, but the host is b.wild.test'],
  ['Host compared without case, port or trailing dot', facts({ client: rules(), verify: 'SUCCESS' }), '/', 'MTLS.Test.:9443', 'ok'],
  ['mTLS SNI, Host with no object → passes', facts({ client: rules(), verify: 'SUCCESS' }), '/', 'nobody.test', 'ok'],
  ['no SNI sent: fallback_sni is compared', facts({ sni: undefined, matchSni: 'mtls.test', client: rules(), verify: 'SUCCESS' }), '/', 'mtls.test', 'ok'],
  ['no SNI and no fallback, Host of an mTLS object → 400', facts({ sni: undefined, matchSni: '' }), '/', 'mtls.test', 'sni_host_mismatch:client certificate verified with SNI (none), but the host is mtls.test'],
  ['no Host header → only step A', facts({ client: rules(['^/p']), verify: 'SUCCESS' }), '/x', '', 'ok'],
  ['step A before step B', facts({ sni: 'x', matchSni: 'x', client: rules(['^/p']) }), '/x', 'mtls.test', 'no_certificate:client certificate was not present'],
]

t.test('mtls gate: table of requests', async (t) => {
  for (const [name, f, path, host, want] of cases) {
    const r = mtlsGate(f, path, host, hasRules)
    t.equal(r.ok ? 'ok' : `${r.reason}:${r.error_msg}`, want, name)
    if (!r.ok) t.equal(r.status, 400, `${name}: status 400`)
  }
})

t.test('mtls gate: verifyReason maps nginx verify values to metric reasons', async (t) => {
  const table: [string, string][] = [
    ['NONE', 'no_certificate'],
    ['FAILED:certificate has expired', 'expired'],
    ['FAILED:certificate is not yet valid', 'expired'],
    ['FAILED:certificate chain too long', 'depth'],
    ['FAILED:unable to get local issuer certificate', 'untrusted'],
  ]
  for (const [v, r] of table) t.equal(verifyReason(v), r, v)
})

t.test('mtls gate: hostRulesIn looks the host up in an SNI index (wildcards included)', async (t) => {
  const index = buildSniIndex([
    { id: '1', snis: ['*.strict.test'], updateTime: 0, client: rules() },
    { id: '2', snis: ['open.test'], updateTime: 0, client: undefined },
  ])
  const has = hostRulesIn(index)
  t.equal(has('a.strict.test'), true)
  t.equal(has('open.test'), false)
  t.equal(has('nobody.test'), false)
})
