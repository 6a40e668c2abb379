import t from 'tap'
import { escapeUpstreamUri, proxyRewrite } from '../../../core/plugins/proxy-rewrite.js'
import type { RequestContext } from '../../../core/plugins/types.js'
import { UpstreamEdits } from '../../../core/pipeline/context.js'

t.test('proxy-rewrite: the upstream URI is escaped as nginx escapes a URI', async (t) => {
  const cases: [string, boolean, string][] = [
    ['/a b/c', false, '/a%20b/c'],
    ['/a?b#c%d', false, '/a%3Fb%23c%25d'],
    ['/é', false, '/%C3%A9'],
    ['/x?q=a b&c=\u0001', true, '/x?q=a b&c=%01'],
    ['/plain/path', true, '/plain/path'],
  ]
  for (const [uri, split, want] of cases) t.equal(escapeUpstreamUri(uri, split), want, `${JSON.stringify(uri)} → ${want}`)
})

const ctxFor = (uri: string, query: string, vars: Record<string, string> = {}): RequestContext =>
  ({
    uri,
    query,
    varOf: (n: string) => vars[n],
    upstream: new UpstreamEdits('GET', `${uri}?${query}`, undefined),
  }) as unknown as RequestContext

t.test('proxy-rewrite: uri template, regex_uri, host, method and header edits on the upstream request', async (t) => {
  const run = (conf: Record<string, unknown>, ctx: RequestContext): RequestContext['upstream'] => {
    const c = proxyRewrite.compile({ use_real_request_uri_unsafe: false, ...conf } as never)
    proxyRewrite.rewrite!(c, ctx)
    return ctx.upstream
  }
  t.equal(run({ uri: '/n/$arg_x' }, ctxFor('/o', 'x=1', { arg_x: 'a?b' })).uri, '/n/a%253Fb?x=1', 'a ? from a variable is escaped, then the path')
  t.equal(run({ uri: '/n?fixed=1' }, ctxFor('/o', 'x=1')).uri, '/n?fixed=1&x=1', 'the client query joins with &')
  t.equal(run({ regex_uri: ['^/o/(.*)', '/r/$1'] }, ctxFor('/o/a b', '')).uri, '/r/a%20b')
  t.equal(run({ regex_uri: ['^/zzz', '/r'] }, ctxFor('/o', 'k=v')).uri, '/o?k=v', 'no match: the normalised path')
  const u = run({ host: 'h.example', method: 'PUT', headers: { add: { 'X-A': ['1', '2'] }, set: { 'X-S': '$arg_x', 'X-A': 'set' }, remove: ['X-R'] } }, ctxFor('/o', '', { arg_x: 'v' }))
  t.equal(u.host, 'h.example')
  t.equal(u.method, 'PUT')
  t.same(u.addHeaders, [], 'set replaces added values of the same name')
  t.same([...u.setHeaders], [['x-s', 'v'], ['x-a', 'set']])
  t.same([...u.removeHeaders], ['x-r'])
  const empty = run({ headers: { 'X-Empty': '$arg_missing' } }, ctxFor('/o', ''))
  t.same([...empty.removeHeaders], ['x-empty'], 'a set value that interpolates to nothing removes the header')
})

t.test('proxy-rewrite: check refuses what APISIX refuses', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ use_real_request_uri_unsafe: false }, /at least 1 properties/],
    [{ regex_uri: ['^/a'], use_real_request_uri_unsafe: false }, /even number/],
    [{ regex_uri: ['^/(a', '/b'], use_real_request_uri_unsafe: false }, /invalid regex_uri/],
    [{ headers: { 'bad name': 'v' }, use_real_request_uri_unsafe: false }, /invalid field character/],
    [{ headers: { 'X-A': 'a\nb' }, use_real_request_uri_unsafe: false }, /invalid value character/],
  ]
  for (const [conf, msg] of cases) t.match(proxyRewrite.check!(conf as never), msg, JSON.stringify(conf))
  t.equal(proxyRewrite.check!({ uri: '/x', use_real_request_uri_unsafe: false } as never), undefined)
})
