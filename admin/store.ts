import type { Etcd3, IKeyValue } from 'etcd3'
import { GatewayError } from '../core/errors.js'
import type { Kv, KvStore } from './kv.js'

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
 * transaction each). Any etcd failure becomes GW_ETCD_FAILED (503).
 */
export function createEtcdStore(etcd: Etcd3, prefix: string): KvStore {
  const genIdKey = `${prefix.replace(/\/+$/, '')}/gen_id`
  return {
    get: (key) =>
      guard(`get ${key}`, async () => {
        const res = await etcd.get(key).exec()
        const kv = res.kvs[0]
        return kv ? toKv(kv) : undefined
      }),
    list: (dir) =>
      guard(`list ${dir}`, async () => {
        const res = await etcd.getAll().prefix(dir).exec()
        return res.kvs.map(toKv).filter((kv): kv is Kv => kv !== undefined)
      }),
    putIf: (key, value, expectMod) =>
      guard(`put ${key}`, async () => {
        const res = await etcd.if(key, 'Mod', '==', expectMod).then(etcd.put(key).value(value)).commit()
        return res.succeeded
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
    newRevision: () =>
      guard('gen_id', async () => {
        const res = await etcd.put(genIdKey).value('1').exec()
        return res.header.revision
      }),
  }
}
