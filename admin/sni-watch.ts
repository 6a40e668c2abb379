import type { Etcd3 } from 'etcd3'
import { createSniClaims, type SniClaim } from './sni-claims.js'
import { heapCare } from '../core/ops/heap.js'
import { watchPrefix, type PrefixSink, type PrefixWatch } from '../core/etcd/prefix-watch.js'

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

const parse = (raw: string): unknown => {
  try {
    return JSON.parse(raw)
  } catch {
    return undefined
  }
}

/** Options of createSniWatch. */
export interface SniWatchOptions {
  /** how long a query waits for the index to reach its revision before the caller lists */
  readonly waitMs: number
  /**
   * The index lists nothing until this settles (the primary passes "the workers have loaded",
   * so three listings of every ssl object do not share etcd during start-up); until then every
   * query answers undefined at once and the caller lists, as when the index is unreachable.
   */
  readonly start?: Promise<unknown>
}

/**
 * The ssl directory's claims, kept by the one list-then-watch of an etcd prefix
 * (core/etcd/prefix-watch.ts). A query waits, at most `waitMs`, until the index has seen the
 * revision it asks for.
 */
export function createSniWatch(etcd: Etcd3, dir: string, o: SniWatchOptions): SniWatch {
  let claims = createSniClaims()
  // a listing of every ssl object passes through buffers: freed page by page, then once at the end
  const heap = heapCare()
  let revision = 0n
  let closed = false
  let watch: PrefixWatch | undefined
  const waiters = new Set<{ rev: bigint; done: (ok: boolean) => void }>()

  const advance = (rev: bigint): void => {
    if (rev > revision) revision = rev
    for (const w of waiters) if (w.rev <= revision) w.done(true)
  }

  const sink: PrefixSink = {
    listing() {
      // each page goes into a fresh index at once (no listing held whole), swapped in when complete
      const fresh = createSniClaims()
      return {
        page(kvs) {
          for (const kv of kvs) fresh.put(kv.key, parse(kv.value))
          heap.minor()
        },
        done(at) {
          claims = fresh
          setImmediate(heap.major)
          // a resync may list an older revision than a watch already delivered: start again from it
          revision = 0n
          advance(BigInt(at))
        },
      }
    },
    changes(events) {
      // the events' own revisions: a response's header may be ahead of what it delivers
      let top = 0n
      for (const e of events) {
        if (e.type === 'delete') claims.delete(e.key)
        else claims.put(e.key, parse(e.value))
        const r = BigInt(e.modRevision)
        if (r > top) top = r
      }
      advance(top)
    },
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

  const begin = (): void => {
    if (!closed && watch === undefined) watch = watchPrefix(etcd, dir, sink)
  }
  if (o.start === undefined) begin()
  else o.start.then(begin, begin)
  return {
    async sharing(names, except, atLeast) {
      // not started: waiting would only delay the caller's own listing
      if (watch === undefined) return undefined
      if (!(await reach(BigInt(atLeast)))) return undefined
      return claims.sharing(names, except)
    },
    async close() {
      closed = true
      for (const w of waiters) w.done(false)
      await watch?.close()
    },
  }
}
