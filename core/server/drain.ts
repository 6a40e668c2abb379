/**
 * A worker's graceful stop (SIGTERM/SIGINT on the primary → 'drain' over IPC): stop accepting,
 * close idle keep-alive connections as they become idle, wait for the requests in flight, and
 * cut whatever is still running when `nginx_config.worker_shutdown_timeout` has passed.
 */
import type { Logger } from '../log.js'

/** What the worker's drain acts on (core/main.ts wires its servers and counters). */
export interface DrainTarget {
  /** closes the listening sockets (open connections stay) */
  stopAccepting(): void
  /** closes keep-alive connections that carry no request now */
  closeIdle(): void
  /** destroys every connection, busy or not (the bound has passed) */
  cutAll(): void
  /** requests (and upgraded connections) not finished yet */
  inflight(): number
  /** closes the store, pools and logs; the worker exits once it settles or after `settleMs` */
  cleanup(): Promise<unknown>
}

/** How often the drain looks again at idle connections and the in-flight count. */
export const DRAIN_TICK_MS = 20

/** After the bound, how long the clean-up may take before the worker exits anyway. */
export const CLEANUP_GRACE_MS = 2_000

/**
 * Drains one worker; `exit` runs once, after the in-flight requests finished (or were cut at
 * `boundMs`) and the clean-up settled. Logs the start, and each connection cut at the bound.
 */
export function drainWorker(o: { target: DrainTarget; boundMs: number; log: Pick<Logger, 'info' | 'warn'>; exit(): void }): void {
  const { target } = o
  const started = Date.now()
  target.stopAccepting()
  target.closeIdle()
  o.log.info({ inflight: target.inflight(), timeout_ms: o.boundMs }, 'draining: listeners closed, waiting for in-flight requests')
  let done = false
  const finish = (): void => {
    if (done) return
    done = true
    const grace = setTimeout(o.exit, CLEANUP_GRACE_MS)
    void target.cleanup().finally(() => {
      clearTimeout(grace)
      o.exit()
    })
  }
  const tick = setInterval(() => {
    target.closeIdle()
    const left = target.inflight()
    if (left === 0) {
      clearInterval(tick)
      o.log.info({ ms: Date.now() - started }, 'drained: no request in flight')
      finish()
    } else if (Date.now() - started >= o.boundMs) {
      clearInterval(tick)
      o.log.warn({ inflight: left, timeout_ms: o.boundMs }, 'drain timeout (nginx_config.worker_shutdown_timeout) reached: cutting the requests still in flight')
      target.cutAll()
      finish()
    }
  }, DRAIN_TICK_MS)
}
