import t from 'tap'
import { parseHead } from '../../../core/server/fast-http.js'

t.test('parseHead: plain bodiless HTTP/1.1 requests are in the subset', async (t) => {
  const h = parseHead('GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Multi:  a b \t\r\nContent-Length: 0\r\nConnection: Keep-Alive')
  t.ok(h)
  t.equal(h!.method, 'GET')
  t.equal(h!.url, '/a/b?x=1')
  t.same(h!.headers, { host: 'example.com', 'x-multi': 'a b', 'content-length': '0', connection: 'Keep-Alive' }, 'names lower-cased, values trimmed of spaces and tabs')
  t.same(h!.rawHeaders, ['Host', 'example.com', 'X-Multi', 'a b', 'Content-Length', '0', 'Connection', 'Keep-Alive'], 'raw names as sent')
  t.same(parseHead('DELETE / HTTP/1.1')?.headers, {}, 'no header at all')
  t.equal(parseHead('GET / HTTP/1.1\r\nX-Latin: caf\xe9')?.headers['x-latin'], 'caf\xe9', 'obs-text bytes pass')
})

t.test('parseHead: everything else is left to Node\'s server', async (t) => {
  const out: [string, string][] = [
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0'],
    ['unknown method', 'BREW / HTTP/1.1'],
    ['lower-case method', 'get / HTTP/1.1'],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1'],
    ['absolute-form', 'GET http://a/ HTTP/1.1'],
    ['asterisk-form', 'OPTIONS * HTTP/1.1'],
    ['space in the target', 'GET /a b HTTP/1.1'],
    ['control byte in the target', 'GET /a\x01 HTTP/1.1'],
    ['extra space', 'GET  / HTTP/1.1'],
    ['version suffix', 'GET / HTTP/1.11'],
    ['a body', 'POST / HTTP/1.1\r\nContent-Length: 5'],
    ['Transfer-Encoding', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked'],
    ['Upgrade', 'GET / HTTP/1.1\r\nUpgrade: websocket'],
    ['Expect', 'GET / HTTP/1.1\r\nExpect: 100-continue'],
    ['Connection: close', 'GET / HTTP/1.1\r\nConnection: close'],
    ['Connection listing names', 'GET / HTTP/1.1\r\nConnection: keep-alive, x-a'],
    ['a repeated header', 'GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2'],
    ['__proto__', 'GET / HTTP/1.1\r\n__proto__: x'],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a'],
    ['no colon', 'GET / HTTP/1.1\r\nHost'],
    ['empty name', 'GET / HTTP/1.1\r\n: a'],
    ['obs-fold', 'GET / HTTP/1.1\r\nX-A: 1\r\n  2'],
    ['bare LF in a value', 'GET / HTTP/1.1\r\nX-A: 1\nX-B: 2'],
    ['NUL in a value', 'GET / HTTP/1.1\r\nX-A: 1\x002'],
    ['DEL in a value', 'GET / HTTP/1.1\r\nX-A: 1\x7f'],
  ]
  for (const [what, text] of out) t.equal(parseHead(text), undefined, what)
})
