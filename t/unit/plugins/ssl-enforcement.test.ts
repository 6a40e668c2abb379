import t from 'tap'
import { checkPlugins } from '../../../core/resources/plugins.js'
import { pluginByName } from '../../../core/plugins/registry.js'
import {
  checkSslEnforcement,
  compileSslEnforcement,
  runSslEnforcement,
  warnSslEnforcement,
} from '../../../core/plugins/ssl-enforcement.js'
import { issue, makeCa } from '../../lib/certs.js'
import { clientCertOf, makeCtx } from './ctx.js'

type Conf = Parameters<typeof compileSslEnforcement>[0]
const conf = (c: Partial<Conf>): Conf => ({ requiresSsl: true, requiresClientAuthentication: false, ...c })
const run = (c: Partial<Conf>, ctx: Parameters<typeof runSslEnforcement>[1]) => runSslEnforcement(compileSslEnforcement(conf(c)), ctx)

const ca = makeCa('Enforcement CA')
const alice = issue(ca, { subject: [{ shortName: 'CN', value: 'alice.acme.com' }, { shortName: 'O', value: 'Acme' }, { shortName: 'C', value: 'FR' }] })
const aliceTls = clientCertOf(alice)

t.test('ssl-enforcement: each refusal → its status, key and Gravitee message', async (t) => {
  const cases: [string, Partial<Conf>, ReturnType<typeof makeCtx>, number | undefined, Record<string, unknown> | undefined][] = [
    ['plain HTTP, requiresSsl default', {}, makeCtx({ secure: false }), 403, { key: 'SSL_ENFORCEMENT_SSL_REQUIRED', error_msg: 'Access to the resource requires SSL certificate.' }],
    ['plain HTTP, requiresSsl false', { requiresSsl: false }, makeCtx({ secure: false }), undefined, undefined],
    ['TLS, nothing more asked', {}, makeCtx(), undefined, undefined],
    ['TLS without a certificate, client auth required', { requiresClientAuthentication: true }, makeCtx(), 401, { key: 'SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED', error_msg: 'Unauthorized' }],
    ['TLS with an unverified certificate, client auth required', { requiresClientAuthentication: true }, makeCtx({ clientCert: clientCertOf(alice, { verified: false }) }), 401, { key: 'SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED' }],
    ['TLS with a verified certificate, client auth required', { requiresClientAuthentication: true }, makeCtx({ clientCert: aliceTls }), undefined, undefined],
    ['a trusted proxy\'s certificate over plain HTTP, requiresSsl false', { requiresSsl: false, requiresClientAuthentication: true }, makeCtx({ secure: false, clientCert: clientCertOf(alice, { source: 'header' }) }), undefined, undefined],
    ['subject outside the list', { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=bob,O=Acme,C=FR'] }, makeCtx({ clientCert: aliceTls }), 403, { key: 'SSL_ENFORCEMENT_CLIENT_FORBIDDEN', name: 'C=FR,O=Acme,CN=alice.acme.com', error_msg: "You're not allowed to access this resource" }],
    ['subject on the list', { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=bob', 'CN=*.acme.com,O=Acme,C=??'] }, makeCtx({ clientCert: aliceTls }), undefined, undefined],
    ['list without requiresClientAuthentication (as in Gravitee) → ignored', { whitelistClientCertificates: ['CN=bob'] }, makeCtx({ clientCert: aliceTls }), undefined, undefined],
    ['an empty list (as Gravitee\'s UI saves it) → any certificate', { requiresClientAuthentication: true, whitelistClientCertificates: [] }, makeCtx({ clientCert: aliceTls }), undefined, undefined],
  ]
  for (const [name, c, ctx, status, body] of cases) {
    const r = run(c, ctx)
    t.equal(r?.status, status, `${name} → ${status ?? 'passes'}`)
    if (body) t.match(r?.body, body, `${name}: body`)
  }
})

t.test('ssl-enforcement: allow-list patterns against a real subject', async (t) => {
  const cases: [string, boolean][] = [
    ['CN=alice.acme.com,O=Acme,C=FR', true],
    ['C=FR,O=Acme,CN=alice.acme.com', true],
    ['cn=ALICE.acme.com, o = acme , c=fr', true],
    ['CN=*.acme.com,O=Acme,C=??', true],
    ['CN=**,O=Acme,C=FR', true],
    ['CN=alice.acme.co?,O=Acme,C=FR', true],
    ['CN=alice.acme.com,O=Acme', false],
    ['CN=alice.acme.com,C=FR,O=Acme', false],
    ['CN=*.acme.com,O=Acme,C=?', false],
    ['CN=bob.acme.com,O=Acme,C=FR', false],
  ]
  for (const [pattern, allowed] of cases) {
    const r = run({ requiresClientAuthentication: true, whitelistClientCertificates: [pattern] }, makeCtx({ clientCert: aliceTls }))
    t.equal(r === undefined, allowed, `${pattern} → ${allowed ? 'allowed' : '403'}`)
  }
})

t.test('ssl-enforcement: response_templates replace status, body and type; {{name}} is the DN', async (t) => {
  const templates = {
    SSL_ENFORCEMENT_SSL_REQUIRED: { status: 426, body: 'use https', content_type: 'text/plain' },
    SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED: { status: 495 },
    SSL_ENFORCEMENT_CLIENT_FORBIDDEN: { status: 451, body: '{"who":"{{name}}"}' },
  }
  const c = { requiresClientAuthentication: true, whitelistClientCertificates: ['CN=nobody'], response_templates: templates }
  t.same(run(c, makeCtx({ secure: false })), { status: 426, body: 'use https', headers: { 'content-type': 'text/plain' } }, 'a text template as given')
  t.match(run(c, makeCtx()), { status: 495, body: { key: 'SSL_ENFORCEMENT_AUTHENTICATION_REQUIRED' } }, 'status only: the default body with that status')
  const quoted = issue(ca, { subject: [{ shortName: 'CN', value: 'a"b' }] })
  const r = run(c, makeCtx({ clientCert: clientCertOf(quoted) }))
  t.equal(r?.status, 451)
  t.same(JSON.parse(String(r?.body)), { who: 'CN=a\\"b' }, 'the DN is JSON-escaped inside a JSON template')
  t.same(r?.headers, { 'content-type': 'application/json' })
})

t.test('ssl-enforcement: the admin checks patterns and warns about ineffective fields', async (t) => {
  t.equal(checkSslEnforcement(conf({ whitelistClientCertificates: ['CN=a,O=*'] })), undefined)
  t.match(checkSslEnforcement(conf({ whitelistClientCertificates: ['CN=a', 'no equals sign'] })), /^whitelistClientCertificates\[1\]: /)
  t.match(warnSslEnforcement(conf({ whitelistClientCertificates: ['CN=a'] })), /requiresClientAuthentication/)
  t.equal(warnSslEnforcement(conf({ whitelistClientCertificates: ['CN=a'], requiresClientAuthentication: true })), undefined)
  t.match(warnSslEnforcement(conf({ certificateLocation: 'HEADER', certificateHeaderName: 'ssl-client-cert' })), /client_cert_header/)
})

t.test('ssl-enforcement: a Gravitee policy configuration validates unchanged', async (t) => {
  const gravitee = {
    requiresSsl: true,
    requiresClientAuthentication: true,
    certificateLocation: 'SESSION',
    certificateHeaderName: 'ssl-client-cert',
    whitelistClientCertificates: ['CN=localhost,O=GraviteeSource,C=FR'],
  }
  t.equal(checkPlugins({ 'ssl-enforcement': gravitee }, pluginByName, 'route'), undefined, 'SESSION form')
  t.equal(checkPlugins({ 'ssl-enforcement': { ...gravitee, useXForwardedProto: true, certificateLocation: 'HEADER' } }, pluginByName, 'route'), undefined, 'HEADER form')
  t.match(checkPlugins({ 'ssl-enforcement': { ...gravitee, whitelistClientCertificates: ['CN'] } }, pluginByName, 'route'), /whitelistClientCertificates\[0\]/, 'a broken name is refused, naming the entry')
})
