import type { Etcd3 } from 'etcd3'
import type { Logger } from '../log.js'
import { applyEvents, type Changed, type Decode, type Rejected } from './apply.js'
import { createFullLoad } from './full-load.js'
import { emptySnapshot, type Snapshot } from './snapshot.js'
import { watchPrefix } from '../etcd/prefix-watch.js'

/** Sync state of the store, for readiness and metrics. */
export interface SyncState {
  readonly reachable: boolean
  readonly loaded: boolean
  readonly revision: string
  /** epoch ms of the last applied event or load (0: never) */
  readonly lastEventMs: number
  /** last applied revision per resource */
  readonly modifyIndexes: Readonly<Record<string, string>>
}

/** The live configuration of one worker: the current generation, swapped in one assignment. */
export interface Store<G> {
  current(): G
  /** resolves after the first full load has been published */
  readonly ready: Promise<void>
  state(): SyncState
  close(): Promise<void>
}

/**
 * How a snapshot differs from the previous generation's: a full load (after start or a lost
 * watch: everything is rebuilt), or the objects one batch of watched events put or deleted.
 */
export type Change = { readonly full: true } | { readonly full: false; readonly changed: Changed }

/** Builds the next generation from a snapshot (pure; reuses the previous generation's parts). */
export type Derive<G> = (snapshot: Snapshot, prev: G, change: Change) => G

/**
 * Wires watcher → apply → derive → publish. The only place a generation is published. Invalid
 * objects are logged with their key and counted; the last good version stays in force.
 */
export function createStore<G>(o: {
  etcd: Etcd3
  prefix: string
  decode: Decode
  derive: Derive<G>
  initial: G
  log: Logger
  onRejected?: (r: Rejected) => void
  onPublish?: (g: G, prev: G) => void
  /** called after each page of a full listing is decoded (the worker frees the page's buffers) */
  afterPage?: () => void
}): Store<G> {
  let snapshot = emptySnapshot()
  let current = o.initial
  let reachable = false
  let loaded = false
  let lastEventMs = 0
  const modifyIndexes: Record<string, string> = {}
  let markReady: () => void = () => undefined
  const ready = new Promise<void>((r) => (markReady = r))

  const publish = (next: G): void => {
    const prev = current
    current = next
    o.onPublish?.(next, prev)
  }
  const reject = (list: readonly Rejected[]): void => {
    for (const r of list) {
      o.log.warn({ key: r.key, reason: r.reason }, 'config object refused; its last good version stays in force')
      o.onRejected?.(r)
    }
  }

  const watcher = watchPrefix(o.etcd, o.prefix, {
    listing() {
      // decoded page by page (the raw page is dropped at once); published only when complete
      const load = createFullLoad(o.prefix, o.decode)
      return {
        page(kvs) {
          load.page(kvs)
          o.afterPage?.()
        },
        done(revision) {
          const r = load.finish(snapshot, revision)
          reject(r.rejected)
          snapshot = r.snapshot
          for (const [res, rev] of Object.entries(r.modifyIndexes)) {
            const had = modifyIndexes[res]
            if (had === undefined || BigInt(rev) > BigInt(had)) modifyIndexes[res] = rev
          }
          publish(o.derive(snapshot, current, { full: true }))
          lastEventMs = Date.now()
          o.log.info({ revision, objects: r.listed, rejected: r.rejected.length }, 'configuration loaded')
          if (!loaded) {
            loaded = true
            markReady()
          }
        },
      }
    },
    changes(events, revision) {
      const r = applyEvents(snapshot, events, revision, o.prefix, o.decode)
      reject(r.rejected)
      snapshot = r.snapshot
      for (const res of r.changed.keys()) modifyIndexes[res] = revision
      if (r.changed.size > 0) publish(o.derive(snapshot, current, { full: false, changed: r.changed }))
      lastEventMs = Date.now()
    },
    reachable(up, why) {
      if (up !== reachable) o.log[up ? 'info' : 'warn']({ why }, up ? 'etcd reachable' : 'etcd unreachable; serving the last configuration')
      reachable = up
    },
  })

  return {
    current: () => current,
    ready,
    state: () => ({ reachable, loaded, revision: snapshot.revision, lastEventMs, modifyIndexes: { ...modifyIndexes } }),
    close: () => watcher.close(),
  }
}
