import type { Result } from '../schema/decode.js'
import { parseKey, type ResourceName } from '../etcd/keys.js'
import { emptySnapshot, type Entry, type Snapshot } from './snapshot.js'

/** One change read from etcd. */
export interface ConfigEvent {
  readonly type: 'put' | 'delete'
  readonly key: string
  readonly value: string
  readonly modRevision: string
  readonly createRevision: string
}

/** An object in etcd the data plane refused, with the reason (logged with its key). */
export interface Rejected {
  readonly key: string
  readonly resource: ResourceName
  readonly reason: string
}

/** Decodes a raw stored object of a resource; the same decoders the admin uses. */
export type Decode = (res: ResourceName, id: string, raw: unknown) => Result<unknown>

/**
 * Pure: applies events to a snapshot. An invalid object is refused and the last good value of
 * its key stays in force. Keys that did not change keep their entry's identity, so compiled
 * parts cached by entry value (WeakMap) survive.
 */
export function applyEvents(
  prev: Snapshot,
  events: readonly ConfigEvent[],
  revision: string,
  prefix: string,
  decode: Decode,
): { snapshot: Snapshot; rejected: Rejected[]; changed: Set<ResourceName> } {
  const rejected: Rejected[] = []
  const changed = new Set<ResourceName>()
  // apply works on untyped entries: every value it stores came out of `decode` for its resource
  const prevObjects = prev.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>
  const copies = new Map<ResourceName, Map<string, Entry>>()
  const mapFor = (res: ResourceName): Map<string, Entry> => {
    let m = copies.get(res)
    if (!m) {
      m = new Map(prevObjects[res])
      copies.set(res, m)
    }
    return m
  }
  for (const ev of events) {
    const k = parseKey(prefix, ev.key)
    if (!k) continue
    if (ev.type === 'delete') {
      if (prevObjects[k.res].has(k.id) || copies.get(k.res)?.has(k.id)) {
        mapFor(k.res).delete(k.id)
        changed.add(k.res)
      }
      continue
    }
    let raw: unknown
    try {
      raw = JSON.parse(ev.value)
    } catch {
      rejected.push({ key: ev.key, resource: k.res, reason: 'value is not JSON' })
      continue
    }
    const decoded = decode(k.res, k.id, raw)
    if (!decoded.ok) {
      rejected.push({ key: ev.key, resource: k.res, reason: decoded.error })
      continue
    }
    mapFor(k.res).set(k.id, Object.freeze({ id: k.id, value: decoded.value, modRevision: ev.modRevision, createRevision: ev.createRevision }))
    changed.add(k.res)
  }
  const objects = { ...prevObjects }
  for (const [res, m] of copies) objects[res] = m
  return { snapshot: { revision, objects: objects as unknown as Snapshot['objects'] }, rejected, changed }
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
  // keep identity of entries whose revision did not change
  const prevObjects = prev.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>
  const objects = { ...(fresh.snapshot.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>) }
  for (const res of Object.keys(objects) as ResourceName[]) {
    const m = new Map<string, Entry>()
    for (const [id, e] of objects[res]) {
      const old = prevObjects[res].get(id)
      m.set(id, old && old.modRevision === e.modRevision ? old : e)
    }
    objects[res] = m
  }
  // an object that became invalid keeps its last good value
  for (const r of fresh.rejected) {
    const k = parseKey(prefix, r.key)
    const old = k && prevObjects[k.res].get(k.id)
    if (k && old) (objects[k.res] as Map<string, Entry>).set(k.id, old)
  }
  return { snapshot: { revision, objects: objects as unknown as Snapshot['objects'] }, rejected: fresh.rejected }
}
