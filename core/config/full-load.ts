import { parseKey, type ResourceName } from '../etcd/keys.js'
import { PERSISTENT_RESOURCES, entryOfPut, type ConfigEvent, type Decode, type Rejected } from './apply.js'
import { persistentMapOf } from '../collections/persistent-map.js'
import type { Entry, Snapshot } from './snapshot.js'

/**
 * A full listing decoded page by page (pure, no I/O): each page is parsed and decoded when it
 * arrives, so the caller can drop its raw text at once and a 100k-object listing never exists
 * twice in memory (raw and decoded). `finish` gives what loadAll (apply.ts) gives for the whole
 * listing: the same entries, identity kept for unchanged revisions, refused objects keeping
 * their last good value.
 */
export interface FullLoad {
  /** Decodes one page of the listing; the events are not retained. */
  page(events: readonly ConfigEvent[]): void
  /** The snapshot of the whole listing at `revision`, built against the previous snapshot. */
  finish(prev: Snapshot, revision: string): FullLoadResult
}

/** What a finished full load gives. */
export interface FullLoadResult {
  readonly snapshot: Snapshot
  readonly rejected: readonly Rejected[]
  /** per resource, the greatest modRevision listed (decimal string) */
  readonly modifyIndexes: Readonly<Record<string, string>>
  /** number of object keys listed (refused ones included) */
  readonly listed: number
}

/** Starts a full load under `prefix`, decoding with `decode`. */
export function createFullLoad(prefix: string, decode: Decode): FullLoad {
  const fresh = new Map<ResourceName, Map<string, Entry>>()
  const rejected: Rejected[] = []
  const maxRev = new Map<string, bigint>()
  let listed = 0
  const dir = prefix.endsWith('/') ? prefix : `${prefix}/`
  return {
    page(events) {
      // decoded as applyEvents decodes a put (a listing holds only puts), straight into plain maps:
      // the persistent map of a resource is built once, in finish
      for (const ev of events) {
        const k = ev.type === 'put' ? parseKey(prefix, ev.key) : undefined
        if (!k) continue
        const entry = entryOfPut(ev, k.res, k.id, decode, rejected)
        if (!entry) continue
        let m = fresh.get(k.res)
        if (!m) fresh.set(k.res, (m = new Map()))
        m.set(k.id, entry)
      }
      for (const ev of events) {
        listed++
        const res = ev.key.startsWith(dir) ? ev.key.slice(dir.length).split('/', 1)[0] ?? '' : ''
        const rev = BigInt(ev.modRevision)
        if ((maxRev.get(res) ?? -1n) < rev) maxRev.set(res, rev)
      }
    },
    finish(prev, revision) {
      const prevObjects = prev.objects as unknown as Record<ResourceName, ReadonlyMap<string, Entry>>
      const objects = {} as Record<ResourceName, ReadonlyMap<string, Entry>>
      for (const res of Object.keys(prevObjects) as ResourceName[]) {
        const m = fresh.get(res) ?? new Map<string, Entry>()
        const before = prevObjects[res]
        // keep the identity of entries whose revision did not change (compiled parts are cached by entry)
        if (before.size > 0) {
          for (const [id, e] of m) {
            const old = before.get(id)
            if (old && old !== e && old.modRevision === e.modRevision) m.set(id, old)
          }
        }
        objects[res] = m
      }
      // an object that became invalid keeps its last good value
      for (const r of rejected) {
        const k = parseKey(prefix, r.key)
        const old = k && prevObjects[k.res].get(k.id)
        if (k && old) (objects[k.res] as Map<string, Entry>).set(k.id, old)
      }
      // the resources apply.ts keeps in persistent maps get one, built once from the whole listing
      for (const res of PERSISTENT_RESOURCES) objects[res] = persistentMapOf(objects[res])
      const modifyIndexes: Record<string, string> = {}
      for (const [res, rev] of maxRev) modifyIndexes[res] = rev.toString()
      fresh.clear()
      return { snapshot: { revision, objects: objects as unknown as Snapshot['objects'] }, rejected, modifyIndexes, listed }
    },
  }
}
