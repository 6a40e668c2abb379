import t from 'tap'
import { escapeLabelValue, formatValue, mergeSnapshots, renderPrometheus } from '../../../core/metrics/exposition.js'
import { Counter, Gauge, Histogram, type MergeRule, type MetricsSnapshot } from '../../../core/metrics/registry.js'
import { find, parsePrometheus } from '../../lib/prometheus.js'

const snap = (...families: { snapshot(): MetricsSnapshot['families'][number] }[]): MetricsSnapshot => ({ families: families.map((f) => f.snapshot()) })

t.test('render: counter with labels → HELP, TYPE and one line per series, parsed back', async (t) => {
  const c = new Counter({ name: 'x_total', help: 'Some things', labelNames: ['code', 'route'] })
  c.inc([200, 'r1'])
  c.inc([200, 'r1'], 2)
  c.inc([404, ''])
  const text = renderPrometheus(snap(c))
  t.equal(text, '# HELP x_total Some things\n# TYPE x_total counter\nx_total{code="200",route="r1"} 3\nx_total{code="404",route=""} 1\n')
  const p = parsePrometheus(text)
  t.equal(p.type.get('x_total'), 'counter')
  t.same(find(p, 'x_total', { code: '200' }).map((s) => s.value), [3])
})

t.test('render: label values with backslash, quote and newline → escaped and parsed back intact', async (t) => {
  const cases = ['a\\b', 'say "hi"', 'two\nlines', '\\"\n', 'CN=x,O=A\\, B', 'плюс ✓', '']
  const g = new Gauge({ name: 'g', help: 'help with \\ and\nnewline', labelNames: ['v'], merge: 'max' })
  cases.forEach((v, i) => g.set([v], i))
  const text = renderPrometheus(snap(g))
  t.equal(text.split('\n').length, cases.length + 3, 'no raw newline leaks into a line')
  const p = parsePrometheus(text)
  t.equal(p.help.get('g'), 'help with \\ and\nnewline')
  cases.forEach((v, i) => t.same(find(p, 'g', { v }).map((s) => s.value), [i], JSON.stringify(v)))
})

t.test('escapeLabelValue: table', async (t) => {
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['a"b', 'a\\"b'],
    ['a\\b', 'a\\\\b'],
    ['a\nb', 'a\\nb'],
    ['\r\t', '\r\t'],
  ]
  for (const [input, want] of cases) t.equal(escapeLabelValue(input), want, JSON.stringify(input))
})

t.test('formatValue: special values → Prometheus spellings', async (t) => {
  const cases: [number, string][] = [
    [1, '1'],
    [0.25, '0.25'],
    [1733100000, '1733100000'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ]
  for (const [v, want] of cases) t.equal(formatValue(v), want, String(v))
})

t.test('render: histogram → cumulative buckets ending at +Inf, _sum and _count', async (t) => {
  const h = new Histogram({ name: 'lat', help: 'Latency', labelNames: ['type'], buckets: [1, 5, 10] })
  for (const v of [0.5, 1, 3, 7, 7, 50]) h.observe(['request'], v)
  const p = parsePrometheus(renderPrometheus(snap(h)))
  t.equal(p.type.get('lat'), 'histogram')
  const buckets = find(p, 'lat_bucket', { type: 'request' }).map((s) => [s.labels['le'], s.value])
  t.same(buckets, [
    ['1', 2],
    ['5', 3],
    ['10', 5],
    ['+Inf', 6],
  ])
  t.same(find(p, 'lat_sum').map((s) => s.value), [68.5])
  t.same(find(p, 'lat_count').map((s) => s.value), [6])
})

t.test('render: a family with no series → HELP and TYPE only; no families → empty text', async (t) => {
  const c = new Counter({ name: 'none_total', help: 'Nothing yet', labelNames: ['a'] })
  t.equal(renderPrometheus(snap(c)), '# HELP none_total Nothing yet\n# TYPE none_total counter\n')
  t.equal(renderPrometheus({ families: [] }), '')
})

t.test('render: optional labels with an empty value → left out of the line', async (t) => {
  const g = new Gauge({ name: 'e', help: 'h', labelNames: ['kind', 'ssl_id', 'consumer'], optional: ['ssl_id', 'consumer'], merge: 'max' })
  g.set(['server', '1', ''], 10)
  g.set(['consumer', '', 'alice'], 20)
  const lines = renderPrometheus(snap(g)).split('\n').filter((l) => !l.startsWith('#') && l !== '')
  t.same(lines, ['e{kind="server",ssl_id="1"} 10', 'e{kind="consumer",consumer="alice"} 20'])
})

t.test('merge: two workers → counters and histograms summed per series, new series kept', async (t) => {
  const worker = (codes: [number, number][], obs: number[]): MetricsSnapshot => {
    const c = new Counter({ name: 'req', help: 'h', labelNames: ['code'] })
    for (const [code, n] of codes) c.inc([code], n)
    const h = new Histogram({ name: 'lat', help: 'h', labelNames: [], buckets: [10, 100] })
    for (const v of obs) h.observe([], v)
    return snap(c, h)
  }
  const merged = mergeSnapshots([
    worker(
      [
        [200, 3],
        [500, 1],
      ],
      [5, 50],
    ),
    worker(
      [
        [200, 4],
        [404, 2],
      ],
      [500],
    ),
  ])
  const p = parsePrometheus(renderPrometheus(merged))
  const byCode = Object.fromEntries(find(p, 'req').map((s) => [s.labels['code'], s.value]))
  t.same(byCode, { '200': 7, '500': 1, '404': 2 })
  t.same(
    find(p, 'lat_bucket').map((s) => s.value),
    [1, 2, 3],
  )
  t.same(find(p, 'lat_sum').map((s) => s.value), [555])
  t.same(find(p, 'lat_count').map((s) => s.value), [3])
})

t.test('merge: gauges follow their family rule across workers', async (t) => {
  const cases: [MergeRule, number[], number][] = [
    ['sum', [1, 2, 3], 6],
    ['max', [5, 9, 7], 9],
    ['min', [1, 0, 1], 0],
    ['min', [4], 4],
  ]
  for (const [merge, values, want] of cases) {
    const snaps = values.map((v) => {
      const g = new Gauge({ name: 'g', help: 'h', labelNames: [], merge })
      g.set([], v)
      return snap(g)
    })
    const merged = mergeSnapshots(snaps)
    t.same(find(parsePrometheus(renderPrometheus(merged)), 'g').map((s) => s.value), [want], `${merge} of ${values.join(',')} → ${want}`)
  }
})

t.test('merge: snapshots survive JSON (cluster IPC) unchanged', async (t) => {
  const h = new Histogram({ name: 'lat', help: 'h', labelNames: ['route'], buckets: [1, 2] })
  h.observe(['r'], 1.5)
  const s = snap(h)
  const viaIpc = JSON.parse(JSON.stringify(s)) as MetricsSnapshot
  t.equal(renderPrometheus(mergeSnapshots([viaIpc])), renderPrometheus(s))
})

t.test('merge: a family with different buckets in a later worker → that copy is skipped', async (t) => {
  const mk = (buckets: number[]): MetricsSnapshot => {
    const h = new Histogram({ name: 'lat', help: 'h', labelNames: [], buckets })
    h.observe([], 1)
    return snap(h)
  }
  const p = parsePrometheus(renderPrometheus(mergeSnapshots([mk([1, 2]), mk([1, 3])])))
  t.same(find(p, 'lat_count').map((s) => s.value), [1])
})
