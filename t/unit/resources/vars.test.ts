import t from 'tap'
import { checkVars, compileVars, luaToNumber } from '../../../core/resources/vars.js'
import type { VarValue } from '../../../core/resources/vars.js'

const reader =
  (vars: Record<string, VarValue>) =>
  (name: string): VarValue =>
    vars[name]

t.test('vars: lua-resty-expr comparisons against request variables', async (t) => {
  const req = reader({ arg_name: 'json', arg_age: '24', arg_hex: '0x10', http_x: 'Hello', remote_addr: '10.1.2.3', roots: ['repo', 'user'], empty: '' })
  const cases: [unknown[], boolean][] = [
    [[], true],
    [[['arg_name', '==', 'json']], true],
    [[['arg_name', '==', 'JSON']], false],
    [[['arg_missing', '==', 'x']], false],
    [[['arg_missing', '==', null]], true],
    [[['arg_name', '~=', 'json']], false],
    [[['arg_name', '~=', 'yaml']], true],
    [[['arg_missing', '~=', 'x']], true],
    [[['arg_age', '==', 24]], true],
    [[['arg_age', '==', '24']], true],
    [[['arg_name', '==', 24]], false],
    [[['arg_name', '~=', 24]], true],
    [[['arg_age', '~=', 24]], false],
    [[['arg_age', '>', 23]], true],
    [[['arg_age', '>', 24]], false],
    [[['arg_age', '>=', 24]], true],
    [[['arg_age', '<', '25']], true],
    [[['arg_age', '<=', 23]], false],
    [[['arg_hex', '>', 15]], true],
    [[['arg_name', '>', 1]], false],
    [[['arg_missing', '<', 1]], false],
    [[['empty', '<', 1]], false],
    [[['http_x', '~~', '^H']], true],
    [[['http_x', '~~', 'ell']], true],
    [[['http_x', '~~', '^h']], false],
    [[['http_x', '~*', '^h']], true],
    [[['arg_missing', '~~', '.*']], false],
    [[['arg_name', 'in', ['xml', 'json']]], true],
    [[['arg_name', 'in', ['xml']]], false],
    [[['arg_age', 'in', [24]]], false],
    [[['arg_name', 'in', 'json']], false],
    [[['roots', 'has', 'repo']], true],
    [[['roots', 'has', 'org']], false],
    [[['arg_name', 'has', 'json']], false],
    [[['remote_addr', 'ipmatch', ['10.0.0.0/8']]], true],
    [[['remote_addr', 'ipmatch', '192.168.0.0/16']], false],
    [[['arg_name', '!', '==', 'json']], false],
    [[['arg_name', '!', '~~', '^x']], true],
    [[['arg_name', 'json']], true],
    [[['arg_name', 'JSON']], true], // the two-element value is lower-cased like an operator
    [[['arg_name', 'IN', ['json']]], true],
    [[['arg_name', '==', 'json'], ['arg_age', '>', 30]], false],
    [['OR', ['arg_name', '==', 'x'], ['arg_age', '>', 20]], true],
    [['or', ['arg_name', '==', 'x'], ['arg_age', '>', 30]], false],
    [['AND', ['arg_name', '==', 'json'], ['arg_age', '>', 20]], true],
    [['!AND', ['arg_name', '==', 'json'], ['arg_age', '>', 20]], false],
    [['!OR', ['arg_name', '==', 'x'], ['arg_age', '>', 30]], true],
    [['AND', ['arg_name', '==', 'json'], ['OR', ['arg_age', '>', 30], ['http_x', '~~', 'H']]], true],
    [['AND', ['arg_name', '==', 'json'], ['!OR', ['arg_age', '>', 30], ['http_x', '~~', 'H']]], false],
    [[['OR', ['arg_name', '==', 'x'], ['arg_name', '==', 'json']], ['arg_age', '==', 24]], true],
  ]
  for (const [vars, want] of cases) t.equal(compileVars(vars)(req), want, `${JSON.stringify(vars)} → ${want}`)
})

