import type { Etcd3, Watcher } from 'etcd3'
import { createSniClaims, type SniClaim, type SniClaims } from './sni-claims.js'
import { heapCare } from '../core/ops/heap.js'
import { cancelSoon } from '../core/etcd/cancel.js'

/** The admin's SNI index kept current by one etcd watch on the ssl directory. */
export interface SniWatch {
  /**
   * The claims sharing `names`, from an index that has applied every change up to revision
   * `atLeast` (the caller's own write); undefined when the index did not get there within the
   * wait (etcd unreachable, watch being re-created): the caller lists instead.
   */
  sharing(names: ReadonlySet<string>, except: string, atLeast: string): Promise<SniClaim[] | undefined>
  close(): Promise<void>
}

// etcd counts the rest of the range for every page: small pages make a 100k listing quadratic
const PAGE = 2000

const parse = (raw: Buffer): unknown => {
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch {
    return undefined
  }
}


/** Options of createSniWatch. */
export interface SniWatchOptions {
  /** how long a query waits for the index to reach its revision before the caller lists */
  readonly waitMs: number
  /** first back-off after a failed listing (doubles up to 2 s) */
  readonly retryMs?: number
  /**
   * The index lists nothing until this settles (the primary passes "the workers have loaded",
   * so three listings of every ssl object do not share etcd during start-up); until then every
   * query answers undefined at once and the caller lists, as when the index is unreachable.
   */
  readonly start?: Promise<unknown>
}

/**
 * Lists `dir` once (in pages, at one revision), then watches it from the next revision; when the
 * watch is cancelled (compaction past our revision) it lists again. A query waits, at most
 * `waitMs`, until the index has seen the revision it asks for.
 */
export function createSniWatch(etcd: Etcd3, dir: string, o: SniWatchOptions): SniWatch {
  let claims = createSniClaims()
  // a listing of every ssl object passes through buffers: freed page by page, then once at the end
  const heap = heapCare()
  let revision = 0n
  let closed = false
  let generation = 0
  let watcher: Watcher | undefined
  const waiters = new Set<{ rev: bigint; done: (ok: boolean) => void }>()
  const end = Buffer.from(dir)
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1

  const advance = (rev: bigint): void => {
    if (rev > revision) revision = rev
    for (const w of waiters) if (w.rev <= revision) w.done(true)
  }

  // One page into `into`; only what the next page needs comes back, so the response (its buffers,
  // ~3 MB) is garbage by the time the young collection after it runs, and is freed while young.
  const listPage = async (into: SniClaims, key: Buffer, at: string | undefined, mine: number): Promise<{ revision: string; next: Buffer | undefined } | undefined> => {
    const res = await etcd.kv.range({ key, range_end: end, limit: PAGE, ...(at ? { revision: at } : {}) })
    if (mine !== generation) return undefined
    for (const kv of res.kvs) into.put(kv.key.toString('utf8'), parse(kv.value))
    const last = res.kvs[res.kvs.length - 1]
    return { revision: res.header.revision, next: res.more && last ? Buffer.concat([last.key, Buffer.from([0])]) : undefined }
  }

  const listAll = async (mine: number): Promise<bigint | undefined> => {
    let key: Buffer | undefined = Buffer.from(dir)
    let at: string | undefined
    // each page goes into a fresh index at once (no listing held whole), swapped in when complete
    const fresh = createSniClaims()
    while (key) {
      const page = await listPage(fresh, key, at, mine)
      if (!page) return undefined
      at ??= page.revision
      key = page.next
      heap.minor()
    }
    claims = fresh
    setImmediate(heap.major)
    return BigInt(at ?? '0')
  }

  const sync = async (): Promise<void> => {
    const mine = ++generation
    if (watcher) {
      const w = watcher
      watcher = undefined
      await cancelSoon(w)
    }
    let delay = o.retryMs ?? 100
    while (!closed && mine === generation) {
      try {
        const listed = await listAll(mine)
        if (listed === undefined || closed || mine !== generation) return
        // a resync may list an older revision than a watch already delivered: start again from it
        revision = 0n
        advance(listed)
        const w = await etcd.watch().prefix(dir).startRevision((listed + 1n).toString()).create()
        if (closed || mine !== generation) {
          await cancelSoon(w)
          return
        }
        watcher = w
        w.on('data', (res) => {
          if (watcher !== w) return
          let top = 0n
          for (const e of res.events) {
            const k = e.kv.key.toString('utf8')
            if (e.type === 'Delete') claims.delete(k)
            else claims.put(k, parse(e.kv.value))
            const r = BigInt(e.kv.mod_revision)
            if (r > top) top = r
          }
          advance(top)
        })
        w.on('error', () => {
          if (watcher !== w) return
          watcher = undefined
          running = sync()
        })
        return
      } catch {
        await new Promise((r) => setTimeout(r, delay).unref())
        delay = Math.min(delay * 2, 2000)
      }
    }
  }

  const reach = (rev: bigint): Promise<boolean> => {
    if (revision >= rev) return Promise.resolve(true)
    return new Promise((resolve) => {
      const w = {
        rev,
        done: (ok: boolean) => {
          clearTimeout(timer)
          waiters.delete(w)
          resolve(ok)
        },
      }
      const timer = setTimeout(() => {
        waiters.delete(w)
        resolve(false)
      }, o.waitMs)
      waiters.add(w)
    })
  }

  // the sync in flight: close() waits for it, so a watch it is still creating is cancelled while
  // the etcd client is open (cancelled after the client closed, etcd3 keeps retrying it forever)
  let running: Promise<void> | undefined
  const begin = (): void => {
    if (!closed && running === undefined) running = sync()
  }
  if (o.start === undefined) begin()
  else o.start.then(begin, begin)
  return {
    async sharing(names, except, atLeast) {
      // not started: waiting would only delay the caller's own listing
      if (running === undefined) return undefined
      if (!(await reach(BigInt(atLeast)))) return undefined
      return claims.sharing(names, except)
    },
    async close() {
      closed = true
      generation++
      for (const w of waiters) w.done(false)
      if (running) await Promise.race([running, new Promise<void>((r) => setTimeout(r, 2000).unref())])
      if (watcher) await cancelSoon(watcher)
      watcher = undefined
    },
  }
}
