import t from 'tap'
import { missingRegexpFlags, REGEXP_FLAGS } from '../../../core/server/workers.js'

t.test('worker execArgv: the regexp flags missing from a command line', async (t) => {
  const [engine, fallback] = REGEXP_FLAGS
  const cases: [string, string[], string[]][] = [
    ['none given → both missing', [], [engine, fallback]],
    ['only the engine → the fallback missing', ['--enable-source-maps', engine], [fallback]],
    ['only the fallback → the engine missing', [fallback], [engine]],
    ['both → none missing', [fallback, '--max-old-space-size=512', engine], []],
    ['a look-alike does not count', [`${engine}=false`, `${fallback}s`], [engine, fallback]],
  ]
  for (const [name, argv, want] of cases) t.same(missingRegexpFlags(argv), want, name)
})
