import type { Etcd3, IKeyValue } from 'etcd3'
import { GatewayError } from '../core/errors.js'
import type { Kv, KvStore } from './kv.js'
import { dirOf } from '../core/etcd/keys.js'
import { rangeEnd } from '../core/etcd/prefix-watch.js'
import { claimsIn } from './sni-claims.js'
import { createSniWatch } from './sni-watch.js'

async function guard<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    if (err instanceof GatewayError) throw err
    const why = err instanceof Error ? err.message : String(err)
    throw new GatewayError('GW_ETCD_FAILED', [`${what}: ${why}`], { cause: err })
  }
}

function toKv(kv: IKeyValue): Kv | undefined {
  let value: unknown
  try {
    value = JSON.parse(kv.value.toString('utf8'))
  } catch {
    return undefined // APISIX's `init_dir` placeholders and other non-JSON keys
  }
  return { key: kv.key.toString('utf8'), value, createRevision: kv.create_revision, modRevision: kv.mod_revision }
}

/**
 * The admin's etcd I/O: reads, and writes conditioned on the key's mod revision (one etcd
 * transaction each). Any etcd failure becomes GW_ETCD_FAILED (503). The shared-SNI question of
 * an ssl write is answered by an index fed by one watch on the ssl directory (started here);
 * `sniWaitMs` bounds how long a query waits for that index to see the caller's write before it
 * lists the directory instead; `sniStart` holds that index's first listing until it settles.
 */
export function createEtcdStore(etcd: Etcd3, prefix: string, o: { sniWaitMs?: number; sniStart?: Promise<unknown> } = {}): KvStore {
  const genIdKey = `${prefix.replace(/\/+$/, '')}/gen_id`
  const sslDir = dirOf(prefix, 'ssls')
  const sni = createSniWatch(etcd, sslDir, { waitMs: o.sniWaitMs ?? 2000, ...(o.sniStart ? { start: o.sniStart } : {}) })
  // Listings by directory (GET of a resource), each key with the mod revision it was read at:
  // a listing reads the keys only and fetches the values that moved since the last one.
  const listed = new Map<string, Map<string, { mod: string; kv: Kv | undefined }>>()
  const listCached = async (dir: string): Promise<Kv[]> => {
    const key = Buffer.from(dir)
    const end = rangeEnd(dir)
    const keys = await etcd.kv.range({ key, range_end: end, keys_only: true })
    const prev = listed.get(dir)
    const next = new Map<string, { mod: string; kv: Kv | undefined }>()
    let oldest: bigint | undefined
    for (const k of keys.kvs) {
      const name = k.key.toString('utf8')
      const seen = prev?.get(name)
      if (seen && seen.mod === k.mod_revision) next.set(name, seen)
      else if (oldest === undefined || BigInt(k.mod_revision) < oldest) oldest = BigInt(k.mod_revision)
    }
    if (oldest !== undefined) {
      const res = await etcd.kv.range({ key, range_end: end, min_mod_revision: oldest.toString(), revision: keys.header.revision })
      for (const kv of res.kvs) next.set(kv.key.toString('utf8'), { mod: kv.mod_revision, kv: toKv(kv) })
    }
    listed.set(dir, next)
    const out: Kv[] = []
    for (const k of keys.kvs) {
      const kv = next.get(k.key.toString('utf8'))?.kv
      if (kv) out.push(kv)
    }
    return out
  }
  return {
    get: (key) =>
      guard(`get ${key}`, async () => {
        const res = await etcd.get(key).exec()
        const kv = res.kvs[0]
        return kv ? toKv(kv) : undefined
      }),
    list: (dir) => guard(`list ${dir}`, () => listCached(dir)),
    putIf: (key, value, expectMod) =>
      guard(`put ${key}`, async () => {
        const res = await etcd.if(key, 'Mod', '==', expectMod).then(etcd.put(key).value(value)).commit()
        return res.succeeded ? res.header.revision : undefined
      }),
    deleteIf: (key, expectMod) =>
      guard(`delete ${key}`, async () => {
        const res = await etcd.if(key, 'Mod', '==', expectMod).then(etcd.delete().key(key)).commit()
        return res.succeeded
      }),
    deletePrefix: (p) =>
      guard(`delete ${p}`, async () => {
        await etcd.delete().prefix(p).exec()
      }),
    async sniClaims(dir, names, except, atLeast) {
      const hit = dir === sslDir ? await sni.sharing(names, except, atLeast) : undefined
      return hit ?? claimsIn(await guard(`list ${dir}`, () => listCached(dir)), names, except)
    },
    close: () => sni.close(),
    newRevision: () =>
      guard('gen_id', async () => {
        const res = await etcd.put(genIdKey).value('1').exec()
        return res.header.revision
      }),
  }
}
