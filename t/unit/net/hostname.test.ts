import t from 'tap'
import { normalizeHost } from '../../../core/net/hostname.js'

t.test('normalizeHost: the same answer whatever was asked before (its last two answers are kept)', async (t) => {
  const cases: [string, string][] = [
    ['Example.COM:8443', 'example.com'],
    ['example.com', 'example.com'],
    ['[::1]:8080', '::1'],
    ['a.b.', 'a.b'],
    ['a..', 'a.'],
    ['a.', 'a'],
    ['Bücher.de', 'xn--bcher-kva.de'],
    [' x.test ', 'x.test'],
  ]
  // every order of two and three inputs: a cached answer must never be another input's
  for (const [a, wantA] of cases) for (const [b, wantB] of cases) for (const [c, wantC] of cases) {
    const got = [normalizeHost(a), normalizeHost(b), normalizeHost(c), normalizeHost(a)]
    if (got.join('|') !== [wantA, wantB, wantC, wantA].join('|')) t.fail(`${a} / ${b} / ${c} / ${a}: ${got.join(' | ')}`)
  }
  t.equal(normalizeHost('a..'), 'a.', 'not idempotent on "a.." (so the cache is by input, never by output)')
  t.equal(normalizeHost(normalizeHost('a..')), 'a')
})
