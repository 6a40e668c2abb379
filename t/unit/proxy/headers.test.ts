import t from 'tap'
import { finishUpstreamHeaders, forwardableHeaders, responseHeaderList, stripResponseHeaders, upstreamHostFor } from '../../../core/proxy/headers.js'
import type { ForwardFacts } from '../../../core/proxy/headers.js'

const facts = (o: Partial<ForwardFacts> = {}): ForwardFacts => ({
  upstreamHost: 'api.test:8080',
  remoteAddr: '10.0.0.9',
  scheme: 'https',
  hostHeader: 'api.test:8443',
  host: 'api.test',
  serverPort: 9443,
  ...o,
})

/** Flat [k, v, …] → an object of lower-cased names (values of repeated names joined by '|'). */
const asObject = (flat: readonly string[]): Record<string, string> => {
  const o: Record<string, string> = {}
  for (let i = 0; i < flat.length; i += 2) {
    const k = flat[i]!.toLowerCase()
    o[k] = o[k] === undefined ? flat[i + 1]! : `${o[k]}|${flat[i + 1]!}`
  }
  return o
}

t.test('forwardable headers: hop-by-hop and Connection-listed names dropped', async (t) => {
  const cases: [string, string[], boolean, string[], string | undefined][] = [
    ['plain headers pass in order', ['Accept', '*/*', 'X-A', '1', 'X-A', '2'], false, ['Accept', 'X-A', 'X-A'], undefined],
    ['fixed hop-by-hop set', ['Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'x', 'TE', 'trailers', 'Trailer', 'X', 'Transfer-Encoding', 'chunked', 'Expect', '100-continue', 'Accept', '*/*'], false, ['Accept'], undefined],
    ['names listed in Connection', ['Connection', 'close, X-Secret', 'X-Secret', 's', 'X-Other', 'o'], false, ['X-Other'], undefined],
    ['several Connection headers, odd spacing and case', ['Connection', ' x-a ,', 'connection', 'X-B', 'X-A', '1', 'X-B', '2', 'X-C', '3'], false, ['X-C'], undefined],
    ['Content-Length is never stripped through Connection', ['Connection', 'Content-Length', 'Content-Length', '5'], false, ['Content-Length'], undefined],
    ['Upgrade without websocket is dropped', ['Connection', 'Upgrade', 'Upgrade', 'websocket'], false, [], undefined],
    ['Upgrade with websocket is handed over separately', ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'], true, ['Sec-WebSocket-Key'], 'websocket'],
    ['Upgrade not named in Connection is no upgrade', ['Upgrade', 'websocket'], true, [], undefined],
    ['gateway-owned names are kept here (they feed X-Forwarded-For)', ['Host', 'a', 'X-Forwarded-For', '1.1.1.1'], false, ['Host', 'X-Forwarded-For'], undefined],
  ]
  for (const [name, raw, ws, wantNames, wantUpgrade] of cases) {
    const f = forwardableHeaders(raw, ws)
    t.same(f.list.filter((_, i) => i % 2 === 0), wantNames, `${name} → ${wantNames.join(', ') || 'none'}`)
    t.equal(f.upgrade, wantUpgrade, `${name} → upgrade ${wantUpgrade ?? 'none'}`)
  }
})

t.test('forwardable headers: a list with nothing to drop is the client\'s own (no copy), one with something is a new list', async (t) => {
  const raw = ['host', 'a.test', 'accept', '*/*', 'x-a', '1']
  t.equal(forwardableHeaders(raw, false).list, raw, 'the same array')
  const hop = ['host', 'a.test', 'te', 'trailers', 'x-a', '1']
  const f = forwardableHeaders(hop, false)
  t.not(f.list, hop, 'a new array')
  t.same(f.list, ['host', 'a.test', 'x-a', '1'])
  t.same(hop, ['host', 'a.test', 'te', 'trailers', 'x-a', '1'], 'the client\'s list is left as it was')
})

t.test('upstream headers: X-Forwarded-* and X-Real-IP as APISIX sets them', async (t) => {
  const cases: [string, string[], Partial<ForwardFacts>, Record<string, string>][] = [
    ['no client forwarding headers', ['Host', 'api.test:8443'], {}, {
      'host': 'api.test:8080', 'x-real-ip': '10.0.0.9', 'x-forwarded-for': '10.0.0.9', 'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.test:8443', 'x-forwarded-port': '8443',
    }],
    ['client XFF is appended to', ['X-Forwarded-For', '1.1.1.1, 2.2.2.2'], {}, { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 10.0.0.9' }],
    ['several client XFF headers are joined', ['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2'], {}, { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 10.0.0.9' }],
    ['untrusted peer: client XFF dropped', ['X-Forwarded-For', '1.1.1.1'], { trustedPeer: false }, { 'x-forwarded-for': '10.0.0.9' }],
    ['client X-Forwarded-Proto/Host/Port/X-Real-IP are overwritten', ['X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'evil', 'X-Forwarded-Port', '1', 'X-Real-IP', '6.6.6.6'], {}, {
      'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.test:8443', 'x-forwarded-port': '8443', 'x-real-ip': '10.0.0.9',
    }],
    ['trusted peer: its X-Forwarded-Proto/Host/Port are kept', ['X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'front', 'X-Forwarded-Port', '80'], { trustedPeer: true }, {
      'x-forwarded-proto': 'http', 'x-forwarded-host': 'front', 'x-forwarded-port': '80',
    }],
    ['Forwarded is removed', ['Forwarded', 'for=1.1.1.1'], {}, {}],
    ['no port in Host → the listener port', [], { hostHeader: 'api.test' }, { 'x-forwarded-port': '9443', 'x-forwarded-host': 'api.test' }],
    ['empty Host header → $host', [], { hostHeader: '' }, { 'x-forwarded-host': 'api.test', 'x-forwarded-port': '9443' }],
    ['IPv6 Host with port', [], { hostHeader: '[::1]:8443' }, { 'x-forwarded-port': '8443' }],
    ['plain http', [], { scheme: 'http' }, { 'x-forwarded-proto': 'http' }],
  ]
  for (const [name, raw, f, want] of cases) {
    const flat = finishUpstreamHeaders(forwardableHeaders(raw, false).list, facts(f))
    const got = asObject(flat)
    for (const [k, v] of Object.entries(want)) t.equal(got[k], v, `${name}: ${k} → ${v}`)
    t.equal(got['forwarded'], undefined, `${name}: no Forwarded header`)
    t.equal(flat[0], 'Host', `${name}: Host first`)
    t.equal(flat.filter((x, i) => i % 2 === 0 && x.toLowerCase() === 'host').length, 1, `${name}: exactly one Host`)
  }
})

t.test('upstream headers: a header set by a plugin survives the client naming it in Connection', async (t) => {
  const f = forwardableHeaders(['Connection', 'X-Client-Serial, X-Forwarded-For', 'X-Client-Serial', 'forged'], false)
  t.same(f.list, [], 'the forged header is gone before plugins run')
  const got = asObject(finishUpstreamHeaders([...f.list, 'X-Client-Serial', 'ABCD'], facts())) // what proxy-rewrite would set
  t.equal(got['x-client-serial'], 'ABCD')
  t.equal(got['x-forwarded-for'], '10.0.0.9')
})

t.test('upstream host: pass_host pass / node / rewrite', async (t) => {
  const base = { hostHeader: 'Client.Test:8443', host: 'client.test', node: { host: '10.0.0.1', port: 8080 }, scheme: 'http' }
  const cases: [string, Parameters<typeof upstreamHostFor>[0], string][] = [
    ['pass: the client Host header verbatim', { ...base, passHost: 'pass' }, 'Client.Test:8443'],
    ['pass by default', { ...base, passHost: undefined }, 'Client.Test:8443'],
    ['pass: no Host header → $host', { ...base, passHost: 'pass', hostHeader: '' }, 'client.test'],
    ['pass: proxy-rewrite host wins', { ...base, passHost: 'pass', rewrittenHost: 'new.test' }, 'new.test'],
    ['node: node host and port', { ...base, passHost: 'node' }, '10.0.0.1:8080'],
    ['node: default http port omitted', { ...base, passHost: 'node', node: { host: 'svc.local', port: 80 } }, 'svc.local'],
    ['node: default https port omitted', { ...base, passHost: 'node', scheme: 'https', node: { host: 'svc.local', port: 443 } }, 'svc.local'],
    ['node: port 443 over http is kept', { ...base, passHost: 'node', node: { host: 'svc.local', port: 443 } }, 'svc.local:443'],
    ['node: IPv6 literal bracketed', { ...base, passHost: 'node', node: { host: '::1', port: 8080 } }, '[::1]:8080'],
    ['node: proxy-rewrite host is overridden', { ...base, passHost: 'node', rewrittenHost: 'new.test' }, '10.0.0.1:8080'],
    ['rewrite: upstream_host', { ...base, passHost: 'rewrite', upstreamHost: 'up.test', rewrittenHost: 'new.test' }, 'up.test'],
  ]
  for (const [name, input, want] of cases) t.equal(upstreamHostFor(input), want, `${name} → ${want}`)
})

t.test('response headers: hop-by-hop and Connection-listed names stripped', async (t) => {
  const got = stripResponseHeaders({
    'connection': 'keep-alive, x-internal',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'x-internal': 'secret',
    'upgrade': 'h2c',
    'trailer': 'x-t',
    'content-type': 'text/plain',
    'set-cookie': ['a=1', 'b=2'],
    'x-gone': undefined,
  })
  t.same(got, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] })
})

t.test('responseHeaderList: hop-by-hop, Connection-listed and Server dropped; order and repeats kept; 5xx adds X-APISIX-Upstream-Status', async (t) => {
  const raw = ['Connection', 'x-hop', 'X-Hop', '1', 'Set-Cookie', 'a=1', 'Keep-Alive', 'timeout=5', 'Set-Cookie', 'b=2', 'Server', 'up', 'Transfer-Encoding', 'chunked'].map((s) => Buffer.from(s))
  t.same(responseHeaderList(raw, 200), ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Server', 'APISIX'])
  t.same(responseHeaderList([], 502), ['Server', 'APISIX', 'X-APISIX-Upstream-Status', '502'])
  const late = ['X-Hop', '1', 'Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop'].map((s) => Buffer.from(s))
  t.same(responseHeaderList(late, 200), ['Content-Type', 'text/plain', 'Server', 'APISIX'], 'a name listed by a Connection header after it is dropped too')
  const plain = ['Content-Type', 'text/plain', 'Connection', 'keep-alive', 'Content-Length', '3'].map((s) => Buffer.from(s))
  t.same(responseHeaderList(plain, 200), ['Content-Type', 'text/plain', 'Content-Length', '3', 'Server', 'APISIX'])
})

t.test('responseHeaderList for HTTP/2: the same list with lower-cased names', async (t) => {
  const raw = ['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'].map((s) => Buffer.from(s))
  t.same(responseHeaderList(raw, 503, true), ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'server', 'APISIX', 'x-apisix-upstream-status', '503'])
})