t.test('vars: malformed expressions → APISIX messages', async (t) => {
  const cases: [unknown, RegExp][] = [
    [[['arg_x', '??', 'y']], /invalid operator '\?\?'/],
    [[['arg_x', 'x', '==', 'y']], /bad 'not' expression/],
    [['arg_x', '==', 'y'], /rule should be wrapped inside brackets/],
    [['AND', ['arg_x', '==', 'y']], /rule too short/],
    [[[]], /rule too short/],
    [[['arg_x']], /invalid expression/],
    [[['arg_x', '~~', '(']], /invalid regex/],
    [[['arg_x', '~~', 5]], /must be a string/],
    [[['remote_addr', 'ipmatch', ['300.1.1.1']]], /invalid ip address/],
    [{ a: 1 }, /must be an array/],
  ]
  for (const [vars, why] of cases) {
    t.match(checkVars(vars), /^failed to validate the 'vars' expression: /, `${JSON.stringify(vars)} → refused`)
    t.match(checkVars(vars), why, `${JSON.stringify(vars)} → ${String(why)}`)
    t.throws(() => compileVars(vars), why, `${JSON.stringify(vars)} → compileVars throws`)
  }
  t.equal(checkVars([['arg_x', '~~', '^/api/(v1|v2)/']]), undefined, 'a plain regex passes')
  t.equal(checkVars([['http_x', '~*', '^/API/']]), undefined, 'a case-insensitive ~* regex passes (the linear engine refuses the i flag itself)')
  t.match(checkVars([['http_x', '~*', '(?=a)b']]), /invalid regex/, 'a ~* lookahead is still refused')
  t.equal(checkVars([['http_x', '~*', '(?<=a)b']]), undefined, 'a ~* lookbehind runs on the linear engine (V8 13.6, Node 24) → accepted')
})

t.test('vars: patterns that cannot run in linear time → refused by checkVars (admin and data-plane decoders); compileVars alone still compiles them', async (t) => {
  for (const p of ['(a)\\1', '^(?=a)', 'a(?!b)']) {
    t.match(checkVars([['arg_x', '~~', p]]), /invalid regex/, `${p} → refused`)
    t.doesNotThrow(() => compileVars([['arg_x', '~~', p]]), `${p} → compileVars alone still compiles it`)
  }
  // V8 13.6 (Node 24) runs lookbehinds in linear time: the contract refuses only what cannot run so
  for (const p of ['(?<=x)y', '(?<!x)y']) t.equal(checkVars([['arg_x', '~~', p]]), undefined, `${p} → accepted`)
  t.equal(compileVars([['arg_x', '~~', '(?<=x)y']])(() => 'xy'), true, 'and matches')
  // backtracking, this match would take 2^40 steps: that it answers at all (within tap's timeout) is the proof
  const evil = compileVars([['arg_x', '~~', '^(a+)+$']])
  t.equal(evil(() => `${'a'.repeat(40)}!`), false, 'a backtracking pattern falls back to the linear engine')
})

t.test('vars: Lua tonumber for variable strings', async (t) => {
  const cases: [unknown, number | undefined][] = [
    ['12', 12], [' 12 ', 12], ['1.5', 1.5], ['1e2', 100], ['0x1f', 31], ['-3', -3], ['.5', 0.5],
    ['', undefined], ['abc', undefined], ['12abc', undefined], ['Infinity', undefined], [undefined, undefined], [7, 7],
  ]
  for (const [v, want] of cases) t.equal(luaToNumber(v), want, `${JSON.stringify(v)} → ${want}`)
})

t.test('vars: the admin and the router read one grammar ([var, value] is ==, ["AND", one rule] is too short)', async (t) => {
  t.equal(checkVars([['arg_x', 'y']], true), undefined, '[var, value] accepted by the admin')
  t.equal(compileVars([['arg_x', 'y']])((n) => (n === 'arg_x' ? 'y' : undefined)), true, 'and matched as == by the router')
  t.match(checkVars(['AND', ['arg_x', '==', 'y']], true), /rule too short/, '["AND", rule] refused by the admin')
  t.throws(() => compileVars(['AND', ['arg_x', '==', 'y']]), /rule too short/, 'and by the router')
  t.match(checkVars([['arg_x', '~~', '(?=a)']], true), /invalid regex/, 'the linear check refuses a lookahead')
  t.equal(checkVars([['arg_x', '~~', '(?=a)']], false), undefined, 'without the linear check it compiles')
})
