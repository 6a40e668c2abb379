import { readFileSync } from 'node:fs'
import { Etcd3, type IOptions } from 'etcd3'
import { ExponentialBackoff, noop } from 'cockatiel'
import type { LocalConfig } from '../config/local-schema.js'

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>

/**
 * Builds the etcd client from `deployment.etcd`. Every member is given to the client, which
 * fails over between them. The client's default circuit breaker is replaced by a no-op policy:
 * after a short etcd outage it would otherwise refuse every call for a while (DESIGN.md §4).
 */
export function createEtcdClient(c: LocalConfig): Etcd3 {
  const e = c.deployment.etcd
  const hosts = e.host.map((h) => h.replace(/\/+$/, ''))
  const opts: IOptions = {
    hosts,
    dialTimeout: Math.min(e.timeout, 10) * 1000,
    grpcOptions: {
      'grpc.max_receive_message_length': 512 * 1024 * 1024,
      'grpc.max_send_message_length': 16 * 1024 * 1024,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    },
    faultHandling: {
      host: () => noop,
      global: noop,
      // etcd3 declares IBackoff but passes its own default ExponentialBackoff factory the same way
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }) as unknown as WatchBackoff,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + e.timeout * 1000 }),
  }
  if (e.user) opts.auth = { username: e.user, password: e.password }
  if (hosts.some((h) => h.startsWith('https:'))) {
    const caFile = c.apisix.ssl.ssl_trusted_certificate || c.apisix.data_encryption.ssl_trusted_certificate
    const creds: NonNullable<IOptions['credentials']> = { rootCertificate: caFile ? readFileSync(caFile) : Buffer.alloc(0) }
    if (e.tls.cert) {
      creds.privateKey = readFileSync(e.tls.key)
      creds.certChain = readFileSync(e.tls.cert)
    }
    opts.credentials = creds
  }
  return new Etcd3(opts)
}
