import t from 'tap'
import { checkRegexUri, compileRegexUri, compileTemplate } from '../../../core/pipeline/template.js'

const vars: Record<string, unknown> = {
  host: 'api.test',
  remote_addr: '10.0.0.1',
  http_x_foo: 'bar',
  arg_a: 'A',
  arg_b: 'B',
  arg_q: 'a?b',
  ssl_client_serial: '470F917391523544167490FEAAE391B6BF4A684F',
  upstream_port: 8080,
  ' ': 'space',
}
const varOf = (n: string): unknown => vars[n]

t.test('template: nginx variables as APISIX resolve_var reads them', async (t) => {
  const cases: [string, string][] = [
    ['plain text', 'plain text'],
    ['', ''],
    ['$host', 'api.test'],
    ['${host}', 'api.test'],
    ['${ host }', 'api.test'],
    ['${missing ?? fallback}', 'fallback'],
    ['${missing??fallback}', 'fallback'],
    ['${host ?? fallback}', 'api.test'],
    ['${missing ?? a ?? b}', 'a'],
    ['$missing', ''],
    ['[$missing]', '[]'],
    ['$http_x_foo', 'bar'],
    ['$arg_a$arg_b', 'AB'],
    ['pre-$remote_addr-post', 'pre-10.0.0.1-post'],
    ['$host.com', ''], // '.' belongs to the name: the variable "host.com"
    ['${host}.com', 'api.test.com'],
    ['\\$host', '\\$host'], // the backslash stays, the dollar is literal
    ['\\${host}', '\\${host}'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$-x', '$-x'],
    ['$$host', '$api.test'],
    ['${', '${'],
    ['${}', '${}'],
    ['${ }', 'space'],
    ['${host', '${host'],
    ['$upstream_port', '8080'],
    ['X-Serial: $ssl_client_serial', 'X-Serial: 470F917391523544167490FEAAE391B6BF4A684F'],
    ['$1', ''], // without captures, $1 is the (missing) variable "1"
  ]
  for (const [tpl, want] of cases) t.equal(compileTemplate(tpl)(varOf), want, `${JSON.stringify(tpl)} → ${JSON.stringify(want)}`)
})

t.test('template: regex_uri captures in header values', async (t) => {
  const captures = ['/api/v1/users', 'v1', 'users', undefined]
  const cases: [string, string][] = [
    ['$1', 'v1'],
    ['${2}', 'users'],
    ['$0', '/api/v1/users'],
    ['$3|$9', '|'],
    ['${1', 'v1'], // each brace is optional on its own
    ['$1}', 'v1'],
    ['$1$host', 'v1api.test'],
    ['\\$1', '\\$1'],
    ['${1}x', 'v1x'],
    ['${1x}', 'v1x}'],
  ]
  for (const [tpl, want] of cases)
    t.equal(compileTemplate(tpl, { captures: true })(varOf, captures), want, `${JSON.stringify(tpl)} → ${JSON.stringify(want)}`)
  t.equal(compileTemplate('$1', { captures: true })(varOf), '', 'no regex_uri match → captures are empty')
  t.equal(compileTemplate('$1', { captures: true })(varOf, ['$host', '$host']), '$host', 'a capture value is never interpolated again')
})

t.test('template: escape applies to variable values only', async (t) => {
  const tpl = compileTemplate('/search/$arg_q?lit=1', { escape: (v) => v.replace(/\?/g, '%3F') })
  t.equal(tpl(varOf), '/search/a%3Fb?lit=1')
})

t.test('template: constants are detected at compile time', async (t) => {
  t.equal(compileTemplate('no vars here').constant, 'no vars here')
  t.equal(compileTemplate('\\$escaped').constant, '\\$escaped')
  t.equal(compileTemplate('$host').constant, undefined)
  let calls = 0
  compileTemplate('text')(() => {
    calls++
    return 'x'
  })
  t.equal(calls, 0, 'a constant template reads no variable')
})

t.test('regex_uri: first matching pair rewrites like ngx.re.sub', async (t) => {
  const cases: [string[], string, string | undefined, (string | undefined)[] | undefined][] = [
    [['^/api/(.*)', '/$1'], '/api/v1/x', '/v1/x', ['/api/v1/x', 'v1/x']],
    [['^/api/(.*)', '/${1}/end'], '/api/q', '/q/end', ['/api/q', 'q']],
    [['^/a', '/A', '^/', '/root/'], '/a/b', '/A/b', ['/a']],
    [['^/a', '/A', '^/', '/root/'], '/b', '/root/b', ['/']],
    [['^/a', '/A'], '/b', undefined, undefined],
    [['o', '0'], '/foo', '/f0o', ['o']],
    [['^/(x)?y', '/[$1]'], '/y', '/[]', ['/y', undefined]],
    [['^/(.*)', '/$$1/$10'], '/z', '/$1/', ['/z', 'z']],
    [['^/(\\w+)/(\\w+)', '/$2/$1'], '/ab/cd/e', '/cd/ab/e', ['/ab/cd', 'ab', 'cd']],
  ]
  for (const [pairs, uri, want, captures] of cases) {
    const got = compileRegexUri(pairs)(uri)
    t.equal(got?.uri, want, `${JSON.stringify(pairs)} on ${uri} → ${want ?? 'unchanged'}`)
    t.same(got?.captures, captures, `${JSON.stringify(pairs)} on ${uri} → captures`)
  }
})

t.test('regex_uri: invalid pairs → APISIX messages', async (t) => {
  const cases: [string[], RegExp][] = [
    [['^/a'], /should be an even number/],
    [['(', '/'], /^invalid regex_uri\(\(, \/\): /],
    [['^/a', '/$x'], /invalid capturing variable name/],
    [['^/a', '/$'], /invalid capturing variable name/],
    [['^/a', '/${1'], /closing bracket/],
  ]
  for (const [pairs, why] of cases) {
    t.match(checkRegexUri(pairs), why, `${JSON.stringify(pairs)} → ${String(why)}`)
    t.throws(() => compileRegexUri(pairs), why)
  }
  t.match(checkRegexUri(['^/(?=a)', '/x']), /^invalid regex_uri/, 'a lookahead is refused by the admin')
  t.doesNotThrow(() => compileRegexUri(['^/(?=a)', '/x']), 'the data plane still compiles it')
  t.equal(checkRegexUri(['^/api/(.*)', '/$1']), undefined)
})
