/**
 * SNI lookup cost against the number of ssl objects (10 vs 10,000, best of 5 rounds of 80,000
 * lookups): a persistent map's depth grows by one level per 32x entries, so the large index may
 * cost a little more, never a scan. A wall-clock figure, so a bench and not a unit test. Run
 * after a build: `node t/bench/sni-lookup.mjs`.
 */
import { buildSniIndex } from '../../dist/core/tls/sni-index.js'

const obj = (id) => ({ id, snis: [`h${id}.example.com`, `*.w${id}.example.com`, `*odd${id}.example.org`], updateTime: 1, cert: `cert-${id}` })
const build = (n) => buildSniIndex(Array.from({ length: n }, (_, i) => obj(String(i))))
const queries = ['h5.example.com', 'x.w5.example.com', 'a.b.c.d.e.nothing.net', 'zodd5.example.org']
const cost = (idx) => {
  let best = Infinity
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    for (let i = 0; i < 20_000; i++) idx.lookup(queries[i & 3])
    best = Math.min(best, performance.now() - t0)
  }
  return best
}
const small = build(10)
const large = build(10_000)
cost(small)
cost(large)
const [a, b] = [cost(small), cost(large)]
console.log(`80,000 lookups: ${a.toFixed(1)} ms with 10 objects, ${b.toFixed(1)} ms with 10,000 (${(b / a).toFixed(2)}x)`)
