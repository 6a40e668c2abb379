import { errorAnswer, GatewayError } from '../core/errors.js'
import { dirOf, isResourceName, keyOf, type ResourceName } from '../core/etcd/keys.js'
import { isIdString } from '../core/resources/defs.js'
import { isUsername } from '../core/resources/consumer.js'
import type { Registry } from '../core/resources/registry.js'
import type { PluginLookup } from '../core/resources/plugins.js'
import { admit, type AdmitContext, type Admitted } from './checks.js'
import { formatGenId, type AdminPath } from './ids.js'
import type { Kv, KvStore, KeyedQueue } from './kv.js'
import { isObject, mergePatch, setSubPath } from './patch.js'
import { redactForRead, redactForWrite } from './redact.js'
import { listItems } from './list.js'
import { sharedSniWarnings, type SniClaim } from './sni-claims.js'

/** What the CRUD handlers work with. */
export interface CrudDeps {
  readonly store: KvStore
  readonly registry: Registry
  readonly plugins: PluginLookup
  readonly keyring: readonly string[]
  readonly prefix: string
  /** epoch milliseconds */
  readonly now: () => number
  readonly queue: KeyedQueue
  /** conditional-write attempts before giving up with 409 */
  readonly maxAttempts: number
  /** the built-in plugins' names, for GET /apisix/admin/plugins/list */
  readonly pluginNames: readonly string[]
}

/** An answer: status and JSON body. */
export interface Answer {
  readonly status: number
  readonly body: unknown
}

type Obj = Record<string, unknown>

const bad = (msg: string): Answer => errorAnswer('GW_ADMIN_BAD_REQUEST', msg)
const notFound: Answer = errorAnswer('GW_ADMIN_NOT_FOUND')
const secs = (d: CrudDeps): number => Math.floor(d.now() / 1000)

/** JSON-safe index: etcd revisions are decimal strings; numbers as APISIX sends, while exact. */
const index = (rev: string): number | string => (BigInt(rev) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(rev) : rev)

/** One stored object as GET answers it. */
export const item = (res: ResourceName, kv: Kv): Obj => ({
  key: kv.key,
  value: redactForRead(res, kv.value),
  createdIndex: index(kv.createRevision),
  modifiedIndex: index(kv.modRevision),
})

function envelope(res: ResourceName, key: string, value: Obj, warnings: readonly string[]): Obj {
  const out: Obj = { key, value: redactForWrite(res, value) }
  if (warnings.length > 0) out['warning'] = warnings.join('; ')
  return out
}

const ctxOf = (d: CrudDeps): AdmitContext => ({ registry: d.registry, plugins: d.plugins, keyring: d.keyring, store: d.store, prefix: d.prefix, nowMs: d.now() })

/** Forbidden on PUT and POST bodies (APISIX: `the property is forbidden:  create_time`, two spaces). */
function forbidden(body: Obj): string | undefined {
  const places: Array<[string, unknown]> = [['', body], ['upstream.', body['upstream']]]
  if (isObject(body['plugins'])) for (const [n, c] of Object.entries(body['plugins'])) places.push([`plugins.${n}.`, c])
  for (const [where, o] of places) {
    if (!isObject(o)) continue
    for (const f of ['create_time', 'update_time']) if (o[f] !== undefined) return `the property is forbidden:  ${where}${f}`
  }
  return undefined
}

/** An admitted object to write, and how to answer once it is written. */
interface Write {
  readonly res: ResourceName
  readonly status: number
  readonly admitted: Admitted
}

/**
 * After a conditional write lost to another writer (another admin node): wait a random while,
 * growing with the attempt (up to 2, 4 … 64 ms), so two nodes writing one key fall out of step
 * instead of losing to each other on every retry (seen: 16 losses in a row for one of 120
 * concurrent PATCHes from two admins on a loaded host).
 */
const lostRace = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt + 1, 6)))

/**
 * Writes with compare-and-swap on the key's mod revision: `build` gets the current value and
 * returns either a final answer or the object to store; a concurrent writer makes it run again
 * on the new value. Writers to one key inside this process queue instead of colliding. An ssl
 * object's shared-SNI warnings are looked up once it is written, in an index that has seen
 * that write (so every earlier write by anyone counts).
 */
