import type { Snapshot } from './config/snapshot.js'
import type { ResourceName } from './etcd/keys.js'
import type { Generation } from './state.js'

/** Pure: snapshot (+ the previous generation) → the next generation, reusing unchanged parts. */
export function deriveGeneration(snapshot: Snapshot, prev: Generation, change: { full: boolean; changed: ReadonlySet<ResourceName> }): Generation {
  void change
  return { version: prev.version + 1, snapshot }
}
