import t from 'tap'
import { mtlsGate, skipMatch, verifyReason } from '../../../core/tls/mtls-gate.js'
import type { ClientRules, TlsFacts } from '../../../core/tls/facts.js'

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

type Case = [name: string, facts: TlsFacts | undefined, path: string, want: string]
const cases: Case[] = [
  ['plain HTTP (no facts) → passes', undefined, '/api', 'ok'],
  ['object without client → passes', facts({ sni: 'open.test', matchSni: 'open.test' }), '/', 'ok'],
  ['skip mode, no certificate, whitelisted path → passes', facts({ client: rules(['^/public/']) }), '/public/x', 'ok'],
  ['skip mode, no certificate, other path → 400 not present', facts({ client: rules(['^/public/']) }), '/api', 'no_certificate:client certificate was not present'],
  ['skip mode, untrusted certificate, other path → 400 with the verify value', facts({ client: rules(['^/public/']), verify: 'FAILED:self-signed certificate' }), '/api', 'untrusted:client certificate verification is not passed: FAILED:self-signed certificate'],
  ['skip mode, expired certificate → expired', facts({ client: rules(['^/public/']), verify: 'FAILED:certificate has expired' }), '/api', 'expired:client certificate verification is not passed: FAILED:certificate has expired'],
  ['skip mode, chain too long → depth', facts({ client: rules(['^/public/']), verify: 'FAILED:certificate chain too long' }), '/api', 'depth:client certificate verification is not passed: FAILED:certificate chain too long'],
  ['skip mode, verified certificate, other path → passes', facts({ client: rules(['^/public/']), verify: 'SUCCESS' }), '/api', 'ok'],
  ['skip regex is an unanchored search', facts({ client: rules(['/hello[0-9]+']) }), '/x/hello12/y', 'ok'],
  ['skip regex is case-sensitive', facts({ client: rules(['^/public/']) }), '/PUBLIC/x', 'no_certificate:client certificate was not present'],
  ['reject mode (no skip list): the handshake decided, the request passes', facts({ client: rules(), verify: 'SUCCESS' }), '/api', 'ok'],
]

t.test('mtls gate: table of requests', async (t) => {
  for (const [name, f, path, want] of cases) {
    const r = mtlsGate(f, path, path)
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

t.test('mtls gate: a whitelisted path that a common server reads differently → 400 naming why', async (t) => {
  const f = facts({ client: rules(['^/public/']) })
  const r = mtlsGate(f, '/public/..;/private', '/public/..;/private')
  t.equal(r.ok ? 'ok' : r.error_msg, 'client certificate was not present (the path holds path parameters (";"), which some servers read as another path: it is never whitelisted)')
  const untrusted = mtlsGate(facts({ client: rules(['^/public/']), verify: 'FAILED:self-signed certificate' }), '/public/a\\b', '/public/a%5cb')
  t.match(untrusted.ok ? 'ok' : untrusted.error_msg, /^client certificate verification is not passed: FAILED:self-signed certificate \(the path holds a backslash/)
  t.equal(mtlsGate(facts({ client: rules(['^/public/']), verify: 'SUCCESS' }), '/public/..;/private', '/public/..;/private').ok, true, 'a verified client: not the gate\'s concern')
  t.equal(skipMatch(f.client, '/public/x', '/public/x')?.source, '^\\/public\\/', 'skipMatch: the pattern')
  t.equal(skipMatch(f.client, '/public/..;/x', '/public/..;/x'), undefined, 'skipMatch: none for an ambiguous path')
})