async function casWrite(d: CrudDeps, key: string, build: (cur: Kv | undefined) => Promise<Answer | Write>): Promise<Answer> {
  return d.queue.run(key, async () => {
    for (let attempt = 0; attempt < d.maxAttempts; attempt++) {
      const cur = await d.store.get(key)
      const next = await build(cur)
      if (!('admitted' in next)) return next
      const { stored, warnings, sniNames } = next.admitted
      const rev = await d.store.putIf(key, JSON.stringify(stored), cur?.modRevision ?? '0')
      if (rev === undefined) {
        await lostRace(attempt)
        continue
      }
      const shared = sniNames ? sharedSniWarnings(sniNames, await sniClaimsAfter(d, key, sniNames, rev)) : []
      return { status: next.status, body: envelope(next.res, key, stored, [...warnings, ...shared]) }
    }
    throw new GatewayError('GW_ADMIN_CONFLICT', [key])
  })
}

/** The other ssl objects sharing a name; none when etcd cannot tell (the object is written already). */
async function sniClaimsAfter(d: CrudDeps, key: string, names: readonly string[], rev: string): Promise<SniClaim[]> {
  try {
    return await d.store.sniClaims(dirOf(d.prefix, 'ssls'), new Set(names), key, rev)
  } catch {
    return []
  }
}

/** Dispatches one admin call on a resource (the URL is already split and the body parsed). */
export async function handleCrud(d: CrudDeps, method: string, path: AdminPath, query: URLSearchParams, body: unknown): Promise<Answer> {
  const res = path.resource
  if (res === 'plugins' && path.id === 'list' && method === 'GET') return { status: 200, body: [...d.pluginNames].sort() }
  if (!isResourceName(res)) return errorAnswer('GW_ADMIN_UNKNOWN_RESOURCE', res)
  const kind = d.registry[res].kind
  if (res === 'consumers' && (method === 'POST' || method === 'PATCH')) {
    return errorAnswer('GW_ADMIN_CONSUMER_METHOD', method)
  }
  if (path.id !== undefined && !(res === 'consumers' ? isUsername(path.id) : isIdString(path.id))) {
    return bad(res === 'consumers' ? 'wrong username' : `invalid configuration: property "id" validation failed: ${JSON.stringify(path.id)} does not match ${kind} id rules`)
  }
  switch (method) {
    case 'GET':
      return path.id === undefined ? listItems(d, res, query) : getOne(d, res, path.id)
    case 'PUT':
      return put(d, res, kind, path.id, body)
    case 'POST':
      return post(d, res, kind, path.id, body)
    case 'PATCH':
      return patch(d, res, kind, path, body)
    case 'DELETE':
      return del(d, res, kind, path.id, query)
    default:
      return errorAnswer('GW_ADMIN_METHOD', method, `/apisix/admin/${res}`)
  }
}

async function getOne(d: CrudDeps, res: ResourceName, id: string): Promise<Answer> {
  const kv = await d.store.get(keyOf(d.prefix, res, id))
  return kv ? { status: 200, body: item(res, kv) } : notFound
}

async function put(d: CrudDeps, res: ResourceName, kind: string, urlId: string | undefined, body: unknown): Promise<Answer> {
  if (body === undefined) return bad('missing configurations')
  if (!isObject(body)) return bad('invalid configuration: the body must be a JSON object')
  let id: string
  if (res === 'consumers') {
    const u = body['username']
    if (urlId !== undefined && u !== undefined && u !== urlId) return bad('wrong username')
    if (typeof u !== 'string') return bad('invalid configuration: property "username" is required')
    if (!isUsername(u)) return bad('invalid configuration: property "username" validation failed: must match pattern "^[a-zA-Z0-9_\\-]+$"')
    id = u
  } else {
    const bodyId = body['id']
    if (urlId === undefined && bodyId === undefined) return bad(`missing ${kind} id`)
    if (urlId !== undefined && bodyId !== undefined && String(bodyId) !== urlId) return bad(`wrong ${kind} id`)
    id = urlId ?? String(bodyId)
    if (!isIdString(id)) return bad(`invalid configuration: property "id" validation failed: ${JSON.stringify(id)} does not match ${kind} id rules`)
  }
  const why = forbidden(body)
  if (why) return bad(why)
  const key = keyOf(d.prefix, res, id)
  return casWrite(d, key, async (cur) => {
    const now = secs(d)
    const prevCreate = isObject(cur?.value) ? cur.value['create_time'] : undefined
    const obj: Obj = { ...body }
    // the URL's id is stored as a string; an id only in the body keeps its JSON type (APISIX)
    if (res !== 'consumers') obj['id'] = urlId ?? body['id']
    obj['create_time'] = typeof prevCreate === 'number' ? prevCreate : now
    obj['update_time'] = now
    const a = await admit(ctxOf(d), res, obj, key)
    if (!a.ok) return bad(a.error)
    return { res, status: cur ? 200 : 201, admitted: a.value }
  })
}

