import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startEtcd } from '../lib/etcd.js'
import { startGateway } from '../lib/gateway.js'
import { adminOf } from '../lib/admin.js'
import { startEcho } from '../lib/echo.js'
import { httpGet } from '../lib/tls-client.js'
import { putRoute } from '../lib/routes.js'
import { freePort } from '../lib/ports.js'
import { rawRequest } from '../lib/raw-http.js'

t.test('proxy: requests reach real upstreams through a real gateway', async (t) => {
  const etcd = await startEtcd(t)
  const gw = await startGateway(t, { etcd: etcd.url })
  const admin = adminOf(gw)
  const echo = await startEcho(t, 'a')

  t.test('a matched route is proxied with the client path, query and headers, plus X-Forwarded-*', async (t) => {
    await putRoute(admin, gw.http, 'basic', { uri: '/basic/*', upstream: { nodes: { [echo.hostPort]: 1 } } }, { path: '/basic/x' })
    const r = await httpGet(gw.http, '/basic/a%20b?x=1&y=%41', { headers: { 'x-custom': 'v', 'x-forwarded-for': '10.0.0.9', host: 'Example.COM:8080' } })
    t.equal(r.status, 200, r.text)
    t.equal(r.json.url, '/basic/a%20b?x=1&y=%41', 'the path and query as sent')
    t.equal(r.json.headers['x-custom'], 'v')
    t.equal(r.json.headers.host, 'Example.COM:8080', 'pass_host pass: the client Host verbatim')
    t.equal(r.json.headers['x-real-ip'], '127.0.0.1')
    t.equal(r.json.headers['x-forwarded-for'], '10.0.0.9, 127.0.0.1')
    t.equal(r.json.headers['x-forwarded-proto'], 'http')
    t.equal(r.json.headers['x-forwarded-host'], 'Example.COM:8080')
    t.equal(r.json.headers['x-forwarded-port'], '8080')
    t.equal(r.headers['server'], 'APISIX', 'the gateway names itself')
    t.equal(r.headers['x-upstream'], 'a', 'upstream response headers come back')
  })

  t.test('without proxy-rewrite the raw request target goes upstream; the normalised path is what is routed', async (t) => {
    const r = await rawRequest(gw.http, 'GET /other/../basic/%2e%2e/basic/x//y?q=%2F HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(r.status, 200, r.raw)
    t.equal(JSON.parse(r.body).url, '/other/../basic/%2e%2e/basic/x//y?q=%2F')
    const out = await rawRequest(gw.http, 'GET /basic/../other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(out.status, 404, 'a path that leaves /basic/ after normalisation is not routed there')
  })

  t.test('no route → 404 {"error_msg":"404 Route Not Found"}', async (t) => {
    const r = await httpGet(gw.http, '/nothing/here')
    t.equal(r.status, 404)
    t.same(r.json, { error_msg: '404 Route Not Found' })
  })

  t.test('connection refused → 502 with X-APISIX-Upstream-Status', async (t) => {
    const dead = await freePort()
    const r = await putRoute(admin, gw.http, 'refused', { uri: '/refused', upstream: { nodes: { [`127.0.0.1:${dead}`]: 1 } } }, { path: '/refused' })
    t.equal(r.status, 502)
    t.match(r.json, { error_msg: /502/ })
    t.equal(r.headers['x-apisix-upstream-status'], '502')
  })

  t.test('an upstream slower than the read timeout → 504', async (t) => {
    const slow: Server = createServer(() => undefined) // never answers
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
    t.teardown(() => new Promise<void>((r) => { slow.closeAllConnections(); slow.close(() => r()) }))
    const port = (slow.address() as AddressInfo).port
    const started = Date.now()
    const r = await putRoute(admin, gw.http, 'slow', { uri: '/slow', timeout: { connect: 1, send: 1, read: 0.3 }, upstream: { nodes: { [`127.0.0.1:${port}`]: 1 } } }, { path: '/slow' })
    t.equal(r.status, 504)
    t.ok(Date.now() - started < 8000, 'answered after the read timeout, not 60 s')
  })

  t.test('an upstream whose nodes all weigh 0 → 503', async (t) => {
    const r = await putRoute(admin, gw.http, 'zero', { uri: '/zero', upstream: { nodes: [{ host: '127.0.0.1', port: echo.port, weight: 0 }, { host: '127.0.0.2', port: echo.port, weight: 0 }] } }, { path: '/zero' })
    t.equal(r.status, 503)
  })
})
