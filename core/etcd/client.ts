import { readFileSync } from 'node:fs'
import { Etcd3, GRPCUnavailableError, type IOptions } from 'etcd3'
import { ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel'
import type { LocalConfig } from '../config/local-schema.js'
import { GatewayError } from '../errors.js'
import { patchClient } from './internals.js'

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>
type GlobalPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>

/**
 * Builds the etcd client from `deployment.etcd`. Every member is given to the client:
 *
 * - failover: etcd3 sends each call to one member chosen at random and, with its default
 *   policies, neither tries another member nor recovers quickly (its circuit breaker refuses
 *   every call for a while after three failures, DESIGN.md §4). The per-member breaker is
 *   replaced by a no-op, and a call that fails with UNAVAILABLE (member down, no leader,
 *   leader changed) is retried on the next member of the same shuffled order, with a short
 *   back-off that covers a leader election. Watches reconnect to a random member on their own.
 * - TLS: `https://` members; the CA is `apisix.ssl.ssl_trusted_certificate` (or
 *   `apisix.data_encryption.ssl_trusted_certificate`), the system roots when neither is set;
 *   `deployment.etcd.tls.cert/key` is the client certificate; `verify: false` skips the
 *   server-certificate check.
 * - auth: `user`/`password`; etcd3 authenticates again when etcd forgets a token (member
 *   restart, TTL); a watch refused for that reason is cancelled, and the config watcher lists
 *   again, which renews the token.
 *
 * Throws GW_ETCD_CONFIG (at startup) for settings it cannot honour.
 */
export function createEtcdClient(c: LocalConfig): Etcd3 {
  const e = c.deployment.etcd
  const hosts = e.host.map((h) => h.replace(/\/+$/, ''))
  const secure = hosts.filter((h) => h.startsWith('https:')).length
  if (secure > 0 && secure < hosts.length) {
    throw new GatewayError('GW_ETCD_CONFIG', ['deployment.etcd.host', 'mixes http:// and https:// members; use one scheme for all'])
  }
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
      global: failoverPolicy(hosts.length),
      // etcd3 declares IBackoff but passes its own default ExponentialBackoff factory the same way
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }) as unknown as WatchBackoff,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + e.timeout * 1000 }),
  }
  if (e.user) opts.auth = { username: e.user, password: e.password }
  if (secure > 0) {
    const caKey = c.apisix.ssl.ssl_trusted_certificate ? 'apisix.ssl.ssl_trusted_certificate' : 'apisix.data_encryption.ssl_trusted_certificate'
    const caFile = c.apisix.ssl.ssl_trusted_certificate || c.apisix.data_encryption.ssl_trusted_certificate
    // etcd3 types rootCertificate as required; grpc-js takes undefined as "the system roots"
    const creds = { rootCertificate: (caFile ? readPem(caKey, caFile) : undefined) as unknown as Buffer } as NonNullable<IOptions['credentials']>
    if (e.tls.cert) {
      creds.certChain = readPem('deployment.etcd.tls.cert', e.tls.cert)
      creds.privateKey = readPem('deployment.etcd.tls.key', e.tls.key)
    }
    opts.credentials = creds
  }
  const client = new Etcd3(opts)
  const verify = secure === 0 || e.tls.verify
  const why = patchClient(client, { verify })
  if (why) {
    client.close()
    throw new GatewayError('GW_ETCD_CONFIG', verify ? ['deployment.etcd', `unsupported etcd client: ${why}`] : ['deployment.etcd.tls.verify', `false cannot be honoured: ${why}`])
  }
  return client
}

/**
 * Retries a unary call that failed because a member was unusable (gRPC UNAVAILABLE: refused,
 * reset, no leader, leader changed) on the next member, up to twice around the member list,
 * with 50 ms → 1 s back-off (a leader election takes about a second). Deadlines and etcd's
 * own refusals (auth, compaction, txn failures) are not retried.
 */
function failoverPolicy(members: number): GlobalPolicy {
  const p = retry(
    // etcd3 casts a gRPC status 14 (refused, reset, no leader) to GRPCUnavailableError
    handleWhen((err) => err instanceof GRPCUnavailableError),
    { maxAttempts: Math.max(4, members * 2 + 2), backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }) },
  )
  // etcd3 bundles the same cockatiel major; its IPolicy type is nominally another copy
  return p as unknown as GlobalPolicy
}

function readPem(key: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new GatewayError('GW_ETCD_CONFIG', [key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], { cause: err })
  }
}