async function post(d: CrudDeps, res: ResourceName, kind: string, urlId: string | undefined, body: unknown): Promise<Answer> {
  if (urlId !== undefined) return bad(`wrong ${kind} id, do not need it`)
  if (body === undefined) return bad('missing configurations')
  if (!isObject(body)) return bad('invalid configuration: the body must be a JSON object')
  if (body['id'] !== undefined) return bad(`wrong ${kind} id, do not need it`)
  const why = forbidden(body)
  if (why) return bad(why)
  // validate before spending an id, as APISIX does
  const now = secs(d)
  const probe = await admit(ctxOf(d), res, { ...body, id: '1', create_time: now, update_time: now }, '')
  if (!probe.ok) return bad(probe.error)
  const id = formatGenId(await d.store.newRevision())
  const key = keyOf(d.prefix, res, id)
  return casWrite(d, key, async () => {
    const obj: Obj = { ...body, id, create_time: now, update_time: now }
    const a = await admit(ctxOf(d), res, obj, key)
    if (!a.ok) return bad(a.error)
    return { res, status: 201, admitted: a.value }
  })
}

async function patch(d: CrudDeps, res: ResourceName, kind: string, path: AdminPath, body: unknown): Promise<Answer> {
  if (path.id === undefined) return bad(`missing ${kind} id`)
  if (body === undefined) return bad('missing new configuration')
  const sub = path.sub
  if (sub.length === 0 && !isObject(body)) return bad('invalid configuration: the body must be a JSON object')
  const key = keyOf(d.prefix, res, path.id)
  return casWrite(d, key, async (cur) => {
    if (!cur || !isObject(cur.value)) return notFound
    const now = secs(d)
    let obj: Obj
    if (sub.length === 0) {
      obj = mergePatch(cur.value, body) as Obj
      // PATCH may carry update_time (and create_time) explicitly; 0 counts as present
      if (!isObject(body) || body['update_time'] === undefined) obj['update_time'] = now
    } else {
      const r = setSubPath(cur.value, sub, body)
      if (!r.ok) return bad(r.error)
      obj = r.value
      obj['update_time'] = now
    }
    obj['id'] = cur.value['id'] ?? path.id
    const a = await admit(ctxOf(d), res, obj, key)
    if (!a.ok) return bad(a.error)
    return { res, status: 200, admitted: a.value }
  })
}

async function del(d: CrudDeps, res: ResourceName, kind: string, id: string | undefined, query: URLSearchParams): Promise<Answer> {
  if (id === undefined) return bad(`missing ${kind} id`)
  const key = keyOf(d.prefix, res, id)
  return d.queue.run(key, async () => {
    for (let attempt = 0; attempt < d.maxAttempts; attempt++) {
      const cur = await d.store.get(key)
      if (!cur) return notFound
      if (res === 'upstreams' && query.get('force') !== 'true') {
        for (const r of await d.store.list(dirOf(d.prefix, 'routes'))) {
          if (isObject(r.value) && r.value['upstream_id'] !== undefined && String(r.value['upstream_id']) === id) {
            return bad(`can not delete this upstream, route [${String(r.value['id'] ?? r.key.slice(r.key.lastIndexOf('/') + 1))}] is still using it now`)
          }
        }
      }
      if (await d.store.deleteIf(key, cur.modRevision)) {
        if (res === 'consumers') await d.store.deletePrefix(`${key}/credentials/`)
        return { status: 200, body: { deleted: '1', key } }
      }
      await lostRace(attempt)
    }
    throw new GatewayError('GW_ADMIN_CONFLICT', [key])
  })
}
