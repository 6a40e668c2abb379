import { RESOURCES, type ResourceName } from '../etcd/keys.js'
import type { ResourceTypes } from '../resources/registry.js'

/** One stored object: its decoded, frozen value and its etcd revisions. */
export interface Entry<T = unknown> {
  readonly id: string
  readonly value: T
  readonly modRevision: string
  readonly createRevision: string
}

/** Per resource, the decoded objects by id. */
export type Objects = { readonly [K in ResourceName]: ReadonlyMap<string, Entry<Readonly<ResourceTypes[K]> & { readonly id: string }>> }

/** The data plane's view of etcd: per resource a map id → entry, and the revision it reflects. */
export interface Snapshot {
  /** etcd revision this snapshot reflects ('0' before the first load) */
  readonly revision: string
  readonly objects: Objects
}

/** The snapshot before the first load. */
export function emptySnapshot(): Snapshot {
  const objects = {} as Record<ResourceName, ReadonlyMap<string, Entry<never>>>
  for (const r of RESOURCES) objects[r] = new Map()
  return { revision: '0', objects }
}
