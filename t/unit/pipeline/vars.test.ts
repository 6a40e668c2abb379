import t from 'tap'
import { parseCookies, readVar, type VarSource } from '../../../core/pipeline/vars.js'

const source = (o: Partial<VarSource> = {}): VarSource => {
  const query = o.query ?? 'a=1&b=x%20y&a=2'
  return {
    method: 'GET', uri: '/p/q', query, rawTarget: `/p/./q?${query}`, host: 'example.com', remoteAddr: '10.1.2.3', remotePort: 5555,
    serverAddr: '127.0.0.1', serverPort: 9080, scheme: 'http', headers: { 'x-foo-bar': 'v', cookie: 'sid=abc; x=1' },
    routeId: 'r1', routeName: 'name', consumerName: undefined, sni: undefined, tlsProtocol: undefined, clientCert: undefined,
    clientVerify: 'NONE', nowMs: 0, args: () => new URLSearchParams(query), cookies: () => parseCookies('sid=abc; x=1; sid=zzz'),
    ...o,
  }
}

t.test('vars: nginx and APISIX variables of a plain request', async (t) => {
  const cases: [string, string | undefined][] = [
    ['uri', '/p/q'], ['request_uri', '/p/q?a=1&b=x%20y&a=2'], ['real_request_uri', '/p/./q?a=1&b=x%20y&a=2'], ['args', 'a=1&b=x%20y&a=2'],
    ['is_args', '?'], ['host', 'example.com'], ['remote_addr', '10.1.2.3'], ['remote_port', '5555'], ['server_port', '9080'],
    ['scheme', 'http'], ['https', ''], ['http_x_foo_bar', 'v'], ['http_missing', undefined], ['arg_a', '1'], ['arg_b', 'x y'],
    ['arg_none', undefined], ['cookie_sid', 'abc'], ['cookie_none', undefined], ['route_id', 'r1'], ['consumer_name', undefined],
    ['ssl_server_name', ''], ['ssl_client_verify', 'NONE'], ['ssl_client_fingerprint', ''], ['ssl_client_s_dn', ''], ['unknown_var', undefined],
  ]
  const s = source()
  for (const [name, want] of cases) t.equal(readVar(s, name), want, `$${name} → ${String(want)}`)
  t.equal(readVar(source({ query: '' }), 'is_args'), '')
  t.equal(readVar(source({ query: '' }), 'request_uri'), '/p/q')
})

t.test('vars: cookies: first value of a name wins, spaces trimmed, pairs without = ignored', async (t) => {
  t.same([...parseCookies(' a=1;b = 2 ; junk; a=3')], [['a', '1'], ['b', '2']])
  t.same([...parseCookies(undefined)], [])
})
