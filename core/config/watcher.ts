import type { Etcd3, Watcher as EtcdWatcher } from 'etcd3'
import type { ConfigEvent } from './apply.js'
import { cancelSoon } from '../etcd/cancel.js'

/** Receives one full listing page by page; dropped without `done` when the listing fails. */
export interface ListingSink {
  /** one page of the listing; the watcher keeps no reference to it */
  page(kvs: ConfigEvent[]): void
  /** the listing is complete and consistent at `revision` */
  done(revision: string): void
}

/** What the watcher reports to its owner. */
export interface WatchSink {
  /** starts a full listing at one revision (at start, and after a compaction or a lost watch) */
  listing(): ListingSink
  /** a batch of changes from one watch response */
  changes(events: ConfigEvent[], revision: string): void
  /** etcd reachable or not */
  reachable(up: boolean, why?: string): void
}

export interface ConfigWatcher {
  close(): Promise<void>
}

/**
 * Keys per listing page. etcd (3.4, 3.5) counts every remaining key of the range for each page,
 * so small pages make a large listing quadratic (500: 9 s for 100k objects, 2,000: under 3 s);
 * a page is decoded and dropped before the next is asked for, so memory stays one page.
 */
const PAGE = 2000


const rangeEnd = (prefix: string): Buffer => {
  const b = Buffer.from(prefix)
  b[b.length - 1] = (b[b.length - 1] ?? 0) + 1
  return b
}

/**
 * Lists `{prefix}/` in pages at one revision, then watches from revision+1. Reconnects with
 * back-off (etcd3's watch manager resumes the watch from the revision after the last one
 * delivered); when the watch is cancelled (compaction past our revision) or a listing fails,
 * lists everything again.
 */
export function createWatcher(etcd: Etcd3, prefix: string, sink: WatchSink): ConfigWatcher {
  const dir = prefix.endsWith('/') ? prefix : `${prefix}/`
  let closed = false
  let watcher: EtcdWatcher | undefined
  let delay = 100
  let generation = 0

  // one page as events: the response (its buffers, ~3 MB) is garbage once this returns, so the
  // young collection the sink runs after each page frees it while it is young
  const listPage = async (key: Buffer, revision: string | undefined): Promise<{ kvs: ConfigEvent[]; revision: string; next: Buffer | undefined }> => {
    const res = await etcd.kv.range({ key, range_end: rangeEnd(dir), limit: PAGE, ...(revision ? { revision } : {}) })
    const kvs: ConfigEvent[] = res.kvs.map((kv) => ({
      type: 'put',
      key: kv.key.toString(),
      value: kv.value.toString(),
      modRevision: kv.mod_revision,
      createRevision: kv.create_revision,
    }))
    const last = res.kvs[res.kvs.length - 1]
    return { kvs, revision: res.header.revision, next: res.more && last !== undefined ? Buffer.concat([last.key, Buffer.from([0])]) : undefined }
  }

  // every page at the first page's revision; each page goes to `into` before the next is asked for
  const listAll = async (into: ListingSink): Promise<string> => {
    let key: Buffer | undefined = Buffer.from(dir)
    let revision: string | undefined
    while (key) {
      const page = await listPage(key, revision)
      revision ??= page.revision
      key = page.next
      into.page(page.kvs)
    }
    return revision ?? '0'
  }

  const sync = async (): Promise<void> => {
    const mine = ++generation
    if (watcher) {
      const w = watcher
      watcher = undefined
      await cancelSoon(w)
    }
    while (!closed && mine === generation) {
      try {
        const listing = sink.listing()
        const revision = await listAll(listing)
        if (closed || mine !== generation) return
        sink.reachable(true)
        listing.done(revision)
        delay = 100
        // the watcher is built and given its listeners in one go (create() would resolve only after
        // 'connected', and a response arriving in the same tick would reach no listener)
        const w = etcd
          .watch()
          .prefix(dir)
          .startRevision((BigInt(revision) + 1n).toString())
          .watcher()
        watcher = w
        // etcd3 resumes it after a lost stream from the revision after the last one delivered
        // (core/etcd/internals.ts keeps a 'created' answer from moving that point past undelivered events)
        let connected = false
        w.on('data', (res) => {
          const events: ConfigEvent[] = res.events.map((e) => ({
            type: e.type === 'Delete' ? 'delete' : 'put',
            key: e.kv.key.toString(),
            value: e.kv.value.toString(),
            modRevision: e.kv.mod_revision,
            createRevision: e.kv.create_revision,
          }))
          if (events.length > 0) sink.changes(events, res.header.revision)
        })
        w.on('disconnected', (err: Error) => sink.reachable(false, err.message))
        w.on('connected', () => {
          connected = true
          sink.reachable(true)
        })
        // a cancelled watch (compaction past our revision, an auth token etcd forgot): list everything again; etcd has
        // cancelled this watcher already, so it is dropped rather than cancelled once more. Refused before it was ever
        // created: list again after the back-off, as when a listing fails.
        w.on('error', () => {
          if (watcher !== w) return
          watcher = undefined
          const wait = connected ? 0 : delay
          if (!connected) delay = Math.min(delay * 2, 2000)
          setTimeout(() => void sync(), wait).unref()
        })
        return
      } catch (err) {
        sink.reachable(false, (err as Error).message)
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(delay * 2, 2000)
      }
    }
  }

  void sync()
  return {
    async close() {
      closed = true
      generation++
      if (watcher) await cancelSoon(watcher)
    },
  }
}
