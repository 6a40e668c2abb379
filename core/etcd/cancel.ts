import type { Watcher } from 'etcd3'

/**
 * Cancels a watcher without waiting forever: etcd3's cancel() never resolves for a watcher that
 * etcd already cancelled during its (re)creation (its id stays null while the stream is up).
 * Shared by the config watcher and the admin's SNI watch.
 */
export const cancelSoon = (w: Watcher): Promise<void> =>
  Promise.race([w.cancel().catch(() => undefined), new Promise<void>((r) => setTimeout(r, 1000).unref())])
