import type { Test } from 'tap'
import type { Etcd3 } from 'etcd3'
import { createEtcdClient } from '../../core/etcd/client.js'
import { decodeLocalConfig } from '../../core/config/local.js'
import type { LocalConfig } from '../../core/config/local-schema.js'
import { watchPrefix } from '../../core/etcd/prefix-watch.js'

/** A LocalConfig with these `deployment.etcd` (timeout 5 s unless given) and `apisix` keys. */
export const etcdConfig = (etcd: Record<string, unknown>, apisix: Record<string, unknown> = {}): LocalConfig =>
  decodeLocalConfig('test.yaml', { apisix, deployment: { etcd: { timeout: 5, ...etcd } } })

/** The gateway's own etcd client for that config, closed at teardown. */
export const etcdClient = (t: Test, etcd: Record<string, unknown>, apisix: Record<string, unknown> = {}): Etcd3 => {
  const c = createEtcdClient(etcdConfig(etcd, apisix))
  t.teardown(() => c.close())
  return c
}

/** The gateway's config watcher over /apisix/, its view kept as a Map key → value. */
export const mirror = (t: Test, etcd: Etcd3): Map<string, string> => {
  const view = new Map<string, string>()
  const w = watchPrefix(etcd, '/apisix', {
    listing() {
      const fresh = new Map<string, string>()
      return {
        page: (kvs) => kvs.forEach((kv) => fresh.set(kv.key, kv.value)),
        done() {
          view.clear()
          for (const [k, v] of fresh) view.set(k, v)
        },
      }
    },
    changes(events) {
      for (const e of events) {
        if (e.type === 'delete') view.delete(e.key)
        else view.set(e.key, e.value)
      }
    },
    reachable: () => undefined,
  })
  t.teardown(() => w.close())
  return view
}

/** Settles a call within `ms`: 'ok', 'timeout' or the first line of its error. */
export const outcome = async (p: PromiseLike<unknown>, ms = 15_000): Promise<string> => {
  const timer = new Promise<string>((r) => setTimeout(() => r('timeout'), ms).unref())
  return Promise.race([Promise.resolve(p).then(() => 'ok', (e: Error) => e.message.split('\n')[0] ?? 'error'), timer])
}
