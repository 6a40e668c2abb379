import { GatewayError } from '../../core/errors.js'
import type { Kv, KvStore } from '../../admin/kv.js'
import { claimsIn, type SniClaim } from '../../admin/sni-claims.js'

/** An in-memory KvStore with etcd's revision semantics, for unit tests of the admin. */
export class MemoryStore implements KvStore {
  #rev = 1n
  readonly #data = new Map<string, { raw: string; create: bigint; mod: bigint }>()
  /** set to make every call fail as an unreachable etcd would */
  down = false
  /** called before each conditional write (tests use it to interleave a concurrent writer) */
  beforeWrite: ((key: string) => void) | undefined

  #check(): void {
    if (this.down) throw new GatewayError('GW_ETCD_FAILED', ['connection refused (memory store marked down)'])
  }

  #kv(key: string): Kv | undefined {
    const e = this.#data.get(key)
    if (!e) return undefined
    let value: unknown
    try {
      value = JSON.parse(e.raw)
    } catch {
      return undefined
    }
    return { key, value, createRevision: String(e.create), modRevision: String(e.mod) }
  }

  async get(key: string): Promise<Kv | undefined> {
    this.#check()
    return this.#kv(key)
  }

  async list(dir: string): Promise<Kv[]> {
    this.#check()
    return [...this.#data.keys()]
      .filter((k) => k.startsWith(dir))
      .sort()
      .map((k) => this.#kv(k))
      .filter((kv): kv is Kv => kv !== undefined)
  }

  /** Writes without a condition (test set-up, or a foreign writer). */
  set(key: string, raw: string): void {
    const prev = this.#data.get(key)
    this.#rev++
    this.#data.set(key, { raw, create: prev?.create ?? this.#rev, mod: this.#rev })
  }

  async putIf(key: string, value: string, expectMod: string): Promise<string | undefined> {
    this.#check()
    this.beforeWrite?.(key)
    const cur = this.#data.get(key)
    if (String(cur?.mod ?? 0n) !== expectMod) return undefined
    this.set(key, value)
    return String(this.#rev)
  }

  async deleteIf(key: string, expectMod: string): Promise<boolean> {
    this.#check()
    const cur = this.#data.get(key)
    if (String(cur?.mod ?? 0n) !== expectMod) return false
    this.#rev++
    this.#data.delete(key)
    return true
  }

  async deletePrefix(prefix: string): Promise<void> {
    this.#check()
    for (const k of [...this.#data.keys()]) if (k.startsWith(prefix)) this.#data.delete(k)
  }

  /** Always current: computed from the stored values (the reference the etcd store's index follows). */
  async sniClaims(dir: string, names: ReadonlySet<string>, except: string): Promise<SniClaim[]> {
    return claimsIn(await this.list(dir), names, except)
  }

  async close(): Promise<void> {}

  async newRevision(): Promise<string> {
    this.#check()
    this.#rev++
    return String(this.#rev)
  }
}
