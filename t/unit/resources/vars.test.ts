import t from 'tap'
import { checkVars } from '../../../core/resources/vars.js'

t.test('vars: lua-resty-expr shapes are accepted', async (t) => {
  const ok: unknown[] = [
    [['arg_name', '==', 'json'], ['arg_age', '>', 18]],
    [['arg_name', '!', '~~', '^a']],
    ['OR', ['arg_a', '==', '1'], ['AND', ['arg_b', 'in', ['x', 'y']], ['remote_addr', 'ipmatch', ['10.0.0.0/8']]]],
    ['http_x', '~*', '^abc$'],
    [],
  ]
  for (const v of ok) t.equal(checkVars(v, true), undefined, JSON.stringify(v))
})

t.test('vars: malformed rules and non-linear regexes → a message naming the place', async (t) => {
  const bad: Array<[unknown, boolean, RegExp]> = [
    ['x', true, /must be an array/],
    [[['a', 'is', 1]], true, /invalid operator "is"/],
    [[['a', '==']], true, /a rule is/],
    [[['', '==', 1]], true, /variable name/],
    [[['a', '~~', '(a']], false, /vars\[0\]/],
    [[['a', '~~', '(?=a)']], true, /vars\[0\].*linear/],
    [[['a', 'in', 'x']], true, /needs an array/],
  ]
  for (const [v, linear, msg] of bad) t.match(checkVars(v, linear), msg, JSON.stringify(v))
  t.equal(checkVars([['a', '~~', '(?=a)']], false), undefined, 'lookahead compiles on the backtracking engine')
})
