import t from 'tap'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { httpGet } from '../lib/tls-client.js'
import { putRoute } from '../lib/routes.js'
import { rawRequest } from '../lib/raw-http.js'

t.test('proxy-rewrite through a real gateway', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t, 'pr')
  const upstream = { nodes: { [echo.hostPort]: 1 } }
  const route = (id: string, uri: string, conf: Record<string, unknown>, probe: string, extra: Record<string, unknown> = {}): Promise<unknown> =>
    putRoute(admin, gw.http, id, { uri, upstream, plugins: { 'proxy-rewrite': conf }, ...extra }, { path: probe })

  t.test('uri with variables; the client query is appended; a ? from a variable is escaped', async (t) => {
    await route('u', '/u/*', { uri: '/new/$arg_name/${http_x_tag ?? none}' }, '/u/x')
    const cases: [string, Record<string, string>, string][] = [
      ['/u/a?name=joe', {}, '/new/joe/none?name=joe'],
      // the variable's ? is escaped to %3F, then the path is escaped as nginx does (% → %25)
      ['/u/a?name=j%3Fo', { 'x-tag': 't' }, '/new/j%253Fo/t?name=j%3Fo'],
      ['/u/a', {}, '/new//none'],
    ]
    for (const [path, headers, want] of cases) {
      const r = await httpGet(gw.http, path, { headers })
      t.equal(r.json.url, want, `${path} → ${want}`)
    }
  })

  t.test('regex_uri: first matching pair, captures in the URI and in header values', async (t) => {
    await route('re', '/re/*', { regex_uri: ['^/re/(\\w+)/(\\d+)$', '/v2/$2/$1', '^/re/(.*)', '/fallback/$1'], headers: { set: { 'x-cap': 'c=$1,${2}' } } }, '/re/x')
    let r = await httpGet(gw.http, '/re/item/42?k=v')
    t.equal(r.json.url, '/v2/42/item?k=v')
    t.equal(r.json.headers['x-cap'], 'c=item,42')
    r = await httpGet(gw.http, '/re/other/path')
    t.equal(r.json.url, '/fallback/other/path')
    t.equal(r.json.headers['x-cap'], 'c=other/path,', 'a group that does not exist reads as empty')
  })

  t.test('without uri or regex_uri the normalised path goes upstream, re-escaped as nginx does', async (t) => {
    await route('esc', '/esc/*', { headers: { set: { 'x-a': '1' } } }, '/esc/x')
    const r = await rawRequest(gw.http, 'GET /esc/a%20b/./c//d%3Fe?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(JSON.parse(r.body).url, '/esc/a%20b/c/d%3Fe?q=1')
  })

  t.test('host sets the upstream Host; method replaces the method', async (t) => {
    await route('h', '/h', { host: 'internal.example:8081', method: 'POST' }, '/h')
    const r = await httpGet(gw.http, '/h', { headers: { host: 'public.example' } })
    t.equal(r.json.headers.host, 'internal.example:8081')
    t.equal(r.json.method, 'POST')
    t.equal(r.json.headers['x-forwarded-host'], 'public.example', 'X-Forwarded-Host keeps the client Host')
  })

  t.test('headers: add appends, set replaces (arrays make several lines), remove wins over both', async (t) => {
    await route('hd', '/hd', { headers: { add: { 'x-add': ['a1', 'a2'], 'x-both': 'added' }, set: { 'x-set': 'S', 'x-both': 'set', 'x-multi': ['m1', 'm2'], 'x-gone': 'no' }, remove: ['x-gone', 'x-drop'] } }, '/hd')
    const r = await httpGet(gw.http, '/hd', { headers: { 'x-add': 'client', 'x-set': 'client', 'x-drop': 'client', 'x-keep': 'k' } })
    const h = r.json.headers
    t.equal(h['x-add'], 'client, a1, a2')
    t.equal(h['x-set'], 'S')
    t.equal(h['x-both'], 'set')
    t.equal(h['x-multi'], 'm1, m2')
    t.equal(h['x-gone'], undefined)
    t.equal(h['x-drop'], undefined)
    t.equal(h['x-keep'], 'k')
  })

  t.test('the legacy flat header form sets; numbers are written as text; $remote_addr, $host, $scheme, $request_uri, $route_id', async (t) => {
    await route('lg', '/lg', { headers: { 'X-Num': 7, 'X-Vars': '$remote_addr|$host|$scheme|$request_uri|$route_id|$server_port|$cookie_sid' } }, '/lg')
    const r = await httpGet(gw.http, '/lg?z=1', { headers: { host: 'Vars.Example:99', cookie: 'a=1; sid=s2' } })
    t.equal(r.json.headers['x-num'], '7')
    t.equal(r.json.headers['x-vars'], `127.0.0.1|vars.example|http|/lg?z=1|lg|${gw.http}|s2`)
  })

  t.test('use_real_request_uri_unsafe sends the raw target', async (t) => {
    await route('real', '/real/*', { use_real_request_uri_unsafe: true }, '/real/x')
    const r = await rawRequest(gw.http, 'GET /real/a%2Fb/../c?x=%20 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(JSON.parse(r.body).url, '/real/a%2Fb/../c?x=%20')
  })

  t.test('the admin refuses bad confs with APISIX messages', async (t) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /proxy-rewrite/],
      [{ regex_uri: ['^/a', '/b', '^/c'] }, /even number/],
      [{ regex_uri: ['^/(?=a)', '/b'] }, /regex_uri/],
      [{ uri: 'no-slash' }, /uri/],
    ]
    for (const [conf, msg] of cases) {
      const r = await admin.put('routes/bad', { uri: '/bad', upstream, plugins: { 'proxy-rewrite': conf } })
      t.equal(r.status, 400, JSON.stringify(conf))
      t.match(r.json?.error_msg, msg)
    }
  })
})
