import t from 'tap'
import { checkAuthority, checkHostHeader, isChunkedLast, isHttpScheme, misdirectedRequest } from '../../../core/pipeline/authority.js'
import type { ClientRules } from '../../../core/tls/facts.js'
import { buildSniIndex } from '../../../core/tls/sni-index.js'
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

t.test('misdirected requests: a Host choosing another ssl object with client → 421; the same object, or none with client → served', async (t) => {
  const rules: ClientRules = { ca: 'CA', depth: 1, skip: [] }
  const index = buildSniIndex([
    { id: 'strict', snis: ['strict.test'], updateTime: 0, client: rules },
    { id: 'skip', snis: ['skip.test'], updateTime: 0, client: { ...rules, skip: [/^\/public\//] } },
    { id: 'multi', snis: ['a.multi.test', 'b.multi.test'], updateTime: 0, client: rules },
    { id: 'wild', snis: ['*.wild.test'], updateTime: 0, client: rules },
    { id: 'open', snis: ['open.test'], updateTime: 0, client: undefined },
  ])
  // [case, the connection's ssl object, Host, 421?]
  const cases: [string, string, string, boolean][] = [
    ['exact: the Host is the SNI', 'strict', 'strict.test', false],
    ['Host compared without case, port or trailing dot', 'strict', 'STRICT.Test.:9443', false],
    ['Host of an object without client', 'strict', 'open.test', false],
    ['Host that no object serves', 'strict', 'nobody.test', false],
    ['no Host header', 'strict', '', false],
    ['an IP literal Host', 'strict', '[::1]:9443', false],
    ['Host of another object with client', 'strict', 'skip.test', true],
    ['connection of an object without client, Host of one with client', 'open', 'strict.test', true],
    ['wildcard: the connection came with a.wild.test, the Host is b.wild.test', 'wild', 'b.wild.test', false],
    ['wildcard Host of another object', 'strict', 'x.wild.test', true],
    ['second SNI of the same object', 'multi', 'b.multi.test', false],
    ['second SNI of the object, with case and dot', 'multi', 'B.MULTI.test.', false],
    ['object with two SNIs, Host of another object', 'multi', 'strict.test', true],
    ['no SNI: the fallback_sni object (strict) serves its own Host', 'strict', 'strict.test', false],
  ]
  for (const [name, conn, host, want] of cases) {
    const r = misdirectedRequest(conn, host, index)
    t.equal(r !== undefined, want, `${name} → ${want ? '421' : 'served'}`)
    if (r) {
      t.equal(r.status, 421, `${name}: 421`)
      t.equal(r.reason, 'sni_host_mismatch', `${name}: the metric's reason`)
      t.match(r.error_msg, /^misdirected request: /, `${name}: error_msg says why`)
    }
  }
  t.equal(misdirectedRequest('open', 'Strict.Test', index)?.error_msg.includes('strict.test'), true, 'error_msg names the Host, normalised')
})
