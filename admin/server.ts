import type { Etcd3 } from 'etcd3'
import type { LocalConfig } from '../core/config/local-schema.js'
import type { Logger } from '../core/log.js'
import { GatewayError } from '../core/errors.js'
import { pluginByName, plugins } from '../core/plugins/registry.js'
import { buildRegistry } from '../core/resources/registry.js'
import { checkKeyring } from '../core/resources/key-crypto.js'
import { buildAdminApp } from './app.js'
import { loadUiFiles } from './ui-static.js'
import type { MetricsSnapshot } from '../core/metrics/registry.js'
import { normalizeSni } from '../core/net/hostname.js'
import { buildAuth } from './auth.js'
import { KeyedQueue } from './kv.js'
import { createEtcdStore } from './store.js'

/** A running admin API. */
export interface AdminHandle {
  readonly address: string
  close(): Promise<void>
}

/** Keyring entries that are not 16 or 32 bytes are dropped with an error log, as APISIX does. */
function usableKeyring(keyring: readonly string[], log: Logger): string[] {
  return keyring.filter((k, i) => {
    const bad = checkKeyring([k])
    if (bad) log.error({ index: i }, `apisix.data_encryption.keyring[${i}] must be 16 or 32 bytes long; entry ignored`)
    return !bad
  })
}

/**
 * Starts the admin API on deployment.admin.admin_listen; throws
 * GatewayError('GW_PORT_IN_USE', ['admin', 'ip:port']) when the port is taken. With `indexAfter`,
 * the shared-SNI index lists etcd only once it settles (bin/start.ts: once the workers have
 * loaded); until then an ssl write lists the ssl directory for its warnings, as it always could.
 */
export async function startAdmin(o: {
  config: LocalConfig
  etcd: Etcd3
  log: Logger
  indexAfter?: Promise<unknown>
  /** the data plane's metrics summed over the workers, for the UI's Live TLS page */
  metrics?: () => Promise<MetricsSnapshot | undefined>
}): Promise<AdminHandle> {
  const { config, log } = o
  const admin = config.deployment.admin
  const prefix = config.deployment.etcd.prefix
  let closed = false
  const listing = (): void => {
    if (!closed) log.info('shared-SNI index: listing the ssl objects')
  }
  const sniStart = o.indexAfter?.then(listing, listing)
  const store = createEtcdStore(o.etcd, prefix, sniStart ? { sniStart } : {})
  const app = buildAdminApp({
    store,
    registry: buildRegistry(pluginByName),
    plugins: pluginByName,
    keyring: usableKeyring(config.apisix.data_encryption.keyring, log),
    prefix,
    now: () => Date.now(),
    queue: new KeyedQueue(),
    maxAttempts: 16,
    pluginNames: plugins.map((p) => p.name),
    auth: buildAuth(admin.admin_key, admin.allow_admin),
    log,
    fallbackSni: normalizeSni(config.apisix.ssl.fallback_sni),
    ...(admin.enable_admin_ui ? { ui: loadUiFiles() } : {}),
    ...(o.metrics ? { metrics: o.metrics } : {}),
  })
  const { ip, port } = admin.admin_listen
  const where = `${ip.includes(':') ? `[${ip}]` : ip}:${port}`
  try {
    await app.listen({ host: ip, port })
  } catch (err) {
    await app.close().catch(() => undefined)
    await store.close()
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new GatewayError('GW_PORT_IN_USE', ['admin', where], { cause: err })
    throw new GatewayError('GW_LISTEN_FAILED', ['admin', where, err instanceof Error ? err.message : String(err)], { cause: err })
  }
  return {
    address: where,
    close: async () => {
      closed = true
      await app.close()
      await store.close()
    },
  }
}
