import { RESOURCES, type ResourceName } from '../etcd/keys.js'

/** One stored object: its decoded, frozen value and its etcd revisions. */
export interface Entry<T = unknown> {
  readonly id: string
  readonly value: T
  readonly modRevision: string
  readonly createRevision: string
}

/** The data plane's view of etcd: per resource a map id → entry, and the revision it reflects. */
export interface Snapshot {
  /** etcd revision this snapshot reflects ('0' before the first load) */
  readonly revision: string
  readonly objects: Readonly<Record<ResourceName, ReadonlyMap<string, Entry>>>
}

/** The snapshot before the first load. */
export function emptySnapshot(): Snapshot {
  const objects = {} as Record<ResourceName, ReadonlyMap<string, Entry>>
  for (const r of RESOURCES) objects[r] = new Map()
  return { revision: '0', objects }
}
