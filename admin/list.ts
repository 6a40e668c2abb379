import { dirOf, type ResourceName } from '../core/etcd/keys.js'
import { compileLinear } from '../core/resources/regex.js'
import type { Answer, CrudDeps } from './crud.js'
import { item } from './crud.js'
import { isObject } from './patch.js'
import { errorAnswer } from '../core/errors.js'
import type { Kv } from './kv.js'

const bad = (msg: string): Answer => errorAnswer('GW_ADMIN_BAD_REQUEST', msg)

function regexParam(query: URLSearchParams, name: string): RegExp | string | undefined {
  const p = query.get(name)
  if (p === null || p === '') return undefined
  // user patterns run on the linear-time engine: a filter cannot freeze the admin
  return compileLinear(p) ?? `invalid ${name} filter: ${JSON.stringify(p)} is not a regular expression that runs in linear time`
}

/**
 * GET of a resource directory (spec §3.5): `{total, list}` in key order; filters `name`
 * (regex on value.name), `label` (`key` or `key:value`), `uri` (regex on uri/uris) and
 * `filter=upstream_id=…`; pagination when both `page` and `page_size` are numbers, sorted by
 * createdIndex, `total` counted before slicing.
 */
export async function listItems(d: CrudDeps, res: ResourceName, query: URLSearchParams): Promise<Answer> {
  const name = regexParam(query, 'name')
  const uri = regexParam(query, 'uri')
  if (typeof name === 'string') return bad(name)
  if (typeof uri === 'string') return bad(uri)
  const label = query.get('label')
  const filter = new URLSearchParams(query.get('filter') ?? '')
  const upstreamId = filter.get('upstream_id')
  const dir = dirOf(d.prefix, res)
  let kvs: Kv[] = (await d.store.list(dir)).filter((kv) => kv.key.length > dir.length && !kv.key.slice(dir.length).includes('/'))
  kvs = kvs.filter((kv) => {
    const v = isObject(kv.value) ? kv.value : {}
    if (name && !(typeof v['name'] === 'string' && name.test(v['name']))) return false
    if (label) {
      const labels = isObject(v['labels']) ? v['labels'] : {}
      const colon = label.indexOf(':')
      const [k, want] = colon < 0 ? [label, undefined] : [label.slice(0, colon), label.slice(colon + 1)]
      if (labels[k] === undefined || (want !== undefined && labels[k] !== want)) return false
    }
    if (uri) {
      const uris = [v['uri'], ...(Array.isArray(v['uris']) ? v['uris'] : [])].filter((u): u is string => typeof u === 'string')
      if (!uris.some((u) => uri.test(u))) return false
    }
    if (upstreamId !== null && String(v['upstream_id']) !== upstreamId) return false
    return true
  })
  const total = kvs.length
  const page = query.get('page')
  const size = query.get('page_size')
  if (page !== null && size !== null && /^\d+$/.test(page) && /^\d+$/.test(size)) {
    const n = Number(size)
    if (n < 10 || n > 500) return bad('page_size must be between 10 and 500')
    const p = Math.max(1, Number(page))
    kvs = [...kvs].sort((a, b) => (BigInt(a.createRevision) < BigInt(b.createRevision) ? -1 : 1)).slice((p - 1) * n, p * n)
  }
  return { status: 200, body: { total, list: kvs.map((kv) => item(res, kv)) } }
}
