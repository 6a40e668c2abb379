import t from 'tap'
import { compileUri, uriMatches } from '../../../core/router/uri.js'
import { buildPrefixTree } from '../../../core/router/radix.js'

t.test('uri: APISIX path patterns against request paths', async (t) => {
  const cases: [string, string, boolean][] = [
    ['/foo', '/foo', true],
    ['/foo', '/foo/', false],
    ['/foo', '/foobar', false],
    ['/foo*', '/foo', true],
    ['/foo*', '/foobar', true],
    ['/foo*', '/foo/x/y', true],
    ['/foo*', '/fo', false],
    ['/foo/*', '/foo/', true],
    ['/foo/*', '/foo/a/b', true],
    ['/foo/*', '/foo', false],
    ['/*', '/', true],
    ['/*', '/anything/at/all', true],
    ['*', '/x', true],
    // no_param_match: ':' is literal in an exact path
    ['/user/:id', '/user/:id', true],
    ['/user/:id', '/user/42', false],
    // a '*' segment in the middle: the prefix, then the whole path must fit
    ['/a/*/c', '/a/x/c', true],
    ['/a/*/c', '/a/x/y/c', true],
    ['/a/*/c', '/a/x/d', false],
    ['/a/*/c', '/a/c', false],
    ['/a/*name', '/a/x/y', true],
    ['/a/:id/*', '/a/:id/x', true],
    ['/a/:id/*', '/a/:idx/y', false],
    ['/a/*/', '/a/x/', true],
    ['/a/*/', '/a/x', false],
    // a '*' inside a segment is only the prefix end
    ['/a*/b', '/a', true],
    ['/a*/b', '/ax/y', true],
    // literal segments are literal, even when they hold regex characters
    ['/v1.0/*/x', '/v1.0/q/x', true],
    ['/v1.0/*/x', '/v1x0/q/x', false],
    ['/a+b/*/(c)', '/a+b/q/(c)', true],
  ]
  for (const [pattern, path, want] of cases)
    t.equal(uriMatches(compileUri(pattern), path), want, `${pattern} vs ${path} → ${want ? 'match' : 'no match'}`)
})

t.test('uri: compiled keys and kinds', async (t) => {
  t.same(compileUri('/foo'), { original: '/foo', key: '/foo', prefix: false, full: undefined })
  t.same(compileUri('/foo*'), { original: '/foo*', key: '/foo', prefix: true, full: undefined })
  t.equal(compileUri('/a/*/c').key, '/a/')
})

t.test('prefix tree: every stored prefix of a string, longest first', async (t) => {
  const tree = buildPrefixTree<string>()
  for (const k of ['/a', '/ab', '/abc', '/b', '', '/a/x', '/ab'])
    t.equal(tree.upsert(k, () => k), k, `upsert ${JSON.stringify(k)} → its value`)
  t.equal(tree.size, 6, 'a repeated key is stored once')
  const cases: [string, string[]][] = [
    ['/abcd', ['/abc', '/ab', '/a', '']],
    ['/ab', ['/ab', '/a', '']],
    ['/a/x/y', ['/a/x', '/a', '']],
    ['/a/y', ['/a', '']],
    ['/c', ['']],
    ['', ['']],
  ]
  for (const [s, want] of cases) t.same(tree.prefixesOf(s), want, `${s} → ${want.join(' ')}`)
  const empty = buildPrefixTree<number>()
  t.same(empty.prefixesOf('/x'), [], 'an empty tree has no prefixes')
})
