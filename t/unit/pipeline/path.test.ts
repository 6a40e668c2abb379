import t from 'tap'
import { parseTarget } from '../../../core/pipeline/path.js'

t.test('path: targets normalised like nginx $uri', async (t) => {
  const cases: [string, string, string][] = [
    // [target, $uri, $args]
    ['/', '/', ''],
    ['/a/b', '/a/b', ''],
    ['/a/b/', '/a/b/', ''],
    ['/a/b?x=1&y=2', '/a/b', 'x=1&y=2'],
    ['/a?', '/a', ''],
    ['/a?b?c', '/a', 'b?c'],
    ['//x', '/x', ''],
    ['///x//y///', '/x/y/', ''],
    ['/a/./b', '/a/b', ''],
    ['/a/.', '/a/', ''],
    ['/.', '/', ''],
    ['/a/b/..', '/a/', ''],
    ['/a/b/../c', '/a/c', ''],
    ['/a/b/../../c', '/c', ''],
    ['/a/..', '/', ''],
    ['/a//../b', '/b', ''],
    ['/.well-known/x', '/.well-known/x', ''],
    ['/a/.../b', '/a/.../b', ''],
    ['/a/..b/c', '/a/..b/c', ''],
    ['/a/b./c', '/a/b./c', ''],
    // encoding tricks: decoding happens once, before dot segments are resolved
    ['/a/%2e%2e/b', '/b', ''],
    ['/a/%2E%2e/b', '/b', ''],
    ['/a/%2e/b', '/a/b', ''],
    ['/a/.%2e/b', '/b', ''],
    ['/a/%2F..', '/', ''],
    ['/a%2F..%2Fb', '/b', ''],
    ['/a%2f%2fb', '/a/b', ''],
    ['/public%2F..%2Fadmin', '/admin', ''],
    ['/%252e%252e/x', '/%2e%2e/x', ''],
    ['/a%2525', '/a%25', ''],
    ['/a%3Fb?c', '/a?b', 'c'],
    ['/a%23b', '/a#b', ''],
    ['/a#frag', '/a', ''],
    ['/a?x#frag', '/a', 'x'],
    ['/caf%C3%A9', '/café', ''],
    ['/caf%c3%a9', '/café', ''],
    ['/sp%20ace', '/sp ace', ''],
    ['/plus+sign', '/plus+sign', ''],
    ['/a/b%2Fc', '/a/b/c', ''],
    // absolute-form targets (proxy-style requests)
    ['http://a.com/x/../y?q', '/y', 'q'],
    ['https://a.com', '/', ''],
    ['http://a.com?q=1', '/', 'q=1'],
  ]
  for (const [target, path, query] of cases) {
    const r = parseTarget(target)
    t.ok(r.ok, `${target} → accepted`)
    if (r.ok) {
      t.equal(r.path, path, `${target} → $uri ${path}`)
      t.equal(r.query, query, `${target} → $args ${JSON.stringify(query)}`)
    }
  }
})

t.test('path: %2e%2e at the root and other refusals → 400', async (t) => {
  const cases: [string, RegExp][] = [
    ['/%2e%2e/', /above the root/],
    ['/..', /above the root/],
    ['/../a', /above the root/],
    ['/a/../..', /above the root/],
    ['/a/%2e%2e/%2e%2e/etc/passwd', /above the root/],
    ['/%2E%2E%2Fetc', /above the root/],
    ['/a/..%2F..%2F', /above the root/],
    ['/a%zz', /percent-encoding/],
    ['/a%', /percent-encoding/],
    ['/a%4', /percent-encoding/],
    ['/a%%41', /percent-encoding/],
    ['/a%00b', /NUL/],
    ['/a%00', /NUL/],
    ['/a%FF', /UTF-8/],
    ['/a%C3', /UTF-8/],
    ['*', /not a path/],
    ['a.com:443', /not a path/],
    ['', /not a path/],
  ]
  for (const [target, why] of cases) {
    const r = parseTarget(target)
    t.notOk(r.ok, `${JSON.stringify(target)} → refused`)
    if (!r.ok) t.match(r.reason, why, `${JSON.stringify(target)} → ${String(why)}`)
  }
})

t.test('path: rawPath and authority are reported as sent', async (t) => {
  const r = parseTarget('/a/%2e%2e/b?x')
  t.same(r, { ok: true, path: '/b', query: 'x', rawPath: '/a/%2e%2e/b', authority: undefined })
  const abs = parseTarget('http://Example.com:8080/p')
  t.same(abs, { ok: true, path: '/p', query: '', rawPath: '/p', authority: 'Example.com:8080' })
})

t.test('path: raw latin1 bytes from the HTTP parser decode as UTF-8', async (t) => {
  // Node hands raw bytes 0xC3 0xA9 over as the two latin1 characters 'Ã©'
  const r = parseTarget('/caf\u00c3\u00a9')
  t.same(r.ok && r.path, '/café')
  t.same(parseTarget('/caf\u00e9').ok, false, 'a lone latin1 byte is not UTF-8 → refused')
  const wide = parseTarget('/caf\u4e2d')
  t.equal(wide.ok && wide.path, '/caf\u4e2d', 'characters above 0xFF are taken as text')
})

t.test('path: the fast path and the slow path agree', async (t) => {
  for (const p of ['/a/b', '/x-y_z~', '/a/b/', '/A/B.c']) {
    const fast = parseTarget(p)
    const slow = parseTarget(`${p}%41`)
    t.ok(fast.ok && slow.ok && slow.path === `${fast.path}A`, `${p} → same path either way`)
  }
})
