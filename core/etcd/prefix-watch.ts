import type { Etcd3, Watcher } from 'etcd3'
import { cancelSoon } from './cancel.js'

/** One key as read from etcd: a listed key is a put. */
export interface KvEvent {
  readonly type: 'put' | 'delete'
  readonly key: string
  readonly value: string
  readonly modRevision: string
  readonly createRevision: string
}

/** Receives one full listing page by page; dropped without `done` when the listing fails or is overtaken. */
export interface ListingSink {
  /** one page of the listing; the watch keeps no reference to it */
  page(kvs: KvEvent[]): void
  /** the listing is complete and consistent at `revision` */
  done(revision: string): void
}

/** What a prefix watch reports to its owner. */
export interface PrefixSink {
  /** starts a full listing at one revision (at start, and after a compaction or a lost watch) */
  listing(): ListingSink
  /** a batch of changes from one watch response (`revision`: the response header's) */
  changes(events: KvEvent[], revision: string): void
  /** etcd reachable or not */
  reachable?(up: boolean, why?: string): void
}

export interface PrefixWatch {
  close(): Promise<void>
}

/**
 * Keys per listing page. etcd (3.4, 3.5) counts every remaining key of the range for each page,
 * so small pages make a large listing quadratic (500: 9 s for 100k objects, 2,000: under 3 s);
 * a page is decoded and dropped before the next is asked for, so memory stays one page.
 */
const PAGE = 2000
/** the first back-off after a failure, doubled up to MAX_RETRY_MS */
const RETRY_MS = 100
const MAX_RETRY_MS = 2000

/** The end of the range of keys that start with `dir`. */
export function rangeEnd(dir: string): Buffer {
  const b = Buffer.from(dir)
  b[b.length - 1] = (b[b.length - 1] ?? 0) + 1
  return b
}

const toEvent = (type: 'put' | 'delete', kv: { key: Buffer; value: Buffer; mod_revision: string; create_revision: string }): KvEvent => ({
  type,
  key: kv.key.toString(),
  value: kv.value.toString(),
  modRevision: kv.mod_revision,
  createRevision: kv.create_revision,
})

/**
 * Lists the keys under `dir` in pages at one revision (the first page's), each page given to
 * `onPage` before the next is asked for: the response (~3 MB of buffers for a full page) is
 * garbage once its page is handed over. Resolves with that revision; undefined when `onPage`
 * returned false (the listing stops there).
 */
export async function listPrefix(etcd: Etcd3, dir: string, onPage: (kvs: KvEvent[]) => boolean | void): Promise<string | undefined> {
  const end = rangeEnd(dir)
  let key: Buffer | undefined = Buffer.from(dir)
  let revision: string | undefined
  while (key) {
    const res = await etcd.kv.range({ key, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) })
    revision ??= res.header.revision
    const last = res.kvs[res.kvs.length - 1]
    key = res.more && last !== undefined ? Buffer.concat([last.key, Buffer.from([0])]) : undefined
    if (onPage(res.kvs.map((kv) => toEvent('put', kv))) === false) return undefined
  }
  return revision ?? '0'
}

/**
 * The one list-then-watch of an etcd prefix (the data plane's config and the admin's SNI index
 * both use it). Lists `{prefix}/` in pages at one revision, then watches from revision+1.
 * etcd3's watch manager reconnects with back-off and resumes from the revision after the last one
 * delivered (core/etcd/internals.ts keeps a 'created' answer from moving that point past
 * undelivered events); when the watch is cancelled (compaction past our revision, an auth token
 * etcd forgot) or a listing fails, it lists everything again.
 */
export function watchPrefix(etcd: Etcd3, prefix: string, sink: PrefixSink): PrefixWatch {
  const dir = prefix.endsWith('/') ? prefix : `${prefix}/`
  let closed = false
  let watcher: Watcher | undefined
  let delay = RETRY_MS
  let generation = 0
  const stale = (mine: number): boolean => closed || mine !== generation

  const sync = async (): Promise<void> => {
    const mine = ++generation
    if (watcher) {
      const w = watcher
      watcher = undefined
      await cancelSoon(w)
    }
    while (!stale(mine)) {
      try {
        const listing = sink.listing()
        const revision = await listPrefix(etcd, dir, (kvs) => {
          if (stale(mine)) return false
          listing.page(kvs)
        })
        if (revision === undefined) return
        sink.reachable?.(true)
        listing.done(revision)
        delay = RETRY_MS
        // the watcher is built and given its listeners in one go: create() resolves only after
        // 'connected', and a response arriving in the same tick would reach no listener (and a
        // stream lost in between resumed past it)
        const w = etcd
          .watch()
          .prefix(dir)
          .startRevision((BigInt(revision) + 1n).toString())
          .watcher()
        watcher = w
        let connected = false
        w.on('data', (res) => {
          if (watcher !== w) return
          const events = res.events.map((e) => toEvent(e.type === 'Delete' ? 'delete' : 'put', e.kv))
          if (events.length > 0) sink.changes(events, res.header.revision)
        })
        w.on('disconnected', (err: Error) => sink.reachable?.(false, err.message))
        w.on('connected', () => {
          connected = true
          sink.reachable?.(true)
        })
        // a cancelled watch: list everything again; etcd has cancelled this watcher already, so it
        // is dropped rather than cancelled once more. Refused before it was ever created: list
        // again after the back-off, as when a listing fails.
        w.on('error', () => {
          if (watcher !== w) return
          watcher = undefined
          const wait = connected ? 0 : delay
          if (!connected) delay = Math.min(delay * 2, MAX_RETRY_MS)
          setTimeout(() => void sync(), wait).unref()
        })
        return
      } catch (err) {
        if (stale(mine)) return
        sink.reachable?.(false, (err as Error).message)
        await new Promise((r) => setTimeout(r, delay).unref())
        delay = Math.min(delay * 2, MAX_RETRY_MS)
      }
    }
  }

  void sync()
  return {
    async close() {
      closed = true
      generation++
      const w = watcher
      watcher = undefined
      if (w) await cancelSoon(w)
    },
  }
}
