import t from 'tap'
import { applyEvents, loadAll, type ConfigEvent, type Decode } from '../../../core/config/apply.js'
import { createFullLoad } from '../../../core/config/full-load.js'
import { emptySnapshot, type Snapshot } from '../../../core/config/snapshot.js'
import { fail, ok } from '../../../core/schema/decode.js'
import { isPersistentMap } from '../../../core/collections/persistent-map.js'

// a decoder that accepts objects with a numeric `v` and refuses everything else
const decode: Decode = (_res, id, raw) => {
  const v = (raw as { v?: unknown }).v
  return typeof v === 'number' ? ok(Object.freeze({ id, v })) : fail('v must be a number')
}
const put = (key: string, value: unknown, rev: number): ConfigEvent => ({
  type: 'put', key, value: typeof value === 'string' ? value : JSON.stringify(value), modRevision: String(rev), createRevision: String(rev),
})
const view = (s: Snapshot): Record<string, [string, unknown][]> =>
  Object.fromEntries(Object.entries(s.objects).map(([res, m]) => [res, [...(m as ReadonlyMap<string, { value: unknown }>)].map(([id, e]) => [id, e.value])]))

const listing: ConfigEvent[] = [
  put('/apisix/consumers/c1', { v: 1 }, 3),
  put('/apisix/routes/1', { v: 1 }, 5),
  put('/apisix/routes/2', { v: 'bad' }, 9),
  put('/apisix/routes/3', 'not json', 4),
  put('/apisix/ssls/a', { v: 2 }, 7),
  put('/apisix/ssls/b', { v: 3 }, 8),
  put('/apisix/plugins', { v: 3 }, 12),
]

t.test('full load: any split into pages → the same snapshot and refusals as loadAll over the whole listing', async (t) => {
  const prev = applyEvents(emptySnapshot(), [put('/apisix/routes/1', { v: 1 }, 5), put('/apisix/routes/2', { v: 2 }, 6), put('/apisix/ssls/gone', { v: 4 }, 2)], '6', '/apisix', decode).snapshot
  const want = loadAll(prev, listing, '12', '/apisix', decode)
  const splits: [string, number[]][] = [['one page', [7]], ['pages of one', [1, 1, 1, 1, 1, 1, 1]], ['uneven pages', [2, 4, 1]], ['an empty page first', [0, 7]]]
  for (const [name, sizes] of splits) {
    const load = createFullLoad('/apisix', decode)
    let at = 0
    for (const n of sizes) {
      load.page(listing.slice(at, at + n))
      at += n
    }
    const got = load.finish(prev, '12')
    t.same(view(got.snapshot), view(want.snapshot), `${name}: objects`)
    t.equal(got.snapshot.revision, '12', `${name}: revision`)
    t.same(got.rejected, want.rejected, `${name}: refusals`)
    t.equal(got.listed, 7, `${name}: every key counted`)
    for (const res of Object.keys(want.snapshot.objects) as (keyof Snapshot['objects'])[])
      t.equal(isPersistentMap(got.snapshot.objects[res]), isPersistentMap(want.snapshot.objects[res]), `${name}: ${res} held in the same kind of map`)
  }
})

t.test('full load: an unchanged revision keeps its entry identity; a refused object keeps its last good value', async (t) => {
  const prev = applyEvents(emptySnapshot(), [put('/apisix/routes/1', { v: 1 }, 5), put('/apisix/routes/2', { v: 2 }, 6), put('/apisix/ssls/a', { v: 1 }, 6)], '6', '/apisix', decode).snapshot
  const load = createFullLoad('/apisix', decode)
  load.page(listing)
  const got = load.finish(prev, '12').snapshot
  t.equal(got.objects.routes.get('1'), prev.objects.routes.get('1'), 'same modRevision → same entry')
  t.equal(got.objects.routes.get('2'), prev.objects.routes.get('2'), 'refused → last good entry')
  t.not(got.objects.ssls.get('a'), prev.objects.ssls.get('a'), 'new modRevision → new entry')
  t.equal(got.objects.ssls.get('a')?.modRevision, '7')
})

t.test('full load: modify indexes → the greatest modRevision listed per top-level key', async (t) => {
  const load = createFullLoad('/apisix', decode)
  load.page(listing.slice(0, 3))
  load.page(listing.slice(3))
  t.same(load.finish(emptySnapshot(), '12').modifyIndexes, { consumers: '3', routes: '9', ssls: '8', plugins: '12' })
})
