import type { Etcd3 } from 'etcd3'
import type { LocalConfig } from '../config/local-schema.js'
import { GatewayError } from '../errors.js'

/**
 * Waits until etcd answers a read, retrying for up to `deployment.etcd.startup_retry` seconds;
 * throws GW_ETCD_UNREACHABLE naming the member(s) and the last error.
 */
export async function waitForEtcd(etcd: Etcd3, c: LocalConfig): Promise<void> {
  const deadline = Date.now() + c.deployment.etcd.startup_retry * 1000
  let last = 'no answer'
  for (;;) {
    const attempt = etcd.get(`${c.deployment.etcd.prefix}/__probe`).string()
    const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2s')), 2000).unref())
    try {
      await Promise.race([attempt, timer])
      return
    } catch (err) {
      attempt.catch(() => undefined)
      last = (err as Error).message.split('\n')[0] ?? String(err)
      if (/auth|permission|password|user/i.test(last) && !/unavailable/i.test(last)) {
        throw new GatewayError('GW_ETCD_UNREACHABLE', [c.deployment.etcd.host.join(','), 0, last], { cause: err })
      }
    }
    if (Date.now() >= deadline) throw new GatewayError('GW_ETCD_UNREACHABLE', [c.deployment.etcd.host.join(','), c.deployment.etcd.startup_retry, last])
    await new Promise((r) => setTimeout(r, 500))
  }
}
