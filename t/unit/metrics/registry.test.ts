import t from 'tap'
import { Counter, Gauge, Histogram, OVERFLOW_LABEL } from '../../../core/metrics/registry.js'

t.test('counter: the same label values through inc and labels() → one series', async (t) => {
  const c = new Counter({ name: 'c', help: 'h', labelNames: ['a', 'b'] })
  c.inc(['x', 'y'])
  c.labels(['x', 'y']).inc(4)
  c.inc(['x', 'z'])
  const s = c.snapshot()
  t.same(
    s.series.map((x) => ('value' in x ? [x.labels, x.value] : [])),
    [
      [['x', 'y'], 5],
      [['x', 'z'], 1],
    ],
  )
})

t.test('counter: negative, NaN and infinite increments → ignored', async (t) => {
  const c = new Counter({ name: 'c', help: 'h', labelNames: [] })
  for (const by of [-1, NaN, Infinity]) {
    c.inc([], by)
    c.labels([]).inc(by)
  }
  c.inc([])
  t.same(c.snapshot().series, [{ labels: [], value: 1 }])
})

t.test('gauge: set replaces, reset drops every series, non-finite values ignored', async (t) => {
  const g = new Gauge({ name: 'g', help: 'h', labelNames: ['k'], merge: 'max' })
  g.set(['a'], 1)
  g.set(['a'], 2)
  g.set(['a'], NaN)
  t.same(g.snapshot().series, [{ labels: ['a'], value: 2 }])
  g.reset()
  t.same(g.snapshot().series, [])
  g.set(['b'], 3)
  t.same(g.snapshot().series, [{ labels: ['b'], value: 3 }])
})

t.test('histogram: a value equal to a bound counts in that bucket; above all bounds → +Inf bucket', async (t) => {
  const cases: [number, number][] = [
    [0, 0],
    [1, 0],
    [1.0001, 1],
    [5, 1],
    [6, 2],
    [1e9, 2],
  ]
  for (const [value, bucket] of cases) {
    const h = new Histogram({ name: 'h', help: 'h', labelNames: [], buckets: [1, 5] })
    h.observe([], value)
    const s = h.snapshot().series[0]
    const counts = s !== undefined && 'counts' in s ? s.counts : []
    t.same(counts, [0, 1, 2].map((i) => (i === bucket ? 1 : 0)), `${value} → bucket ${bucket}`)
  }
})

t.test('histogram: buckets not ascending → RangeError at creation', async (t) => {
  t.throws(() => new Histogram({ name: 'h', help: 'h', labelNames: [], buckets: [1, 1] }), RangeError)
  t.throws(() => new Histogram({ name: 'h', help: 'h', labelNames: [], buckets: [5, 2] }), RangeError)
})

t.test('series cap: label combinations past maxSeries → counted in one overflow series', async (t) => {
  const c = new Counter({ name: 'c', help: 'h', labelNames: ['sni', 'r'], maxSeries: 3 })
  for (let i = 0; i < 10; i++) c.inc([`host${i}.test`, 'ok'])
  c.inc(['host0.test', 'ok'])
  const series = c.snapshot().series.map((s) => ('value' in s ? [s.labels.join('|'), s.value] : []))
  t.same(series, [
    ['host0.test|ok', 2],
    ['host1.test|ok', 1],
    ['host2.test|ok', 1],
    [`${OVERFLOW_LABEL}|${OVERFLOW_LABEL}`, 7],
  ])
})
