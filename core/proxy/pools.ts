/**
 * One undici Pool per upstream node and connection options (DESIGN.md §1), shared by every
 * upstream naming it, kept alive between requests, closed when no generation names it.
 */
import { Pool } from 'undici'
import type { PoolOptions } from './upstream-plan.js'

/** The worker's pools. */
export interface Pools {
  /** The pool for `key`, made on first use. */
  get(key: string, o: PoolOptions): Pool
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
  return {
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
    },
    async close() {
      const all = [...pools.values()]
      pools.clear()
      await Promise.all(all.map((p) => p.close().catch(() => undefined)))
    },
    size: () => pools.size,
  }
}
