import type { Result } from '../schema/decode.js'
import type { KvEvent } from '../etcd/prefix-watch.js'
import { parseKey, type ResourceName } from '../etcd/keys.js'
import { emptySnapshot, type Entry, type Snapshot } from './snapshot.js'
import { asPersistent, persistentMapOf } from '../collections/persistent-map.js'

/** One change read from etcd (core/etcd/prefix-watch.ts). */
export type ConfigEvent = KvEvent

/** An object in etcd the data plane refused, with the reason (logged with its key). */
export interface Rejected {
  readonly key: string
  readonly resource: ResourceName
  readonly reason: string
}

/**
 * What one batch of events changed: per resource, the ids of the objects it put or deleted (a put
 * refused by the decoder, or a delete of an absent key, changes nothing). core/generation/derive.ts
 * rebuilds from these ids: nothing is diffed again.
 */
export type Changed = ReadonlyMap<ResourceName, ReadonlySet<string>>

/** Decodes a raw stored object of a resource; the same decoders the admin uses. */
export type Decode = (res: ResourceName, id: string, raw: unknown) => Result<unknown>

/**
 * The entry a put stores, or undefined once the reason it is refused (not JSON, or refused by
 * `decode`) is pushed onto `rejected`. Shared by applyEvents and the paged full load.
 */
export function entryOfPut(ev: ConfigEvent, res: ResourceName, id: string, decode: Decode, rejected: Rejected[]): Entry | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(ev.value)
  } catch {
    rejected.push({ key: ev.key, resource: res, reason: 'value is not JSON' })
    return undefined
  }
  const decoded = decode(res, id, raw)
  if (!decoded.ok) {
    rejected.push({ key: ev.key, resource: res, reason: decoded.error })
    return undefined
  }
  return Object.freeze({ id, value: decoded.value, modRevision: ev.modRevision, createRevision: ev.createRevision })
}

/**
 * Pure: applies events to a snapshot. An invalid object is refused and the last good value of
 * its key stays in force. Keys that did not change keep their entry's identity, so compiled
 * parts cached by entry value (WeakMap) survive. A change to a persistent resource (ssls) costs
 * O(log n); the others copy their map once per batch.
 */
export function applyEvents(
  prev: Snapshot,
  events: readonly ConfigEvent[],
  revision: string,
  prefix: string,
  decode: Decode,
): { snapshot: Snapshot; rejected: Rejected[]; changed: Changed } {
  const rejected: Rejected[] = []
  const changed = new Map<ResourceName, Set<string>>()
  const note = (res: ResourceName, id: string): void => {
    const ids = changed.get(res)
    if (ids) ids.add(id)
    else changed.set(res, new Set([id]))
  }
  // apply works on untyped entries: every value it stores came out of `decode` for its resource
  const prevObjects = prev.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>
  const drafts = new Map<ResourceName, Draft>()
  const draftOf = (res: ResourceName): Draft => {
    let d = drafts.get(res)
    if (!d) drafts.set(res, (d = draft(res, prevObjects[res])))
    return d
  }
  for (const ev of events) {
    const k = parseKey(prefix, ev.key)
    if (!k) continue
    if (ev.type === 'delete') {
      if ((drafts.get(k.res) ?? prevObjects[k.res]).has(k.id)) {
        draftOf(k.res).delete(k.id)
        note(k.res, k.id)
      }
      continue
    }
    const entry = entryOfPut(ev, k.res, k.id, decode, rejected)
    if (!entry) continue
    draftOf(k.res).set(k.id, entry)
    note(k.res, k.id)
  }
  const objects = { ...prevObjects }
  for (const [res, d] of drafts) objects[res] = d.done()
  return { snapshot: { revision, objects: objects as unknown as Snapshot['objects'] }, rejected, changed }
}

/**
 * Resources kept in persistent maps (core/collections/persistent-map.ts): a change costs O(log n)
 * instead of a copy of every entry (the expiry tracker, core/ops/expiry.ts, diffs two versions). Their
 * iteration order is hash order, so only resources whose readers never depend on it: the SNI
 * index orders claimants by update_time and id. Routes keep Maps (insertion order breaks ties).
 */
export const PERSISTENT_RESOURCES: ReadonlySet<ResourceName> = new Set<ResourceName>(['ssls'])

/** A resource's map being changed by one batch of events. */
interface Draft {
  has(id: string): boolean
  set(id: string, e: Entry): void
  delete(id: string): void
  done(): ReadonlyMap<string, Entry>
}

function draft(res: ResourceName, base: ReadonlyMap<string, Entry>): Draft {
  if (PERSISTENT_RESOURCES.has(res)) {
    let m = asPersistent(base)
    return {
      has: (id) => m.has(id),
      set: (id, e) => void (m = m.set(id, e)),
      delete: (id) => void (m = m.delete(id)),
      done: () => m,
    }
  }
  const m = new Map(base)
  return {
    has: (id) => m.has(id),
    set: (id, e) => void m.set(id, e),
    delete: (id) => void m.delete(id),
    done: () => m,
  }
}

/** Pure: a full load replaces everything (after start or a compaction), reusing unchanged entries. */
export function loadAll(
  prev: Snapshot,
  kvs: readonly ConfigEvent[],
  revision: string,
  prefix: string,
  decode: Decode,
): { snapshot: Snapshot; rejected: Rejected[] } {
  const fresh = applyEvents(emptySnapshot(), kvs, revision, prefix, decode)
  const prevObjects = prev.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>
  const freshObjects = fresh.snapshot.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>
  const lists = new Map<ResourceName, Map<string, Entry>>()
  for (const res of Object.keys(freshObjects) as ResourceName[]) {
    // keep identity of entries whose revision did not change
    const m = new Map<string, Entry>()
    for (const [id, e] of freshObjects[res]) {
      const old = prevObjects[res].get(id)
      m.set(id, old && old.modRevision === e.modRevision ? old : e)
    }
    lists.set(res, m)
  }
  // an object that became invalid keeps its last good value
  for (const r of fresh.rejected) {
    const k = parseKey(prefix, r.key)
    const old = k && prevObjects[k.res].get(k.id)
    if (k && old) lists.get(k.res)?.set(k.id, old)
  }
  const objects = { ...freshObjects }
  for (const [res, m] of lists) objects[res] = PERSISTENT_RESOURCES.has(res) ? persistentMapOf(m) : m
  return { snapshot: { revision, objects: objects as unknown as Snapshot['objects'] }, rejected: fresh.rejected }
}
