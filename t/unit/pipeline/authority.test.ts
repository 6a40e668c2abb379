import t from 'tap'
import { checkAuthority, checkHostHeader, isChunkedLast, isHttpScheme } from '../../../core/pipeline/authority.js'
import { parseTarget } from '../../../core/pipeline/path.js'

t.test('host header: what nginx accepts → accepted', async (t) => {
  for (const h of ['a.com', 'A.COM', 'a.com.', 'a.com:8080', 'a.com:', '[::1]', '[::1]:443', '127.0.0.1', 'under_score.test', 'a@b', '.a.com', 'xn--caf-dma.test']) {
    t.equal(checkHostHeader(h), undefined, `${JSON.stringify(h)} → accepted`)
  }
})

t.test('host header: "/", "..", controls, spaces and an empty host → refused', async (t) => {
  const cases: [string, RegExp][] = [
    ['a.com/x', /"\/"/],
    ['/', /"\/"/],
    ['..', /"\.\."/],
    ['a..com', /"\.\."/],
    ['a.com\x00', /control/],
    ['a com', /control/],
    ['a.com\x7f', /control/],
    ['a.com\t', /control/],
    ['', /empty/],
    [':80', /empty/],
    ['.', /empty/],
  ]
  for (const [h, why] of cases) t.match(checkHostHeader(h), why, `${JSON.stringify(h)} → ${String(why)}`)
})

t.test('absolute-form authority: host, IP literal, optional port → accepted', async (t) => {
  for (const a of ['a.com', 'a.com:80', 'a.com:', 'A-b_c.D', '[::1]', '[::ffff:127.0.0.1]:8443', '127.0.0.1:65535']) {
    t.equal(checkAuthority(a), undefined, `${a} → accepted`)
  }
})

t.test('absolute-form authority: userinfo, percent, no host, bad ports, ".." → refused', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /without a host/],
    [':80', /without a host/],
    ['u@a.com', /invalid host/],
    ['a.com@evil', /invalid host/],
    ['%61.com', /invalid host/],
    ['a..com', /invalid host/],
    ['a\\b', /invalid host/],
    ['[::1', /invalid host/],
    ['[zz]', /invalid host/],
    ['a.com:80:81', /invalid port/],
    ['a.com:http', /invalid port/],
    ['a.com:65536', /invalid port/],
    ['a.com:123456', /invalid port/],
  ]
  for (const [a, why] of cases) t.match(checkAuthority(a), why, `${JSON.stringify(a)} → ${String(why)}`)
})

t.test('schemes and transfer codings', async (t) => {
  const schemes: [string, boolean][] = [['http', true], ['HTTPS', true], ['ftp', false], ['javascript', false], ['httpx', false]]
  for (const [s, ok] of schemes) t.equal(isHttpScheme(s), ok, `scheme ${s} → ${ok ? 'proxied' : 'refused'}`)
  const codings: [string, boolean][] = [
    ['chunked', true],
    ['Chunked', true],
    ['gzip, chunked', true],
    ['gzip,chunked ', true],
    ['identity', false],
    ['xchunked', false],
    ['chunked, identity', false],
    ['gzip', false],
    ['', false],
  ]
  for (const [te, ok] of codings) t.equal(isChunkedLast(te), ok, `Transfer-Encoding ${JSON.stringify(te)} → ${ok ? 'length known' : 'refused'}`)
})

t.test('parseTarget: an odd absolute-form target → 400 with its reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['ftp://a.com/x', /not an http or https URI/],
    ['javascript://a.com/x', /not an http or https URI/],
    ['http:///x', /without a host/],
    ['http://u@a.com/x', /invalid host/],
    ['http://[::1/x', /invalid host/],
    ['http://a.com:99999/x', /invalid port/],
  ]
  for (const [target, why] of cases) {
    const r = parseTarget(target)
    t.match(r.ok ? '' : r.reason, why, `${target} → ${String(why)}`)
  }
  t.same(parseTarget('HTTP://A.com:8080/p?q'), { ok: true, path: '/p', query: 'q', rawPath: '/p', authority: 'A.com:8080' }, 'an upper-case scheme and a port → accepted')
})
