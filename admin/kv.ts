import type { SniClaim } from './sni-claims.js'

/**
 * The key-value operations the admin needs, over etcd (admin/store.ts) or memory (unit tests).
 * Every write is conditioned on the key's mod revision ('0': the key must be absent), so a
 * concurrent writer is detected instead of overwritten.
 */

/** One stored key: its JSON value and etcd's revisions (decimal strings). */
export interface Kv {
  readonly key: string
  readonly value: unknown
  readonly createRevision: string
  readonly modRevision: string
}

/** The admin's storage. Failures of the store itself throw GatewayError GW_ETCD_FAILED. */
export interface KvStore {
  get(key: string): Promise<Kv | undefined>
  /** every key under `dir` whose value is JSON, in key byte order */
  list(dir: string): Promise<Kv[]>
  /** writes `value` if the key's mod revision is still `expectMod`: the write's revision, undefined when it moved */
  putIf(key: string, value: string, expectMod: string): Promise<string | undefined>
  /** deletes the key if its mod revision is still `expectMod`; false when it moved */
  deleteIf(key: string, expectMod: string): Promise<boolean>
  /** deletes every key under `prefix` */
  deletePrefix(prefix: string): Promise<void>
  /** a fresh revision: APISIX writes `{prefix}/gen_id` and takes the header revision */
  newRevision(): Promise<string>
  /**
   * The ssl objects under `dir` other than `except` that claim one of `names` (normalised SNIs),
   * in key order, as stored at revision `atLeast` or later (admin/sni-claims.ts).
   */
  sniClaims(dir: string, names: ReadonlySet<string>, except: string, atLeast: string): Promise<SniClaim[]>
  /** stops what the store runs in the background */
  close(): Promise<void>
}

/** Runs tasks for one key one after another (within this process), others in parallel. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>()

  /** Runs `task` after every task queued earlier for `key` has settled. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve()
    const next = prev.then(task, task)
    const tail = next.then(
      () => undefined,
      () => undefined,
    )
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return next
  }
}
