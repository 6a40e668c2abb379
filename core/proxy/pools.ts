/**
 * One undici Pool per upstream node and connection options (DESIGN.md §1), shared by every
 * upstream naming it, kept alive between requests, closed when no generation names it.
 */
import { Pool } from 'undici'
import { H1Pool } from './h1-pool.js'
import type { PoolOptions } from './upstream-plan.js'

/** The worker's pools. */
export interface Pools {
  /** The pool for `key`, made on first use. */
  get(key: string, o: PoolOptions): Pool
  /** The pool for bodiless requests to `key` when it is a plain-HTTP node (core/proxy/h1-pool.ts), else undefined. */
  h1(key: string, o: PoolOptions): H1Pool | undefined
  /** Closes (gracefully: in-flight requests finish) every pool whose key is not in `keep`. */
  retain(keep: ReadonlySet<string>): void
  /** Closes every pool. */
  close(): Promise<void>
  /** How many pools are open (tests and metrics). */
  size(): number
}

/** Creates the pool set of one worker. */
export function createPools(): Pools {
  const pools = new Map<string, Pool>()
  const h1s = new Map<string, H1Pool>()
  return {
    h1(key, o) {
      let p = h1s.get(key)
      if (p === undefined) {
        if (!o.origin.startsWith('http:')) return undefined
        p = new H1Pool(o)
        h1s.set(key, p)
      }
      return p
    },
    get(key, o) {
      let p = pools.get(key)
      if (!p) {
        p = new Pool(o.origin, {
          connections: o.connections,
          pipelining: 1,
          keepAliveTimeout: o.idleMs,
          keepAliveMaxTimeout: Math.max(o.idleMs, 1000),
          maxRequestsPerClient: o.maxRequests,
          // per-request timeouts are set on each dispatch
          headersTimeout: 0,
          bodyTimeout: 0,
          connect: {
            timeout: o.connectTimeoutMs,
            rejectUnauthorized: o.verify,
            ...(o.clientCert && o.clientKey ? { cert: o.clientCert, key: o.clientKey } : {}),
          },
        })
        pools.set(key, p)
      }
      return p
    },
    retain(keep) {
      for (const [key, p] of pools) {
        if (keep.has(key)) continue
        pools.delete(key)
        void p.close().catch(() => undefined)
      }
      for (const [key, p] of h1s) {
        if (keep.has(key)) continue
        h1s.delete(key)
        void p.close()
      }
    },
    async close() {
      const all: { close(): Promise<void> }[] = [...pools.values(), ...h1s.values()]
      pools.clear()
      h1s.clear()
      await Promise.all(all.map((p) => p.close().catch(() => undefined)))
    },
    size: () => new Set([...pools.keys(), ...h1s.keys()]).size,
  }
}
