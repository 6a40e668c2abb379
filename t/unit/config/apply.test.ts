import t from 'tap'
import { applyEvents, loadAll, type ConfigEvent, type Decode } from '../../../core/config/apply.js'
import { emptySnapshot } from '../../../core/config/snapshot.js'
import { fail, ok } from '../../../core/schema/decode.js'

// a decoder that accepts objects with a numeric `v` and refuses everything else
const decode: Decode = (_res, id, raw) => {
  const v = (raw as { v?: unknown }).v
  return typeof v === 'number' ? ok(Object.freeze({ id, v })) : fail('v must be a number')
}
const put = (key: string, value: unknown, rev: number): ConfigEvent => ({
  type: 'put', key, value: typeof value === 'string' ? value : JSON.stringify(value), modRevision: String(rev), createRevision: String(rev),
})
const del = (key: string, rev: number): ConfigEvent => ({ type: 'delete', key, value: '', modRevision: String(rev), createRevision: '0' })
const routes = (s: ReturnType<typeof emptySnapshot>) => s.objects.routes as unknown as ReadonlyMap<string, { value: { v: number } }>

t.test('apply: a valid put is stored, a delete removes it', async (t) => {
  const a = applyEvents(emptySnapshot(), [put('/apisix/routes/1', { v: 1 }, 5)], '5', '/apisix', decode)
  t.equal(routes(a.snapshot).get('1')?.value.v, 1)
  t.same([...a.changed].map(([res, ids]) => [res, [...ids]]), [['routes', ['1']]], 'the changed ids, by resource')
  const b = applyEvents(a.snapshot, [del('/apisix/routes/1', 6), del('/apisix/routes/7', 6), put('/apisix/ssls/s', { v: 2 }, 6), put('/apisix/ssls/t', 'not json', 6)], '6', '/apisix', decode)
  t.equal(routes(b.snapshot).has('1'), false)
  t.same([...b.changed].map(([res, ids]) => [res, [...ids]]), [['routes', ['1']], ['ssls', ['s']]], 'a delete of an absent key and a refused put change nothing')
  t.equal(b.snapshot.revision, '6')
})

t.test('apply: an invalid object is refused with its key and the last good version stays', async (t) => {
  const a = applyEvents(emptySnapshot(), [put('/apisix/routes/1', { v: 1 }, 5)], '5', '/apisix', decode)
  const b = applyEvents(a.snapshot, [put('/apisix/routes/1', { v: 'x' }, 6), put('/apisix/routes/2', 'not json', 6)], '6', '/apisix', decode)
  t.equal(routes(b.snapshot).get('1')?.value.v, 1)
  t.same(b.rejected.map((r) => [r.key, r.reason]), [['/apisix/routes/1', 'v must be a number'], ['/apisix/routes/2', 'value is not JSON']])
  t.equal(b.changed.size, 0)
})

t.test('apply: keys outside the resources are ignored; unchanged keys keep their identity', async (t) => {
  const a = applyEvents(emptySnapshot(), [put('/apisix/routes/1', { v: 1 }, 5), put('/apisix/ssls/1', { v: 2 }, 5), put('/apisix/plugins', { v: 3 }, 5), put('/other/routes/9', { v: 3 }, 5)], '5', '/apisix', decode)
  t.equal(a.snapshot.objects.routes.size + a.snapshot.objects.ssls.size, 2)
  const b = applyEvents(a.snapshot, [put('/apisix/routes/2', { v: 4 }, 6)], '6', '/apisix', decode)
  t.equal(b.snapshot.objects.ssls, a.snapshot.objects.ssls, 'an untouched resource keeps its map')
  t.equal(b.snapshot.objects.routes.get('1'), a.snapshot.objects.routes.get('1'), 'an untouched entry keeps its identity')
})

t.test('loadAll: a full resync replaces everything, keeps identity of unchanged revisions and the last good value of refused ones', async (t) => {
  const a = applyEvents(emptySnapshot(), [put('/apisix/routes/1', { v: 1 }, 5), put('/apisix/routes/2', { v: 2 }, 5), put('/apisix/routes/3', { v: 3 }, 5)], '5', '/apisix', decode)
  const b = loadAll(a.snapshot, [put('/apisix/routes/1', { v: 1 }, 5), put('/apisix/routes/2', { v: 'bad' }, 9)], '9', '/apisix', decode)
  t.equal(b.snapshot.objects.routes.get('1'), a.snapshot.objects.routes.get('1'))
  t.equal(routes(b.snapshot).get('2')?.value.v, 2, 'refused on resync: last good value kept')
  t.equal(b.snapshot.objects.routes.has('3'), false, 'deleted while the watch was lost')
  t.equal(b.rejected.length, 1)
})
