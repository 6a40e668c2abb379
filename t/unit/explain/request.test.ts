import t from 'tap'
import { decodeExplainRequest } from '../../../core/explain/request.js'

t.test('explain request: defaults from CONTRACT.md', async (t) => {
  t.same(decodeExplainRequest({ uri: '/a?b' }), {
    ok: true,
    value: { sni: undefined, host: undefined, uri: '/a?b', method: 'GET', scheme: 'https', clientCert: undefined, remoteAddr: '127.0.0.1' },
  })
  t.match(decodeExplainRequest({ uri: '/', sni: 'a.com' }), { ok: true, value: { sni: 'a.com', host: 'a.com' } }, 'host defaults to the SNI')
  t.match(decodeExplainRequest({ uri: '/', sni: 'a.com', host: 'b.com:8443', method: 'POST', scheme: 'http', remote_addr: '::1' }), {
    ok: true,
    value: { host: 'b.com:8443', method: 'POST', scheme: 'http', remoteAddr: '::1' },
  })
})

t.test('explain request: every refusal names its field', async (t) => {
  const cases: [unknown, RegExp][] = [
    [null, /JSON object/],
    ['x', /JSON object/],
    [{}, /"uri" is required/],
    [{ uri: '' }, /"uri"/],
    [{ uri: '/a b' }, /"uri"/],
    [{ uri: '/', sni: 5 }, /"sni" must be a string/],
    [{ uri: '/', sni: 'a/b' }, /"sni"/],
    [{ uri: '/', host: [] }, /"host" must be a string/],
    [{ uri: '/', method: '' }, /"method"/],
    [{ uri: '/', scheme: 'HTTPS' }, /"scheme"/],
    [{ uri: '/', client_cert: 'abc' }, /"client_cert"/],
    [{ uri: '/', remote_addr: 'a b' }, /"remote_addr"/],
    [{ uri: '/', port: 1 }, /found port/],
  ]
  for (const [body, msg] of cases) {
    const r = decodeExplainRequest(body)
    t.equal(r.ok, false, JSON.stringify(body))
    if (!r.ok) t.match(r.error, msg)
  }
})
